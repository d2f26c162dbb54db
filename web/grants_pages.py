"""The grants page: which vendor may read which fields, why, and until when, with one
button to withdraw a field and one to withdraw a whole grant; ended grants below."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.errors import NotFound, ValidationError
from vault.grants import EXPIRED, Grant
from vault.terms import TERMS
from vault.vendors import Vendor
from vrm.app_context import services
from web.customer_session import login_required, signed_in_vault
from web.display import field_label
from web.pages import bp

_TERM_TITLES = {t.term_id: t.title for t in TERMS}
_STALE = "That grant had already ended or changed; here is how things stand now."


@dataclass(frozen=True)
class Withdrawn:
    """A field taken back from a grant that goes on with its other fields."""

    vendor: str
    field: str
    at: datetime


@bp.get("/grants")
@login_required
def grants() -> str:
    """Live grants with their withdraw buttons, then what has ended."""
    now = services().clock()
    every = services().consents.grants(signed_in_vault())
    live = [g for g in every if g.is_live(now)]
    ended = [g for g in every if not g.is_live(now)]
    withdrawn = [Withdrawn(vendor_name(g.vendor_id), f, at) for g in live for f, at in g.removed]
    return render_template(
        "grants.html",
        live=live,
        ended=ended,
        withdrawn=sorted(withdrawn, key=lambda w: w.at, reverse=True),
        vendor_name=vendor_name,
        vendor_site=vendor_site,
        ended_on=ended_on,
        term_titles=_TERM_TITLES,
        expired=EXPIRED,
    )


@bp.post("/grants/<grant_id>/fields/remove")
@login_required
def remove_granted_field(grant_id: str) -> Response:
    """Withdraw one field from a grant (the last one ends the grant)."""
    name = request.form.get("field", "")
    try:
        grant = services().consents.remove_field(signed_in_vault(), grant_id, name)
    except (NotFound, ValidationError):
        flash(_STALE, "info")
        return _back()
    vendor = vendor_name(grant.vendor_id)
    message = f"{vendor} can no longer read your {field_label(name).lower()}."
    if grant.status != "active":
        message += " That was the last field you shared with them, so the grant has ended."
    flash(message, "success")
    return _back()


@bp.post("/grants/<grant_id>/revoke")
@login_required
def revoke_grant(grant_id: str) -> Response:
    """Withdraw a whole grant."""
    try:
        grant = services().consents.revoke(signed_in_vault(), grant_id)
    except NotFound:
        flash(_STALE, "info")
        return _back()
    flash(f"{vendor_name(grant.vendor_id)} can no longer read anything from your vault.", "success")
    return _back()


def vendor_name(vendor_id: str) -> str:
    """The name a vendor registered with (or a plain description if it is gone)."""
    vendor = _vendor(vendor_id)
    return vendor.client_name if vendor is not None else "A vendor that is no longer registered"


def vendor_site(vendor_id: str) -> str:
    """Where a vendor sends customers back to (the hosts of its redirect URIs), or else its
    client id: what tells two vendors apart beside their names."""
    vendor = _vendor(vendor_id)
    if vendor is None:
        return ""
    hosts = sorted({urlsplit(uri).netloc for uri in vendor.redirect_uris})
    if hosts:
        return "Returns you to " + ", ".join(hosts)
    return f"Client id {vendor.client_id}"


def _vendor(vendor_id: str) -> Vendor | None:
    """The vendor, read once for the page however often it names the vendor."""
    read: dict[str, Vendor | None] = g.setdefault("vendors_shown", {})
    if vendor_id not in read:
        read[vendor_id] = services().vendors.get(vendor_id)
    return read[vendor_id]


def ended_on(grant: Grant) -> datetime:
    """When a grant stopped letting its vendor read."""
    if grant.status == EXPIRED or grant.ended_at is None:
        return grant.expires_at
    return grant.ended_at


def _back() -> Response:
    return redirect(url_for("web.grants"), code=303)
