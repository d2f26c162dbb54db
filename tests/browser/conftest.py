"""A real browser against the real server: Debian's Chromium, driven by Playwright, on the
app served on loopback.

One server and one Chromium serve the whole session; each test gets fresh browser
contexts (its own cookies). Every page a test visits can be photographed at desktop and
at phone width: the phone shot renders the very HTML the desktop page shows, so pages
that answer a form post (a validation error, a failed login) are shot in the same state.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    ViewportSize,
    sync_playwright,
)

from tests.conftest import FAST_ARGON2, FAST_AUDIT
from tests.live import LiveServer, serving

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=375, height=812)
TIMEOUT_MS = 10_000
REPO = Path(__file__).resolve().parents[2]
SHOT_NAME = re.compile(r"\d{2,}-.+-(desktop|phone)\.png")
_SHOTS_FOLDER = pytest.StashKey[Path]()


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class RequestLog:
    """Every URL the pages of a browser context requested, in order."""

    urls: list[str] = field(default_factory=list)

    def watch(self, context: BrowserContext) -> None:
        context.on("request", lambda request: self.urls.append(request.url))

    def elsewhere(self, origin: str) -> list[str]:
        """The requested URLs that are not on ``origin`` (data: URLs never leave the page)."""
        return [u for u in self.urls if origin_of(u) != origin and not u.startswith("data:")]


@dataclass
class Screenshots:
    """Saves ``<NN>-<page>-desktop.png`` and ``<NN>-<page>-phone.png`` for each page shot,
    numbered in the order taken, and notes every page wider than a phone's screen."""

    folder: Path
    phone: Page
    taken: int = 0
    too_wide: dict[str, int] = field(default_factory=dict)
    _html: str = field(default="", init=False, repr=False)

    def __post_init__(self) -> None:
        self.phone.route("**/*", self._serve_snapshot)

    def take(self, page: Page, name: str) -> None:
        """Shoot ``page`` as it is now, then the same document at phone width."""
        self.taken += 1
        stem = f"{self.taken:02d}-{name}"
        page.screenshot(path=self.folder / f"{stem}-desktop.png", full_page=True)
        self._html = page.content()
        self.phone.goto(page.url)
        self.phone.screenshot(path=self.folder / f"{stem}-phone.png", full_page=True)
        width = self.phone.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            self.too_wide[name] = width

    def _serve_snapshot(self, route: Route) -> None:
        """The phone gets the desktop page's document; its stylesheet comes from the
        server."""
        if route.request.resource_type == "document":
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=self._html)
        else:
            route.continue_()


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app on loopback for the whole session; tests use distinct customers."""
    data = tmp_path_factory.mktemp("browser") / "vrm-data"
    with serving(data, {**FAST_ARGON2, **FAST_AUDIT}) as server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless. Playwright's own browser download is not used."""
    if not CHROMIUM.exists():
        reason = f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must install it", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def requested() -> RequestLog:
    """What the test's desktop pages requested."""
    return RequestLog()


@pytest.fixture
def desktop(chromium: Browser, live: LiveServer, requested: RequestLog) -> Iterator[Page]:
    """A page in a fresh 1280x800 browser window, at the live server."""
    context = chromium.new_context(viewport=DESKTOP, base_url=live.issuer, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    requested.watch(context)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def phone(chromium: Browser) -> Iterator[Page]:
    """A page on a 375x812 phone screen (touch, mobile viewport rules)."""
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots_folder(request: pytest.FixtureRequest) -> Path:
    """``VRM_SCREENSHOTS``, else ``build/screenshots`` in the repository; last run's shots
    are removed so the folder shows this run only."""
    folder = Path(os.environ.get("VRM_SCREENSHOTS") or REPO / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        if SHOT_NAME.fullmatch(old.name):
            old.unlink()
    request.config.stash[_SHOTS_FOLDER] = folder
    return folder


@pytest.fixture(scope="session")
def screenshots(screenshots_folder: Path, phone: Page) -> Screenshots:
    return Screenshots(screenshots_folder, phone)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say where the screenshots are, if any were taken."""
    folder = terminalreporter.config.stash.get(_SHOTS_FOLDER, None)
    if folder is not None:
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"saved in {folder}")
