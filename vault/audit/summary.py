"""What an auditor reads from the log: filtered pages of entries, newest first, and a
per-vendor summary of grants as they stand, reads and refusals. Both are computed from
the events alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GRANT_EVENTS = ("given", "extended", "narrowed", "revoked", "expired")
REFUSED = "request.refused"
ERASED = "vault.erased"
READ = "data.read"
DISABLED = "vendor.disabled"
PAGE_SIZE = 100


@dataclass(frozen=True)
class LogFilter:
    """Which entries to show: by vendor, event type, and ``at`` dates (YYYY-MM-DD, inclusive)."""

    vendor: str = ""
    type: str = ""
    since: str = ""
    until: str = ""

    def matches(self, entry: Mapping[str, Any]) -> bool:
        """Whether ``entry`` passes every filter that is set."""
        day = str(entry.get("at", ""))[:10]
        return (
            (not self.vendor or entry.get("vendor") == self.vendor)
            and (not self.type or entry.get("type") == self.type)
            and (not self.since or day >= self.since)
            and (not self.until or day <= self.until)
        )


@dataclass(frozen=True)
class LogPage:
    """One page of matching entries, newest first, each with its index in the log."""

    entries: list[tuple[int, dict[str, Any]]]
    page: int
    pages: int
    total: int


def log_page(
    entries: Iterable[dict[str, Any]], chosen: LogFilter, page: int, size: int = PAGE_SIZE
) -> LogPage:
    """Page ``page`` (from 1) of the entries ``chosen`` lets through, newest first."""
    matching = [(i, e) for i, e in enumerate(entries) if chosen.matches(e)]
    matching.reverse()
    pages = max(1, -(-len(matching) // size))
    page = min(max(page, 1), pages)
    start = (page - 1) * size
    return LogPage(matching[start : start + size], page, pages, len(matching))


ENDINGS = ("revoked", "expired", "erased", "disabled")
"""How a grant ends: the customer revoked it (or withdrew its last field), it expired, the
customer erased the vault it was in, or the operator disabled the vendor (whose grants then
let it read nothing)."""


@dataclass
class VendorSummary:
    """One vendor's grants as they stand, grant events by kind, reads by field, and refused
    requests.

    ``grants`` counts grants, not events: a grant is ``active`` from the event that gives it
    until one that ends it (``grant.revoked``, ``grant.expired``, or ``vault.erased`` of its
    vault), and is then counted under how it ended. Extending or narrowing a grant changes
    neither count. A vendor has at most one live grant per vault, so a grant is known by
    its vault and vendor.
    """

    grants: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)
    refused: int = 0

    def to_json(self) -> dict[str, Any]:
        """The summary as JSON: every state and event kind present, reads sorted by field."""
        return {
            "grants": {state: self.grants[state] for state in ("active", *ENDINGS)},
            "grant_events": {kind: self.events[kind] for kind in GRANT_EVENTS},
            "reads": dict(sorted(self.reads.items())),
            "refused": self.refused,
        }


def vendor_summary(entries: Iterable[Mapping[str, Any]]) -> dict[str, VendorSummary]:
    """Every vendor named in the log, sorted by id, with what the log says they did."""
    found: dict[str, VendorSummary] = {}
    live: dict[str, set[str]] = {}
    for entry in entries:
        vendor, kind = entry.get("vendor"), str(entry.get("type", ""))
        if kind == ERASED:
            _end_grants_of_vault(found, live, entry.get("vault"))
        if not isinstance(vendor, str):
            continue
        summary = found.setdefault(vendor, VendorSummary())
        if kind == DISABLED:
            _end_grants_of_vendor(summary, live.setdefault(vendor, set()))
        group, _, name = kind.partition(".")
        if group == "grant" and name in GRANT_EVENTS:
            summary.events[name] += 1
            _follow_grant(summary, live.setdefault(vendor, set()), entry.get("vault"), name)
        elif kind == READ:
            summary.reads.update(entry.get("fields", ()))
        elif kind == REFUSED:
            summary.refused += 1
    return dict(sorted(found.items()))


def _follow_grant(summary: VendorSummary, live: set[str], vault: object, event: str) -> None:
    """Move the vendor's grant with ``vault`` on by one grant event."""
    key = str(vault)
    if event in ("given", "extended", "narrowed"):
        if key not in live:
            live.add(key)
            summary.grants["active"] += 1
        return
    if key in live:
        live.discard(key)
        summary.grants["active"] -= 1
    summary.grants[event] += 1


def _end_grants_of_vendor(summary: VendorSummary, live: set[str]) -> None:
    """A disabled vendor's live grants end: none of its requests is honoured again."""
    summary.grants["active"] -= len(live)
    summary.grants["disabled"] += len(live)
    live.clear()


def _end_grants_of_vault(
    found: Mapping[str, VendorSummary], live: Mapping[str, set[str]], vault: object
) -> None:
    """An erased vault ends every grant that was live in it."""
    for vendor, vaults in live.items():
        if str(vault) in vaults:
            vaults.discard(str(vault))
            found[vendor].grants["active"] -= 1
            found[vendor].grants["erased"] += 1
