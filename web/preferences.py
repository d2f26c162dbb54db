"""The preferences page: how vendors may contact the customer (the ``channel_preferences``
field) and the personal terms the customer proffers to every vendor."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from functools import cache
from typing import Any

from flask import flash, redirect, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from vault.errors import ValidationError
from vault.fields import JSONValue
from vault.segment_query import SEGMENTABLE_FIELDS
from vault.terms import TERMS
from vrm.app_context import services
from web.customer_session import login_required, signed_in_vault
from web.display import field_label
from web.forms import Errors, page, sentence
from web.pages import bp
from web.reach_pages import COUNTED_AS

FIELD = "channel_preferences"
CHANNELS: tuple[tuple[str, str], ...] = (
    ("email", "Email"),
    ("sms", "Text message (SMS)"),
    ("phone", "Phone call"),
    ("post", "Post"),
)
# Where each part of the field is typed, and how its errors start.
_PLACES: tuple[tuple[str, str, str], ...] = (
    ("quiet_hours.start", "quiet_start", "The start of your quiet hours"),
    ("quiet_hours.end", "quiet_end", "The end of your quiet hours"),
    ("quiet_hours.timezone", "quiet_timezone", "The time zone"),
    ("quiet_hours", "quiet_end", "Your quiet hours"),
    ("max_offers_per_vendor_per_month", "max_offers", "The number of offers"),
)

Shown = dict[str, Any]
"""The contact form's inputs: ``channels`` (a set) and the text of each other input."""


@bp.get("/preferences")
@login_required
def preferences() -> str:
    """The contact preferences and the personal terms, as saved."""
    return _page(_shown_from_field(_saved_preferences()), {})[0]


@bp.post("/preferences")
@login_required
def save_preferences() -> tuple[str, int] | Response:
    """Save the contact preferences; on an error, save nothing and show the form again."""
    shown = _shown_from_form(request.form)
    try:
        services().vaults.set_fields(signed_in_vault(), {FIELD: _field_value(shown)})
    except ValidationError as error:
        return _page(shown, dict([_placed(error)]))
    flash("Your contact preferences are saved.", "success")
    return redirect(url_for("web.preferences"), code=303)


@bp.post("/preferences/terms")
@login_required
def save_terms() -> Response:
    """Save the personal terms the customer proffers to vendors."""
    chosen = services().vaults.set_terms(signed_in_vault(), request.form.getlist("term"))
    count = f"{len(chosen)} term{'' if len(chosen) == 1 else 's'}" if chosen else "no terms"
    flash(f"Your personal terms are saved: you proffer {count} to vendors.", "success")
    return redirect(url_for("web.preferences"), code=303)


@cache
def timezone_groups() -> list[tuple[str, list[str]]]:
    """IANA time zones grouped by region (``Europe``: ``Europe/London``, ...)."""
    groups: dict[str, list[str]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        region = name.split("/")[0] if "/" in name else "Other"
        groups.setdefault(region, []).append(name)
    return sorted(groups.items())


def _page(shown: Shown, errors: Errors) -> tuple[str, int]:
    vault_id = signed_in_vault()
    chosen = services().vaults.terms(vault_id)
    return page(
        "preferences.html",
        errors,
        shown=shown,
        channels=CHANNELS,
        zones=timezone_groups(),
        terms=TERMS,
        chosen_terms=set(chosen),
        countable=[(f, field_label(f), COUNTED_AS[f]) for f in SEGMENTABLE_FIELDS],
        segmentable=set(services().vaults.segmentable(vault_id)),
        cap_default=services().config["OFFER_CAP_DEFAULT"],
        segment_k=services().config["SEGMENT_K"],
    )


def _saved_preferences() -> Mapping[str, JSONValue]:
    value = services().vaults.profile(signed_in_vault()).get(FIELD)
    return value if isinstance(value, dict) else {}


def _shown_from_field(saved: Mapping[str, JSONValue]) -> Shown:
    hours = saved.get("quiet_hours")
    hours = hours if isinstance(hours, dict) else {}
    cap = saved.get("max_offers_per_vendor_per_month")
    return {
        "channels": {name for name, _ in CHANNELS if saved.get(name) is True},
        "quiet_start": str(hours.get("start", "")),
        "quiet_end": str(hours.get("end", "")),
        "quiet_timezone": str(hours.get("timezone", "")),
        "max_offers": "" if cap is None else str(cap),
    }


def _shown_from_form(form: MultiDict[str, str]) -> Shown:
    keys = ("quiet_start", "quiet_end", "quiet_timezone", "max_offers")
    shown: Shown = {key: form.get(key, "").strip() for key in keys}
    shown["channels"] = {name for name, _ in CHANNELS if name in form.getlist("channel")}
    return shown


def _field_value(shown: Shown) -> dict[str, object]:
    """The ``channel_preferences`` value the inputs stand for, for the domain to check."""
    value: dict[str, object] = {name: name in shown["channels"] for name, _ in CHANNELS}
    hours = [shown["quiet_start"], shown["quiet_end"], shown["quiet_timezone"]]
    if any(hours):
        start, end, zone = (text or None for text in hours)
        value["quiet_hours"] = {"start": start, "end": end, "timezone": zone}
    cap = shown["max_offers"]
    if cap:
        is_number = cap.isdecimal() and len(cap) <= 4
        value["max_offers_per_vendor_per_month"] = int(cap) if is_number else cap
    return value


def _placed(error: ValidationError) -> tuple[str, str]:
    """The input an error belongs next to, and its text there."""
    for path, key, subject in _PLACES:
        if error.rule.startswith(f"{path} "):
            return key, sentence(f"{subject} {error.rule[len(path) + 1 :]}")
    return "channels", sentence(f"Your contact preferences {error.rule}")
