"""Every way a vendor's request can be wrong, and the OAuth error and status it gets.

Each test sets up the smallest flow that reaches the refusal, checks the error code and
status the RFCs call for, and, where a refusal should have side effects (a reused code or
refresh token revokes the grant's tokens), that those happened too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import FakeClock
from tests.oauth.conftest import (
    ISSUER,
    REDIRECT,
    Vendor,
    authorize_url,
    bearer,
    consent,
    exchange,
    log_in,
    pkce_pair,
    register,
    tokens_for,
)
from vault.datakeys import TABLE as DATAKEYS_TABLE
from vault.errors import StorageError
from vault.events import ListSink
from vault.tokens import REFRESH
from vrm.app import create_app
from vrm.services import Services

ALL = "profile:email profile:given_name profile:postal_address"
PROFILE = "/api/v1/profile"
MINUTE = 60
DAY = 24 * 60 * MINUTE


# Helpers.


def refresh(
    client: FlaskClient, vendor: Vendor, refresh_token: str, scope: str | None = None
) -> TestResponse:
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if scope is not None:
        data["scope"] = scope
    return client.post("/oauth/token", data=data, auth=vendor.auth)


def read_profile(client: FlaskClient, access_token: str) -> TestResponse:
    return client.get(PROFILE, headers=bearer(access_token))


def assert_oauth_error(response: TestResponse, status: int, error: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    assert body["error"] == error, body
    assert body["error_description"]
    return body


def assert_invalid_grant(response: TestResponse) -> None:
    """A refused refresh token: 400 ``invalid_grant`` (RFC 6749 section 5.2).

    Whether the body also says why is pinned down once, in
    ``test_refused_refresh_token_says_why``.
    """
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"


def assert_invalid_token(response: TestResponse) -> None:
    """RFC 6750 section 3.1: 401, an ``invalid_token`` body and challenge."""
    assert_oauth_error(response, 401, "invalid_token")
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge


def redirect_query(response: TestResponse) -> dict[str, list[str]]:
    """The query of a redirect back to the vendor's registered redirect URI."""
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


def assert_redirected_error(response: TestResponse, error: str) -> None:
    """An authorization error sent back to the vendor with its state and our issuer."""
    query = redirect_query(response)
    assert query["error"] == [error]
    assert query["state"] == ["xyz-state"]
    assert query["iss"] == [ISSUER]
    assert "code" not in query


def code_for(app: Flask, vendor: Vendor, scope: str = ALL) -> tuple[str, str]:
    """A fresh code and its PKCE verifier, for the logged-in customer."""
    browser = app.test_client()
    log_in(browser)
    verifier, challenge = pkce_pair()
    answer = consent(browser, authorize_url(vendor, scope, challenge))
    return answer["code"][0], verifier


def live_grant_id(services: Services, vault_id: str) -> str:
    return services.consents.grants(vault_id)[0].grant_id


def confidential_vendor(client: FlaskClient) -> Vendor:
    """A vendor with both the consent grants and client credentials for segments."""
    return register(
        client,
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        scope="profile:email segments:query",
        vrm_field_purposes={"email": "send your order confirmations"},
    )


# The authorization request.


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "https://shop.example/callback/extra",
        "https://shop.example/callback?next=https://evil.example",
        "https://shop.example/Callback",
        "http://shop.example/callback",
    ],
)
def test_unregistered_redirect_uri_is_answered_here_not_redirected(
    client: FlaskClient, shop: Vendor, redirect_uri: str
) -> None:
    _, challenge = pkce_pair()
    response = client.get(authorize_url(shop, ALL, challenge, redirect_uri=redirect_uri))
    assert "Location" not in response.headers
    assert_oauth_error(response, 400, "invalid_request")


def test_unregistered_redirect_uri_shows_people_a_page(client: FlaskClient, shop: Vendor) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(shop, ALL, challenge, redirect_uri="https://evil.example/<b>cb</b>")
    response = client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    assert b"<b>" not in response.data
    assert b"Traceback" not in response.data


def test_unknown_client_is_answered_here_not_redirected(client: FlaskClient, shop: Vendor) -> None:
    _, challenge = pkce_pair()
    unknown = Vendor("vnd_" + "0" * 24, None)
    response = client.get(authorize_url(unknown, ALL, challenge))
    assert "Location" not in response.headers
    assert_oauth_error(response, 400, "invalid_client")


def test_missing_pkce_is_refused(client: FlaskClient, shop: Vendor) -> None:
    url = authorize_url(shop, ALL, "").replace("code_challenge=&", "")
    url = url.replace("&code_challenge_method=S256", "")
    assert "code_challenge" not in url
    assert_redirected_error(client.get(url), "invalid_request")


def test_pkce_challenge_without_a_method_is_refused(client: FlaskClient, shop: Vendor) -> None:
    _, challenge = pkce_pair()
    url = authorize_url(shop, ALL, challenge).replace("&code_challenge_method=S256", "")
    assert_redirected_error(client.get(url), "invalid_request")


def test_plain_pkce_is_refused(client: FlaskClient, shop: Vendor) -> None:
    verifier, _ = pkce_pair()
    url = authorize_url(shop, ALL, verifier, code_challenge_method="plain")
    assert_redirected_error(client.get(url), "invalid_request")


def test_scope_for_a_field_the_vendor_did_not_register_is_invalid_scope(
    client: FlaskClient, shop: Vendor
) -> None:
    _, challenge = pkce_pair()
    response = client.get(authorize_url(shop, "profile:email profile:family_name", challenge))
    assert_redirected_error(response, "invalid_scope")


