"""The access history page: every vendor read and refusal, filtered by vendor and period.

Most tests give the page a stand-in history with the interface it reads
(``entries(vault_id, vendor=, since=, until=)``), so the page is pinned down however the
log behind it is built. The last test runs the real thing end to end, once the server's
services offer a ``history``.
"""

from __future__ import annotations

import base64
import dataclasses
import html as html_module
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import HTML, page, register_vendor
from vault.audit import ProofError, leaf_hash, verify_checkpoint, verify_inclusion
from vault.vendors import Vendor
from vrm.app import create_app
from vrm.services import Services, audit_origin
from web import access_pages


@dataclass(frozen=True)
class Entry:
    at: datetime
    vendor_id: str
    kind: str
    fields: tuple[str, ...]
    reason: str | None
    log_index: int | None


@dataclass
class StandInHistory:
    """Answers like the real history: newest first, ``until`` exclusive."""

    vault_id: str
    kept: list[Entry]
    asked: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def entries(
        self,
        vault_id: str,
        *,
        vendor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Entry]:
        self.asked.append({"vendor": vendor, "since": since, "until": until})
        assert vault_id == self.vault_id
        return [
            e
            for e in sorted(self.kept, key=lambda e: e.at, reverse=True)
            if (vendor is None or e.vendor_id == vendor)
            and (since is None or e.at >= since)
            and (until is None or e.at < until)
        ]


@pytest.fixture
def club(vault: Services) -> Vendor:
    return register_vendor(vault, "Bike Club", {"email": "send the club newsletter"})


@pytest.fixture
def history(
    monkeypatch: pytest.MonkeyPatch, vault_id: str, shop: Vendor, club: Vendor
) -> StandInHistory:
    kept = [
        Entry(
            datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
            shop.client_id,
            "read",
            ("email", "given_name"),
            None,
            3,
        ),
        Entry(
            datetime(2026, 11, 22, 17, 5, tzinfo=UTC),
            club.client_id,
            "refused",
            ("email",),
            "the grant was revoked",
            7,
        ),
        Entry(
            datetime(2026, 11, 24, 23, 59, tzinfo=UTC),
            shop.client_id,
            "read",
            ("postal_address",),
            None,
            None,
        ),
    ]
    stand_in = StandInHistory(vault_id, kept)
    monkeypatch.setattr(access_pages, "access_history", lambda: stand_in)
    return stand_in


def test_lists_reads_and_refusals_newest_first(
    customer: FlaskClient, history: StandInHistory
) -> None:
    html = page(customer, "/access")
    assert "3 entries, newest first" in html
    newest, refused, oldest = (
        html.index(text) for text in ("Postal address", "Refused", "Email address, Given name")
    )
    assert newest < refused < oldest
    assert "the grant was revoked" in html
    assert "24 Nov 2026, 23:59 UTC" in html
    assert "Log entry 7" in html
    assert "Example Shop" in html
    assert "Bike Club" in html


def test_vendor_select_offers_the_vendors_seen(
    customer: FlaskClient, history: StandInHistory, shop: Vendor, club: Vendor, vault: Services
) -> None:
    register_vendor(vault, "Never Asked", {"email": "nothing"})
    html = page(customer, "/access")
    assert f'<option value="{club.client_id}">Bike Club</option>' in html
    assert f'<option value="{shop.client_id}">Example Shop</option>' in html
    assert "Never Asked" not in html
    assert '<label for="f-vendor">Vendor</label>' in html


def test_filters_by_vendor_and_period(
    customer: FlaskClient, history: StandInHistory, shop: Vendor
) -> None:
    html = page(customer, f"/access?vendor={shop.client_id}&from=2026-11-21&to=2026-11-24")
    assert "1 entry" in html
    assert "Postal address" in html
    assert "Refused" not in html.split("access-list", 1)[1]
    assert history.asked[-1] == {
        "vendor": shop.client_id,
        "since": datetime(2026, 11, 21, tzinfo=UTC),
        "until": datetime(2026, 11, 25, tzinfo=UTC),
    }
    assert f'<option value="{shop.client_id}" selected>' in html
    assert 'value="2026-11-21"' in html


