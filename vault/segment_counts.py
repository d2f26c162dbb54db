"""Counting a segment for a vendor, without letting the count single anyone out.

Three defences, together:

* **Suppression**: a count below ``k`` (``VRM_SEGMENT_K``, default 10) is answered
  ``{"count": null, "suppressed": true}``, and so is one whose noisy value falls below k.
* **Seeded noise against differencing**: two overlapping queries whose true counts differ
  by one person (say "interests: cycling" and "interests: cycling, region not X") would
  reveal that person's attributes from the difference. Every count shown has Laplace
  noise added (scale ``VRM_SEGMENT_NOISE``, default 2; 0 turns it off), drawn from a keyed
  hash of the exact *set* of matching vaults alone. Asking the same set again, by any
  wording and as any vendor, gives the same answer, so repeating a query cannot average
  the noise away; two sets that differ by one person give independently noisy counts, so their
  difference no longer says whether that person is in.
* **A daily budget** (``VRM_SEGMENT_DAILY_QUERIES``, default 1,000 per vendor) bounds how
  many different pairs a vendor can average over.

Every query is an audit event naming the vendor and the attributes asked about, never the
values compared with.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable
from dataclasses import dataclass

from vault.clock import Clock
from vault.errors import QuotaExceeded
from vault.events import Event, EventSink
from vault.segment_query import Predicate, attributes_of
from vault.segments import SegmentIndex
from vault.storage.base import Document, Store

BUDGET_TABLE = "segment_budget"


@dataclass(frozen=True)
class CountPolicy:
    """How counts are protected."""

    k: int = 10
    noise: float = 2.0
    daily_queries: int = 1000


@dataclass(frozen=True)
class Count:
    """What a vendor is told: a count, or that it was suppressed."""

    count: int | None
    true_count: int

    @property
    def suppressed(self) -> bool:
        """Whether the count was withheld."""
        return self.count is None

    def to_json(self) -> dict[str, object]:
        """The API answer."""
        if self.count is None:
            return {"count": None, "suppressed": True}
        return {"count": self.count}


class SegmentCounts:
    """Answers a vendor's count queries under the policy above."""

    def __init__(
        self,
        *,
        index: SegmentIndex,
        store: Store,
        key: bytes,
        policy: CountPolicy,
        events: EventSink,
        clock: Clock,
    ) -> None:
        self._index = index
        self._store = store
        self._key = key
        self.policy = policy
        self._events = events
        self._clock = clock

    def count(self, vendor_id: str, predicate: Predicate) -> Count:
        """Count the vaults matching ``predicate`` for ``vendor_id`` (QuotaExceeded when
        its daily budget is spent)."""
        self.spend(vendor_id)
        members = self._index.members(predicate)
        answer = self.protect(members)
        self._events.emit(
            Event(
                "segment.query",
                self._clock(),
                "vendor",
                vendor=vendor_id,
                fields=attributes_of(predicate),
                detail={"suppressed": answer.suppressed},
            )
        )
        return answer

    def protect(self, members: Iterable[str]) -> Count:
        """The count of ``members`` as a vendor may see it: noisy, and suppressed below k."""
        chosen = list(members)
        true = len(chosen)
        noisy = true + self._noise(chosen)
        shown = max(noisy, 0)
        if true < self.policy.k or shown < self.policy.k:
            return Count(None, true)
        return Count(shown, true)

    def _noise(self, members: list[str]) -> int:
        scale = self.policy.noise
        if scale <= 0:
            return 0
        fingerprint = 0
        for vault_id in members:
            fingerprint ^= int(vault_id[:16], 16)
        # Keyed on the set alone: every vendor, and every way of asking (a count, an offer's
        # delivered number), gets the same draw for the same people, so neither more
        # vendors nor more kinds of question average the noise away.
        message = f"{len(members)}\x00{fingerprint:016x}"
        digest = hmac.new(self._key, message.encode(), hashlib.sha256).digest()
        uniform = (int.from_bytes(digest[:8], "big") + 0.5) / 2**64
        return round(laplace(uniform, scale))

    def spend(self, vendor_id: str) -> None:
        """Draw one answer from the vendor's daily budget; QuotaExceeded when it is spent."""
        day = self._clock().date().isoformat()
        limit = self.policy.daily_queries
        refused = [False]

        def change(record: Document | None) -> Document:
            used = 0 if record is None or record.get("day") != day else int(record["used"])
            refused[0] = used >= limit
            return {"day": day, "used": used if refused[0] else used + 1}

        self._store.update(BUDGET_TABLE, vendor_id, change)
        if refused[0]:
            raise QuotaExceeded(f"the daily budget of {limit} segment queries is spent")


def laplace(uniform: float, scale: float) -> float:
    """The Laplace(0, scale) value at quantile ``uniform`` (0 < uniform < 1)."""
    centred = uniform - 0.5
    return -scale * math.copysign(1.0, centred) * math.log(1 - 2 * abs(centred))
