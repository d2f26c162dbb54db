"""The vendor's JSON API: the granted profile fields, the grant, and its receipt.

Every call checks the token against its grant now (``VendorAccess.authorize``), so a
customer's narrowing, revocation or erasure, an expiry, or a disabled vendor takes effect
on the vendor's very next request. Refusals follow RFC 6750 (``WWW-Authenticate``) and are
recorded as events.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from vault.access import AccessContext
from vault.events import Event
from vault.grants import Grant
from vault.tokens import InsufficientScope, InvalidToken
from vrm.app_context import services

bp = Blueprint("api", __name__, url_prefix="/api/v1")
REALM = 'realm="vrm-vault"'


class BearerError(Exception):
    """A request the API refuses, with its RFC 6750 status and error code."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description


@bp.app_errorhandler(BearerError)
def _bearer_error(error: BearerError) -> Response:
    response = jsonify(error=error.code, error_description=error.description)
    response.status_code = error.status
    challenge = f"Bearer {REALM}"
    if error.code != "invalid_request" or error.status != 401:
        challenge += f', error="{error.code}", error_description="{_quoted(error.description)}"'
    response.headers["WWW-Authenticate"] = challenge
    response.headers["Cache-Control"] = "no-store"
    return response


def authorized(*, grant_bound: bool = True) -> AccessContext:
    """The checked access context of this request, or a BearerError."""
    token = _bearer_token()
    access = services().access
    try:
        context = access.authorize(token)
    except InvalidToken as error:
        _record_refusal(token, str(error))
        raise BearerError(401, "invalid_token", str(error)) from None
    except InsufficientScope as error:
        _record_refusal(token, str(error))
        raise BearerError(403, "insufficient_scope", str(error)) from None
    if grant_bound and context.claims.vault_id is None:
        raise BearerError(403, "insufficient_scope", "this needs a token from a customer's grant")
    return context


@bp.get("/profile")
def profile() -> dict[str, Any]:
    """The granted, still active fields that have a value, with the pairwise ``sub``."""
    context = authorized()
    access = services().access
    try:
        shared = access.read_profile(context)
    except InvalidToken as error:
        _record_refusal(_bearer_token(), str(error))
        raise BearerError(401, "invalid_token", str(error)) from None
    return {"sub": access.subject(context.claims), **shared}


@bp.get("/grant")
def grant() -> dict[str, Any]:
    """The vendor's grant: fields and purposes, status, and when it ends."""
    context = authorized()
    view = _grant_view(context)
    return {
        "sub": services().access.subject(context.claims),
        "status": view.status,
        "fields": dict(view.fields),
        "scope": " ".join(context.scopes),
        "given_at": int(view.given_at.timestamp()),
        "expires_at": int(view.expires_at.timestamp()),
        "terms": list(view.terms),
    }


@bp.get("/grant/receipt")
def receipt() -> dict[str, Any]:
    """The latest signed consent receipt of the grant (a JWS), and every earlier one."""
    context = authorized()
    view = _grant_view(context)
    receipts = [{"event": r.event, "receipt": r.jws} for r in view.receipts]
    return {"receipt": receipts[-1]["receipt"], "receipts": receipts}


def _grant_view(context: AccessContext) -> Grant:
    if context.doc is None:
        raise BearerError(403, "insufficient_scope", "this needs a token from a customer's grant")
    return Grant.from_record(context.doc["grants"][context.claims.grant_id])


def json_object_body() -> dict[str, Any] | None:
    """The request's body if it is one JSON object sent as JSON; None for anything else
    (another content type, malformed or too deeply nested JSON, an array, a string)."""
    if not request.is_json:
        return None
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        return None
    return body if isinstance(body, dict) else None


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    if not header:
        raise BearerError(401, "invalid_request", "a bearer access token is required")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise BearerError(400, "invalid_request", "use the header 'Authorization: Bearer <token>'")
    return token


def _record_refusal(token: str, reason: str) -> None:
    """Log a refused request; the vendor is named only if the token really was ours."""
    claims = services().access.peek(token)
    consents = services().consents
    event = Event(
        "request.refused",
        services().clock(),
        "vendor",
        vault=consents.pseudonym(claims.vault_id) if claims and claims.vault_id else None,
        vendor=claims.client_id if claims else None,
        detail={"reason": reason, "path": request.path},
    )
    services().events.emit(event)


def _quoted(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')
