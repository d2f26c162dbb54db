"""A customer's whole journey through the vault in a real browser, against the real server.

She signs up, fills in her profile (and fixes the one input the page says is wrong), sets
her contact preferences and terms, and answers a vendor's request on the consent page,
sharing less than it asked for. She sees the grant, withdraws a field from it (a token the
vendor holds for that field alone is refused at its next read), reads who read what and
who was refused, downloads everything, erases her vault, and can no longer log in. The vendor
registers, asks and reads over HTTP the way a vendor's server would, and each of her
choices shows in what it can read next.

Every page she sees is photographed at desktop and at phone width (``conftest.py``).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import Browser, Locator, Page, Route, expect

from tests.browser.conftest import DESKTOP, RequestLog, Screenshots
from tests.browser.vendor import Vendor
from tests.conftest import PASSWORD
from tests.live import LiveServer

pytestmark = pytest.mark.browser

EMAIL = "ada@example.org"
SHOP_REDIRECT = "http://127.0.0.1/shop/callback"
SHOP_PURPOSES = {
    "email": "send your order confirmations",
    "given_name": "greet you by name",
    "postal_address": "deliver what you order",
}
BAKERY_REDIRECT = "http://127.0.0.1/bakery/callback"
BAKERY_PURPOSES = {"given_name": "write your name on the cake"}
TERMS = ("No sharing with third parties", "Delete my data when the grant ends")
VENDOR_PAGE = "<!doctype html><title>Back at the vendor</title><h1>Back at the vendor</h1>"


def test_customer_journey(
    desktop: Page,
    live: LiveServer,
    screenshots: Screenshots,
    requested: RequestLog,
) -> None:
    page, shots = desktop, screenshots

    page.goto("/")
    expect(page.get_by_role("heading", name="Your data, your vault")).to_be_visible()
    shots.take(page, "home")
    page.get_by_role("main").get_by_role("link", name="Open a vault").click()
    sign_up(page, EMAIL, shots)

    fill_profile(page, shots)
    choose_preferences_and_terms(page, shots)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    shots.take(page, "login")

    shop = Vendor.register(live.issuer, "Live Shop", SHOP_PURPOSES, SHOP_REDIRECT)
    token = consent_without_postal_address(page, shop, shots)
    first = shop.read_profile(token)
    assert first.status_code == 200, first.text
    assert first.json()["given_name"] == "Ada"
    assert set(first.json()) == {"sub", "email", "given_name"}

    name_only = narrowed_token(shop, token, "profile:given_name")
    assert shop.read_profile(name_only).json()["given_name"] == "Ada"

    withdraw_given_name(page, shots)
    second = shop.read_profile(token)
    assert second.status_code == 200, second.text
    assert set(second.json()) == {"sub", "email"}
    assert second.json()["email"] == EMAIL
    refused = shop.read_profile(name_only)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == "insufficient_scope"

    bakery = Vendor.register(live.issuer, "Corner Bakery", BAKERY_PURPOSES, BAKERY_REDIRECT)
    cake = allow_everything(page, bakery)
    assert bakery.read_profile(cake).json()["given_name"] == "Ada"

    read_access_history(page, shots)
    export = download_export(page, shots)
    assert export["account"]["email"] == EMAIL
    assert export["profile"]["given_name"] == "Ada"
    assert export["profile"]["phone"] == "+447700900123"
    assert export["profile"]["postal_address"]["locality"] == "London"
    grants = {grant["vendor"]: grant for grant in export["grants"]}
    assert set(grants) == {shop.client_id, bakery.client_id}
    assert set(grants[shop.client_id]["fields"]) == {"email"}
    assert [r["field"] for r in grants[shop.client_id]["removed_fields"]] == ["given_name"]
    assert all(grant["receipts"] for grant in export["grants"])
    assert all(r["jws"].count(".") == 2 for r in grants[shop.client_id]["receipts"])

    erase(page, shots)
    assert shop.read_profile(token).status_code == 401

    page.get_by_role("link", name="Log in").click()
    log_in(page, EMAIL)
    expect(page.get_by_role("alert")).to_have_text(
        "The email or password is wrong. Check both and try again."
    )
    shots.take(page, "login-failed")

    missing = page.goto("/no-such-page")
    assert missing is not None
    assert missing.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    shots.take(page, "not-found")

    assert shots.too_wide == {}, "pages wider than a 375 px phone screen"
    assert requested.elsewhere(live.issuer) == []
    assert not [u for u in requested.urls if u.startswith((SHOP_REDIRECT, BAKERY_REDIRECT))]


def test_pages_work_without_javascript(chromium: Browser, live: LiveServer) -> None:
    context = chromium.new_context(
        java_script_enabled=False, viewport=DESKTOP, base_url=live.issuer
    )
    requested = RequestLog()
    requested.watch(context)
    try:
        page = context.new_page()
        page.goto("/signup")
        sign_up(page, "no-script@example.org")
        expect(page.locator("script")).to_have_count(0)
        page.get_by_label("Given name").fill("Grace")
        page.get_by_role("button", name="Save changes").click()
        expect(page.get_by_role("status")).to_have_text("Your profile is saved.")
        expect(page.get_by_label("Given name")).to_have_value("Grace")
        page.get_by_role("link", name="History of given name").click()
        expect(page.locator(".timeline")).to_contain_text("Grace")
    finally:
        context.close()
    assert requested.elsewhere(live.issuer) == []


# The steps of the journey.


def sign_up(page: Page, email: str, shots: Screenshots | None = None) -> None:
    """From the sign-up page to the new vault's profile."""
    expect(page.get_by_role("heading", name="Open your vault")).to_be_visible()
    if shots:
        shots.take(page, "signup")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Open my vault").click()
    expect(page.get_by_role("status")).to_contain_text("Your vault is ready.")