@pytest.mark.parametrize(
    "scope", ["profile:shoe_size", "admin", "profile:email openid", "profile:", "profile:x-"]
)
def test_unknown_scope_is_invalid_scope(client: FlaskClient, shop: Vendor, scope: str) -> None:
    _, challenge = pkce_pair()
    assert_redirected_error(client.get(authorize_url(shop, scope, challenge)), "invalid_scope")


def test_vendor_scope_through_the_consent_page_is_invalid_scope(
    client: FlaskClient, vault_id: str
) -> None:
    vendor = confidential_vendor(client)
    _, challenge = pkce_pair()
    response = client.get(authorize_url(vendor, "segments:query", challenge))
    assert_redirected_error(response, "invalid_scope")


def test_refusals_reach_the_vendor_before_any_login(client: FlaskClient, shop: Vendor) -> None:
    """A bad request goes back to the vendor at once; nobody is asked to log in for it."""
    _, challenge = pkce_pair()
    response = client.get(authorize_url(shop, "profile:family_name", challenge))
    assert "/login" not in response.headers["Location"]


# The code exchange.


def test_wrong_code_verifier_is_invalid_grant(app: Flask, shop: Vendor, vault_id: str) -> None:
    code, verifier = code_for(app, shop)
    other_verifier, _ = pkce_pair()
    response = exchange(app.test_client(), shop, code, other_verifier)
    assert_oauth_error(response, 400, "invalid_grant")
    # It proved nothing, so it changed nothing: the code is still there for its holder.
    assert exchange(app.test_client(), shop, code, verifier).status_code == 200


def test_missing_code_verifier_is_refused(app: Flask, shop: Vendor, vault_id: str) -> None:
    code, verifier = code_for(app, shop)
    response = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        auth=shop.auth,
    )
    assert_oauth_error(response, 400, "invalid_request")
    assert exchange(app.test_client(), shop, code, verifier).status_code == 200


def test_a_public_client_s_code_without_its_verifier_cannot_end_the_grant_s_tokens(
    app: Flask, client: FlaskClient, vault_id: str
) -> None:
    """Someone who learned a public client's code but not its verifier can neither spend
    it nor make it count as a reuse that revokes the grant's tokens."""
    app_vendor = register(client, token_endpoint_auth_method="none")

    def exchange_publicly(code: str, verifier: str) -> TestResponse:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": app_vendor.client_id,
        }
        return client.post("/oauth/token", data=form)

    first = exchange_publicly(*code_for(app, app_vendor)).get_json()
    code, verifier = code_for(app, app_vendor)
    guessed, _ = pkce_pair()

    assert_oauth_error(exchange_publicly(code, guessed), 400, "invalid_grant")
    assert exchange_publicly(code, verifier).status_code == 200
    assert_oauth_error(exchange_publicly(code, guessed), 400, "invalid_grant")
    assert read_profile(client, first["access_token"]).status_code == 200


def test_code_exchange_with_another_redirect_uri_is_invalid_grant(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    code, verifier = code_for(app, shop)
    response = app.test_client().post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "https://shop.example/other",
            "code_verifier": verifier,
        },
        auth=shop.auth,
    )
    assert_oauth_error(response, 400, "invalid_grant")
    assert exchange(app.test_client(), shop, code, verifier).status_code == 200


def test_a_field_withdrawn_before_the_code_is_exchanged_is_not_in_the_tokens(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    code, verifier = code_for(app, shop)
    vault.consents.remove_field(vault_id, live_grant_id(vault, vault_id), "postal_address")

    issued = exchange(client, shop, code, verifier).get_json()

    assert issued["scope"] == "profile:email profile:given_name"
    refreshed = refresh(client, shop, issued["refresh_token"]).get_json()
    assert refreshed["scope"] == "profile:email profile:given_name"


def test_a_code_whose_grant_s_tokens_were_revoked_since_is_invalid_grant(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    first = tokens_for(app, shop, ALL)
    code, verifier = code_for(app, shop)
    # The vendor revokes its refresh token: every token of the grant's epoch ends.
    client.post("/oauth/revoke", data={"token": first["refresh_token"]}, auth=shop.auth)

    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")


def test_a_revoked_code_cannot_be_exchanged_and_revokes_nothing(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    first = tokens_for(app, shop, ALL)
    code, verifier = code_for(app, shop)

    assert client.post("/oauth/revoke", data={"token": code}, auth=shop.auth).status_code == 200

    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")
    assert read_profile(client, first["access_token"]).status_code == 200


def test_reused_code_is_invalid_grant(app: Flask, shop: Vendor, vault_id: str) -> None:
    code, verifier = code_for(app, shop)
    client = app.test_client()
    assert exchange(client, shop, code, verifier).status_code == 200
    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")


def test_reused_code_revokes_the_first_tokens(app: Flask, shop: Vendor, vault_id: str) -> None:
    code, verifier = code_for(app, shop)
    client = app.test_client()
    first = exchange(client, shop, code, verifier).get_json()
    assert read_profile(client, first["access_token"]).status_code == 200

    exchange(client, shop, code, verifier)

    assert_invalid_token(read_profile(client, first["access_token"]))
    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))


def test_expired_code_is_invalid_grant(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    code, verifier = code_for(app, shop)
    clock.advance(MINUTE + 1)
    assert_oauth_error(exchange(app.test_client(), shop, code, verifier), 400, "invalid_grant")


def test_reused_code_revokes_the_first_tokens_even_after_it_expired(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    code, verifier = code_for(app, shop)
    client = app.test_client()
    first = exchange(client, shop, code, verifier).get_json()
    clock.advance(MINUTE + 1)

    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")

    assert_invalid_token(read_profile(client, first["access_token"]))
    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))


def test_reused_code_is_still_recognised_after_later_codes_for_the_grant(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    """Issuing a code prunes expired ones; a used code is remembered for ten minutes more."""
    code, verifier = code_for(app, shop)
    client = app.test_client()
    first = exchange(client, shop, code, verifier).get_json()
    clock.advance(9 * MINUTE)
    code_for(app, shop)

    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")

    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))


