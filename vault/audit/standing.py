"""Whether the latest signed checkpoint still holds for the log as it stands now.

Checking a checkpoint's signature says only that the server signed it. What an auditor
needs to know is whether the log still holds what was signed, so the check here also
recomputes: every stored entry must hash to the stored tree (:meth:`AuditLog.verify`), and
the first ``size`` entries, hashed again from the entries themselves, must give the
checkpoint's root. Every failure is listed, not only the first, so a page can show all
that is wrong; nothing here writes to the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault.audit.checkpoint import Checkpoint, PublicKeys, parse_checkpoint, verify_checkpoint
from vault.audit.errors import AuditError, CheckpointError
from vault.audit.log import AuditLog


@dataclass(frozen=True)
class CheckpointStanding:
    """What checking one signed checkpoint against the log found.

    ``checkpoint`` is the parsed note (None if it does not even parse); ``recomputed`` is
    the root the log's first ``checkpoint.size`` entries hash to now, if they could be read.
    """

    note: str
    checkpoint: Checkpoint | None
    signature_ok: bool
    log_size: int
    recomputed: bytes | None
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True only when the signature verifies and the log still matches the checkpoint."""
        return not self.problems


def check_standing(
    log: AuditLog, note: str, public_key_raw: PublicKeys, key_name: str
) -> CheckpointStanding:
    """Check ``note`` (signed by ``key_name``) against ``log`` as it is now; O(log size)."""
    problems: list[str] = []
    checkpoint, signature_ok = _checked_note(note, public_key_raw, key_name, problems)
    try:
        log.verify()
    except AuditError as error:
        problems.append(f"The log's files disagree with each other: {error}.")
    size_now = log.size()
    recomputed = None
    if checkpoint is not None:
        recomputed = _recomputed_root(log, checkpoint, size_now, problems)
    return CheckpointStanding(note, checkpoint, signature_ok, size_now, recomputed, tuple(problems))


def _checked_note(
    note: str, public_key_raw: PublicKeys, key_name: str, problems: list[str]
) -> tuple[Checkpoint | None, bool]:
    try:
        return verify_checkpoint(note, public_key_raw, key_name), True
    except CheckpointError as error:
        problems.append(f"The signature does not verify with this server's key: {error}.")
    try:
        return parse_checkpoint(note), False
    except CheckpointError:
        return None, False


def _recomputed_root(
    log: AuditLog, checkpoint: Checkpoint, size_now: int, problems: list[str]
) -> bytes | None:
    if checkpoint.size > size_now:
        problems.append(
            f"The log holds {size_now} entries, fewer than the {checkpoint.size} the "
            "checkpoint commits to: entries were removed."
        )
        return None
    try:
        root = log.root_from_entries(checkpoint.size)
    except AuditError as error:
        problems.append(f"The first {checkpoint.size} entries cannot be read: {error}.")
        return None
    if root != checkpoint.root:
        problems.append(
            f"The first {checkpoint.size} entries, hashed again, give the root "
            f"{root.hex()}, not the checkpoint's {checkpoint.root.hex()}: the log was "
            "changed after the checkpoint was signed."
        )
    return root