def log_in(page: Page, email: str) -> None:
    """Fill in and send the login form."""
    main = page.get_by_role("main")
    expect(main.get_by_role("heading", name="Log in to your vault")).to_be_visible()
    main.get_by_label("Email address").fill(email)
    main.get_by_label("Password").fill(PASSWORD)
    main.get_by_role("button", name="Log in").click()


def fill_profile(page: Page, shots: Screenshots) -> None:
    """A wrong phone number is refused next to its input; fixed, everything is saved."""
    expect(page.get_by_role("heading", name="Your profile", level=1)).to_be_visible()
    shots.take(page, "profile")
    page.get_by_label("Given name").fill("Ada")
    page.get_by_label("Family name").fill("Lovelace")
    page.get_by_label("Phone number").fill("12345")
    page.get_by_label("Street and number").fill("12 St James's Square")
    page.get_by_label("Town or city").fill("London")
    page.get_by_label("Country", exact=True).select_option("GB")
    page.get_by_role("button", name="Save changes").click()

    phone = page.get_by_label("Phone number")
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    expect(phone).to_have_attribute("aria-invalid", "true")
    expect(phone).to_have_accessible_description(
        re.compile("Phone number must be an international number")
    )
    expect(page.get_by_label("Town or city")).to_have_value("London")
    shots.take(page, "profile-error")

    phone.fill("+44 7700 900123")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_have_text("Your profile is saved.")
    expect(phone).to_have_value("+447700900123")
    expect(phone).not_to_have_attribute("aria-invalid", "true")

    page.get_by_role("link", name="History of every field").click()
    expect(page.get_by_role("heading", name="History of your profile")).to_be_visible()
    given_name = page.locator("section", has=page.get_by_role("heading", name="Given name"))
    expect(given_name).to_contain_text("Ada")
    shots.take(page, "history")


def choose_preferences_and_terms(page: Page, shots: Screenshots) -> None:
    """Email only, quiet at night in London; two personal terms."""
    nav(page, "Preferences").click()
    page.get_by_label("Email", exact=True).check()
    page.get_by_label("From", exact=True).fill("21:00")
    page.get_by_label("Until", exact=True).fill("08:00")
    page.get_by_label("Time zone").select_option("Europe/London")
    page.get_by_role("button", name="Save contact preferences").click()
    expect(page.get_by_role("status")).to_have_text("Your contact preferences are saved.")
    expect(page.get_by_label("Email", exact=True)).to_be_checked()
    expect(page.get_by_label("Until", exact=True)).to_have_value("08:00")

    for title in TERMS:
        page.get_by_label(title).check()
    page.get_by_role("button", name="Save my terms").click()
    expect(page.get_by_role("status")).to_have_text(
        "Your personal terms are saved: you proffer 2 terms to vendors."
    )
    shots.take(page, "preferences")


