"""The authorization endpoint: the customer logs in, sees what a vendor asks for and why,
and allows (perhaps fewer fields, for a chosen time) or denies.

Plain HTML forms that work without JavaScript, CSRF-protected, never framed. A request for
fields beyond a live grant asks only for what is new; a request for nothing new is
answered at once.
"""

from __future__ import annotations

from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.util import scope_to_list
from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from vault.access import Principal
from vault.events import Event
from vault.fields import spec_for
from vault.grants import DEFAULT_DAYS, DURATION_DAYS, Grant, live_grant
from vault.terms import term
from vault.vendors import PROFILE_SCOPE_PREFIX, Vendor
from vendor_api.endpoints import oauth_server
from vendor_api.oauth import ConsentedUser
from vrm.app_context import services
from vrm.http_errors import error_response
from vrm.services import issuer_of
from web.customer_session import current_vault
from web.policy import content_security_policy

bp = Blueprint("consent", __name__)


@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize() -> Response:
    """Validate the request, then ask the customer (or answer at once if nothing is new)."""
    server = oauth_server()
    response_types = [
        *request.args.getlist("response_type"),
        *request.form.getlist("response_type"),
    ]
    if not all(_printable(value) for value in response_types):
        return error_response(
            400, "unsupported_response_type", "only response_type=code is supported"
        )
    try:
        grant = server.get_consent_grant(end_user=None)
    except OAuth2Error as error:
        return _refuse(error)
    except ValueError:
        # Authlib puts what it refuses into its error's description, and refuses to build
        # one from characters OAuth errors may not carry (a quote, a backslash, non-ASCII).
        return error_response(
            400, "invalid_request", "a parameter holds characters an OAuth request may not"
        )
    vault_id = current_vault()
    if vault_id is None:
        return redirect(url_for("web.login_form", next=request.full_path), code=303)
    vendor: Vendor = grant.request.client.vendor
    requested = _fields_of(grant.request.scope)
    held = _held_fields(vault_id, vendor.client_id)
    new = [f for f in requested if f not in held]
    if request.method == "POST":
        return _decide(server, grant, vault_id, vendor, requested, new)
    if not new:
        return _answer(server, grant, vault_id, vendor, requested)
    held_now = [f for f in requested if f in held]
    return _consent_page(grant, vendor, new, held_now, services().vaults.terms(vault_id))


def _decide(
    server: Any, grant: Any, vault_id: str, vendor: Vendor, requested: list[str], new: list[str]
) -> Response:
    if request.form.get("decision") != "allow":
        return _deny(server, grant, vault_id, vendor)
    chosen = [f for f in request.form.getlist("field") if f in new]
    offered = {str(d): d for d in DURATION_DAYS}
    days = offered.get(request.form.get("duration", str(DEFAULT_DAYS)), 0)
    if not days:
        return error_response(400, "invalid_request", "choose one of the offered durations")
    if chosen:
        terms = services().vaults.terms(vault_id)
        services().consents.give(vault_id, vendor.client_id, chosen, days=days, terms=terms)
    if not _held_fields(vault_id, vendor.client_id) & set(requested):
        return _deny(server, grant, vault_id, vendor)
    return _answer(server, grant, vault_id, vendor, requested)


def _answer(
    server: Any, grant: Any, vault_id: str, vendor: Vendor, requested: list[str]
) -> Response:
    """Issue the code for what the live grant covers of what was requested."""
    live = _live(vault_id, vendor.client_id)
    if live is None:
        return _deny(server, grant, vault_id, vendor)
    scopes = tuple(PROFILE_SCOPE_PREFIX + f for f in requested if f in live.fields)
    user = ConsentedUser(Principal(vault_id, live.grant_id, live.epoch), scopes)
    return server.create_authorization_response(grant=grant, grant_user=user)  # type: ignore[no-any-return]


def _deny(server: Any, grant: Any, vault_id: str, vendor: Vendor) -> Response:
    """The customer said no: record it, and tell the vendor ``access_denied``."""
    consents = services().consents
    event = Event(
        "consent.denied",
        services().clock(),
        "customer",
        vault=consents.pseudonym(vault_id),
        vendor=vendor.client_id,
        fields=tuple(_fields_of(grant.request.scope)),
    )
    services().events.emit(event)
    return server.create_authorization_response(grant=grant, grant_user=None)  # type: ignore[no-any-return]


def _consent_page(
    grant: Any, vendor: Vendor, new: list[str], already: list[str], terms: tuple[str, ...]
) -> Response:
    redirect_uri = grant.request.payload.redirect_uri or vendor.redirect_uris[0]
    page = render_template(
        "consent.html",
        vendor=vendor,
        redirect_host=vendor.redirect_host(redirect_uri),
        fields=[
            {"name": f, "label": spec_for(f).label, "purpose": vendor.purpose_for(f)} for f in new
        ],
        already=[spec_for(f).label for f in already],
        terms=[term(t) for t in terms],
        durations=DURATION_DAYS,
        default_days=DEFAULT_DAYS,
        action=request.full_path,
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = content_security_policy(redirect_uri)
    response.headers["Cache-Control"] = "no-store"
    return response


def _refuse(error: OAuth2Error) -> Response:
    """An invalid request: back to the client if its redirect URI is trusted, else a page."""
    if error.redirect_uri:
        response: Response = oauth_server().handle_error_response(request, error)
        issuer = issuer_of(services().config)
        response.location = add_params_to_uri(response.location or "", {"iss": issuer})
        return response
    return error_response(400, error.error, error.get_error_description() or error.error)


def _printable(text: str) -> bool:
    """Whether a parameter can be echoed in an OAuth error (RFC 6749's character set)."""
    return all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text)


def _fields_of(scope: str | None) -> list[str]:
    return [
        s[len(PROFILE_SCOPE_PREFIX) :]
        for s in scope_to_list(scope) or []
        if s.startswith(PROFILE_SCOPE_PREFIX)
    ]


def _live(vault_id: str, vendor_id: str) -> Grant | None:
    doc = services().store.read_vault(vault_id)
    record = live_grant(doc, vendor_id, services().clock())
    return Grant.from_record(record) if record else None


def _held_fields(vault_id: str, vendor_id: str) -> set[str]:
    live = _live(vault_id, vendor_id)
    return set(live.fields) if live else set()
