"""The profile field registry: what each field accepts, refuses and stores."""

from __future__ import annotations

import json
import math
import re
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vault.errors import ValidationError
from vault.fields import (
    COUNTRY_CODES,
    MAX_NESTING,
    MAX_PROFILE_BYTES,
    MAX_VALUE_BYTES,
    STANDARD_FIELDS,
    FieldSpec,
    JSONValue,
    check_profile_size,
    decode_value,
    encode_value,
    is_custom,
    parse_text_value,
    spec_for,
    validate_field,
)

TODAY = date(2025, 6, 15)

ADDRESS = {"street": "10 Downing Street", "locality": "London", "country": "GB"}


def valid(name: str, value: object) -> JSONValue:
    return validate_field(name, value, today=TODAY)


def refusal(name: str, value: object) -> ValidationError:
    """The error validating ``value`` raises; fails the test if the value is accepted."""
    with pytest.raises(ValidationError) as caught:
        valid(name, value)
    assert caught.value.field == name
    return caught.value


def nested_lists(depth: int) -> JSONValue:
    value: JSONValue = []
    for _ in range(depth - 1):
        value = [value]
    return value


# The registry.


def test_standard_fields_are_listed_in_form_order() -> None:
    assert list(STANDARD_FIELDS) == [
        "given_name",
        "family_name",
        "email",
        "phone",
        "birthdate",
        "postal_address",
        "locale",
        "gender",
        "interests",
        "channel_preferences",
    ]


def test_every_standard_spec_has_its_name_a_label_and_a_description() -> None:
    for name, spec in STANDARD_FIELDS.items():
        assert spec.name == name
        assert spec.label
        assert spec.description.endswith(".")


def test_only_address_interests_and_channel_preferences_take_json() -> None:
    structured = {name for name, spec in STANDARD_FIELDS.items() if spec.structured}
    assert structured == {"postal_address", "interests", "channel_preferences"}


def test_standard_fields_cannot_be_changed_by_callers() -> None:
    with pytest.raises(TypeError):
        STANDARD_FIELDS["email"] = STANDARD_FIELDS["phone"]  # type: ignore[index]


def test_unknown_field_name_is_refused_with_a_hint_about_custom_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        spec_for("shoe_size")
    assert caught.value.field == "shoe_size"
    assert caught.value.rule == "is not a known field; custom fields are named x-<name>"
    assert str(caught.value) == "shoe_size: is not a known field; custom fields are named x-<name>"


@pytest.mark.parametrize(
    ("name", "custom"),
    [
        ("x-shoe-size", True),
        ("x-a", True),
        ("x-0", True),
        ("x-snake_case", True),
        ("x-" + "a" * 63, True),
        ("x-" + "a" * 64, False),
        ("x-", False),
        ("x--lead", False),
        ("x-_lead", False),
        ("x-Upper", False),
        ("X-upper", False),
        ("x-dot.ted", False),
        ("x-sp ace", False),
        ("x-new\n", False),
        ("email", False),
    ],
)
def test_custom_field_names_are_x_dash_then_lowercase_letters_digits_and_separators(
    name: str, custom: bool
) -> None:
    assert is_custom(name) is custom


def test_malformed_custom_field_name_is_refused_naming_the_rule() -> None:
    with pytest.raises(ValidationError) as caught:
        spec_for("x-Shoe")
    assert "lowercase letters" in caught.value.rule


def test_custom_field_spec_is_structured_and_labelled_from_its_name() -> None:
    spec = spec_for("x-shoe_size")
    assert isinstance(spec, FieldSpec)
    assert spec.structured
    assert spec.label == "Shoe size"


def test_spec_validate_names_the_field_in_the_error() -> None:
    with pytest.raises(ValidationError, match=r"^phone: "):
        STANDARD_FIELDS["phone"].validate("call me", today=TODAY)


@pytest.mark.parametrize("name", [*STANDARD_FIELDS, "x-note"])
def test_none_is_not_a_value_for_any_field(name: str) -> None:
    assert "clear the field" in refusal(name, None).rule


def test_errors_never_repeat_the_value() -> None:
    secret = "s3cret-token-value"
    for name, value in [
        ("email", f"{secret} @example.com"),
        ("phone", secret),
        ("given_name", f"{secret}\x00"),
        ("interests", [f"{secret}!"]),
        ("birthdate", secret),
    ]:
        assert secret not in str(refusal(name, value))


