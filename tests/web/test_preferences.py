"""Contact preferences and personal terms: saved, shown again, errors beside their inputs."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.web.conftest import error_next_to, follow, log_in, page, submit, value_of
from vault.terms import TERMS
from vault.vendors import Vendor
from vrm.services import Services

PREFS = {
    "channel": ["email", "post"],
    "quiet_start": "21:00",
    "quiet_end": "8:00",
    "quiet_timezone": "Europe/London",
    "max_offers": "3",
}


def test_contact_preferences_are_saved_and_shown(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    html = follow(customer, submit(customer, "/preferences", PREFS))
    assert "Your contact preferences are saved." in html
    assert vault.vaults.profile(vault_id)["channel_preferences"] == {
        "email": True,
        "sms": False,
        "phone": False,
        "post": True,
        "quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/London"},
        "max_offers_per_vendor_per_month": 3,
    }
    assert 'id="channel-email" name="channel" value="email" checked' in html
    assert 'id="channel-sms" name="channel" value="sms">' in html
    assert value_of(html, "f-quiet_end") == "08:00"
    assert '<option value="Europe/London" selected>' in html
    assert value_of(html, "f-max_offers") == "3"


def test_nothing_ticked_means_no_contact(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    follow(customer, submit(customer, "/preferences", {}))
    saved = vault.vaults.profile(vault_id)["channel_preferences"]
    assert saved == {"email": False, "sms": False, "phone": False, "post": False}


def test_quiet_hours_need_a_time_zone(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    response = submit(customer, "/preferences", {**PREFS, "quiet_timezone": ""})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_next_to(html, "f-quiet_timezone") == "The time zone is required."
    assert value_of(html, "f-quiet_start") == "21:00"
    assert 'value="post" checked' in html
    assert "channel_preferences" not in vault.vaults.profile(vault_id)


def test_offer_cap_must_be_a_small_whole_number(customer: FlaskClient) -> None:
    for typed in ("lots", "101", "2.5"):
        html = submit(customer, "/preferences", {**PREFS, "max_offers": typed}).get_data(
            as_text=True
        )
        assert "whole number from 0 to 100" in error_next_to(html, "f-max_offers")
        assert value_of(html, "f-max_offers") == typed


def test_quiet_hours_must_not_start_when_they_end(customer: FlaskClient) -> None:
    html = submit(customer, "/preferences", {**PREFS, "quiet_end": "21:00"}).get_data(as_text=True)
    assert "different times" in error_next_to(html, "f-quiet_end")


def test_personal_terms_are_saved_and_shown(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    html = page(customer, "/preferences")
    for term in TERMS:
        assert term.title in html
        assert term.text in html
    chosen = [TERMS[1].term_id, TERMS[3].term_id]
    html = follow(customer, submit(customer, "/preferences/terms", {"term": chosen}))
    assert "you proffer 2 terms to vendors" in html
    assert vault.vaults.terms(vault_id) == tuple(chosen)
    assert f'value="{TERMS[1].term_id}" checked' in html
    assert f'value="{TERMS[0].term_id}">' in html
    html = follow(customer, submit(customer, "/preferences/terms", {}))
    assert "you proffer no terms" in html
    assert vault.vaults.terms(vault_id) == ()


def test_unknown_terms_are_refused(customer: FlaskClient, vault: Services, vault_id: str) -> None:
    response = submit(customer, "/preferences/terms", {"term": ["made-up"]})
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)
    assert vault.vaults.terms(vault_id) == ()


def test_both_explain_what_they_do(customer: FlaskClient) -> None:
    html = page(customer, "/preferences")
    assert "shown to the vendor on the consent page" in html
    assert "recorded in the grant and its signed receipt" in html
    assert "never during your quiet hours" in html


def test_chosen_terms_reach_the_consent_page(
    app: Flask, customer: FlaskClient, shop: Vendor
) -> None:
    follow(customer, submit(customer, "/preferences/terms", {"term": [TERMS[2].term_id]}))
    url = (
        f"/oauth/authorize?response_type=code&client_id={shop.client_id}"
        "&redirect_uri=https://example-shop.example/callback&scope=profile:email&state=s"
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    )
    browser = app.test_client()
    log_in(browser)
    assert TERMS[2].title in page(browser, url)
