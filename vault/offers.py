"""Offers: a vendor reaches a segment, the customers decide, and only consent flows back.

A vendor with ``offers:send`` sends an offer (title, message, expiry, and the fields it
would like, each with a purpose) to a segment predicate, or in answer to one customer's
intent. The vault puts it in the *mailbox* of each matching customer who

* opted in to at least one contact channel (email, SMS, phone, post),
* has not blocked the vendor, and
* has had fewer offers from this vendor this calendar month than their cap
  (``max_offers_per_vendor_per_month``; ``VRM_OFFER_CAP_DEFAULT`` when unset).

The vendor learns only how many received it (suppressed below k, with the same seeded
noise as segment counts) and, later, how many viewed, accepted and declined (each
suppressed below k). A customer who accepts chooses the fields and the duration on a page
like the OAuth consent page; that gives a grant with its signed receipt, and an
*acceptance code* the vendor exchanges for tokens at the token endpoint (grant type
``urn:vrm-vault:params:oauth:grant-type:offer-acceptance``), delivered by signed webhook
and listed for polling.

A mailbox is one record per vault in the shared ``mailboxes`` table, sealed with the
vault's data key (it holds the customer's channel choices and who they blocked), so
erasure shreds it too. Delivering to many vaults writes the table shard by shard, not a
vault file per customer. The offers table holds the vendor's own text and counters, never
the predicate: its values could be a customer's.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from keys.envelope import RandomBytes
from vault.clock import Clock, isoformat, parse_iso
from vault.datakeys import DataKeys
from vault.errors import AlreadyExists, NotFound, ValidationError
from vault.events import Event, EventSink, vault_pseudonym
from vault.fields import checked_text
from vault.grants import DEFAULT_DAYS, Consents, Grant, pairwise_subject
from vault.intents import IntentBoard
from vault.profile import ProfileCipher
from vault.segment_counts import Count, SegmentCounts
from vault.segment_query import Predicate, attributes_of
from vault.segments import SegmentIndex
from vault.storage.base import Document, Store
from vault.vendors import PROFILE_SCOPE_PREFIX, Vendor, VendorRegistry
from vault.webhooks import Webhooks

MAILBOXES = "mailboxes"
OFFERS = "offers"
ANSWERS = "intent_answers"
"""One record per (intent, vendor): a vendor answers an intent once."""
LABEL = "mailbox"
RECORD_FORMAT = 1
CHANNELS = ("email", "sms", "phone", "post")
NEW, VIEWED, ACCEPTED, DECLINED = "new", "viewed", "accepted", "declined"
MAX_TITLE = 120
MAX_MESSAGE = 2000
MAX_PURPOSE = 500
OFFER_DAYS = range(1, 91)
DEFAULT_OFFER_DAYS = 30
ACCEPTANCE_TTL = 7 * 24 * 3600
"""How long an acceptance code waits for the vendor to exchange it (seconds)."""
_OFFER_ID = re.compile(r"off_[0-9a-f]{24}")
Progress = Callable[[int, int], None]
"""Told ``done`` out of ``total`` as a long delivery goes on."""
DELIVERY_CHUNK = 4096
"""Mailboxes written per locked pass: large enough that each of the table's shard files is
rewritten about once per pass, small enough to hold those locks only briefly."""


class CodeIssuer(Protocol):
    """Issues the single-use code a vendor exchanges for a new grant's tokens."""

    def acceptance_code(
        self, vault_id: str, grant: Grant, client_id: str, scopes: tuple[str, ...], ttl: int
    ) -> str:
        """A code for ``grant`` that lives ``ttl`` seconds."""
        ...


@dataclass(frozen=True)
class OfferRequest:
    """An offer's content, checked."""

    title: str
    message: str
    days: int
    fields: Mapping[str, str]


@dataclass(frozen=True)
class Offer:
    """An offer as its vendor sent it, with its counters."""

    offer_id: str
    vendor_id: str
    title: str
    message: str
    fields: Mapping[str, str]
    created_at: datetime
    expires_at: datetime
    intent_id: str | None

    def is_open(self, now: datetime) -> bool:
        """Whether it can still be accepted."""
        return now < self.expires_at

    @classmethod
    def from_record(cls, offer_id: str, record: Mapping[str, Any]) -> Offer:
        """Read the offers table's record."""
        return cls(
            offer_id=offer_id,
            vendor_id=record["vendor"],
            title=record["title"],
            message=record["message"],
            fields=dict(record["fields"]),
            created_at=parse_iso(record["created_at"]),
            expires_at=parse_iso(record["expires_at"]),
            intent_id=record.get("intent"),
        )


