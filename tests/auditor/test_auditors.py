"""Auditor accounts, pages and API: read-only, logged, and never shown a profile value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock
from tests.test_cli import vrm
from tests.web.conftest import HTML, cookie_copy, page, register_vendor, submit
from vault.audit.summary import vendor_summary
from vault.errors import AuthenticationFailed, LoginThrottled
from vault.events import ListSink
from vrm.services import Services

AUDITOR = "audit@example.org"
SHOP = {"email": "send receipts", "given_name": "greet you"}


@pytest.fixture
def auditor(vault: Services) -> str:
    return vault.auditors.create(AUDITOR, PASSWORD)


@pytest.fixture
def desk(browser: FlaskClient, auditor: str) -> FlaskClient:
    response = submit(browser, "/auditor/login", {"email": AUDITOR, "password": PASSWORD})
    assert response.status_code == 303
    return browser


@pytest.fixture
def activity(vault: Services, vault_id: str) -> str:
    """A grant, a read-free narrowing, and the shop's vendor id; the profile holds a name."""
    vault.vaults.set_fields(vault_id, {"given_name": "Zenobia"})
    shop = register_vendor(vault, "Example Shop", SHOP)
    grant = vault.consents.give(vault_id, shop.client_id, ["email", "given_name"])
    vault.consents.remove_field(vault_id, grant.grant_id, "given_name")
    return shop.client_id


def test_create_login_and_throttle(vault: Services, auditor: str, clock: FakeClock) -> None:
    assert vault.auditors.authenticate(AUDITOR.upper(), PASSWORD) == auditor
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            vault.auditors.authenticate(AUDITOR, "wrong password entirely")
    with pytest.raises(AuthenticationFailed):
        vault.auditors.authenticate(AUDITOR, "wrong password entirely")
    with pytest.raises(LoginThrottled):
        vault.auditors.authenticate(AUDITOR, PASSWORD)
    clock.advance(2)
    assert vault.auditors.authenticate(AUDITOR, PASSWORD) == auditor


def test_api_tokens(vault: Services, auditor: str) -> None:
    token = vault.auditors.issue_api_token(auditor)
    assert vault.auditors.check_api_token(token) == auditor
    with pytest.raises(AuthenticationFailed):
        vault.auditors.check_api_token(token[:-1] + ("A" if token[-1] != "A" else "B"))


def test_pages_need_an_auditor(customer: FlaskClient) -> None:
    for path in ("/auditor/log", "/auditor/vendors", "/auditor/receipts", "/auditor/checkpoint"):
        response = customer.get(path, headers=HTML)
        assert response.status_code == 303
        assert response.headers["Location"] == "/auditor/login"


def test_auditor_session_is_not_a_customer_session(desk: FlaskClient) -> None:
    response = desk.get("/profile", headers=HTML)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


def test_log_page_filters_and_logs_access(
    desk: FlaskClient, activity: str, events: ListSink
) -> None:
    html = page(desk, "/auditor/log")
    assert "grant.given" in html
    assert "grant.narrowed" in html
    filtered = page(desk, "/auditor/log?type=grant.narrowed")
    assert "<code>grant.given</code>" not in filtered
    assert "<code>grant.narrowed</code>" in filtered
    other = page(desk, "/auditor/log?vendor=nobody")
    assert "No entries match." in other
    assert "No entries match." in page(desk, "/auditor/log?since=2999-01-01")
    accesses = [e for e in events.events if e.type == "auditor.access"]
    assert [e.detail["page"] for e in accesses] == ["/auditor/log"] * 4
    assert all(e.actor == "auditor" for e in accesses)
    # Which auditor, under a pseudonym that is the same at every access, and what they asked.
    assert len({e.detail["auditor"] for e in accesses}) == 1
    assert len(str(accesses[0].detail["auditor"])) == 16
    assert [e.detail["query"] for e in accesses] == [
        "",
        "type=grant.narrowed",
        "vendor=nobody",
        "since=2999-01-01",
    ]