def test_an_unknown_vendor_filter_shows_every_vendor(
    customer: FlaskClient, history: StandInHistory
) -> None:
    assert "3 entries" in page(customer, "/access?vendor=somebody-else")
    assert history.asked[-1]["vendor"] is None


def test_bad_dates_are_explained_beside_their_inputs(
    customer: FlaskClient, history: StandInHistory
) -> None:
    response = customer.get("/access?from=yesterday&to=2026-11-01", headers=HTML)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Write the date as YYYY-MM-DD" in html
    assert 'aria-describedby="f-from-error"' in html
    response = customer.get("/access?from=2026-11-10&to=2026-11-01", headers=HTML)
    assert "must not be before its start" in response.get_data(as_text=True)


def test_the_last_possible_day_has_no_end(customer: FlaskClient, history: StandInHistory) -> None:
    page(customer, "/access?to=9999-12-31")
    assert history.asked[-1]["until"] is None


def test_nothing_in_the_period_says_so(customer: FlaskClient, history: StandInHistory) -> None:
    assert "Nothing in this period." in page(customer, "/access?from=2026-12-01")


def test_without_a_history_the_page_says_it_is_not_available(
    customer: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access_pages, "access_history", lambda: None)
    assert "not available on this server yet" in page(customer, "/access")


@pytest.fixture
def wired_app(config: dict[str, Any]) -> Iterator[Flask]:
    """The app as ``vrm serve`` wires it: real clock, real event log."""
    application = create_app({**config, "ISSUER": "https://vault.test"})
    application.config["TESTING"] = True
    yield application
    application.extensions["vrm"].close()


def test_a_vendor_read_appears_with_a_proof_that_checks_against_a_signed_checkpoint(
    wired_app: Flask,
) -> None:
    from tests.oauth.conftest import EMAIL, PASSWORD, bearer, log_in, register, tokens_for

    services: Services = wired_app.extensions["vrm"]
    services.vaults.sign_up(EMAIL, PASSWORD)
    shop = register(wired_app.test_client())
    token = tokens_for(wired_app, shop, "profile:email")
    read = wired_app.test_client().get("/api/v1/profile", headers=bearer(token["access_token"]))
    assert read.status_code == 200
    customer = wired_app.test_client()
    log_in(customer)
    html = page(customer, "/access")
    assert "Example Shop" in html
    assert "Read Email address." in " ".join(html.split())
    services.vaults.sign_up("someone-else@example.org", PASSWORD)  # the log grows meanwhile

    shown = re.search(r'<pre class="claims">([^<]+)</pre>', html)
    link = re.search(r'href="(/audit/proof/inclusion\?[^"]+)"', html)
    assert shown is not None
    assert link is not None
    entry = html_module.unescape(shown.group(1)).encode()
    assert json.loads(entry)["type"] == "data.read"
    assert "size=" not in link.group(1)
    answer = customer.get(html_module.unescape(link.group(1)))
    assert answer.status_code == 200
    body = answer.get_json()

    checkpoint = verify_checkpoint(
        body["checkpoint"],
        services.keys.signing.current().public_raw(),
        audit_origin(services.config),
    )
    assert body["size"] == checkpoint.size
    leaf = leaf_hash(entry)
    assert base64.b64decode(body["leaf_hash"]) == leaf
    proof = [base64.b64decode(h) for h in body["proof"]]
    verify_inclusion(body["index"], checkpoint.size, leaf, proof, checkpoint.root)
    with pytest.raises(ProofError):
        verify_inclusion(
            body["index"], checkpoint.size, leaf_hash(entry + b" "), proof, checkpoint.root
        )


def test_the_page_shows_no_log_entry_of_another_vault(
    customer: FlaskClient, history: StandInHistory, vault: Services
) -> None:
    """Log indexes come from the history; the page still shows an entry's bytes only if
    the entry names this vault."""
    for i in range(5):
        vault.vaults.sign_up(f"other{i}@example.org", "another long password")
    assert vault.audit.size() > 7
    html = page(customer, "/access")
    assert "Log entry 7" in html
    assert '<pre class="claims">' not in html
