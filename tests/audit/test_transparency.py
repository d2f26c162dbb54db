"""Checkpoints and proofs served over HTTP verify with nothing but the verifier key, and
the server never signs a checkpoint that contradicts an earlier one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock, make_app
from vault.audit import (
    AuditError,
    canonical_json,
    leaf_hash,
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
        response.get_data(as_text=True), vault.keys.signing.public_raw(), origin
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
    ["index=0&size=999999", "index=5&size=5", "index=-1&size=2", "index=x&size=2", "index=1"],
)
def test_bad_proof_requests_are_4xx_json(app: Flask, vault: Services, query: str) -> None:
    response = app.test_client().get(f"/audit/proof/inclusion?{query}")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_server_refuses_to_sign_a_checkpoint_after_the_log_was_rewritten(
    app: Flask, vault: Services
) -> None:
    vault.checkpoints.sign()
    vault.vaults.sign_up("one-more@example.org", PASSWORD)
    # The signer keeps the last tree it signed; a log whose history differs from it (as
    # after a rewrite) cannot produce a consistency proof to it.
    last = vault.audit.directory / "checkpoint-last.json"
    record = json.loads(last.read_text())
    root = bytearray.fromhex(record["root"])
    root[0] ^= 0xFF
    last.write_text(json.dumps({**record, "root": root.hex()}))
    with pytest.raises(AuditError, match="no longer extends"):
        vault.checkpoints.sign()
