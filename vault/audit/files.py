"""The few POSIX file operations the audit log is built from.

Files are opened once as raw descriptors and written with ``pwrite`` at explicit offsets,
so threads sharing a descriptor never race on a file position, and a record lands where
the log's size says it belongs whatever a crashed writer left behind. Files are created
mode 0600 and directories 0700: the log names pseudonyms, but they are still personal.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from vault.audit.errors import LogCorrupted

#: Flush a file's data (and its size) to disk; fdatasync where the platform has it.
datasync = getattr(os, "fdatasync", os.fsync)


def _find_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        found = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    found.argtypes = [ctypes.c_int]
    found.restype = ctypes.c_int
    return found


_syncfs = _find_syncfs()


def sync_file_system(fd: int) -> None:
    """Flush every file (data and names) of the file system holding ``fd`` to disk.

    Linux's ``syncfs``: one journal commit for any number of files written since the last,
    where an fsync each would cost one each. Elsewhere ``sync``, which flushes every file
    system.
    """
    if _syncfs is None:
        os.sync()
        return
    if _syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def open_file(path: str | Path) -> tuple[int, bool]:
    """Open ``path`` for reading and writing, creating it; return ``(fd, created)``."""
    flags = os.O_RDWR | os.O_CLOEXEC
    try:
        return os.open(path, flags), False
    except FileNotFoundError:
        pass
    try:
        return os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o600), True
    except FileExistsError:
        return os.open(path, flags), False


def make_dir(path: Path, *, sync: bool) -> bool:
    """Create ``path`` and missing parents, mode 0700; return whether it was created.

    With ``sync`` each new entry is made durable in its parent directory.
    """
    if path.is_dir():
        return False
    make_dir(path.parent, sync=sync)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    if sync:
        sync_dir(path.parent)
    return True


def sync_dir(directory: Path) -> None:
    """Make the entries of ``directory`` (new files, renames) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_size(fd: int) -> int:
    """The current length in bytes of the open file ``fd``."""
    return os.fstat(fd).st_size


def read_exact(fd: int, count: int, offset: int, what: str) -> bytes:
    """Read ``count`` bytes at ``offset``; raise LogCorrupted naming ``what`` if short."""
    data = os.pread(fd, count, offset)
    if len(data) != count:
        raise LogCorrupted(f"{what}: wanted {count} bytes at {offset}, found {len(data)}")
    return data


def write_at(fd: int, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (pwrite may write less than asked)."""
    written = os.pwrite(fd, data, offset)
    view = memoryview(data)[written:]
    while view:
        offset += written
        written = os.pwrite(fd, view, offset)
        view = view[written:]


def replace_file(path: Path, payload: bytes, *, sync: bool) -> None:
    """Make ``payload`` the content of ``path`` in one step, via a temp file and a rename."""
    temp = path.with_name(f"{path.name}.tmp")
    with suppress(FileNotFoundError):
        os.unlink(temp)
    with open(temp, "xb", opener=_private) as file:
        file.write(payload)
        file.flush()
        if sync:
            os.fsync(file.fileno())
    os.replace(temp, path)
    if sync:
        sync_dir(path.parent)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_CLOEXEC, 0o600)


def remove_file(path: Path, *, sync: bool) -> None:
    """Remove ``path`` if it exists."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    if sync:
        sync_dir(path.parent)
