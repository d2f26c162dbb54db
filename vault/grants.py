"""Consent grants: which vendor may read which fields of a vault, why, and until when.

A grant lives in its vault's document, so it is exported and erased with the vault, and
checking it on a vendor's request reads only that vault's file. A vault has at most one
live grant per vendor: a new consent for more fields extends it. Every change (given,
extended, narrowed, revoked, expired) adds a signed consent receipt to the grant and an
event to the log. Withdrawing is as easy as giving: one call per grant, one per field.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from keys import SigningKeys
from keys.digests import keyed_digest
from keys.envelope import RandomBytes
from vault.clock import Clock, isoformat, parse_iso
from vault.errors import NotFound, ValidationError
from vault.events import Event, EventSink, vault_pseudonym
from vault.receipts import ReceiptFacts, ReceiptPurpose, issue_receipt
from vault.storage.base import Document, Store
from vault.vendors import Vendor, VendorRegistry

DEFAULT_DAYS = 90
DURATION_DAYS = (7, 30, 90, 180, 365)
LIVE, REVOKED, EXPIRED = "active", "revoked", "expired"


@dataclass(frozen=True)
class Receipt:
    """A signed consent receipt kept in the vault."""

    receipt_id: str
    event: str
    at: datetime
    jws: str


@dataclass(frozen=True)
class Grant:
    """A read-only view of one grant."""

    grant_id: str
    vendor_id: str
    status: str
    fields: Mapping[str, str]
    given_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    removed: tuple[tuple[str, datetime], ...]
    terms: tuple[str, ...]
    receipts: tuple[Receipt, ...]
    last_access: datetime | None
    epoch: int

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Grant:
        """Read a grant record as stored in the vault document."""
        return cls(
            grant_id=record["id"],
            vendor_id=record["vendor"],
            status=record["status"],
            fields={name: f["purpose"] for name, f in record["fields"].items()},
            given_at=parse_iso(record["given_at"]),
            expires_at=parse_iso(record["expires_at"]),
            ended_at=_maybe_time(record.get("ended_at")),
            removed=tuple((r["field"], parse_iso(r["at"])) for r in record["removed"]),
            terms=tuple(record["terms"]),
            receipts=tuple(
                Receipt(r["id"], r["event"], parse_iso(r["at"]), r["jws"])
                for r in record["receipts"]
            ),
            last_access=_maybe_time(record.get("last_access")),
            epoch=record["epoch"],
        )

    def is_live(self, now: datetime) -> bool:
        """Whether the grant lets its vendor read now."""
        return self.status == LIVE and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The grant as the customer's export shows it."""
        return {
            "grant_id": self.grant_id,
            "vendor": self.vendor_id,
            "status": self.status,
            "fields": dict(self.fields),
            "given_at": isoformat(self.given_at),
            "expires_at": isoformat(self.expires_at),
            "ended_at": isoformat(self.ended_at) if self.ended_at else None,
            "removed_fields": [{"field": f, "at": isoformat(at)} for f, at in self.removed],
            "terms": list(self.terms),
            "last_access": isoformat(self.last_access) if self.last_access else None,
            "receipts": [
                {"id": r.receipt_id, "event": r.event, "at": isoformat(r.at), "jws": r.jws}
                for r in self.receipts
            ],
        }


def live_grant(doc: Document, vendor_id: str, now: datetime) -> dict[str, Any] | None:
    """The vendor's live grant record in ``doc`` (the record itself, not a copy), if any."""
    for record in doc.get("grants", {}).values():
        if record["vendor"] == vendor_id and is_live(record, now):
            return record  # type: ignore[no-any-return]
    return None


def is_live(record: Mapping[str, Any], now: datetime) -> bool:
    """Whether a grant record is active and not past its end."""
    return bool(record["status"] == LIVE and now < parse_iso(record["expires_at"]))


@lru_cache(maxsize=4096)
def pairwise_subject(index_key: bytes, vault_id: str, vendor_id: str) -> str:
    """The id a vendor knows a vault by: stable for one vendor, unlinkable between them.

    Every profile read answers with it, so recent subjects are remembered; a digest
    depends on nothing but its arguments.
    """
    return keyed_digest(index_key, "pairwise-sub", f"{vendor_id}\x00{vault_id}")[:32]