def test_summary_counts_grants_as_they_stand(
    desk: FlaskClient, activity: str, vault: Services, vault_id: str
) -> None:
    html = page(desk, "/auditor/vendors")
    assert activity in html
    assert 'data-count="grants-active">1<' in html
    assert 'data-count="grants-revoked">0<' in html
    assert 'data-count="event-given">1<' in html
    assert 'data-count="event-narrowed">1<' in html
    grant = vault.consents.grants(vault_id)[0]
    vault.consents.revoke(vault_id, grant.grant_id)
    vault.consents.give(vault_id, activity, ["email"])
    vault.consents.give(vault_id, activity, ["given_name"])
    html = page(desk, "/auditor/vendors")
    assert 'data-count="grants-active">1<' in html
    assert 'data-count="grants-revoked">1<' in html
    assert 'data-count="event-given">2<' in html
    assert 'data-count="event-extended">1<' in html


def test_summary_follows_each_grant_to_its_end() -> None:
    def grant(event: str, vault: str, vendor: str = "shop") -> dict[str, Any]:
        return {"type": f"grant.{event}", "vault": vault, "vendor": vendor}

    entries: list[dict[str, Any]] = [
        grant("given", "v1"),
        grant("extended", "v1"),
        grant("narrowed", "v1"),
        grant("given", "v2"),
        grant("revoked", "v2"),
        grant("given", "v3"),
        grant("expired", "v3"),
        grant("given", "v4"),
        grant("given", "v4", vendor="club"),
        {"type": "vault.erased", "vault": "v4", "actor": "customer"},
        grant("given", "v5"),
        grant("revoked", "v5"),
        grant("given", "v5"),
        {"type": "data.read", "vault": "v1", "vendor": "shop", "fields": ["email"]},
        {"type": "request.refused", "vault": "v2", "vendor": "shop"},
    ]
    summary = vendor_summary(entries)
    assert summary["shop"].to_json() == {
        "grants": {"active": 2, "revoked": 2, "expired": 1, "erased": 1, "disabled": 0},
        "grant_events": {"given": 6, "extended": 1, "narrowed": 1, "revoked": 2, "expired": 1},
        "reads": {"email": 1},
        "refused": 1,
    }
    assert summary["club"].to_json()["grants"] == {
        "active": 0,
        "revoked": 0,
        "expired": 0,
        "erased": 1,
        "disabled": 0,
    }


def test_a_disabled_vendor_s_live_grants_stop_counting_as_active() -> None:
    entries: list[dict[str, Any]] = [
        {"type": "grant.given", "vault": "v1", "vendor": "shop"},
        {"type": "grant.given", "vault": "v2", "vendor": "shop"},
        {"type": "grant.revoked", "vault": "v2", "vendor": "shop"},
        {"type": "grant.given", "vault": "v3", "vendor": "shop"},
        {"type": "vendor.disabled", "vendor": "shop", "actor": "operator"},
    ]
    assert vendor_summary(entries)["shop"].to_json()["grants"] == {
        "active": 0,
        "revoked": 1,
        "expired": 0,
        "erased": 0,
        "disabled": 2,
    }


def test_receipt_lookup_verifies(
    desk: FlaskClient, activity: str, vault: Services, vault_id: str
) -> None:
    receipt = vault.consents.grants(vault_id)[0].receipts[0]
    html = page(desk, f"/auditor/receipts?id={receipt.receipt_id}")
    assert "Verifies" in html
    assert activity in html
    assert "No receipt has that id." in page(desk, "/auditor/receipts?id=nothing")


def test_checkpoint_page_checks_the_latest_signed_checkpoint(
    desk: FlaskClient, activity: str, vault: Services
) -> None:
    note = vault.checkpoints.sign()
    html = page(desk, "/auditor/checkpoint")
    assert "Verifies" in html
    assert "vrm-vault/audit" in html
    size = note.split("\n")[1]
    assert f'data-count="signed-size">{size}<' in html
    assert f"<code>{vault.audit.root(int(size)).hex()}</code>" in html