@dataclass(frozen=True)
class InboxItem:
    """One offer in a customer's inbox."""

    offer: Offer
    status: str
    delivered_at: datetime
    notify_after: datetime | None


@dataclass(frozen=True)
class Sent:
    """What the sending vendor is told."""

    offer_id: str
    delivered: Count


def parse_offer(body: Mapping[str, object], vendor: Vendor) -> OfferRequest:
    """Check an offer's content against the vendor's registration; ValidationError names
    the member at fault."""
    title = checked_text(body.get("title"), "title", MAX_TITLE)
    message = checked_text(body.get("message"), "message", MAX_MESSAGE, multiline=True)
    days = body.get("expires_in_days", DEFAULT_OFFER_DAYS)
    if isinstance(days, bool) or not isinstance(days, int) or days not in OFFER_DAYS:
        raise ValidationError("expires_in_days", "must be a whole number of days from 1 to 90")
    fields = body.get("fields")
    if not isinstance(fields, Mapping) or not fields:
        raise ValidationError("fields", "must be an object from field name to purpose")
    checked: dict[str, str] = {}
    for name, purpose in fields.items():
        if name not in vendor.profile_fields:
            shown = str(name)[:60]
            raise ValidationError("fields", f"{shown!r} is not a field this vendor registered")
        checked[name] = checked_text(purpose, f"fields.{name}", MAX_PURPOSE)
    return OfferRequest(title, message, days, checked)


