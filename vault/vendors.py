"""The vendor registry: OAuth clients, their declared purposes, and the operator's switch.

A vendor registers with RFC 7591 client metadata plus ``vrm_field_purposes``, the purpose
it states for every profile field it asks for; customers see that purpose on the consent
page, so registration refuses a field without one. Registration checks every rule before
anything is stored and names the metadata member a refusal is about.

Vendors live in the shared ``vendors`` table, keyed by client id. A confidential client's
secret is returned once, at registration; only its SHA-256 digest is kept. Secrets are 256
random bits, so a fast digest loses nothing to guessing, and a slow password hash would
cap the token endpoint at a few dozen requests a second.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import ipaddress
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from keys.envelope import RandomBytes
from vault.clock import Clock, isoformat, parse_iso
from vault.confusables import skeleton
from vault.errors import (
    AlreadyExists,
    InvalidClientMetadata,
    NotFound,
    StorageError,
    ValidationError,
    VaultError,
    VendorDisabled,
)
from vault.events import Event, EventSink
from vault.fields import hidden_character, spec_for
from vault.storage.base import Document, Store

VENDOR_SCOPES = frozenset({"segments:query", "offers:send", "intents:read"})
"""Scopes that act for the vendor itself, granted only through client credentials."""

PROFILE_SCOPE_PREFIX = "profile:"
"""A ``profile:<field>`` scope reads one profile field, through the customer's consent."""

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
TABLE = "vendors"
#: One record per vendor name (keyed by the SHA-256 of its normalised form), so no two
#: vendors can register names a customer would read as the same.
NAMES_TABLE = "vendor_names"
#: Marks that every vendor registered before it has records of its name's keys as
#: :func:`name_keys` makes them now. A new kind of key takes a new mark (and a new prefix in
#: :func:`_name_digest`), so vendors get records of it once, and records of an earlier kind
#: match nothing.
_NAMES_RECORDED = "recorded-2"
#: The mark of the version before, whose records were of :func:`_as_read` alone.
_NAMES_RECORDED_BEFORE = "recorded"
#: What :meth:`VendorRegistry.release_name` did.
NameRelease = Literal["released", "kept", "none"]
NAME_CLAIM_GRACE = 60.0
"""Seconds after which a name record whose vendor was never stored may be taken over."""

PUBLIC_AUTH_METHOD = AUTH_METHODS[2]
"""The auth method of a public client: no secret, so it must prove itself with PKCE."""

RECORD_FORMAT = 1
KNOWN_CAPACITY = 1024
"""How many vendors a registry keeps built, each with the record it was built from."""
MAX_NAME_CHARS = 200
MAX_PURPOSE_CHARS = 500
# Every purpose is repeated in each signed consent receipt; this keeps a receipt far below
# the size a JWS verifier accepts (see vault.receipts.MAX_PAYLOAD_BYTES).
MAX_PURPOSES_BYTES = 16384
MAX_URI_CHARS = 2000
MAX_REDIRECT_URIS = 10
MAX_CONTACTS = 5
MAX_CONTACT_CHARS = 254
MAX_SCOPES = 50
"""Bounds that keep a registration, and the consent page built from it, a sane size."""

_PROFILE_GRANTS = frozenset({"authorization_code", "refresh_token"})
_CLIENT_ID = re.compile(r"vnd_[0-9a-f]{24}")
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
#: A DNS name or IPv4 address (RFC 3986 reg-name, letters, digits, hyphens and dots only).
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s.]+(?:\.[^@\s.]+)+")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_INVALID_REDIRECT_URI = "invalid_redirect_uri"
_INVALID_METADATA = "invalid_client_metadata"


