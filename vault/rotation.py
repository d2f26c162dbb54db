"""Key-encryption key rotation: rewrap every data key, then retire what nothing uses.

``rotate`` is safe to interrupt at any point and finishes when run again: while an older
KEK version still exists, a run completes that rotation instead of starting another.
Profile data is never re-encrypted; only the wrapped data keys change.

With KEK files, no data key is ever left wrapped under a version a rotation destroyed,
however server processes creating vaults meanwhile are timed, provided one rotation runs at
a time and each creation runs to its end. (A sign-up that dies between storing its key and
looking at the versions again can leave its key under a destroyed version; its vault
document is written only after that, so no data is under the key. A rotation counts such
keys as orphans and goes on; one under a vault that has a document stops it before it
changes anything.)
A server wraps a new key under the version current when it looks, stores it, then
reads the version list again and, while that version is gone, rewraps the key it still
holds under the current one (:meth:`vault.datakeys.DataKeys.create`). A rotation reads
the versions it retires into memory, moves their files aside (from then on no process
finds them), and only then scans the table once more, rewrapping from memory every key
still under one of them; it destroys the set-aside files last. So a key stored before
that last scan begins is found by it, and any other was stored after the files were
moved, so its creator, looking after storing, sees its version gone and rewraps it. This
relies on a scan of the store seeing every write that returned before it began. A run
cut short after the move leaves the files aside with their keys intact: the next run
reads them back, rewraps whatever is still under them, and only then destroys them.
``vrm keys rotate`` holds :func:`one_rotation`'s lock for the whole run, so a second run
started meanwhile stops at once, before it changes anything.

With ``VRM_KEK`` a process knows only the versions the variable held when it started:
every server must be restarted with the new version added before the rotation runs, or a
server still on the old variable keeps wrapping new keys under the version the rotation
then names for removal.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from keys import Keyring, KeyringError
from keys.errors import RotationRunning, UnknownKeyVersion
from vault.datakeys import TABLE, DataKeys
from vault.errors import NotFound
from vault.storage.base import Document, Store

Progress = Callable[[int, int], None]
LOCK_NAME = "rotation.lock"
LOCK_TRIES = 5
LOCK_PAUSE = 0.02  # seconds between tries


@dataclass
class RotationReport:
    """What a run of ``rotate`` did."""

    new_version: int | None = None
    current_version: int = 0
    rewrapped: int = 0
    retired: list[int] = field(default_factory=list)
    unused_but_kept: list[int] = field(default_factory=list)
    orphans: set[str] = field(default_factory=set)
    """Vaults with no document whose data key is under a version that is gone: a sign-up
    that died between storing its key and writing its vault (with key files, also one
    still under way, which rewraps its own key). Left as they are, never a reason to stop."""
    unlinked: dict[int, str] = field(default_factory=dict)
    """Retired versions whose set-aside file was a symbolic link: the link is removed, and
    the file it pointed at (the value) is the operator's to wipe."""

    @property
    def orphaned(self) -> int:
        """How many data keys :attr:`orphans` holds."""
        return len(self.orphans)


def key_usage(store: Store) -> Counter[int]:
    """How many data keys each KEK version wraps."""
    return Counter(int(record["kek_version"]) for _, record in store.scan(TABLE))


@contextmanager
def one_rotation(lock: Path) -> Iterator[None]:
    """Hold the rotation lock at ``lock`` (a private file, created if need be) while the
    block runs; raise RotationRunning if another process or thread holds it.

    The lock is the file's ``flock``, so a rotation that dies, however it dies, lets go of
    it, and the one run after it finishes its work. The file stays, empty. A lock found
    held is tried again a few times over a tenth of a second, so that the instant
    :func:`rotation_running` holds it to look does not pass for a running rotation.
    """
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == LOCK_TRIES - 1:
                    raise RotationRunning(str(lock)) from None
                time.sleep(LOCK_PAUSE)
        yield
    finally:
        os.close(fd)


def rotation_running(lock: Path) -> bool:
    """Whether a rotation holds the lock at ``lock`` now (without waiting for it)."""
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def keys_under(store: Store, versions: set[int]) -> dict[int, tuple[int, int]]:
    """For each of ``versions`` that has data keys under it: how many belong to no vault
    (orphans) and how many to a vault that has a document."""
    found: dict[int, tuple[int, int]] = {}
    for _, version, owned in _keys_under_gone(store, lambda v: v not in versions):
        orphans, lost = found.get(version, (0, 0))
        found[version] = (orphans, lost + 1) if owned else (orphans + 1, lost)
    return found


