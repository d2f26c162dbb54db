from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.oauth.conftest import Vendor, bearer, tokens_for


def test_smoke(app: Flask, client: FlaskClient, shop: Vendor, vault_id: str) -> None:
    token = tokens_for(app, shop, "profile:email profile:given_name")
    print(token)
    got = client.get("/api/v1/profile", headers=bearer(token["access_token"]))
    print(got.get_json())
    assert got.status_code == 200