# Names and gender.


@pytest.mark.parametrize("name", ["given_name", "family_name"])
def test_names_are_trimmed(name: str) -> None:
    assert valid(name, "  Ada \t") == "Ada"


def test_names_are_stored_in_composed_unicode_form() -> None:
    assert valid("family_name", "Zoe\u0308") == "Zo\u00eb"


@pytest.mark.parametrize("name", ["given_name", "family_name"])
def test_names_of_200_characters_are_accepted(name: str) -> None:
    assert valid(name, "a" * 200) == "a" * 200


@pytest.mark.parametrize("name", ["given_name", "family_name"])
def test_names_over_200_characters_are_refused(name: str) -> None:
    assert refusal(name, "a" * 201).rule == "must be at most 200 characters"


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_empty_name_is_refused(value: str) -> None:
    assert refusal("given_name", value).rule == "must not be empty"


@pytest.mark.parametrize("value", ["Ada\x00", "Ada\nLovelace", "A\x1bda", "Ada\u2028L"])
def test_name_with_control_characters_is_refused(value: str) -> None:
    assert refusal("given_name", value).rule == "must not contain control characters"


@pytest.mark.parametrize("value", [42, ["Ada"], {"name": "Ada"}, True])
def test_name_that_is_not_text_is_refused(value: object) -> None:
    assert refusal("family_name", value).rule == "must be text"


def test_gender_is_free_text_the_customer_chooses() -> None:
    assert valid("gender", "  non-binary ") == "non-binary"
    assert valid("gender", "Two-Spirit") == "Two-Spirit"


def test_gender_is_at_most_64_characters() -> None:
    assert valid("gender", "g" * 64) == "g" * 64
    assert refusal("gender", "g" * 65).rule == "must be at most 64 characters"
    assert refusal("gender", " ").rule == "must not be empty"


# Email.


def test_email_domain_is_lowercased_and_local_part_kept() -> None:
    assert valid("email", "Ada.Lovelace@Example.COM") == "Ada.Lovelace@example.com"


def test_email_surrounding_whitespace_is_trimmed() -> None:
    assert valid("email", "  ada@example.org\n") == "ada@example.org"


@pytest.mark.parametrize(
    "value",
    [
        "ada+news@mail.example.co.uk",
        "o'brien@example.ie",
        "用户@例子.广告",
        "a@b-c.io",
        "x@123.example",
    ],
)
def test_email_accepts_ordinary_addresses(value: str) -> None:
    assert valid("email", value) == value


@pytest.mark.parametrize(
    "value",
    [
        "ada",
        "ada@",
        "@example.com",
        "ada@localhost",
        "ada@example.c",
        "ada@example.123",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "ada@@example.com",
        "ada@one@example.com",
        ".ada@example.com",
        "ada.@example.com",
        "a..da@example.com",
        "ada@-example.com",
        "ada@example-.com",
        "ada@example..com",
        "ada@example.com.",
        '"ada"@example.com',
        "ada,b@example.com",
        "a" * 65 + "@example.com",
        "ada@" + "a" * 64 + ".com",
    ],
)
def test_email_that_is_not_an_address_is_refused(value: str) -> None:
    assert refusal("email", value).rule == "must be an email address like name@example.com"


def test_email_over_254_characters_is_refused() -> None:
    value = "ada@" + ".".join(["a" * 61] * 4) + ".com"
    assert len(value) > 254
    assert refusal("email", value).rule == "must be at most 254 characters"


# Phone.


@pytest.mark.parametrize(
    "value",
    [
        "+447700900123",
        "+44 7700 900123",
        "+44-7700-900-123",
        "+44.7700.900.123",
        "+44 (7700) 900123",
        "+44 (0)7700 900123",
        " +44\u00a07700 900123 ",
    ],
)
def test_phone_is_normalised_to_e164(value: str) -> None:
    assert valid("phone", value) == "+447700900123"


def test_phone_of_7_and_15_digits_is_accepted() -> None:
    assert valid("phone", "+1234567") == "+1234567"
    assert valid("phone", "+123456789012345") == "+123456789012345"


