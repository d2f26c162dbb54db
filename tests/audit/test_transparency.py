"""Checkpoints and proofs served over HTTP verify with nothing but the verifier key, and
the server never signs a checkpoint that contradicts an earlier one."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock, make_app
from vault.audit import (
    AuditError,
    canonical_json,
    leaf_hash,
    parse_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from vault.audit.checkpoint import verify_checkpoint
from vault.events import ListSink
from vrm.services import Services, audit_origin


@pytest.fixture
def app(config: dict[str, Any], clock: FakeClock, events: ListSink) -> Iterator[Flask]:
    application = make_app(config, clock, events)
    yield application
    application.extensions["vrm"].close()


@pytest.fixture
def vault(app: Flask) -> Services:
    services: Services = app.extensions["vrm"]
    for i in range(5):
        services.vaults.sign_up(f"c{i}@example.org", PASSWORD)
    return services


def _b(text: str) -> bytes:
    return base64.b64decode(text)


def _checkpoint(client: FlaskClient, vault: Services) -> Any:
    response = client.get("/audit/checkpoint")
    assert response.status_code == 200
    origin = audit_origin(vault.config)
    return verify_checkpoint(
        response.get_data(as_text=True), vault.keys.signing.current().public_raw(), origin
    )


def test_served_checkpoint_and_inclusion_proof_verify(app: Flask, vault: Services) -> None:
    client = app.test_client()
    checkpoint = _checkpoint(client, vault)
    assert checkpoint.size == vault.audit.size()
    for index in range(checkpoint.size):
        body = client.get(f"/audit/proof/inclusion?index={index}&size={checkpoint.size}").get_json()
        assert _b(body["root"]) == checkpoint.root
        entry = vault.audit.entry(index)
        assert _b(body["leaf_hash"]) == leaf_hash(canonical_json(entry))
        verify_inclusion(
            index,
            checkpoint.size,
            _b(body["leaf_hash"]),
            [_b(h) for h in body["proof"]],
            checkpoint.root,
        )


def _verified_by_its_checkpoint(vault: Services, body: dict[str, Any]) -> Any:
    """Check an inclusion proof answer against the signed checkpoint it carries."""
    key = vault.keys.signing.current().public_raw()
    checkpoint = verify_checkpoint(body["checkpoint"], key, audit_origin(vault.config))
    assert body["size"] == checkpoint.size
    leaf = leaf_hash(canonical_json(vault.audit.entry(body["index"])))
    assert _b(body["leaf_hash"]) == leaf
    verify_inclusion(
        body["index"], checkpoint.size, leaf, [_b(h) for h in body["proof"]], checkpoint.root
    )
    return checkpoint


def test_proof_without_a_size_is_against_the_latest_signed_checkpoint(
    app: Flask, vault: Services
) -> None:
    client = app.test_client()
    signed = vault.checkpoints.sign()
    record = vault.audit.directory / "checkpoint-last.json"
    written = record.stat().st_mtime_ns
    vault.vaults.sign_up("late@example.org", PASSWORD)
    covered = client.get("/audit/proof/inclusion?index=2").get_json()
    assert covered["checkpoint"] == signed
    assert _verified_by_its_checkpoint(vault, covered).size < vault.audit.size()
    assert record.stat().st_mtime_ns == written  # nothing signed: the latest covers entry 2


def test_proof_of_an_entry_no_checkpoint_covers_yet_signs_one(app: Flask, vault: Services) -> None:
    client = app.test_client()
    old = verify_checkpoint(
        vault.checkpoints.sign(),
        vault.keys.signing.current().public_raw(),
        audit_origin(vault.config),
    )
    vault.vaults.sign_up("late@example.org", PASSWORD)
    newest = vault.audit.size() - 1
    body = client.get(f"/audit/proof/inclusion?index={newest}").get_json()
    checkpoint = _verified_by_its_checkpoint(vault, body)
    assert checkpoint.size == newest + 1 > old.size
    assert vault.checkpoints.latest() == body["checkpoint"]


def test_proof_at_a_size_carries_the_checkpoint_only_if_it_is_the_latest(
    app: Flask, vault: Services
) -> None:
    client = app.test_client()
    latest = parse_checkpoint(vault.checkpoints.sign())
    at_latest = client.get(f"/audit/proof/inclusion?index=0&size={latest.size}").get_json()
    _verified_by_its_checkpoint(vault, at_latest)
    smaller = client.get("/audit/proof/inclusion?index=0&size=2").get_json()
    assert "checkpoint" not in smaller
    assert _b(smaller["root"]) == vault.audit.root(2)


def test_consistency_proof_links_an_old_checkpoint_to_a_new_one(
    app: Flask, vault: Services
) -> None:
    client = app.test_client()
    old = _checkpoint(client, vault)
    vault.vaults.sign_up("late@example.org", PASSWORD)
    new = _checkpoint(client, vault)
    body = client.get(f"/audit/proof/consistency?old={old.size}&new={new.size}").get_json()
    verify_consistency(old.size, new.size, old.root, new.root, [_b(h) for h in body["proof"]])


def test_an_unchanged_log_gets_the_same_checkpoint_without_a_write(
    app: Flask, vault: Services
) -> None:
    first = vault.checkpoints.sign()
    record = vault.audit.directory / "checkpoint-last.json"
    written = record.stat().st_mtime_ns
    assert vault.checkpoints.sign() == first
    assert record.stat().st_mtime_ns == written


@pytest.mark.parametrize(
    "query",
    [
        "index=0&size=999999",
        "index=5&size=5",
        "index=-1&size=2",
        "index=x&size=2",
        "index=1&size=",
        "index=999",
        "size=3",
    ],
)
def test_bad_proof_requests_are_4xx_json(app: Flask, vault: Services, query: str) -> None:
    response = app.test_client().get(f"/audit/proof/inclusion?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def sign_then_change_the_last_signed_root(
    vault: Services, change: Callable[[bytes], bytes]
) -> None:
    """Sign a checkpoint, log one more event, then replace the root the signer remembers
    with ``change(root)``: the log's history then differs from what was signed, as after
    a rewrite, and no consistency proof can tie the two."""
    vault.checkpoints.sign()
    vault.vaults.sign_up("one-more@example.org", PASSWORD)
    last = vault.audit.directory / "checkpoint-last.json"
    record = json.loads(last.read_text())
    root = change(bytes.fromhex(record["root"]))
    last.write_text(json.dumps({**record, "root": root.hex()}))


def test_server_refuses_to_sign_a_checkpoint_after_the_log_was_rewritten(
    app: Flask, vault: Services
) -> None:
    sign_then_change_the_last_signed_root(vault, lambda root: bytes([root[0] ^ 0xFF]) + root[1:])
    with pytest.raises(AuditError, match="no longer extends"):
        vault.checkpoints.sign()


def test_a_log_that_no_longer_extends_its_checkpoint_is_a_server_error(
    app: Flask, vault: Services
) -> None:
    sign_then_change_the_last_signed_root(vault, lambda root: bytes(32))
    client = app.test_client()
    newest = vault.audit.size() - 1
    for path in ("/audit/checkpoint", f"/audit/proof/inclusion?index={newest}"):
        response = client.get(path)
        assert response.status_code == 500, path
        assert response.get_json()["error"] == "server_error"