def _keys_under_gone(
    store: Store, readable: Callable[[int], bool]
) -> Iterator[tuple[str, int, bool]]:
    """Each data key under a version ``readable`` refuses, as (vault, version, whether the
    vault has a document); a key whose sign-up has just moved it on is left out."""
    for vault_id, record in store.scan(TABLE):
        version = int(record["kek_version"])
        if readable(version):
            continue
        if not _has_document(store, vault_id):
            yield vault_id, version, False
        elif not _moved_on(store, vault_id, record, readable):
            yield vault_id, version, True


def rotate(store: Store, keyring: Keyring, *, progress: Progress | None = None) -> RotationReport:
    """Rotate to a new KEK version, or finish a rotation an earlier run began.

    ``progress(done, total)`` is called after each data key is rewrapped. Raises KeysLost,
    having changed nothing, if a vault's data key is under a version whose key is gone.
    """
    report = RotationReport()
    report.orphans = _check_nothing_lost(store, keyring)
    if _nothing_in_progress(store, keyring):
        report.new_version = keyring.source.add_version()
    report.current_version = current = keyring.current_version()
    _finish_set_aside(store, keyring, report)
    pending = [vid for vid, rec in store.scan(TABLE) if int(rec["kek_version"]) != current]
    _rewrap_each(store, keyring, pending, report, progress)
    _retire_unused(store, keyring, report)
    # A sign-up still under way when the run began may have rewrapped its own key since.
    listed = set(keyring.source.versions())
    report.orphans = {v for v in report.orphans if _under_unlisted(store, v, listed)}
    return report


def _under_unlisted(store: Store, vault_id: str, listed: set[int]) -> bool:
    record = store.get(TABLE, vault_id)
    return record is not None and int(record["kek_version"]) not in listed


def _check_nothing_lost(store: Store, keyring: Keyring) -> set[str]:
    """The vaults without a document whose data key is under a version no key is left for
    (orphans, see RotationReport); raise KeysLost if any such key belongs to a vault that
    has a document, before the run changes anything."""
    readable = {v for v in keyring.source.versions() if _loads(keyring, v)}
    readable |= {v for v, key in keyring.source.retiring().items() if key is not None}
    found = list(_keys_under_gone(store, readable.__contains__))
    lost = {vault_id: version for vault_id, version, owned in found if owned}
    if lost:
        raise KeysLost(lost)
    return {vault_id for vault_id, _, owned in found if not owned}


def _loads(keyring: Keyring, version: int) -> bool:
    """Whether the key of a listed ``version`` can be read (a key file may be damaged)."""
    try:
        keyring.source.load(version)
    except (KeyringError, OSError):
        return False
    return True


def _moved_on(store: Store, vault_id: str, seen: Document, readable: Callable[[int], bool]) -> bool:
    """Whether the data key of ``vault_id`` is no longer ``seen``, and is now under a
    readable version: a sign-up under way rewrapped its own key and wrote its vault."""
    now = store.get(TABLE, vault_id)
    return now != seen and (now is None or readable(int(now["kek_version"])))


def _nothing_in_progress(store: Store, keyring: Keyring) -> bool:
    if keyring.source.retiring():
        return False
    versions = keyring.source.versions()
    if len(versions) > 1:
        return False
    # A key under a version that is gone is an orphan (lost ones stopped the run), not work.
    return set(key_usage(store)) & set(versions) <= {keyring.current_version()}


def _rewrap_each(
    store: Store,
    keyring: Keyring,
    vault_ids: list[str],
    report: RotationReport,
    progress: Progress | None = None,
) -> None:
    """Rewrap the data key of each of ``vault_ids`` under ``keyring``'s current version.

    A key whose version ``keyring`` cannot load is an orphan when its vault has no
    document (counted once in ``report.orphans``). If the vault has one, a sign-up that was
    under way has just rewrapped its key and written its vault, so the rewrap is tried
    again; a vault whose own key is lost was refused before the run changed anything.
    """
    datakeys = DataKeys(store, keyring)
    for done, vault_id in enumerate(vault_ids, start=1):
        try:
            if datakeys.rewrap(vault_id):
                report.rewrapped += 1
        except UnknownKeyVersion:
            if not _has_document(store, vault_id):
                report.orphans.add(vault_id)
            elif datakeys.rewrap(vault_id):
                report.rewrapped += 1
        if progress is not None:
            progress(done, len(vault_ids))