@dataclass(frozen=True)
class Vendor:
    """A registered OAuth client, as the vault and its OAuth server see it.

    ``scopes`` is what the vendor may ever ask for; a token carries at most what a
    customer granted (``profile:`` scopes) or the vendor-level scopes it registered.
    """

    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    token_endpoint_auth_method: str
    scopes: tuple[str, ...]
    field_purposes: Mapping[str, str] = field(hash=False)
    webhook_uri: str | None
    client_uri: str | None
    policy_uri: str | None
    contacts: tuple[str, ...]
    secret_digest: str | None
    disabled: bool
    registered_at: datetime

    @property
    def is_public(self) -> bool:
        """Whether the client has no secret (it must prove itself with PKCE instead)."""
        return self.token_endpoint_auth_method == PUBLIC_AUTH_METHOD

    @property
    def profile_fields(self) -> tuple[str, ...]:
        """The profile fields the vendor may ask for, in the order of its scope."""
        return tuple(
            scope[len(PROFILE_SCOPE_PREFIX) :]
            for scope in self.scopes
            if scope.startswith(PROFILE_SCOPE_PREFIX)
        )

    @property
    def default_redirect_uri(self) -> str | None:
        """The redirect URI to use when a request names none: only if exactly one is
        registered (RFC 6749 section 3.1.2.3)."""
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def purpose_for(self, field_name: str) -> str:
        """The purpose the vendor stated for ``field_name``; NotFound if it asked for none."""
        try:
            return self.field_purposes[field_name]
        except KeyError:
            raise NotFound(f"vendor {self.client_id} does not ask for {field_name}") from None

    def secret_matches(self, secret: str) -> bool:
        """Whether ``secret`` is this client's secret, compared in constant time.

        Always False for a public client.
        """
        if self.secret_digest is None:
            return False
        return hmac.compare_digest(digest_secret(secret), self.secret_digest)

    def allows_redirect_uri(self, uri: str) -> bool:
        """Whether ``uri`` is exactly one of the registered redirect URIs."""
        return uri in self.redirect_uris

    def allows_grant_type(self, grant_type: str) -> bool:
        """Whether the vendor registered ``grant_type``."""
        return grant_type in self.grant_types

    def allows_response_type(self, response_type: str) -> bool:
        """Whether the vendor registered ``response_type``."""
        return response_type in self.response_types

    def scopes_for_grant(self, grant_type: str) -> tuple[str, ...]:
        """The registered scopes a token from ``grant_type`` may carry.

        Profile scopes come only through the customer's consent (authorization code and
        its refresh tokens); vendor-level scopes only through client credentials.
        """
        if grant_type in _PROFILE_GRANTS:
            return tuple(s for s in self.scopes if s.startswith(PROFILE_SCOPE_PREFIX))
        if grant_type == "client_credentials":
            return tuple(s for s in self.scopes if s in VENDOR_SCOPES)
        return ()

    def redirect_host(self, uri: str) -> str:
        """The host (and port, if any) of a registered redirect URI, for the consent page
        to say where the customer returns to. ValueError if ``uri`` is not registered."""
        if not self.allows_redirect_uri(uri):
            raise ValueError("not a registered redirect URI of this vendor")
        return urlsplit(uri).netloc

    def metadata(self) -> dict[str, Any]:
        """The client information response of RFC 7591 section 3.2.1, without the secret."""
        doc: dict[str, Any] = {
            "client_id": self.client_id,
            "client_id_issued_at": int(self.registered_at.timestamp()),
        }
        if not self.is_public:
            doc["client_secret_expires_at"] = 0
        doc.update(
            client_name=self.client_name,
            redirect_uris=list(self.redirect_uris),
            grant_types=list(self.grant_types),
            response_types=list(self.response_types),
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            scope=" ".join(self.scopes),
            vrm_field_purposes=dict(self.field_purposes),
        )
        optional = {
            "vrm_webhook_uri": self.webhook_uri,
            "client_uri": self.client_uri,
            "policy_uri": self.policy_uri,
            "contacts": list(self.contacts),
        }
        doc.update((key, value) for key, value in optional.items() if value)
        return doc

    def to_record(self) -> Document:
        """The vendor as a store record."""
        return {
            "format": RECORD_FORMAT,
            "client_id": self.client_id,
            "client_name": self.client_name,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": list(self.grant_types),
            "response_types": list(self.response_types),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "scopes": list(self.scopes),
            "field_purposes": dict(self.field_purposes),
            "webhook_uri": self.webhook_uri,
            "client_uri": self.client_uri,
            "policy_uri": self.policy_uri,
            "contacts": list(self.contacts),
            "secret_digest": self.secret_digest,
            "disabled": self.disabled,
            "registered_at": isoformat(self.registered_at),
        }

    @classmethod
    def from_record(cls, record: Document) -> Vendor:
        """Read a record written by :meth:`to_record`; StorageError for an unknown format."""
        if record.get("format") != RECORD_FORMAT:
            raise StorageError(f"vendor record format {record.get('format')!r} is not known")
        return cls(
            client_id=record["client_id"],
            client_name=record["client_name"],
            redirect_uris=tuple(record["redirect_uris"]),
            grant_types=tuple(record["grant_types"]),
            response_types=tuple(record["response_types"]),
            token_endpoint_auth_method=record["token_endpoint_auth_method"],
            scopes=tuple(record["scopes"]),
            field_purposes=MappingProxyType(dict(record["field_purposes"])),
            webhook_uri=record["webhook_uri"],
            client_uri=record["client_uri"],
            policy_uri=record["policy_uri"],
            contacts=tuple(record["contacts"]),
            secret_digest=record["secret_digest"],
            disabled=record["disabled"],
            registered_at=parse_iso(record["registered_at"]),
        )


