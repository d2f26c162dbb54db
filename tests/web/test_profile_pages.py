"""Editing the profile: every standard field, custom fields, errors next to their inputs
with nothing saved, clearing by emptying, and each field's history."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.web.conftest import EMAIL, error_next_to, follow, page, submit, value_of
from vault.fields import COUNTRY_CODES
from vrm.services import Services
from web.countries import COUNTRY_NAMES, countries_by_name

ADDRESS = {
    "postal_address.street": "12 St James's Square",
    "postal_address.locality": "London",
    "postal_address.region": "",
    "postal_address.postal_code": "sw1y 4jh",
    "postal_address.country": "GB",
}


def current_form(customer: FlaskClient) -> dict[str, str]:
    """The profile form's inputs as the page fills them."""
    html = page(customer, "/profile")
    form = html.split('id="profile-form"', 1)[1].split("</form>", 1)[0]
    inputs = dict(
        re.findall(r'<input id="[^"]+" name="([^"]+)" type="[^"]+" value="([^"]*)"', form)
    )
    areas = dict(re.findall(r'<textarea id="[^"]+" name="([^"]+)"[^>]*>([^<]*)</textarea>', form))
    selected = re.search(
        r'name="postal_address.country".*?<option value="([A-Z]{2})" selected', form, re.S
    )
    return {**inputs, **areas, "postal_address.country": selected.group(1) if selected else ""}


def save(customer: FlaskClient, **changes: str) -> Any:
    form = current_form(customer)
    form.update({key.replace("__", "."): value for key, value in changes.items()})
    return submit(customer, "/profile", form)