@pytest.mark.parametrize(
    "value",
    [
        "07700900123",
        "00447700900123",
        "+0447700900123",
        "+123456",
        "+1234567890123456",
        "+44 7700 CALL ME",
        "+44/7700900123",
        "+",
        "+\u0664\u0664\u0667\u0667\u0660\u0660\u0669\u0660\u0660\u0661\u0662\u0663",
    ],
)
def test_phone_not_in_international_form_is_refused(value: str) -> None:
    assert refusal("phone", value).rule.startswith("must be an international number")


# Birthdate.


def test_birthdate_in_iso_form_is_accepted() -> None:
    assert valid("birthdate", "1980-04-30") == "1980-04-30"
    assert valid("birthdate", " 2000-02-29 ") == "2000-02-29"


def test_birthdate_today_is_accepted() -> None:
    assert valid("birthdate", TODAY.isoformat()) == TODAY.isoformat()


def test_birthdate_in_the_future_is_refused() -> None:
    assert refusal("birthdate", "2025-06-16").rule == "must not be in the future"


def test_birthdate_rule_follows_the_day_passed_in() -> None:
    spec = STANDARD_FIELDS["birthdate"]
    assert spec.validate("2025-06-16", today=date(2025, 6, 16)) == "2025-06-16"


def test_birthdate_before_1900_is_refused() -> None:
    assert valid("birthdate", "1900-01-01") == "1900-01-01"
    assert refusal("birthdate", "1899-12-31").rule == "must not be before 1900-01-01"


@pytest.mark.parametrize("value", ["2023-02-29", "1980-13-01", "1980-04-31", "1980-00-10"])
def test_birthdate_that_is_not_a_real_date_is_refused(value: str) -> None:
    assert refusal("birthdate", value).rule == "must be a real date"


@pytest.mark.parametrize(
    "value",
    [
        "30/04/1980",
        "1980-4-30",
        "19800430",
        "1980-04-30T00:00",
        "1980-W17-3",
        "\u0662\u0660\u0660\u0660-\u0660\u0661-\u0660\u0661",
    ],
)
def test_birthdate_not_written_yyyy_mm_dd_is_refused(value: str) -> None:
    assert "YYYY-MM-DD" in refusal("birthdate", value).rule


# Postal address.


def test_postal_address_is_normalised() -> None:
    value = {
        "street": "  Flat 2\r\n 10 Main Street \n\n",
        "locality": " Springfield ",
        "region": " Kent ",
        "postal_code": " sw1a   1aa ",
        "country": "gb",
    }
    assert valid("postal_address", value) == {
        "street": "Flat 2\n10 Main Street",
        "locality": "Springfield",
        "region": "Kent",
        "postal_code": "SW1A 1AA",
        "country": "GB",
    }


def test_postal_address_optional_parts_may_be_left_out() -> None:
    assert valid("postal_address", ADDRESS) == ADDRESS


@pytest.mark.parametrize("blank", ["", "  ", None])
def test_postal_address_blank_optional_parts_are_dropped(blank: object) -> None:
    value = {**ADDRESS, "region": blank, "postal_code": blank}
    assert valid("postal_address", value) == ADDRESS


@pytest.mark.parametrize("part", ["street", "locality", "country"])
def test_postal_address_missing_required_part_is_named(part: str) -> None:
    value = {key: text for key, text in ADDRESS.items() if key != part}
    assert refusal("postal_address", value).rule == f"{part} is required"
    assert refusal("postal_address", {**ADDRESS, part: " "}).rule == f"{part} is required"


def test_unknown_address_key_is_named_in_the_error() -> None:
    error = refusal("postal_address", {**ADDRESS, "floor": "3"})
    assert '"floor"' in error.rule
    assert "street, locality, region, postal_code, country" in error.rule


def test_postal_address_parts_must_be_text() -> None:
    assert refusal("postal_address", {**ADDRESS, "region": 7}).rule == "region must be text"


@pytest.mark.parametrize("country", ["UK", "XX", "GBR", "G", "826", "Gb "])
def test_postal_address_country_outside_iso_3166_is_refused(country: str) -> None:
    if country.strip().upper() in COUNTRY_CODES:
        assert valid("postal_address", {**ADDRESS, "country": country}) == ADDRESS
    else:
        rule = refusal("postal_address", {**ADDRESS, "country": country}).rule
        assert rule.startswith("country must be a two-letter ISO 3166 country code")


