"""Signed consent receipts: what the customer agreed with a vendor, in a form both can keep.

Every grant event (given, extended, narrowed, revoked, expired) yields one receipt. Its
claims are the members of the Kantara Initiative Consent Receipt Specification v1.1
(``KI-CR-v1.1.0``) that apply, the JWT claims ``iss``, ``sub``, ``iat`` and ``jti``, and the
vault's own facts under ``vrm``. The receipt is a compact JWS signed with the server's
Ed25519 key (alg ``Ed25519``, RFC 9864), so the vendor and the customer can each check it
offline against the published JWKS. The principal is the customer's pairwise pseudonym at
that vendor, never an email or a name.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from keys.signing import JWS_ALG, SigningKey
from vault.clock import isoformat
from vault.errors import VaultError

RECEIPT_VERSION = "KI-CR-v1.1.0"
"""The Kantara ``version`` member: the specification the claims conform to."""

JWS_TYPE = "vrm-consent-receipt+jwt"
"""The JWS ``typ`` header, so a receipt cannot pass for any other token the server signs."""

RECEIPT_EVENTS = frozenset({"given", "extended", "narrowed", "revoked", "expired"})
"""The grant events that issue a receipt."""

MAX_PAYLOAD_BYTES = 96_000
"""The largest claims document signed, in bytes. Verifiers cap token size: joserfc refuses a
payload segment over 128,000 base64url characters, which is 96,000 bytes of JSON."""

_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
_ENDED_EVENTS = frozenset({"revoked", "expired"})


class InvalidReceipt(VaultError):
    """A receipt failed verification: malformed, wrongly typed, unknown key or bad signature."""


@dataclass(frozen=True)
class ReceiptPurpose:
    """One granted field and the purpose the vendor stated for it."""

    field: str
    purpose: str


@dataclass(frozen=True, kw_only=True)
class ReceiptFacts:
    """Everything a receipt states about one grant event, gathered by the caller.

    ``purposes`` are the fields in force after the event (none once revoked or expired);
    ``withdrawn`` are the fields this event removed. Times must be timezone-aware.
    """

    receipt_id: str
    event: str
    issued_at: datetime
    issuer: str
    principal: str
    grant_id: str
    vendor_id: str
    vendor_name: str
    vendor_url: str | None
    vendor_contact: str | None
    policy_url: str | None
    purposes: tuple[ReceiptPurpose, ...]
    withdrawn: tuple[str, ...]
    granted_at: datetime
    expires_at: datetime
    terms: tuple[str, ...]
    collection_method: str
    jurisdiction: str
    language: str = "en"

    def __post_init__(self) -> None:
        if self.event not in RECEIPT_EVENTS:
            raise ValueError(f"unknown receipt event {self.event!r}")
        _require_uuid4(self.receipt_id)
        for name in ("issued_at", "granted_at", "expires_at"):
            _require_aware(name, getattr(self, name))
        if self.expires_at <= self.granted_at:
            raise ValueError("expires_at must be after granted_at")
        self._check_fields()

    def _check_fields(self) -> None:
        """Refuse field lists that would make the receipt contradict itself."""
        fields = [p.field for p in self.purposes]
        if len(set(fields)) != len(fields):
            raise ValueError("each field may have only one purpose")
        if set(fields) & set(self.withdrawn):
            raise ValueError("a field cannot be both in force and withdrawn")
        if self.event in _ENDED_EVENTS and self.purposes:
            raise ValueError(f"a {self.event} grant has no purposes in force")


def _require_uuid4(text: str) -> None:
    """Refuse a receipt id that is not a UUID4 string (Kantara recommends RFC 4122 UUID-4)."""
    try:
        parsed = uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        raise ValueError("receipt_id must be a UUID4 string") from None
    if parsed.version != 4 or str(parsed) != text.lower():
        raise ValueError("receipt_id must be a UUID4 string")


def _require_aware(name: str, moment: datetime) -> None:
    """Refuse a naive datetime: a receipt's times must say which instant they mean."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def receipt_claims(facts: ReceiptFacts) -> dict[str, Any]:
    """The receipt's claims: Kantara CR v1.1 members, JWT claims and the ``vrm`` object."""
    claims = _kantara_members(facts)
    claims.update(
        iss=facts.issuer,
        sub=facts.principal,
        iat=_epoch_seconds(facts.issued_at),
        jti=facts.receipt_id,
        vrm=_vrm_claims(facts),
    )
    return claims


