"""Refusals at the token endpoint are ``request.refused`` events: they reach the audit log
and, when they concern a customer's grant, that customer's access history. They never
carry a secret, code or token, and name a vendor only when it proved who it is (its
secret) or presented a code or refresh token this server issued."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import FakeClock
from tests.oauth.conftest import (
    Vendor,
    app,
    client,
    consent,
    exchange,
    log_in,
    pkce_pair,
    register,
    shop,
    tokens_for,
    vault,
    vault_id,
)
from tests.oauth.conftest import authorize_url as authorize
from vault.events import Event, ListSink
from vrm.services import Services

__all__ = ["app", "client", "shop", "vault", "vault_id"]

SCOPE = "profile:email profile:given_name"
DAY = 24 * 60 * 60


def refresh(client: FlaskClient, vendor: Vendor, token: str, **extra: str) -> TestResponse:
    data = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    return client.post("/oauth/token", data=data, auth=vendor.auth)


def refusals(events: ListSink) -> list[Event]:
    return [e for e in events.events if e.type == "request.refused"]


def only_refusal(events: ListSink, *secrets: str) -> Event:
    """The one refusal recorded; none of ``secrets`` appears in any event."""
    (event,) = refusals(events)
    logged = json.dumps([e.to_json() for e in events.events])
    for secret in secrets:
        assert secret not in logged
    return event


def history_of(vault: Services, vault_id: str) -> list[tuple[str, str, str | None]]:
    return [(e.kind, e.vendor_id, e.reason) for e in vault.history.entries(vault_id)]


def test_refresh_after_revocation_is_recorded_for_the_customer(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str, events: ListSink
) -> None:
    tokens = tokens_for(app, shop, SCOPE)
    grant = vault.consents.grants(vault_id)[0]
    vault.consents.revoke(vault_id, grant.grant_id)
    events.events.clear()

    response = refresh(client, shop, tokens["refresh_token"])
    assert response.status_code == 400

    event = only_refusal(events, tokens["refresh_token"], shop.client_secret or "")
    assert event.vendor == shop.client_id
    assert event.vault == vault.consents.pseudonym(vault_id)
    assert event.fields == ("email", "given_name")
    assert event.detail["reason"] == "the grant was revoked"
    assert event.detail["error"] == "invalid_grant"
    assert event.detail["grant_type"] == "refresh_token"
    assert history_of(vault, vault_id)[0] == ("refused", shop.client_id, "the grant was revoked")
    assert vault.audit.entry(vault.audit.size() - 1)["type"] == "request.refused"


def test_refresh_after_expiry_is_recorded_for_the_customer(
    app: Flask,
    client: FlaskClient,
    shop: Vendor,
    vault: Services,
    vault_id: str,
    events: ListSink,
    clock: FakeClock,
) -> None:
    tokens = tokens_for(app, shop, SCOPE)
    clock.advance(91 * DAY)
    events.events.clear()

    assert refresh(client, shop, tokens["refresh_token"]).status_code == 400

    event = only_refusal(events, tokens["refresh_token"])
    assert event.vault == vault.consents.pseudonym(vault_id)
    assert event.detail["reason"] == "the grant expired"
    assert history_of(vault, vault_id)[0][0] == "refused"


def test_reused_code_is_recorded_for_the_customer(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str, events: ListSink
) -> None:
    browser = app.test_client()
    log_in(browser)
    verifier, challenge = pkce_pair()
    code = consent(browser, authorize(shop, SCOPE, challenge))["code"][0]
    assert exchange(client, shop, code, verifier).status_code == 200
    events.events.clear()

    assert exchange(client, shop, code, verifier).status_code == 400

    event = only_refusal(events, code, verifier)
    assert event.vendor == shop.client_id
    assert event.vault == vault.consents.pseudonym(vault_id)
    assert event.detail["grant_type"] == "authorization_code"
    assert history_of(vault, vault_id)[0][:2] == ("refused", shop.client_id)


def test_wrong_secret_names_no_vendor_without_a_genuine_token(
    client: FlaskClient, shop: Vendor, events: ListSink
) -> None:
    wrong = (shop.client_id, "not-the-secret-at-all")
    data = {"grant_type": "refresh_token", "refresh_token": "vrm_rt_forged"}
    response = client.post("/oauth/token", data=data, auth=wrong)
    assert response.status_code == 401

    event = only_refusal(events, "not-the-secret-at-all", "vrm_rt_forged")
    assert event.vendor is None
    assert event.vault is None
    assert event.detail["error"] == "invalid_client"


def test_wrong_secret_with_a_genuine_token_names_the_vendor_it_was_issued_to(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str, events: ListSink
) -> None:
    tokens = tokens_for(app, shop, SCOPE)
    events.events.clear()
    data = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    assert client.post("/oauth/token", data=data, auth=(shop.client_id, "wrong")).status_code == 401

    event = only_refusal(events, tokens["refresh_token"])
    assert event.vendor == shop.client_id
    assert event.vault == vault.consents.pseudonym(vault_id)
    assert history_of(vault, vault_id)[0][:2] == ("refused", shop.client_id)


def test_an_authenticated_vendor_with_a_forged_token_is_named_without_a_vault(
    client: FlaskClient, shop: Vendor, events: ListSink
) -> None:
    assert (
        refresh(client, shop, "vrm_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").status_code == 400
    )
    event = only_refusal(events, "vrm_rt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert event.vendor == shop.client_id
    assert event.vault is None


def test_a_public_client_id_alone_names_no_vendor(client: FlaskClient, events: ListSink) -> None:
    app_client = register(client, token_endpoint_auth_method="none")
    events.events.clear()
    data = {
        "grant_type": "refresh_token",
        "refresh_token": "vrm_rt_forged-token-value",
        "client_id": app_client.client_id,
    }
    assert client.post("/oauth/token", data=data).status_code == 400
    event = only_refusal(events, "vrm_rt_forged-token-value")
    assert event.vendor is None


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "client_credentials", "scope": "segments:query"},
        {"grant_type": "password", "username": "ada", "password": "hunter2-secret"},
        {"grant_type": ["refresh_token", "refresh_token"]},
    ],
    ids=["unauthorized-grant", "unsupported-grant", "repeated-parameter"],
)
def test_every_refusal_at_the_token_endpoint_is_recorded(
    client: FlaskClient, shop: Vendor, events: ListSink, data: dict[str, Any]
) -> None:
    response = client.post("/oauth/token", data=data, auth=shop.auth)
    assert 400 <= response.status_code < 500
    event = only_refusal(events, shop.client_secret or "", "hunter2-secret")
    assert event.detail["path"] == "/oauth/token"
    assert event.detail["error"] == response.get_json()["error"]
    assert event.detail["grant_type"] in ("client_credentials", "other", "refresh_token")


def test_an_issued_token_records_no_refusal(
    app: Flask, shop: Vendor, vault_id: str, events: ListSink
) -> None:
    tokens_for(app, shop, SCOPE)
    assert refusals(events) == []
