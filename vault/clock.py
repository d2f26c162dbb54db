"""Time as an argument: rules that depend on time take a ``Clock`` so tests never sleep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """RFC 3339 UTC text with a ``Z`` suffix, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Read text written by :func:`isoformat`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