def test_checkpoint_page_signs_nothing(desk: FlaskClient, activity: str, vault: Services) -> None:
    assert "No checkpoint has been signed yet" in page(desk, "/auditor/checkpoint")
    assert vault.checkpoints.latest() is None
    note = vault.checkpoints.sign()
    record = vault.audit.directory / "checkpoint-last.json"
    written = record.stat().st_mtime_ns
    page(desk, "/auditor/checkpoint")
    assert vault.checkpoints.latest() == note
    assert record.stat().st_mtime_ns == written


def test_checkpoint_page_reports_a_tampered_log(
    desk: FlaskClient, activity: str, vault: Services
) -> None:
    vault.checkpoints.sign()
    entries = vault.audit.directory / "entries.jsonl"
    tampered = entries.read_bytes().replace(b'"grant.narrowed"', b'"grant.nerrowed"', 1)
    assert tampered != entries.read_bytes()
    entries.write_bytes(tampered)
    html = page(desk, "/auditor/checkpoint")
    assert "Does not verify" in html
    assert "Verifies</span>" not in html
    assert "does not match its leaf hash" in html
    assert "hashed again, give the root" in html
    assert "the log was changed after the checkpoint was signed" in html


def test_checkpoint_page_reports_a_forged_signature(
    desk: FlaskClient, activity: str, vault: Services
) -> None:
    vault.checkpoints.sign()
    record = vault.audit.directory / "checkpoint-last.json"
    saved = json.loads(record.read_text())
    body, _, signature = saved["note"].rpartition(" ")
    forged = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    record.write_text(json.dumps({**saved, "note": f"{body} {forged}"}))
    html = page(desk, "/auditor/checkpoint")
    assert "Does not verify" in html
    assert "The signature does not verify with this server&#39;s key" in html


def test_no_profile_values_anywhere(
    desk: FlaskClient, activity: str, vault: Services, vault_id: str
) -> None:
    receipt = vault.consents.grants(vault_id)[0].receipts[0].receipt_id
    vault.checkpoints.sign()
    paths = ["/auditor/log", "/auditor/vendors", "/auditor/checkpoint"]
    for path in [*paths, f"/auditor/receipts?id={receipt}"]:
        html = page(desk, path)
        assert "Zenobia" not in html, path
        assert "ada@example.org" not in html, path


def test_logout_and_csrf(desk: FlaskClient) -> None:
    assert desk.post("/auditor/logout", data={}, headers=HTML).status_code == 400
    assert desk.get("/auditor/log", headers=HTML).status_code == 200
    assert submit(desk, "/auditor/logout").status_code == 303
    assert desk.get("/auditor/log", headers=HTML).status_code == 303