def digest_secret(secret: str) -> str:
    """The hex SHA-256 digest a client secret is stored as."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


class VendorRegistry:
    """Registers vendors, finds them, and lets the operator disable them."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        events: EventSink,
        rng: RandomBytes = os.urandom,
    ) -> None:
        self._store = store
        self._clock = clock
        self._events = events
        self._rng = rng
        self._known: dict[str, tuple[Document, Vendor]] = {}

    def register(self, metadata: Mapping[str, object]) -> tuple[Vendor, str | None]:
        """Register a vendor from RFC 7591 client metadata.

        Returns the vendor and its client secret (None for a public client). The secret is
        shown this once: only its digest is stored. Raises InvalidClientMetadata, with
        nothing stored, when a rule is broken.
        """
        declared = _Declared.parse(metadata)
        client_id = "vnd_" + self._rng(12).hex()
        names = self._claim_name(declared.client_name, client_id)
        secret = None if declared.is_public else _new_secret(self._rng)
        vendor = declared.vendor(
            client_id=client_id,
            secret_digest=None if secret is None else digest_secret(secret),
            registered_at=self._clock(),
        )
        try:
            self._store.insert(TABLE, vendor.client_id, vendor.to_record())
        except BaseException:
            # The name goes back, or nobody could ever register it again; unless the vendor
            # was stored after all (a failure after its file was in place).
            with contextlib.suppress(VaultError, OSError):
                if self._store.get(TABLE, client_id) is None:
                    self._give_up_names(names, client_id)
            raise
        self._events.emit(
            Event(
                "vendor.registered",
                vendor.registered_at,
                "vendor",
                vendor=vendor.client_id,
                fields=vendor.profile_fields,
                detail={"scope": " ".join(vendor.scopes)},
            )
        )
        return vendor, secret

    def _claim_name(self, name: str, client_id: str) -> tuple[str, ...]:
        """Hold the vendor name ``name`` for ``client_id``; return its records' keys.

        Refused when another vendor (a disabled one included) holds a name customers could
        take for this one (one of the same :func:`name_keys`): they tell vendors apart by
        name on the grants page and in the inbox, so a second "Acme Bank", or one spelt
        with a Cyrillic A (U+0410), could pass for the first. Each record is created only if
        free, so of two registrations with one name at once, one fails; a refused claim
        gives back the records it took. A record whose vendor was never stored (a
        registration that failed part-way) is taken over once it is a minute old.
        """
        compared = name_keys(name)
        if not all(compared):  # A name that reads as nothing, or as punctuation only.
            raise _refuse("client_name", "must hold a letter or a digit customers can read")
        self._record_names()
        now = self._clock()
        keys = tuple(_name_digest(key) for key in compared)
        # Whether a record found now may be taken over is decided here, outside the update
        # (whose change must not read the store): the change takes over only those records.
        inspected = {key: self._store.get(NAMES_TABLE, key) for key in keys}
        stale = {
            key: held for key, held in inspected.items() if held and self._abandoned(held, now)
        }

        def claim(held: Mapping[str, Document]) -> dict[str, Document | None]:
            for key, record in held.items():
                others = record.get("client_id") != client_id
                if others and stale.get(key) != record:
                    raise _refuse(
                        "client_name",
                        "is, or looks like, the name of another vendor: choose one customers "
                        "can tell apart",
                    )
            return {key: {"client_id": client_id, "at": isoformat(now)} for key in keys}

        # All of the name's records at once: a refused claim takes none of them.
        self._store.update_many(NAMES_TABLE, keys, claim)
        return keys

    def _abandoned(self, held: Document, now: datetime) -> bool:
        """Whether a name record was left by a registration that never stored its vendor
        (and is old enough that it is not one under way)."""
        at = held.get("at")
        if not isinstance(at, str):
            return False
        old = (now - parse_iso(at)).total_seconds() >= NAME_CLAIM_GRACE
        return old and self._store.get(TABLE, str(held.get("client_id", ""))) is None

    def _record_names(self) -> None:
        """Give every vendor registered before names were recorded its name records, once.

        Vendors registered earlier come first, so of two whose names an earlier version
        told apart and this one does not, the earlier keeps the records. A disabled vendor
        whose name the earlier version had already released (its record of that version
        gone, or another's) gets none back.
        """
        if self._store.get(NAMES_TABLE, _NAMES_RECORDED) is not None:
            return
        earlier = self._store.get(NAMES_TABLE, _NAMES_RECORDED_BEFORE) is not None
        vendors = [
            (client_id, record)
            for client_id, record in self._store.scan(TABLE)
            if not (earlier and record.get("disabled") and self._released_before(client_id, record))
        ]
        for key, client_id in _first_holders(vendors).items():
            with contextlib.suppress(AlreadyExists):
                self._store.insert(NAMES_TABLE, key, {"client_id": client_id, "at": None})
        with contextlib.suppress(AlreadyExists):
            self._store.insert(NAMES_TABLE, _NAMES_RECORDED, {"recorded": True})

    def _released_before(self, client_id: str, record: Document) -> bool:
        """Whether the version before held no name record for the vendor (its record was
        the SHA-256 of its name as :func:`_as_read` reads it, unprefixed: ``_as_read`` is
        that version's ``name_key`` unchanged, and must stay so for this to find them)."""
        name = _as_read(str(record.get("client_name", "")))
        held = self._store.get(NAMES_TABLE, hashlib.sha256(name.encode("utf-8")).hexdigest())
        return held is None or held.get("client_id") != client_id

    def release_name(self, client_id: str) -> NameRelease:
        """Let another vendor register the name of the disabled vendor ``client_id`` (one
        that took a name that is not its own). ValidationError if the vendor is still
        enabled, NotFound if there is none.

        Returns "released" if that freed its name, "none" if it held no name record, and
        "kept" if a record it held is one of an enabled vendor's name too (two names an
        earlier version told apart): such records pass to that vendor (of several, the one
        registered first) in the same write, and so the name stays taken.
        """
        vendor = self.get(client_id)
        if vendor is None:
            raise NotFound(f"no vendor with client id {_shown(client_id)}")
        if not vendor.disabled:
            raise ValidationError("client_id", "disable the vendor before releasing its name")
        self._record_names()
        keys = [_name_digest(key) for key in name_keys(vendor.client_name)]
        heirs: dict[str, str] = {}
        if any(self._holder(key) == client_id for key in keys):
            # Looked for only when there is something to hand on: it reads every vendor.
            enabled = (
                (other, record)
                for other, record in self._store.scan(TABLE)
                if other != client_id and not record.get("disabled")
            )
            heirs = _first_holders(enabled)
        return self._give_up_names(keys, client_id, heirs)

    def _holder(self, key: str) -> str | None:
        """The client id holding the name record ``key``, if any."""
        record = self._store.get(NAMES_TABLE, key)
        return None if record is None else str(record.get("client_id"))

    def _give_up_names(
        self, keys: Sequence[str], client_id: str, heirs: Mapping[str, str] | None = None
    ) -> NameRelease:
        """In one write, remove those of the name records ``keys`` that ``client_id``
        holds, or pass them to their heir (a client id by record key) if they have one;
        see :meth:`release_name` for what is returned."""
        heirs = heirs or {}
        outcome: list[NameRelease] = ["none"]

        def give_up(held: Mapping[str, Document]) -> dict[str, Document | None]:
            changed: dict[str, Document | None] = {}
            for key, record in held.items():
                if record.get("client_id") != client_id:
                    continue
                heir = heirs.get(key)
                changed[key] = None if heir is None else {"client_id": heir, "at": None}
                if heir is not None:
                    outcome[0] = "kept"
                elif outcome[0] == "none":
                    outcome[0] = "released"
            return changed

        self._store.update_many(NAMES_TABLE, keys, give_up)
        return outcome[0]

    def get(self, client_id: str) -> Vendor | None:
        """The vendor with ``client_id``, or None (also for a malformed id).

        The record is read from the store every time, so a change any process made to it
        (disabling, above all) shows at once. Building a Vendor from it is skipped when the
        record is exactly the one the remembered Vendor was built from: a Vendor is
        immutable, so handing out the same one is safe.
        """
        if not _CLIENT_ID.fullmatch(client_id):
            return None
        record = self._store.get(TABLE, client_id)
        if record is None:
            return None
        known = self._known.get(client_id)
        if known is not None and known[0] == record:
            return known[1]
        vendor = Vendor.from_record(record)
        if len(self._known) >= KNOWN_CAPACITY:
            self._known.clear()
        self._known[client_id] = (record, vendor)
        return vendor

    def require_active(self, client_id: str) -> Vendor:
        """The vendor with ``client_id``; NotFound if there is none, VendorDisabled if the
        operator disabled it."""
        vendor = self.get(client_id)
        if vendor is None:
            raise NotFound(f"no vendor with client id {_shown(client_id)}")
        if vendor.disabled:
            raise VendorDisabled(f"vendor {vendor.client_id} is disabled")
        return vendor

    def disable(self, client_id: str) -> Vendor:
        """Disable a vendor for good: none of its requests or tokens are honoured from now.

        Idempotent: disabling a disabled vendor changes nothing and emits nothing; the
        first time emits ``vendor.disabled``. NotFound for an unknown client id.
        """
        # A backend may run ``change`` more than once; the last run is the one stored.
        changed = [False]

        def change(record: Document | None) -> Document | None:
            changed[0] = record is not None and not record["disabled"]
            return None if record is None else {**record, "disabled": True}

        known = _CLIENT_ID.fullmatch(client_id) is not None
        stored = self._store.update(TABLE, client_id, change) if known else None
        if stored is None:
            raise NotFound(f"no vendor with client id {_shown(client_id)}")
        if changed[0]:
            self._events.emit(Event("vendor.disabled", self._clock(), "operator", vendor=client_id))
        return Vendor.from_record(stored)

    def vendors(self) -> list[Vendor]:
        """Every registered vendor, oldest registration first."""
        found = [Vendor.from_record(record) for _, record in self._store.scan(TABLE)]
        return sorted(found, key=lambda vendor: (vendor.registered_at, vendor.client_id))


