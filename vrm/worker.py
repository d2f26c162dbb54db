"""Work the server does on its own schedule, beside answering requests: loading the segment
index at start, delivering queued webhooks (every few seconds) and expiring grants that
reached their end (hourly), so an unused grant's end is recorded, receipted and pushed to
its vendor without anyone having to look at it first."""

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
        now = self._services.clock()
        ran = []
        if self._next_webhooks is None or now >= self._next_webhooks:
            self._guarded("webhooks", self._services.webhooks.deliver_due)
            self._next_webhooks = now + WEBHOOK_EVERY
            ran.append("webhooks")
        if self._next_expiry is None or now >= self._next_expiry:
            self._guarded("expiry", self._services.consents.expire_all)
            self._next_expiry = now + EXPIRY_EVERY
            ran.append("expiry")
        return ran

    def start(self) -> threading.Thread:
        """Tick every second on a daemon thread until :meth:`stop`."""
        thread = threading.Thread(target=self._run, name="vrm scheduler", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask the thread to end after its current tick."""
        self._stop.set()

    def _run(self) -> None:
        # Load the segment index before the first vendor asks, so no count waits for it.
        self._guarded("segment index warm-up", self._services.segment_index.size)
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(1.0)

    @staticmethod
    def _guarded(name: str, work: Callable[[], object]) -> None:
        # A failing pass (a full disk, say) must not stop the schedule: it is logged and
        # tried again at the next turn.
        try:
            work()
        except Exception:
            log.exception("scheduled %s pass failed; it will run again", name)