def test_security_headers(desk: FlaskClient) -> None:
    headers = desk.get("/auditor/log", headers=HTML).headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_api(browser: FlaskClient, vault: Services, auditor: str, activity: str) -> None:
    auth = {"Authorization": f"Bearer {vault.auditors.issue_api_token(auditor)}"}
    body = browser.get("/api/v1/audit/log?start=0", headers=auth).get_json()
    assert body["entries"][0]["index"] == 0
    assert any(e["entry"]["type"] == "grant.given" for e in body["entries"])
    summary = browser.get("/api/v1/audit/vendors", headers=auth).get_json()
    assert summary["vendors"][activity]["grants"]["active"] == 1
    assert summary["vendors"][activity]["grant_events"]["given"] == 1
    wrong = browser.get("/api/v1/audit/log", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_token"
    assert browser.get("/api/v1/audit/log?start=9&end=1", headers=auth).status_code == 400
    profile = browser.get("/api/v1/profile", headers=auth)
    assert profile.status_code == 401
    assert profile.get_json()["error"] == "invalid_token"
    assert "Zenobia" not in profile.get_data(as_text=True)


def test_api_receipt_lookup(
    browser: FlaskClient,
    vault: Services,
    vault_id: str,
    auditor: str,
    activity: str,
    events: ListSink,
) -> None:
    auth = {"Authorization": f"Bearer {vault.auditors.issue_api_token(auditor)}"}
    receipt = vault.consents.grants(vault_id)[0].receipts[-1]
    before = vault.store.read_vault(vault_id)
    response = browser.get(f"/api/v1/audit/receipts?id={receipt.receipt_id.upper()}", headers=auth)
    assert response.status_code == 200
    body = response.get_json()
    assert body["receipt_id"] == receipt.receipt_id
    assert body["event"] == "narrowed"
    assert body["verifies"] is True
    assert body["claims"]["consentReceiptID"] == receipt.receipt_id
    assert "Zenobia" not in response.get_data(as_text=True)
    assert vault.store.read_vault(vault_id) == before
    accessed = [e.detail["page"] for e in events.events if e.type == "auditor.access"]
    assert accessed == ["/api/v1/audit/receipts"]

    missing = browser.get("/api/v1/audit/receipts?id=no-such-receipt", headers=auth)
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not_found"
    for query in ("", "?id=", f"?id={'x' * 65}"):
        assert browser.get(f"/api/v1/audit/receipts{query}", headers=auth).status_code == 400
    anonymous = browser.get(f"/api/v1/audit/receipts?id={receipt.receipt_id}")
    assert anonymous.status_code == 401
    assert "claims" not in anonymous.get_json()


@pytest.mark.usefixtures("env")
def test_cli_create_and_token() -> None:
    assert vrm("auditor", "create", "--email", AUDITOR).exit_code == 0
    token = vrm("auditor", "token", "--email", AUDITOR)
    assert token.exit_code == 0
    assert len(token.output.strip()) == 43
    with pytest.raises(AuthenticationFailed):
        vrm("auditor", "token", "--email", AUDITOR, stdin="wrong\n")


def test_an_auditor_s_logout_ends_the_session_on_the_server(app: Flask, desk: FlaskClient) -> None:
    copy = cookie_copy(app, desk)
    assert copy.get("/auditor/log", headers=HTML).status_code == 200

    submit(desk, "/auditor/logout")

    assert copy.get("/auditor/log", headers=HTML).status_code == 303


def test_removing_an_auditor_ends_their_sessions_and_tokens(
    vault: Services, desk: FlaskClient, auditor: str
) -> None:
    auth = {"Authorization": f"Bearer {vault.auditors.issue_api_token(auditor)}"}
    assert desk.get("/api/v1/audit/vendors", headers=auth).status_code == 200

    assert vault.auditors.revoke_tokens(AUDITOR) == 1
    assert desk.get("/api/v1/audit/vendors", headers=auth).status_code == 401
    assert desk.get("/auditor/log", headers=HTML).status_code == 200  # Web login stays.

    vault.auditors.remove(AUDITOR)
    assert desk.get("/auditor/log", headers=HTML).status_code == 303
    with pytest.raises(AuthenticationFailed):
        vault.auditors.authenticate(AUDITOR, PASSWORD)


@pytest.mark.usefixtures("env")
def test_cli_revoke_tokens_and_remove() -> None:
    vrm("auditor", "create", "--email", AUDITOR)
    vrm("auditor", "token", "--email", AUDITOR)
    vrm("auditor", "token", "--email", AUDITOR)
    assert vrm("auditor", "revoke-tokens", "--email", AUDITOR).output.strip() == (
        f"revoked 2 tokens of {AUDITOR}"
    )
    assert vrm("auditor", "remove", "--email", AUDITOR).output.strip() == (
        f"removed the auditor {AUDITOR}"
    )
    with pytest.raises(AuthenticationFailed):
        vrm("auditor", "token", "--email", AUDITOR)