def _has_document(store: Store, vault_id: str) -> bool:
    try:
        store.read_vault(vault_id)
    except NotFound:
        return False
    return True


def _finish_set_aside(store: Store, keyring: Keyring, report: RotationReport) -> None:
    """Finish the versions a run cut short left set aside: rewrap, from the set-aside
    keys, every data key still under one of them, then destroy them.

    No process wraps a new key under a set-aside version (it is no longer listed), and
    one that looked it up before rewraps its own key once it sees it gone, so after this
    scan nothing is left under them. A set-aside file that no longer holds a key (its
    zeroing was under way) is destroyed all the same: its run had finished its last scan.
    """
    left = keyring.source.retiring()
    if not left:
        return
    held = {version: key for version, key in left.items() if key is not None}
    held[report.current_version] = keyring.source.load(report.current_version)
    _rewrap_stragglers(store, Keyring(_InMemoryKeks(held)), set(left), report)
    _destroy(keyring, sorted(left), report)


def _retire_unused(store: Store, keyring: Keyring, report: RotationReport) -> None:
    """Retire every older version no data key uses, rewrap any key stored under one of
    them after the usage scan, and only then destroy them.

    Why the second look: a running server wraps a new vault's data key under the version
    that is current when it looks and stores it a moment later. If it looked before this
    run added the new version and stored after the usage scan below, its key is under a
    version the scan found unused. So the retired versions' keys are read into memory
    and their files set aside (no process finds them from then on) before the table is
    scanned again: a key found under one of them is rewrapped under the current version
    from memory. A key stored after that scan began is rewrapped by its creator, which
    checks after storing that its version still exists (see the module docstring).

    Versions above the current one (added by another run meanwhile) are never retired.
    """
    current = report.current_version
    in_use = set(key_usage(store))
    unused = [v for v in keyring.source.versions() if v < current and v not in in_use]
    if not unused:
        return
    remembered = Keyring(_InMemoryKeks({v: keyring.source.load(v) for v in [*unused, current]}))
    set_aside = []
    for version in unused:
        if keyring.source.retire(version):
            set_aside.append(version)
        else:
            report.unused_but_kept.append(version)
    _rewrap_stragglers(store, remembered, set(unused), report)
    _destroy(keyring, set_aside, report)


def _rewrap_stragglers(
    store: Store, keyring: Keyring, versions: set[int], report: RotationReport
) -> None:
    """Rewrap, under ``keyring``'s current version, every data key still under ``versions``."""
    stragglers = [vid for vid, rec in store.scan(TABLE) if int(rec["kek_version"]) in versions]
    _rewrap_each(store, keyring, stragglers, report)


def _destroy(keyring: Keyring, versions: list[int], report: RotationReport) -> None:
    """Destroy the set-aside ``versions``, the last step of retiring them."""
    for version in versions:
        left_to_wipe = keyring.source.destroy_retired(version)
        if left_to_wipe is not None:
            report.unlinked[version] = left_to_wipe
        report.retired.append(version)


class KeysLost(KeyringError):
    """Vaults whose data key is under a key-encryption key version that is gone."""

    def __init__(self, lost: Mapping[str, int]) -> None:
        self.lost = dict(lost)
        versions = ", ".join(str(v) for v in sorted(set(self.lost.values())))
        shown = ", ".join(sorted(self.lost)[:5]) + (", ..." if len(self.lost) > 5 else "")
        super().__init__(
            f"{len(self.lost)} vault(s) have their data key under key-encryption key "
            f"version(s) {versions}, which are gone or cannot be read, so they cannot be "
            f"opened ({shown}); nothing was changed. Put that version back (its key file "
            "keys/kek/v<N>.key, mode 0600, from a backup, or its entry in VRM_KEK) and "
            "run again"
        )


class _InMemoryKeks:
    """KEK versions held in memory, for rewrapping once their files are set aside."""

    def __init__(self, keys: Mapping[int, bytes]) -> None:
        self._keys = dict(keys)

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def load(self, version: int) -> bytes:
        try:
            return self._keys[version]
        except KeyError:
            raise UnknownKeyVersion(version) from None

    def add_version(self) -> int:
        raise KeyringError("keys held in memory for a rotation take no new version")

    def retire(self, version: int) -> bool:
        return False

    def retiring(self) -> dict[int, bytes | None]:
        return {}

    def destroy_retired(self, version: int) -> str | None:
        return None

    def describe(self) -> str:
        return "the keys a rotation holds in memory"
