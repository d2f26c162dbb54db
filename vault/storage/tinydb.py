"""The embedded default store: TinyDB files in one directory, safe across processes.

Layout under the store's root::

    store.json                      format version and shard count, checked on open
    vaults/<id[:2]>/<id>.json       one TinyDB file per vault
    vaults/<id[:2]>/<id>.<name>.reg one file per register of the vault (two fixed slots)
    tables/<table>/<shard>.json     a shared table's records, spread over up to 256 files

A vault's file holds nothing but that vault, so a write costs the same with 100 or 100,000
vaults and erasing a vault removes its file. A record lives in shard file
``SHA-256(key)[0] % shards`` of its table, so a write rewrites a small file, not the table.

TinyDB is not process-safe by itself. Every write here takes an exclusive ``flock`` on a
sidecar ``<file>.lock`` (never on the data file, which is replaced), reads the file fresh,
writes ``<file>.tmp``, fsyncs it, renames it over the file and fsyncs the directory.
Readers take no lock: a rename is atomic, so they see the old file or the new one. No TinyDB
object, query cache or CachingMiddleware outlives one operation, because another process
may have written in between. This is the only module in ``vault/`` that imports tinydb.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Table

from vault.errors import AlreadyExists, NotFound, OutdatedStore, StorageError
from vault.storage import registers
from vault.storage.base import Change, Document, ManyChange, RecordChange
from vault.storage.checks import (
    check_key,
    check_table,
    check_vault_id,
    checked_changes,
    json_document,
    register_bytes,
)

#: Version of the layout above, recorded in ``store.json``. Version 2 added the register
#: files. A version 1 root is refused until :func:`upgrade_store` marks it version 2 (its
#: files are read as they are); from then on a server of the earlier version, which knows
#: nothing of registers, refuses it.
FORMAT = 2
#: The earlier formats this version reads once :func:`upgrade_store` has marked them.
UPGRADABLE = (1,)

_New = TypeVar("_New", bound=Document | None)


class TinyDBStore:
    """The embedded default :class:`~vault.storage.base.Store`: JSON files under ``root``.

    Any number of processes may open the same ``root`` at once: writes to one file
    serialise on its lock and none is lost. ``shards`` (1 to 256) spreads each shared
    table over that many files; it is fixed when the root is first used, and opening the
    root with another value raises StorageError rather than losing sight of records.
    Files are created mode 0600 and directories 0700: the data is encrypted, but personal.
    """

    def __init__(self, root: Path, *, shards: int = 256) -> None:
        if not _valid_shards(shards):
            raise ValueError(f"shards must be an integer from 1 to 256, not {shards!r}")
        self._root = Path(root)
        self._shards = shards
        _check_format(self._root / "store.json", shards)

    # Vault documents.

    def create_vault(self, vault_id: str, doc: Document) -> None:
        """Store a new vault document; raise AlreadyExists if the id is taken."""
        path = self._vault_path(vault_id)
        stored = json_document(doc)
        with _locked(path) as table:
            if table.record(vault_id) is not None:
                raise AlreadyExists(f"vault {vault_id} exists already")
            table.put({vault_id: stored})

    def read_vault(self, vault_id: str) -> Document:
        """Return the vault's current document; raise NotFound if there is none."""
        doc = _READS.record(self._vault_path(vault_id), vault_id)
        if doc is None:
            raise NotFound(f"no vault {vault_id}")
        return doc

    def update_vault(self, vault_id: str, change: Change) -> Document:
        """Atomically replace the vault document with ``change(current)``; return it."""
        path = self._vault_path(vault_id)
        if not path.exists():
            raise NotFound(f"no vault {vault_id}")

        def replace(current: Document | None) -> Document:
            if current is None:
                raise NotFound(f"no vault {vault_id}")
            return json_document(change(current))

        with _locked(path) as table:
            try:
                return table.replace(vault_id, replace)
            except NotFound:
                _discard(_lock_path(path))
                raise

    def delete_vault(self, vault_id: str) -> None:
        """Remove the vault's file and its lock file; raise NotFound if there is none."""
        path = self._vault_path(vault_id)
        if not path.exists():
            raise NotFound(f"no vault {vault_id}")
        with _locked(path) as table:
            found = table.record(vault_id) is not None
            # Registers first: a crash in between leaves a vault whose refresh chains
            # are refused (see VendorAccess), never registers without their vault.
            self._remove_registers(vault_id)
            if found:
                table.put({vault_id: None})
            # Removing the lock file is the last step under the lock: a writer that opens
            # the path afterwards gets a new lock file, and one already waiting on the old
            # one notices and retries (see _acquire).
            _discard(_lock_path(path))
        if not found:
            raise NotFound(f"no vault {vault_id}")

    def vault_ids(self) -> Iterator[str]:
        """Yield the id of every stored vault, walking the shard directories."""
        for path in (self._root / "vaults").glob("*/*.json"):
            yield path.name.removesuffix(".json")

    def count_vaults(self) -> int:
        """Return how many vault files there are."""
        return sum(1 for _ in self.vault_ids())

    # Registers: files of two slots beside the vault's file (see vault.storage.registers).

    def read_register(self, vault_id: str, name: str) -> Document | None:
        """Return the vault's register ``name``, or None if it was never set."""
        value: Document | None = registers.read(self._register_path(vault_id, name))
        return value

    def swap_register(
        self, vault_id: str, name: str, expected: Document | None, new: Document
    ) -> bool:
        """Set the register to ``new`` if it holds ``expected``; True once durable."""
        path = self._register_path(vault_id, name)
        encoded = register_bytes(new)
        fd = registers.open_locked(path)
        if fd is None:
            # Made under the vault's lock, so that it cannot outlive an erasure.
            vault_path = self._vault_path(vault_id)
            with _exclusive(vault_path):
                if not vault_path.exists():
                    _discard(_lock_path(vault_path))
                    raise NotFound(f"no vault {vault_id}")
                if not path.exists():
                    if expected is not None:
                        return False
                    _discard(_temp_path(path))  # A crashed creation's leftover.
                    _replace_file(path, registers.first_content(encoded))
                    return True
            fd = registers.open_locked(path)
            if fd is None:  # Erased since.
                raise NotFound(f"no vault {vault_id}")
        try:
            return registers.swap(fd, path, expected, encoded)
        finally:
            os.close(fd)

    def delete_register(self, vault_id: str, name: str) -> None:
        """Remove the register's file, if there is one (a swap holding it meanwhile
        writes to the removed file, and is lost with it)."""
        path = self._register_path(vault_id, name)
        try:
            if not path.exists():
                return
            _discard(path)
            _sync_dir(path.parent)
        except OSError as exc:
            raise StorageError(f"cannot remove {path}: {exc}") from exc

    def _register_path(self, vault_id: str, name: str) -> Path:
        check_key(name)
        return self._vault_path(vault_id).with_name(f"{vault_id}.{name}.reg")

    def _remove_registers(self, vault_id: str) -> None:
        """Remove the vault's register files (under its lock, so none is made meanwhile)."""
        directory = self._vault_path(vault_id).parent
        removed = False
        for path in directory.glob(f"{vault_id}.*.reg*"):  # with a creation's leftover .tmp
            _discard(path)
            removed = True
        if removed:
            _sync_dir(directory)

    # Shared tables.

    def get(self, table: str, key: str) -> Document | None:
        """Return the record at ``key`` in ``table``, or None."""
        return _READS.record(self._shard_path(table, key), key)

    def insert(self, table: str, key: str, record: Document) -> None:
        """Store a record only if ``key`` is free; raise AlreadyExists otherwise."""
        path = self._shard_path(table, key)
        stored = json_document(record)
        with _locked(path) as records:
            if records.record(key) is not None:
                raise AlreadyExists(f"{table} has a record at {key} already")
            records.put({key: stored})

    def update(self, table: str, key: str, change: RecordChange) -> Document | None:
        """Atomically replace the record with ``change(current or None)``; None deletes."""

        def replace(current: Document | None) -> Document | None:
            new = change(current)
            return None if new is None else json_document(new)

        with _locked(self._shard_path(table, key)) as records:
            return records.replace(key, replace)

    def update_many(self, table: str, keys: Collection[str], change: ManyChange) -> None:
        """Atomically change several records of one table together.

        The shard files involved are locked in sorted order (so two calls cannot deadlock)
        and all stay locked until every one is written: against concurrent writers in any
        process the change is atomic. Each file is replaced atomically, but a crash between
        two files leaves the first changed and the second not: against crashes the change
        is atomic per shard file only. (The PostgreSQL backend does it in one transaction.)
        """
        check_table(table)
        shard_of = {check_key(key): self._shard_path(table, key) for key in keys}
        with ExitStack() as stack:
            files = {
                path: stack.enter_context(_locked(path)) for path in sorted(set(shard_of.values()))
            }
            current = {
                key: record
                for records in files.values()
                for key, record in records.records()
                if key in shard_of
            }
            new = checked_changes(shard_of.keys(), change(current))
            by_file: dict[Path, dict[str, Document | None]] = {}
            for key, value in new.items():
                by_file.setdefault(shard_of[key], {})[key] = value
            for path, records in files.items():  # In lock order, as documented.
                if path in by_file:
                    records.put(by_file[path])

    def delete(self, table: str, key: str) -> bool:
        """Remove a record; return whether there was one."""
        path = self._shard_path(table, key)
        if not path.exists():
            return False
        with _locked(path) as records:
            if records.record(key) is None:
                return False
            records.put({key: None})
            return True

    def scan(self, table: str) -> Iterator[tuple[str, Document]]:
        """Yield every ``(key, record)`` of a table, reading only the shard files that exist."""
        return _scan(self._root / "tables" / check_table(table))

    def partitions(self, table: str) -> dict[str, str]:
        """Each shard file of the table, stamped by its inode, size and times: every write
        renames a new file into place, so any write changes the stamp."""
        found: dict[str, str] = {}
        for path in (self._root / "tables" / check_table(table)).glob("*.json"):
            stamp = _stamp(path)
            if stamp is not None:
                found[path.stem] = ".".join(map(str, stamp))
        return found

    def scan_partition(self, table: str, partition: str) -> Iterator[tuple[str, Document]]:
        """The records of one shard file (nothing if it is gone or the name is not one)."""
        if not _SHARD_NAME.fullmatch(partition):
            return iter(())
        path = self._root / "tables" / check_table(table) / f"{partition}.json"
        return _KeyedTable.at(path).records() if path.exists() else iter(())

    def close(self) -> None:
        """Do nothing: no file stays open between operations."""

    def _vault_path(self, vault_id: str) -> Path:
        return _vault_file(self._root, check_vault_id(vault_id))

    def _shard_path(self, table: str, key: str) -> Path:
        return _shard_file(self._root, self._shards, check_table(table), check_key(key))


