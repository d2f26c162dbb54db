"""Each vault's data key, stored only wrapped under the operator's KEK.

Wrapped keys live in the shared ``deks`` table, apart from the vault documents: deleting a
vault's entry crypto-shreds it, so any copy of its document (a backup, a stray file) can no
longer be read. Once the KEK version that wrapped the deleted entry is retired by a key
rotation, old backups of this table are unreadable too.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

from keys import DataKey, Keyring, WrappedKey
from keys.envelope import RandomBytes
from vault.errors import NotFound
from vault.storage.base import Document, Store

TABLE = "deks"
UNWRAPPED_CAPACITY = 4096


class DataKeys:
    """Creates, opens and destroys vault data keys."""

    def __init__(self, store: Store, keyring: Keyring, rng: RandomBytes = os.urandom) -> None:
        self._store = store
        self._keyring = keyring
        self._rng = rng
        self._unwrapped: OrderedDict[tuple[str, int, str], DataKey] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, vault_id: str) -> DataKey:
        """Make and store a new data key for ``vault_id``.

        The key is wrapped under the KEK version current when the keyring looks, and stored
        a moment later; a key rotation may run whole in between and destroy that version.
        So once the key is stored, the KEK versions are read again from their source: while
        the stored key's version is gone, the key (still in memory here) is wrapped anew
        under the current version and stored in place of the lost wrapping, unless the
        record changed meanwhile (a rotation rewrapped it, or erasure deleted it). A version
        still present at that check is retired only later, and a rotation re-scans the
        table after retiring (see :mod:`vault.rotation`), so it finds the key.
        """
        dek = DataKey.generate(self._rng)
        wrapped = self._keyring.wrap(dek, vault_id, self._rng)
        self._store.insert(TABLE, vault_id, wrapped.to_record())
        stored: WrappedKey | None = wrapped
        while stored is not None and stored.kek_version not in self._keyring.source.versions():
            stored = self._replace_lost(vault_id, dek, stored)
        return dek

    def _replace_lost(self, vault_id: str, dek: DataKey, lost: WrappedKey) -> WrappedKey | None:
        """Store ``dek`` under the current version in place of ``lost``, whose version was
        retired; return what is stored afterwards (None once the key is deleted)."""
        fresh = self._keyring.wrap(dek, vault_id, self._rng).to_record()

        def change(record: Document | None) -> Document | None:
            return fresh if record == lost.to_record() else record

        record = self._store.update(TABLE, vault_id, change)
        return None if record is None else WrappedKey.from_record(record)

    def open(self, vault_id: str) -> DataKey:
        """Unwrap the data key of ``vault_id``; NotFound once it has been destroyed.

        Unwrapped keys are remembered by their wrapped form, which is read from the store
        every time: once erasure deletes it, the remembered key is unreachable. Holding
        them adds no exposure beyond the KEK, which is in memory anyway and opens them all.
        """
        record = self._store.get(TABLE, vault_id)
        if record is None:
            raise NotFound("this vault has no data key (it was erased)")
        wrapped = WrappedKey.from_record(record)
        cache_key = (vault_id, wrapped.kek_version, wrapped.blob)
        with self._lock:
            dek = self._unwrapped.get(cache_key)
        if dek is None:
            dek = self._keyring.unwrap(wrapped, vault_id)
            self._remember(cache_key, dek)
        return dek

    def _remember(self, cache_key: tuple[str, int, str], dek: DataKey) -> None:
        with self._lock:
            self._unwrapped[cache_key] = dek
            if len(self._unwrapped) > UNWRAPPED_CAPACITY:
                self._unwrapped.popitem(last=False)

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
