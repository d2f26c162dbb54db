"""Key-encryption key rotation: rewrap every data key, then retire what nothing uses.

``rotate`` is safe to interrupt at any point and finishes when run again: while an older
KEK version still exists, a run completes that rotation instead of starting another.
Profile data is never re-encrypted; only the wrapped data keys change.

With KEK files, no data key is ever left wrapped under a version a rotation destroyed,
however server processes creating vaults meanwhile are timed, provided one rotation runs at
a time and each creation runs to its end. (A sign-up that dies between storing its key and
looking at the versions again can leave its key under a destroyed version; its vault
document is written only after that, so no data is under the key. A rotation counts such
keys as ``orphaned`` and goes on; one under a vault that has a document stops it.)
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
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from keys import Keyring, KeyringError
from keys.errors import RotationRunning, UnknownKeyVersion
from vault.datakeys import TABLE, DataKeys
from vault.errors import NotFound
from vault.storage.base import Store

Progress = Callable[[int, int], None]
LOCK_NAME = "rotation.lock"


@dataclass
class RotationReport:
    """What a run of ``rotate`` did."""

    new_version: int | None = None
    current_version: int = 0
    rewrapped: int = 0
    retired: list[int] = field(default_factory=list)
    unused_but_kept: list[int] = field(default_factory=list)
    orphaned: int = 0
    """Data keys under a version that is gone whose vault has no document: a sign-up that
    died between storing its key and writing its vault, or one still under way (which
    rewraps its own key). Left as they are, and never a reason to stop."""
    notes: list[str] = field(default_factory=list)
    """What is left for the operator to do by hand."""


def key_usage(store: Store) -> Counter[int]:
    """How many data keys each KEK version wraps."""
    return Counter(int(record["kek_version"]) for _, record in store.scan(TABLE))


@contextmanager
def one_rotation(lock: Path) -> Iterator[None]:
    """Hold the rotation lock at ``lock`` (a private file, created if need be) while the
    block runs; raise RotationRunning at once if another process or thread holds it.

    The lock is the file's ``flock``, so a rotation that dies, however it dies, lets go of
    it, and the one run after it finishes its work. The file stays, empty.
    """
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RotationRunning(str(lock)) from None
        yield
    finally:
        os.close(fd)


def rotate(store: Store, keyring: Keyring, *, progress: Progress | None = None) -> RotationReport:
    """Rotate to a new KEK version, or finish a rotation an earlier run began.

    ``progress(done, total)`` is called after each data key is rewrapped.
    """
    report = RotationReport()
    if _nothing_in_progress(store, keyring):
        report.new_version = keyring.source.add_version()
    report.current_version = current = keyring.current_version()
    _finish_set_aside(store, keyring, report)
    pending = [vid for vid, rec in store.scan(TABLE) if int(rec["kek_version"]) != current]
    _rewrap_each(store, keyring, pending, report, progress)
    _retire_unused(store, keyring, report)
    return report


def _nothing_in_progress(store: Store, keyring: Keyring) -> bool:
    if keyring.source.retiring():
        return False
    versions = keyring.source.versions()
    if len(versions) > 1:
        return False
    # A key under a version that is gone is an orphan (see RotationReport), not work left.
    return set(key_usage(store)) & set(versions) <= {keyring.current_version()}


def _rewrap_each(
    store: Store,
    keyring: Keyring,
    vault_ids: list[str],
    report: RotationReport,
    progress: Progress | None = None,
) -> None:
    """Rewrap the data key of each of ``vault_ids`` under ``keyring``'s current version.

    A key whose version ``keyring`` cannot load is counted in ``report.orphaned`` when its
    vault has no document; under a vault that has one, the key is lost, and that stops
    the run (UnknownKeyVersion) before anything is destroyed.
    """
    datakeys = DataKeys(store, keyring)
    for done, vault_id in enumerate(vault_ids, start=1):
        try:
            if datakeys.rewrap(vault_id):
                report.rewrapped += 1
        except UnknownKeyVersion:
            if _has_document(store, vault_id):
                raise
            report.orphaned += 1
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
        note = keyring.source.destroy_retired(version)
        if note is not None:
            report.notes.append(note)
        report.retired.append(version)


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
