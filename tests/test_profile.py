"""The encrypted profile on a real TinyDB store: round-trips, history, limits, tampering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys.errors import DecryptionError, MisplacedCiphertext, WrongKey
from tests.conftest import PASSWORD, FakeClock
from vault.errors import ValidationError
from vrm.services import Services

EVERY_FIELD: dict[str, Any] = {
    "given_name": "Ada",
    "family_name": "Lovelace",
    "email": "ada@example.org",
    "phone": "+447700900123",
    "birthdate": "1985-12-10",
    "postal_address": {
        "street": "12 St James's Square",
        "locality": "London",
        "region": "Greater London",
        "postal_code": "SW1Y 4JH",
        "country": "GB",
    },
    "locale": "en-GB",
    "gender": "woman",
    "interests": ["mathematics", "analytical engines"],
    "channel_preferences": {
        "email": True,
        "sms": False,
        "phone": False,
        "post": True,
        "quiet_hours": {"start": "21:00", "end": "08:00", "timezone": "Europe/London"},
        "max_offers_per_vendor_per_month": 2,
    },
    "x-shoe-size": 38,
    "x-notes": {"allergies": ["penicillin"], "vegetarian": True},
}


def _vault_file(services: Services, vault_id: str) -> Path:
    return services.data_dir / "store" / "vaults" / vault_id[:2] / f"{vault_id}.json"


@pytest.fixture
def vault_id(services: Services) -> str:
    return services.vaults.sign_up("ada@example.org", PASSWORD)


def test_every_field_type_round_trips_through_the_files(
    services: Services, vault_id: str, config: dict[str, Any], clock: FakeClock
) -> None:
    services.vaults.set_fields(vault_id, EVERY_FIELD)
    from vrm.services import build_services

    reopened = build_services(config, clock=clock)
    try:
        assert reopened.vaults.profile(vault_id) == EVERY_FIELD
    finally:
        reopened.close()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=50
    ).filter(lambda s: s.strip() == s and s),
    custom=st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=12,
    ).filter(lambda v: v is not None),
)
def test_generated_values_round_trip(
    services: Services, vault_id: str, name: str, custom: Any
) -> None:
    services.vaults.set_fields(vault_id, {"given_name": name, "x-generated": custom})
    stored = services.vaults.profile(vault_id)
    assert stored["given_name"] == name
    assert stored["x-generated"] == custom


def test_each_change_keeps_the_previous_value_with_its_time(
    services: Services, vault_id: str, clock: FakeClock
) -> None:
    services.vaults.set_fields(vault_id, {"given_name": "Ada"})
    first_at = clock()
    clock.advance(60)
    services.vaults.set_fields(vault_id, {"given_name": "Augusta"})
    versions = services.vaults.history(vault_id)["given_name"]
    assert [(v.version, v.value) for v in versions] == [(1, "Ada"), (2, "Augusta")]
    assert versions[0].at == first_at
    assert versions[1].at == clock()


def test_setting_the_same_value_adds_no_version(services: Services, vault_id: str) -> None:
    services.vaults.set_fields(vault_id, {"interests": ["chess"]})
    services.vaults.set_fields(vault_id, {"interests": ["Chess "]})
    assert len(services.vaults.history(vault_id)["interests"]) == 1


def test_cleared_field_is_gone_but_its_history_stays(services: Services, vault_id: str) -> None:
    services.vaults.set_fields(vault_id, {"phone": "+447700900123"})
    services.vaults.clear_fields(vault_id, ["phone"])
    assert "phone" not in services.vaults.profile(vault_id)
    assert [v.value for v in services.vaults.history(vault_id)["phone"]] == ["+447700900123", None]


def test_invalid_value_names_the_field_and_changes_nothing(
    services: Services, vault_id: str
) -> None:
    before = services.vaults.profile(vault_id)
    with pytest.raises(ValidationError) as caught:
        services.vaults.set_fields(vault_id, {"given_name": "Ada", "birthdate": "2999-01-01"})
    assert caught.value.field == "birthdate"
    assert services.vaults.profile(vault_id) == before


def test_profile_over_256_kib_is_refused(services: Services, vault_id: str) -> None:
    chunk = "y" * 4000
    values = {f"x-part-{i}": chunk for i in range(60)}
    services.vaults.set_fields(vault_id, values)
    more = {f"x-more-{i}": chunk for i in range(10)}
    with pytest.raises(ValidationError, match="profile"):
        services.vaults.set_fields(vault_id, more)
    assert "x-more-0" not in services.vaults.profile(vault_id)


def test_custom_field_names_are_not_stored_in_clear(services: Services, vault_id: str) -> None:
    services.vaults.set_fields(vault_id, {"x-pregnancy-due-date": "2027-03-01"})
    assert b"pregnancy" not in _vault_file(services, vault_id).read_bytes()
    assert services.vaults.profile(vault_id)["x-pregnancy-due-date"] == "2027-03-01"


def _edit_vault_file(path: Path, edit: Any) -> None:
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _fields(doc: dict[str, Any]) -> dict[str, Any]:
    # The TinyDB file holds the vault document as its one record; find its "fields".
    stack: list[Any] = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "fields" in node and "vault_id" in node:
                return node["fields"]  # type: ignore[no-any-return]
            stack.extend(node.values())
    raise AssertionError("no vault document in file")


def test_ciphertext_moved_to_another_field_in_the_file_is_refused(
    services: Services, vault_id: str
) -> None:
    services.vaults.set_fields(vault_id, {"given_name": "Ada", "family_name": "Lovelace"})

    def swap(doc: dict[str, Any]) -> None:
        fields = _fields(doc)
        given, family = fields["given_name"]["versions"], fields["family_name"]["versions"]
        given[-1]["value"], family[-1]["value"] = family[-1]["value"], given[-1]["value"]

    _edit_vault_file(_vault_file(services, vault_id), swap)
    with pytest.raises(MisplacedCiphertext):
        services.vaults.profile(vault_id)


def test_ciphertext_moved_to_another_vault_is_refused(services: Services, vault_id: str) -> None:
    other = services.vaults.sign_up("grace@example.org", PASSWORD)
    services.vaults.set_fields(vault_id, {"given_name": "Ada"})
    services.vaults.set_fields(other, {"given_name": "Grace"})
    ada = _fields(json.loads(_vault_file(services, vault_id).read_text()))
    value = ada["given_name"]["versions"][-1]["value"]

    def plant(doc: dict[str, Any]) -> None:
        _fields(doc)["given_name"]["versions"][-1]["value"] = value

    _edit_vault_file(_vault_file(services, other), plant)
    with pytest.raises(WrongKey):
        services.vaults.profile(other)


def test_flipped_byte_in_a_stored_value_is_refused(services: Services, vault_id: str) -> None:
    services.vaults.set_fields(vault_id, {"given_name": "Ada"})

    def flip(doc: dict[str, Any]) -> None:
        version = _fields(doc)["given_name"]["versions"][-1]
        sealed = version["value"]
        version["value"] = sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:]

    _edit_vault_file(_vault_file(services, vault_id), flip)
    with pytest.raises(DecryptionError):
        services.vaults.profile(vault_id)


def test_values_opens_only_the_named_fields(services: Services, vault_id: str) -> None:
    services.vaults.set_fields(vault_id, {"given_name": "Ada", "x-secret": "kept"})
    doc = services.store.read_vault(vault_id)
    cipher = services.vaults._cipher(vault_id)
    assert cipher.values(doc, ["given_name", "x-secret", "phone"]) == {
        "given_name": "Ada",
        "x-secret": "kept",
    }
    doc["fields"][cipher.slot("x-secret")]["versions"][-1]["value"] = "tampered"
    assert cipher.values(doc, ["given_name"]) == {"given_name": "Ada"}
