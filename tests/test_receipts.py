"""Consent receipts: Kantara CR v1.1 claims, signed as an Ed25519 JWS both sides can check."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws

from keys.signing import SigningKey
from vault.errors import VaultError
from vault.receipts import (
    JWS_TYPE,
    MAX_PAYLOAD_BYTES,
    RECEIPT_VERSION,
    InvalidReceipt,
    ReceiptFacts,
    ReceiptPurpose,
    canonical_json,
    issue_receipt,
    receipt_claims,
    sign_receipt,
    verify_receipt,
)

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PSEUDONYM = "pw_7Q2mX9c1VbK4tR8sLz0yNa"
CUSTOMER_EMAIL = "ada@example.org"
CUSTOMER_NAME = "Ada Lovelace"

# Members the Kantara CR v1.1 specification marks MUST, with their JSON types.
KANTARA_REQUIRED: dict[str, type] = {
    "version": str,
    "jurisdiction": str,
    "consentTimestamp": int,
    "collectionMethod": str,
    "consentReceiptID": str,
    "piiPrincipalId": str,
    "piiControllers": list,
    "policyUrl": str,
    "services": list,
    "sensitive": bool,
    "spiCat": list,
}
CONTROLLER_REQUIRED: dict[str, type] = {
    "piiController": str,
    "contact": str,
    "address": dict,
    "email": str,
    "phone": str,
}
SERVICE_REQUIRED: dict[str, type] = {"service": str, "purposes": list}
PURPOSE_REQUIRED: dict[str, type] = {
    "purpose": str,
    "purposeCategory": list,
    "consentType": str,
    "piiCategory": list,
    "termination": str,
    "thirdPartyDisclosure": bool,
}


def new_signing_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


@pytest.fixture(scope="module")
def signing() -> SigningKey:
    return new_signing_key()


def make_facts(**changes: Any) -> ReceiptFacts:
    facts = ReceiptFacts(
        receipt_id=str(uuid.uuid4()),
        event="given",
        issued_at=NOW,
        issuer="https://vault.example",
        principal=PSEUDONYM,
        grant_id="grant-1",
        vendor_id="vendor-1",
        vendor_name="Camera Shop",
        vendor_url="https://camera.example",
        vendor_contact="privacy@camera.example",
        policy_url="https://camera.example/privacy",
        purposes=(
            ReceiptPurpose("email", "send your order confirmation"),
            ReceiptPurpose("postal_address", "deliver your order"),
        ),
        withdrawn=(),
        granted_at=NOW,
        expires_at=NOW + timedelta(days=90),
        terms=("sd-base:deliver-service-only",),
        collection_method="OAuth 2.0 consent page",
        jurisdiction="EU",
    )
    return dataclasses.replace(facts, **changes)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(unb64url(header)), json.loads(unb64url(payload)), signature


def encode_header(header: object) -> str:
    return b64url(json.dumps(header).encode())


ENDED: dict[str, Any] = {"purposes": (), "withdrawn": ("email", "postal_address")}
EVENT_FACTS: dict[str, dict[str, Any]] = {
    "given": {},
    "extended": {"purposes": (*make_facts().purposes, ReceiptPurpose("phone", "call if late"))},
    "narrowed": {"purposes": make_facts().purposes[:1], "withdrawn": ("postal_address",)},
    "revoked": ENDED,
    "expired": ENDED,
}


# Signing and verifying.


def test_receipt_verifies_with_published_jwks(signing: SigningKey) -> None:
    facts = make_facts()
    token = issue_receipt(facts, signing)
    assert verify_receipt(token, signing.jwks()) == receipt_claims(facts)


def test_header_names_alg_kid_and_receipt_type(signing: SigningKey) -> None:
    header, _, _ = segments(issue_receipt(make_facts(), signing))
    assert header == {"alg": "Ed25519", "kid": signing.kid, "typ": JWS_TYPE}


def test_payload_is_canonical_json(signing: SigningKey) -> None:
    claims = receipt_claims(make_facts(vendor_name="Kamera Köln"))
    payload = unb64url(sign_receipt(claims, signing).split(".")[1])
    expected = json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert payload == expected.encode("utf-8") == canonical_json(claims)


def test_invalid_receipt_is_a_vault_error() -> None:
    assert issubclass(InvalidReceipt, VaultError)


@pytest.mark.parametrize("event", sorted(EVENT_FACTS))
def test_every_event_kind_issues_a_verifiable_receipt(signing: SigningKey, event: str) -> None:
    facts = make_facts(event=event, issued_at=NOW + timedelta(days=3), **EVENT_FACTS[event])
    claims = verify_receipt(issue_receipt(facts, signing), signing.jwks())
    assert claims["vrm"]["event"] == event
    assert claims["consentTimestamp"] == claims["iat"] == int(facts.issued_at.timestamp())
    fields = [p["piiCategory"] for p in claims["services"][0]["purposes"]]
    assert fields == [[p.field] for p in facts.purposes]
    assert claims["vrm"]["withdrawn_fields"] == list(facts.withdrawn)


def test_revoked_receipt_lists_no_purposes_in_force(signing: SigningKey) -> None:
    claims = receipt_claims(make_facts(event="revoked", **ENDED))
    assert claims["services"] == [{"service": "Camera Shop", "purposes": []}]
    assert claims["vrm"]["withdrawn_fields"] == ["email", "postal_address"]


# The Kantara members.


def assert_members(obj: dict[str, Any], required: dict[str, type]) -> None:
    for name, kind in required.items():
        assert name in obj, name
        assert type(obj[name]) is kind, name


def test_kantara_required_members_are_present_with_their_types() -> None:
    claims = receipt_claims(make_facts())
    assert_members(claims, KANTARA_REQUIRED)
    for controller in claims["piiControllers"]:
        assert_members(controller, CONTROLLER_REQUIRED)
    for service in claims["services"]:
        assert_members(service, SERVICE_REQUIRED)
        for purpose in service["purposes"]:
            assert_members(purpose, PURPOSE_REQUIRED)
            assert all(isinstance(c, str) for c in purpose["piiCategory"])
    assert claims["version"] == RECEIPT_VERSION == "KI-CR-v1.1.0"


def test_kantara_members_carry_the_grant_facts() -> None:
    facts = make_facts()
    claims = receipt_claims(facts)
    assert claims["consentReceiptID"] == claims["jti"] == facts.receipt_id
    assert claims["consentTimestamp"] == int(NOW.timestamp())
    assert claims["collectionMethod"] == "OAuth 2.0 consent page"
    assert claims["jurisdiction"] == "EU"
    assert claims["language"] == "en"
    assert claims["policyUrl"] == "https://camera.example/privacy"
    assert claims["iss"] == "https://vault.example"
    assert (claims["sensitive"], claims["spiCat"]) == (False, [])


def test_controller_is_the_vendor() -> None:
    controller = receipt_claims(make_facts())["piiControllers"]
    assert controller == [
        {
            "piiController": "Camera Shop",
            "contact": "privacy@camera.example",
            "address": {},
            "email": "privacy@camera.example",
            "phone": "",
            "piiControllerUrl": "https://camera.example",
        }
    ]


def test_unknown_vendor_details_stay_empty_rather_than_invented() -> None:
    facts = make_facts(vendor_url=None, vendor_contact="Data Protection Office", policy_url=None)
    claims = receipt_claims(facts)
    controller = claims["piiControllers"][0]
    assert controller["contact"] == "Data Protection Office"
    assert controller["email"] == ""
    assert "piiControllerUrl" not in controller
    assert claims["policyUrl"] == ""
    assert_members(controller, CONTROLLER_REQUIRED)


def test_each_field_is_an_explicit_primary_purpose_ending_at_expiry() -> None:
    purposes = receipt_claims(make_facts())["services"][0]["purposes"]
    stated = [p["purpose"] for p in purposes]
    assert stated == ["send your order confirmation", "deliver your order"]
    for p in purposes:
        assert p["consentType"] == "EXPLICIT"
        assert p["primaryPurpose"] is True
        assert p["thirdPartyDisclosure"] is False
        assert "thirdPartyName" not in p
        assert "2027-02-23T09:00:00Z" in p["termination"]
        assert "withdraw" in p["termination"]


def test_vrm_claims_hold_the_grant_facts() -> None:
    vrm = receipt_claims(make_facts())["vrm"]
    assert vrm == {
        "event": "given",
        "grant_id": "grant-1",
        "vendor_id": "vendor-1",
        "granted_at": "2026-11-25T09:00:00.000000Z",
        "expires_at": "2027-02-23T09:00:00.000000Z",
        "withdrawn_fields": [],
        "terms": ["sd-base:deliver-service-only"],
    }


def test_principal_is_the_pairwise_pseudonym_only(signing: SigningKey) -> None:
    token = issue_receipt(make_facts(), signing)
    _, claims, _ = segments(token)
    text = json.dumps(claims, ensure_ascii=False)
    assert claims["sub"] == claims["piiPrincipalId"] == PSEUDONYM
    assert text.count(PSEUDONYM) == 2
    assert CUSTOMER_EMAIL not in text
    assert CUSTOMER_NAME not in text
    assert {f.name for f in dataclasses.fields(ReceiptFacts)}.isdisjoint({"email", "name"})


# Refusals.


def test_tampered_payload_is_refused(signing: SigningKey) -> None:
    header, claims, signature = issue_receipt(make_facts(), signing).split(".")
    forged = json.loads(unb64url(claims))
    forged["vrm"]["expires_at"] = "2099-01-01T00:00:00.000000Z"
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{header}.{b64url(canonical_json(forged))}.{signature}", signing.jwks())


def test_tampered_header_is_refused(signing: SigningKey) -> None:
    token = issue_receipt(make_facts(), signing)
    header, payload, signature = token.split(".")
    # The same header members, serialised differently: the signed bytes change.
    respaced = encode_header(json.loads(unb64url(header)))
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{respaced}.{payload}.{signature}", signing.jwks())


def test_signature_by_another_key_under_our_kid_is_refused(signing: SigningKey) -> None:
    header = {"alg": "Ed25519", "kid": signing.kid, "typ": JWS_TYPE}
    payload = canonical_json(receipt_claims(make_facts()))
    forged = jws.serialize_compact(header, payload, new_signing_key().jwk, algorithms=["Ed25519"])
    with pytest.raises(InvalidReceipt):
        verify_receipt(forged, signing.jwks())


def test_alg_none_is_refused(signing: SigningKey) -> None:
    header = encode_header({"alg": "none", "kid": signing.kid, "typ": JWS_TYPE})
    payload = b64url(canonical_json(receipt_claims(make_facts())))
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{header}.{payload}.", signing.jwks())


@pytest.mark.parametrize("secret_form", ["raw", "jwk-x", "pem"])
def test_hs256_with_the_public_key_as_secret_is_refused(
    signing: SigningKey, secret_form: str
) -> None:
    secrets = {
        "raw": signing.public_raw(),
        "jwk-x": signing.public_jwk()["x"].encode(),
        "pem": signing.public_pem(),
    }
    header = encode_header({"alg": "HS256", "kid": signing.kid, "typ": JWS_TYPE})
    payload = b64url(canonical_json(receipt_claims(make_facts())))
    mac = hmac.new(secrets[secret_form], f"{header}.{payload}".encode(), hashlib.sha256)
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{header}.{payload}.{b64url(mac.digest())}", signing.jwks())


def test_unknown_kid_is_refused(signing: SigningKey) -> None:
    token = issue_receipt(make_facts(), new_signing_key())
    with pytest.raises(InvalidReceipt):
        verify_receipt(token, signing.jwks())


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "Ed25519", "kid": "K", "typ": "JWT"},
        {"alg": "Ed25519", "kid": "K"},
        {"alg": "Ed25519", "kid": "K", "typ": JWS_TYPE, "jku": "https://evil.example/jwks"},
        {"alg": "Ed25519", "kid": "K", "typ": JWS_TYPE, "crit": ["exp"], "exp": 1},
    ],
    ids=["typ-jwt", "no-typ", "extra-jku", "crit"],
)
def test_validly_signed_token_with_another_header_is_refused(
    signing: SigningKey, header: dict[str, Any]
) -> None:
    header = {**header, "kid": signing.kid}
    signing_input = f"{encode_header(header)}.{b64url(b'{}')}"
    signature = b64url(signing.sign(signing_input.encode()))
    with pytest.raises(InvalidReceipt):
        verify_receipt(f"{signing_input}.{signature}", signing.jwks())


def test_typ_with_application_prefix_is_accepted(signing: SigningKey) -> None:
    header = {"alg": "Ed25519", "kid": signing.kid, "typ": f"application/{JWS_TYPE}"}
    signing_input = f"{encode_header(header)}.{b64url(b'{}')}"
    token = f"{signing_input}.{b64url(signing.sign(signing_input.encode()))}"
    assert verify_receipt(token, signing.jwks()) == {}


@pytest.mark.parametrize(
    "token",
    [
        "",
        "receipt",
        "a.b",
        "a.b.c.d",
        "!!!.@@@.###",
        "e30.e30.",
        "ünïcode.x.y",
        "a..b",
        encode_header(["alg", "kid", "typ"]) + ".e30.AAAA",
        encode_header("alg") + ".e30.AAAA",
    ],
)
def test_malformed_token_is_refused(signing: SigningKey, token: str) -> None:
    with pytest.raises(InvalidReceipt):
        verify_receipt(token, signing.jwks())


def test_payload_that_is_not_a_json_object_is_refused(signing: SigningKey) -> None:
    header = encode_header({"alg": "Ed25519", "kid": signing.kid, "typ": JWS_TYPE})
    signing_input = f"{header}.{b64url(b'[1, 2]')}"
    token = f"{signing_input}.{b64url(signing.sign(signing_input.encode()))}"
    with pytest.raises(InvalidReceipt):
        verify_receipt(token, signing.jwks())


@pytest.mark.parametrize("jwks", [{}, {"keys": "none"}, {"keys": [None]}])
def test_jwks_without_a_key_list_is_refused(signing: SigningKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(InvalidReceipt):
        verify_receipt(issue_receipt(make_facts(), signing), jwks)


@pytest.mark.parametrize(
    "key",
    [
        {"kty": "OKP", "crv": "Ed448", "x": "AAAA"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "OKP", "crv": "Ed25519", "x": 42},
        {"kty": "OKP", "crv": "Ed25519", "x": "not-a-key"},
    ],
    ids=["ed448", "ec", "x-not-text", "x-garbage"],
)
def test_kid_naming_an_unusable_key_is_refused(signing: SigningKey, key: dict[str, Any]) -> None:
    jwks = {"keys": [{**key, "kid": signing.kid}]}
    with pytest.raises(InvalidReceipt):
        verify_receipt(issue_receipt(make_facts(), signing), jwks)


def test_kid_naming_two_keys_is_refused(signing: SigningKey) -> None:
    other = {**new_signing_key().public_jwk(), "kid": signing.kid}
    jwks = {"keys": [signing.public_jwk(), other]}
    with pytest.raises(InvalidReceipt):
        verify_receipt(issue_receipt(make_facts(), signing), jwks)


@pytest.mark.parametrize("member", [{"use": "enc"}, {"alg": "EdDSA"}])
def test_key_not_meant_for_ed25519_signatures_is_refused(
    signing: SigningKey, member: dict[str, str]
) -> None:
    token = issue_receipt(make_facts(), signing)
    jwks = {"keys": [{**signing.public_jwk(), **member}]}
    with pytest.raises(InvalidReceipt):
        verify_receipt(token, jwks)


def padded_claims(size: int) -> dict[str, Any]:
    return {"p": "x" * (size - len('{"p":""}'))}


def test_largest_signable_receipt_still_verifies(signing: SigningKey) -> None:
    claims = padded_claims(MAX_PAYLOAD_BYTES)
    assert verify_receipt(sign_receipt(claims, signing), signing.jwks()) == claims


def test_oversized_claims_are_not_signed(signing: SigningKey) -> None:
    with pytest.raises(ValueError, match="exceed"):
        sign_receipt(padded_claims(MAX_PAYLOAD_BYTES + 1), signing)


def test_claims_that_are_not_utf8_text_are_not_signed(signing: SigningKey) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the codec's message is not ours
        sign_receipt({"purpose": "lone \ud800 surrogate"}, signing)


# Facts that would make a receipt lie.


@pytest.mark.parametrize(
    "changes",
    [
        {"event": "renewed"},
        {"receipt_id": "receipt-1"},
        {"receipt_id": str(uuid.uuid1())},
        {"issued_at": datetime(2026, 11, 25, 9, 0)},
        {"granted_at": datetime(2026, 11, 25, 9, 0)},
        {"expires_at": NOW},
        {"expires_at": NOW - timedelta(days=1)},
        {"event": "revoked"},
        {"event": "expired"},
        {"purposes": (ReceiptPurpose("email", "a"), ReceiptPurpose("email", "b"))},
        {"withdrawn": ("email",)},
    ],
    ids=[
        "unknown-event",
        "id-not-uuid",
        "id-not-uuid4",
        "naive-issued-at",
        "naive-granted-at",
        "expires-at-grant",
        "expires-before-grant",
        "revoked-with-purposes",
        "expired-with-purposes",
        "duplicate-field",
        "field-kept-and-withdrawn",
    ],
)
def test_inconsistent_facts_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        make_facts(**changes)


def test_facts_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        ReceiptFacts(str(uuid.uuid4()), "given")  # type: ignore[call-arg]


# Round trip over any purposes and fields.

FIELD_NAMES = st.sampled_from(
    ["email", "name", "phone", "postal_address", "birthdate", "locale", "interests"]
) | st.from_regex(r"x-[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8"), max_size=120)


@st.composite
def grant_states(draw: st.DrawFn) -> tuple[tuple[ReceiptPurpose, ...], tuple[str, ...]]:
    names = draw(st.lists(FIELD_NAMES, unique=True, max_size=25))
    kept = draw(st.integers(0, len(names)))
    purposes = tuple(ReceiptPurpose(n, draw(TEXT)) for n in names[:kept])
    return purposes, tuple(names[kept:])


@given(
    state=grant_states(),
    event=st.sampled_from(["given", "extended", "narrowed"]),
    issued_at=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    vendor_name=TEXT,
    terms=st.lists(TEXT, max_size=5).map(tuple),
)
def test_sign_then_verify_returns_the_claims(
    signing: SigningKey,
    state: tuple[tuple[ReceiptPurpose, ...], tuple[str, ...]],
    event: str,
    issued_at: datetime,
    vendor_name: str,
    terms: tuple[str, ...],
) -> None:
    purposes, withdrawn = state
    facts = make_facts(
        event=event,
        purposes=purposes,
        withdrawn=withdrawn,
        issued_at=issued_at,
        granted_at=issued_at,
        expires_at=issued_at + timedelta(days=90),
        vendor_name=vendor_name,
        terms=terms,
    )
    claims = receipt_claims(facts)
    assert verify_receipt(sign_receipt(claims, signing), signing.jwks()) == claims
    in_force = claims["services"][0]["purposes"]
    assert [(p["piiCategory"], p["purpose"]) for p in in_force] == [
        ([p.field], p.purpose) for p in purposes
    ]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
NEAR_HEADERS = st.fixed_dictionaries(
    {
        "alg": st.sampled_from(["Ed25519", "EdDSA", "none", "HS256", "ES256"]),
        "kid": st.text(max_size=8) | st.integers(),
        "typ": st.sampled_from([JWS_TYPE, JWS_TYPE.upper(), "JWT", ""]),
    }
)


@given(text=st.text(max_size=300))
def test_any_text_is_refused_with_invalid_receipt(signing: SigningKey, text: str) -> None:
    with pytest.raises(InvalidReceipt):
        verify_receipt(text, signing.jwks())


@given(header=JSON | NEAR_HEADERS, payload=st.binary(max_size=64), ours=st.booleans())
def test_signed_junk_is_refused_or_read_never_crashes(
    signing: SigningKey, header: object, payload: bytes, ours: bool
) -> None:
    if ours and isinstance(header, dict):
        header = {**header, "kid": signing.kid}
    signing_input = f"{encode_header(header)}.{b64url(payload)}"
    token = f"{signing_input}.{b64url(signing.sign(signing_input.encode()))}"
    try:
        claims = verify_receipt(token, signing.jwks())
    except InvalidReceipt:
        return
    assert claims == json.loads(payload)