def test_country_codes_are_the_249_assigned_in_iso_3166_1() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"GB", "FR", "US", "BR", "JP", "SS", "BQ", "AQ"} <= COUNTRY_CODES
    assert not {"UK", "EU", "XK", "AN"} & COUNTRY_CODES


@pytest.mark.parametrize("code", ["SW1A#1AA", "-1234", "1234-", "12345678901234567", "ÄB 12"])
def test_postal_address_malformed_postal_code_is_refused(code: str) -> None:
    rule = refusal("postal_address", {**ADDRESS, "postal_code": code}).rule
    assert rule.startswith("postal_code must be")


def test_postal_address_street_may_not_hold_other_control_characters() -> None:
    value = {**ADDRESS, "street": "1 Main\tStreet"}
    assert refusal("postal_address", value).rule == "street must not contain control characters"


@pytest.mark.parametrize("value", ["10 Downing Street, London", ["street"], 3])
def test_postal_address_that_is_not_an_object_is_refused(value: object) -> None:
    assert refusal("postal_address", value).rule.startswith("must be an object with the keys")


# Locale.


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("en", "en"),
        ("EN-gb", "en-GB"),
        ("pt-br", "pt-BR"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("ZH-HANT", "zh-Hant"),
        ("es-419", "es-419"),
        ("en_US", "en-US"),
        ("sr-latn-rs", "sr-Latn-RS"),
        ("de-CH-1996", "de-CH-1996"),
        ("sl-rozaj-biske", "sl-rozaj-biske"),
        ("yue-hk", "yue-HK"),
        ("en-US-u-CA-gregory", "en-US-u-ca-gregory"),
        ("de-DE-x-Phonebk", "de-DE-x-phonebk"),
        ("en-a-bbbb-x-a-cc", "en-a-bbbb-x-a-cc"),
        (" fr ", "fr"),
    ],
)
def test_locale_is_normalised_to_canonical_case(value: str, canonical: str) -> None:
    assert valid("locale", value) == canonical


@pytest.mark.parametrize(
    "value",
    [
        "",
        "e",
        "english",
        "en-",
        "en--GB",
        "en-GBR",
        "en-G",
        "de-1901-1901",
        "en-u-ca-gregory-u-nu-latn",
        "en-u",
        "x-private",
        "i-klingon",
        "en-\u212aK",
        "en GB",
        "zh-yue-HK",
        "en-" + "-".join(["abcdefgh"] * 8),
    ],
)
def test_locale_that_is_not_a_language_tag_is_refused(value: str) -> None:
    assert refusal("locale", value).rule.startswith("must be a language tag like en")


# Interests.


def test_interests_are_lowercased_trimmed_and_deduplicated_in_order() -> None:
    value = ["Jazz", " cycling ", "JAZZ", "Hip  Hop", "jazz", "e-bikes"]
    assert valid("interests", value) == ["jazz", "cycling", "hip hop", "e-bikes"]


def test_interest_tags_have_single_spaces_inside() -> None:
    assert valid("interests", ["hip \t hop", "new\nwave"]) == ["hip hop", "new wave"]


def test_interests_accept_letters_of_any_script_and_digits() -> None:
    assert valid("interests", ["Café", "हिन्दी", "3D printing", "東京"]) == [
        "café",
        "हिन्दी",
        "3d printing",
        "東京",
    ]


def test_interests_may_be_an_empty_list() -> None:
    assert valid("interests", []) == []


def test_interests_hold_at_most_50_tags() -> None:
    tags = [f"tag {n}" for n in range(50)]
    assert valid("interests", tags) == tags
    assert refusal("interests", [*tags, "one more"]).rule == "must have at most 50 tags"


def test_interests_count_tags_after_removing_duplicates() -> None:
    tags = [f"tag {n}" for n in range(50)]
    assert valid("interests", [*tags, "TAG 0"]) == tags


@pytest.mark.parametrize("tag", ["", "  ", "c++", "rock & roll", "a" * 41, "#jazz"])
def test_interest_tag_outside_the_rules_is_refused_naming_its_position(tag: str) -> None:
    rule = refusal("interests", ["jazz", tag]).rule
    assert rule == "tag 2 must be 1-40 letters, digits, spaces or hyphens"


def test_interest_tag_of_40_characters_is_accepted() -> None:
    assert valid("interests", ["a" * 40]) == ["a" * 40]


def test_interest_tag_that_is_not_text_is_refused() -> None:
    assert refusal("interests", [3]).rule.startswith("tag 1 must be")