def _kantara_members(facts: ReceiptFacts) -> dict[str, Any]:
    """The Kantara CR v1.1 top-level members that apply to a vault grant."""
    # ``publicKey`` (optional) is the PII Controller's key; the vendor's key is not the
    # vault's to state, and the receipt's own signing key is named by the JWS ``kid``.
    return {
        "version": RECEIPT_VERSION,
        "jurisdiction": facts.jurisdiction,
        "consentTimestamp": _epoch_seconds(facts.issued_at),
        "collectionMethod": facts.collection_method,
        "consentReceiptID": facts.receipt_id,
        "language": facts.language,
        "piiPrincipalId": facts.principal,
        "piiControllers": [_controller(facts)],
        # Required; empty when the vendor registered no policy (see _controller).
        "policyUrl": facts.policy_url or "",
        "services": [_service(facts)],
        # The vault's schema marks no field as a special category of personal data, so it
        # has no ground to name sensitive categories; it states what it knows.
        "sensitive": False,
        "spiCat": [],
    }


def _controller(facts: ReceiptFacts) -> dict[str, Any]:
    """The vendor as the PII Controller.

    ``contact``, ``address``, ``email`` and ``phone`` are required by the specification, but
    a vendor registers only a name, a URL and a contact. Rather than make values up, a member
    the vault does not know is present and empty (``""``, or ``{}`` for the address), so the
    receipt keeps the specification's shape while saying plainly that nothing was declared.
    ``onBehalf`` is optional and unknown, so it is left out.
    """
    contact = facts.vendor_contact or ""
    controller: dict[str, Any] = {
        "piiController": facts.vendor_name,
        "contact": contact,
        "address": {},
        "email": contact if _looks_like_email(contact) else "",
        "phone": "",
    }
    if facts.vendor_url:
        controller["piiControllerUrl"] = facts.vendor_url
    return controller


def _looks_like_email(text: str) -> bool:
    """Whether ``text`` has the shape of one email address (vendors' contacts usually do)."""
    local, _, domain = text.partition("@")
    shaped = text.count("@") == 1 and bool(local) and "." in domain.strip(".")
    return shaped and not any(c.isspace() for c in text)


def _service(facts: ReceiptFacts) -> dict[str, Any]:
    """One service, named for the vendor, with one purpose entry per field in force.

    After a revocation or expiry the purpose list is empty: nothing is consented any more,
    and the fields that were withdrawn are named in ``vrm.withdrawn_fields``.
    """
    termination = _termination(facts.expires_at)
    return {
        "service": facts.vendor_name,
        "purposes": [_purpose(p, termination) for p in facts.purposes],
    }


def _purpose(item: ReceiptPurpose, termination: str) -> dict[str, Any]:
    """The Kantara purpose entry for one granted field."""
    return {
        "purpose": item.purpose,
        # Required, but the vendor states its purpose in its own words and the vault does
        # not sort purposes into the specification's categories; an empty list claims none.
        "purposeCategory": [],
        "consentType": "EXPLICIT",
        "piiCategory": [item.field],
        "primaryPurpose": True,
        "termination": termination,
        # Grants are to the vendor alone; ``thirdPartyName`` is only for disclosures.
        "thirdPartyDisclosure": False,
    }


def _termination(expires_at: datetime) -> str:
    """The human-readable end of consent: the expiry date and the right to withdraw."""
    ends = expires_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"Consent ends at {ends} unless withdrawn earlier; "
        "the customer can withdraw it at any time from their vault."
    )


def _vrm_claims(facts: ReceiptFacts) -> dict[str, Any]:
    """The vault's own facts about the event, which Kantara has no members for."""
    return {
        "event": facts.event,
        "grant_id": facts.grant_id,
        "vendor_id": facts.vendor_id,
        "granted_at": isoformat(facts.granted_at),
        "expires_at": isoformat(facts.expires_at),
        "withdrawn_fields": list(facts.withdrawn),
        "terms": list(facts.terms),
    }


def _epoch_seconds(moment: datetime) -> int:
    """Whole seconds since 1970-01-01T00:00:00Z, as Kantara and JWT timestamps are."""
    return int(moment.timestamp())


