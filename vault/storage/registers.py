"""A register on disk: one small value in a file of two fixed slots, set in place.

The TinyDB store keeps each vault register (see :meth:`vault.storage.base.Store.read_register`)
in a file of its own, ``SLOTS`` slots of ``SLOT_BYTES`` each (a slot a 4 KiB block, so a
block torn by a power cut spoils one slot, never both). A slot holds::

    b"VRMR" | format (1 byte) | sequence (8) | length (2) | value (length) | zeros | digest (16)

where the digest is the first 16 bytes of SHA-256 over everything before it in the slot. The
register's value is the one in the valid slot with the higher sequence number; a slot whose
digest does not match (never written, or torn by a crash in the middle of its write) is
ignored.

A swap writes the *other* slot, the one not holding the current value, with the next
sequence number, then ``fdatasync``\\ s: one write of one block into a file that keeps its
size and place, with no temporary file, rename or directory sync. The slot holding the
current value is never written, so a crash part-way leaves the value as it was before the
swap, which had not returned. Swaps take an exclusive ``flock`` on the file; reads take none,
for the same reason. A swap whose ``fdatasync`` fails spoils the slot it wrote before it
raises, so the register reads as before the swap.

A register file appears whole: it is written and synced under a temporary name with its
first value in slot 0, then renamed into place and its directory synced. So a file with no
valid slot is damaged, and reading it raises StorageError rather than pass for a register
never set.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
from contextlib import suppress
from pathlib import Path
from typing import Any

from vault.errors import StorageError
from vault.storage.base import REGISTER_BYTES

SLOT_BYTES = 4096
SLOTS = 2
FILE_BYTES = SLOT_BYTES * SLOTS
_MAGIC = b"VRMR"
_FORMAT = 1
_HEADER = struct.Struct(">4sBQH")
_DIGEST_BYTES = 16
_ROOM = SLOT_BYTES - _HEADER.size - _DIGEST_BYTES
assert _ROOM >= REGISTER_BYTES


def read(path: Path) -> dict[str, Any] | None:
    """The register's value, or None if there is no file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    try:
        data = os.pread(fd, FILE_BYTES, 0)
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc}") from exc
    finally:
        os.close(fd)
    return _current(data, path)[1]


def open_locked(path: Path) -> int | None:
    """Open the register file at ``path`` and hold its lock; the descriptor, or None if
    there is no file."""
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
    except OSError as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    return fd


def first_content(encoded: bytes) -> bytes:
    """The whole content of a new register file holding ``encoded``: slot 0 set, slot 1
    never written. Its maker writes it under a temporary name and renames it into place."""
    return _slot(1, encoded).ljust(FILE_BYTES, b"\0")


def swap(fd: int, path: Path, expected: Any, encoded: bytes) -> bool:
    """Under the lock ``fd`` holds, set the register to ``encoded`` if it holds ``expected``.

    Return True once the new value is durable, False (nothing written) if it held
    something else. If the new value cannot be made durable, its slot is taken back
    before StorageError is raised, so the register reads as before the swap: a caller
    told the swap failed, and trying again, finds the value it expected.
    """
    try:
        (sequence, index, _), value = _current(os.pread(fd, FILE_BYTES, 0), path)
        if value != expected:
            return False
        offset = (index + 1) % SLOTS * SLOT_BYTES
        os.pwrite(fd, _slot(sequence + 1, encoded), offset)
        try:
            os.fdatasync(fd)
        except OSError:
            _take_back(fd, offset)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc}") from exc
    return True


def _take_back(fd: int, offset: int) -> None:
    """Spoil the slot at ``offset``, just written but not synced, so that the slot it did
    not touch is the current one again.

    After a failed ``fdatasync`` Linux keeps the written page in its cache, where every
    later read would find the new value. The spoiled slot fails its check wherever it
    lands. If this write fails, the new value stays; if only its sync fails, the zeros
    may never reach the disk, and after a restart the new value may be back. Either way
    a retry is then refused as a reuse, which fails closed.
    """
    with suppress(OSError):
        os.pwrite(fd, bytes(SLOT_BYTES), offset)
        os.fdatasync(fd)


def _slot(sequence: int, encoded: bytes) -> bytes:
    if len(encoded) > _ROOM:
        raise ValueError(f"a register slot holds at most {_ROOM} bytes, not {len(encoded)}")
    body = _HEADER.pack(_MAGIC, _FORMAT, sequence, len(encoded)) + encoded
    body = body.ljust(SLOT_BYTES - _DIGEST_BYTES, b"\0")
    return body + hashlib.sha256(body).digest()[:_DIGEST_BYTES]


def _newest(data: bytes) -> tuple[int, int, bytes] | None:
    """(sequence, slot index, value bytes) of the newest valid slot in ``data``, or None."""
    best: tuple[int, int, bytes] | None = None
    for index in range(SLOTS):
        slot = data[index * SLOT_BYTES : (index + 1) * SLOT_BYTES]
        if len(slot) < SLOT_BYTES:
            continue
        body, digest = slot[:-_DIGEST_BYTES], slot[-_DIGEST_BYTES:]
        if hashlib.sha256(body).digest()[:_DIGEST_BYTES] != digest:
            continue
        magic, fmt, sequence, length = _HEADER.unpack_from(body)
        if magic != _MAGIC or fmt != _FORMAT or length > _ROOM:
            continue
        if best is None or sequence > best[0]:
            value = body[_HEADER.size : _HEADER.size + length]
            best = (sequence, index, value)
    return best


def _current(data: bytes, path: Path) -> tuple[tuple[int, int, bytes], dict[str, Any]]:
    """The newest valid slot in ``data`` (as :func:`_newest`) and its value; StorageError
    if no slot is valid or the valid one holds no JSON object: the register is damaged."""
    newest = _newest(data)
    if newest is None:
        raise StorageError(f"{path} holds no valid slot: the register is damaged")
    try:
        value = json.loads(newest[2])
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise StorageError(f"{path}: a slot passed its check but holds no JSON object")
    return newest, value