# Building a path costs more than reading a cached record, and the same vaults and
# vendors are read on every request, so recent paths are remembered. A path depends on
# nothing but these arguments, which are checked before they are looked up.
@lru_cache(maxsize=4096)
def _vault_file(root: Path, vault_id: str) -> Path:
    return root / "vaults" / vault_id[:2] / f"{vault_id}.json"


@lru_cache(maxsize=4096)
def _shard_file(root: Path, shards: int, table: str, key: str) -> Path:
    shard = hashlib.sha256(key.encode()).digest()[0] % shards
    return root / "tables" / table / f"{shard:02x}.json"


_SHARD_NAME = re.compile(r"[0-9a-f]{2}")


class _ReadCache:
    """What unlocked reads parsed recently, trusted only while the file is unchanged.

    Every write replaces a file by renaming a new one over it, so a file whose inode,
    size, modification and change times are all as they were still holds what was parsed,
    whichever process wrote it last. A read therefore costs one ``stat`` unless the file
    changed. Records are kept as JSON text and parsed per read, so callers always get a
    fresh copy (the read that parses the file returns what it parsed, which nothing else
    holds). Writers never use this: they read fresh under their lock.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._files: OrderedDict[Path, tuple[tuple[int, ...], dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def record(self, path: Path, key: str) -> Document | None:
        """The record at ``key`` in the file at ``path``, or None."""
        stamp = _stamp(path)
        if stamp is None:
            self._forget(path)
            return None
        with self._lock:
            cached = self._files.get(path)
        if cached is not None and cached[0] == stamp:
            text = cached[1].get(key)
            return None if text is None else cast(Document, json.loads(text))
        # The stat above came first, so what is read here is at least as new as its
        # stamp: a file replaced in between only makes the next read parse again.
        records = dict(_KeyedTable.at(path).records())
        self._remember(path, (stamp, {k: json.dumps(doc) for k, doc in records.items()}))
        return records.get(key)

    def _remember(self, path: Path, entry: tuple[tuple[int, ...], dict[str, str]]) -> None:
        with self._lock:
            self._files[path] = entry
            self._files.move_to_end(path)
            while len(self._files) > self._capacity:
                self._files.popitem(last=False)

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._files.pop(path, None)


def _stamp(path: Path) -> tuple[int, ...] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


_READS = _ReadCache()


class _FileStorage(Storage):
    """TinyDB storage for one file: read fresh every time, replaced whole on write.

    Only a writer holding the file's lock calls write(). A file whose tables are all empty
    is removed rather than written, so an erased vault or an emptied shard leaves no file.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> dict[str, dict[str, Any]] | None:
        data: dict[str, dict[str, Any]] | None = _read_json(self._path)
        if data is not None and not _is_keyed_file(data):
            raise StorageError(f"{self._path} is not a file of this store")
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        if any(data.values()):
            _replace_file(self._path, json.dumps(data).encode())
        else:
            _remove_file(self._path)


