"""The customer's entry pages: the front page, log in and log out."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.errors import AuthenticationFailed, LoginThrottled
from vrm.app_context import services
from web.customer_session import current_vault, log_in, log_out, safe_next

bp = Blueprint(
    "web", __name__, template_folder="templates", static_folder="static", static_url_path="/static"
)


@bp.get("/")
def home() -> str:
    """What this server is, for a person who opens it in a browser."""
    return render_template("home.html", logged_in=current_vault() is not None)


@bp.get("/login")
def login_form() -> str:
    """The login form; ``next`` says where to continue afterwards."""
    return render_template("login.html", next=safe_next(request.args.get("next")), error=None)


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    """Check the email and password; on success continue to ``next``."""
    target = safe_next(request.form.get("next"))
    email = request.form.get("email", "")
    try:
        vault_id = services().vaults.authenticate(email, request.form.get("password", ""))
    except LoginThrottled as error:
        page = render_template("login.html", next=target, error=str(error), email=email)
        return page, 429
    except AuthenticationFailed as error:
        page = render_template("login.html", next=target, error=str(error), email=email)
        return page, 401
    log_in(vault_id)
    return redirect(target, code=303)


@bp.post("/logout")
def logout() -> Response:
    """End the session."""
    log_out()
    return redirect(url_for("web.home"), code=303)
