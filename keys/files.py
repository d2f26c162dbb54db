"""Key files on disk: created private, checked private on every load, destroyed on retirement."""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
from pathlib import Path

from keys.errors import InsecureKeyDirectory, InsecureKeyFile, InvalidKeyMaterial

KEY_BYTES = 32


def ensure_private_dir(path: Path, *, may_be_link: bool = False) -> Path:
    """Create ``path`` (and parents) if needed, readable by its owner only.

    A directory that exists already must belong to this user; if group or others may use
    it, it is made private (mode 0700). Unless ``may_be_link`` (the data directory an
    operator names may be a link to where the data lives), it must not be a symbolic
    link: keys written through a link planted there would land wherever it points.
    InsecureKeyDirectory otherwise.
    """
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    found = path.lstat()
    if stat.S_ISLNK(found.st_mode):
        if not may_be_link:
            raise InsecureKeyDirectory(str(path), "is a symbolic link")
        found = path.stat()
    if found.st_uid != os.getuid():
        raise InsecureKeyDirectory(str(path), "belongs to another user")
    if stat.S_IMODE(found.st_mode) & 0o077:
        path.chmod(0o700)
    return path


def check_private(path: Path) -> None:
    """Raise InsecureKeyFile if group or others may read or write ``path``."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InsecureKeyFile(str(path), mode)


def private_temporary(path: Path) -> tuple[Path, int]:
    """A new file beside ``path`` to write it through, open for writing, mode 0600.

    Its name is random and it is created exclusively and never through a link: nothing
    planted there, nor another process that happens to share this one's pid, can take it
    over. The caller moves it into place (or removes it).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def write_secret_file(path: Path, data: bytes) -> None:
    """Write a new secret file with mode 0600, atomically; never replace an existing one.

    The data goes to a temporary file that is fsynced and then hard-linked into place, so
    a crash leaves either no key file or a complete one, and two processes creating the
    same key at once cannot both succeed: the second gets FileExistsError.
    """
    ensure_private_dir(path.parent)
    tmp = _synced_temporary(path, data)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink()
    _fsync_dir(path.parent)


def _synced_temporary(path: Path, data: bytes) -> Path:
    """A private temporary file beside ``path`` holding ``data``, fsynced (see
    :func:`private_temporary`); removed again if it cannot be written."""
    tmp, fd = private_temporary(path)
    try:
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def read_secret_file(path: Path) -> bytes:
    """Read a secret file after checking that only its owner can read it."""
    check_private(path)
    return path.read_bytes()


def write_key_file(path: Path, key: bytes) -> None:
    """Store a symmetric key as base64 text in a new 0600 file."""
    write_secret_file(path, base64.b64encode(key) + b"\n")


def read_key_file(path: Path) -> bytes:
    """Load a symmetric key written by :func:`write_key_file`."""
    return decode_key(read_secret_file(path).decode("ascii", "replace").strip(), str(path))


def decode_key(text: str, where: str) -> bytes:
    """Decode a base64 256-bit key, naming ``where`` it came from if it is malformed."""
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyMaterial(f"{where}: key is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise InvalidKeyMaterial(f"{where}: key must be {KEY_BYTES} bytes, not {len(key)}")
    return key


def load_or_create_key(path: Path) -> bytes:
    """Return the key stored at ``path``, creating a random one on first use."""
    if not path.exists():
        # Another process may create it first; then use theirs.
        with contextlib.suppress(FileExistsError):
            write_key_file(path, os.urandom(KEY_BYTES))
    return read_key_file(path)


def aside_path(path: Path) -> Path:
    """Where :func:`set_aside` moves the key file ``path``: ``.<name>.destroy`` beside it."""
    return path.with_name(f".{path.name}.destroy")


def set_aside(path: Path) -> None:
    """Move a key file out of its name (to :func:`aside_path`), durably.

    From then on nothing finds the key under its name, while its bytes stay on disk for
    whoever must still use them before :func:`destroy_file` (a rotation rewrapping the
    last data keys under it, or the next run of one cut short).
    """
    os.replace(path, aside_path(path))
    _fsync_dir(path.parent)


def destroy_file(path: Path) -> None:
    """Overwrite a key file with zeros, sync, and unlink it, if there is one.

    A symbolic link is refused (OSError), never followed to zero what it points at. On
    journaling or copy-on-write file systems the old blocks may survive; the README tells
    operators to keep the key directory on storage they can wipe.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        size = os.fstat(fd).st_size
        zeros = memoryview(bytes(size))
        while zeros:
            zeros = zeros[os.write(fd, zeros) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def link_aside(path: Path) -> None:
    """Give the key file ``path`` a second name, :func:`aside_path`, durably; its own name
    keeps the key, so a process that starts meanwhile still finds it."""
    os.link(path, aside_path(path))
    _fsync_dir(path.parent)


def replace_secret_file(path: Path, data: bytes) -> None:
    """Put ``data`` at ``path`` in one step, mode 0600, replacing what was there: written
    and fsynced under a temporary name, then renamed over it, and the directory synced."""
    tmp = _synced_temporary(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def remove_link(path: Path) -> None:
    """Remove the symbolic link ``path`` (never what it points at), durably."""
    path.unlink()
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