def consent_without_postal_address(page: Page, shop: Vendor, shots: Screenshots) -> dict[str, Any]:
    """Open the vendor's link, log in, read its purposes and her terms, untick the postal
    address and allow; the vendor's token covers only what she shared."""
    authorization = shop.authorization()
    page.goto(authorization.url)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    log_in(page, EMAIL)

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Live Shop asks to read parts of your profile"
    )
    for purpose in SHOP_PURPOSES.values():
        expect(page.get_by_text(f"Purpose: {purpose}")).to_be_visible()
    terms = page.get_by_role("group", name=re.compile("Your terms"))
    for title in TERMS:
        expect(terms).to_contain_text(title)
    shots.take(page, "consent")

    address = page.get_by_role("checkbox", name=re.compile("Postal address"))
    expect(address).to_be_checked()
    address.uncheck()
    callback = answer_consent(page, page.get_by_role("button", name="Allow"))
    token = shop.exchange(callback, authorization)
    assert set(token["scope"].split()) == {"profile:email", "profile:given_name"}
    return token


def allow_everything(page: Page, vendor: Vendor) -> dict[str, Any]:
    """A second vendor, asked while logged in: straight to its consent page."""
    authorization = vendor.authorization()
    page.goto(authorization.url)
    expect(page.get_by_role("heading", level=1)).to_contain_text(vendor.name)
    callback = answer_consent(page, page.get_by_role("button", name="Allow"))
    return vendor.exchange(callback, authorization)


def answer_consent(page: Page, button: Locator) -> str:
    """Press ``button`` and return where the server sends the browser back to the vendor.

    Playwright does not route the request a redirect leads to, so the consent form's
    post itself is routed: it goes to the server unchanged, and instead of following the
    server's redirect to the vendor's callback (where nothing listens) the browser is
    shown a stand-in vendor page.
    """
    locations: list[str] = []

    def to_vendor(route: Route) -> None:
        response = route.fetch(max_redirects=0)
        assert response.status in (302, 303), response.status
        locations.append(response.headers["location"])
        response.dispose()
        route.fulfill(status=200, content_type="text/html", body=VENDOR_PAGE)

    page.route(lambda url: urlsplit(url).path == "/oauth/authorize", to_vendor, times=1)
    button.click()
    expect(page.get_by_role("heading", name="Back at the vendor")).to_be_visible()
    (location,) = locations
    return location


def withdraw_given_name(page: Page, shots: Screenshots) -> None:
    """The grant shows what she shared and her terms; one field goes with one click."""
    page.goto("/grants")
    grant = page.get_by_role("region", name="Live Shop")
    expect(grant.get_by_text("Active")).to_be_visible()
    expect(grant.get_by_role("listitem")).to_have_count(2)
    expect(grant).to_contain_text("Purpose: send your order confirmations")
    expect(grant).to_contain_text("Purpose: greet you by name")
    expect(grant).not_to_contain_text("Postal address")
    for title in TERMS:
        expect(grant.get_by_role("definition").filter(has_text=title)).to_be_visible()
    shots.take(page, "grants")

    grant.get_by_role("button", name="Remove given name from Live Shop").click()
    expect(page.get_by_role("status")).to_have_text("Live Shop can no longer read your given name.")
    expect(grant.get_by_role("listitem")).to_have_count(1)
    expect(page.locator(".history-list")).to_contain_text("Withdrawn by you")
    shots.take(page, "grants-withdrawn")