class Offers:
    """Sends offers, keeps mailboxes, and turns an acceptance into a grant."""

    def __init__(
        self,
        *,
        store: Store,
        vendors: VendorRegistry,
        index: SegmentIndex,
        counts: SegmentCounts,
        consents: Consents,
        codes: CodeIssuer,
        intents: IntentBoard,
        datakeys: DataKeys,
        webhooks: Webhooks,
        index_key: bytes,
        events: EventSink,
        clock: Clock,
        cap_default: int = 4,
        rng: RandomBytes = os.urandom,
    ) -> None:
        self._store = store
        self._vendors = vendors
        self._index = index
        self._counts = counts
        self._consents = consents
        self._codes = codes
        self._intents = intents
        self._datakeys = datakeys
        self._webhooks = webhooks
        self._index_key = index_key
        self._events = events
        self._clock = clock
        self._cap_default = cap_default
        self._rng = rng

    # Vendors.

    def send(
        self,
        vendor_id: str,
        predicate: Predicate,
        request: OfferRequest,
        progress: Progress | None = None,
    ) -> Sent:
        """Deliver an offer to every matching customer who allows it (QuotaExceeded when
        the vendor's daily budget of counts is spent)."""
        offer = self._new_offer(vendor_id, request, intent_id=None)
        # A send tells the vendor a count too, so it draws on the same daily budget, and
        # its noise is keyed on the set reached alone: sending again to the same people
        # cannot average the noise away.
        self._counts.spend(vendor_id)
        matched = sorted(self._index.members(predicate))
        delivered = self._deliver(offer, matched, capped=True, progress=progress)
        shown = self._counts.protect(delivered)
        self._save_offer(offer, delivered=len(delivered), shown=shown.count)
        segment = " ".join(attributes_of(predicate))
        self._emit_sent(offer, {"segment": segment, "suppressed": shown.suppressed})
        return Sent(offer.offer_id, shown)

    def answer_intent(self, vendor_id: str, intent_id: str, request: OfferRequest) -> str:
        """Deliver an offer to the customer behind an open intent (once per vendor)."""
        vault_id, _ = self._intents.open_intent(intent_id)
        offer = self._new_offer(vendor_id, request, intent_id=intent_id)
        answer = {"offer": offer.offer_id, "at": isoformat(offer.created_at)}
        try:
            self._store.insert(ANSWERS, f"{intent_id}:{vendor_id}", answer)
        except AlreadyExists:
            raise AlreadyExists("this vendor has already answered that intent") from None
        self._intents.take_answer(intent_id)
        delivered = self._deliver(offer, [vault_id], capped=False)
        self._save_offer(offer, delivered=len(delivered), shown=None)
        self._emit_sent(offer, {"intent": intent_id})
        return offer.offer_id

    def stats(self, vendor_id: str, offer_id: str) -> dict[str, Any]:
        """The offer's numbers as its vendor may see them: each suppressed below k; views and
        declines rounded down to a multiple of k (acceptances are listed anyway)."""
        offer, record = self._vendor_offer(vendor_id, offer_id)
        k = self._counts.policy.k

        def shown(n: int) -> int | None:
            return n if n >= k else None

        def coarse(n: int) -> int | None:
            # Rounded down to a multiple of k, so one customer's view or decline does not
            # show as a step the vendor could time against an acceptance.
            return n - n % k if n >= k else None

        answer: dict[str, Any] = {
            "id": offer.offer_id,
            "title": offer.title,
            "fields": dict(offer.fields),
            "created_at": int(offer.created_at.timestamp()),
            "expires_at": int(offer.expires_at.timestamp()),
            "delivered": record["delivered_shown"],
            "viewed": coarse(record["viewed"]),
            "accepted": shown(record["accepted"]),
            "declined": coarse(record["declined"]),
            "suppressed_below": k,
        }
        if offer.intent_id:
            answer["intent"] = offer.intent_id
        return answer

    def acceptances(self, vendor_id: str, offer_id: str) -> list[dict[str, Any]]:
        """Every acceptance of the offer: the customer's pairwise id, what they granted,
        and the code to exchange for tokens (for vendors that poll instead of a webhook)."""
        _, record = self._vendor_offer(vendor_id, offer_id)
        return [dict(a) for a in record["acceptances"]]

    # Customers.

    def inbox(self, vault_id: str) -> list[InboxItem]:
        """The customer's offers, newest first."""
        box = self._open_box(vault_id)
        items = []
        for entry in box["items"]:
            record = self._store.get(OFFERS, entry["offer"])
            if record is None:
                continue
            items.append(_item(entry, Offer.from_record(entry["offer"], record)))
        # Newest first; of offers delivered in the same instant, the later one first.
        items.reverse()
        return sorted(items, key=lambda i: i.delivered_at, reverse=True)

    def item(self, vault_id: str, offer_id: str) -> InboxItem:
        """One offer of the customer's, as it stands (NotFound if it is not theirs)."""
        return self._item_of(vault_id, offer_id)

    def open(self, vault_id: str, offer_id: str) -> InboxItem:
        """One offer of the customer's; the first opening counts as viewed."""
        item = self._item_of(vault_id, offer_id)
        if item.status == NEW and self._answer(vault_id, offer_id, VIEWED, from_=(NEW,)):
            self._count(offer_id, "viewed")
            self._emit("offer.viewed", vault_id, item.offer)
            item = replace(item, status=VIEWED)
        return item

    def accept(
        self,
        vault_id: str,
        offer_id: str,
        fields: Sequence[str],
        *,
        days: int = DEFAULT_DAYS,
        terms: Sequence[str] = (),
    ) -> Grant:
        """Grant the chosen fields to the offer's vendor, and tell the vendor how to get
        tokens for them."""
        item = self._item_of(vault_id, offer_id)
        offer = item.offer
        if item.status in (ACCEPTED, DECLINED):
            raise ValidationError("offer", f"was already {item.status}")
        if not offer.is_open(self._clock()):
            raise ValidationError("offer", "has expired")
        chosen = [f for f in offer.fields if f in set(fields)]
        if not chosen or len(chosen) != len(set(fields)):
            raise ValidationError("fields", "choose at least one of the fields the offer asks for")
        purposes = {name: offer.fields[name] for name in chosen}
        # The answer is taken atomically first, so two accepts (or an accept and a
        # decline) at once cannot both go through; it is given back if the grant fails.
        before = self._answer(vault_id, offer_id, ACCEPTED)
        if before is None:
            raise ValidationError("offer", "was already answered")
        try:
            grant = self._consents.give(
                vault_id,
                offer.vendor_id,
                chosen,
                days=days,
                terms=terms,
                method="offer acceptance",
                purposes=purposes,
            )
        except BaseException:
            self._set_status(vault_id, offer_id, before)
            raise
        scopes = tuple(PROFILE_SCOPE_PREFIX + f for f in grant.fields)
        code = self._codes.acceptance_code(vault_id, grant, offer.vendor_id, scopes, ACCEPTANCE_TTL)
        now = self._clock()
        acceptance = {
            "sub": pairwise_subject(self._index_key, vault_id, offer.vendor_id),
            "scope": " ".join(scopes),
            "code": code,
            "code_expires_at": int(now.timestamp()) + ACCEPTANCE_TTL,
            "accepted_at": int(now.timestamp()),
        }
        self._count(offer_id, "accepted", acceptance=acceptance)
        self._webhooks.notify(
            offer.vendor_id, "offer.accepted", {"offer": offer_id, **acceptance}, vault_id=vault_id
        )
        self._emit("offer.accepted", vault_id, offer, fields=tuple(chosen))
        return grant

    def decline(self, vault_id: str, offer_id: str) -> bool:
        """Say no to an offer; the vendor learns only a (suppressed) count. False if it
        was answered already (accepted, or declined before): nothing changes then."""
        item = self._item_of(vault_id, offer_id)
        if self._answer(vault_id, offer_id, DECLINED) is None:
            return False
        self._count(offer_id, "declined")
        self._emit("offer.declined", vault_id, item.offer)
        return True

    def block(self, vault_id: str, vendor_id: str) -> None:
        """No more offers from this vendor. Its offers already here are closed as declined,
        but not counted as declines: a block must not show in the vendor's numbers as a
        step shared by every offer this customer had."""
        if self._vendors.get(vendor_id) is None:
            raise NotFound("no such vendor")

        def change(content: dict[str, Any]) -> dict[str, Any]:
            # One write blocks the vendor and closes its waiting offers, so an offer
            # delivered while the customer blocked cannot stay open.
            content["blocked"] = sorted(set(content["blocked"]) | {vendor_id})
            for entry in content["items"]:
                if entry["vendor"] == vendor_id and entry["status"] in (NEW, VIEWED):
                    entry["status"] = DECLINED
            return content

        self._change_box(vault_id, change)
        self._events.emit(
            Event(
                "vendor.blocked",
                self._clock(),
                "customer",
                vault=vault_pseudonym(self._index_key, vault_id),
                vendor=vendor_id,
            )
        )

    def unblock(self, vault_id: str, vendor_id: str) -> None:
        """Allow offers from this vendor again."""

        def change(content: dict[str, Any]) -> dict[str, Any]:
            content["blocked"] = [v for v in content["blocked"] if v != vendor_id]
            return content

        self._change_box(vault_id, change)

    def blocked(self, vault_id: str) -> list[str]:
        """The vendors the customer blocked."""
        return list(self._open_box(vault_id)["blocked"])

    def export(self, vault_id: str) -> dict[str, Any]:
        """The mailbox, decrypted, for the customer's export."""
        box = self._open_box(vault_id)
        return {
            "channels": box["channels"],
            "blocked_vendors": box["blocked"],
            "offers": [
                {
                    "offer": i.offer.offer_id,
                    "vendor": i.offer.vendor_id,
                    "title": i.offer.title,
                    "message": i.offer.message,
                    "fields": dict(i.offer.fields),
                    "status": i.status,
                    "delivered_at": isoformat(i.delivered_at),
                }
                for i in self.inbox(vault_id)
            ],
        }

    # VaultObserver: the mailbox follows the customer's channel preferences.

    def vault_changed(
        self,
        vault_id: str,
        doc: Document,
        profile: Mapping[str, Any],
        changed: frozenset[str],
    ) -> None:
        """Copy the channel choices into the (sealed) mailbox when they change."""
        if "channel_preferences" not in changed:
            return
        prefs = profile.get("channel_preferences") or {}
        revision = int(doc.get("rev", 0))

        def change(content: dict[str, Any]) -> dict[str, Any]:
            if int(content.get("rev", 0)) > revision:
                return content  # A later write's choices are here already.
            content["channels"] = [c for c in CHANNELS if prefs.get(c)]
            content["quiet_hours"] = prefs.get("quiet_hours")
            content["cap"] = prefs.get("max_offers_per_vendor_per_month")
            content["rev"] = revision
            return content

        self._change_box(vault_id, change)

    def follows(self, changed: frozenset[str]) -> bool:
        """The mailbox follows the channel preferences."""
        return "channel_preferences" in changed

    def vault_erasing(self, vault_id: str) -> None:
        """Remove the mailbox, and the vault's acceptances from the offers it accepted
        (the pairwise id and the unused code must not outlive the vault)."""
        for entry in self._open_box(vault_id)["items"]:
            if entry["status"] == ACCEPTED:
                sub = pairwise_subject(self._index_key, vault_id, entry["vendor"])
                self._drop_acceptance(entry["offer"], sub)
        self._store.delete(MAILBOXES, vault_id)

    def _drop_acceptance(self, offer_id: str, sub: str) -> None:
        def change(record: Document | None) -> Document | None:
            if record is None:
                return None
            kept = [a for a in record["acceptances"] if a["sub"] != sub]
            return {**record, "acceptances": kept}

        self._store.update(OFFERS, offer_id, change)

    # Internals.

    def _new_offer(self, vendor_id: str, request: OfferRequest, intent_id: str | None) -> Offer:
        self._vendors.require_active(vendor_id)
        now = self._clock()
        return Offer(
            offer_id="off_" + self._rng(12).hex(),
            vendor_id=vendor_id,
            title=request.title,
            message=request.message,
            fields=dict(request.fields),
            created_at=now,
            expires_at=now + timedelta(days=request.days),
            intent_id=intent_id,
        )

    def _save_offer(self, offer: Offer, *, delivered: int, shown: int | None) -> None:
        record = {
            "format": RECORD_FORMAT,
            "vendor": offer.vendor_id,
            "title": offer.title,
            "message": offer.message,
            "fields": dict(offer.fields),
            "created_at": isoformat(offer.created_at),
            "expires_at": isoformat(offer.expires_at),
            "intent": offer.intent_id,
            "delivered": delivered,
            "delivered_shown": shown,
            "viewed": 0,
            "accepted": 0,
            "declined": 0,
            "acceptances": [],
        }
        self._store.insert(OFFERS, offer.offer_id, record)

    def _deliver(
        self,
        offer: Offer,
        vault_ids: Sequence[str],
        *,
        capped: bool,
        progress: Progress | None = None,
    ) -> list[str]:
        """Put the offer in each allowing mailbox; return the vaults it reached."""
        reached: list[str] = []
        for start in range(0, len(vault_ids), DELIVERY_CHUNK):
            chunk = vault_ids[start : start + DELIVERY_CHUNK]
            reached += self._deliver_chunk(offer, chunk, capped)
            if progress is not None:
                progress(min(start + DELIVERY_CHUNK, len(vault_ids)), len(vault_ids))
        return reached

    def _deliver_chunk(self, offer: Offer, vault_ids: Sequence[str], capped: bool) -> list[str]:
        ciphers = {}
        for vault_id in vault_ids:
            try:
                ciphers[vault_id] = self._cipher(vault_id)
            except NotFound:
                continue  # Erased since it was counted.
        now = self._clock()
        reached: list[str] = []

        def change(current: Mapping[str, Document]) -> dict[str, Document | None]:
            reached.clear()
            out: dict[str, Document | None] = {}
            for vault_id, cipher in ciphers.items():
                record = current.get(vault_id)
                if record is None and capped:
                    continue  # No mailbox: the customer never opted in to a channel.
                content = _opened(cipher, record)
                if not self._allows(content, offer, now, capped):
                    continue
                content["items"].append(_entry(offer, content, now))
                out[vault_id] = _sealed(cipher, content)
                reached.append(vault_id)
            return out

        self._store.update_many(MAILBOXES, list(ciphers), change)
        return list(reached)

    def _allows(self, box: Mapping[str, Any], offer: Offer, now: datetime, capped: bool) -> bool:
        if offer.vendor_id in box["blocked"]:
            return False
        if not capped:
            return True
        if not box["channels"]:
            return False
        cap = box.get("cap")
        cap = self._cap_default if cap is None else cap
        month = now.strftime("%Y-%m")
        sent = sum(
            1
            for e in box["items"]
            if e["vendor"] == offer.vendor_id and e["at"][:7] == month and not e.get("intent")
        )
        return bool(sent < cap)

    def _item_of(self, vault_id: str, offer_id: str) -> InboxItem:
        for entry in self._open_box(vault_id)["items"]:
            if entry["offer"] == offer_id:
                record = self._store.get(OFFERS, offer_id)
                if record is None:
                    break
                return _item(entry, Offer.from_record(offer_id, record))
        raise NotFound("no such offer in your inbox")

    def _answer(
        self, vault_id: str, offer_id: str, status: str, from_: tuple[str, ...] = (NEW, VIEWED)
    ) -> str | None:
        """Move an offer whose status is one of ``from_`` (by default: not answered yet) to
        ``status`` atomically; return its status before, or None if it was not in ``from_``."""
        before: list[str] = []

        def change(content: dict[str, Any]) -> dict[str, Any]:
            before.clear()
            for entry in content["items"]:
                if entry["offer"] == offer_id and entry["status"] in from_:
                    before.append(entry["status"])
                    entry["status"] = status
            return content

        self._change_box(vault_id, change)
        return before[0] if before else None

    def _set_status(self, vault_id: str, offer_id: str, status: str) -> None:
        def change(content: dict[str, Any]) -> dict[str, Any]:
            for entry in content["items"]:
                if entry["offer"] == offer_id:
                    entry["status"] = status
            return content

        self._change_box(vault_id, change)

    def _count(self, offer_id: str, counter: str, acceptance: Document | None = None) -> None:
        def change(record: Document | None) -> Document | None:
            if record is None:
                return None
            new = copy.deepcopy(record)
            new[counter] += 1
            if acceptance is not None:
                new["acceptances"].append(acceptance)
            return new

        self._store.update(OFFERS, offer_id, change)

    def _vendor_offer(self, vendor_id: str, offer_id: str) -> tuple[Offer, Document]:
        record = self._store.get(OFFERS, offer_id) if _is_offer_id(offer_id) else None
        if record is None or record["vendor"] != vendor_id:
            raise NotFound("no offer of yours with that id")
        return Offer.from_record(offer_id, record), record

    def _open_box(self, vault_id: str) -> dict[str, Any]:
        record = self._store.get(MAILBOXES, vault_id)
        return _empty_box() if record is None else _opened(self._cipher(vault_id), record)

    def _change_box(self, vault_id: str, edit: Any) -> None:
        cipher = self._cipher(vault_id)

        def change(record: Document | None) -> Document:
            return _sealed(cipher, edit(_opened(cipher, record)))

        self._store.update(MAILBOXES, vault_id, change)

    def _cipher(self, vault_id: str) -> ProfileCipher:
        return ProfileCipher(vault_id, self._datakeys.open(vault_id), self._rng)

    def _emit_sent(self, offer: Offer, detail: Mapping[str, str | bool]) -> None:
        """The vendor's ``offer.sent`` event: attribute names and counts, never values."""
        event = Event(
            "offer.sent",
            self._clock(),
            "vendor",
            vendor=offer.vendor_id,
            fields=tuple(offer.fields),
            detail={"offer": offer.offer_id, **detail},
        )
        self._events.emit(event)

    def _emit(self, kind: str, vault_id: str, offer: Offer, fields: Iterable[str] = ()) -> None:
        self._events.emit(
            Event(
                kind,
                self._clock(),
                "customer",
                vault=vault_pseudonym(self._index_key, vault_id),
                vendor=offer.vendor_id,
                fields=tuple(fields),
                detail={"offer": offer.offer_id},
            )
        )


