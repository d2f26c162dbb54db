"""Intents: a customer says what they are looking for, and vendors answer with offers.

An intent ("a camera under 500 EUR, in Bavaria, this month") is the customer's own words,
so it is sealed with the vault's data key like a profile field: erasure shreds it, and the
shared ``intents`` table holds only the vault id, its dates and the ciphertext. Vendors
with ``intents:read`` list open intents with no identity attached (each has a random id);
an answer to one is an offer delivered to that customer's inbox alone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from keys.envelope import RandomBytes
from vault.clock import Clock, isoformat, parse_iso
from vault.datakeys import DataKeys
from vault.errors import NotFound, QuotaExceeded, ValidationError
from vault.events import Event, EventSink, vault_pseudonym
from vault.fields import checked_text
from vault.profile import ProfileCipher
from vault.service import FollowsNoProfile
from vault.storage.base import Document, Store

TABLE = "intents"
RECORD_FORMAT = 1
LABEL = "intent"
OPEN, WITHDRAWN = "open", "withdrawn"
CATEGORIES = (
    "electronics",
    "home",
    "fashion",
    "travel",
    "food",
    "health",
    "finance",
    "services",
    "other",
)
DURATION_DAYS = (7, 14, 30, 60, 90)
MAX_TEXT = 500
MAX_REGION = 100
MAX_ANSWERS = 20
"""The most vendor answers one intent takes, so registering vendors cannot flood an inbox."""
_INTENT_ID = re.compile(r"int_[0-9a-f]{24}")


@dataclass(frozen=True)
class Intent:
    """An intent as its customer and vendors see it (vendors never see ``vault_id``)."""

    intent_id: str
    category: str
    text: str
    budget: int | None
    currency: str | None
    region: str | None
    published_at: datetime
    expires_at: datetime
    status: str

    def is_open(self, now: datetime) -> bool:
        """Whether vendors may still see and answer it."""
        return self.status == OPEN and now < self.expires_at

    def to_json(self) -> dict[str, Any]:
        """The intent as the vendor API and the export show it."""
        return {
            "id": self.intent_id,
            "category": self.category,
            "text": self.text,
            "budget": None
            if self.budget is None
            else {"amount": self.budget, "currency": self.currency},
            "region": self.region,
            "published_at": isoformat(self.published_at),
            "expires_at": isoformat(self.expires_at),
            "status": self.status,
        }


class IntentBoard(FollowsNoProfile):
    """Publishes, lists and withdraws intents."""

    def __init__(
        self,
        *,
        store: Store,
        datakeys: DataKeys,
        index_key: bytes,
        events: EventSink,
        clock: Clock,
        rng: RandomBytes = os.urandom,
    ) -> None:
        self._store = store
        self._datakeys = datakeys
        self._index_key = index_key
        self._events = events
        self._clock = clock
        self._rng = rng

    def publish(self, vault_id: str, form: Mapping[str, object]) -> Intent:
        """Check and publish an intent; ValidationError names the field at fault."""
        content = _content(form)
        days = _days(form.get("days", 30))
        now = self._clock()
        intent_id = "int_" + self._rng(12).hex()
        sealed = self._cipher(vault_id).seal_note(LABEL, json.dumps(content))
        record = {
            "format": RECORD_FORMAT,
            "vault": vault_id,
            "sealed": sealed,
            "published_at": isoformat(now),
            "expires_at": isoformat(now + timedelta(days=days)),
            "status": OPEN,
        }
        self._store.insert(TABLE, intent_id, record)
        self._emit("intent.published", vault_id, intent_id)
        return self._view(intent_id, record)

    def withdraw(self, vault_id: str, intent_id: str) -> None:
        """End one of the customer's intents (NotFound if it is not theirs)."""

        def change(record: Document | None) -> Document | None:
            if record is None or record["vault"] != vault_id:
                raise NotFound("no such intent of yours")
            return {**record, "status": WITHDRAWN}

        self._store.update(TABLE, _checked_id(intent_id), change)
        self._emit("intent.withdrawn", vault_id, intent_id)

    def mine(self, vault_id: str) -> list[Intent]:
        """The customer's intents, newest first."""
        found = [self._view(k, r) for k, r in self._store.scan(TABLE) if r["vault"] == vault_id]
        return sorted(found, key=lambda i: i.published_at, reverse=True)

    def open_intents(self) -> list[Intent]:
        """Every open intent, newest first, for vendors (no identity attached)."""
        now = self._clock()
        found = []
        for key, record in self._store.scan(TABLE):
            if record["status"] != OPEN or parse_iso(record["expires_at"]) <= now:
                continue
            try:
                found.append(self._view(key, record))
            except NotFound:
                continue  # Its vault is being erased.
        return sorted(found, key=lambda i: i.published_at, reverse=True)

    def open_intent(self, intent_id: str) -> tuple[str, Intent]:
        """The vault and view of an open intent; NotFound if there is none."""
        record = self._store.get(TABLE, _checked_id(intent_id))
        if record is None:
            raise NotFound("no open intent with that id")
        view = self._view(intent_id, record)
        if not view.is_open(self._clock()):
            raise NotFound("no open intent with that id")
        return record["vault"], view

    def take_answer(self, intent_id: str) -> None:
        """Count one vendor answer to an intent; QuotaExceeded once it has MAX_ANSWERS."""
        full = [False]
        now = self._clock()

        def change(record: Document | None) -> Document | None:
            # Open is checked again here, in the locked write: a withdrawal or the end
            # that landed since the vendor looked stops the answer.
            if record is None or record["status"] != OPEN or parse_iso(record["expires_at"]) <= now:
                raise NotFound("no open intent with that id")
            answers = int(record.get("answers", 0))
            full[0] = answers >= MAX_ANSWERS
            return record if full[0] else {**record, "answers": answers + 1}

        self._store.update(TABLE, _checked_id(intent_id), change)
        if full[0]:
            raise QuotaExceeded(f"this intent has had the most answers it takes ({MAX_ANSWERS})")

    def forget(self, vault_id: str) -> None:
        """Remove every intent of a vault (on erasure)."""
        for key, record in list(self._store.scan(TABLE)):
            if record["vault"] == vault_id:
                self._store.delete(TABLE, key)

    def vault_erasing(self, vault_id: str) -> None:
        """Forget the vault's intents (VaultObserver)."""
        self.forget(vault_id)

    def _view(self, intent_id: str, record: Document) -> Intent:
        content = json.loads(self._cipher(record["vault"]).open_note(LABEL, record["sealed"]))
        return Intent(
            intent_id=intent_id,
            category=content["category"],
            text=content["text"],
            budget=content.get("budget"),
            currency=content.get("currency"),
            region=content.get("region"),
            published_at=parse_iso(record["published_at"]),
            expires_at=parse_iso(record["expires_at"]),
            status=record["status"],
        )

    def _cipher(self, vault_id: str) -> ProfileCipher:
        return ProfileCipher(vault_id, self._datakeys.open(vault_id), self._rng)

    def _emit(self, kind: str, vault_id: str, intent_id: str) -> None:
        vault = vault_pseudonym(self._index_key, vault_id)
        detail = {"intent": intent_id}
        self._events.emit(Event(kind, self._clock(), "customer", vault=vault, detail=detail))


