"""Vault files edited on disk fail to open, each with the error that says why.

Everything goes through the real services on a real data directory (TinyDB files under a
temporary folder): the test stores values, edits the vault's JSON file the way someone
with the disk but not the keys could, and reads the profile back. A flipped byte is
tampering, a value copied to another field, version or slot is misplaced, a value copied
from another vault or opened under another KEK is the wrong key. Each check names the
exact class, never the DecryptionError base, and the classes are siblings, so a test can
only pass with the error the envelope documents.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import string
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys.envelope import HEADER_BYTES
from keys.errors import (
    DecryptionError,
    MisplacedCiphertext,
    TamperedCiphertext,
    UnknownKeyVersion,
    UnsupportedFormat,
    WrongKey,
)
from keys.files import read_key_file, write_key_file
from tests.conftest import FAST_ARGON2, FAST_AUDIT, PASSWORD, FakeClock
from vault.fields import COUNTRY_CODES, STANDARD_FIELDS, validate_field
from vault.profile import ProfileCipher
from vrm.config import load_config
from vrm.services import Services, build_services

# Each example builds or edits real files; these counts keep each test near a second.
EXAMPLES = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEY_A = base64.b64encode(bytes(range(32))).decode()

_emails = itertools.count()


# Valid values for every field type, raw as a customer might type them; the tests expect
# back the normal form validate_field gives. Text sizes leave room for normalisation,
# which can triple a character (NFC of some presentation forms, lowercase of "İ").

_TEXT = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"))


def _free_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_TEXT, min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


def _label() -> st.SearchStrategy[str]:
    inner = st.text(string.ascii_lowercase + string.digits + "-", max_size=10)
    return st.builds(
        lambda a, mid, b: a + mid + b, st.sampled_from("abcxyz09"), inner, st.just("q")
    )


_emails_strategy = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join(labels)}.{tld}",
    st.text(string.ascii_letters + string.digits + "_%+-!#$&'*/=?^`{|}~", min_size=1, max_size=20),
    st.lists(_label(), min_size=1, max_size=3),
    st.text(string.ascii_letters, min_size=2, max_size=6),
)
_phones = st.builds(
    lambda first, rest, spaced: "+" + first + (" ".join(rest) if spaced else "".join(rest)),
    st.sampled_from("123456789"),
    st.lists(st.sampled_from(string.digits), min_size=6, max_size=14),
    st.booleans(),
)
_birthdates = st.dates(date(1900, 1, 1), date(2026, 11, 25)).map(date.isoformat)
_locales = st.builds(
    lambda language, script, region: "-".join(p for p in (language, script, region) if p),
    st.from_regex(r"[a-zA-Z]{2,3}", fullmatch=True),
    st.none() | st.from_regex(r"[a-zA-Z]{4}", fullmatch=True),
    st.none() | st.from_regex(r"[a-zA-Z]{2}|[0-9]{3}", fullmatch=True),
)
_addresses = st.fixed_dictionaries(
    {
        "street": st.lists(_free_text(40), min_size=1, max_size=3).map("\n".join),
        "locality": _free_text(40),
        "country": st.sampled_from(sorted(COUNTRY_CODES)),
    },
    optional={
        "region": _free_text(40),
        "postal_code": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 -]{0,10}[A-Za-z0-9]", fullmatch=True),
    },
)
_tags = st.text(
    st.characters(whitelist_categories=("Lu", "Ll", "Lo", "Nd")) | st.sampled_from(" -"),
    max_size=13,
).filter(lambda s: s.strip() != "")
_clocks = st.tuples(st.integers(0, 23), st.integers(0, 59))
_quiet_hours = (
    st.tuples(_clocks, _clocks)
    .filter(lambda pair: pair[0] != pair[1])
    .flatmap(
        lambda pair: st.fixed_dictionaries(
            {
                "start": st.just("{}:{:02d}".format(*pair[0])),
                "end": st.just("{:02d}:{:02d}".format(*pair[1])),
                "timezone": st.sampled_from(sorted(zoneinfo.available_timezones())),
            }
        )
    )
)
_channel_preferences = st.fixed_dictionaries(
    {},
    optional={
        **{channel: st.booleans() for channel in ("email", "sms", "phone", "post")},
        "quiet_hours": _quiet_hours,
        "max_offers_per_vendor_per_month": st.integers(0, 100),
    },
)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
).filter(lambda value: value is not None)

STANDARD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "given_name": _free_text(60),
    "family_name": _free_text(60),
    "email": _emails_strategy,
    "phone": _phones,
    "birthdate": _birthdates,
    "postal_address": _addresses,
    "locale": _locales,
    "gender": _free_text(21),
    "interests": st.lists(_tags, max_size=8),
    "channel_preferences": _channel_preferences,
}
assert set(STANDARD_VALUES) == set(STANDARD_FIELDS), "a field type has no strategy"

CUSTOM_NAMES = st.from_regex(r"x-[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)

profiles = st.fixed_dictionaries(STANDARD_VALUES).flatmap(
    lambda standard: st.dictionaries(CUSTOM_NAMES, _json_values, min_size=1, max_size=3).map(
        lambda custom: {**standard, **custom}
    )
)
"""A value for every standard field and one to three custom fields."""


def field_and_value() -> st.SearchStrategy[tuple[str, Any]]:
    """One field, standard or custom, with a valid value for it."""
    standard = st.sampled_from(sorted(STANDARD_VALUES)).flatmap(
        lambda name: st.tuples(st.just(name), STANDARD_VALUES[name])
    )
    return standard | st.tuples(CUSTOM_NAMES, _json_values)


def two_fields() -> st.SearchStrategy[dict[str, Any]]:
    """Two different fields, standard or custom, each with a valid value."""
    return st.lists(field_and_value(), min_size=2, max_size=2, unique_by=lambda fv: fv[0]).map(dict)


# The vault on disk.


def normal_forms(values: dict[str, Any], clock: FakeClock) -> dict[str, Any]:
    return {name: validate_field(name, v, today=clock().date()) for name, v in values.items()}


def new_vault(services: Services, values: dict[str, Any]) -> str:
    """A new customer's vault holding ``values`` (and the sign-up email)."""
    vault_id = services.vaults.sign_up(f"owner{next(_emails)}@example.org", PASSWORD)
    services.vaults.set_fields(vault_id, values)
    return vault_id


