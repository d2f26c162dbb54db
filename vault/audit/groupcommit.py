"""Group commit: the appends that threads of one process make at once share one fsync round.

Every append joins a queue. The first to find no leader becomes the leader: it takes the
log's lock, then takes every append queued by then, writes them in queue order as one
batch, syncs once for the whole batch, and marks each append done with its index
or its error. The others wait; when the batch holding theirs is done they return (or raise)
at once, and when a batch that does not hold theirs is done, one of them becomes the next
leader. So no append returns before its record is on disk, and while one batch is being
synced the next one fills up: under load the fsyncs per append fall with the number of
threads appending, with no waiting added when there is no load.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(eq=False)
class Pending:
    """One append waiting for its batch: the record, then its index or its error."""

    line: bytes
    key: str | None
    index: int = -1
    error: BaseException | None = None
    done: bool = False


class CommitQueue:
    """The appends of one process waiting to be written, and who writes them next."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: list[Pending] = []
        self._leading = False

    def join(self, pendings: list[Pending]) -> bool:
        """Queue ``pendings`` together and wait: True once the caller must lead, False once
        they are done. Queued at once, they are taken at once, into one batch.

        A leader must call :meth:`take` (then :meth:`finish`), or :meth:`withdraw` its own
        appends if it fails before taking, so that the others are not left waiting.
        """
        last = pendings[-1]
        with self._changed:
            self._queue.extend(pendings)
            while self._leading and not last.done:
                self._changed.wait()
            if last.done:
                return False
            self._leading = True
            return True

    def take(self) -> list[Pending]:
        """Every append queued so far, in the order they joined: the leader's batch."""
        with self._changed:
            batch, self._queue = self._queue, []
        return batch

    def withdraw(self, pendings: list[Pending]) -> None:
        """Take the leader's own appends out of the queue, for a leader that failed early."""
        with self._changed:
            self._queue = [queued for queued in self._queue if queued not in pendings]

    def finish(self, batch: list[Pending]) -> None:
        """Mark ``batch`` done, end the leader's turn and wake every waiting append."""
        with self._changed:
            for pending in batch:
                pending.done = True
            self._leading = False
            self._changed.notify_all()

    def waiting(self) -> int:
        """How many appends are queued and not yet taken by a leader."""
        with self._changed:
            return len(self._queue)
