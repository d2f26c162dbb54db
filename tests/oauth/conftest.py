"""An app with a registered vendor and a customer, and a helper that walks the
authorization code flow through the login and consent forms as a browser would."""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock, make_app
from vault.events import ListSink
from vrm.services import Services

ISSUER = "https://vault.test"
REDIRECT = "https://shop.example/callback"
EMAIL = "ada@example.org"
PURPOSES = {
    "email": "send your order confirmations",
    "given_name": "greet you by name",
    "postal_address": "deliver what you order",
}


@dataclass
class Vendor:
    client_id: str
    client_secret: str | None

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret or "")


@pytest.fixture
def app(config: dict[str, Any], clock: FakeClock, events: ListSink) -> Iterator[Flask]:
    application = make_app({**config, "ISSUER": ISSUER}, clock, events)
    yield application
    application.extensions["vrm"].close()


@pytest.fixture
def vault(app: Flask) -> Services:
    services: Services = app.extensions["vrm"]
    return services


@pytest.fixture
def vault_id(vault: Services) -> str:
    vault_id = vault.vaults.sign_up(EMAIL, PASSWORD)
    vault.vaults.set_fields(
        vault_id,
        {
            "given_name": "Ada",
            "postal_address": {
                "street": "12 St James's Square",
                "locality": "London",
                "country": "GB",
            },
        },
    )
    return vault_id


_REGISTERED = itertools.count()


def register(client: FlaskClient, **overrides: Any) -> Vendor:
    number = next(_REGISTERED)  # No two vendors may share a name.
    metadata = {
        "client_name": "Example Shop" + (f" {number}" if number else ""),
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": " ".join(f"profile:{f}" for f in PURPOSES),
        "vrm_field_purposes": PURPOSES,
        **overrides,
    }
    response = client.post("/oauth/register", json=metadata)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return Vendor(body["client_id"], body.get("client_secret"))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def shop(client: FlaskClient) -> Vendor:
    return register(client)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def authorize_url(vendor: Vendor, scope: str, challenge: str, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": vendor.client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "xyz-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/oauth/authorize?" + urlencode(params)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in page"
    return found.group(1)


def log_in(browser: FlaskClient, email: str = EMAIL, password: str = PASSWORD) -> None:
    page = browser.get("/login").get_data(as_text=True)
    response = browser.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page), "next": "/"},
    )
    assert response.status_code == 303


def consent(
    browser: FlaskClient,
    url: str,
    *,
    fields: list[str] | None = None,
    decision: str = "allow",
    duration: str = "90",
) -> dict[str, list[str]]:
    """Open the consent page, tick ``fields`` (None: leave all ticked), answer, and return
    the query of the redirect back to the vendor."""
    page = browser.get(url)
    if page.status_code == 302:
        return parse_qs(urlsplit(page.headers["Location"]).query)
    assert page.status_code == 200, page.get_data(as_text=True)
    html = page.get_data(as_text=True)
    offered = re.findall(r'name="field" value="([^"]+)"', html)
    chosen = offered if fields is None else fields
    data: dict[str, Any] = {
        "csrf_token": csrf_of(html),
        "decision": decision,
        "duration": duration,
        "field": chosen,
    }
    response = browser.post(url, data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(REDIRECT)
    return parse_qs(urlsplit(location).query)


def exchange(client: FlaskClient, vendor: Vendor, code: str, verifier: str) -> Any:
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        },
        auth=vendor.auth,
    )


def tokens_for(
    app: Flask, vendor: Vendor, scope: str, *, fields: list[str] | None = None
) -> dict[str, Any]:
    """Walk the whole flow for the logged-in customer and return the token response."""
    browser = app.test_client()
    log_in(browser)
    verifier, challenge = pkce_pair()
    answer = consent(browser, authorize_url(vendor, scope, challenge), fields=fields)
    response = exchange(app.test_client(), vendor, answer["code"][0], verifier)
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
