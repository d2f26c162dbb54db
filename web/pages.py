"""The customer's entry pages: the front page, log in and log out.

``bp`` is the blueprint every customer page joins (see ``web.PAGE_MODULES``).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.errors import AuthenticationFailed, LoginThrottled
from vrm.app_context import services
from web.customer_session import log_in, log_out, safe_next
from web.forms import sentence

bp = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)


AFTER_LOGIN = "/profile"
"""Where a login goes when nothing asked for another page."""

_WRONG_LOGIN = "The email or password is wrong. Check both and try again."


@bp.get("/")
def home() -> str:
    """What this server is, for a person who opens it in a browser."""
    return render_template("home.html")


@bp.get("/login")
def login_form() -> str:
    """The login form; ``next`` says where to continue afterwards."""
    return render_template("login.html", next=_continue_to(request.args.get("next")), error=None)


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    """Check the email and password; on success continue to ``next``."""
    target = _continue_to(request.form.get("next"))
    email = request.form.get("email", "")
    try:
        vault_id = services().vaults.authenticate(email, request.form.get("password", ""))
    except LoginThrottled as error:
        page = render_template("login.html", next=target, error=sentence(str(error)), email=email)
        return page, 429
    except AuthenticationFailed:
        page = render_template("login.html", next=target, error=_WRONG_LOGIN, email=email)
        return page, 401
    log_in(vault_id)
    return redirect(target, code=303)


def _continue_to(target: str | None) -> str:
    """Where to go after logging in: the profile when nothing was asked for, the start
    page when what was asked for leads off this site."""
    return safe_next(target) if target else AFTER_LOGIN


@bp.post("/logout")
def logout() -> Response:
    """End the session."""
    log_out()
    flash("You are logged out.", "success")
    return redirect(url_for("web.login_form"), code=303)