class GrantObserver(Protocol):
    """Told of every change that takes something away from a vendor (to tell the vendor,
    or to drop what only the grant's tokens needed)."""

    def grant_withdrawn(self, vault_id: str, grant: Grant, event: str) -> None:
        """``grant`` was just narrowed, revoked or expired (``event``)."""
        ...


@dataclass(frozen=True)
class ConsentSettings:
    """Where receipts say they come from."""

    issuer: str
    jurisdiction: str = "EU"


class Consents:
    """Gives, extends, narrows, revokes and expires grants, with receipts and events."""

    def __init__(
        self,
        *,
        store: Store,
        vendors: VendorRegistry,
        signing: SigningKeys,
        index_key: bytes,
        settings: ConsentSettings,
        events: EventSink,
        clock: Clock,
        rng: RandomBytes,
        observers: tuple[GrantObserver, ...] = (),
    ) -> None:
        self._observers = observers
        self._store = store
        self._vendors = vendors
        self._signing = signing
        self._index_key = index_key
        self._settings = settings
        self._events = events
        self._clock = clock
        self._rng = rng

    def subject(self, vault_id: str, vendor_id: str) -> str:
        """The pairwise id a vendor knows this vault by: stable for one vendor, unlinkable
        between vendors."""
        return pairwise_subject(self._index_key, vault_id, vendor_id)

    def pseudonym(self, vault_id: str) -> str:
        """The vault's pseudonym in events (the same as the vault service uses)."""
        return vault_pseudonym(self._index_key, vault_id)

    def give(
        self,
        vault_id: str,
        vendor_id: str,
        fields: Sequence[str],
        *,
        days: int = DEFAULT_DAYS,
        terms: Sequence[str] = (),
        method: str = "OAuth 2.0 consent page",
        purposes: Mapping[str, str] | None = None,
    ) -> Grant:
        """Grant ``fields`` to the vendor for ``days``, extending its live grant if any.

        Each field's purpose is the one the vendor registered, unless ``purposes`` (an
        offer's own, which the customer saw) names another.
        """
        vendor = self._vendors.require_active(vendor_id)
        _check_request(vendor, fields, days)
        stated = dict(purposes or {})
        now = self._clock()
        receipt_id = str(uuid.UUID(bytes=self._rng(16), version=4))
        new_id = self._rng(12).hex()

        def change(doc: Document) -> Document:
            new = copy.deepcopy(doc)
            grants = new.setdefault("grants", {})
            record = live_grant(new, vendor_id, now)
            event = "extended" if record else "given"
            record = record or _new_record(new_id, vendor_id, now, method)
            for name in fields:
                purpose = stated.get(name) or vendor.purpose_for(name)
                held = record["fields"].get(name)
                if held is None or (name in stated and held["purpose"] != purpose):
                    # A field agreed to again for a purpose stated anew (an offer's) is
                    # held for that purpose from now: the receipt says what was agreed.
                    record["fields"][name] = {"purpose": purpose, "at": isoformat(now)}
            record["expires_at"] = isoformat(now + timedelta(days=days))
            record["terms"] = sorted(set(record["terms"]) | set(terms))
            self._add_receipt(record, vault_id, vendor, event, receipt_id, now, (), method)
            grants[record["id"]] = record
            return new

        doc = self._store.update_vault(vault_id, change)
        record = live_grant(doc, vendor_id, now)
        if record is None:
            raise NotFound("the grant ended while it was being given")
        last = record["receipts"][-1]["event"]
        self._emit(f"grant.{last}", vault_id, vendor_id, tuple(fields), actor="customer")
        return Grant.from_record(record)

    def remove_field(self, vault_id: str, grant_id: str, field: str) -> Grant:
        """Withdraw one field; withdrawing the last one revokes the grant."""
        return self.remove_fields(vault_id, grant_id, (field,))

    def remove_fields(self, vault_id: str, grant_id: str, fields: Iterable[str]) -> Grant:
        """Withdraw several fields at once, with one receipt; all of them must be in the
        grant (ValidationError naming those that are not, and nothing changes), and
        withdrawing all that are left revokes it."""
        return self._end(vault_id, grant_id, fields=tuple(dict.fromkeys(fields)))

    def revoke(self, vault_id: str, grant_id: str) -> Grant:
        """Withdraw the whole grant."""
        return self._end(vault_id, grant_id, fields=None)

    def grants(self, vault_id: str) -> list[Grant]:
        """Every grant of the vault, live ones first, newest first; expires what is due."""
        self.expire_due(vault_id)
        doc = self._store.read_vault(vault_id)
        views = [Grant.from_record(r) for r in doc.get("grants", {}).values()]
        return sorted(views, key=lambda g: (g.status != LIVE, -g.given_at.timestamp()))

    def expire_due(self, vault_id: str) -> list[str]:
        """Mark grants past their end as expired, with receipts; return their ids.

        The receipt, the event and the grant's end all carry the moment the grant ended,
        not the moment this noticed it.
        """
        now = self._clock()
        doc = self._store.read_vault(vault_id)
        due = [
            (gid, parse_iso(r["expires_at"]))
            for gid, r in doc.get("grants", {}).items()
            if r["status"] == LIVE and now >= parse_iso(r["expires_at"])
        ]
        for grant_id, ended in due:
            self._finish(vault_id, grant_id, EXPIRED, ended)
        return [grant_id for grant_id, _ in due]

    def expire_all(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Expire every grant past its end in every vault (the server runs this on a
        schedule, so an unused grant's end is recorded and its vendor told); return how
        many ended."""
        vault_ids = list(self._store.vault_ids())
        ended = 0
        for done, vault_id in enumerate(vault_ids, start=1):
            with contextlib.suppress(NotFound):  # Erased meanwhile.
                ended += len(self.expire_due(vault_id))
            if progress is not None:
                progress(done, len(vault_ids))
        return ended

    def _end(self, vault_id: str, grant_id: str, fields: tuple[str, ...] | None) -> Grant:
        now = self._clock()
        doc = self._store.read_vault(vault_id)
        record = doc.get("grants", {}).get(grant_id)
        if record is None or not is_live(record, now):
            raise NotFound("no live grant with that id")
        remaining = set(record["fields"]) - set(fields or record["fields"])
        missing = [name for name in fields or () if name not in record["fields"]]
        if missing:
            shown = ", ".join(name[:64] for name in missing)
            raise ValidationError("field", f"{shown}: not part of this grant")
        if fields is None or not remaining:
            return self._finish(vault_id, grant_id, REVOKED, now)
        return self._narrow(vault_id, grant_id, fields, now)

    def _narrow(
        self, vault_id: str, grant_id: str, fields: tuple[str, ...], now: datetime
    ) -> Grant:
        vendor = self._vendor_record(vault_id, grant_id)
        receipt_id = str(uuid.UUID(bytes=self._rng(16), version=4))

        def change(doc: Document) -> Document:
            new = copy.deepcopy(doc)
            record = _require_live(new, grant_id, now)
            if not set(record["fields"]) - set(fields):
                # Another withdrawal landed since the fields were counted: nothing would
                # be left, so this one ends the grant, as withdrawing the last field does.
                raise _NothingLeft
            for name in fields:
                if record["fields"].pop(name, None) is not None:
                    record["removed"].append({"field": name, "at": isoformat(now)})
            self._add_receipt(record, vault_id, vendor, "narrowed", receipt_id, now, fields)
            return new

        try:
            doc = self._store.update_vault(vault_id, change)
        except _NothingLeft:
            return self._finish(vault_id, grant_id, REVOKED, now)
        self._emit("grant.narrowed", vault_id, vendor.client_id, fields, actor="customer")
        view = Grant.from_record(doc["grants"][grant_id])
        self._tell(vault_id, view, "narrowed")
        return view

    def _finish(self, vault_id: str, grant_id: str, status: str, now: datetime) -> Grant:
        vendor = self._vendor_record(vault_id, grant_id)
        receipt_id = str(uuid.UUID(bytes=self._rng(16), version=4))
        ended_here = [False]

        def change(doc: Document) -> Document:
            new = copy.deepcopy(doc)
            record = new["grants"][grant_id]
            ended_here[0] = record["status"] == LIVE
            if not ended_here[0]:
                return new
            withdrawn = tuple(record["fields"])
            record.update(status=status, ended_at=isoformat(now), codes={}, refresh=None)
            record["epoch"] += 1
            self._add_receipt(record, vault_id, vendor, status, receipt_id, now, withdrawn)
            return new

        doc = self._store.update_vault(vault_id, change)
        record = doc["grants"][grant_id]
        view = Grant.from_record(record)
        if not ended_here[0]:
            return view  # Another request ended it first, and told everyone.
        actor = "customer" if status == REVOKED else "system"
        fields = tuple(record["fields"])
        self._emit(f"grant.{status}", vault_id, vendor.client_id, fields, actor, at=now)
        self._tell(vault_id, view, status)
        return view

    def _tell(self, vault_id: str, grant: Grant, event: str) -> None:
        for observer in self._observers:
            observer.grant_withdrawn(vault_id, grant, event)

    def _vendor_record(self, vault_id: str, grant_id: str) -> Vendor:
        record = self._store.read_vault(vault_id).get("grants", {}).get(grant_id)
        if record is None:
            raise NotFound("no grant with that id")
        vendor = self._vendors.get(record["vendor"])
        if vendor is None:
            raise NotFound("the grant's vendor is not registered")
        return vendor

    def _add_receipt(
        self,
        record: dict[str, Any],
        vault_id: str,
        vendor: Vendor,
        event: str,
        receipt_id: str,
        now: datetime,
        withdrawn: Iterable[str],
        method: str | None = None,
    ) -> None:
        """Add the receipt of ``event``; ``method`` is how this event's consent was
        collected (the grant's first method when not given)."""
        live = event not in (REVOKED, EXPIRED)
        facts = ReceiptFacts(
            receipt_id=receipt_id,
            event=event,
            issued_at=now,
            issuer=self._settings.issuer,
            principal=self.subject(vault_id, vendor.client_id),
            grant_id=record["id"],
            vendor_id=vendor.client_id,
            vendor_name=vendor.client_name,
            vendor_url=vendor.client_uri,
            vendor_contact=vendor.contacts[0] if vendor.contacts else None,
            policy_url=vendor.policy_uri,
            purposes=tuple(
                ReceiptPurpose(name, f["purpose"]) for name, f in record["fields"].items()
            )
            if live
            else (),
            withdrawn=tuple(withdrawn),
            granted_at=parse_iso(record["given_at"]),
            expires_at=parse_iso(record["expires_at"]),
            terms=tuple(record["terms"]),
            collection_method=method or record["method"],
            jurisdiction=self._settings.jurisdiction,
        )
        jws = issue_receipt(facts, self._signing.current())
        record["receipts"].append(
            {"id": receipt_id, "event": event, "at": isoformat(now), "jws": jws}
        )

    def _emit(
        self,
        kind: str,
        vault_id: str,
        vendor_id: str,
        fields: tuple[str, ...],
        actor: str,
        at: datetime | None = None,
    ) -> None:
        event = Event(
            kind,
            at or self._clock(),
            actor,
            vault=self.pseudonym(vault_id),
            vendor=vendor_id,
            fields=fields,
        )
        self._events.emit(event)


def _new_record(grant_id: str, vendor_id: str, now: datetime, method: str) -> dict[str, Any]:
    return {
        "id": grant_id,
        "vendor": vendor_id,
        "status": LIVE,
        "given_at": isoformat(now),
        "expires_at": isoformat(now),
        "ended_at": None,
        "method": method,
        "fields": {},
        "removed": [],
        "terms": [],
        "receipts": [],
        "epoch": 0,
        "refresh": None,
        "codes": {},
        "revoked_tokens": {},
        "last_access": None,
    }


class _NothingLeft(Exception):
    """A narrowing would leave its grant without fields."""


def _require_live(doc: Document, grant_id: str, now: datetime) -> dict[str, Any]:
    record = doc.get("grants", {}).get(grant_id)
    if record is None or not is_live(record, now):
        raise NotFound("no live grant with that id")
    return record  # type: ignore[no-any-return]


def _check_request(vendor: Vendor, fields: Sequence[str], days: int) -> None:
    if not fields:
        raise ValidationError("fields", "choose at least one field to share")
    unknown = [f for f in fields if f not in vendor.profile_fields]
    if unknown:
        raise ValidationError("fields", f"the vendor did not register {unknown[0]!r}")
    if days not in DURATION_DAYS:
        choices = ", ".join(map(str, DURATION_DAYS))
        raise ValidationError("duration", f"must be one of {choices} days")


def _maybe_time(text: str | None) -> datetime | None:
    return parse_iso(text) if text else None