def _content(form: Mapping[str, object]) -> dict[str, Any]:
    category = form.get("category")
    if category not in CATEGORIES:
        raise ValidationError("category", f"must be one of {', '.join(CATEGORIES)}")
    text = _text(form.get("text"), "text", MAX_TEXT, required=True)
    region = _text(form.get("region"), "region", MAX_REGION, required=False)
    budget, currency = _budget(form.get("budget"), form.get("currency"))
    return {
        "category": category,
        "text": text,
        "region": region,
        "budget": budget,
        "currency": currency,
    }


def _text(value: object, field: str, limit: int, *, required: bool) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(field, "is required")
        return None
    return checked_text(value, field, limit, multiline=True)


def _budget(amount: object, currency: object) -> tuple[int | None, str | None]:
    if amount is None or amount == "":
        return None, None
    try:
        value = int(str(amount).strip())
    except ValueError:
        raise ValidationError("budget", "must be a whole number") from None
    if not 1 <= value <= 1_000_000_000:
        raise ValidationError("budget", "must be from 1 to 1,000,000,000")
    code = str(currency or "").strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise ValidationError("currency", "must be a three-letter currency code such as EUR")
    return value, code


def _days(value: object) -> int:
    try:
        days = int(str(value))
    except ValueError:
        days = 0
    if days not in DURATION_DAYS:
        raise ValidationError("days", f"must be one of {', '.join(map(str, DURATION_DAYS))}")
    return days


def _checked_id(intent_id: str) -> str:
    if _INTENT_ID.fullmatch(intent_id) is None:
        raise NotFound("no intent with that id")
    return intent_id
