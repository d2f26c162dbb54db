"""A customer's access history: every vendor read of their vault and every refused
attempt, read from the tamper-evident log through its per-vault index.

Each entry keeps its position in the log, so the customer can ask for the inclusion proof
that it is in the log an auditor checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vault.audit.log import AuditLog
from vault.clock import parse_iso
from vault.events import vault_pseudonym

READ = "data.read"
REFUSED = "request.refused"


@dataclass(frozen=True)
class AccessEntry:
    """One vendor request against the vault."""

    at: datetime
    vendor_id: str
    kind: str
    fields: tuple[str, ...]
    reason: str | None
    log_index: int


class AccessHistory:
    """Reads a vault's access history from the audit log."""

    def __init__(self, log: AuditLog, index_key: bytes) -> None:
        self._log = log
        self._index_key = index_key

    def entries(
        self,
        vault_id: str,
        *,
        vendor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AccessEntry]:
        """The vault's reads and refusals, newest first, optionally for one vendor and
        within ``[since, until)``."""
        found = []
        for index in reversed(self._log.indexes_for(vault_pseudonym(self._index_key, vault_id))):
            entry = _access_entry(index, self._log.entry(index))
            if entry is None or (vendor is not None and entry.vendor_id != vendor):
                continue
            if not _within(entry.at, since, until):
                continue
            found.append(entry)
        return found

    def vendors(self, vault_id: str) -> list[str]:
        """The vendors that appear in the vault's history, in order of first appearance."""
        seen = dict.fromkeys(e.vendor_id for e in reversed(self.entries(vault_id)))
        return list(seen)


def _access_entry(index: int, event: dict[str, object]) -> AccessEntry | None:
    kind = event.get("type")
    vendor = event.get("vendor")
    if kind not in (READ, REFUSED) or not isinstance(vendor, str):
        return None
    detail = event.get("detail")
    reason = detail.get("reason") if isinstance(detail, dict) else None
    fields = event.get("fields")
    return AccessEntry(
        at=parse_iso(str(event["at"])),
        vendor_id=vendor,
        kind="read" if kind == READ else "refused",
        fields=tuple(str(f) for f in fields) if isinstance(fields, list) else (),
        reason=str(reason) if reason is not None else None,
        log_index=index,
    )


def _within(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or at >= since) and (until is None or at < until)
