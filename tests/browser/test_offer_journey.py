"""An offer's journey in a real browser: a customer makes two fields countable, a vendor
counts and sends an offer over HTTP, she opens it in her inbox, accepts it with one field
unticked, and sees the new grant; the vendor exchanges the acceptance code for tokens and
reads exactly the field she shared. She publishes an intent and the vendor answers it."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.conftest import RequestLog, Screenshots
from tests.browser.test_customer_journey import nav, sign_up
from tests.live import LiveServer
from vendor_api.oauth import OFFER_GRANT_TYPE

pytestmark = pytest.mark.browser

EMAIL = "rider@example.org"
INTEREST = "randonneuring"
TIMEOUT = 10
PURPOSES = {"email": "send your voucher", "given_name": "greet you by name"}


class Marketer:
    """A vendor's server: registers for offers, counts, sends, polls, exchanges codes."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        body = self._json(
            requests.post(
                f"{issuer}/oauth/register",
                json={
                    "client_name": "Audax Outfitters",
                    "redirect_uris": ["http://127.0.0.1/audax/callback"],
                    "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                    "scope": "profile:email profile:given_name segments:query offers:send "
                    "intents:read",
                    "vrm_field_purposes": PURPOSES,
                },
                timeout=TIMEOUT,
            ),
            201,
        )
        self.auth = (body["client_id"], body["client_secret"])
        token = self._json(
            requests.post(
                f"{issuer}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=self.auth,
                timeout=TIMEOUT,
            ),
            200,
        )
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def post(self, path: str, body: dict[str, Any], status: int) -> dict[str, Any]:
        return self._json(
            requests.post(self.issuer + path, json=body, headers=self.headers, timeout=TIMEOUT),
            status,
        )

    def get(self, path: str) -> dict[str, Any]:
        return self._json(
            requests.get(self.issuer + path, headers=self.headers, timeout=TIMEOUT), 200
        )

    def exchange(self, code: str) -> dict[str, Any]:
        return self._json(
            requests.post(
                f"{self.issuer}/oauth/token",
                data={"grant_type": OFFER_GRANT_TYPE, "code": code},
                auth=self.auth,
                timeout=TIMEOUT,
            ),
            200,
        )

    @staticmethod
    def _json(response: requests.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body


def test_offer_journey(
    desktop: Page, live: LiveServer, screenshots: Screenshots, requested: RequestLog
) -> None:
    page, shots = desktop, screenshots
    page.goto("/signup")
    sign_up(page, EMAIL)
    page.get_by_label("Given name").fill("Rhiannon")
    page.get_by_label("Interests").fill(INTEREST)
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Your profile is saved.")

    nav(page, "Preferences").click()
    page.get_by_label("Email", exact=True).check()
    page.get_by_role("button", name="Save contact preferences").click()
    expect(page.get_by_role("status")).to_have_text("Your contact preferences are saved.")
    page.get_by_label("Interests").check()
    page.get_by_label("Gender").check()
    page.get_by_role("button", name="Save what may be counted").click()
    expect(page.get_by_role("status")).to_contain_text("Vendors can now count you by: interests")
    expect(page.get_by_label("Interests")).to_be_checked()
    shots.take(page, "preferences-countable")

    marketer = Marketer(live.issuer)
    segment = {"field": "interests", "equals": INTEREST}
    counted = marketer.post("/api/v1/segments/count", {"segment": segment}, 200)
    assert counted == {"count": None, "suppressed": True}  # One person: below k.
    sent = marketer.post(
        "/api/v1/offers",
        {
            "segment": segment,
            "title": "Brevet season kit, 20% off",
            "message": "Lights, bags and a reflective gilet for the long rides.",
            "fields": PURPOSES,
        },
        201,
    )
    assert sent["suppressed"] is True

    nav(page, "Inbox").click()
    expect(page.get_by_role("heading", name="Brevet season kit, 20% off")).to_be_visible()
    expect(page.locator(".badge.new")).to_have_text("New")
    shots.take(page, "inbox")
    page.get_by_role("link", name="Brevet season kit, 20% off").click()
    expect(page.get_by_text("Purpose: send your voucher")).to_be_visible()
    expect(page.get_by_label("Email address")).to_be_checked()
    shots.take(page, "offer")
    page.get_by_label("Email address").uncheck()
    page.get_by_role("button", name="Accept and share").click()

    expect(page.get_by_role("status")).to_contain_text("You accepted. Audax Outfitters can read")
    grant = page.locator("section.grant", has=page.get_by_role("heading", name="Audax Outfitters"))
    expect(grant).to_contain_text("Purpose: greet you by name")
    expect(grant).not_to_contain_text("Purpose: send your voucher")
    shots.take(page, "grants-after-offer")

    (acceptance,) = marketer.get(f"/api/v1/offers/{sent['id']}/acceptances")["acceptances"]
    assert acceptance["scope"] == "profile:given_name"
    tokens = marketer.exchange(acceptance["code"])
    assert tokens["scope"] == "profile:given_name"
    profile = requests.get(
        f"{live.issuer}/api/v1/profile",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=TIMEOUT,
    ).json()
    assert profile == {"sub": acceptance["sub"], "given_name": "Rhiannon"}

    nav(page, "Inbox").click()
    page.get_by_role("link", name="Tell vendors what you are looking for").click()
    page.get_by_label("Category").select_option("travel")
    page.get_by_label("What you are looking for").fill("A cycling holiday in the Alps")
    page.get_by_label("Budget (optional)").fill("1200")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_role("status")).to_contain_text("Your intent is published.")
    shots.take(page, "intents")
    (intent,) = [
        i
        for i in marketer.get("/api/v1/intents")["intents"]
        if i["text"] == "A cycling holiday in the Alps"
    ]
    marketer.post(
        f"/api/v1/intents/{intent['id']}/offers",
        {"title": "Alpine cols, guided", "message": "Seven days.", "fields": PURPOSES},
        201,
    )
    nav(page, "Inbox").click()
    expect(page.get_by_role("heading", name="Alpine cols, guided")).to_be_visible()
    expect(page.get_by_text("your intent")).to_be_visible()

    assert shots.too_wide == {}, "pages wider than a 375 px phone screen"
    assert requested.elsewhere(live.issuer) == []
