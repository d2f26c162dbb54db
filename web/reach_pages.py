"""The customer's side of reach: which fields vendors may count, the inbox of offers (read,
accept with a choice of fields, decline, block the vendor), and intents.

Accepting an offer follows the OAuth consent page's rules: one checkbox per field with the
purpose the vendor gave, all checked at first, a choice of duration, the customer's terms
shown, and a signed receipt in the grant.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.errors import NotFound, ValidationError
from vault.grants import DEFAULT_DAYS, DURATION_DAYS
from vault.intents import CATEGORIES
from vault.intents import DURATION_DAYS as INTENT_DAYS
from vault.offers import ACCEPTED, DECLINED, InboxItem
from vault.segment_query import SEGMENTABLE_FIELDS
from vault.terms import term
from vrm.app_context import services
from web.customer_session import login_required, signed_in_vault
from web.display import field_label
from web.forms import Errors, page, sentence
from web.grants_pages import vendor_name, vendor_site
from web.pages import bp

COUNTED_AS = {
    "interests": "each of your interests",
    "postal_address": "your country and region (never your street, town or postcode)",
    "locale": "your language setting",
    "gender": "your gender",
    "birthdate": "your age band, from your birth year (never your birthdate)",
}
"""What a vendor's count can use of each field the customer may make countable."""


@bp.post("/preferences/segments")
@login_required
def save_segmentable() -> Response:
    """Choose the fields vendors may count this customer by."""
    chosen = [f for f in request.form.getlist("segmentable") if f in SEGMENTABLE_FIELDS]
    kept = services().vaults.set_segmentable(signed_in_vault(), chosen)
    if kept:
        names = ", ".join(field_label(f).lower() for f in kept)
        flash(f"Vendors can now count you by: {names}. They never learn who you are.", "success")
    else:
        flash("Vendors can no longer count you by anything.", "success")
    return redirect(url_for("web.preferences") + "#segments", code=303)


@bp.get("/inbox")
@login_required
def inbox() -> str:
    """Offers from vendors, newest first, and the vendors the customer blocked."""
    vault_id = signed_in_vault()
    offers = services().offers
    return render_template(
        "inbox.html",
        items=offers.inbox(vault_id),
        blocked=offers.blocked(vault_id),
        vendor_name=vendor_name,
        vendor_site=vendor_site,
        now=services().clock(),
        accepted=ACCEPTED,
        declined=DECLINED,
    )


@bp.get("/inbox/<offer_id>")
@login_required
def offer(offer_id: str) -> str:
    """One offer; opening it the first time counts as viewed."""
    return _offer_page(_item(offer_id, services().offers.open))


@bp.post("/inbox/<offer_id>/accept")
@login_required
def accept_offer(offer_id: str) -> Response | tuple[str, int]:
    """Grant the ticked fields to the offer's vendor for the chosen time."""
    vault_id = signed_in_vault()
    item = _item(offer_id, services().offers.item)
    days = {str(d): d for d in DURATION_DAYS}.get(request.form.get("duration", ""), 0)
    if not days:
        return _offer_page(item, "Choose one of the offered durations."), 400
    fields = request.form.getlist("field")
    if not fields:
        return _offer_page(item, "Tick at least one field to share, or decline the offer."), 400
    try:
        services().offers.accept(
            vault_id, offer_id, fields, days=days, terms=services().vaults.terms(vault_id)
        )
    except ValidationError as error:
        return _offer_page(item, sentence(f"The {error.field} {error.rule}")), 400
    vendor = vendor_name(item.offer.vendor_id)
    flash(f"You accepted. {vendor} can read what you ticked, for {days} days.", "success")
    return redirect(url_for("web.grants"), code=303)


@bp.post("/inbox/<offer_id>/decline")
@login_required
def decline_offer(offer_id: str) -> Response:
    """Say no; the vendor learns only a count it sees once at least k said no."""
    item = _item(offer_id, services().offers.item)
    vendor = vendor_name(item.offer.vendor_id)
    if services().offers.decline(signed_in_vault(), offer_id):
        flash(f"You declined the offer from {vendor}.", "success")
    else:
        flash(f"You had already answered the offer from {vendor}: nothing changed.", "info")
    return redirect(url_for("web.inbox"), code=303)


@bp.post("/inbox/vendors/block")
@login_required
def block_vendor() -> Response:
    """No more offers from this vendor."""
    vendor_id = request.form.get("vendor", "")
    try:
        services().offers.block(signed_in_vault(), vendor_id)
    except NotFound:
        abort(404)
    flash(f"You will get no more offers from {vendor_name(vendor_id)}.", "success")
    return redirect(url_for("web.inbox"), code=303)


@bp.post("/inbox/vendors/unblock")
@login_required
def unblock_vendor() -> Response:
    """Allow offers from this vendor again."""
    vendor_id = request.form.get("vendor", "")
    services().offers.unblock(signed_in_vault(), vendor_id)
    flash(f"{vendor_name(vendor_id)} may send you offers again.", "success")
    return redirect(url_for("web.inbox"), code=303)


@bp.get("/intents")
@login_required
def intents() -> tuple[str, int]:
    """The customer's intents, and the form to publish one."""
    return _intents_page({}, {})


@bp.post("/intents")
@login_required
def publish_intent() -> Response | tuple[str, int]:
    """Publish an intent; on an error show the form again with the message by the field."""
    form = {key: request.form.get(key, "") for key in _INTENT_INPUTS}
    try:
        services().intents.publish(signed_in_vault(), form)
    except ValidationError as error:
        return _intents_page(form, {error.field: sentence(f"The {error.field} {error.rule}")})
    flash("Your intent is published. Vendors see it without knowing who you are.", "success")
    return redirect(url_for("web.intents"), code=303)


@bp.post("/intents/<intent_id>/withdraw")
@login_required
def withdraw_intent(intent_id: str) -> Response:
    """End an intent: vendors no longer see it or answer it."""
    try:
        services().intents.withdraw(signed_in_vault(), intent_id)
    except NotFound:
        abort(404)
    flash("Your intent is withdrawn.", "success")
    return redirect(url_for("web.intents"), code=303)


_INTENT_INPUTS = ("category", "text", "budget", "currency", "region", "days")


def _item(offer_id: str, find: Callable[[str, str], InboxItem]) -> InboxItem:
    """The signed-in customer's offer by ``find`` (opening it, or only reading it); 404 if
    it is not theirs."""
    try:
        return find(signed_in_vault(), offer_id)
    except NotFound:
        abort(404)


def _offer_page(item: InboxItem, error: str | None = None) -> str:
    vault_id = signed_in_vault()
    offer = item.offer
    fields = [
        {"name": name, "label": field_label(name), "purpose": purpose}
        for name, purpose in offer.fields.items()
    ]
    return render_template(
        "offer.html",
        item=item,
        offer=offer,
        vendor=vendor_name(offer.vendor_id),
        site=vendor_site(offer.vendor_id),
        fields=fields,
        terms=[term(t) for t in services().vaults.terms(vault_id)],
        durations=DURATION_DAYS,
        default_days=DEFAULT_DAYS,
        can_answer=item.status not in (ACCEPTED, DECLINED) and offer.is_open(services().clock()),
        error=error,
    )


def _intents_page(shown: dict[str, str], errors: Errors) -> tuple[str, int]:
    return page(
        "intents.html",
        errors,
        shown=shown,
        mine=services().intents.mine(signed_in_vault()),
        categories=CATEGORIES,
        durations=INTENT_DAYS,
        now=services().clock(),
    )