@pytest.mark.parametrize("value", ["jazz, cycling", {"jazz": True}, 3])
def test_interests_that_are_not_a_list_are_refused(value: object) -> None:
    assert refusal("interests", value).rule.startswith("must be a list of tags")


# Channel preferences.

NO_CHANNELS = {"email": False, "sms": False, "phone": False, "post": False}


def test_channel_preferences_always_list_all_four_channels() -> None:
    assert valid("channel_preferences", {}) == NO_CHANNELS
    assert valid("channel_preferences", {"sms": True}) == {**NO_CHANNELS, "sms": True}


def test_channel_preferences_null_opt_in_means_false() -> None:
    assert valid("channel_preferences", {"email": None}) == NO_CHANNELS


@pytest.mark.parametrize("opt_in", [1, 0, "yes", "true", [True]])
def test_channel_opt_in_must_be_a_boolean(opt_in: object) -> None:
    rule = refusal("channel_preferences", {"post": opt_in}).rule
    assert rule == "post must be true or false"


def test_unknown_channel_preferences_key_is_named_in_the_error() -> None:
    assert '"fax"' in refusal("channel_preferences", {"fax": True}).rule


def test_quiet_hours_are_normalised() -> None:
    value = {"quiet_hours": {"start": " 7:30", "end": "22:00", "timezone": "europe/london"}}
    assert valid("channel_preferences", value) == {
        **NO_CHANNELS,
        "quiet_hours": {"start": "07:30", "end": "22:00", "timezone": "Europe/London"},
    }


def test_quiet_hours_may_run_overnight() -> None:
    hours = {"start": "22:00", "end": "07:00", "timezone": "America/New_York"}
    assert valid("channel_preferences", {"quiet_hours": hours}) == {
        **NO_CHANNELS,
        "quiet_hours": hours,
    }


@pytest.mark.parametrize("time", ["24:00", "7", "07:60", "0730", "7:30pm", "07:30:00", ""])
def test_quiet_hours_time_not_written_hh_mm_is_refused(time: object) -> None:
    hours = {"start": time, "end": "07:00", "timezone": "UTC"}
    rule = refusal("channel_preferences", {"quiet_hours": hours}).rule
    assert rule == "quiet_hours.start must be a 24-hour time written HH:MM, like 22:00"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "GMT+25", "../etc/passwd", "", "London"])
def test_quiet_hours_unknown_time_zone_is_refused(zone: str) -> None:
    hours = {"start": "22:00", "end": "07:00", "timezone": zone}
    rule = refusal("channel_preferences", {"quiet_hours": hours}).rule
    assert rule == "quiet_hours.timezone must be a time zone name like Europe/London"


def test_quiet_hours_need_start_end_and_time_zone() -> None:
    hours = {"start": "22:00", "end": "07:00"}
    rule = refusal("channel_preferences", {"quiet_hours": hours}).rule
    assert rule == "quiet_hours.timezone is required"


def test_quiet_hours_unknown_key_is_named() -> None:
    hours = {"start": "22:00", "end": "07:00", "timezone": "UTC", "days": "weekends"}
    rule = refusal("channel_preferences", {"quiet_hours": hours}).rule
    assert rule.startswith('quiet_hours has an unknown key "days"')


def test_quiet_hours_that_start_when_they_end_are_refused() -> None:
    hours = {"start": "7:00", "end": "07:00", "timezone": "UTC"}
    rule = refusal("channel_preferences", {"quiet_hours": hours}).rule
    assert rule == "quiet_hours must start and end at different times"


@pytest.mark.parametrize("cap", [0, 7, 100])
def test_offer_cap_from_0_to_100_is_accepted(cap: int) -> None:
    value = valid("channel_preferences", {"max_offers_per_vendor_per_month": cap})
    assert value == {**NO_CHANNELS, "max_offers_per_vendor_per_month": cap}


@pytest.mark.parametrize("cap", [-1, 101, 2.5, 3.0, "5", True])
def test_offer_cap_outside_0_to_100_is_refused(cap: object) -> None:
    rule = refusal("channel_preferences", {"max_offers_per_vendor_per_month": cap}).rule
    assert rule == "max_offers_per_vendor_per_month must be a whole number from 0 to 100"