class _KeyedTable(Table):
    """TinyDB's default table holding one ``{"k": key, "v": document}`` entry per key.

    Keeping the key inside the entry leaves TinyDB its integer ids, so the file opens with
    a stock ``TinyDB(path)``. The query cache is off: the file may change between reads.
    """

    @classmethod
    def at(cls, path: Path) -> _KeyedTable:
        """Return the table in the file at ``path``; nothing is read until it is used."""
        return cls(_FileStorage(path), TinyDB.default_table_name, cache_size=0)

    def record(self, key: str) -> Document | None:
        """Return the document stored at ``key``, or None."""
        # A linear search, but Table.get(cond) would read and parse the file twice.
        return next((doc for found, doc in self.records() if found == key), None)

    def records(self) -> Iterator[tuple[str, Document]]:
        """Yield every ``(key, document)`` in the file."""
        for entry in self:
            yield entry["k"], entry["v"]

    def replace(self, key: str, change: Callable[[Document | None], _New]) -> _New:
        """Set ``key``'s document to ``change(current or None)`` (None removes it),
        reading and writing the file once; return the new document.

        Nothing is written if ``change`` raises, or if it removes a key that is absent.
        """
        outcome: list[_New] = []

        def rebuild(table: dict[int, Mapping[str, Any]]) -> None:
            merged = {entry["k"]: entry["v"] for entry in table.values()}
            new = change(merged.get(key))
            outcome.append(new)
            if new is None and key not in merged:
                raise _Unchanged
            merged[key] = new
            _refill(table, merged)

        with suppress(_Unchanged):
            self._update_table(rebuild)
        return outcome[0]

    def put(self, values: Mapping[str, Document | None]) -> None:
        """Set each key's document, removing those given None, in one write of the file."""

        def rebuild(table: dict[int, Mapping[str, Any]]) -> None:
            merged = {entry["k"]: entry["v"] for entry in table.values()}
            merged.update(values)
            _refill(table, merged)

        self._update_table(rebuild)


