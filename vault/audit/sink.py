"""The event sink that writes every domain event to the audit log."""

from __future__ import annotations

from collections.abc import Sequence

from vault.audit.log import AuditLog
from vault.events import Event


class AuditSink:
    """An :class:`~vault.events.EventSink` that appends each event to an :class:`AuditLog`.

    It fails closed: if the log cannot be written, ``emit`` raises (StorageError) and the
    action that caused the event fails with it, rather than happening unrecorded.
    """

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def emit(self, event: Event) -> None:
        """Append ``event`` to the log."""
        self.log.append_event(event)

    def emit_all(self, events: Sequence[Event]) -> None:
        """Append ``events`` to the log in one batch, so with one fsync."""
        self.log.append_all([event.to_json() for event in events])
