"""The tamper-evident audit log: events in append-only files under an RFC 9162 Merkle tree.

:mod:`vault.audit.merkle` holds the hashing, proofs and their verification, which need
nothing but hashes; :class:`AuditLog` stores the log and serves roots and proofs;
:class:`AuditSink` is the event sink that feeds it.
"""

from __future__ import annotations

from vault.audit.checkpoint import (
    Checkpoint,
    note_key_id,
    parse_checkpoint,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key,
    verify_checkpoint,
)
from vault.audit.errors import AuditError, CheckpointError, LogCorrupted, NotInLog, ProofError
from vault.audit.export import Problem, VerifyReport, export_log, verify_export
from vault.audit.log import AuditLog
from vault.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_by_levels,
    root_from_leaves,
    subtree_hash_of,
    verify_consistency,
    verify_inclusion,
)
from vault.audit.sink import AuditSink

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "AuditError",
    "AuditLog",
    "AuditSink",
    "Checkpoint",
    "CheckpointError",
    "LogCorrupted",
    "NotInLog",
    "Problem",
    "ProofError",
    "VerifyReport",
    "canonical_json",
    "consistency_proof",
    "export_log",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "note_key_id",
    "parse_checkpoint",
    "parse_verifier_key",
    "root_by_levels",
    "root_from_leaves",
    "sign_checkpoint",
    "subtree_hash_of",
    "verifier_key",
    "verify_checkpoint",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
]