class _Unchanged(Exception):
    """Raised inside a table update to leave the file as it is."""


def _refill(table: dict[int, Mapping[str, Any]], merged: Mapping[str, Document | None]) -> None:
    """Make ``table`` hold one entry per key of ``merged`` that has a document."""
    entries = [{"k": key, "v": doc} for key, doc in merged.items() if doc is not None]
    table.clear()
    table.update(enumerate(entries, start=1))


def _scan(directory: Path) -> Iterator[tuple[str, Document]]:
    for path in directory.glob("*.json"):
        yield from _KeyedTable.at(path).records()


def _check_format(path: Path, shards: int) -> None:
    """Record the format and shard count on first use; refuse a root made with others,
    and one of an earlier format that :func:`upgrade_store` has not upgraded."""
    wanted = {"format": FORMAT, "shards": shards}
    found = _read_json(path)
    if found is None:
        with _exclusive(path):
            found = _read_json(path)
            if found is None:
                _replace_file(path, json.dumps(wanted).encode())
                found = wanted
    if _upgradable(found):
        raise OutdatedStore(
            f"the store at {path.parent} has format {found['format']}, written by an earlier "
            f"version of vrm-vault; stop every vrm process of that version, then run "
            f"`vrm store upgrade`"
        )
    if not _well_formed(found, FORMAT) or found != wanted:
        raise StorageError(f"{path} says {found}, but the store was opened as {wanted}")


