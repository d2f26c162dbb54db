"""Auditor accounts, pages and API: read-only, logged, and never shown a profile value."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import PASSWORD, FakeClock
from tests.test_cli import vrm
from tests.web.conftest import HTML, page, register_vendor, submit
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
    pages = [e.detail["page"] for e in events.events if e.type == "auditor.access"]
    assert pages == ["/auditor/log"] * 4
    assert all(e.actor == "auditor" for e in events.events if e.type == "auditor.access")


def test_summary_counts(desk: FlaskClient, activity: str, vault: Services) -> None:
    html = page(desk, "/auditor/vendors")
    assert activity in html
    assert 'data-count="grant-given">1<' in html
    assert 'data-count="grant-narrowed">1<' in html
    assert 'data-count="grant-revoked">0<' in html


def test_receipt_lookup_verifies(
    desk: FlaskClient, activity: str, vault: Services, vault_id: str
) -> None:
    receipt = vault.consents.grants(vault_id)[0].receipts[0]
    html = page(desk, f"/auditor/receipts?id={receipt.receipt_id}")
    assert "Verifies" in html
    assert activity in html
    assert "No receipt has that id." in page(desk, "/auditor/receipts?id=nothing")


def test_checkpoint_verifies(desk: FlaskClient, activity: str) -> None:
    html = page(desk, "/auditor/checkpoint")
    assert "Verifies" in html
    assert "vrm-vault/audit" in html


def test_no_profile_values_anywhere(
    desk: FlaskClient, activity: str, vault: Services, vault_id: str
) -> None:
    receipt = vault.consents.grants(vault_id)[0].receipts[0].receipt_id
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
    assert summary["vendors"][activity]["grants"]["given"] == 1
    wrong = browser.get("/api/v1/audit/log", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.get_json()["error"] == "invalid_token"
    assert browser.get("/api/v1/audit/log?start=9&end=1", headers=auth).status_code == 400
    profile = browser.get("/api/v1/profile", headers=auth)
    assert profile.status_code == 401
    assert profile.get_json()["error"] == "invalid_token"
    assert "Zenobia" not in profile.get_data(as_text=True)


@pytest.mark.usefixtures("env")
def test_cli_create_and_token() -> None:
    assert vrm("auditor", "create", "--email", AUDITOR).exit_code == 0
    token = vrm("auditor", "token", "--email", AUDITOR)
    assert token.exit_code == 0
    assert len(token.output.strip()) == 43
    with pytest.raises(AuthenticationFailed):
        vrm("auditor", "token", "--email", AUDITOR, stdin="wrong\n")