def vault_file(services: Services, vault_id: str) -> Path:
    return services.data_dir / "store" / "vaults" / vault_id[:2] / f"{vault_id}.json"


def slot(services: Services, vault_id: str, name: str) -> str:
    """Where field ``name`` sits in the vault document (custom fields sit under a digest)."""
    return ProfileCipher(vault_id, services.vaults.datakeys.open(vault_id), os.urandom).slot(name)


def fields_on_disk(services: Services, vault_id: str) -> dict[str, Any]:
    """The ``fields`` object of the vault document, as the file holds it."""
    (entry,) = json.loads(vault_file(services, vault_id).read_text())["_default"].values()
    assert entry["k"] == vault_id
    return entry["v"]["fields"]  # type: ignore[no-any-return]


def edit_fields(services: Services, vault_id: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite the vault file with ``edit`` applied to its fields, keeping it valid JSON.

    The new content is renamed over the file, as someone replacing it would: the store's
    read cache trusts a file whose inode, size and times are unchanged, and an in-place
    edit of the same size can leave all four equal on file systems with coarse times.
    """
    path = vault_file(services, vault_id)
    data = json.loads(path.read_text())
    (entry,) = data["_default"].values()
    edit(entry["v"]["fields"])
    temp = path.with_name(path.name + ".edit")
    temp.write_text(json.dumps(data))
    os.replace(temp, path)


def current(fields: dict[str, Any], slot_name: str) -> dict[str, Any]:
    return fields[slot_name]["versions"][-1]  # type: ignore[no-any-return]


def flipped(sealed: str, index: int, mask: int) -> str:
    """``sealed`` with the byte at ``index`` of its decoded form XORed with ``mask``."""
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[index] ^= mask
    return base64.urlsafe_b64encode(bytes(raw)).decode("ascii")


def sealed_length(sealed: str) -> int:
    return len(base64.urlsafe_b64decode(sealed))


def assert_refused_as(error: type[DecryptionError], read: Callable[[], object]) -> None:
    """``read`` raises exactly ``error``: not its base class, not a sibling."""
    with pytest.raises(DecryptionError) as caught:
        read()
    assert type(caught.value) is error, f"{type(caught.value).__name__}: {caught.value}"


@contextmanager
def reopened(config: dict[str, Any], clock: FakeClock) -> Iterator[Services]:
    """Services built afresh from what is on disk, as a restarted server would."""
    services = build_services(config, clock=clock)
    try:
        yield services
    finally:
        services.close()


def env_config(data_dir: Path, kek: str) -> dict[str, Any]:
    """Settings for ``data_dir`` with the KEK given through VRM_KEK."""
    return load_config(
        {"DATA": str(data_dir), **FAST_ARGON2, **FAST_AUDIT}, environ={"VRM_KEK": kek}
    )


# Round trips.


@settings(EXAMPLES, max_examples=25)
@given(values=profiles)
def test_every_field_type_round_trips_through_reopened_files(
    services: Services, config: dict[str, Any], clock: FakeClock, values: dict[str, Any]
) -> None:
    expected = normal_forms(values, clock)
    vault_id = new_vault(services, values)

    with reopened(config, clock) as again:
        assert again.vaults.profile(vault_id) == expected
        history = again.vaults.history(vault_id)
    assert {name: versions[-1].value for name, versions in history.items()} == expected


# Altered bytes.


@EXAMPLES
@given(field=field_and_value(), where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_flipped_byte_of_nonce_or_body_is_tampering(
    services: Services, field: tuple[str, Any], where: float, mask: int
) -> None:
    name, value = field
    vault_id = new_vault(services, {name: value})
    at = slot(services, vault_id, name)

    def flip(fields: dict[str, Any]) -> None:
        version = current(fields, at)
        body = sealed_length(version["value"]) - HEADER_BYTES
        version["value"] = flipped(version["value"], HEADER_BYTES + int(where * body), mask)

    edit_fields(services, vault_id, flip)

    assert_refused_as(TamperedCiphertext, lambda: services.vaults.profile(vault_id))


@EXAMPLES
@given(field=field_and_value(), mask=st.integers(1, 255))
def test_flipped_format_byte_is_an_unsupported_format(
    services: Services, field: tuple[str, Any], mask: int
) -> None:
    name, value = field
    vault_id = new_vault(services, {name: value})
    at = slot(services, vault_id, name)

    def flip(fields: dict[str, Any]) -> None:
        current(fields, at)["value"] = flipped(current(fields, at)["value"], 0, mask)

    edit_fields(services, vault_id, flip)

    assert_refused_as(UnsupportedFormat, lambda: services.vaults.profile(vault_id))


@pytest.mark.parametrize(
    "index",
    [pytest.param(i, id=f"key-id-{i}") for i in (1, 8)]
    + [pytest.param(i, id=f"context-tag-{i}") for i in (9, 16)],
)
def test_flipped_header_digest_byte_is_tampering(services: Services, index: int) -> None:
    vault_id = new_vault(services, {"given_name": "Ada"})

    def flip(fields: dict[str, Any]) -> None:
        current(fields, "given_name")["value"] = flipped(
            current(fields, "given_name")["value"], index, 0x01
        )

    edit_fields(services, vault_id, flip)

    with pytest.raises(TamperedCiphertext):
        services.vaults.profile(vault_id)


@EXAMPLES
@given(field=field_and_value(), where=st.floats(0, 1, exclude_max=True), mask=st.integers(1, 255))
def test_flipped_byte_of_an_old_version_is_tampering_in_the_history(
    services: Services, field: tuple[str, Any], where: float, mask: int
) -> None:
    name, value = field
    vault_id = new_vault(services, {name: value})
    services.vaults.clear_fields(vault_id, [name])
    at = slot(services, vault_id, name)

    def flip(fields: dict[str, Any]) -> None:
        first = fields[at]["versions"][0]
        body = sealed_length(first["value"]) - HEADER_BYTES
        first["value"] = flipped(first["value"], HEADER_BYTES + int(where * body), mask)

    edit_fields(services, vault_id, flip)

    assert name not in services.vaults.profile(vault_id)
    assert_refused_as(TamperedCiphertext, lambda: services.vaults.history(vault_id))


# Misplaced values.


@EXAMPLES
@given(values=two_fields())
def test_value_copied_to_another_field_is_misplaced(
    services: Services, values: dict[str, Any]
) -> None:
    source, target = values
    vault_id = new_vault(services, values)
    source_slot, target_slot = slot(services, vault_id, source), slot(services, vault_id, target)

    def copy(fields: dict[str, Any]) -> None:
        current(fields, target_slot)["value"] = current(fields, source_slot)["value"]

    edit_fields(services, vault_id, copy)

    assert_refused_as(MisplacedCiphertext, lambda: services.vaults.profile(vault_id))


@EXAMPLES
@given(field=field_and_value(), later=st.data())
def test_old_version_copied_over_the_current_one_is_misplaced(
    services: Services, clock: FakeClock, field: tuple[str, Any], later: st.DataObject
) -> None:
    name, first = field
    vault_id = new_vault(services, {name: first})
    stored = normal_forms({name: first}, clock)
    strategy = STANDARD_VALUES.get(name, _json_values)
    second = later.draw(strategy.filter(lambda v: normal_forms({name: v}, clock) != stored))
    services.vaults.set_fields(vault_id, {name: second})
    at = slot(services, vault_id, name)

    def roll_back(fields: dict[str, Any]) -> None:
        older, latest = fields[at]["versions"][-2:]
        assert latest["v"] == older["v"] + 1
        latest["value"] = older["value"]

    edit_fields(services, vault_id, roll_back)

    assert_refused_as(MisplacedCiphertext, lambda: services.vaults.profile(vault_id))


@EXAMPLES
@given(names=st.lists(CUSTOM_NAMES, min_size=2, max_size=2, unique=True), data=st.data())
def test_custom_field_records_swapped_between_slots_are_misplaced(
    services: Services, names: list[str], data: st.DataObject
) -> None:
    values = {name: data.draw(_json_values) for name in names}
    vault_id = new_vault(services, values)
    first, second = (slot(services, vault_id, name) for name in names)

    def swap(fields: dict[str, Any]) -> None:
        fields[first], fields[second] = fields[second], fields[first]

    edit_fields(services, vault_id, swap)

    assert_refused_as(MisplacedCiphertext, lambda: services.vaults.profile(vault_id))


# Another vault's value, another KEK.


@EXAMPLES
@given(values=two_fields(), same_field=st.booleans())
def test_value_copied_from_another_vaults_file_is_the_wrong_key(
    services: Services, clock: FakeClock, values: dict[str, Any], same_field: bool
) -> None:
    source, target = values
    if same_field:
        target = source
    vault_a, vault_b = new_vault(services, values), new_vault(services, values)
    sealed = current(fields_on_disk(services, vault_a), slot(services, vault_a, source))["value"]
    target_slot = slot(services, vault_b, target)

    def plant(fields: dict[str, Any]) -> None:
        current(fields, target_slot)["value"] = sealed

    edit_fields(services, vault_b, plant)

    assert_refused_as(WrongKey, lambda: services.vaults.profile(vault_b))
    untouched = services.vaults.profile(vault_a)
    assert {name: untouched[name] for name in values} == normal_forms(values, clock)


@EXAMPLES
@given(other=st.binary(min_size=32, max_size=32).filter(lambda key: key != bytes(range(32))))
def test_data_directory_opened_with_another_kek_in_the_environment_is_the_wrong_key(
    tmp_path_factory: pytest.TempPathFactory, clock: FakeClock, other: bytes
) -> None:
    data_dir = tmp_path_factory.mktemp("kek") / "vrm-data"
    with reopened(env_config(data_dir, KEY_A), clock) as first:
        vault_id = new_vault(first, {"given_name": "Ada"})

    with reopened(env_config(data_dir, base64.b64encode(other).decode()), clock) as wrong:
        assert_refused_as(WrongKey, lambda: wrong.vaults.profile(vault_id))
    with reopened(env_config(data_dir, KEY_A), clock) as right:
        assert right.vaults.profile(vault_id)["given_name"] == "Ada"


def test_replaced_kek_file_is_the_wrong_key(
    services: Services, config: dict[str, Any], clock: FakeClock
) -> None:
    vault_id = new_vault(services, {"given_name": "Ada", "x-shoe-size": 38})
    kek_file = services.data_dir / "keys" / "kek" / "v1.key"
    original = read_key_file(kek_file)
    kek_file.unlink()
    write_key_file(kek_file, bytes(32))

    with reopened(config, clock) as wrong:
        assert_refused_as(WrongKey, lambda: wrong.vaults.profile(vault_id))

    kek_file.unlink()
    write_key_file(kek_file, original)
    with reopened(config, clock) as right:
        assert right.vaults.profile(vault_id)["x-shoe-size"] == 38


def test_file_kek_replaced_by_another_in_the_environment_is_the_wrong_key(
    services: Services, data_dir: Path, clock: FakeClock
) -> None:
    vault_id = new_vault(services, {"given_name": "Ada"})

    with reopened(env_config(data_dir, KEY_A), clock) as wrong:
        assert_refused_as(WrongKey, lambda: wrong.vaults.profile(vault_id))


def test_environment_without_the_wrapping_kek_version_is_an_unknown_version(
    tmp_path: Path, clock: FakeClock
) -> None:
    data_dir = tmp_path / "vrm-data"
    with reopened(env_config(data_dir, f"1:{KEY_A}"), clock) as first:
        vault_id = new_vault(first, {"given_name": "Ada"})

    with (
        reopened(env_config(data_dir, f"2:{KEY_A}"), clock) as missing,
        pytest.raises(UnknownKeyVersion) as caught,
    ):
        missing.vaults.profile(vault_id)
    assert caught.value.version == 1