def upgrade_store(root: Path) -> int:
    """Mark the store at ``root`` as this version's format; return the format it had.

    Every earlier format this version can upgrade is read as it is, so the upgrade
    rewrites only ``store.json``; it is for the operator to run once no process of the
    earlier version uses the store (such a process would misread what this version
    writes, and would accept refresh tokens already used). A store already at this format
    is left as it is. Raises NotFound if ``root`` holds no store, and StorageError for a
    format this version does not know.
    """
    path = Path(root) / "store.json"
    if not path.exists():
        raise NotFound(f"no store at {root} (no store.json)")
    with _exclusive(path):
        found = _read_json(path)
        if _upgradable(found):
            _replace_file(path, json.dumps({**found, "format": FORMAT}).encode())
            return int(found["format"])
    if not _well_formed(found, FORMAT):
        raise StorageError(f"{path} says {found}, a format this version cannot upgrade")
    return FORMAT


def _upgradable(found: object) -> bool:
    """Whether a ``store.json`` is whole and of a format this version can upgrade."""
    return any(_well_formed(found, old) for old in UPGRADABLE)


def _well_formed(found: object, format_number: int) -> bool:
    """Whether a ``store.json`` holds exactly ``format_number`` and a valid shard count."""
    return (
        isinstance(found, dict)
        and found.keys() == {"format", "shards"}
        and type(found["format"]) is int
        and found["format"] == format_number
        and _valid_shards(found["shards"])
    )


def _valid_shards(count: object) -> bool:
    """Whether ``count`` is a shard count a store can have: an integer from 1 to 256."""
    return type(count) is int and 1 <= count <= 256


@contextmanager
def _locked(path: Path) -> Iterator[_KeyedTable]:
    """Hold the exclusive lock of the data file at ``path`` and yield its table."""
    with _exclusive(path):
        yield _KeyedTable.at(path)


@contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the file at ``path``, creating its directory if needed.

    A temp file found under the lock is a crashed writer's leftover, so it is removed.
    """
    try:
        _make_dir(path.parent)
        fd = _acquire(_lock_path(path))
    except OSError as exc:
        raise StorageError(f"cannot lock {path}: {exc}") from exc
    try:
        _discard(_temp_path(path))
        yield
    finally:
        os.close(fd)


def _acquire(lock_path: Path) -> int:
    """Open and flock ``lock_path``; return the descriptor, which holds the lock.

    If the lock file was removed (its vault deleted) while this process waited, the lock
    it got is on a file nobody else will open, so it tries again with a fresh one.
    """
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_same_file(fd, lock_path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _is_same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _read_json(path: Path) -> Any:
    """Return the JSON in ``path``, or None if there is no file."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise StorageError(f"{path} is not valid JSON") from exc


def _is_keyed_file(data: object) -> bool:
    return isinstance(data, dict) and all(
        isinstance(table, dict) and all(_is_entry(entry) for entry in table.values())
        for table in data.values()
    )


def _is_entry(entry: object) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("k"), str)
        and isinstance(entry.get("v"), dict)
    )


def _replace_file(path: Path, payload: bytes) -> None:
    """Make ``payload`` the content of ``path`` in one step, durably, via a temp file."""
    temp = _temp_path(path)
    try:
        with open(temp, "xb", opener=_private) as file:
            file.write(payload)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
        _sync_dir(path.parent)
    except OSError as exc:
        _discard(temp)
        raise StorageError(f"cannot write {path}: {exc}") from exc


def _remove_file(path: Path) -> None:
    try:
        os.unlink(path)
        _sync_dir(path.parent)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot remove {path}: {exc}") from exc


def _make_dir(path: Path) -> None:
    """Create ``path`` and any missing parents, mode 0700, and make each entry durable."""
    if path.is_dir():
        return
    _make_dir(path.parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _discard(path: Path) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def _lock_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.lock")


def _temp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp")
