"""Signing checkpoints without ever signing two that contradict each other.

Before it signs a checkpoint, the signer proves that the last tree it signed is a prefix
of the tree it is about to sign (an RFC 9162 consistency proof, checked, not assumed) and
only then records the new one as the last. If the log was rewritten underneath it, it
refuses, so an auditor holding any two of its checkpoints can always prove one extends
the other.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from keys import SigningKey, SigningKeys
from vault.audit.checkpoint import note_key_id, parse_checkpoint, sign_checkpoint, split_note
from vault.audit.errors import AuditError, ProofError
from vault.audit.files import replace_file
from vault.audit.log import AuditLog
from vault.audit.merkle import verify_consistency


class CheckpointSigner:
    """Signs checkpoints of one log under one origin and key.

    With ``keep_recorded`` (the origin was not configured, only derived from where this
    process would listen) the origin is the one the log was last signed under, read afresh
    each time, and ``origin`` only names the log's first: so a server started with
    ``--port`` and the commands, which do not know the port, sign under one origin.
    """

    def __init__(
        self, log: AuditLog, signing: SigningKeys, origin: str, *, keep_recorded: bool = False
    ) -> None:
        self._log = log
        self._signing = signing
        self._origin = origin
        self._keep_recorded = keep_recorded
        self._last = log.directory / "checkpoint-last.json"

    def sign(self) -> str:
        """A signed note for the log as it is now, consistent with every earlier one.

        While the log has not grown, the last note is returned again, so asking for
        checkpoints costs no disk writes.
        """
        with _locked(self._log.directory / "checkpoint.lock"):
            size = self._log.size()
            last = self._read_last()
            origin = self._origin_after(last)
            signing = self._signing.current()
            if last and last["size"] == size and _signed_by(last, origin, signing):
                return str(last["note"])
            root = self._log.root(size)
            self._check_extends_last(last, size, root)
            note = sign_checkpoint(origin, size, root, signing, origin)
            record = {"size": size, "root": root.hex(), "origin": origin, "note": note}
            replace_file(self._last, json.dumps(record).encode(), sync=True)
        return note

    @property
    def origin(self) -> str:
        """The origin line (and note key name) this signer signs under now."""
        return self._origin_after(self._read_last())

    def pin_origin(self) -> str:
        """The origin, made the log's own by signing its first checkpoint if none was
        signed yet (so a process that derived another cannot sign first); see the class."""
        if self._keep_recorded and _origin_of(self._read_last()) is None:
            self.sign()
        return self.origin

    def _origin_after(self, last: dict[str, object] | None) -> str:
        recorded = _origin_of(last) if self._keep_recorded else None
        return recorded or self._origin

    def latest(self, signing: SigningKey | None = None) -> str | None:
        """The last note signed under this origin by the current key (or by ``signing``,
        the key the caller took, so that it checks the note with the key it names), or
        None if there is none; never signs."""
        last = self._read_last()
        key = signing or self._signing.current()
        if last is None or not _signed_by(last, self._origin_after(last), key):
            return None
        return str(last["note"])

    def covering(self, size: int) -> str:
        """The latest signed note if its tree holds the first ``size`` entries, else a new
        one (which does, as long as the log holds them)."""
        note = self.latest()
        if note is not None and parse_checkpoint(note).size >= size:
            return note
        return self.sign()

    def _read_last(self) -> dict[str, object] | None:
        if not self._last.exists():
            return None
        record: dict[str, object] = json.loads(self._last.read_text())
        return record

    def _check_extends_last(self, last: dict[str, object] | None, size: int, root: bytes) -> None:
        if last is None:
            return
        old_size, old_root = int(str(last["size"])), bytes.fromhex(str(last["root"]))
        if size < old_size:
            raise AuditError(f"the log shrank from {old_size} to {size} entries: not signing")
        try:
            proof = self._log.consistency_proof(old_size, size) if old_size else []
            verify_consistency(old_size, size, old_root, root, proof)
        except ProofError as error:
            raise AuditError(f"the log no longer extends the last checkpoint: {error}") from None


def _origin_of(record: object) -> str | None:
    origin = record.get("origin") if isinstance(record, dict) else None
    return origin if isinstance(origin, str) and origin and "\n" not in origin else None


class _locked:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)


def _signed_by(last: dict[str, object], origin: str, signing: SigningKey) -> bool:
    """Whether the recorded note is under ``origin`` and signed by ``signing`` (not by a
    key retired since)."""
    if last.get("origin") != origin:
        return False
    key_id = note_key_id(origin, signing.public_raw())
    _, signatures = split_note(str(last["note"]))
    return any(signature.key_id == key_id for signature in signatures)
