"""The storage Protocol every backend implements.

Two kinds of data live in a store:

* **Vault documents**, one per customer vault: the unit that is exported and erased. Writing
  one vault never touches another, so a write costs the same with 100 or 100,000 vaults.
* **Shared tables** of records keyed by a string (the login index, wrapped data keys, later
  vendors and tokens). Keys are never personal data: they are random ids or keyed digests.

Every mutation is an atomic read-modify-write: the backend hands a ``change`` function a
fresh copy of the current value under an exclusive lock (or inside a transaction) and stores
what it returns. If ``change`` raises, nothing is written and the exception propagates. A
``change`` function must be pure and quick: a backend may call it more than once (an
optimistic backend retries on conflict) and holds a lock while it runs.

Documents and records are JSON objects (``dict[str, Any]`` of JSON-serialisable values),
stored as JSON would round-trip them (tuples come back as lists); a value JSON cannot hold
raises TypeError, and NaN or an infinity ValueError, before anything is written. Strings
must not contain NUL (PostgreSQL's ``jsonb`` cannot hold it). Backends return copies:
mutating a returned dict never changes what is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

Document = dict[str, Any]
Change = Callable[[Document], Document]
RecordChange = Callable[[Document | None], Document | None]
ManyChange = Callable[[Mapping[str, Document]], Mapping[str, Document | None]]

#: The most bytes of compact JSON one register may hold.
REGISTER_BYTES = 400


@runtime_checkable
class Store(Protocol):
    """Persistence for vault documents and shared tables.

    Errors: :class:`vault.errors.NotFound` for a missing vault,
    :class:`vault.errors.AlreadyExists` for a conditional insert that found a record, and
    :class:`vault.errors.StorageError` when the backend cannot read or write (a corrupt
    file, a lost connection). Vault ids are 2 to 64 lowercase letters and digits; table
    names and keys are short ASCII strings (``[A-Za-z0-9_.:-]``, at most 200 characters,
    a table name starting with a letter or digit). Others raise ``ValueError``: names end
    up in file paths and SQL.
    """

    # Vault documents.

    def create_vault(self, vault_id: str, doc: Document) -> None:
        """Store a new vault document; raise AlreadyExists if the id is taken."""
        ...

    def read_vault(self, vault_id: str) -> Document:
        """Return the vault's current document; raise NotFound if there is none."""
        ...

    def update_vault(self, vault_id: str, change: Change) -> Document:
        """Atomically replace the vault document with ``change(current)``; return it.

        Raise NotFound if the vault does not exist. Concurrent updates of the same vault
        serialise: none is lost.
        """
        ...

    def delete_vault(self, vault_id: str) -> None:
        """Remove the vault document and everything the backend kept for it.

        Raise NotFound if there is none.
        """
        ...

    def vault_ids(self) -> Iterator[str]:
        """Yield the id of every stored vault, in no particular order.

        Not a snapshot: a vault created or deleted meanwhile may or may not appear.
        """
        ...

    def count_vaults(self) -> int:
        """Return how many vaults are stored."""
        ...

    # Registers: small values kept beside a vault, moved on by compare-and-set.

    def read_register(self, vault_id: str, name: str) -> Document | None:
        """Return the vault's register ``name``, or None if it was never set.

        A register holds one small document (at most ``REGISTER_BYTES`` of JSON) that
        changes often and alone, such as the position of a grant's refresh-token chain:
        setting it is cheaper than rewriting the whole vault document. It is erased with
        its vault and is not part of the vault document, its export or its reads.
        """
        ...

    def swap_register(
        self, vault_id: str, name: str, expected: Document | None, new: Document
    ) -> bool:
        """Set register ``name`` to ``new`` if it holds ``expected`` (None: never set).

        Return True once the new value is durable, False (nothing written) if the register
        held something else. Concurrent swaps of one register serialise: of two with the
        same ``expected`` only one succeeds. Raise NotFound if the vault does not exist,
        and ValueError for a value longer than ``REGISTER_BYTES``.
        """
        ...

    def delete_register(self, vault_id: str, name: str) -> None:
        """Remove register ``name`` of the vault, if it is set: it then reads as never set.

        For a register nothing will read again (the chain of a grant that has ended); a
        swap racing the removal may be lost with it.
        """
        ...

    # Shared tables.

    def get(self, table: str, key: str) -> Document | None:
        """Return the record at ``key`` in ``table``, or None."""
        ...

    def insert(self, table: str, key: str, record: Document) -> None:
        """Store a record only if ``key`` is free; raise AlreadyExists otherwise."""
        ...

    def update(self, table: str, key: str, change: RecordChange) -> Document | None:
        """Atomically replace the record with ``change(current or None)``.

        Returning None from ``change`` deletes the record (or leaves it absent). Returns
        what is stored afterwards.
        """
        ...

    def update_many(self, table: str, keys: Collection[str], change: ManyChange) -> None:
        """Atomically change several records of one table together.

        ``change`` receives the records that exist among ``keys`` and returns the new
        values for any of ``keys`` (None deletes); keys it leaves out are unchanged, and a
        key outside ``keys`` raises ValueError with nothing written. No other writer sees a
        state in between. (The TinyDB backend is atomic per shard file against a crash.)
        """
        ...

    def delete(self, table: str, key: str) -> bool:
        """Remove a record; return whether there was one."""
        ...

    def scan(self, table: str) -> Iterator[tuple[str, Document]]:
        """Yield every ``(key, record)`` of a table, in no particular order.

        Not a snapshot: a record written meanwhile may or may not appear.
        """
        ...

    def partitions(self, table: str) -> dict[str, str]:
        """Map each partition of a table to a stamp that changes whenever it is written.

        A table is split into partitions (shard files, or one for the whole table); a
        reader that keeps a table in memory, such as the segment index, re-reads only the
        partitions whose stamp changed since it last looked. Cheap: no record is read.
        """
        ...

    def scan_partition(self, table: str, partition: str) -> Iterator[tuple[str, Document]]:
        """Yield every ``(key, record)`` of one partition named by :meth:`partitions`.

        An unknown or vanished partition yields nothing.
        """
        ...

    def close(self) -> None:
        """Release connections and file handles."""
        ...
