"""Key-encryption key rotation: rewrap every data key, then retire what nothing uses.

``rotate`` is safe to interrupt at any point and finishes when run again: while an older
KEK version still exists, a run completes that rotation instead of starting another.
Profile data is never re-encrypted; only the wrapped data keys change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from keys import Keyring
from vault.datakeys import TABLE, DataKeys
from vault.storage.base import Store

Progress = Callable[[int, int], None]


@dataclass
class RotationReport:
    """What a run of ``rotate`` did."""

    new_version: int | None = None
    current_version: int = 0
    rewrapped: int = 0
    retired: list[int] = field(default_factory=list)
    unused_but_kept: list[int] = field(default_factory=list)


def key_usage(store: Store) -> Counter[int]:
    """How many data keys each KEK version wraps."""
    return Counter(int(record["kek_version"]) for _, record in store.scan(TABLE))


def rotate(store: Store, keyring: Keyring, *, progress: Progress | None = None) -> RotationReport:
    """Rotate to a new KEK version, or finish a rotation an earlier run began.

    ``progress(done, total)`` is called after each data key is rewrapped.
    """
    report = RotationReport()
    if _nothing_in_progress(store, keyring):
        report.new_version = keyring.source.add_version()
    report.current_version = current = keyring.current_version()
    pending = [vid for vid, rec in store.scan(TABLE) if int(rec["kek_version"]) != current]
    datakeys = DataKeys(store, keyring)
    for done, vault_id in enumerate(pending, start=1):
        if datakeys.rewrap(vault_id):
            report.rewrapped += 1
        if progress is not None:
            progress(done, len(pending))
    _retire_unused(store, keyring, report)
    return report


def _nothing_in_progress(store: Store, keyring: Keyring) -> bool:
    versions = keyring.source.versions()
    if len(versions) > 1:
        return False
    return set(key_usage(store)) <= {keyring.current_version()}


def _retire_unused(store: Store, keyring: Keyring, report: RotationReport) -> None:
    in_use = set(key_usage(store))
    for version in keyring.source.versions():
        if version == report.current_version or version in in_use:
            continue
        if keyring.source.retire(version):
            report.retired.append(version)
        else:
            report.unused_but_kept.append(version)
