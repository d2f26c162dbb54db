"""Which log entries name a vault: the index behind a customer's access history.

``by-vault/<key[:2]>/<key>.bin`` lists, as 8-byte big-endian integers in rising order, the
index of every entry whose ``vault`` is ``key`` (a vault pseudonym). The index is derived
data: the log appends to it in the same locked append as the entry, and can rebuild it all
from ``entries.jsonl``. A record at or past the log's size is the trace of an append that
never finished; readers skip it and the next append for that vault cuts it.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from vault.audit.files import (
    datasync,
    file_size,
    make_dir,
    open_file,
    remove_file,
    replace_file,
    sync_dir,
    write_at,
)

#: What a vault pseudonym may look like: safe as a file name on every file system.
KEY = re.compile(r"[0-9a-z][0-9a-z_-]{1,127}")

_RECORD = struct.Struct(">Q")


def check_key(key: object) -> str:
    """Return ``key`` if it can name an index file; raise ValueError otherwise."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError(f"a vault pseudonym is 2-128 of [0-9a-z_-], not {key!r}")
    return key


class VaultIndex:
    """The per-vault index files under ``directory``."""

    def __init__(self, directory: Path, *, sync: bool) -> None:
        self._directory = directory
        self._root = os.fspath(directory)
        self._sync = sync

    def path(self, key: str) -> Path:
        """The index file of the vault ``key``."""
        return Path(self._name(key))

    def _name(self, key: str) -> str:
        return f"{self._root}/{key[:2]}/{check_key(key)}.bin"

    def read(self, key: str) -> list[int]:
        """Every index recorded for ``key``, in order, torn records included."""
        try:
            with open(self._name(key), "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return []
        whole = len(data) - len(data) % _RECORD.size
        return [index for (index,) in _RECORD.iter_unpack(data[:whole])]

    def add(self, key: str, index: int) -> int:
        """Record ``index`` for ``key``, first cutting records at or past it; return the cut.

        ``index`` is the entry being appended, so a record at or past it can only be left
        by an append that never finished.
        """
        with self._writing(key) as fd:
            kept, cut = _keep_below(fd, index)
            write_at(fd, _RECORD.pack(index), kept * _RECORD.size)
        return cut

    def rewrite_from(self, key: str, start: int, indexes: Sequence[int]) -> bool:
        """Make ``indexes`` the records of ``key`` at or past ``start``; return whether
        anything had to change (a torn record, or records other than those)."""
        wanted = b"".join(_RECORD.pack(index) for index in indexes)
        with self._writing(key) as fd:
            kept, length = _below(fd, start)
            offset = kept * _RECORD.size
            if length - offset == len(wanted) and os.pread(fd, len(wanted), offset) == wanted:
                return False
            os.ftruncate(fd, offset)
            write_at(fd, wanted, offset)
        return True

    @contextmanager
    def _writing(self, key: str) -> Iterator[int]:
        """The index file of ``key``, created if need be, open for writing; with ``sync``,
        fsynced (and a new file's name made durable) once the caller is done."""
        name = self._name(key)
        try:
            fd, created = open_file(name)
        except FileNotFoundError:
            make_dir(Path(name).parent, sync=self._sync)
            fd, created = open_file(name)
        try:
            yield fd
            if self._sync:
                datasync(fd)
        finally:
            os.close(fd)
        if self._sync and created:
            sync_dir(Path(name).parent)

    def trim(self, key: str, limit: int) -> int:
        """Cut the records of ``key`` at or past ``limit``; return how many were cut."""
        try:
            fd = os.open(self._name(key), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            cut = _keep_below(fd, limit)[1]
            if cut and self._sync:
                datasync(fd)
        finally:
            os.close(fd)
        return cut

    def keys(self) -> Iterator[str]:
        """The key of every index file (files not named like one are not the index's)."""
        for path in self._directory.glob("*/*.bin"):
            key = path.name.removesuffix(".bin")
            if KEY.fullmatch(key) and path.parent.name == key[:2]:
                yield key

    def replace_all(self, indexes: Mapping[str, Sequence[int]]) -> None:
        """Make ``indexes`` the whole index: write each file anew, remove all others."""
        for key in set(self.keys()) - set(indexes):
            remove_file(self.path(key), sync=self._sync)
        for key, found in indexes.items():
            path = self.path(key)
            make_dir(path.parent, sync=self._sync)
            payload = b"".join(_RECORD.pack(index) for index in found)
            replace_file(path, payload, sync=self._sync)


def _keep_below(fd: int, limit: int) -> tuple[int, int]:
    """Cut the file's torn last record and records at or past ``limit``; return (kept, cut).

    A torn (partial) record counts as one cut record.
    """
    kept, length = _below(fd, limit)
    if kept * _RECORD.size != length:
        os.ftruncate(fd, kept * _RECORD.size)
    return kept, length // _RECORD.size - kept + (length % _RECORD.size != 0)


def _below(fd: int, limit: int) -> tuple[int, int]:
    """How many whole records from the start to keep below ``limit``, and the file's length.

    Read from the end: records rise, so one that does not rise above the record before it
    (a page a crash left zeroed) is cut like one at or past ``limit``, with all after it.
    """
    length = file_size(fd)
    kept = length // _RECORD.size
    while kept:
        last = _record(fd, kept - 1)
        if last < limit and (kept == 1 or _record(fd, kept - 2) < last):
            break
        kept -= 1
    return kept, length


def _record(fd: int, position: int) -> int:
    value: int = _RECORD.unpack(os.pread(fd, _RECORD.size, position * _RECORD.size))[0]
    return value