def narrowed_token(vendor: Vendor, token: dict[str, Any], scope: str) -> dict[str, Any]:
    """The vendor refreshes for fewer fields, as a vendor keeping a token per use would."""
    response = requests.post(
        vendor.metadata["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": token["refresh_token"],
            "scope": scope,
        },
        auth=(vendor.client_id, vendor.client_secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    narrowed: dict[str, Any] = response.json()
    assert narrowed["scope"] == scope
    return narrowed


def read_access_history(page: Page, shots: Screenshots) -> None:
    """Every read and the refused attempt are listed; filtered by vendor, only that
    vendor's remain; the refusal shows why, and the log entry it comes from."""
    page.goto("/access")
    entries = page.locator(".access-list > li")
    expect(entries).to_have_count(5)
    expect(entries.first).to_contain_text("Corner Bakery")

    page.get_by_label("Vendor").select_option(label="Live Shop")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"vendor=vnd_"))
    expect(entries).to_have_count(4)
    refused = entries.nth(0)
    expect(refused).to_contain_text("Refused")
    expect(refused).to_contain_text("none of the token's fields is still granted")
    expect(entries.nth(1)).to_contain_text("Read Email address.")
    expect(entries.nth(2)).to_contain_text("Read Given name.")
    expect(entries.nth(3)).to_contain_text("Read Email address, Given name.")
    expect(page.locator(".access-list")).not_to_contain_text("Corner Bakery")
    shots.take(page, "access")

    refused.get_by_text(re.compile("check it is in the audit log")).click()
    logged = refused.locator("pre")
    expect(logged).to_be_visible()
    expect(logged).to_contain_text('"type":"request.refused"')
    shots.take(page, "access-refused")


def download_export(page: Page, shots: Screenshots) -> dict[str, Any]:
    """The export page's button downloads one JSON file with everything."""
    nav(page, "Export").click()
    expect(page.get_by_role("heading", name="Download everything")).to_be_visible()
    shots.take(page, "export")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download my data (JSON)").click()
    download = info.value
    assert re.fullmatch(r"vrm-vault-export-\d{4}-\d{2}-\d{2}\.json", download.suggested_filename)
    document: dict[str, Any] = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    return document


def erase(page: Page, shots: Screenshots) -> None:
    """Via the account and password pages to the erasure, confirmed by typing the email."""
    nav(page, "Account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    shots.take(page, "account")
    page.get_by_role("link", name="Change your password").click()
    expect(page.get_by_role("heading", name="Change your password")).to_be_visible()
    shots.take(page, "password")

    page.locator(".crumbs").get_by_role("link", name="Account").click()
    page.get_by_role("link", name="Erase your vault").click()
    expect(page.get_by_role("heading", name="Erase your vault")).to_be_visible()
    shots.take(page, "erase")
    page.get_by_label(re.compile("To confirm, type your email address")).fill(EMAIL)
    page.get_by_role("button", name="Erase my vault for good").click()
    expect(page.get_by_role("heading", name="Your vault is erased")).to_be_visible()
    expect(page.get_by_role("navigation", name="Your vault")).to_have_count(0)
    shots.take(page, "erased")


def nav(page: Page, label: str) -> Locator:
    """A link in the header's navigation."""
    return page.get_by_role("navigation", name="Your vault").get_by_role("link", name=label)


class _VendorSite(BaseHTTPRequestHandler):
    """A vendor's redirect endpoint: records each visit and shows a page."""

    visits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.visits.append(self.path)
        body = VENDOR_PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_logging_in_to_an_authorization_already_granted_returns_to_the_vendor(
    chromium: Browser, live: LiveServer
) -> None:
    """Nothing new to ask: logging in answers the authorization at once with a redirect to
    the vendor, which Chromium follows only if the login page's policy lets the form lead
    there (a redirect after a form's post is held to the form page's form-action)."""
    site = ThreadingHTTPServer(("127.0.0.1", 0), _VendorSite)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    redirect = f"http://127.0.0.1:{site.server_address[1]}/callback"
    context = chromium.new_context(viewport=DESKTOP, base_url=live.issuer)
    try:
        page = context.new_page()
        page.goto("/signup")
        sign_up(page, "returning@example.org")
        shop = Vendor.register(live.issuer, "Returning Shop", {"email": "receipts"}, redirect)
        page.goto(shop.authorization().url)
        page.get_by_role("button", name="Allow").click()
        expect(page.get_by_role("heading", name="Back at the vendor")).to_be_visible()
        page.goto("/profile")
        page.get_by_role("button", name="Log out").click()
        _VendorSite.visits.clear()

        page.goto(shop.authorization().url)
        log_in(page, "returning@example.org")

        expect(page.get_by_role("heading", name="Back at the vendor")).to_be_visible()
        (visit,) = [v for v in _VendorSite.visits if v.startswith("/callback?")]
        assert "code=" in visit
    finally:
        context.close()
        site.shutdown()
        site.server_close()
