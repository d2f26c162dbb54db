"""How values look on the customer's pages: times, dates, field names and field values.

Registered as template filters, so every page shows a time, a field or a value alike.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from vault.errors import ValidationError
from vault.fields import JSONValue, spec_for
from web.countries import COUNTRY_NAMES
from web.pages import bp


@bp.app_template_filter("when")
def when(moment: datetime | None) -> str:
    """A moment as a person reads it, in UTC: ``25 Nov 2026, 09:00 UTC``."""
    if moment is None:
        return "never"
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y, %H:%M} UTC"


@bp.app_template_filter("day")
def day(moment: datetime) -> str:
    """The date of a moment in UTC: ``25 Nov 2026``."""
    utc = moment.astimezone(UTC)
    return f"{utc.day} {utc:%b %Y}"


@bp.app_template_filter("field_label")
def field_label(name: str) -> str:
    """A field's label (``Given name``); a name the registry refuses is shown as it is."""
    try:
        return spec_for(name).label
    except ValidationError:
        return name


@bp.app_template_filter("shown")
def shown(value: JSONValue | None, name: str = "") -> str:
    """Field ``name``'s value as one line of text: tags joined by commas, an address and
    contact preferences in words, a custom value as JSON unless it is plain text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if name == "interests" and isinstance(value, list):
        return ", ".join(str(tag) for tag in value)
    if name == "postal_address" and isinstance(value, dict):
        return _address_line(value)
    if name == "channel_preferences" and isinstance(value, dict):
        return _preferences_line(value)
    return json.dumps(value, ensure_ascii=False)


def _address_line(address: dict[str, JSONValue]) -> str:
    parts = [address.get(key) for key in ("street", "locality", "region", "postal_code")]
    country = str(address.get("country", ""))
    lines = [str(part).replace("\n", ", ") for part in parts if part]
    return ", ".join([*lines, COUNTRY_NAMES.get(country, country)])


_CHANNEL_WORDS = {"email": "email", "sms": "SMS", "phone": "phone", "post": "post"}


def _preferences_line(prefs: dict[str, JSONValue]) -> str:
    channels = [word for key, word in _CHANNEL_WORDS.items() if prefs.get(key) is True]
    words = [f"Contact by {', '.join(channels)}" if channels else "No contact"]
    hours = prefs.get("quiet_hours")
    if isinstance(hours, dict):
        start, end, zone = (hours.get(key) for key in ("start", "end", "timezone"))
        words.append(f"quiet from {start} to {end} ({zone})")
    cap = prefs.get("max_offers_per_vendor_per_month")
    if cap is not None:
        words.append(f"at most {cap} offers a vendor a month")
    return "; ".join(words)
