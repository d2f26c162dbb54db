"""An auditor in a real browser: logs in, reads and filters the log, reads the per-vendor
summary and the checkpoint, and sees no customer's profile values anywhere."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import RequestLog, Screenshots
from tests.browser.vendor import Vendor
from tests.conftest import PASSWORD
from tests.live import LiveServer

pytestmark = pytest.mark.browser

AUDITOR = "auditor@example.org"
CUSTOMER = "grace@example.org"


def test_auditor_reads_filters_and_checks_the_log(
    desktop: Page, live: LiveServer, screenshots: Screenshots, requested: RequestLog
) -> None:
    services = live.services
    services.auditors.create(AUDITOR, PASSWORD)
    mill = Vendor.register(live.issuer, "Paper Mill", {"email": "invoices"}, "http://127.0.0.1/m")
    farm = Vendor.register(live.issuer, "Farm Box", {"email": "deliveries"}, "http://127.0.0.1/f")
    vault_id = services.vaults.sign_up(CUSTOMER, PASSWORD)
    services.vaults.set_fields(vault_id, {"given_name": "Grace Hopper"})
    services.consents.give(vault_id, mill.client_id, ["email"])
    services.consents.give(vault_id, farm.client_id, ["email"])
    page, shots = desktop, screenshots

    page.goto("/auditor/login")
    expect(page.get_by_role("heading", name="Log in to audit this vault server")).to_be_visible()
    shots.take(page, "auditor-login")
    page.get_by_label("Email address").fill(AUDITOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    table = page.locator(".audit-table")
    expect(table).to_contain_text(mill.client_id)
    expect(table).to_contain_text(farm.client_id)
    shots.take(page, "auditor-log")

    page.get_by_label("Vendor").select_option(mill.client_id)
    page.get_by_role("button", name="Show").click()
    expect(table).to_contain_text(mill.client_id)
    expect(table).not_to_contain_text(farm.client_id)
    expect(table).to_contain_text("grant.given")
    shots.take(page, "auditor-log-filtered")

    page.goto("/auditor/vendors")
    expect(page.get_by_role("heading", name="Vendors")).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(mill.client_id)
    mill_summary = page.locator(".vendor-summary", has_text=mill.client_id)
    expect(mill_summary.locator('[data-count="grants-active"]')).to_have_text("1")
    shots.take(page, "auditor-vendors")

    services.checkpoints.sign()
    page.goto("/auditor/checkpoint")
    expect(page.get_by_text("Verifies", exact=True)).to_be_visible()
    shots.take(page, "auditor-checkpoint")

    for path in ["/auditor/log", "/auditor/vendors", "/auditor/checkpoint"]:
        page.goto(path)
        assert "Grace Hopper" not in page.content()
        assert CUSTOMER not in page.content()
    assert requested.elsewhere(live.issuer) == []