def test_profile_shows_the_current_values(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    vault.vaults.set_fields(vault_id, {"given_name": "Ada", "interests": ["cycling", "jazz"]})
    html = page(customer, "/profile")
    assert value_of(html, "f-given_name") == "Ada"
    assert value_of(html, "f-email") == EMAIL
    assert value_of(html, "f-interests") == "cycling, jazz"
    assert 'type="date"' in html
    assert '<label for="f-postal_address-street">' in html


def test_every_input_has_a_label(customer: FlaskClient, vault: Services, vault_id: str) -> None:
    vault.vaults.set_fields(vault_id, {"x-shoe-size": 38})
    html = page(customer, "/profile")
    ids = re.findall(r'<(?:input|select|textarea) id="([^"]+)"', html)
    assert len(ids) >= 15
    for input_id in ids:
        assert f'<label for="{input_id}"' in html, input_id


def test_saving_every_standard_field(customer: FlaskClient, vault: Services, vault_id: str) -> None:
    response = save(
        customer,
        given_name="Ada",
        family_name="Lovelace",
        phone="+44 7700 900123",
        birthdate="1980-04-30",
        locale="en_gb",
        gender="woman",
        interests="Cycling, jazz,  , home cooking",
        **{key.replace(".", "__"): value for key, value in ADDRESS.items()},
    )
    assert "Your profile is saved." in follow(customer, response)
    profile = vault.vaults.profile(vault_id)
    assert profile["phone"] == "+447700900123"
    assert profile["birthdate"] == "1980-04-30"
    assert profile["locale"] == "en-GB"
    assert profile["interests"] == ["cycling", "jazz", "home cooking"]
    assert profile["postal_address"] == {
        "street": "12 St James's Square",
        "locality": "London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    }


def test_an_invalid_field_shows_its_error_beside_it_and_saves_nothing(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    response = save(customer, given_name="Ada", phone="12345")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert error_next_to(html, "f-phone").startswith("Phone number must be an international number")
    assert 'id="f-phone" name="phone" type="tel" value="12345"' in html
    assert value_of(html, "f-given_name") == "Ada"
    assert "Nothing was saved" in html
    assert 'href="#f-phone"' in html
    assert "given_name" not in vault.vaults.profile(vault_id)

    fixed = save(customer, given_name="Ada", phone="+447700900123")
    assert fixed.status_code == 303
    profile = vault.vaults.profile(vault_id)
    assert (profile["given_name"], profile["phone"]) == ("Ada", "+447700900123")


def test_every_invalid_field_gets_its_own_error(customer: FlaskClient, vault_id: str) -> None:
    response = save(customer, email="nope", birthdate="2999-01-01", locale="english")
    html = response.get_data(as_text=True)
    assert "email address like" in error_next_to(html, "f-email")
    assert "must not be in the future" in error_next_to(html, "f-birthdate")
    assert "language tag" in error_next_to(html, "f-locale")


def test_address_errors_sit_next_to_the_part_they_concern(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    response = save(customer, postal_address__street="1 Main Street", postal_address__country="GB")
    html = response.get_data(as_text=True)
    assert error_next_to(html, "f-postal_address-locality") == "Town or city is required."
    assert "postal_address" not in vault.vaults.profile(vault_id)


def test_country_is_chosen_from_a_list_of_names(customer: FlaskClient) -> None:
    html = page(customer, "/profile")
    assert '<option value="GB">United Kingdom</option>' in html
    assert '<option value="">Choose a country</option>' in html
    assert html.count("<option value=") >= 249


def test_emptying_an_input_clears_its_field(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    vault.vaults.set_fields(vault_id, {"given_name": "Ada", "family_name": "Lovelace"})
    follow(customer, save(customer, given_name=""))
    profile = vault.vaults.profile(vault_id)
    assert "given_name" not in profile
    assert profile["family_name"] == "Lovelace"
    assert [v.value for v in vault.vaults.history(vault_id)["given_name"]] == ["Ada", None]


def test_emptying_every_address_line_clears_the_address(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    vault.vaults.set_fields(
        vault_id, {"postal_address": {"street": "1 A St", "locality": "Leeds", "country": "GB"}}
    )
    empty = {key.replace(".", "__"): "" for key in ADDRESS}
    follow(customer, save(customer, **empty))
    assert "postal_address" not in vault.vaults.profile(vault_id)


def test_saving_an_unchanged_form_changes_nothing(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    vault.vaults.set_fields(vault_id, {"given_name": "Ada", "x-lucky": "7"})
    assert "Nothing changed." in follow(customer, save(customer))
    history = vault.vaults.history(vault_id)
    assert len(history["given_name"]) == 1
    assert vault.vaults.profile(vault_id)["x-lucky"] == "7"


def test_adding_a_custom_field(customer: FlaskClient, vault: Services, vault_id: str) -> None:
    follow(customer, save(customer, new_name="Shoe size", new_value="38"))
    assert vault.vaults.profile(vault_id)["x-shoe-size"] == 38
    html = page(customer, "/profile")
    assert value_of(html, "f-x-shoe-size") == "38"
    assert "/profile/history/x-shoe-size" in html


def test_a_custom_field_needs_a_valid_name_and_a_value(
    customer: FlaskClient, vault_id: str
) -> None:
    html = save(customer, new_name="no/slashes", new_value="1").get_data(as_text=True)
    assert "is not a valid custom field name" in error_next_to(html, "f-new_name")
    html = save(customer, new_name="colour", new_value="").get_data(as_text=True)
    assert error_next_to(html, "f-new_value") == "Give the new field a value."
    assert value_of(html, "f-new_name") == "colour"


def test_a_new_field_named_like_one_already_there_is_refused(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    vault.vaults.set_fields(vault_id, {"x-shoe": 41})
    for own_input in ("", "43"):  # Emptied, or changed, in its own input at the same time.
        response = save(customer, new_name="shoe", new_value="42", **{"x-shoe": own_input})
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "a field of this name already" in error_next_to(html, "f-new_name")
        assert vault.vaults.profile(vault_id)["x-shoe"] == 41


def test_editing_a_custom_field(customer: FlaskClient, vault: Services, vault_id: str) -> None:
    vault.vaults.set_fields(vault_id, {"x-loyalty": {"shop": "A", "number": 12}})
    html = page(customer, "/profile")
    assert value_of(html, "f-x-loyalty") == "{&#34;number&#34;: 12, &#34;shop&#34;: &#34;A&#34;}"
    follow(customer, save(customer, **{"x-loyalty": '{"shop": "B", "number": 13}'}))
    assert vault.vaults.profile(vault_id)["x-loyalty"] == {"shop": "B", "number": 13}
    response = save(customer, **{"x-loyalty": '{"shop": '})
    assert error_next_to(response.get_data(as_text=True), "f-x-loyalty").startswith(
        "The value must be JSON"
    )


def test_removing_a_custom_field(customer: FlaskClient, vault: Services, vault_id: str) -> None:
    vault.vaults.set_fields(vault_id, {"x-shoe-size": 38})
    html = page(customer, "/profile")
    assert 'form="remove-x-shoe-size"' in html
    assert 'id="remove-x-shoe-size" method="post" action="/profile/fields/remove"' in html
    response = submit(customer, "/profile/fields/remove", {"field": "x-shoe-size"})
    assert "Removed x-shoe-size" in follow(customer, response)
    assert "x-shoe-size" not in vault.vaults.profile(vault_id)
    assert [v.value for v in vault.vaults.history(vault_id)["x-shoe-size"]] == [38, None]


def test_removing_only_works_for_custom_fields(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    response = submit(customer, "/profile/fields/remove", {"field": "email"})
    assert "no value to remove" in follow(customer, response)
    assert vault.vaults.profile(vault_id)["email"] == EMAIL


@pytest.mark.parametrize("path", ["/profile/history", "/profile/history/given_name"])
def test_history_shows_every_version_with_its_time(
    customer: FlaskClient, vault: Services, vault_id: str, clock: FakeClock, path: str
) -> None:
    vault.vaults.set_fields(vault_id, {"given_name": "Ada"})
    clock.advance(3600)
    vault.vaults.set_fields(vault_id, {"given_name": "Augusta Ada"})
    clock.advance(3600)
    vault.vaults.clear_fields(vault_id, ["given_name"])
    html = page(customer, path)
    assert html.index("Cleared") < html.index("Augusta Ada") < html.index(">Ada<")
    assert "25 Nov 2026, 09:00 UTC" in html
    assert "25 Nov 2026, 11:00 UTC" in html


def test_history_of_a_field_without_values_is_empty_not_missing(customer: FlaskClient) -> None:
    assert "never had a value" in page(customer, "/profile/history/gender")


def test_history_of_an_unknown_field_is_not_found(customer: FlaskClient) -> None:
    assert customer.get("/profile/history/x-nothing").status_code == 404
    assert customer.get("/profile/history/shoe").status_code == 404


def test_each_field_links_to_its_history(customer: FlaskClient) -> None:
    html = page(customer, "/profile")
    for name in ("given_name", "email", "postal_address", "interests"):
        assert f'href="/profile/history/{name}"' in html


def test_the_country_list_names_every_code_the_profile_accepts() -> None:
    assert set(COUNTRY_NAMES) == COUNTRY_CODES
    names = [name for _, name in countries_by_name()]
    assert names.index("Åland Islands") < names.index("Albania")


def test_history_shows_structured_values_in_words(
    customer: FlaskClient, vault: Services, vault_id: str
) -> None:
    vault.vaults.set_fields(
        vault_id,
        {
            "postal_address": {"street": "1 Main St\nFlat 2", "locality": "Lyon", "country": "FR"},
            "interests": ["cycling", "jazz"],
            "channel_preferences": {"email": True, "max_offers_per_vendor_per_month": 2},
        },
    )
    html = page(customer, "/profile/history")
    assert "1 Main St, Flat 2, Lyon, France" in html
    assert "cycling, jazz" in html
    assert "Contact by email; at most 2 offers a vendor a month" in html
