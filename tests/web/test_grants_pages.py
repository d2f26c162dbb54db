"""The grants page: each live grant with its fields and purposes, one click to withdraw a
field or the whole grant, and what has ended kept below."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.web.conftest import follow, page, register_vendor, submit
from vault.grants import REVOKED
from vault.terms import TERMS
from vault.vendors import Vendor
from vrm.services import Services
from web.grants_pages import vendor_site


def test_live_grants_show_vendor_fields_purposes_and_dates(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    vault.consents.give(
        vault_id, shop.client_id, ["email", "given_name"], days=30, terms=[TERMS[0].term_id]
    )
    html = page(customer, "/grants")
    assert "Example Shop" in html
    assert "Returns you to example-shop.example" in html  # What tells it from a namesake.
    assert "Email address" in html
    assert "Purpose: send your order confirmations" in html
    assert "Purpose: greet you by name" in html
    assert "25 Nov 2026, 09:00 UTC" in html
    assert "25 Dec 2026, 09:00 UTC" in html
    assert "Not yet" in html
    assert TERMS[0].title in html
    assert html.count(">Remove<") == 2
    assert ">Revoke all<" in html


def test_remove_takes_one_field_back(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    grant = vault.consents.give(vault_id, shop.client_id, ["email", "given_name"])
    response = submit(customer, f"/grants/{grant.grant_id}/fields/remove", {"field": "given_name"})
    html = follow(customer, response)
    assert "Example Shop can no longer read your given name." in html
    [now] = vault.consents.grants(vault_id)
    assert set(now.fields) == {"email"}
    assert "Withdrawn by you" in html.split("Ended", 1)[1]


def test_removing_the_last_field_ends_the_grant(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    grant = vault.consents.give(vault_id, shop.client_id, ["email"])
    html = follow(
        customer, submit(customer, f"/grants/{grant.grant_id}/fields/remove", {"field": "email"})
    )
    assert "the grant has ended" in html
    assert vault.consents.grants(vault_id)[0].status == REVOKED


def test_revoke_all_ends_the_grant_and_keeps_it_as_history(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    grant = vault.consents.give(vault_id, shop.client_id, ["email", "postal_address"])
    html = follow(customer, submit(customer, f"/grants/{grant.grant_id}/revoke"))
    assert "Example Shop can no longer read anything" in html
    assert vault.consents.grants(vault_id)[0].status == REVOKED
    assert ">Revoke all<" not in html
    ended = html.split("Ended", 1)[1]
    assert "Example Shop" in ended
    assert "Email address, Postal address" in ended
    assert "Revoked by you" in ended


def test_expired_grants_move_to_the_history(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor, clock: FakeClock
) -> None:
    vault.consents.give(vault_id, shop.client_id, ["email"], days=7)
    clock.advance(8 * 86400)
    html = page(customer, "/grants")
    assert "No vendor can read anything" in html
    assert "Ended by itself on" in html
    assert "2 Dec 2026, 09:00 UTC" in html


def test_each_vendor_has_its_own_card(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    club = register_vendor(vault, "Bike Club", {"email": "send the club newsletter"})
    vault.consents.give(vault_id, shop.client_id, ["email"])
    vault.consents.give(vault_id, club.client_id, ["email"])
    html = page(customer, "/grants")
    assert "Bike Club" in html
    assert "Purpose: send the club newsletter" in html
    assert html.count(">Revoke all<") == 2


def test_a_stale_button_explains_instead_of_failing(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    grant = vault.consents.give(vault_id, shop.client_id, ["email"])
    vault.consents.revoke(vault_id, grant.grant_id)
    for path, data in (
        (f"/grants/{grant.grant_id}/revoke", {}),
        (f"/grants/{grant.grant_id}/fields/remove", {"field": "email"}),
        ("/grants/not-a-grant/revoke", {}),
    ):
        assert "had already ended" in follow(customer, submit(customer, path, data))


def test_a_customer_cannot_touch_another_customers_grant(
    customer: FlaskClient, vault: Services, shop: Vendor
) -> None:
    other = vault.vaults.sign_up("grace@example.org", "another long passphrase")
    grant = vault.consents.give(other, shop.client_id, ["email"])
    submit(customer, f"/grants/{grant.grant_id}/revoke")
    assert vault.consents.grants(other)[0].is_live(vault.clock())


def test_no_grants_says_so(customer: FlaskClient) -> None:
    assert "No vendor can read anything from your vault right now." in page(customer, "/grants")


def test_a_vendor_without_redirect_uris_is_told_apart_by_its_client_id(
    app: Flask, vault: Services
) -> None:
    counter, _ = vault.vendors.register(
        {"client_name": "Counter", "grant_types": ["client_credentials"], "scope": "offers:send"}
    )
    with app.app_context():
        assert vendor_site(counter.client_id) == f"Client id {counter.client_id}"
        assert vendor_site("vnd_" + "0" * 24) == ""
