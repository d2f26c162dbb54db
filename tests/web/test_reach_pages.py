"""The customer's reach pages: choosing what vendors may count, the inbox (open, accept
with fields unchecked, decline, block), and intents."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.web.conftest import error_next_to, follow, page, submit
from vault.offers import OfferRequest
from vault.segment_query import parse_predicate
from vault.vendors import Vendor
from vrm.services import Services

EVERYONE_WHO_CYCLES = {"field": "interests", "equals": "cycling"}


def offer_to(vault: Services, vendor: Vendor) -> str:
    request = OfferRequest(
        title="Winter tyres, fitted free",
        message="Grip for icy roads.\nBook a slot online.",
        days=14,
        fields={"email": "send the booking link", "given_name": "greet you"},
    )
    predicate = parse_predicate(EVERYONE_WHO_CYCLES, today=vault.clock().date())
    return vault.offers.send(vendor.client_id, predicate, request).offer_id


def reachable(vault: Services, vault_id: str) -> None:
    vault.vaults.set_fields(
        vault_id,
        {"interests": ["cycling"], "given_name": "Ada", "channel_preferences": {"email": True}},
    )


def countable_with_an_offer(vault: Services, vault_id: str, shop: Vendor) -> str:
    """Make the customer reachable and countable by interest; return an offer sent them."""
    reachable(vault, vault_id)
    vault.vaults.set_segmentable(vault_id, ["interests"])
    return offer_to(vault, shop)


def test_choosing_countable_fields_counts_from_the_next_query(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    reachable(vault, vault_id)
    predicate = parse_predicate(EVERYONE_WHO_CYCLES, today=vault.clock().date())
    assert vault.segment_index.members(predicate) == set()

    html = follow(customer, submit(customer, "/preferences/segments", {"segmentable": "interests"}))

    assert "Vendors can now count you by: interests" in html
    assert 'id="segmentable-interests" name="segmentable" value="interests" checked' in html
    assert vault.segment_index.members(predicate) == {vault_id}
    follow(customer, submit(customer, "/preferences/segments", {}))
    assert vault.segment_index.members(predicate) == set()


def test_an_offer_is_listed_opened_and_accepted_with_a_field_unchecked(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    offer_id = countable_with_an_offer(vault, vault_id, shop)

    inbox = page(customer, "/inbox")
    assert "Winter tyres, fitted free" in inbox
    assert ">New<" in inbox
    assert "Returns you to example-shop.example" in inbox  # What tells it from a namesake.
    offer = page(customer, f"/inbox/{offer_id}")
    assert "Returns you to example-shop.example" in offer
    assert "Purpose: send the booking link" in offer
    assert 'value="email" checked' in offer
    assert ">Read<" in page(customer, "/inbox")

    response = submit(
        customer, f"/inbox/{offer_id}/accept", {"field": "given_name", "duration": "30"}
    )

    grants = follow(customer, response)
    assert "You accepted. Example Shop can read what you ticked, for 30 days." in grants
    (grant,) = vault.consents.grants(vault_id)
    assert dict(grant.fields) == {"given_name": "greet you"}
    assert ">Accepted<" in page(customer, "/inbox")


def test_accepting_nothing_is_refused_with_a_message(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    offer_id = countable_with_an_offer(vault, vault_id, shop)

    response = submit(customer, f"/inbox/{offer_id}/accept", {"duration": "30"})

    assert response.status_code == 400
    assert "Tick at least one field" in response.get_data(as_text=True)
    assert vault.consents.grants(vault_id) == []


def test_declining_an_offer_already_accepted_says_nothing_changed(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    offer_id = countable_with_an_offer(vault, vault_id, shop)
    submit(customer, f"/inbox/{offer_id}/accept", {"field": "given_name", "duration": "30"})

    html = follow(customer, submit(customer, f"/inbox/{offer_id}/decline"))

    assert "You had already answered the offer from Example Shop: nothing changed." in html
    assert "You declined" not in html
    assert len(vault.consents.grants(vault_id)) == 1


def test_decline_and_block(
    customer: FlaskClient, vault: Services, vault_id: str, shop: Vendor
) -> None:
    reachable(vault, vault_id)
    vault.vaults.set_segmentable(vault_id, ["interests"])
    first = offer_to(vault, shop)

    html = follow(customer, submit(customer, f"/inbox/{first}/decline"))
    assert "You declined the offer from Example Shop." in html
    assert ">Declined<" in html

    html = follow(customer, submit(customer, "/inbox/vendors/block", {"vendor": shop.client_id}))
    assert "no more offers from Example Shop" in html
    offer_to(vault, shop)
    assert len(vault.offers.inbox(vault_id)) == 1
    follow(customer, submit(customer, "/inbox/vendors/unblock", {"vendor": shop.client_id}))
    offer_to(vault, shop)
    assert len(vault.offers.inbox(vault_id)) == 2


def test_someone_else_s_offer_is_not_found(
    customer: FlaskClient, vault: Services, shop: Vendor
) -> None:
    other = vault.vaults.sign_up("grace@example.org", "another long password here")
    reachable(vault, other)
    vault.vaults.set_segmentable(other, ["interests"])
    offer_id = offer_to(vault, shop)

    assert customer.get(f"/inbox/{offer_id}").status_code == 404
    assert submit(customer, f"/inbox/{offer_id}/accept", {"field": "email"}).status_code == 404


def test_intents_are_published_checked_and_withdrawn(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    refused = submit(customer, "/intents", {"category": "travel", "text": " ", "days": "30"})
    assert refused.status_code == 400
    assert error_next_to(refused.get_data(as_text=True), "f-text") == "The text is required."

    html = follow(
        customer,
        submit(
            customer,
            "/intents",
            {
                "category": "travel",
                "text": "A quiet week by the sea",
                "budget": "800",
                "currency": "GBP",
                "region": "Cornwall",
                "days": "30",
            },
        ),
    )
    assert "Your intent is published." in html
    assert "A quiet week by the sea" in html
    (intent,) = vault.intents.mine(vault_id)
    assert intent.budget == 800

    follow(customer, submit(customer, f"/intents/{intent.intent_id}/withdraw"))
    assert vault.intents.open_intents() == []


def test_the_inbox_is_in_the_navigation(customer: FlaskClient) -> None:
    assert '<a href="/inbox" aria-current="page">Inbox</a>' in page(customer, "/inbox")
    assert '<a href="/inbox" aria-current="page">Inbox</a>' in page(customer, "/intents")


def test_an_unknown_vendor_cannot_be_blocked(customer: FlaskClient) -> None:
    assert submit(customer, "/inbox/vendors/block", {"vendor": "vnd_nope"}).status_code == 404
