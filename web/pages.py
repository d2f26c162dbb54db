"""The customer's entry pages: the front page, log in and log out.

``bp`` is the blueprint every customer page joins (see ``web.PAGE_MODULES``).
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.access import ACCESS_TTL, CODE_TTL
from vault.errors import AuthenticationFailed, LoginThrottled
from vrm.app_context import services
from vrm.services import issuer_of
from web.customer_session import log_in, log_out, safe_next
from web.forms import sentence
from web.policy import content_security_policy

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


@bp.get("/developers")
def developers() -> str:
    """How a vendor connects, for a person: where the metadata's ``service_documentation``
    (RFC 8414) points. The JSON endpoints themselves are described at /openapi.json."""
    config = services().config
    return render_template(
        "developers.html",
        metadata_url=issuer_of(config) + "/.well-known/oauth-authorization-server",
        registration_token=bool(str(config["REGISTRATION_TOKEN"] or "")),
        access_minutes=ACCESS_TTL // 60,
        code_seconds=CODE_TTL,
        example=json.dumps(_EXAMPLE_CLIENT, indent=2),
    )


_EXAMPLE_CLIENT = {
    "client_name": "Example Shop",
    "redirect_uris": ["https://shop.example/callback"],
    "grant_types": ["authorization_code", "refresh_token"],
    "token_endpoint_auth_method": "client_secret_basic",
    "scope": "profile:email profile:postal_address",
    "vrm_field_purposes": {
        "email": "send your order confirmations",
        "postal_address": "deliver what you order",
    },
}


@bp.get("/login")
def login_form() -> Response:
    """The login form; ``next`` says where to continue afterwards."""
    target = _continue_to(request.args.get("next"))
    return _login_page(render_template("login.html", next=target, error=None), target)


@bp.post("/login")
def login() -> Response | tuple[str, int]:
    """Check the email and password; on success continue to ``next``."""
    target = _continue_to(request.form.get("next"))
    email = request.form.get("email", "")
    try:
        vault_id = services().vaults.authenticate(email, request.form.get("password", ""))
    except LoginThrottled as error:
        page = render_template("login.html", next=target, error=sentence(str(error)), email=email)
        return _login_page(page, target, 429)
    except AuthenticationFailed:
        page = render_template("login.html", next=target, error=_WRONG_LOGIN, email=email)
        return _login_page(page, target, 401)
    log_in(vault_id)
    return redirect(target, code=303)


def _login_page(page: str, target: str, status: int = 200) -> Response:
    """The login page, whose form may lead on to the vendor an authorization is for.

    Logging in to answer an authorization whose fields are all granted already ends in a
    redirect to the vendor straight away, and browsers hold the redirects that follow a
    form's post to the form page's form-action: so the page names that vendor's redirect
    origin, once the authorization's client and redirect URI check out.
    """
    response = Response(page, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(_resumes_to(target))
    return response


def _resumes_to(target: str) -> str | None:
    """The redirect URI the authorization in ``target`` would return to, if ``target`` is
    one and it names a registered redirect URI of an active vendor; else None."""
    parts = urlsplit(target)
    if parts.path != url_for("consent.authorize"):
        return None
    query = parse_qs(parts.query)
    client_id = (query.get("client_id") or [""])[0]
    vendor = services().vendors.get(client_id)
    if vendor is None or vendor.disabled:
        return None
    asked = query.get("redirect_uri") or []
    if len(asked) == 1 and vendor.allows_redirect_uri(asked[0]):
        return asked[0]
    if not asked and len(vendor.redirect_uris) == 1:
        return vendor.redirect_uris[0]
    return None


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
