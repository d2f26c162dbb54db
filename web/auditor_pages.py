"""The auditor's pages under ``/auditor/``: the log, the per-vendor summary, a receipt
lookup and the latest signed checkpoint, checked against the log. Read-only: the only
change is the access event."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.audit.standing import check_standing
from vault.audit.summary import LogFilter, log_page, vendor_summary
from vault.errors import AuthenticationFailed, LoginThrottled
from vault.receipt_lookup import find_receipt
from vrm.app_context import services
from web.auditor_session import auditor_required, log_in_auditor, log_out_auditor
from web.forms import sentence

bp = Blueprint("auditor", __name__, url_prefix="/auditor")

_WRONG_LOGIN = "The email or password is wrong. Check both and try again."
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@bp.get("/login")
def login_form() -> str:
    """The auditor's login form."""
    return render_template("auditor/login.html", error=None, email="")


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    """Check the auditor's email and password; on success go to the log."""
    email = request.form.get("email", "")
    try:
        auditor_id = services().auditors.authenticate(email, request.form.get("password", ""))
    except LoginThrottled as error:
        return render_template("auditor/login.html", error=sentence(str(error)), email=email), 429
    except AuthenticationFailed:
        return render_template("auditor/login.html", error=_WRONG_LOGIN, email=email), 401
    log_in_auditor(auditor_id)
    return redirect(url_for("auditor.log"), code=303)


@bp.post("/logout")
def logout() -> Response:
    """End the auditor's session."""
    log_out_auditor()
    flash("You are logged out.", "success")
    return redirect(url_for("auditor.login_form"), code=303)


@bp.get("/")
@bp.get("/log")
@auditor_required
def log() -> str:
    """The log, newest first, 100 entries a page, filtered by vendor, type and period."""
    chosen = LogFilter(
        vendor=request.args.get("vendor", "").strip(),
        type=request.args.get("type", "").strip(),
        since=_day(request.args.get("since", "")),
        until=_day(request.args.get("until", "")),
    )
    number = request.args.get("page", "1")
    page_number = int(number) if number.isascii() and number.isdigit() else 1
    entries = list(services().audit.entries())
    shown = log_page(entries, chosen, page_number)
    vendors = sorted({e["vendor"] for e in entries if isinstance(e.get("vendor"), str)})
    types = sorted({str(e.get("type")) for e in entries})
    return render_template(
        "auditor/log.html", shown=shown, chosen=chosen, vendors=vendors, types=types
    )


@bp.get("/vendors")
@auditor_required
def vendors() -> str:
    """For each vendor: grants by kind, reads by field, refused requests."""
    summary = vendor_summary(services().audit.entries())
    return render_template("auditor/vendors.html", summary=summary)


@bp.get("/receipts")
@auditor_required
def receipts() -> str:
    """Look up a consent receipt by id: its claims and whether its signature verifies."""
    receipt_id = request.args.get("id", "").strip()[:64]
    found = None
    if receipt_id:
        found = find_receipt(services().store, receipt_id, services().keys.signing.current().jwks())
    return render_template("auditor/receipts.html", receipt_id=receipt_id, found=found)


@bp.get("/checkpoint")
@auditor_required
def checkpoint() -> str:
    """The latest signed checkpoint, its signature checked and its root recomputed from
    the entries the log holds now. Signs nothing."""
    signing = services().keys.signing.current()  # One key, for finding the note and checking it.
    note = services().checkpoints.latest(signing)
    standing = None
    if note is not None:
        key = signing.public_raw()
        standing = check_standing(services().audit, note, key, services().checkpoints.origin)
    return render_template("auditor/checkpoint.html", standing=standing)


def _day(text: str) -> str:
    text = text.strip()
    return text if _DAY.fullmatch(text) else ""