def _new_secret(rng: RandomBytes) -> str:
    """32 random bytes, base64url without padding (43 characters)."""
    return base64.urlsafe_b64encode(rng(32)).rstrip(b"=").decode("ascii")


# Registration rules.


@dataclass(frozen=True)
class _Declared:
    """Client metadata that passed every rule, in the form a Vendor holds it."""

    client_name: str
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    token_endpoint_auth_method: str
    redirect_uris: tuple[str, ...]
    scopes: tuple[str, ...]
    field_purposes: Mapping[str, str]
    webhook_uri: str | None
    client_uri: str | None
    policy_uri: str | None
    contacts: tuple[str, ...]

    @classmethod
    def parse(cls, metadata: Mapping[str, object]) -> _Declared:
        """Check ``metadata`` against every registration rule; InvalidClientMetadata if
        one is broken."""
        given = _as_object(metadata, "metadata")
        grants = _grant_types(given.get("grant_types"))
        scopes = _scopes(given.get("scope"), grants)
        return cls(
            client_name=_client_name(given.get("client_name")),
            grant_types=grants,
            response_types=_response_types(given.get("response_types"), grants),
            token_endpoint_auth_method=_auth_method(
                given.get("token_endpoint_auth_method"), grants
            ),
            redirect_uris=_redirect_uris(given.get("redirect_uris"), grants),
            scopes=scopes,
            field_purposes=_purposes(given.get("vrm_field_purposes"), _profile_fields(scopes)),
            webhook_uri=_optional_uri(given, "vrm_webhook_uri"),
            client_uri=_optional_uri(given, "client_uri"),
            policy_uri=_optional_uri(given, "policy_uri"),
            contacts=_contacts(given.get("contacts")),
        )

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == PUBLIC_AUTH_METHOD

    def vendor(
        self, *, client_id: str, secret_digest: str | None, registered_at: datetime
    ) -> Vendor:
        """The vendor these declarations describe."""
        return Vendor(
            client_id=client_id,
            client_name=self.client_name,
            redirect_uris=self.redirect_uris,
            grant_types=self.grant_types,
            response_types=self.response_types,
            token_endpoint_auth_method=self.token_endpoint_auth_method,
            scopes=self.scopes,
            field_purposes=self.field_purposes,
            webhook_uri=self.webhook_uri,
            client_uri=self.client_uri,
            policy_uri=self.policy_uri,
            contacts=self.contacts,
            secret_digest=secret_digest,
            disabled=False,
            registered_at=registered_at,
        )