@pytest.mark.parametrize("value", [[], "email", True])
def test_channel_preferences_that_are_not_an_object_are_refused(value: object) -> None:
    assert refusal("channel_preferences", value).rule.startswith("must be an object")


# Custom fields.


@pytest.mark.parametrize(
    "value",
    ["", "size 42", 42, -1.5, True, False, [], {}, [1, "two", None], {"eu": 42, "us": [9.5]}],
)
def test_custom_field_accepts_any_json_value(value: JSONValue) -> None:
    assert valid("x-shoes", value) == value


def test_custom_field_value_is_a_copy_the_caller_cannot_change_afterwards() -> None:
    original: dict[str, JSONValue] = {"sizes": [42]}
    stored = valid("x-shoes", original)
    original["sizes"] = []
    assert stored == {"sizes": [42]}


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        (math.nan, "must not contain NaN or infinity"),
        ([math.inf], "must not contain NaN or infinity"),
        ({1: "one"}, "must have only text as object keys"),
        ((1, 2), "must be made of text, numbers, true or false, lists and objects"),
        (
            {"when": date(2020, 1, 1)},
            "must be made of text, numbers, true or false, lists and objects",
        ),
        ("\ud800", "must be valid Unicode text"),
        ({"\udfff": 1}, "must be valid Unicode text"),
    ],
)
def test_custom_field_refuses_what_json_cannot_carry_exactly(value: object, rule: str) -> None:
    assert refusal("x-data", value).rule == rule


def test_custom_field_may_nest_32_deep_but_no_deeper() -> None:
    assert valid("x-deep", nested_lists(MAX_NESTING)) == nested_lists(MAX_NESTING)
    rule = refusal("x-deep", nested_lists(MAX_NESTING + 1)).rule
    assert rule == "must not nest lists and objects more than 32 deep"


# Size limits.


def test_value_of_4096_bytes_is_accepted() -> None:
    text = "a" * (MAX_VALUE_BYTES - 2)
    assert len(encode_value(text)) == MAX_VALUE_BYTES
    assert valid("x-note", text) == text


def test_value_over_4096_bytes_is_refused() -> None:
    assert refusal("x-note", "a" * (MAX_VALUE_BYTES - 1)).rule == "must be at most 4096 bytes"


def test_value_size_is_counted_in_utf8_bytes_not_characters() -> None:
    text = "é" * 2047
    assert len(encode_value(text)) == 4096
    assert valid("x-note", text) == text
    assert refusal("x-note", text + "é").rule == "must be at most 4096 bytes"


def test_huge_integer_is_refused_as_too_big() -> None:
    assert refusal("x-number", 10**5000).rule == "must be at most 4096 bytes"


def test_standard_field_value_over_4096_bytes_is_refused() -> None:
    tags = [f"{n:02d}" + "a" * 38 for n in range(50)]
    address = {**ADDRESS, "street": "é" * 500, "locality": "é" * 200, "region": "é" * 200}
    assert len(encode_value(valid("interests", tags))) < MAX_VALUE_BYTES
    assert len(encode_value(valid("postal_address", address))) < MAX_VALUE_BYTES
    interests = [f"{n:02d}" + "東" * 38 for n in range(50)]
    assert refusal("interests", interests).rule == "must be at most 4096 bytes"


def test_profile_of_256_kib_is_accepted() -> None:
    values: dict[str, JSONValue] = {f"x-{n}": "a" * (4096 - 2) for n in range(64)}
    check_profile_size(values)


def test_profile_over_256_kib_is_refused() -> None:
    values: dict[str, JSONValue] = {f"x-{n}": "a" * (4096 - 2) for n in range(64)}
    values["x-last"] = 1
    with pytest.raises(ValidationError) as caught:
        check_profile_size(values)
    assert caught.value.field == "profile"
    assert str(MAX_PROFILE_BYTES) in caught.value.rule


# Canonical JSON.


def test_encoding_is_canonical_json_in_utf8() -> None:
    value: JSONValue = {"b": [1, 2.5, None, True], "a": "Zoë", "c": {"z": 1, "y": "\n"}}
    expected = '{"a":"Zoë","b":[1,2.5,null,true],"c":{"y":"\\n","z":1}}'
    assert encode_value(value) == expected.encode("utf-8")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"x": [math.nan]}])
def test_encoding_refuses_nan_and_infinity(value: JSONValue) -> None:
    with pytest.raises(ValueError, match="NaN or infinity"):
        encode_value(value)


