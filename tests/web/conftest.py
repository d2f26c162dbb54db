"""An app on a real data directory with a hand-moved clock, a customer, browsers that
post forms as a person's browser would (with the page's CSRF token), and the app's routes
for tests that must cover every one of them."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from tests.conftest import FAST_ARGON2, PASSWORD, FakeClock, make_app
from vault.events import ListSink
from vault.vendors import Vendor
from vrm.app import create_app
from vrm.config import load_config
from vrm.services import Services

ISSUER = "https://vault.test"
EMAIL = "ada@example.org"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SHOP_PURPOSES = {
    "email": "send your order confirmations",
    "given_name": "greet you by name",
    "postal_address": "deliver what you order",
}


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
    return vault.vaults.sign_up(EMAIL, PASSWORD)


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A browser nobody has logged in with."""
    return app.test_client()


@pytest.fixture
def customer(app: Flask, vault_id: str) -> FlaskClient:
    """A browser the customer has logged in with."""
    client = app.test_client()
    log_in(client)
    return client


@pytest.fixture
def shop(vault: Services) -> Vendor:
    return register_vendor(vault, "Example Shop", SHOP_PURPOSES)


def register_vendor(vault: Services, name: str, purposes: Mapping[str, str]) -> Vendor:
    slug = name.lower().replace(" ", "-")
    vendor, _ = vault.vendors.register(
        {
            "client_name": name,
            "redirect_uris": [f"https://{slug}.example/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
            "scope": " ".join(f"profile:{field}" for field in purposes),
            "vrm_field_purposes": dict(purposes),
        }
    )
    return vendor


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in page"
    return found.group(1)


def token(client: FlaskClient) -> str:
    """The browser's CSRF token, as any page with a form carries it."""
    return csrf_of(client.get("/login").get_data(as_text=True))


def submit(client: FlaskClient, path: str, data: Mapping[str, Any] | None = None) -> TestResponse:
    """Post a form the way the page would: with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": token(client)}, headers=HTML)


def log_in(client: FlaskClient, email: str = EMAIL, password: str = PASSWORD) -> TestResponse:
    response = submit(client, "/login", {"email": email, "password": password, "next": ""})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def page(client: FlaskClient, path: str) -> str:
    response = client.get(path, headers=HTML)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def follow(client: FlaskClient, response: TestResponse) -> str:
    """The page a form's redirect leads to."""
    assert response.status_code == 303, response.get_data(as_text=True)
    return page(client, response.headers["Location"])


def error_next_to(html: str, input_id: str) -> str:
    """The error text the input with ``input_id`` points to with aria-describedby."""
    described = re.search(rf'id="{re.escape(input_id)}"[^>]*aria-describedby="([^"]+)"', html)
    assert described, f"{input_id} has no description"
    error_id = next(i for i in described.group(1).split() if i.endswith("-error"))
    found = re.search(rf'id="{re.escape(error_id)}">(.*?)</p>', html, re.DOTALL)
    assert found, f"no element {error_id}"
    shown = re.sub(r'<span class="visually-hidden">.*?</span>', "", found.group(1))
    return re.sub(r"<[^>]+>", "", shown).strip()


def value_of(html: str, input_id: str) -> str:
    found = re.search(rf'id="{re.escape(input_id)}"[^>]*value="([^"]*)"', html)
    assert found, f"no input {input_id}"
    return found.group(1)


@cache
def app_rules() -> tuple[Rule, ...]:
    """Every route the app serves, read from a throwaway app at collection time, so a
    route added later is covered by the tests parametrized over this without edits."""
    with tempfile.TemporaryDirectory() as data:
        application = create_app(load_config({"DATA": data, **FAST_ARGON2}, environ={}))
        application.extensions["vrm"].close()
        return tuple(application.url_map.iter_rules())


SAMPLE_ARGUMENTS = {
    "filename": "vault.css",
    "field_name": "email",
    "grant_id": "0" * 24,
    "offer_id": "off_" + "0" * 24,
    "intent_id": "int_" + "0" * 24,
}
"""A value for each URL variable the app's routes use; a new variable needs one here."""


def path_of(rule: Rule) -> str:
    missing = rule.arguments - set(SAMPLE_ARGUMENTS)
    assert not missing, f"add a sample value for {missing} to SAMPLE_ARGUMENTS"
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^:>]+:)?{name}>", SAMPLE_ARGUMENTS[name], path)
    return path


def rule_id(rule: Rule) -> str:
    return f"{rule.endpoint} {rule.rule}"


def cookie_copy(app: Flask, of: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of ``of``'s session cookie, as a thief would."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = of.get_cookie(name)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie(name, cookie.value)
    return thief