def test_code_replayed_after_it_is_forgotten_is_refused_and_revokes_nothing(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    old_code, old_verifier = code_for(app, shop)
    client = app.test_client()
    exchange(client, shop, old_code, old_verifier)
    clock.advance(MINUTE + 10 * MINUTE + 1)
    code, verifier = code_for(app, shop)
    current = exchange(client, shop, code, verifier).get_json()

    assert_oauth_error(exchange(client, shop, old_code, old_verifier), 400, "invalid_grant")

    assert read_profile(client, current["access_token"]).status_code == 200
    assert refresh(client, shop, current["refresh_token"]).status_code == 200


def test_expired_unused_code_is_refused_and_revokes_nothing(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    tokens = tokens_for(app, shop, ALL)
    code, verifier = code_for(app, shop)
    client = app.test_client()
    clock.advance(MINUTE + 1)

    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")

    assert read_profile(client, tokens["access_token"]).status_code == 200
    assert refresh(client, shop, tokens["refresh_token"]).status_code == 200


def test_reused_code_spares_tokens_issued_after_an_earlier_revocation(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    """A code's tokens carry the grant's epoch at issue; once that epoch has ended they are
    dead already, and a replay must not take the vendor's later tokens with it."""
    code, verifier = code_for(app, shop)
    client = app.test_client()
    first = exchange(client, shop, code, verifier).get_json()
    client.post("/oauth/revoke", data={"token": first["refresh_token"]}, auth=shop.auth)
    later = tokens_for(app, shop, ALL)

    assert_oauth_error(exchange(client, shop, code, verifier), 400, "invalid_grant")

    assert read_profile(client, later["access_token"]).status_code == 200
    assert refresh(client, shop, later["refresh_token"]).status_code == 200


def test_another_vendors_code_is_invalid_grant_and_stays_usable_by_its_owner(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    other = register(client, client_name="Other Shop")
    code, verifier = code_for(app, shop)
    assert_oauth_error(exchange(client, other, code, verifier), 400, "invalid_grant")
    assert exchange(client, shop, code, verifier).status_code == 200


# Refresh tokens.


def test_reused_refresh_token_is_invalid_grant(app: Flask, shop: Vendor, vault_id: str) -> None:
    first = tokens_for(app, shop, ALL)
    client = app.test_client()
    assert refresh(client, shop, first["refresh_token"]).status_code == 200
    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))


def test_reused_refresh_token_revokes_every_token_of_the_grant(
    app: Flask, shop: Vendor, vault_id: str, events: ListSink
) -> None:
    first = tokens_for(app, shop, ALL)
    client = app.test_client()
    second = refresh(client, shop, first["refresh_token"]).get_json()
    assert read_profile(client, second["access_token"]).status_code == 200

    refresh(client, shop, first["refresh_token"])

    assert reuses(events) == [("grant tokens revoked", shop.client_id)]
    assert_invalid_token(read_profile(client, first["access_token"]))
    assert_invalid_token(read_profile(client, second["access_token"]))
    assert_invalid_grant(refresh(client, shop, second["refresh_token"]))


def reuses(events: ListSink) -> list[tuple[Any, str | None]]:
    """The action and vendor of each ``token.refresh_reused`` event, in order."""
    return [
        (event.detail["action"], event.vendor)
        for event in events.events
        if event.type == "token.refresh_reused"
    ]


@contextmanager
def meeting_at(store: object, method: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """While the block runs, each call of ``store.method`` waits for another before going
    on, in pairs: two requests reach that point together, deterministically. A third call
    in the block would wait for a partner that never comes, and fail after 60 s."""
    real = getattr(store, method)
    together = threading.Barrier(2, timeout=60)

    def meet(*args: Any) -> Any:
        together.wait()
        return real(*args)

    monkeypatch.setattr(store, method, meet)
    try:
        yield
    finally:
        monkeypatch.setattr(store, method, real)


def two_refreshes_at_once(app: Flask, shop: Vendor, token: str) -> list[TestResponse]:
    """Send two refresh requests with ``token`` from two threads; return both answers."""
    answers: list[TestResponse] = []

    def send() -> None:
        answers.append(refresh(app.test_client(), shop, token))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_a_refresh_landing_between_the_check_and_the_move_makes_the_later_one_a_reuse(
    app: Flask,
    shop: Vendor,
    vault: Services,
    vault_id: str,
    events: ListSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The move goes on from the register value the check read: a refresh with the same
    token that completes after the check, before the move, is caught as a reuse."""
    first = tokens_for(app, shop, ALL)
    check = vault.access.check_refresh
    overtaking: list[TestResponse] = []
    started: list[bool] = []

    def check_then_overtaken(*args: Any) -> Any:
        checked = check(*args)
        if not started:  # Only the first request is overtaken, by a second one.
            started.append(True)
            overtaking.append(refresh(app.test_client(), shop, first["refresh_token"]))
        return checked

    monkeypatch.setattr(vault.access, "check_refresh", check_then_overtaken)
    late = refresh(app.test_client(), shop, first["refresh_token"])
    monkeypatch.undo()

    winner = overtaking[0].get_json()
    assert overtaking[0].status_code == 200
    assert_invalid_grant(late)
    assert reuses(events) == [("grant tokens revoked", shop.client_id)]
    client = app.test_client()
    assert_invalid_token(read_profile(client, winner["access_token"]))
    assert_invalid_grant(refresh(client, shop, winner["refresh_token"]))


def test_two_reuses_at_once_revoke_once_and_the_later_event_says_so(
    app: Flask,
    shop: Vendor,
    vault: Services,
    vault_id: str,
    events: ListSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = tokens_for(app, shop, ALL)
    assert refresh(app.test_client(), shop, first["refresh_token"]).status_code == 200
    # Both requests have found the token used before either revokes the grant's tokens.
    with meeting_at(vault.store, "update_vault", monkeypatch):
        answers = two_refreshes_at_once(app, shop, first["refresh_token"])

    assert [answer.status_code for answer in answers] == [400, 400]
    assert sorted(reuses(events)) == [
        ("grant tokens revoked", shop.client_id),
        ("tokens already revoked", shop.client_id),
    ]


def test_two_refreshes_with_one_token_at_once_let_one_through_and_revoke_the_grant(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = tokens_for(app, shop, ALL)
    # Both requests have passed every check before either swaps.
    with meeting_at(vault.store, "swap_register", monkeypatch):
        answers = two_refreshes_at_once(app, shop, first["refresh_token"])

    assert sorted(answer.status_code for answer in answers) == [200, 400]
    winner = next(answer.get_json() for answer in answers if answer.status_code == 200)
    client = app.test_client()
    assert_invalid_token(read_profile(client, winner["access_token"]))
    assert_invalid_grant(refresh(client, shop, winner["refresh_token"]))


def chain_register(vault: Services, vault_id: str) -> Any:
    return vault.store.read_register(vault_id, f"refresh.{live_grant_id(vault, vault_id)}")


def test_a_chain_gets_its_register_when_it_starts_and_a_refresh_moves_only_that(
    app: Flask, shop: Vendor, vault: Services, vault_id: str
) -> None:
    current = tokens_for(app, shop, ALL)
    started = chain_register(vault, vault_id)
    before = vault.store.read_vault(vault_id)
    client = app.test_client()

    for _ in range(3):
        current = refresh(client, shop, current["refresh_token"]).get_json()

    assert started is not None
    assert started["counter"] == 1
    assert chain_register(vault, vault_id) == {**started, "counter": 4}
    assert vault.store.read_vault(vault_id) == before
    assert read_profile(client, current["access_token"]).status_code == 200


def test_a_refresh_whose_move_cannot_be_synced_can_be_retried_with_the_same_token(
    app: Flask,
    shop: Vendor,
    vault: Services,
    vault_id: str,
    events: ListSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = tokens_for(app, shop, ALL)
    started = chain_register(vault, vault_id)
    real_datasync = os.fdatasync
    failed: list[str] = []

    def datasync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(".reg") and not failed:
            failed.append(target)
            raise OSError(5, "Input/output error")
        real_datasync(fd)

    monkeypatch.setattr(os, "fdatasync", datasync)
    client = app.test_client()

    assert_oauth_error(
        refresh(client, shop, first["refresh_token"]), 503, "temporarily_unavailable"
    )
    assert len(failed) == 1
    assert chain_register(vault, vault_id) == started

    retried = refresh(client, shop, first["refresh_token"])

    assert retried.status_code == 200
    assert reuses(events) == []
    assert read_profile(client, first["access_token"]).status_code == 200
    assert read_profile(client, retried.get_json()["access_token"]).status_code == 200


def test_a_grant_that_ends_loses_its_register_and_its_tokens_stay_refused(
    app: Flask,
    shop: Vendor,
    vault: Services,
    vault_id: str,
    clock: FakeClock,
    events: ListSink,
) -> None:
    client = app.test_client()
    kept = tokens_for(app, shop, ALL)
    kept_grant = live_grant_id(vault, vault_id)
    kept = refresh(client, shop, kept["refresh_token"]).get_json()
    vault.consents.remove_field(vault_id, kept_grant, "email")  # Narrowed: still live.
    assert vault.store.read_register(vault_id, f"refresh.{kept_grant}") is not None
    vault.consents.revoke(vault_id, kept_grant)

    assert vault.store.read_register(vault_id, f"refresh.{kept_grant}") is None
    assert_invalid_grant(refresh(client, shop, kept["refresh_token"]))

    later = tokens_for(app, shop, ALL)
    later_grant = live_grant_id(vault, vault_id)
    assert later_grant != kept_grant
    assert vault.store.read_register(vault_id, f"refresh.{later_grant}") is not None
    clock.advance(90 * DAY + 1)
    vault.consents.expire_due(vault_id)

    assert vault.store.read_register(vault_id, f"refresh.{later_grant}") is None
    assert_invalid_grant(refresh(client, shop, later["refresh_token"]))
    assert reuses(events) == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (OSError(5, "Input/output error"), "Input/output error"),
        (OSError("no errno"), "StorageError"),
        (PermissionError(13, "Permission denied"), "Permission denied"),
    ],
)
def test_a_register_that_cannot_be_removed_does_not_undo_the_revocation(
    app: Flask,
    shop: Vendor,
    vault: Services,
    vault_id: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: OSError,
    reason: str,
) -> None:
    tokens = tokens_for(app, shop, ALL)
    grant_id = live_grant_id(vault, vault_id)

    def broken(*args: Any) -> None:
        if isinstance(error, PermissionError):
            raise error  # As a store that let an OSError through would.
        try:
            raise error
        except OSError as exc:
            raise StorageError(f"cannot remove {vault_id}.refresh.{grant_id}.reg: {exc}") from exc

    monkeypatch.setattr(vault.store, "delete_register", broken)
    ended = vault.consents.revoke(vault_id, grant_id)

    assert ended.status == "revoked"
    assert f"the register of an ended grant was not removed: {reason}" in caplog.text
    assert vault_id not in caplog.text
    assert_invalid_grant(refresh(app.test_client(), shop, tokens["refresh_token"]))


def test_a_chain_start_that_the_grant_ended_under_leaves_no_register(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation lands, and removes the register, just before the code exchange
    writes the chain's first position: the exchange removes it again."""
    swaps = intercept_first_swap(
        vault, monkeypatch, lambda: vault.consents.revoke(vault_id, live_grant_id(vault, vault_id))
    )
    tokens = tokens_for(app, shop, ALL)
    monkeypatch.undo()
    (grant,) = vault.consents.grants(vault_id)

    assert swaps == [False, True]
    assert grant.status == "revoked"
    assert vault.store.read_register(vault_id, f"refresh.{grant.grant_id}") is None
    assert_invalid_grant(refresh(app.test_client(), shop, tokens["refresh_token"]))


def intercept_first_swap(
    vault: Services, monkeypatch: pytest.MonkeyPatch, before: Any
) -> list[bool]:
    """Run ``before()`` just before the next register swap; return the swaps' results."""
    swap = vault.store.swap_register
    results: list[bool] = []

    def intercepted(*args: Any) -> bool:
        if not results:
            results.append(False)
            before()
        outcome = swap(*args)
        results.append(outcome)
        return outcome

    monkeypatch.setattr(vault.store, "swap_register", intercepted)
    return results


def test_a_grant_revocation_landing_while_the_chain_moves_wins(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = tokens_for(app, shop, ALL)
    intercept_first_swap(
        vault, monkeypatch, lambda: vault.consents.revoke(vault_id, live_grant_id(vault, vault_id))
    )

    assert_invalid_grant(refresh(app.test_client(), shop, tokens["refresh_token"]))


def test_a_token_revocation_landing_while_the_chain_moves_wins(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 7009 revocation of the refresh token leaves the grant live but ends its tokens."""
    tokens = tokens_for(app, shop, ALL)
    intercept_first_swap(
        vault, monkeypatch, lambda: vault.access.revoke(tokens["refresh_token"], shop.client_id)
    )

    answer = refresh(app.test_client(), shop, tokens["refresh_token"])

    assert_invalid_grant(answer)
    assert vault.consents.grants(vault_id)[0].status == "active"


def test_a_new_chain_started_while_the_old_one_moves_ends_it_and_revokes_nothing(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = tokens_for(app, shop, ALL)
    new: dict[str, Any] = {}
    results = intercept_first_swap(
        vault, monkeypatch, lambda: new.update(tokens_for(app, shop, ALL))
    )
    client = app.test_client()

    assert_invalid_grant(refresh(client, shop, old["refresh_token"]))
    monkeypatch.undo()

    assert results[-1] is False  # The old chain's swap lost to the new chain's start.
    assert read_profile(client, new["access_token"]).status_code == 200
    assert refresh(client, shop, new["refresh_token"]).status_code == 200


def test_a_reuse_is_seen_even_when_a_new_chain_starts_before_the_loser_looks_again(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The holder of a copied token refreshes first; a new authorization then starts another
    chain; only then does the rightful holder's swap fail. The replaced chain's last
    position, kept in the register, still shows the token was used: the grant is revoked."""
    first = tokens_for(app, shop, ALL)
    stolen: dict[str, Any] = {}

    def race() -> None:
        stolen.update(refresh(app.test_client(), shop, first["refresh_token"]).get_json())
        tokens_for(app, shop, ALL)

    intercept_first_swap(vault, monkeypatch, race)
    client = app.test_client()

    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))
    monkeypatch.undo()

    assert_invalid_token(read_profile(client, stolen["access_token"]))
    assert_invalid_grant(refresh(client, shop, stolen["refresh_token"]))


def test_a_chain_started_late_never_takes_the_register_from_a_newer_one(
    app: Flask, shop: Vendor, vault: Services, vault_id: str
) -> None:
    """A start whose register write comes after a newer chain's (a slow process) leaves
    the newer chain's position alone, so a used token of that chain stays used."""
    older = tokens_for(app, shop, ALL)
    older_claims = vault.access.peek(older["refresh_token"], REFRESH)
    newer = tokens_for(app, shop, ALL)
    client = app.test_client()
    moved = refresh(client, shop, newer["refresh_token"]).get_json()
    position = chain_register(vault, vault_id)

    assert older_claims is not None
    start = {"family": older_claims.family, "counter": 1}
    vault.access._place_chain(vault_id, older_claims, start, {"refresh": {"gen": 1}})

    assert chain_register(vault, vault_id) == position
    assert_invalid_grant(refresh(client, shop, newer["refresh_token"]))
    assert_invalid_token(read_profile(client, moved["access_token"]))


def register_files(config: dict[str, Any], vault_id: str) -> list[Path]:
    return sorted(Path(config["DATA"]).rglob(f"{vault_id}.refresh.*.reg"))


def as_before_registers(vault: Services, vault_id: str, config: dict[str, Any]) -> None:
    """Make the grant's chain look as one started before registers: no chain number in the
    vault record, its position there, and no register file."""
    grant_id = live_grant_id(vault, vault_id)

    def as_before(doc: dict[str, Any]) -> dict[str, Any]:
        record = doc["grants"][grant_id]
        record.pop("chains")
        record["refresh"] = {"family": record["refresh"]["family"], "counter": 1}
        return doc

    vault.store.update_vault(vault_id, as_before)
    for path in register_files(config, vault_id):
        path.unlink()


def test_a_chain_started_before_registers_goes_on_from_its_vault_record(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, config: dict[str, Any]
) -> None:
    first = tokens_for(app, shop, ALL)
    as_before_registers(vault, vault_id, config)
    client = app.test_client()

    second = refresh(client, shop, first["refresh_token"]).get_json()
    third = refresh(client, shop, second["refresh_token"]).get_json()
    assert read_profile(client, third["access_token"]).status_code == 200

    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))
    assert_invalid_token(read_profile(client, third["access_token"]))


def test_a_chain_from_before_registers_is_numbered_when_it_first_moves(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, config: dict[str, Any]
) -> None:
    """So that losing its register afterwards refuses its tokens rather than taking the
    chain from the vault record's stale position again."""
    first = tokens_for(app, shop, ALL)
    grant_id = live_grant_id(vault, vault_id)
    as_before_registers(vault, vault_id, config)
    client = app.test_client()
    second = refresh(client, shop, first["refresh_token"]).get_json()

    assert vault.store.read_vault(vault_id)["grants"][grant_id]["refresh"]["gen"] == 1
    for path in register_files(config, vault_id):
        path.unlink()
    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))
    assert_invalid_grant(refresh(client, shop, second["refresh_token"]))