@pytest.mark.parametrize("value", [{1: "a"}, (1, 2), {"a": {1, 2}}, b"bytes"])
def test_encoding_refuses_what_json_would_change(value: object) -> None:
    with pytest.raises(ValueError, match="not a storable JSON value"):
        encode_value(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"NaN", "NaN is not a number JSON allows"),
        (b"[Infinity]", "Infinity is not a number JSON allows"),
        (b"1e400", "a number is too large"),
        (b'{"a":1,"a":2}', 'duplicate key "a"'),
        (b"\xff", "can't decode byte 0xff"),
        (b"", "Expecting value"),
        (b"[1,", "Expecting value"),
        (b"[" * 5000, "nested too deeply"),
        (b"[" * 40 + b"]" * 40, "must not nest lists and objects more than 32 deep"),
    ],
)
def test_decoding_refuses_what_encoding_never_produces(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        decode_value(data)


# Text input from the CLI and web forms.


def test_plain_fields_take_the_text_as_typed() -> None:
    assert parse_text_value("given_name", " Ada ") == " Ada "
    assert parse_text_value("phone", "+44 7700 900123") == "+44 7700 900123"
    assert parse_text_value("birthdate", '"1980-04-30"') == '"1980-04-30"'


def test_structured_fields_take_json() -> None:
    assert parse_text_value("interests", '["jazz", "cycling"]') == ["jazz", "cycling"]
    assert parse_text_value("postal_address", json.dumps(ADDRESS)) == ADDRESS


@pytest.mark.parametrize("name", ["postal_address", "interests", "channel_preferences"])
def test_structured_field_text_that_is_not_json_is_refused_with_a_reason(name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_text_value(name, "jazz, cycling")
    assert caught.value.field == name
    assert caught.value.rule == "must be JSON: expecting value at line 1 column 1"


def test_structured_field_json_with_a_repeated_key_is_refused() -> None:
    with pytest.raises(ValidationError, match='must be JSON: duplicate key "street"'):
        parse_text_value("postal_address", '{"street": "a", "street": "b"}')


def test_structured_field_json_with_nan_is_refused() -> None:
    with pytest.raises(ValidationError, match="must be JSON: NaN"):
        parse_text_value("interests", "[NaN]")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("4.5", 4.5),
        ("true", True),
        ('"quoted"', "quoted"),
        ('{"eu": 42}', {"eu": 42}),
        ("size 42", "size 42"),
        ("007", "007"),
        ("NaN", "NaN"),
        ("1e400", "1e400"),
        ("", ""),
        ("null", None),
    ],
)
def test_custom_fields_take_json_when_it_parses_and_text_otherwise(
    text: str, value: JSONValue
) -> None:
    assert parse_text_value("x-shoes", text) == value


@pytest.mark.parametrize("text", ['{"eu": 42', "[1, 2", '  {"a": 1, "a": 2}'])
def test_custom_field_text_that_looks_like_broken_json_is_refused(text: str) -> None:
    with pytest.raises(ValidationError, match=r"^x-shoes: must be JSON: "):
        parse_text_value("x-shoes", text)


def test_text_for_an_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not a known field"):
        parse_text_value("shoe_size", "42")


def test_absurdly_long_text_is_refused_before_parsing() -> None:
    with pytest.raises(ValidationError, match="is too long"):
        parse_text_value("x-note", "[" + " " * 100_000 + "]")


def test_deeply_nested_json_text_is_refused_without_crashing() -> None:
    with pytest.raises(ValidationError, match="must be JSON: nested too deeply"):
        parse_text_value("interests", "[" * 20_000)


# Properties.

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)


def json_values(depth: int = 4) -> st.SearchStrategy[JSONValue]:
    """Arbitrary JSON values, nesting at most ``depth`` lists and objects."""
    if depth == 0:
        return json_scalars
    inner = json_values(depth - 1)
    return (
        json_scalars
        | st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    )


@given(json_values())
def test_decoding_inverts_encoding_for_any_json_value(value: JSONValue) -> None:
    data = encode_value(value)
    assert decode_value(data) == value
    assert encode_value(decode_value(data)) == data


