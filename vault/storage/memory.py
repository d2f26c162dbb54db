"""An in-memory store, for unit tests only."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Collection, Iterator
from typing import cast

from vault.errors import AlreadyExists, NotFound
from vault.storage.base import Change, Document, ManyChange, RecordChange
from vault.storage.checks import (
    check_key,
    check_table,
    check_vault_id,
    checked_changes,
    json_document,
    register_bytes,
)

_log = logging.getLogger(__name__)


class MemoryStore:
    """FOR TESTS ONLY: a store in plain dicts that LOSES EVERYTHING when the process exits.

    It serves one process (a lock makes it safe across threads) and never touches the
    disk, so unit tests run fast and leave nothing behind. It applies the same checks and
    JSON round-trip as the real backends, so a test that passes here does not fail there
    on a value the real store cannot hold. Never configure it for a running server: every
    vault would vanish on restart. Creating one logs a warning to make that hard to miss.
    """

    def __init__(self) -> None:
        _log.warning("MemoryStore keeps everything in memory: for tests only, lost on exit")
        self._lock = threading.Lock()
        self._vaults: dict[str, Document] = {}
        self._tables: dict[str, dict[str, Document]] = {}
        self._writes: dict[str, int] = {}
        self._registers: dict[tuple[str, str], bytes] = {}

    # Vault documents.

    def create_vault(self, vault_id: str, doc: Document) -> None:
        """Store a new vault document; raise AlreadyExists if the id is taken."""
        check_vault_id(vault_id)
        stored = json_document(doc)
        with self._lock:
            if vault_id in self._vaults:
                raise AlreadyExists(f"vault {vault_id} exists already")
            self._vaults[vault_id] = stored

    def read_vault(self, vault_id: str) -> Document:
        """Return a copy of the vault's document; raise NotFound if there is none."""
        check_vault_id(vault_id)
        with self._lock:
            return json_document(self._current_vault(vault_id))

    def update_vault(self, vault_id: str, change: Change) -> Document:
        """Replace the vault document with ``change(copy of current)``; return a copy."""
        check_vault_id(vault_id)
        with self._lock:
            stored = json_document(change(json_document(self._current_vault(vault_id))))
            self._vaults[vault_id] = stored
            return json_document(stored)

    def delete_vault(self, vault_id: str) -> None:
        """Remove the vault document; raise NotFound if there is none."""
        check_vault_id(vault_id)
        with self._lock:
            self._current_vault(vault_id)
            del self._vaults[vault_id]
            for held in [held for held in self._registers if held[0] == vault_id]:
                del self._registers[held]

    def vault_ids(self) -> Iterator[str]:
        """Yield the id of every vault stored when the call was made."""
        with self._lock:
            return iter(list(self._vaults))

    def count_vaults(self) -> int:
        """Return how many vaults are stored."""
        with self._lock:
            return len(self._vaults)

    # Registers.

    def read_register(self, vault_id: str, name: str) -> Document | None:
        """Return the vault's register ``name``, or None if it was never set."""
        check_vault_id(vault_id)
        check_key(name)
        with self._lock:
            value = self._registers.get((vault_id, name))
        return None if value is None else cast(Document, json.loads(value))

    def swap_register(
        self, vault_id: str, name: str, expected: Document | None, new: Document
    ) -> bool:
        """Set the register to ``new`` if it holds ``expected``; return whether it did."""
        check_vault_id(vault_id)
        check_key(name)
        encoded = register_bytes(new)
        with self._lock:
            self._current_vault(vault_id)
            held = self._registers.get((vault_id, name))
            if (None if held is None else json.loads(held)) != expected:
                return False
            self._registers[(vault_id, name)] = encoded
            return True

    def delete_register(self, vault_id: str, name: str) -> None:
        """Remove the register, if it is set."""
        check_vault_id(vault_id)
        check_key(name)
        with self._lock:
            self._registers.pop((vault_id, name), None)

    # Shared tables.

    def get(self, table: str, key: str) -> Document | None:
        """Return a copy of the record at ``key`` in ``table``, or None."""
        records = self._records(table)
        check_key(key)
        with self._lock:
            record = records.get(key)
            return None if record is None else json_document(record)

    def insert(self, table: str, key: str, record: Document) -> None:
        """Store a record only if ``key`` is free; raise AlreadyExists otherwise."""
        records = self._records(table)
        check_key(key)
        stored = json_document(record)
        with self._lock:
            if key in records:
                raise AlreadyExists(f"{table} has a record at {key} already")
            records[key] = stored
            self._touch(table)

    def update(self, table: str, key: str, change: RecordChange) -> Document | None:
        """Replace the record with ``change(copy of current or None)``; None deletes it."""
        records = self._records(table)
        check_key(key)
        with self._lock:
            current = records.get(key)
            new = change(None if current is None else json_document(current))
            self._touch(table)
            if new is None:
                records.pop(key, None)
                return None
            records[key] = json_document(new)
            return json_document(records[key])

    def update_many(self, table: str, keys: Collection[str], change: ManyChange) -> None:
        """Change several records of one table together, under one lock."""
        records = self._records(table)
        wanted = {check_key(key) for key in keys}
        with self._lock:
            current = {key: json_document(records[key]) for key in wanted if key in records}
            new = checked_changes(wanted, change(current))
            self._touch(table)
            for key, value in new.items():
                if value is None:
                    records.pop(key, None)
                else:
                    records[key] = value

    def delete(self, table: str, key: str) -> bool:
        """Remove a record; return whether there was one."""
        records = self._records(table)
        check_key(key)
        with self._lock:
            self._touch(table)
            return records.pop(key, None) is not None

    def scan(self, table: str) -> Iterator[tuple[str, Document]]:
        """Yield a copy of every ``(key, record)`` stored in ``table`` when the call was made."""
        records = self._records(table)
        with self._lock:
            return iter([(key, json_document(record)) for key, record in records.items()])

    def partitions(self, table: str) -> dict[str, str]:
        """One partition for the whole table, stamped with its count of writes."""
        self._records(table)
        with self._lock:
            return {"all": str(self._writes.get(table, 0))}

    def scan_partition(self, table: str, partition: str) -> Iterator[tuple[str, Document]]:
        """The whole table for its one partition, nothing for any other name."""
        return self.scan(table) if partition == "all" else iter(())

    def close(self) -> None:
        """Do nothing: there is nothing to release."""

    def _touch(self, table: str) -> None:
        self._writes[table] = self._writes.get(table, 0) + 1

    def _current_vault(self, vault_id: str) -> Document:
        try:
            return self._vaults[vault_id]
        except KeyError:
            raise NotFound(f"no vault {vault_id}") from None

    def _records(self, table: str) -> dict[str, Document]:
        check_table(table)
        with self._lock:
            return self._tables.setdefault(table, {})
