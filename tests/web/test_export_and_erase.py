"""Downloading everything, and erasing the vault for good."""

from __future__ import annotations

import json

from flask.testing import FlaskClient

from tests.conftest import PASSWORD
from tests.test_erasure_and_export import record_vendor_requests
from tests.web.conftest import EMAIL, HTML, error_next_to, follow, page, submit, token
from vault.access_export import full_export
from vault.events import ListSink
from vault.vendors import Vendor
from vrm.services import Services


def test_export_page_has_a_download_button(customer: FlaskClient) -> None:
    html = page(customer, "/export")
    assert '<form method="post" action="/export">' in html
    assert "Download my data" in html


def test_export_downloads_the_whole_vault_as_json(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    vault.vaults.set_fields(vault_id, {"given_name": "Ada"})
    vault.consents.give(vault_id, shop.client_id, ["email"])
    with customer.post("/export", data={"csrf_token": token(customer)}) as response:
        assert response.status_code == 200
        assert response.mimetype == "application/json"
        disposition = response.headers["Content-Disposition"]
        assert disposition == 'attachment; filename="vrm-vault-export-2026-11-25.json"'
        assert response.headers["Cache-Control"] == "no-store"
        document = json.loads(response.get_data(as_text=True))
    assert document == full_export(
        vault.vaults, vault.history, vault_id, offers=vault.offers, intents=vault.intents
    ) | {"exported_at": document["exported_at"]}
    assert document["account"]["email"] == EMAIL
    assert document["profile"]["given_name"] == "Ada"
    assert document["grants"][0]["fields"] == {"email": "send your order confirmations"}


def test_export_holds_the_access_history(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    expected = record_vendor_requests(vault, vault_id)
    with customer.post("/export", data={"csrf_token": token(customer)}) as response:
        document = json.loads(response.get_data(as_text=True))
    assert document["access_history"] == expected


def test_export_is_recorded(customer: FlaskClient, events: ListSink) -> None:
    with customer.post("/export", data={"csrf_token": token(customer)}) as response:
        assert response.status_code == 200
    assert "vault.exported" in [event.type for event in events.events]


def test_erase_page_explains_and_asks_for_the_email(customer: FlaskClient) -> None:
    html = page(customer, "/erase")
    assert "destroys the key" in html
    assert "Every grant ends" in html
    assert f"type your email address: {EMAIL}" in html
    assert 'href="/export"' in html


def test_erase_needs_the_email_exactly(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    for typed in ("", "ada@example.com", EMAIL.upper()):
        response = submit(customer, "/erase", {"email": typed})
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert (
            error_next_to(html, "f-email") == f"To erase your vault, type {EMAIL} exactly as shown."
        )
    assert vault.vaults.profile(vault_id)["email"] == EMAIL


def test_erasure_ends_the_session_and_the_login(
    customer: FlaskClient, vault: Services, vault_id: str, browser: FlaskClient
) -> None:
    response = submit(customer, "/erase", {"email": f" {EMAIL} "})
    assert response.headers["Location"] == "/erased"
    html = follow(customer, response)
    assert "Your vault is erased" in html
    assert "your login no longer works" in html
    assert 'action="/logout"' not in html
    assert customer.get("/profile").status_code == 303
    failed = submit(browser, "/login", {"email": EMAIL, "password": PASSWORD})
    assert failed.status_code == 401
    assert vault_id not in list(vault.store.vault_ids())


def test_erased_page_without_an_erasure_goes_home(browser: FlaskClient) -> None:
    response = browser.get("/erased", headers=HTML)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
