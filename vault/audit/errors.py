"""Errors raised by the audit log and its Merkle proofs.

A proof that does not check out raises :class:`ProofError`; no function here returns False
for a caller to forget.
"""

from __future__ import annotations

from vault.errors import VaultError


class AuditError(VaultError):
    """Base class of every error the audit log raises."""


class ProofError(AuditError):
    """An inclusion or consistency proof does not match the hashes it was checked against."""


class NotInLog(AuditError, IndexError):
    """An entry index or tree size beyond the log's current size (or below zero)."""


class LogCorrupted(AuditError):
    """The log's files contradict each other in a way a crash cannot explain.

    Recovery cuts torn tails; this is raised for damage before the tail (an edited entry,
    a wrong hash) and names the first entry found wrong.
    """


class CheckpointError(AuditError):
    """A signed checkpoint (or its verifier key) is malformed or its signature fails."""
