"""The app factory: keys discovery, health, security headers, and JSON errors for bad input."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient

from vrm.app import create_app


@pytest.fixture
def app(config: dict[str, Any]) -> Iterator[Flask]:
    application = create_app(config)
    application.config["TESTING"] = True
    yield application
    application.extensions["vrm"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_jwks_publishes_the_signing_key(client: FlaskClient, app: Flask) -> None:
    body = client.get("/jwks.json").get_json()
    assert body["keys"][0]["kid"] == app.extensions["vrm"].keys.signing.current().kid
    assert "d" not in body["keys"][0]


def test_pages_load_their_stylesheet(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert 'href="/static/vault.css"' in page
    with client.get("/static/vault.css") as css:
        assert css.status_code == 200
        assert css.mimetype == "text/css"


def test_health_answers_ok(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 200),
        ("/login", 200),
        ("/static/vault.css", 200),
        ("/jwks.json", 200),
        ("/healthz", 200),
        ("/.well-known/oauth-authorization-server", 200),
        ("/no-such-page", 404),
    ],
)
def test_every_response_carries_the_security_headers(
    client: FlaskClient, path: str, status: int
) -> None:
    with client.get(path) as response:
        assert response.status_code == status
        headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_unknown_path_is_a_json_404_for_machines(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_unknown_path_is_a_readable_page_for_people(client: FlaskClient) -> None:
    response = client.get("/nothing", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert b"Page not found" in response.data
    assert b"Traceback" not in response.data


def test_wrong_method_is_a_json_405(client: FlaskClient) -> None:
    response = client.post("/jwks.json")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_session_cookie_settings(app: Flask) -> None:
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.secret_key == app.extensions["vrm"].keys.session_key


@pytest.mark.parametrize(
    ("issuer", "setting", "secure"),
    [
        ("https://vault.example", False, True),
        ("HTTPS://vault.example", False, True),
        ("http://127.0.0.1:8000", False, False),
        ("http://127.0.0.1:8000", True, True),
    ],
)
def test_session_cookie_is_secure_when_people_reach_the_server_over_https(
    config: dict[str, Any], issuer: str, setting: bool, secure: bool
) -> None:
    application = create_app({**config, "ISSUER": issuer, "SECURE_COOKIES": setting})
    try:
        assert application.config["SESSION_COOKIE_SECURE"] is secure
        with application.test_request_context(base_url=issuer):
            response = application.make_response("x")
            session["seen"] = True
            application.session_interface.save_session(application, session, response)
        assert ("; Secure" in response.headers["Set-Cookie"]) is secure
    finally:
        application.extensions["vrm"].close()


@pytest.mark.parametrize("token", ["", "operator-given"])
def test_the_metadata_points_people_to_a_page_on_connecting(
    config: dict[str, Any], token: str
) -> None:
    application = create_app({**config, "REGISTRATION_TOKEN": token})
    try:
        client = application.test_client()
        metadata = client.get("/.well-known/oauth-authorization-server").get_json()
        documentation = metadata["service_documentation"]
        assert documentation == metadata["issuer"] + "/developers"
        page = client.get(documentation.removeprefix(metadata["issuer"]))
        assert page.status_code == 200
        assert page.mimetype == "text/html"
        html = page.get_data(as_text=True)
        assert f'href="{metadata["issuer"]}/.well-known/oauth-authorization-server"' in html
        assert 'href="/openapi.json"' in html
        assert 'href="/jwks.json"' in html
        assert "Access tokens last 15 minutes" in html
        assert ("initial access token" in html) is bool(token)
        assert 'href="/developers"' in client.get("/").get_data(as_text=True)
    finally:
        application.extensions["vrm"].close()