def canonical_json(claims: Mapping[str, Any]) -> bytes:
    """Claims as canonical JSON: sorted keys, no spaces, UTF-8, no NaN or infinities."""
    text = json.dumps(
        claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def sign_receipt(claims: Mapping[str, Any], signing: SigningKey) -> str:
    """Sign ``claims`` as a compact JWS with the server's Ed25519 key.

    Raises ``TypeError`` for values JSON cannot hold, and ``ValueError`` for NaN,
    infinities, text that is not valid Unicode, or claims over :data:`MAX_PAYLOAD_BYTES`.
    """
    payload = canonical_json(claims)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"receipt claims exceed {MAX_PAYLOAD_BYTES} bytes")
    return signing.compact_jws(payload, JWS_TYPE)


def issue_receipt(facts: ReceiptFacts, signing: SigningKey) -> str:
    """The signed receipt for ``facts``: :func:`sign_receipt` of :func:`receipt_claims`."""
    return sign_receipt(receipt_claims(facts), signing)


def verify_receipt(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """Check a receipt against a JWKS and return its claims.

    Only alg ``Ed25519`` with the receipt ``typ`` and a ``kid`` found in ``jwks`` is
    accepted. Every failure raises :class:`InvalidReceipt`, never a JOSE library error.
    """
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, AttributeError) as err:
        raise InvalidReceipt("malformed receipt") from err
    key = _key_for(_checked_kid(header), jwks)
    try:
        verified = jws.deserialize_compact(token, key, algorithms=[JWS_ALG])
    except (JoseError, ValueError) as err:
        raise InvalidReceipt("receipt signature does not verify") from err
    return _decode_claims(verified.payload)


def _checked_kid(header: object) -> str:
    """The ``kid`` of a header that is ours: alg Ed25519, a string ``kid``, the receipt ``typ``."""
    if not isinstance(header, dict) or set(header) != _HEADER_MEMBERS:
        raise InvalidReceipt("receipt header must hold exactly alg, kid and typ")
    if header["alg"] != JWS_ALG:
        raise InvalidReceipt(f"receipt alg must be {JWS_ALG}")
    if not isinstance(header["kid"], str) or not header["kid"]:
        raise InvalidReceipt("receipt kid must be a non-empty string")
    if not _is_receipt_type(header["typ"]):
        raise InvalidReceipt(f"receipt typ must be {JWS_TYPE}")
    return header["kid"]


def _is_receipt_type(typ: object) -> bool:
    """Compare ``typ`` as RFC 7515 says: case-insensitive, ``application/`` optional."""
    if not isinstance(typ, str):
        return False
    media = typ.lower().removeprefix("application/")
    return media == JWS_TYPE


def _key_for(kid: str, jwks: Mapping[str, Any]) -> OKPKey:
    """The one Ed25519 signing key in ``jwks`` named ``kid``."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise InvalidReceipt("the JWKS has no key list")
    found = [k for k in keys if isinstance(k, Mapping) and k.get("kid") == kid]
    if len(found) != 1:
        raise InvalidReceipt(f"no single key with kid {kid!r} in the JWKS")
    return _ed25519_public_key(found[0])


def _ed25519_public_key(jwk: Mapping[str, Any]) -> OKPKey:
    """Import the public half of an Ed25519 JWK meant for signatures."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise InvalidReceipt("the receipt key is not an Ed25519 key")
    if jwk.get("alg", JWS_ALG) != JWS_ALG or jwk.get("use", "sig") != "sig":
        raise InvalidReceipt("the receipt key is not for Ed25519 signatures")
    x = jwk.get("x")
    if not isinstance(x, str):
        raise InvalidReceipt("the receipt key has no public value")
    try:
        return OKPKey.import_key({"kty": "OKP", "crv": "Ed25519", "x": x})
    except (JoseError, ValueError, TypeError) as err:
        raise InvalidReceipt("the receipt key cannot be read") from err


def _decode_claims(payload: bytes) -> dict[str, Any]:
    """The verified payload as a JSON object."""
    try:
        claims = json.loads(payload.decode("utf-8"))
    except ValueError as err:
        raise InvalidReceipt("receipt payload is not JSON") from err
    if not isinstance(claims, dict):
        raise InvalidReceipt("receipt payload is not a JSON object")
    return claims
