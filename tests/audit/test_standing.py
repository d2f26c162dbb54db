"""Checking the latest signed checkpoint against the log as it stands: the signature, the
log's files against each other, and the root the entries hash to now."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keys.signing import SigningKey
from vault.audit import AuditLog, sign_checkpoint
from vault.audit.standing import check_standing

NAME = "test.example/vrm-vault/audit"
KEY = SigningKey(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def event(i: int, actor: str = "operator") -> dict[str, Any]:
    return {"type": "vault.created", "at": "2026-11-25T09:00:00Z", "actor": actor, "n": i}


def log_of(directory: Path, events: list[dict[str, Any]]) -> AuditLog:
    log = AuditLog(directory, sync="none")
    for each in events:
        log.append(each)
    return log


def signed(log: AuditLog, size: int | None = None, key: SigningKey = KEY) -> str:
    size = log.size() if size is None else size
    return sign_checkpoint(NAME, size, log.root(size), key, NAME)


def test_a_log_that_still_holds_what_was_signed(tmp_path: Path) -> None:
    with log_of(tmp_path, [event(i) for i in range(10)]) as log:
        note = signed(log, 7)
        log.append(event(10))
        standing = check_standing(log, note, KEY.public_raw(), NAME)
    assert standing.ok, standing.problems
    assert standing.signature_ok
    assert standing.checkpoint is not None
    assert standing.recomputed == standing.checkpoint.root
    assert standing.log_size == 11


def test_an_entry_edited_in_place_is_reported(tmp_path: Path) -> None:
    with log_of(tmp_path, [event(i) for i in range(10)]) as log:
        note = signed(log)
        entries = tmp_path / "entries.jsonl"
        entries.write_bytes(entries.read_bytes().replace(b'"n":4', b'"n":5', 1))
        standing = check_standing(log, note, KEY.public_raw(), NAME)
    assert not standing.ok
    assert standing.signature_ok
    assert "entry 4 does not match its leaf hash" in standing.problems[0]
    assert "hashed again, give the root" in standing.problems[1]


def test_a_rewritten_log_with_a_consistent_tree_is_caught_by_the_root(tmp_path: Path) -> None:
    """The files agree with each other (the tree was recomputed after the edit); only the
    signed root shows the history is not the one signed."""
    events = [event(i) for i in range(10)]
    with log_of(tmp_path / "signed", events) as log:
        note = signed(log)
    events[3] = event(3, actor="rewritten")
    with log_of(tmp_path / "rewritten", events) as rewritten:
        rewritten.verify()
        standing = check_standing(rewritten, note, KEY.public_raw(), NAME)
        root = rewritten.root()
    assert standing.signature_ok
    assert standing.recomputed == root
    (problem,) = standing.problems
    assert problem.startswith(f"The first 10 entries, hashed again, give the root {root.hex()}")
    assert problem.endswith("the log was changed after the checkpoint was signed.")


def test_a_shrunk_log_is_reported(tmp_path: Path) -> None:
    with log_of(tmp_path / "long", [event(i) for i in range(10)]) as log:
        note = signed(log)
    with log_of(tmp_path / "short", [event(i) for i in range(6)]) as short:
        standing = check_standing(short, note, KEY.public_raw(), NAME)
    assert standing.problems == (
        "The log holds 6 entries, fewer than the 10 the checkpoint commits to: "
        "entries were removed.",
    )


def test_a_checkpoint_by_another_key_does_not_verify(tmp_path: Path) -> None:
    other = SigningKey(Ed25519PrivateKey.generate())
    with log_of(tmp_path, [event(i) for i in range(3)]) as log:
        standing = check_standing(log, signed(log, key=other), KEY.public_raw(), NAME)
    assert not standing.signature_ok
    assert standing.checkpoint is not None
    assert standing.recomputed == standing.checkpoint.root
    (problem,) = standing.problems
    assert problem.startswith("The signature does not verify with this server's key")


def test_a_note_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    with log_of(tmp_path, [event(0)]) as log:
        standing = check_standing(log, "garbage\n", KEY.public_raw(), NAME)
    assert standing.checkpoint is None
    assert standing.recomputed is None
    assert len(standing.problems) == 1