def _refuse(member: str, rule: str, code: str = _INVALID_METADATA) -> InvalidClientMetadata:
    return InvalidClientMetadata(member, rule, code=code)


def _shown(text: str) -> str:
    """Vendor-supplied text quoted and cut short, safe to put in an error message."""
    return json.dumps(text[:60])


def _as_object(value: object, member: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise _refuse(member, "must be a JSON object")
    return value


def _string_list(value: object, member: str, code: str = _INVALID_METADATA) -> tuple[str, ...]:
    """A JSON array of strings without duplicates; absent (None) is an empty one."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _refuse(member, "must be a list of strings", code)
    if len(set(value)) != len(value):
        raise _refuse(member, "must not repeat an entry", code)
    return tuple(value)


def _text(value: object, member: str, max_chars: int, subject: str = "") -> str:
    """Trimmed NFC text of 1 to ``max_chars`` characters without control characters."""
    lead = f"{subject} " if subject else ""
    if not isinstance(value, str):
        raise _refuse(member, f"{lead}must be a string")
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise _refuse(member, f"{lead}must not be blank")
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise _refuse(member, f"{lead}must not contain control characters")
    hidden = hidden_character(text)
    if hidden:
        raise _refuse(member, f"{lead}{hidden}")
    if len(text) > max_chars:
        raise _refuse(member, f"{lead}must be at most {max_chars} characters")
    return text


def name_keys(name: str) -> tuple[str, ...]:
    """The keys a vendor name is compared by: two names customers could take for each
    other share one. Both read the name as :func:`_as_read` does and take its UTS #39
    skeleton (characters that look alike read as one: a Cyrillic a (U+0430) as a Latin
    "a", a "0" as an "O", an "m" as "rn"; see :mod:`vault.confusables`):

    - as read: case folded before the skeleton, so "ACME" and "acme" share it, and so do
      names with small letters of other scripts that look alike;
    - as written: the skeleton first, its case kept, then case folded, so that capitals
      that look like other letters are read as those (a Greek capital Eta as an "H",
      "BITCOIN" with a Greek capital Iota as "Bitcoin"), with what reads as an "l" read
      by the letters beside it: a capital I among small letters is an "l" ("PayPaI"
      reads as "PayPal"), an l or a 1 among capitals an "I" ("M1CROSOFT"), while "IG"
      and "LG" stay apart.

    The skeleton is case-sensitive, so neither key alone does both.
    """
    as_read = _as_read(skeleton(_as_read(name)))
    as_written = _as_read(
        skeleton(_as_read(skeleton(unicodedata.normalize("NFKD", name), l_by_context=True)))
    )
    return tuple(dict.fromkeys((as_read, as_written)))


def _as_read(name: str) -> str:
    """Unicode NFKD, case folded (and normalised again: a mathematical capital folds only
    as the letter it is); what shows nothing or little left out (format, unassigned and
    private characters such as joiners, variation selectors, Hangul fillers, and accents
    on Latin, Greek and Cyrillic letters, while the marks of other scripts, which make
    other words, count); punctuation, spaces and blank symbols read as one space.
    """
    kept: list[str] = []
    base = ""  # The script of the last letter kept.
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", name).casefold())
    for char in folded:
        category = unicodedata.category(char)
        if category in ("Cf", "Cc", "Cn", "Co", "Me") or char in _SHOW_NOTHING:
            continue
        if category == "Mn" and (base in _MARKED_SCRIPTS or char in _INVISIBLE_MARKS):
            continue  # An accent on a Latin letter, say; marks of other scripts count.
        blank = category[0] in "PZ" or char in _BLANK
        kept.append(" " if blank else char)
        if category[0] == "L":
            base = unicodedata.name(char, "").split(" ", 1)[0]
    return " ".join("".join(kept).split())


#: Letters and symbols that show as nothing or as a blank.
_SHOW_NOTHING = frozenset("\u115f\u1160\u3164\uffa0\u17b4\u17b5")
_BLANK = frozenset("\u2800")
#: Scripts whose letters take accents that readers pass over; in other scripts (Japanese
#: dakuten, Indic vowel signs) a mark makes another word, so it is kept.
_MARKED_SCRIPTS = frozenset({"LATIN", "GREEK", "CYRILLIC"})
#: Marks that show nothing on any letter: the combining grapheme joiner, Mongolian free
#: variation selectors and the variation selectors.
_INVISIBLE_MARKS = frozenset(
    "\u034f\u180b\u180c\u180d\u180f"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)


def _first_holders(vendors: Iterable[tuple[str, Document]]) -> dict[str, str]:
    """Each name record key of the names of ``vendors`` (``(client_id, record)`` pairs of
    the vendors table), with the client id of the one registered first whose name has it."""
    holders: dict[str, str] = {}
    for client_id, record in sorted(vendors, key=_registered_first):
        for key in name_keys(str(record.get("client_name", ""))):
            holders.setdefault(_name_digest(key), client_id)
    return holders


def _registered_first(item: tuple[str, Document]) -> tuple[str, str]:
    """Sort key of a ``(client_id, record)`` of the vendors table: earliest registered
    first (``registered_at`` is fixed-width UTC ISO text, so text order is time order)."""
    return str(item[1].get("registered_at", "")), item[0]


def _name_digest(key: str) -> str:
    """The record key of a name key: a digest, prefixed by the kind of key (see
    _NAMES_RECORDED)."""
    return hashlib.sha256(b"2\0" + key.encode("utf-8")).hexdigest()


def _client_name(value: object) -> str:
    if value is None:
        raise _refuse("client_name", "is required: the name customers see on the consent page")
    return _text(value, "client_name", MAX_NAME_CHARS)


def _grant_types(value: object) -> tuple[str, ...]:
    grants = ("authorization_code",) if value is None else _string_list(value, "grant_types")
    if not grants:
        raise _refuse("grant_types", "must name at least one grant type")
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise _refuse(
                "grant_types",
                f"{_shown(grant)} is not supported (supported: {', '.join(GRANT_TYPES)})",
            )
    if "refresh_token" in grants and "authorization_code" not in grants:
        raise _refuse("grant_types", "refresh_token is only issued with authorization_code")
    return grants


def _response_types(value: object, grants: Sequence[str]) -> tuple[str, ...]:
    expected = ("code",) if "authorization_code" in grants else ()
    if value is None:
        return expected
    given = _string_list(value, "response_types")
    if any(kind != "code" for kind in given):
        raise _refuse("response_types", 'only "code" is supported')
    if given != expected:
        rule = (
            '"code" is required with the authorization_code grant'
            if expected
            else '"code" needs the authorization_code grant'
        )
        raise _refuse("response_types", rule)
    return given


def _auth_method(value: object, grants: Sequence[str]) -> str:
    method = "client_secret_basic" if value is None else value
    if not isinstance(method, str) or method not in AUTH_METHODS:
        raise _refuse("token_endpoint_auth_method", f"must be one of {', '.join(AUTH_METHODS)}")
    if method == PUBLIC_AUTH_METHOD and "client_credentials" in grants:
        raise _refuse(
            "token_endpoint_auth_method",
            "none (a public client) cannot use client_credentials: that grant needs a secret",
        )
    return method


def _redirect_uris(value: object, grants: Sequence[str]) -> tuple[str, ...]:
    member, code = "redirect_uris", _INVALID_REDIRECT_URI
    uris = _string_list(value, member, code)
    if "authorization_code" not in grants:
        if uris:
            raise _refuse(member, "are only used with the authorization_code grant", code)
        return ()
    if not uris:
        raise _refuse(member, "at least one is required for the authorization_code grant", code)
    if len(uris) > MAX_REDIRECT_URIS:
        raise _refuse(member, f"must be at most {MAX_REDIRECT_URIS}", code)
    return tuple(_uri(uri, member, code) for uri in uris)


def _optional_uri(given: Mapping[str, object], member: str) -> str | None:
    value = given.get(member)
    return None if value is None else _uri(value, member, _INVALID_METADATA)


def _uri(value: object, member: str, code: str) -> str:
    """An absolute https URI (http only on a loopback host, RFC 8252 section 7.3),
    without fragment or user information."""
    if not isinstance(value, str):
        raise _refuse(member, "must be a string", code)
    if len(value) > MAX_URI_CHARS:
        raise _refuse(member, f"must be at most {MAX_URI_CHARS} characters", code)
    if not _URI_CHARS.fullmatch(value):
        raise _refuse(member, "must be a URI of ASCII characters (percent-encode others)", code)
    if "#" in value:
        raise _refuse(member, "must not have a fragment", code)
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise _refuse(member, "is not a valid URI", code) from None
    if "@" in parts.netloc:
        raise _refuse(member, "must not contain a user name or password", code)
    if not host:
        raise _refuse(member, "must be an absolute URI with a host", code)
    if not (_HOST_NAME.fullmatch(host) or _is_ipv6_literal(parts.netloc, host)):
        raise _refuse(member, "must name its host with letters, digits, hyphens and dots", code)
    if parts.scheme != "https" and not (parts.scheme == "http" and host in _LOOPBACK_HOSTS):
        raise _refuse(member, "must use https (http only for 127.0.0.1, [::1] or localhost)", code)
    return value


def _scopes(value: object, grants: Sequence[str]) -> tuple[str, ...]:
    if value is None:
        raise _refuse("scope", "is required: name the profile:<field> or vendor scopes")
    if not isinstance(value, str):
        raise _refuse("scope", "must be a string of space-separated scopes")
    scopes = tuple(token for token in value.split(" ") if token)
    if not scopes:
        raise _refuse("scope", "must name at least one scope")
    if len(scopes) > MAX_SCOPES:
        raise _refuse("scope", f"must name at most {MAX_SCOPES} scopes")
    if len(set(scopes)) != len(scopes):
        raise _refuse("scope", "must not repeat a scope")
    for scope in scopes:
        _check_scope(scope, grants)
    _check_grants_have_scopes(scopes, grants)
    return scopes


def _check_scope(scope: str, grants: Sequence[str]) -> None:
    if not _SCOPE_TOKEN.fullmatch(scope):
        raise _refuse("scope", "must hold only printable ASCII scopes separated by spaces")
    if scope in VENDOR_SCOPES:
        if "client_credentials" not in grants:
            raise _refuse("scope", f"{scope} is a vendor scope: it needs client_credentials")
        return
    if not scope.startswith(PROFILE_SCOPE_PREFIX):
        known = ", ".join(sorted(VENDOR_SCOPES))
        raise _refuse("scope", f"{_shown(scope)} is unknown (use profile:<field> or {known})")
    try:
        spec_for(scope[len(PROFILE_SCOPE_PREFIX) :])
    except ValidationError:
        raise _refuse("scope", f"{_shown(scope)} names no known profile field") from None
    if "authorization_code" not in grants:
        raise _refuse("scope", f"{scope} reads the profile: it needs authorization_code")


def _check_grants_have_scopes(scopes: Sequence[str], grants: Sequence[str]) -> None:
    """Refuse a grant type no registered scope could be used with."""
    if "authorization_code" in grants and not _profile_fields(scopes):
        raise _refuse("scope", "authorization_code needs at least one profile:<field> scope")
    if "client_credentials" in grants and not VENDOR_SCOPES.intersection(scopes):
        known = ", ".join(sorted(VENDOR_SCOPES))
        raise _refuse("scope", f"client_credentials needs at least one of {known}")


def _profile_fields(scopes: Sequence[str]) -> tuple[str, ...]:
    prefix = PROFILE_SCOPE_PREFIX
    return tuple(scope[len(prefix) :] for scope in scopes if scope.startswith(prefix))


def _purposes(value: object, fields: Sequence[str]) -> Mapping[str, str]:
    member = "vrm_field_purposes"
    given = {} if value is None else _as_object(value, member)
    for name in given:
        if name not in fields:
            raise _refuse(member, f"{_shown(name)} has a purpose but is not in scope")
    purposes: dict[str, str] = {}
    for name in fields:
        if name not in given:
            raise _refuse(member, f"{name} needs a purpose: every profile:<field> scope does")
        purposes[name] = _text(given[name], member, MAX_PURPOSE_CHARS, f"the purpose for {name}")
    total = sum(len(text.encode()) for text in purposes.values())
    if total > MAX_PURPOSES_BYTES:
        raise _refuse(member, f"must be at most {MAX_PURPOSES_BYTES} bytes in all, not {total}")
    return MappingProxyType(purposes)


def _contacts(value: object) -> tuple[str, ...]:
    contacts = _string_list(value, "contacts")
    if len(contacts) > MAX_CONTACTS:
        raise _refuse("contacts", f"must be at most {MAX_CONTACTS} addresses")
    for contact in contacts:
        text = _text(contact, "contacts", MAX_CONTACT_CHARS, "each address")
        if text != contact or not _EMAIL_LIKE.fullmatch(contact):
            raise _refuse("contacts", f"{_shown(contact)} is not an email address")
    return contacts


def _is_ipv6_literal(netloc: str, host: str) -> bool:
    """Whether ``host`` is an IPv6 address written in brackets in ``netloc``."""
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return f"[{host}]" in netloc.lower()
