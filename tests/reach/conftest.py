"""An app with customers who chose what to make countable, a marketing vendor with a
client credentials token, and a real webhook receiver on loopback."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock, make_app
from vault.events import ListSink
from vrm.services import Services

ISSUER = "https://vault.test"
REDIRECT = "https://shop.example/callback"
PURPOSES = {
    "email": "send you the offers you accept",
    "given_name": "greet you by name",
    "postal_address": "deliver what you order",
}
EVERY_CHANNEL = {"email": True, "sms": False, "phone": False, "post": False}


@dataclass
class Receiver:
    """A vendor's webhook endpoint: records each POST, answers with the next status."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, bytes]] = field(default_factory=list)
    #: Run on each POST before it is answered: what happens while a delivery is in flight.
    during: Callable[[], None] | None = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.received.append((self.headers.get("Content-Type", ""), self.rfile.read(length)))
            if state.during is not None:
                state.during()
            status = state.statuses.pop(0) if state.statuses else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/vrm-hook"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def reach_config(config: dict[str, Any]) -> dict[str, Any]:
    return {
        **config,
        "ISSUER": ISSUER,
        "SEGMENT_K": 3,
        "SEGMENT_NOISE": 0.0,
        "WEBHOOK_ALLOW_PRIVATE": "true",
    }


@pytest.fixture
def app(reach_config: dict[str, Any], clock: FakeClock, events: ListSink) -> Iterator[Flask]:
    application = make_app(reach_config, clock, events)
    yield application
    application.extensions["vrm"].close()


@pytest.fixture
def vault(app: Flask) -> Services:
    services: Services = app.extensions["vrm"]
    return services


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@dataclass
class Marketer:
    client_id: str
    client_secret: str
    token: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


_REGISTERED = itertools.count()


def register_marketer(
    client: FlaskClient, *, scope: str = "segments:query offers:send intents:read", **extra: Any
) -> Marketer:
    number = next(_REGISTERED)  # No two vendors may share a name.
    metadata = {
        "client_name": "Camera Shop" + (f" {number}" if number else ""),
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": " ".join([*(f"profile:{f}" for f in PURPOSES), scope]),
        "vrm_field_purposes": PURPOSES,
        **extra,
    }
    response = client.post("/oauth/register", json=metadata)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": scope},
        auth=(body["client_id"], body["client_secret"]),
    )
    assert token.status_code == 200, token.get_json()
    return Marketer(body["client_id"], body["client_secret"], token.get_json()["access_token"])


@pytest.fixture
def marketer(client: FlaskClient, receiver: Receiver) -> Marketer:
    return register_marketer(client, vrm_webhook_uri=receiver.url)


def customer(
    vault: Services,
    n: int,
    profile: Mapping[str, Any],
    *,
    segmentable: tuple[str, ...] = ("interests", "postal_address"),
    channels: Mapping[str, Any] | None = EVERY_CHANNEL,
) -> str:
    """A customer with ``profile``, the given fields countable, and channel choices."""
    vault_id = vault.vaults.sign_up(f"customer{n}@example.org", PASSWORD)
    values = dict(profile)
    if channels is not None:
        values["channel_preferences"] = dict(channels)
    vault.vaults.set_fields(vault_id, values)
    vault.vaults.set_segmentable(vault_id, segmentable)
    return vault_id


def cyclist(n: int, country: str = "GB") -> dict[str, Any]:
    return {
        "given_name": f"Rider{n}",
        "interests": ["cycling"],
        "postal_address": {"street": f"{n} Lane", "locality": "Town", "country": country},
    }
