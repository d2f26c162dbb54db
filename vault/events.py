"""The one place domain events leave the vault.

Every grant change, token, data read, refusal, export, erasure and key rotation becomes an
:class:`Event` handed to an :class:`EventSink`. Events name pseudonyms, vendors and field
names, never a value. The tamper-evident log is one sink; tests use :class:`ListSink`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from keys.digests import keyed_digest
from vault.clock import isoformat

ACTORS = frozenset({"customer", "vendor", "operator", "auditor", "system"})


@dataclass(frozen=True)
class Event:
    """Something that happened to a vault or a grant, in words an auditor can check."""

    type: str
    at: datetime
    actor: str
    vault: str | None = None
    vendor: str | None = None
    fields: tuple[str, ...] = ()
    detail: Mapping[str, str | int | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.actor not in ACTORS:
            raise ValueError(f"unknown actor kind {self.actor!r}")

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object (the log canonicalises it)."""
        doc: dict[str, Any] = {"type": self.type, "at": isoformat(self.at), "actor": self.actor}
        if self.vault is not None:
            doc["vault"] = self.vault
        if self.vendor is not None:
            doc["vendor"] = self.vendor
        if self.fields:
            doc["fields"] = list(self.fields)
        if self.detail:
            doc["detail"] = dict(self.detail)
        return doc


@lru_cache(maxsize=4096)
def vault_pseudonym(index_key: bytes, vault_id: str) -> str:
    """How events name a vault: a keyed digest of its id, stable and revealing nothing.

    Every request that reads a vault records an event naming it, so recent pseudonyms are
    remembered; a digest depends on nothing but its arguments.
    """
    return keyed_digest(index_key, "vault-pseudonym", vault_id)[:32]


class EventSink(Protocol):
    """Receives every event; must not raise for a well-formed event."""

    def emit(self, event: Event) -> None:
        """Record ``event``."""
        ...

    def emit_all(self, events: Sequence[Event]) -> None:
        """Record ``events``, in order, together: the audit log writes them as one batch."""
        ...


class FanOut:
    """Hands every event to several sinks in turn (the log, and a test's list)."""

    def __init__(self, *sinks: EventSink) -> None:
        self._sinks = sinks

    def emit(self, event: Event) -> None:
        """Give ``event`` to each sink."""
        for sink in self._sinks:
            sink.emit(event)

    def emit_all(self, events: Sequence[Event]) -> None:
        """Give ``events`` to each sink, together."""
        for sink in self._sinks:
            sink.emit_all(events)


class NullSink:
    """Discards events: for tools that record nothing (and for the moment before a log)."""

    def emit(self, event: Event) -> None:
        """Drop ``event``."""

    def emit_all(self, events: Sequence[Event]) -> None:
        """Drop ``events``."""


class ListSink:
    """Keeps events in a list, in memory: for tests only."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        """Append ``event``."""
        self.events.append(event)

    def emit_all(self, events: Sequence[Event]) -> None:
        """Append ``events``."""
        self.events.extend(events)

    def types(self) -> list[str]:
        """The event types seen so far, in order."""
        return [e.type for e in self.events]
