"""Work the server does on its own schedule, beside answering requests: loading the segment
index at start, delivering queued webhooks (every few seconds), and hourly (and at start)
repairing derived records a crash left behind their vault, expiring grants that
reached their end, so an unused grant's end is recorded, receipted and pushed to
its vendor without anyone having to look at it first, and forgetting the revocations of
client-credentials tokens that have expired since."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from vrm.services import Services

log = logging.getLogger(__name__)

WEBHOOK_EVERY = timedelta(seconds=5)
EXPIRY_EVERY = timedelta(hours=1)


class Scheduler:
    """Decides what is due at a moment, and does it. ``tick`` is the whole logic, so it is
    tested with a hand-moved clock; ``start`` runs it on a thread for ``vrm serve``."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._next_webhooks: datetime | None = None
        self._next_expiry: datetime | None = None
        self._stop = threading.Event()

    def tick(self) -> list[str]:
        """Run whatever is due now; return the names of what ran."""
        return self._webhooks() + self._expiry()

    def _webhooks(self) -> list[str]:
        now = self._services.clock()
        if self._next_webhooks is not None and now < self._next_webhooks:
            return []
        self._guarded("webhooks", self._services.webhooks.deliver_due)
        self._next_webhooks = now + WEBHOOK_EVERY
        return ["webhooks"]

    def _expiry(self) -> list[str]:
        now = self._services.clock()
        if self._next_expiry is not None and now < self._next_expiry:
            return []
        # Derived records a crash left behind their vault are repaired on the same turn.
        self._guarded("repair", self._services.vaults.repair_derived)
        self._guarded("expiry", self._services.consents.expire_all)
        self._guarded("revocations", self._services.access.forget_expired_revocations)
        self._next_expiry = now + EXPIRY_EVERY
        return ["expiry"]

    def start(self) -> list[threading.Thread]:
        """Run the passes on daemon threads of their own until :meth:`stop`, so a slow
        vendor's webhook never holds up the expiry of grants, nor the other way round."""
        threads = [
            threading.Thread(target=self._run, args=(self._webhooks,), name="vrm webhooks"),
            threading.Thread(target=self._run, args=(self._expiry,), name="vrm expiry"),
        ]
        self._guarded("segment index warm-up", self._services.segment_index.size)
        for thread in threads:
            thread.daemon = True
            thread.start()
        return threads

    def stop(self) -> None:
        """Ask the thread to end after its current tick."""
        self._stop.set()

    def _run(self, work: Callable[[], list[str]]) -> None:
        while not self._stop.is_set():
            work()
            self._stop.wait(1.0)

    @staticmethod
    def _guarded(name: str, work: Callable[[], object]) -> None:
        # A failing pass (a full disk, say) must not stop the schedule: it is logged and
        # tried again at the next turn.
        try:
            work()
        except Exception:
            log.exception("scheduled %s pass failed; it will run again", name)