def test_a_chain_whose_register_is_lost_is_refused_not_started_over(
    app: Flask, shop: Vendor, vault: Services, vault_id: str, config: dict[str, Any]
) -> None:
    first = tokens_for(app, shop, ALL)
    client = app.test_client()
    second = refresh(client, shop, first["refresh_token"]).get_json()
    [path] = register_files(config, vault_id)
    path.unlink()

    assert_invalid_grant(refresh(client, shop, first["refresh_token"]))
    assert_invalid_grant(refresh(client, shop, second["refresh_token"]))


def test_a_new_chain_starts_afresh_and_ends_the_one_before(
    app: Flask, shop: Vendor, vault_id: str
) -> None:
    client = app.test_client()
    old = tokens_for(app, shop, ALL)
    old = refresh(client, shop, old["refresh_token"]).get_json()
    new = tokens_for(app, shop, ALL)

    for _ in range(2):
        new = refresh(client, shop, new["refresh_token"]).get_json()
        assert "refresh_token" in new

    assert_invalid_grant(refresh(client, shop, old["refresh_token"]))
    assert read_profile(client, new["access_token"]).status_code == 200


def test_refresh_token_of_another_vendor_is_refused_and_left_working(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    other = register(client, client_name="Other Shop")
    tokens = tokens_for(app, shop, ALL)
    assert_invalid_grant(refresh(client, other, tokens["refresh_token"]))
    assert refresh(client, shop, tokens["refresh_token"]).status_code == 200


def test_access_token_is_not_a_refresh_token(app: Flask, shop: Vendor, vault_id: str) -> None:
    tokens = tokens_for(app, shop, ALL)
    assert_invalid_grant(refresh(app.test_client(), shop, tokens["access_token"]))


@pytest.mark.parametrize("reason", ["reused", "revoked", "another vendor's", "not a refresh"])
def test_refused_refresh_token_says_why(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, reason: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vendor, token = shop, tokens["refresh_token"]
    if reason == "reused":
        refresh(client, shop, token)
    elif reason == "revoked":
        client.post("/oauth/revoke", data={"token": token}, auth=shop.auth)
    elif reason == "another vendor's":
        vendor = register(client, client_name="Other Shop")
    else:
        token = tokens["access_token"]
    assert_oauth_error(refresh(client, vendor, token), 400, "invalid_grant")


# Another vendor's tokens at the introspection and revocation endpoints.


def test_vendor_b_introspecting_vendor_as_token_sees_it_inactive(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    other = register(client, client_name="Other Shop")
    tokens = tokens_for(app, shop, ALL)
    for kind in ("access_token", "refresh_token"):
        response = client.post("/oauth/introspect", data={"token": tokens[kind]}, auth=other.auth)
        assert response.status_code == 200
        assert response.get_json() == {"active": False}
        mine = client.post("/oauth/introspect", data={"token": tokens[kind]}, auth=shop.auth)
        assert mine.get_json()["active"] is True


def test_a_token_whose_fields_were_all_withdrawn_introspects_as_inactive(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    email_only = tokens_for(app, shop, "profile:email")["access_token"]
    tokens_for(app, shop, "profile:given_name")  # The grant now holds given_name too.
    vault.consents.remove_field(vault_id, live_grant_id(vault, vault_id), "email")

    assert read_profile(client, email_only).status_code == 403
    answer = client.post("/oauth/introspect", data={"token": email_only}, auth=shop.auth)
    assert answer.get_json() == {"active": False}


@pytest.mark.parametrize("used", [False, True], ids=["unused", "used"])
def test_an_authorization_code_introspects_as_inactive(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str, used: bool
) -> None:
    """A code is not a token a vendor holds for API use (RFC 7662 answers only for those)."""
    code, verifier = code_for(app, shop)
    if used:
        assert exchange(client, shop, code, verifier).status_code == 200
    response = client.post("/oauth/introspect", data={"token": code}, auth=shop.auth)
    assert response.status_code == 200
    assert response.get_json() == {"active": False}


def test_vendor_b_revoking_vendor_as_tokens_has_no_effect(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    other = register(client, client_name="Other Shop")
    tokens = tokens_for(app, shop, ALL)
    for kind in ("access_token", "refresh_token"):
        response = client.post("/oauth/revoke", data={"token": tokens[kind]}, auth=other.auth)
        assert response.status_code == 200
    assert read_profile(client, tokens["access_token"]).status_code == 200
    assert refresh(client, shop, tokens["refresh_token"]).status_code == 200


def test_introspection_needs_client_authentication(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    response = client.post("/oauth/introspect", data={"token": tokens["access_token"]})
    assert_oauth_error(response, 401, "invalid_client")


# Time.


def test_expired_grant_gives_invalid_token(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    """The grant ends at 90 days even though the last access token would live longer."""
    tokens = tokens_for(app, shop, ALL)
    client = app.test_client()
    clock.advance(90 * DAY - 10 * MINUTE)
    fresh = refresh(client, shop, tokens["refresh_token"]).get_json()
    assert read_profile(client, fresh["access_token"]).status_code == 200

    clock.advance(10 * MINUTE + 1)

    assert_invalid_token(read_profile(client, fresh["access_token"]))
    assert_invalid_grant(refresh(client, shop, fresh["refresh_token"]))


def test_expired_access_token_gives_invalid_token(
    app: Flask, shop: Vendor, vault_id: str, clock: FakeClock
) -> None:
    tokens = tokens_for(app, shop, ALL)
    client = app.test_client()
    assert tokens["expires_in"] <= 15 * MINUTE
    clock.advance(15 * MINUTE - 1)
    assert read_profile(client, tokens["access_token"]).status_code == 200
    clock.advance(1)
    assert_invalid_token(read_profile(client, tokens["access_token"]))
    renewed = refresh(client, shop, tokens["refresh_token"])
    assert renewed.status_code == 200
    assert read_profile(client, renewed.get_json()["access_token"]).status_code == 200


# The operator and the customer.


def test_disabled_vendor_is_refused_at_once(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vault.vendors.disable(shop.client_id)
    assert_invalid_token(read_profile(client, tokens["access_token"]))
    assert_oauth_error(refresh(client, shop, tokens["refresh_token"]), 401, "invalid_client")


def test_disabled_vendor_cannot_start_a_new_flow(
    client: FlaskClient, shop: Vendor, vault: Services
) -> None:
    vault.vendors.disable(shop.client_id)
    _, challenge = pkce_pair()
    response = client.get(authorize_url(shop, ALL, challenge))
    assert "Location" not in response.headers
    assert_oauth_error(response, 400, "invalid_client")


def test_disabled_vendor_client_credentials_are_invalid_client(
    client: FlaskClient, vault: Services
) -> None:
    vendor = confidential_vendor(client)
    vault.vendors.disable(vendor.client_id)
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=vendor.auth
    )
    assert_oauth_error(response, 401, "invalid_client")


def test_revoked_access_token_gives_invalid_token(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    response = client.post("/oauth/revoke", data={"token": tokens["access_token"]}, auth=shop.auth)
    assert response.status_code == 200
    assert_invalid_token(read_profile(client, tokens["access_token"]))


def test_access_token_used_a_moment_ago_is_refused_once_revoked(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    assert read_profile(client, tokens["access_token"]).status_code == 200
    response = client.post("/oauth/revoke", data={"token": tokens["access_token"]}, auth=shop.auth)
    assert response.status_code == 200
    assert_invalid_token(read_profile(client, tokens["access_token"]))


def test_revoked_refresh_token_is_invalid_grant(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    data = {"token": tokens["refresh_token"], "token_type_hint": "refresh_token"}
    assert client.post("/oauth/revoke", data=data, auth=shop.auth).status_code == 200
    assert_invalid_grant(refresh(client, shop, tokens["refresh_token"]))
    assert_invalid_token(read_profile(client, tokens["access_token"]))


def test_revoked_grant_gives_invalid_token(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vault.consents.revoke(vault_id, live_grant_id(vault, vault_id))
    assert_invalid_token(read_profile(client, tokens["access_token"]))
    assert_invalid_grant(refresh(client, shop, tokens["refresh_token"]))


def test_erased_vault_makes_the_vendors_tokens_fail(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vault.vaults.erase(vault_id)
    assert_invalid_token(read_profile(client, tokens["access_token"]))
    assert_invalid_grant(refresh(client, shop, tokens["refresh_token"]))


def test_a_read_while_an_erasure_is_under_way_is_invalid_token(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    """Erasure destroys the data key before the vault document: a read in between (or
    after an erasure cut short there) is refused like one after the erasure."""
    tokens = tokens_for(app, shop, ALL)
    vault.store.delete(DATAKEYS_TABLE, vault_id)  # What erasure does first.

    assert_oauth_error(read_profile(client, tokens["access_token"]), 401, "invalid_token")


def test_removed_field_is_gone_from_the_next_read(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    assert "postal_address" in read_profile(client, tokens["access_token"]).get_json()
    vault.consents.remove_field(vault_id, live_grant_id(vault, vault_id), "postal_address")
    body = read_profile(client, tokens["access_token"]).get_json()
    assert set(body) == {"sub", "email", "given_name"}


def test_refresh_after_narrowing_gets_only_what_is_still_granted(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vault.consents.remove_field(vault_id, live_grant_id(vault, vault_id), "postal_address")

    response = refresh(client, shop, tokens["refresh_token"], scope=ALL)

    assert response.status_code == 200, response.get_json()
    narrowed = response.get_json()
    assert narrowed["scope"].split() == ["profile:email", "profile:given_name"]
    body = read_profile(client, narrowed["access_token"]).get_json()
    assert set(body) == {"sub", "email", "given_name"}
    again = refresh(client, shop, narrowed["refresh_token"], scope=ALL)
    assert again.status_code == 200
    assert again.get_json()["scope"] == narrowed["scope"]


def test_refresh_without_a_scope_after_narrowing_gets_what_is_still_granted(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vault.consents.remove_field(vault_id, live_grant_id(vault, vault_id), "email")
    response = refresh(client, shop, tokens["refresh_token"])
    assert response.status_code == 200
    assert response.get_json()["scope"].split() == ["profile:given_name", "profile:postal_address"]


def test_refresh_asking_only_for_a_removed_field_is_invalid_scope(
    app: Flask, client: FlaskClient, shop: Vendor, vault: Services, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL)
    vault.consents.remove_field(vault_id, live_grant_id(vault, vault_id), "postal_address")
    response = refresh(client, shop, tokens["refresh_token"], scope="profile:postal_address")
    assert_oauth_error(response, 400, "invalid_scope")


def test_refresh_never_widens_beyond_the_grant(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    tokens = tokens_for(app, shop, ALL, fields=["email"])
    assert tokens["scope"] == "profile:email"
    response = refresh(client, shop, tokens["refresh_token"], scope=ALL)
    assert response.status_code == 200
    assert response.get_json()["scope"] == "profile:email"
    body = read_profile(client, response.get_json()["access_token"]).get_json()
    assert set(body) == {"sub", "email"}


def test_refreshing_for_fewer_fields_keeps_the_refresh_token_s_scope(
    app: Flask, client: FlaskClient, shop: Vendor, vault_id: str
) -> None:
    """RFC 6749 section 6: the new refresh token's scope is the old one's; asking for less
    narrows only the access token."""
    tokens = tokens_for(app, shop, ALL)

    fewer = refresh(client, shop, tokens["refresh_token"], scope="profile:email").get_json()
    assert fewer["scope"] == "profile:email"

    whole = refresh(client, shop, fewer["refresh_token"]).get_json()
    assert whole["scope"] == ALL


# Client credentials.


def test_client_credentials_for_a_profile_scope_is_invalid_scope(client: FlaskClient) -> None:
    vendor = confidential_vendor(client)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "profile:email"},
        auth=vendor.auth,
    )
    assert_oauth_error(response, 400, "invalid_scope")


def test_client_credentials_with_a_wrong_secret_is_invalid_client(client: FlaskClient) -> None:
    vendor = confidential_vendor(client)
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "segments:query"},
        auth=(vendor.client_id, "not-the-secret"),
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_client_credentials_token_cannot_read_a_profile(client: FlaskClient) -> None:
    vendor = confidential_vendor(client)
    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=vendor.auth
    ).get_json()["access_token"]
    response = read_profile(client, token)
    assert_oauth_error(response, 403, "insufficient_scope")


def test_client_credentials_for_a_vendor_that_did_not_register_them_is_refused(
    client: FlaskClient, shop: Vendor
) -> None:
    response = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=shop.auth
    )
    assert_oauth_error(response, 400, "unauthorized_client")


# Registration.


@pytest.fixture
def gated_client(config: dict[str, Any]) -> Iterator[FlaskClient]:
    """A server whose operator requires an initial access token to register."""
    application = create_app({**config, "ISSUER": ISSUER, "REGISTRATION_TOKEN": "operator-t0ken"})
    application.config["TESTING"] = True
    yield application.test_client()
    application.extensions["vrm"].close()


METADATA = {
    "client_name": "Gated Shop",
    "redirect_uris": [REDIRECT],
    "scope": "profile:email",
    "vrm_field_purposes": {"email": "send your order confirmations"},
}


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", "Basic b3BlcmF0b3ItdDBrZW4=", "Bearer"]
)
def test_registration_without_the_initial_access_token_is_refused(
    gated_client: FlaskClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = gated_client.post("/oauth/register", json=METADATA, headers=headers)
    assert_oauth_error(response, 401, "invalid_token")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_registration_with_the_initial_access_token_succeeds(gated_client: FlaskClient) -> None:
    headers = {"Authorization": "Bearer operator-t0ken"}
    response = gated_client.post("/oauth/register", json=METADATA, headers=headers)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"redirect_uris": ["http://shop.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://shop.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"scope": "profile:email profile:given_name"}, "invalid_client_metadata"),
        ({"scope": "profile:shoe_size"}, "invalid_client_metadata"),
        ({"grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
    ],
)
def test_registration_breaking_a_rule_is_refused(
    client: FlaskClient, overrides: dict[str, Any], error: str
) -> None:
    response = client.post("/oauth/register", json={**METADATA, **overrides})
    assert_oauth_error(response, 400, error)
