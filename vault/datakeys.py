"""Each vault's data key, stored only wrapped under the operator's KEK.

Wrapped keys live in the shared ``deks`` table, apart from the vault documents: deleting a
vault's entry crypto-shreds it, so any copy of its document (a backup, a stray file) can no
longer be read. Once the KEK version that wrapped the deleted entry is retired by a key
rotation, old backups of this table are unreadable too.
"""

from __future__ import annotations

import os

from keys import DataKey, Keyring, WrappedKey
from keys.envelope import RandomBytes
from vault.errors import NotFound
from vault.storage.base import Document, Store

TABLE = "deks"


class DataKeys:
    """Creates, opens and destroys vault data keys."""

    def __init__(self, store: Store, keyring: Keyring, rng: RandomBytes = os.urandom) -> None:
        self._store = store
        self._keyring = keyring
        self._rng = rng

    def create(self, vault_id: str) -> DataKey:
        """Make and store a new data key for ``vault_id``."""
        dek = DataKey.generate(self._rng)
        wrapped = self._keyring.wrap(dek, vault_id, self._rng)
        self._store.insert(TABLE, vault_id, wrapped.to_record())
        return dek

    def open(self, vault_id: str) -> DataKey:
        """Unwrap the data key of ``vault_id``; NotFound once it has been destroyed."""
        record = self._store.get(TABLE, vault_id)
        if record is None:
            raise NotFound("this vault has no data key (it was erased)")
        return self._keyring.unwrap(WrappedKey.from_record(record), vault_id)

    def destroy(self, vault_id: str) -> bool:
        """Delete the wrapped data key: the crypto-shredding step of erasure."""
        return self._store.delete(TABLE, vault_id)

    def rewrap(self, vault_id: str) -> bool:
        """Rewrap one data key under the current KEK version; False if it is gone."""

        def change(record: Document | None) -> Document | None:
            if record is None:
                return None
            wrapped = WrappedKey.from_record(record)
            return self._keyring.rewrap(wrapped, vault_id).to_record()

        return self._store.update(TABLE, vault_id, change) is not None
