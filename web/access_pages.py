"""The access history page: every time a vendor read from the vault or was refused,
filtered by vendor and period, each with the log entry it comes from and a link to the
proof that this entry is in the log under the latest signed checkpoint.

It reads ``services().history``, the access history kept in the tamper-evident log. The
page is typed against the small interface below, so it does not depend on how the log is
built; while a server has no history the page says so instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from flask import request

from vrm.app_context import services
from web.customer_session import login_required, signed_in_vault
from web.forms import Errors, page
from web.grants_pages import vendor_name
from web.pages import bp


class AccessEntry(Protocol):
    """One vendor request against the vault, as the history reports it."""

    @property
    def at(self) -> datetime: ...
    @property
    def vendor_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def fields(self) -> tuple[str, ...]: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def log_index(self) -> int | None: ...


class AccessHistory(Protocol):
    """Where the page reads entries from."""

    def entries(
        self,
        vault_id: str,
        *,
        vendor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Sequence[AccessEntry]: ...


@dataclass(frozen=True)
class Period:
    """The filter: the vendor id ("" for all), the dates as typed, and the moments they
    stand for (``until`` is the start of the day after the last one)."""

    vendor: str
    start: str
    end: str
    since: datetime | None
    until: datetime | None


@bp.get("/access")
@login_required
def access() -> tuple[str, int]:
    """The vault's access history, newest first, within the chosen filter."""
    history = access_history()
    if history is None:
        return page("access.html", {}, available=False, entries=[], vendors=[], period=None)
    vault_id = signed_in_vault()
    seen = list(dict.fromkeys(e.vendor_id for e in history.entries(vault_id)))
    period, errors = _period(seen)
    entries: Sequence[AccessEntry] = []
    if not errors:
        entries = history.entries(
            vault_id, vendor=period.vendor or None, since=period.since, until=period.until
        )
    return page(
        "access.html",
        errors,
        available=True,
        entries=entries,
        vendors=sorted(((v, vendor_name(v)) for v in seen), key=lambda pair: pair[1].casefold()),
        period=period,
        vendor_name=vendor_name,
        logged=_logged_lines(vault_id, entries),
    )


def _logged_lines(vault_id: str, entries: Sequence[AccessEntry]) -> dict[int, str]:
    """The log entry behind each shown entry, exactly as its leaf hash covers it, so the
    customer can check an inclusion proof; only entries naming this vault are shown."""
    log = services().audit
    mine = services().consents.pseudonym(vault_id)
    lines: dict[int, str] = {}
    for entry in entries:
        if entry.log_index is None or not 0 <= entry.log_index < log.size():
            continue
        line = log.line(entry.log_index)
        if json.loads(line).get("vault") == mine:
            lines[entry.log_index] = line.decode("utf-8")
    return lines


def access_history() -> AccessHistory | None:
    """The server's access history, or None where this server keeps none."""
    history: AccessHistory | None = getattr(services(), "history", None)
    return history


def _period(vendors_seen: list[str]) -> tuple[Period, Errors]:
    """The filter from the query string; a vendor not in the history counts as none."""
    errors: Errors = {}
    start = request.args.get("from", "").strip()
    end = request.args.get("to", "").strip()
    first = _day(start, "from", errors)
    last = _day(end, "to", errors)
    if first and last and last < first:
        errors["to"] = "The end of the period must not be before its start."
    since = datetime.combine(first, time.min, UTC) if first else None
    until = _start_of_next(last) if last else None
    vendor = request.args.get("vendor", "")
    vendor = vendor if vendor in vendors_seen else ""
    return Period(vendor, start, end, since, until), errors


def _start_of_next(day: date) -> datetime | None:
    """The moment ``day`` ends (None for the last day there is: no end)."""
    if day == date.max:
        return None
    return datetime.combine(day + timedelta(days=1), time.min, UTC)


def _day(text: str, key: str, errors: Errors) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[key] = "Write the date as YYYY-MM-DD, like 2026-11-25."
        return None