def padded(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """The strategy's text with random whitespace around it."""
    space = st.sampled_from(["", " ", "  ", "\t", "\n"])
    return st.tuples(space, strategy, space).map("".join)


def random_case(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(strategy, st.booleans()).map(
        lambda pair: pair[0].upper() if pair[1] else pair[0]
    )


free_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
).filter(str.strip)
email_local = st.from_regex(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,10}){0,2}", fullmatch=True
)
domain_label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,12}[A-Za-z0-9])?", fullmatch=True)
emails = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    email_local,
    st.lists(domain_label, min_size=1, max_size=3),
    st.from_regex(r"[A-Za-z]{2,6}", fullmatch=True),
)
phones = st.builds(
    lambda first, rest, separators: (
        "+"
        + first
        + "".join(digit + separator for digit, separator in zip(rest, separators, strict=False))
        + rest[len(separators) :]
    ),
    st.sampled_from("123456789"),
    st.text("0123456789", min_size=6, max_size=14),
    st.lists(st.sampled_from(["", " ", "-", ".", "(0)"]), max_size=14),
)
birthdates = st.dates(date(1900, 1, 1), TODAY).map(date.isoformat)
addresses = st.fixed_dictionaries(
    {
        "street": free_text,
        "locality": padded(free_text),
        "country": random_case(st.sampled_from(sorted(COUNTRY_CODES))),
    },
    optional={
        "region": free_text | st.just(""),
        "postal_code": random_case(
            st.from_regex(r"[A-Z0-9]{1,4}( [A-Z0-9]{1,4})?", fullmatch=True)
        ),
    },
)
locales = st.builds(
    lambda language, script, region, separator: separator.join(
        part for part in (language, script, region) if part
    ),
    random_case(st.from_regex(r"[a-z]{2,3}", fullmatch=True)),
    st.sampled_from(["", "latn", "Hant", "CYRL"]),
    st.sampled_from(["", "gb", "BR", "419", "tw"]),
    st.sampled_from(["-", "_"]),
)
tags = padded(
    st.text(
        st.characters(whitelist_categories=("L", "Nd")) | st.sampled_from(" -"),
        min_size=1,
        max_size=20,
    ).filter(str.strip)
)
clock = st.builds(lambda h, m: f"{h}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
channel_preferences = st.fixed_dictionaries(
    {},
    optional={
        "email": st.booleans(),
        "sms": st.booleans(),
        "phone": st.booleans(),
        "post": st.booleans(),
        "quiet_hours": st.fixed_dictionaries(
            {
                "start": clock,
                "end": clock,
                "timezone": random_case(
                    st.sampled_from(["Europe/London", "America/Sao_Paulo", "Asia/Kolkata", "UTC"])
                ),
            }
        ).filter(lambda hours: hours["start"].zfill(5) != hours["end"].zfill(5)),
        "max_offers_per_vendor_per_month": st.integers(0, 100),
    },
)

VALID_VALUES: dict[str, st.SearchStrategy[object]] = {
    "given_name": padded(free_text),
    "family_name": free_text,
    "email": padded(emails),
    "phone": padded(phones),
    "birthdate": padded(birthdates),
    "postal_address": addresses,
    "locale": padded(locales),
    "gender": padded(free_text),
    "interests": st.lists(tags, max_size=50),
    "channel_preferences": channel_preferences,
    "x-anything": json_values().filter(
        lambda value: value is not None and len(encode_value(value)) <= MAX_VALUE_BYTES
    ),
}


def test_every_standard_field_has_a_strategy_of_valid_values() -> None:
    assert set(STANDARD_FIELDS) <= set(VALID_VALUES)


@pytest.mark.parametrize("name", VALID_VALUES)
@given(data=st.data())
def test_validating_a_normalised_value_returns_it_unchanged(name: str, data: st.DataObject) -> None:
    normal = valid(name, data.draw(VALID_VALUES[name]))
    assert valid(name, normal) == normal
    assert encode_value(valid(name, normal)) == encode_value(normal)


@pytest.mark.parametrize("name", ["postal_address", "interests", "channel_preferences", "x-any"])
@given(data=st.data())
def test_json_text_of_a_structured_value_parses_back_to_it(name: str, data: st.DataObject) -> None:
    strategy = VALID_VALUES["x-anything" if name == "x-any" else name]
    value = valid(name, data.draw(strategy))
    assert parse_text_value(name, json.dumps(value)) == value
    assert parse_text_value(name, json.dumps(value, ensure_ascii=False, indent=2)) == value
