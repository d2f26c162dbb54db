"""The customer's side of the vendor flow: login, the consent page, per-field choice,
grants that extend, receipts, events, and what the vendor then reads."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.oauth.conftest import (
    EMAIL,
    ISSUER,
    PURPOSES,
    REDIRECT,
    Vendor,
    authorize_url,
    bearer,
    consent,
    csrf_of,
    exchange,
    log_in,
    pkce_pair,
    register,
    tokens_for,
)
from vault.audit import AuditLog
from vault.events import ListSink
from vault.grants import Consents, Grant
from vault.receipts import verify_receipt
from vrm.services import Services

ALL = "profile:email profile:given_name profile:postal_address"


def test_authorize_without_a_session_goes_to_login_and_back(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    browser = app.test_client()
    url = authorize_url(shop, "profile:email", pkce_pair()[1])
    first = browser.get(url)
    assert first.status_code == 303
    login_page = browser.get(first.headers["Location"]).get_data(as_text=True)
    next_field = re.search(r'name="next" value="([^"]+)"', login_page)
    assert next_field is not None
    assert next_field.group(1).replace("&amp;", "&") == url


def test_consent_page_shows_each_field_with_its_purpose(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    browser = app.test_client()
    log_in(browser)
    page = browser.get(authorize_url(shop, ALL, pkce_pair()[1]))
    html = page.get_data(as_text=True)
    assert "Example Shop" in html
    assert "shop.example" in html
    for field, purpose in PURPOSES.items():
        assert f'name="field" value="{field}" checked' in html
        assert purpose in html
    assert 'value="allow"' in html
    assert 'value="deny"' in html
    assert '<option value="90" selected>' in html
    policy = page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' https://shop.example" in policy
    assert page.headers["X-Frame-Options"] == "DENY"


def test_the_login_page_of_an_authorization_lets_its_form_lead_to_the_vendor(
    app: Flask, client: FlaskClient, shop: Vendor
) -> None:
    """Logging in to an authorization already granted redirects straight to the vendor,
    which a browser allows only if the login page's form-action names the vendor."""
    url = authorize_url(shop, ALL, pkce_pair()[1])
    login = client.get("/login", query_string={"next": url})
    assert "form-action 'self' https://shop.example;" in login.headers["Content-Security-Policy"]

    for other in (
        authorize_url(shop, ALL, pkce_pair()[1], redirect_uri="https://evil.example/cb"),
        url.replace(shop.client_id, "vnd_" + "0" * 24),
        "/grants",
    ):
        login = client.get("/login", query_string={"next": other})
        assert "form-action 'self';" in login.headers["Content-Security-Policy"], other