def _empty_box() -> dict[str, Any]:
    return {"channels": [], "quiet_hours": None, "cap": None, "blocked": [], "items": []}


def _opened(cipher: ProfileCipher, record: Document | None) -> dict[str, Any]:
    """A mailbox record's content (an empty mailbox for no record)."""
    if record is None:
        return _empty_box()
    content: dict[str, Any] = json.loads(cipher.open_note(LABEL, record["sealed"]))
    return content


def _sealed(cipher: ProfileCipher, content: Mapping[str, Any]) -> Document:
    return {"format": RECORD_FORMAT, "sealed": cipher.seal_note(LABEL, json.dumps(content))}


def _entry(offer: Offer, box: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "offer": offer.offer_id,
        "vendor": offer.vendor_id,
        "at": isoformat(now),
        "status": NEW,
    }
    if offer.intent_id:
        entry["intent"] = offer.intent_id
    after = quiet_until(box.get("quiet_hours"), now)
    if after is not None:
        entry["notify_after"] = isoformat(after)
    return entry


def quiet_until(hours: Mapping[str, str] | None, now: datetime) -> datetime | None:
    """When the customer's quiet hours end, if ``now`` falls inside them (else None).

    A notification of a new offer waits until then; the offer is in the inbox at once.
    """
    if not hours:
        return None
    local = now.astimezone(ZoneInfo(hours["timezone"]))
    start, end = (tuple(map(int, hours[k].split(":"))) for k in ("start", "end"))
    minute = (local.hour, local.minute)
    inside = start <= minute < end if start < end else minute >= start or minute < end
    if not inside:
        return None
    ends = local.replace(hour=end[0], minute=end[1], second=0, microsecond=0)
    if ends <= local:
        ends += timedelta(days=1)
    return ends


def _item(entry: Mapping[str, Any], offer: Offer) -> InboxItem:
    after = entry.get("notify_after")
    notify = parse_iso(after) if after else None
    return InboxItem(offer, entry["status"], parse_iso(entry["at"]), notify)


def _is_offer_id(offer_id: str) -> bool:
    return _OFFER_ID.fullmatch(offer_id) is not None
