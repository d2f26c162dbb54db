"""The vendor registry: what a vendor may register, what it gets back, and what is kept."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock
from vault.clock import isoformat
from vault.errors import (
    InvalidClientMetadata,
    NotFound,
    StorageError,
    ValidationError,
    VendorDisabled,
)
from vault.events import ListSink
from vault.storage.base import Store
from vault.storage.memory import MemoryStore
from vault.storage.tinydb import TinyDBStore
from vault.vendors import (
    AUTH_METHODS,
    GRANT_TYPES,
    NAMES_TABLE,
    Vendor,
    VendorRegistry,
    _name_digest,
    digest_secret,
    name_keys,
)
from vrm.services import Services

ABSENT = object()
"""Marks a metadata member to leave out."""

SHOP: dict[str, Any] = {
    "client_name": "Acme Bikes",
    "redirect_uris": ["https://shop.example/callback", "https://shop.example/again"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "profile:email profile:given_name",
    "vrm_field_purposes": {"email": "Order confirmations", "given_name": "To greet you"},
}

SEGMENTS: dict[str, Any] = {
    "client_name": "Acme Marketing",
    "grant_types": ["client_credentials"],
    "scope": "segments:query offers:send",
}


def shop(**changes: object) -> dict[str, Any]:
    """The shop's metadata with some members changed (or, given ABSENT, left out)."""
    metadata = {**SHOP, **changes}
    return {key: value for key, value in metadata.items() if value is not ABSENT}


def counting_rng() -> Callable[[int], bytes]:
    """Random bytes that differ on every call and are the same in every run."""
    calls = iter(range(1, 1000))

    def rng(size: int) -> bytes:
        return bytes([next(calls)]) * size

    return rng


@pytest.fixture
def registry(services: Services) -> VendorRegistry:
    return services.vendors


def refusal(registry: VendorRegistry, metadata: dict[str, Any]) -> InvalidClientMetadata:
    """Register ``metadata``, expecting a refusal that stores nothing."""
    with pytest.raises(InvalidClientMetadata) as caught:
        registry.register(metadata)
    assert registry.vendors() == []
    return caught.value


def assert_refused(
    registry: VendorRegistry,
    metadata: dict[str, Any],
    member: str,
    words: str,
    code: str = "invalid_client_metadata",
) -> None:
    error = refusal(registry, metadata)
    assert (error.field, error.code) == (member, code)
    assert words in error.rule


# Accepted registrations.


def test_confidential_client_gets_an_id_and_a_secret_once(registry: VendorRegistry) -> None:
    vendor, secret = registry.register(shop())
    assert vendor.client_id.startswith("vnd_")
    assert len(vendor.client_id) == 28
    assert secret is not None
    assert len(secret) == 43
    assert vendor.secret_digest == digest_secret(secret)
    assert not vendor.is_public
    assert vendor.secret_matches(secret)


def test_registered_vendor_is_read_back_unchanged(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(
        shop(client_uri="https://shop.example/", contacts=["a@b.example"])
    )
    assert registry.get(vendor.client_id) == vendor


def test_defaults_are_authorization_code_with_code_and_basic_auth(
    registry: VendorRegistry,
) -> None:
    vendor, _ = registry.register(
        shop(grant_types=ABSENT, response_types=ABSENT, token_endpoint_auth_method=ABSENT)
    )
    assert vendor.grant_types == ("authorization_code",)
    assert vendor.response_types == ("code",)
    assert vendor.token_endpoint_auth_method == "client_secret_basic"


def test_public_client_has_no_secret(registry: VendorRegistry) -> None:
    vendor, secret = registry.register(shop(token_endpoint_auth_method="none"))
    assert secret is None
    assert vendor.is_public
    assert vendor.secret_digest is None
    assert not vendor.secret_matches("")
    assert "client_secret_expires_at" not in vendor.metadata()


def test_client_credentials_vendor_needs_no_redirect_uri(registry: VendorRegistry) -> None:
    vendor, secret = registry.register(SEGMENTS)
    assert secret is not None
    assert vendor.redirect_uris == ()
    assert vendor.response_types == ()
    assert vendor.profile_fields == ()
    again = {**SEGMENTS, "client_name": "Acme Research", "redirect_uris": []}
    assert registry.register(again)[0].redirect_uris == ()


def test_vendor_may_mix_profile_and_vendor_scopes_with_both_grants(
    registry: VendorRegistry,
) -> None:
    vendor, _ = registry.register(
        shop(
            grant_types=["authorization_code", "client_credentials"],
            scope="profile:email segments:query",
            vrm_field_purposes={"email": "Receipts"},
        )
    )
    assert vendor.scopes_for_grant("authorization_code") == ("profile:email",)
    assert vendor.scopes_for_grant("refresh_token") == ("profile:email",)
    assert vendor.scopes_for_grant("client_credentials") == ("segments:query",)
    assert vendor.scopes_for_grant("implicit") == ()


def test_custom_fields_may_be_asked_for(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(
        shop(scope="profile:x-shoe-size", vrm_field_purposes={"x-shoe-size": "Fitting shoes"})
    )
    assert vendor.profile_fields == ("x-shoe-size",)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1:8400/callback",
        "http://[::1]/callback",
        "http://localhost:3000/cb",
        "https://shop.example:8443/cb?from=vault",
    ],
)
def test_http_is_accepted_only_on_loopback(registry: VendorRegistry, uri: str) -> None:
    vendor, _ = registry.register(shop(redirect_uris=[uri]))
    assert vendor.redirect_uris == (uri,)