def test_unchecked_fields_are_not_granted(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    token = tokens_for(app, shop, ALL, fields=["email"])
    assert token["scope"] == "profile:email"
    profile = client.get("/api/v1/profile", headers=bearer(token["access_token"])).get_json()
    assert set(profile) == {"sub", "email"}
    assert profile["email"] == EMAIL


def test_vendor_reads_exactly_the_granted_fields(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    token = tokens_for(app, shop, ALL)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] <= 900
    profile = client.get("/api/v1/profile", headers=bearer(token["access_token"])).get_json()
    assert profile["given_name"] == "Ada"
    assert profile["postal_address"]["locality"] == "London"
    assert set(profile) == {"sub", "email", "given_name", "postal_address"}


def test_deny_sends_access_denied_with_state_and_issuer(
    app: Flask, shop: Vendor, vault_id: str, vault: Services
) -> None:
    browser = app.test_client()
    log_in(browser)
    answer = consent(browser, authorize_url(shop, ALL, pkce_pair()[1]), decision="deny")
    assert answer["error"] == ["access_denied"]
    assert answer["state"] == ["xyz-state"]
    assert answer["iss"] == [ISSUER]
    assert vault.consents.grants(vault_id) == []


def test_code_redirect_carries_state_and_issuer(app: Flask, shop: Vendor, vault_id: str) -> None:
    browser = app.test_client()
    log_in(browser)
    answer = consent(browser, authorize_url(shop, "profile:email", pkce_pair()[1]))
    assert answer["state"] == ["xyz-state"]
    assert answer["iss"] == [ISSUER]
    assert answer["code"][0].startswith("vrm_ac_")


def test_a_request_for_more_fields_asks_only_for_what_is_new(
    app: Flask, shop: Vendor, vault_id: str, vault: Services
) -> None:
    tokens_for(app, shop, "profile:email")
    browser = app.test_client()
    log_in(browser)
    html = browser.get(authorize_url(shop, ALL, pkce_pair()[1])).get_data(as_text=True)
    offered = re.findall(r'name="field" value="([^"]+)"', html)
    assert offered == ["given_name", "postal_address"]
    assert "It can already read: Email" in html
    # The duration chosen here ends the whole grant, the field held already included.
    assert "what it can read already (Email address) included" in html
    assert 'aria-describedby="duration-hint"' in html
    token = tokens_for(app, shop, ALL)
    assert token["scope"] == ALL
    (grant,) = vault.consents.grants(vault_id)
    assert [r.event for r in grant.receipts] == ["given", "extended"]


def test_a_request_for_nothing_new_is_answered_at_once(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    tokens_for(app, shop, "profile:email profile:given_name")
    browser = app.test_client()
    log_in(browser)
    verifier, challenge = pkce_pair()
    response = browser.get(authorize_url(shop, "profile:email", challenge))
    assert response.status_code == 302
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    token = exchange(app.test_client(), shop, code, verifier).get_json()
    assert token["scope"] == "profile:email"


def test_chosen_duration_sets_when_the_grant_ends(
    app: Flask, shop: Vendor, vault_id: str, vault: Services, clock: FakeClock
) -> None:
    browser = app.test_client()
    log_in(browser)
    consent(browser, authorize_url(shop, "profile:email", pkce_pair()[1]), duration="30")
    (grant,) = vault.consents.grants(vault_id)
    assert grant.expires_at == clock() + timedelta(days=30)


def test_consent_post_without_csrf_token_grants_nothing(
    app: Flask, shop: Vendor, vault_id: str, vault: Services
) -> None:
    browser = app.test_client()
    log_in(browser)
    url = authorize_url(shop, ALL, pkce_pair()[1])
    response = browser.post(url, data={"decision": "allow", "duration": "90", "field": ["email"]})
    assert response.status_code == 400
    assert vault.consents.grants(vault_id) == []


def test_refresh_rotates_the_refresh_token(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, events: ListSink
) -> None:
    first = tokens_for(app, shop, "profile:email")
    response = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=shop.auth,
    )
    second = response.get_json()
    assert response.status_code == 200
    refreshed, issued = events.events[-2:]
    assert (refreshed.type, issued.type) == ("token.refreshed", "token.issued")
    assert refreshed.vault == issued.vault is not None
    assert refreshed.vendor == issued.vendor == shop.client_id
    assert second["refresh_token"] != first["refresh_token"]
    assert second["scope"] == "profile:email"
    read = client.get("/api/v1/profile", headers=bearer(second["access_token"]))
    assert read.get_json()["email"] == EMAIL


def test_a_refresh_writes_its_two_events_to_the_audit_log_in_one_batch(
    app: Flask,
    client: FlaskClient,
    shop: Vendor,
    vault_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = tokens_for(app, shop, "profile:email")
    batches: list[list[str]] = []
    real = AuditLog.append_all

    def append_all(log: AuditLog, entries: Sequence[Mapping[str, Any]]) -> list[int]:
        batches.append([entry["type"] for entry in entries])
        return real(log, entries)

    monkeypatch.setattr(AuditLog, "append_all", append_all)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        auth=shop.auth,
    )
    assert response.status_code == 200
    assert batches == [["token.refreshed", "token.issued"]]


def test_sub_is_stable_for_a_vendor_and_differs_between_vendors(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    other = register(client, client_name="Another Shop")

    def sub(vendor: Vendor) -> str:
        token = tokens_for(app, vendor, "profile:email")["access_token"]
        return str(client.get("/api/v1/profile", headers=bearer(token)).get_json()["sub"])

    assert sub(shop) == sub(shop)
    assert sub(shop) != sub(other)
    assert vault_id not in sub(shop)


def test_grant_endpoint_states_fields_purposes_and_expiry(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    token = tokens_for(app, shop, "profile:email profile:given_name")
    body = client.get("/api/v1/grant", headers=bearer(token["access_token"])).get_json()
    assert body["status"] == "active"
    assert body["fields"] == {f: PURPOSES[f] for f in ("email", "given_name")}
    assert body["expires_at"] == int((clock() + timedelta(days=90)).timestamp())


def test_every_grant_change_yields_a_signed_receipt_both_sides_can_verify(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, vault: Services
) -> None:
    token = tokens_for(app, shop, "profile:email profile:given_name")["access_token"]
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.remove_field(vault_id, grant.grant_id, "given_name")
    body = client.get("/api/v1/grant/receipt", headers=bearer(token)).get_json()
    jwks = client.get("/jwks.json").get_json()
    claims = verify_receipt(body["receipt"], jwks)
    assert claims["vrm"]["event"] == "narrowed"
    assert claims["vrm"]["withdrawn_fields"] == ["given_name"]
    assert [verify_receipt(r["receipt"], jwks)["vrm"]["event"] for r in body["receipts"]] == [
        "given",
        "narrowed",
    ]
    subject = client.get("/api/v1/profile", headers=bearer(token)).get_json()["sub"]
    assert claims["sub"] == subject
    kept = vault.consents.grants(vault_id)[0].receipts
    assert [r.jws for r in kept] == [r["receipt"] for r in body["receipts"]]


def test_two_withdrawals_at_once_that_leave_nothing_revoke_the_grant(
    app: Flask, shop: Vendor, vault_id: str, vault: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other withdrawal lands between this one's count of what is left and its write:
    the write sees nothing would be left and revokes the grant, with its receipt."""
    tokens_for(app, shop, "profile:email profile:given_name")
    (grant,) = vault.consents.grants(vault_id)
    narrow = Consents._narrow
    landed: list[str] = []

    def meanwhile(consents: Consents, *args: Any) -> Grant:
        if not landed:
            landed.append("given_name")
            consents.remove_field(vault_id, grant.grant_id, "given_name")
        return narrow(consents, *args)

    monkeypatch.setattr(Consents, "_narrow", meanwhile)
    ended = vault.consents.remove_field(vault_id, grant.grant_id, "email")

    assert ended.status == "revoked"
    assert [r.event for r in ended.receipts] == ["given", "narrowed", "revoked"]


def test_a_field_agreed_to_again_for_a_new_purpose_is_receipted_for_it(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, vault: Services
) -> None:
    tokens_for(app, shop, "profile:email")
    again = vault.consents.give(
        vault_id,
        shop.client_id,
        ["email"],
        purposes={"email": "send the weekly newsletter"},
        method="offer acceptance",
    )

    claims = verify_receipt(again.receipts[-1].jws, client.get("/jwks.json").get_json())
    assert claims["vrm"]["event"] == "extended"
    assert claims["collectionMethod"] == "offer acceptance"
    (purpose,) = claims["services"][0]["purposes"]
    assert purpose["purpose"] == "send the weekly newsletter"
    assert dict(again.fields) == {"email": "send the weekly newsletter"}


def test_export_holds_grants_and_receipts(
    app: Flask, shop: Vendor, vault_id: str, vault: Services
) -> None:
    tokens_for(app, shop, "profile:email")
    (grant,) = vault.vaults.export(vault_id)["grants"]
    assert grant["vendor"] == shop.client_id
    assert grant["fields"] == {"email": PURPOSES["email"]}
    assert [r["event"] for r in grant["receipts"]] == ["given"]


def test_grant_token_and_read_events_hold_no_values(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, events: ListSink
) -> None:
    token = tokens_for(app, shop, "profile:email profile:given_name")["access_token"]
    client.get("/api/v1/profile", headers=bearer(token))
    client.get("/api/v1/profile", headers=bearer(token + "x"))
    types = events.types()
    for expected in ["vendor.registered", "grant.given", "token.issued", "data.read"]:
        assert expected in types
    refused = [e for e in events.events if e.type == "request.refused"]
    assert refused
    assert refused[0].detail["path"] == "/api/v1/profile"
    read = next(e for e in events.events if e.type == "data.read")
    assert read.fields == ("email", "given_name")
    assert read.vendor == shop.client_id
    text = str([e.to_json() for e in events.events])
    assert EMAIL not in text
    assert "Ada" not in text


def test_client_credentials_give_vendor_level_tokens(client: FlaskClient) -> None:
    marketer = register(
        client,
        client_name="Segment Counter",
        grant_types=["client_credentials"],
        redirect_uris=[],
        scope="segments:query offers:send",
        vrm_field_purposes={},
    )
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "segments:query"},
        auth=marketer.auth,
    )
    body = response.get_json()
    assert response.status_code == 200
    assert body["scope"] == "segments:query"
    assert "refresh_token" not in body
    introspected = client.post(
        "/oauth/introspect", data={"token": body["access_token"]}, auth=marketer.auth
    ).get_json()
    assert introspected["active"] is True
    assert introspected["scope"] == "segments:query"
    profile = client.get("/api/v1/profile", headers=bearer(body["access_token"]))
    assert profile.status_code == 403


def test_introspection_describes_the_vendors_own_token(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    token = tokens_for(app, shop, "profile:email")
    answer = client.post(
        "/oauth/introspect", data={"token": token["access_token"]}, auth=shop.auth
    ).get_json()
    assert answer["active"] is True
    assert answer["client_id"] == shop.client_id
    assert answer["scope"] == "profile:email"
    assert answer["exp"] == int(clock().timestamp()) + 900
    assert len(answer["sub"]) == 32


def test_login_failure_shows_the_form_again(app: Flask, vault_id: str) -> None:
    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    response = browser.post(
        "/login",
        data={"email": EMAIL, "password": "wrong password", "csrf_token": csrf_of(page)},
    )
    assert response.status_code == 401
    assert "email or password is wrong" in response.get_data(as_text=True)


def test_login_never_redirects_to_another_site(app: Flask, vault_id: str) -> None:
    from tests.conftest import PASSWORD

    browser = app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        response = browser.post(
            "/login",
            data={
                "email": EMAIL,
                "password": PASSWORD,
                "csrf_token": csrf_of(page),
                "next": target,
            },
        )
        assert response.headers["Location"] == "/"
        page = browser.get("/login").get_data(as_text=True)


def test_metadata_lists_every_endpoint_and_s256(client: FlaskClient) -> None:
    body = client.get("/.well-known/oauth-authorization-server").get_json()
    assert body["issuer"] == ISSUER
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "jwks_uri",
    ]:
        assert body[name].startswith(ISSUER + "/")
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "profile:email" in body["scopes_supported"]
    assert body["authorization_response_iss_parameter_supported"] is True


def test_metadata_is_valid_rfc8414(client: FlaskClient) -> None:
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

    body = client.get("/.well-known/oauth-authorization-server").get_json()
    AuthorizationServerMetadata(body).validate()


def test_redirect_back_goes_to_the_registered_uri_exactly(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    browser = app.test_client()
    log_in(browser)
    response = browser.get(authorize_url(shop, "profile:email", pkce_pair()[1]))
    html = response.get_data(as_text=True)
    posted = browser.post(
        authorize_url(shop, "profile:email", pkce_pair()[1]),
        data={
            "csrf_token": csrf_of(html),
            "decision": "allow",
            "duration": "90",
            "field": ["email"],
        },
    )
    assert posted.headers["Location"].split("?")[0] == REDIRECT


def test_consent_page_shows_the_customers_terms_and_the_grant_records_them(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, vault: Services
) -> None:
    vault.vaults.set_terms(vault_id, ["sd-base:service-only", "sd-base:no-tracking"])
    browser = app.test_client()
    log_in(browser)
    html = browser.get(authorize_url(shop, "profile:email", pkce_pair()[1])).get_data(as_text=True)
    assert "Use my data only to deliver the service" in html
    assert "No tracking or profiling" in html
    token = tokens_for(app, shop, "profile:email")["access_token"]
    body = client.get("/api/v1/grant", headers=bearer(token)).get_json()
    assert body["terms"] == ["sd-base:no-tracking", "sd-base:service-only"]
    receipt = client.get("/api/v1/grant/receipt", headers=bearer(token)).get_json()["receipt"]
    claims = verify_receipt(receipt, client.get("/jwks.json").get_json())
    assert claims["vrm"]["terms"] == ["sd-base:no-tracking", "sd-base:service-only"]