def test_unknown_metadata_members_are_ignored(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(
        shop(logo_uri="https://shop.example/logo.png", client_secret="my-own-secret", x=7)
    )
    assert "logo_uri" not in vendor.metadata()
    assert "my-own-secret" not in json.dumps(vendor.to_record())


def test_null_optional_members_count_as_absent(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(shop(grant_types=None, client_uri=None, contacts=None))
    assert vendor.grant_types == ("authorization_code",)
    assert vendor.client_uri is None


def test_name_and_purposes_are_trimmed(registry: VendorRegistry) -> None:
    purposes = {"email": "  Receipts ", "given_name": "Greeting\u00a0"}
    vendor, _ = registry.register(shop(client_name="  Acme  ", vrm_field_purposes=purposes))
    assert vendor.client_name == "Acme"
    assert dict(vendor.field_purposes) == {"email": "Receipts", "given_name": "Greeting"}


def test_metadata_is_the_rfc7591_response_without_the_secret(
    registry: VendorRegistry, clock: FakeClock
) -> None:
    vendor, secret = registry.register(
        shop(
            vrm_webhook_uri="https://shop.example/hooks/vrm",
            client_uri="https://shop.example/",
            policy_uri="https://shop.example/privacy",
            contacts=["privacy@shop.example"],
        )
    )
    assert vendor.metadata() == {
        "client_id": vendor.client_id,
        "client_id_issued_at": int(clock.now.timestamp()),
        "client_secret_expires_at": 0,
        "client_name": "Acme Bikes",
        "redirect_uris": SHOP["redirect_uris"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "scope": "profile:email profile:given_name",
        "vrm_field_purposes": SHOP["vrm_field_purposes"],
        "vrm_webhook_uri": "https://shop.example/hooks/vrm",
        "client_uri": "https://shop.example/",
        "policy_uri": "https://shop.example/privacy",
        "contacts": ["privacy@shop.example"],
    }
    assert secret is not None
    assert secret not in json.dumps(vendor.metadata())


def test_metadata_leaves_out_what_was_not_given(registry: VendorRegistry) -> None:
    metadata = registry.register(shop())[0].metadata()
    for member in ("vrm_webhook_uri", "client_uri", "policy_uri", "contacts"):
        assert member not in metadata


def test_ids_and_secrets_come_from_the_given_randomness(clock: FakeClock, events: ListSink) -> None:
    registry = VendorRegistry(MemoryStore(), clock=clock, events=events, rng=counting_rng())
    vendor, secret = registry.register(shop())
    assert vendor.client_id == "vnd_" + "01" * 12
    assert secret == "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"


# The secret.


def test_only_the_secrets_digest_reaches_the_data_directory(
    registry: VendorRegistry, data_dir: Path
) -> None:
    vendor, secret = registry.register(shop())
    assert secret is not None
    stored = b"".join(path.read_bytes() for path in data_dir.rglob("*") if path.is_file())
    assert secret.encode() not in stored
    assert vendor.client_id.encode() in stored
    assert digest_secret(secret).encode() in stored


def test_secret_matches_only_the_exact_secret(registry: VendorRegistry) -> None:
    vendor, secret = registry.register(shop())
    assert secret is not None
    stored = registry.get(vendor.client_id)
    assert stored is not None
    assert stored.secret_matches(secret)
    assert not stored.secret_matches(secret[:-1])
    assert not stored.secret_matches(secret + "A")
    assert not stored.secret_matches("")
    assert not stored.secret_matches("\ud800")


def test_every_registration_gets_its_own_id_and_secret(registry: VendorRegistry) -> None:
    first, first_secret = registry.register(shop())
    second, second_secret = registry.register(shop(client_name="Acme Tours"))
    assert first.client_id != second.client_id
    assert first_secret != second_secret
    assert first_secret is not None
    assert not second.secret_matches(first_secret)


# What the OAuth server and the consent page read.


def test_profile_fields_and_purposes_follow_the_scope(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(shop())
    assert vendor.profile_fields == ("email", "given_name")
    assert vendor.purpose_for("email") == "Order confirmations"
    with pytest.raises(NotFound):
        vendor.purpose_for("phone")


def test_redirect_uris_match_exactly(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(shop())
    assert vendor.allows_redirect_uri("https://shop.example/callback")
    assert not vendor.allows_redirect_uri("https://shop.example/callback/")
    assert not vendor.allows_redirect_uri("https://SHOP.example/callback")
    assert not vendor.allows_redirect_uri("https://shop.example/callback?x=1")


def test_default_redirect_uri_only_when_one_is_registered(registry: VendorRegistry) -> None:
    two, _ = registry.register(shop())
    one, _ = registry.register(
        shop(client_name="Acme Tours", redirect_uris=["https://shop.example/cb"])
    )
    assert two.default_redirect_uri is None
    assert one.default_redirect_uri == "https://shop.example/cb"


def test_redirect_host_names_where_the_customer_returns(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(shop(redirect_uris=["https://shop.example:8443/cb"]))
    assert vendor.redirect_host("https://shop.example:8443/cb") == "shop.example:8443"
    with pytest.raises(ValueError, match="not a registered redirect URI"):
        vendor.redirect_host("https://evil.example/cb")


def test_grant_and_response_types_are_checked_against_registration(
    registry: VendorRegistry,
) -> None:
    vendor, _ = registry.register(shop())
    assert vendor.allows_grant_type("refresh_token")
    assert not vendor.allows_grant_type("client_credentials")
    assert vendor.allows_response_type("code")
    assert not vendor.allows_response_type("token")


# Looking up, disabling, listing.


def test_unknown_and_malformed_client_ids_are_not_found(registry: VendorRegistry) -> None:
    assert registry.get("vnd_" + "0" * 24) is None
    assert registry.get("../../etc/passwd") is None
    assert registry.get("") is None
    with pytest.raises(NotFound):
        registry.require_active("not an id")


def test_disabled_vendor_is_refused_but_still_found(
    registry: VendorRegistry, events: ListSink, clock: FakeClock
) -> None:
    vendor, _ = registry.register(shop())
    assert registry.require_active(vendor.client_id) == vendor
    clock.advance(60)
    disabled = registry.disable(vendor.client_id)
    assert disabled.disabled
    with pytest.raises(VendorDisabled):
        registry.require_active(vendor.client_id)
    assert registry.get(vendor.client_id) == disabled
    event = events.events[-1]
    assert (event.type, event.actor, event.vendor, event.at) == (
        "vendor.disabled",
        "operator",
        vendor.client_id,
        clock.now,
    )


def disable_in_own_process(root: Path, client_id: str) -> None:
    VendorRegistry(TinyDBStore(root), clock=FakeClock(), events=ListSink()).disable(client_id)


def test_vendor_disabled_elsewhere_is_refused_on_the_next_lookup(tmp_path: Path) -> None:
    def registry_on_root() -> VendorRegistry:
        return VendorRegistry(TinyDBStore(tmp_path), clock=FakeClock(), events=ListSink())

    server, other_server = registry_on_root(), registry_on_root()
    first, _ = server.register(shop())
    second, _ = server.register(shop(client_name="Acme Tours"))
    assert server.require_active(first.client_id) == first
    assert server.require_active(second.client_id) == second

    other_server.disable(first.client_id)
    process = multiprocessing.get_context("spawn").Process(
        target=disable_in_own_process, args=(tmp_path, second.client_id)
    )
    process.start()
    process.join(timeout=60)
    assert process.exitcode == 0

    for vendor in (first, second):
        with pytest.raises(VendorDisabled):
            server.require_active(vendor.client_id)


def test_a_vendor_looked_up_again_cannot_be_changed_by_its_caller(
    registry: VendorRegistry,
) -> None:
    vendor, _ = registry.register(shop())
    found = registry.get(vendor.client_id)
    assert found is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.disabled = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        found.field_purposes["email"] = "something else"  # type: ignore[index]

    again = registry.get(vendor.client_id)
    assert again == vendor
    assert again is not None
    assert again.field_purposes["email"] == "Order confirmations"


def test_disabling_twice_changes_nothing_and_is_logged_once(
    registry: VendorRegistry, events: ListSink
) -> None:
    vendor, _ = registry.register(shop())
    first = registry.disable(vendor.client_id)
    assert registry.disable(vendor.client_id) == first
    assert events.types() == ["vendor.registered", "vendor.disabled"]


@pytest.mark.parametrize("client_id", ["vnd_" + "f" * 24, "nonsense id"])
def test_disabling_an_unknown_vendor_is_not_found(registry: VendorRegistry, client_id: str) -> None:
    with pytest.raises(NotFound):
        registry.disable(client_id)


def test_vendors_are_listed_oldest_first(registry: VendorRegistry, clock: FakeClock) -> None:
    names = ["Zed", "Alpha", "Mid"]
    registered = []
    for name in names:
        registered.append(registry.register(shop(client_name=name))[0])
        clock.advance(1)
    assert registry.vendors() == registered


def test_registration_event_names_ids_and_scopes_only(
    registry: VendorRegistry, events: ListSink, clock: FakeClock
) -> None:
    vendor, secret = registry.register(shop(contacts=["privacy@shop.example"]))
    [event] = events.events
    assert (event.type, event.actor, event.vendor, event.at) == (
        "vendor.registered",
        "vendor",
        vendor.client_id,
        clock.now,
    )
    assert event.fields == ("email", "given_name")
    assert event.detail == {"scope": "profile:email profile:given_name"}
    logged = json.dumps(event.to_json())
    for private in [secret, "Acme Bikes", "Order confirmations", "privacy@shop.example"]:
        assert private is not None
        assert private not in logged


def test_record_of_an_unknown_format_is_refused(registry: VendorRegistry) -> None:
    record = registry.register(shop())[0].to_record()
    with pytest.raises(StorageError):
        Vendor.from_record({**record, "format": 2})


# Refusals: client_name.


@pytest.mark.parametrize(
    ("name", "words"),
    [
        (ABSENT, "is required"),
        ("   ", "must not be blank"),
        ("A" * 201, "at most 200 characters"),
        ("Acme\nBikes", "control characters"),
        ("Acme\x00", "control characters"),
        ("Acme \u202eekiB", "bidirectional controls"),
        ("Acme\u200f Bikes", "invisible formatting"),
        ("Ex\u200bample Shop", "invisible formatting"),
        ("Exam\u00adple Shop", "invisible formatting"),
        ("Shop\U000e0041", "invisible formatting"),
        (["Acme"], "must be a string"),
        (42, "must be a string"),
    ],
    ids=[
        "missing",
        "blank",
        "too-long",
        "newline",
        "nul",
        "bidi-override",
        "right-to-left-mark",
        "zero-width-space",
        "soft-hyphen",
        "tag-character",
        "list",
        "number",
    ],
)
def test_bad_client_name_is_refused(registry: VendorRegistry, name: object, words: str) -> None:
    assert_refused(registry, shop(client_name=name), "client_name", words)


def test_a_name_that_needs_a_zero_width_non_joiner_is_accepted(registry: VendorRegistry) -> None:
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # Needs the ZWNJ.
    assert registry.register(shop(client_name=persian))[0].client_name == persian


FULLWIDTH = "\uff21\uff43\uff4d\uff45 \uff22\uff49\uff4b\uff45\uff53"


@pytest.mark.parametrize(
    "name",
    [
        "Acme Bikes",
        "ACME BIKES",
        "  acme   bikes ",
        FULLWIDTH,
        "acme\u00a0bikes",
        "Acme\u200d Bikes",  # zero-width joiner
        "Acme Bikes\u200c",  # zero-width non-joiner
        "Acme B\u034fikes",  # combining grapheme joiner
        "Acme Bikes\ufe0f",  # variation selector
        "Acme\u2800Bikes",  # braille blank
        "Acme Bikes\u3164",  # Hangul filler
        "Acme Bikes\u17b4",  # Khmer inherent vowel, shown as nothing
        "Acme Bi\u0301kes",  # a combining accent
        "Acme Bikes.",
        "Acme-Bikes",
        "\U0001d5a0cme Bikes",  # a mathematical sans-serif capital A
        "Acme Bikes\u2065",  # unassigned, shown as nothing
        "Acme Bikes\U000e0080",  # a tag character
        "\u0410cme Bikes",  # a Cyrillic capital A
        "\u0430cme bikes",  # a Cyrillic small a
        "Acme \u0412ikes",  # a Cyrillic capital Ve, which looks like a B
        "Acrne Bikes",  # r and n, which together look like an m
        "\u0391\u0421\u039c\u0395 Bikes",  # Greek and Cyrillic capitals
    ],
)
def test_a_name_another_vendor_registered_is_refused(registry: VendorRegistry, name: str) -> None:
    first, _ = registry.register(shop())
    registry.disable(first.client_id)  # A disabled vendor keeps its name too.
    with pytest.raises(InvalidClientMetadata) as caught:
        registry.register(shop(client_name=name))
    assert caught.value.field == "client_name"
    assert "another vendor" in caught.value.rule
    assert [vendor.client_id for vendor in registry.vendors()] == [first.client_id]
    assert registry.register(shop(client_name="Acme Bikes 2"))[0].client_name == "Acme Bikes 2"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("PayPal", "PayPaI"),  # a capital I for the l
        ("Paypal", "paypa1"),  # a one for the l
        ("Google", "G00GLE"),  # zeros for the Os
        ("HELLO", "\u0397ELLO"),  # a Greek capital Eta for the H
        ("\u0391\u03b8\u03b7\u03bd\u03ac", "\u0391\u0398\u0397\u039d\u0391"),  # Greek, in capitals
        ("\u041c\u0438\u0440", "\u041c\u0418\u0420"),  # Cyrillic, in capitals
        # In capitals, with a Greek capital Iota for each I and a Cyrillic capital O.
        ("Bitcoin Bank", "\u0392\u0399\u03a4\u0421\u041e\u0399\u039d BANK"),
        ("Acme Bikes", "\u0391\u0421\u039c\u0395 B\u0399KES"),
        ("GOOGLE", "GoogIe"),  # a capital I among small letters, for the l
        ("LIDL", "LidI"),
        ("Dell", "DeII"),
        ("Microsoft", "M1CROSOFT"),  # a one among capitals, for the I
        ("Microsoft", "MlCROSOFT"),  # a small l among capitals
        ("Microsoft", "\uff2d\uff11\uff23\uff32\uff2f\uff33\uff2f\uff26\uff34"),  # fullwidth
        # Lisu letters, which have no case but look like Latin capitals.
        ("MICROSOFT", "\ua4df\ua4f2\ua4da\ua4e3\ua4f3\ua4e2\ua4f3\ua4dd\ua4d4"),
        ("Gmail", "Gma\u13a5I"),  # a Cherokee capital that looks like a small i
        ("Dell", "De\u00cdI"),  # an accent on one capital I of two
    ],
)
def test_a_name_that_looks_like_another_vendors_is_refused(
    registry: VendorRegistry, first: str, second: str
) -> None:
    registry.register(shop(client_name=first))
    with pytest.raises(InvalidClientMetadata, match="looks like, the name of another vendor"):
        registry.register(shop(client_name=second))


@pytest.mark.parametrize(
    ("first", "second"),
    [("IG", "LG"), ("KIA", "KLA"), ("AIG", "ALG"), ("ITV", "LTV"), ("Shell", "SHEIL")],
)
def test_names_in_capitals_with_an_i_and_with_an_l_are_told_apart(
    registry: VendorRegistry, first: str, second: str
) -> None:
    # A capital I looks like an l among small letters, not like an L among capitals.
    registry.register(shop(client_name=first))
    assert registry.register(shop(client_name=second))[0].client_name == second


def test_a_refused_look_alike_takes_no_name_with_it(registry: VendorRegistry) -> None:
    registry.register(shop(client_name="HELLO"))
    # Read case folded first, a Greek capital Eta is an eta, which looks like an n: that
    # name was free, and is free still once the name as seen (HELLO) is refused.
    with pytest.raises(InvalidClientMetadata):
        registry.register(shop(client_name="\u0397ELLO"))
    assert registry.register(shop(client_name="nello"))[0].client_name == "nello"


COPYCAT = "\u0410cme Bikes"  # With a Cyrillic capital A.


def forget_names(store: Store) -> None:
    for key, _ in list(store.scan(NAMES_TABLE)):
        store.update(NAMES_TABLE, key, lambda _: None)


def names_of_the_version_before(store: Store, held: dict[str, str] | None = None) -> None:
    """The name records as the version before left them: its mark, and a record for each
    name as read (``held``: to the client id holding it), named by its SHA-256."""
    forget_names(store)
    for name, client_id in (held or {}).items():
        digest = hashlib.sha256(name.encode()).hexdigest()
        store.insert(NAMES_TABLE, digest, {"client_id": client_id, "at": None})
    store.insert(NAMES_TABLE, "recorded", {"recorded": True})


@pytest.mark.parametrize("copycat_id", ["vnd_" + "0" * 24, "vnd_" + "f" * 24])
def test_after_an_upgrade_the_vendor_registered_first_keeps_a_name_two_shared(
    registry: VendorRegistry, services: Services, clock: FakeClock, copycat_id: str
) -> None:
    # Before look-alikes were compared, a copycat could register beside the real vendor.
    real, _ = registry.register(shop())
    clock.advance(60)
    stand_in, _ = registry.register(shop(client_name="Stand-in"))
    store = services.store
    record = {**store.get("vendors", stand_in.client_id), "client_name": COPYCAT}
    store.delete("vendors", stand_in.client_id)
    store.insert("vendors", copycat_id, {**record, "client_id": copycat_id})
    names_of_the_version_before(store)

    registry.disable(copycat_id)
    assert registry.release_name(copycat_id) == "none"  # The shared name is the real one's.
    with pytest.raises(InvalidClientMetadata, match="another vendor"):
        registry.register(shop())
    with pytest.raises(InvalidClientMetadata, match="another vendor"):
        registry.register(shop(client_name=COPYCAT))
    assert registry.require_active(real.client_id).client_name == "Acme Bikes"


def copycat_holding_the_name(registry: VendorRegistry, clock: FakeClock) -> tuple[str, str]:
    """The real vendor, and a later copycat (COPYCAT) holding the name records they share,
    as a version that told the two names apart could have left them; their client ids."""
    real, _ = registry.register(shop())
    clock.advance(60)
    copycat, _ = registry.register(shop(client_name="Stand-in"))
    store = registry._store
    store.update("vendors", copycat.client_id, lambda record: {**record, "client_name": COPYCAT})
    for key in name_keys(COPYCAT):
        store.update(
            NAMES_TABLE, _name_digest(key), lambda _: {"client_id": copycat.client_id, "at": None}
        )
    return real.client_id, copycat.client_id


def test_a_released_name_stays_with_an_enabled_vendor_that_shares_it(
    registry: VendorRegistry, clock: FakeClock
) -> None:
    real_id, copycat_id = copycat_holding_the_name(registry, clock)
    registry.disable(copycat_id)
    assert registry.release_name(copycat_id) == "kept"
    with pytest.raises(InvalidClientMetadata, match="another vendor"):
        registry.register(shop())
    assert registry.require_active(real_id).client_name == "Acme Bikes"


@pytest.mark.parametrize("released", [True, False])
def test_a_name_released_before_an_upgrade_stays_free(
    registry: VendorRegistry, services: Services, released: bool
) -> None:
    squatter, _ = registry.register(shop())
    registry.disable(squatter.client_id)
    store = services.store
    names_of_the_version_before(store, {} if released else {"acme bikes": squatter.client_id})
    if released:
        assert registry.register(shop())[0].client_id != squatter.client_id
    else:
        with pytest.raises(InvalidClientMetadata, match="another vendor"):
            registry.register(shop())


def test_look_alikes_of_names_recorded_by_an_earlier_version_are_refused(
    registry: VendorRegistry, services: Services
) -> None:
    registry.register(shop())
    store = services.store
    names_of_the_version_before(store, {"acme bikes": registry.vendors()[0].client_id})
    with pytest.raises(InvalidClientMetadata, match="another vendor"):
        registry.register(shop(client_name="\u0410cme Bikes"))


@pytest.mark.parametrize(("first", "second"), [("ガス", "カス"), ("कुल", "कल"), ("กิน", "กน")])
def test_marks_that_make_another_word_keep_names_apart(
    registry: VendorRegistry, first: str, second: str
) -> None:
    registry.register(shop(client_name=first))
    assert registry.register(shop(client_name=second))[0].client_name == second


@pytest.mark.parametrize(
    "name",
    [
        "...",
        "\u3164",
        "\u2800",
        "\u2014",
        "\u01c3\u01c3",
    ],  # two Latin letters retroflex click, like "!!"
)
def test_a_name_that_reads_as_nothing_is_refused(registry: VendorRegistry, name: str) -> None:
    assert_refused(registry, shop(client_name=name), "client_name", "a letter or a digit")


def test_a_name_is_taken_over_on_the_memory_store_too(clock: FakeClock) -> None:
    registry = VendorRegistry(MemoryStore(), clock=clock, events=ListSink())
    registry.register(shop(client_name="Other"))
    record = {"client_id": "vnd_" + "0" * 24, "at": isoformat(clock())}
    for key in name_keys("Acme Bikes"):
        registry._store.insert(NAMES_TABLE, _name_digest(key), record)
    clock.advance(61)
    assert registry.register(shop())[0].client_name == "Acme Bikes"


@pytest.mark.parametrize("stored", [False, True], ids=["before", "after storing"])
def test_a_registration_that_fails_gives_its_name_back_unless_its_vendor_was_stored(
    registry: VendorRegistry, services: Services, monkeypatch: pytest.MonkeyPatch, stored: bool
) -> None:
    store = services.store
    real_insert = store.insert

    def failing(table: str, key: str, record: dict[str, Any]) -> None:
        if table != "vendors" or stored:
            real_insert(table, key, record)
        if table == "vendors":
            raise StorageError("no space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(store, "insert", failing)
        with pytest.raises(StorageError):
            registry.register(shop())
    if stored:  # The vendor is there after all: its name stays its own.
        with pytest.raises(InvalidClientMetadata, match="another vendor"):
            registry.register(shop())
    else:
        assert registry.register(shop())[0].client_name == "Acme Bikes"


def test_a_name_whose_vendor_was_never_stored_is_taken_over_after_a_minute(
    registry: VendorRegistry, services: Services, clock: FakeClock
) -> None:
    registry.register(shop(client_name="Other"))  # Names are recorded from here on.
    # A registration killed between holding the name and storing its vendor.
    for key in name_keys("Acme Bikes"):
        services.store.insert(
            NAMES_TABLE,
            _name_digest(key),
            {"client_id": "vnd_" + "0" * 24, "at": isoformat(clock())},
        )
    with pytest.raises(InvalidClientMetadata, match="another vendor"):
        registry.register(shop())
    clock.advance(61)
    assert registry.register(shop())[0].client_name == "Acme Bikes"


def test_a_disabled_vendors_name_can_be_released_for_another(
    registry: VendorRegistry,
) -> None:
    squatter, _ = registry.register(shop())
    with pytest.raises(ValidationError, match="disable the vendor"):
        registry.release_name(squatter.client_id)
    registry.disable(squatter.client_id)
    assert registry.release_name(squatter.client_id) == "released"
    assert registry.release_name(squatter.client_id) == "none"
    assert registry.register(shop())[0].client_id != squatter.client_id


def test_a_name_taken_before_names_were_recorded_is_still_refused(
    registry: VendorRegistry, services: Services
) -> None:
    registry.register(shop())
    store = services.store
    forget_names(store)  # As a store from before the table.
    with pytest.raises(InvalidClientMetadata, match="another vendor"):
        registry.register(shop(client_name="acme bikes"))


def test_client_name_of_200_characters_is_accepted(registry: VendorRegistry) -> None:
    assert registry.register(shop(client_name="A" * 200))[0].client_name == "A" * 200


# Refusals: grant and response types, auth method.


@pytest.mark.parametrize(
    ("grants", "words"),
    [
        ("authorization_code", "must be a list of strings"),
        (["implicit"], "is not supported"),
        (["password"], "is not supported"),
        (["authorization_code", "authorization_code"], "must not repeat"),
        ([], "at least one grant type"),
        (["authorization_code", 3], "must be a list of strings"),
    ],
    ids=["string", "implicit", "password", "duplicate", "empty", "number"],
)
def test_bad_grant_types_are_refused(registry: VendorRegistry, grants: object, words: str) -> None:
    assert_refused(registry, shop(grant_types=grants), "grant_types", words)


def test_refresh_token_without_authorization_code_is_refused(registry: VendorRegistry) -> None:
    metadata = {**SEGMENTS, "grant_types": ["client_credentials", "refresh_token"]}
    assert_refused(registry, metadata, "grant_types", "only issued with authorization_code")


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        (shop(response_types=["token"]), 'only "code"'),
        (shop(response_types=["code", "token"]), 'only "code"'),
        (shop(response_types=[]), "required with the authorization_code grant"),
        ({**SEGMENTS, "response_types": ["code"]}, "needs the authorization_code grant"),
        (shop(response_types="code"), "must be a list of strings"),
    ],
    ids=["token", "code-and-token", "none-with-code-grant", "code-without-code-grant", "string"],
)
def test_response_types_other_than_code_for_the_code_grant_are_refused(
    registry: VendorRegistry, metadata: dict[str, Any], words: str
) -> None:
    assert_refused(registry, metadata, "response_types", words)


@pytest.mark.parametrize("method", ["private_key_jwt", "", 1, ["none"]])
def test_unknown_auth_method_is_refused(registry: VendorRegistry, method: object) -> None:
    metadata = shop(token_endpoint_auth_method=method)
    assert_refused(registry, metadata, "token_endpoint_auth_method", "must be one of")


def test_public_client_with_client_credentials_is_refused(registry: VendorRegistry) -> None:
    metadata = {**SEGMENTS, "token_endpoint_auth_method": "none"}
    assert_refused(registry, metadata, "token_endpoint_auth_method", "needs a secret")


def test_client_secret_post_is_accepted(registry: VendorRegistry) -> None:
    vendor, secret = registry.register(shop(token_endpoint_auth_method="client_secret_post"))
    assert vendor.token_endpoint_auth_method == "client_secret_post"
    assert secret is not None


# Refusals: redirect URIs.


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("http://shop.example/callback", "must use https"),
        ("http://192.168.1.10/callback", "must use https"),
        ("http://127.0.0.2/callback", "must use https"),
        ("ftp://shop.example/callback", "must use https"),
        ("com.example.app:/callback", "absolute URI with a host"),
        ("https://shop.example/callback#done", "fragment"),
        ("https://shop.example/callback#", "fragment"),
        ("https://user:pw@shop.example/callback", "user name or password"),
        ("https://user@shop.example/callback", "user name or password"),
        ("/callback", "absolute URI with a host"),
        ("https:///callback", "absolute URI with a host"),
        ("https://shop.example:99999/cb", "not a valid URI"),
        ("https://[::1/cb", "not a valid URI"),
        ("https://shop.example/" + "a" * 2000, "at most 2000 characters"),
        ("https://shop.example/call back", "ASCII"),
        ("https://shop.example\\@evil.example/", "ASCII"),
        ("https://bücher.example/", "ASCII"),
        ("https://shop.example,frame-ancestors;sandbox/cb", "letters, digits, hyphens"),
        ("https://shop_example.test/cb", "letters, digits, hyphens"),
        ("https://shop.example$/cb", "letters, digits, hyphens"),
        ("", "ASCII"),
        (7, "must be a list of strings"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_bad_redirect_uri_is_refused(registry: VendorRegistry, uri: object, words: str) -> None:
    metadata = shop(redirect_uris=["https://shop.example/ok", uri])
    assert_refused(registry, metadata, "redirect_uris", words, "invalid_redirect_uri")


@pytest.mark.parametrize(
    "uri",
    ["https://shop.example/cb", "https://shop.example.:8443/cb", "http://[::1]:8080/cb"],
)
def test_hosts_of_names_ports_and_ipv6_literals_are_accepted(
    registry: VendorRegistry, uri: str
) -> None:
    assert registry.register(shop(redirect_uris=[uri]))[0].redirect_uris == (uri,)


def test_redirect_uri_of_2000_characters_is_accepted(registry: VendorRegistry) -> None:
    uri = "https://shop.example/" + "a" * (2000 - len("https://shop.example/"))
    assert registry.register(shop(redirect_uris=[uri]))[0].redirect_uris == (uri,)


@pytest.mark.parametrize(
    ("uris", "words"),
    [
        (ABSENT, "at least one is required"),
        ([], "at least one is required"),
        ("https://shop.example/callback", "must be a list of strings"),
        ([f"https://shop.example/{n}" for n in range(11)], "at most 10"),
        (["https://shop.example/cb", "https://shop.example/cb"], "must not repeat"),
    ],
    ids=["missing", "empty", "string", "eleven", "duplicate"],
)
def test_code_grant_needs_a_short_list_of_distinct_redirect_uris(
    registry: VendorRegistry, uris: object, words: str
) -> None:
    metadata = shop(redirect_uris=uris)
    assert_refused(registry, metadata, "redirect_uris", words, "invalid_redirect_uri")


def test_redirect_uris_without_the_code_grant_are_refused(registry: VendorRegistry) -> None:
    metadata = {**SEGMENTS, "redirect_uris": ["https://shop.example/cb"]}
    assert_refused(registry, metadata, "redirect_uris", "only used with", "invalid_redirect_uri")


# Refusals: scope.


@pytest.mark.parametrize(
    ("scope", "words"),
    [
        (ABSENT, "is required"),
        ("", "at least one scope"),
        ("   ", "at least one scope"),
        (["profile:email"], "must be a string"),
        ("profile:email profile:email", "must not repeat"),
        ("profile:email openid", '"openid" is unknown'),
        ("profile:favourite_colour", "names no known profile field"),
        ("profile:x-Shoe", "names no known profile field"),
        ("profile:", "names no known profile field"),
        ("profile:email\tprofile:given_name", "printable ASCII"),
        ("profile:émail", "printable ASCII"),
        ('profile:"email"', "printable ASCII"),
        ("profile:email segments:query", "needs client_credentials"),
        (" ".join(f"profile:x-f{n}" for n in range(51)), "at most 50"),
    ],
    ids=[
        "missing",
        "empty",
        "blank",
        "list",
        "duplicate",
        "unknown",
        "unknown-field",
        "bad-custom-field",
        "no-field",
        "tab",
        "non-ascii",
        "quote",
        "vendor-scope-without-client-credentials",
        "too-many",
    ],
)
def test_bad_scope_is_refused(registry: VendorRegistry, scope: object, words: str) -> None:
    assert_refused(registry, shop(scope=scope), "scope", words)


def test_profile_scope_without_the_code_grant_is_refused(registry: VendorRegistry) -> None:
    metadata = {**SEGMENTS, "scope": "segments:query profile:email"}
    assert_refused(registry, metadata, "scope", "needs authorization_code")


def test_code_grant_without_a_profile_scope_is_refused(registry: VendorRegistry) -> None:
    metadata = shop(
        grant_types=["authorization_code", "client_credentials"],
        scope="segments:query",
        vrm_field_purposes=ABSENT,
    )
    assert_refused(registry, metadata, "scope", "at least one profile:<field>")


def test_client_credentials_without_a_vendor_scope_is_refused(registry: VendorRegistry) -> None:
    metadata = shop(grant_types=["authorization_code", "client_credentials"])
    assert_refused(registry, metadata, "scope", "client_credentials needs at least one of")


def test_extra_spaces_between_scopes_are_tolerated(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(shop(scope="  profile:email   profile:given_name "))
    assert vendor.scopes == ("profile:email", "profile:given_name")


# Refusals: purposes.


def test_profile_scope_without_a_purpose_is_refused(registry: VendorRegistry) -> None:
    metadata = shop(vrm_field_purposes={"email": "Order confirmations"})
    assert_refused(registry, metadata, "vrm_field_purposes", "given_name needs a purpose")


def test_missing_purposes_object_is_refused(registry: VendorRegistry) -> None:
    metadata = shop(vrm_field_purposes=ABSENT)
    assert_refused(registry, metadata, "vrm_field_purposes", "email needs a purpose")


def test_purpose_for_a_field_not_in_scope_is_refused(registry: VendorRegistry) -> None:
    purposes = {**SHOP["vrm_field_purposes"], "phone": "Calling you at dinner"}
    metadata = shop(vrm_field_purposes=purposes)
    assert_refused(registry, metadata, "vrm_field_purposes", '"phone" has a purpose')


@pytest.mark.parametrize(
    ("purpose", "words"),
    [
        ("  ", "the purpose for email must not be blank"),
        ("", "the purpose for email must not be blank"),
        ("R" * 501, "the purpose for email must be at most 500"),
        ("Receipts\r\nand more", "the purpose for email must not contain control"),
        (None, "the purpose for email must be a string"),
        (["Receipts"], "the purpose for email must be a string"),
    ],
    ids=["blank", "empty", "too-long", "newline", "null", "list"],
)
def test_bad_purpose_is_refused(registry: VendorRegistry, purpose: object, words: str) -> None:
    purposes = {**SHOP["vrm_field_purposes"], "email": purpose}
    assert_refused(registry, shop(vrm_field_purposes=purposes), "vrm_field_purposes", words)


@pytest.mark.parametrize("purposes", [["email"], "Receipts", 3])
def test_purposes_that_are_not_an_object_are_refused(
    registry: VendorRegistry, purposes: object
) -> None:
    metadata = shop(vrm_field_purposes=purposes)
    assert_refused(registry, metadata, "vrm_field_purposes", "must be a JSON object")


# Refusals: other URIs and contacts.


@pytest.mark.parametrize("member", ["vrm_webhook_uri", "client_uri", "policy_uri"])
@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("http://shop.example/hook", "must use https"),
        ("https://shop.example/hook#x", "fragment"),
        ("https://me@shop.example/", "user name or password"),
        (["https://shop.example/"], "must be a string"),
    ],
    ids=["http", "fragment", "userinfo", "list"],
)
def test_bad_vendor_uris_are_refused(
    registry: VendorRegistry, member: str, uri: object, words: str
) -> None:
    assert_refused(registry, shop(**{member: uri}), member, words)


def test_webhook_on_loopback_http_is_accepted(registry: VendorRegistry) -> None:
    vendor, _ = registry.register(shop(vrm_webhook_uri="http://127.0.0.1:9000/hook"))
    assert vendor.webhook_uri == "http://127.0.0.1:9000/hook"


@pytest.mark.parametrize(
    ("contacts", "words"),
    [
        ("privacy@shop.example", "must be a list of strings"),
        ([f"p{n}@shop.example" for n in range(6)], "at most 5"),
        (["privacy"], "is not an email address"),
        (["privacy@localhost"], "is not an email address"),
        (["a@b@shop.example"], "is not an email address"),
        ([" privacy@shop.example"], "is not an email address"),
        (["privacy@shop.example\n"], "is not an email address"),
        (["p@shop.example", "p@shop.example"], "must not repeat"),
        (["p\x00@shop.example"], "control characters"),
        ([""], "must not be blank"),
    ],
    ids=[
        "string",
        "six",
        "no-at",
        "no-dot",
        "two-ats",
        "space",
        "newline",
        "duplicate",
        "nul",
        "empty",
    ],
)
def test_bad_contacts_are_refused(registry: VendorRegistry, contacts: object, words: str) -> None:
    assert_refused(registry, shop(contacts=contacts), "contacts", words)


@pytest.mark.parametrize("metadata", [[], "client_name=Acme", None, 3, {1: "one"}])
def test_metadata_that_is_not_an_object_is_refused(registry: VendorRegistry, metadata: Any) -> None:
    assert_refused(registry, metadata, "metadata", "must be a JSON object")


# Any JSON at all.

MEMBERS = (
    "client_name",
    "grant_types",
    "response_types",
    "token_endpoint_auth_method",
    "redirect_uris",
    "scope",
    "vrm_field_purposes",
    "vrm_webhook_uri",
    "client_uri",
    "policy_uri",
    "contacts",
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
uri_like = st.sampled_from(
    [
        "https://shop.example/cb",
        "http://localhost:8080/cb",
        "http://shop.example/cb",
        "https://u@shop.example/",
        "https://shop.example/#x",
        "https://[::1",
        "https://shop.example:99999/",
        "/relative",
    ]
) | st.text(max_size=30)
field_names = st.sampled_from(["email", "given_name", "x-shoe-size", "X-bad", "colour", ""])
plausible: dict[str, st.SearchStrategy[Any]] = {
    "client_name": st.text(max_size=210),
    "grant_types": st.lists(st.sampled_from([*GRANT_TYPES, "implicit"]), max_size=4),
    "response_types": st.lists(st.sampled_from(["code", "token"]), max_size=2),
    "token_endpoint_auth_method": st.sampled_from([*AUTH_METHODS, "private_key_jwt"]),
    "redirect_uris": st.lists(uri_like, max_size=3),
    "scope": st.lists(
        st.sampled_from(["segments:query", "offers:send", "openid"])
        | field_names.map("profile:{}".format),
        max_size=4,
    ).map(" ".join)
    | st.text(max_size=30),
    "vrm_field_purposes": st.dictionaries(field_names, st.text(max_size=30), max_size=3),
    "vrm_webhook_uri": uri_like,
    "client_uri": uri_like,
    "policy_uri": uri_like,
    "contacts": st.lists(st.sampled_from(["a@b.example", "nope", ""]) | st.text(), max_size=6),
}
near_valid = st.fixed_dictionaries(
    {}, optional={member: plausible[member] | json_values for member in MEMBERS}
).map(lambda changes: {**SHOP, **changes})


def fresh_registry() -> VendorRegistry:
    """An empty registry: Hypothesis runs one test many times, each needs its own."""
    return VendorRegistry(MemoryStore(), clock=FakeClock(), events=ListSink())


def register_or_refuse(registry: VendorRegistry, metadata: Any) -> None:
    """Registration either stores a vendor that reads back equal, or refuses cleanly."""
    try:
        vendor, _ = registry.register(metadata)
    except InvalidClientMetadata as error:
        assert_clean_refusal(registry, error)
        return
    assert registry.get(vendor.client_id) == vendor
    json.dumps(vendor.metadata())


def assert_clean_refusal(registry: VendorRegistry, error: InvalidClientMetadata) -> None:
    assert error.field in {*MEMBERS, "metadata"}
    assert error.code in {"invalid_client_metadata", "invalid_redirect_uri"}
    assert registry.vendors() == []


@settings(max_examples=300)
@given(metadata=json_values)
def test_any_json_value_is_registered_or_refused_cleanly(metadata: Any) -> None:
    register_or_refuse(fresh_registry(), metadata)


@settings(max_examples=300)
@given(metadata=st.fixed_dictionaries({}, optional=dict.fromkeys(MEMBERS, json_values)))
def test_any_json_in_known_members_is_registered_or_refused_cleanly(
    metadata: dict[str, Any],
) -> None:
    register_or_refuse(fresh_registry(), metadata)


@settings(max_examples=500)
@given(metadata=near_valid)
def test_near_valid_metadata_is_registered_or_refused_cleanly(metadata: dict[str, Any]) -> None:
    register_or_refuse(fresh_registry(), metadata)


def test_purposes_too_long_in_all_are_refused_so_receipts_stay_signable(
    services: Services,
) -> None:
    fields = [f"x-field-{i}" for i in range(40)]
    metadata = {
        "client_name": "Verbose Shop",
        "redirect_uris": ["https://verbose.example/cb"],
        "scope": " ".join(f"profile:{f}" for f in fields),
        "vrm_field_purposes": dict.fromkeys(fields, "é" * 499),
    }
    with pytest.raises(InvalidClientMetadata, match="bytes in all"):
        services.vendors.register(metadata)
