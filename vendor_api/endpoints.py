"""The OAuth endpoints vendors call directly: token, revocation, introspection, and
dynamic client registration (RFC 7591).

Every refusal at the token endpoint is recorded as a ``request.refused`` event, like a
refused API call, so it reaches the audit log and, when it concerns a customer's grant,
that customer's access history.
"""

from __future__ import annotations

import base64
import hmac
from typing import Any, cast

from authlib.integrations.flask_oauth2.signals import client_authenticated
from flask import Blueprint, Response, current_app, g, jsonify, request

from vault.errors import InvalidClientMetadata
from vault.events import Event
from vault.tokens import CODE, REFRESH, TokenClaims
from vault.vendors import GRANT_TYPES, PROFILE_SCOPE_PREFIX
from vendor_api.oauth import OFFER_GRANT_TYPE, VaultServer
from vendor_api.resources import json_object_body
from vrm.app_context import services

bp = Blueprint("oauth", __name__, url_prefix="/oauth")
_GRANT_TYPES = (*GRANT_TYPES, OFFER_GRANT_TYPE)
_TOKEN_OF = {
    "authorization_code": ("code", CODE),
    "refresh_token": ("refresh_token", REFRESH),
    OFFER_GRANT_TYPE: ("code", CODE),
}
_SHORTEST_SECRET = 8
_LONGEST_REASON = 200


@bp.before_request
def _well_formed() -> Response | None:
    """Refuse what Authlib would misread: a parameter in the URL (Authlib reads the query
    before the form, so it could override what the body says; parameters go in the body,
    RFC 6749 section 3.2), a form or Basic credentials that are not UTF-8, a parameter sent
    twice and two ways of authenticating."""
    if request.path.endswith("/register"):
        return None
    if request.query_string:
        return _refused(400, "invalid_request", "send the parameters in the form body, not the URL")
    if request.mimetype == "application/x-www-form-urlencoded" and not _utf8(
        request.get_data(cache=True)  # Cached: the form is parsed from this copy.
    ):
        # Werkzeug reads such a body as an empty form, which would be refused for a
        # missing grant_type rather than for what is wrong.
        return _refused(400, "invalid_request", "the form body is not valid UTF-8")
    repeated = [key for key, values in request.form.lists() if len(values) > 1]
    if repeated:
        return _refused(400, "invalid_request", "a parameter was sent more than once")
    basic = _basic_header()
    if basic is not None and "client_secret" in request.form:
        # RFC 6749 section 2.3: one way to authenticate a request, not two.
        return _refused(
            400, "invalid_request", "authenticate with Basic or with client_secret, not both"
        )
    if basic is not None and _decoded(basic) is None:
        return _refused(401, "invalid_client", "the client credentials are not valid UTF-8")
    return None


def _refused(status: int, code: str, description: str) -> Response:
    """An error answer; at the token endpoint, recorded as a refused request. A 401 names
    the scheme to authenticate with (RFC 6749 section 5.2)."""
    if request.endpoint == "oauth.token":
        _record_token_refusal(code, description)
    response = _error(status, code, description)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="vrm-vault"'
    return response


def _basic_header() -> str | None:
    """The still encoded credentials of a Basic Authorization header; None without one.

    Split as Authlib does, on any whitespace, so "Basic\t<credentials>" counts too.
    """
    parts = request.headers.get("Authorization", "").split(None, 1)
    if not parts or parts[0].lower() != "basic":
        return None
    return parts[1].strip() if len(parts) > 1 else ""


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decoded(credentials: str) -> str | None:
    """Basic credentials decoded (``id:secret``), or None if not base64 of UTF-8."""
    try:
        return base64.b64decode(credentials, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


def oauth_server() -> VaultServer:
    """The app's authorization server."""
    return cast(VaultServer, current_app.extensions["vrm_oauth"])


@bp.post("/token")
def token() -> Response:
    """RFC 6749 token endpoint: authorization_code, refresh_token, client_credentials."""
    response = cast(Response, oauth_server().create_token_response())
    if 400 <= response.status_code < 500:
        body = response.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        _record_token_refusal(str(body.get("error", "")), str(body.get("error_description", "")))
    return response


def _note_authenticated_client(
    sender: object, client: Any = None, grant: Any = None, **_: object
) -> None:
    """Authlib's signal that the token request's client authenticated: remember who, if
    it proved it with a secret (a public client's ``none`` proves nothing)."""
    method = getattr(getattr(grant, "request", None), "auth_method", None)
    if client is not None and method not in (None, "none"):
        g.vrm_authenticated_client = client.get_client_id()


client_authenticated.connect(_note_authenticated_client)


def _record_token_refusal(code: str, description: str) -> None:
    """Record a refused token request as ``request.refused``.

    The vendor is named only if it authenticated with its secret, or if the code or refresh
    token it presented is one this server sealed (then the vendor it was issued to); the
    vault, and the token's fields, only for such a token. No credential, code or token
    value enters the event.
    """
    claims = _presented_claims()
    vendor = g.get("vrm_authenticated_client") or (claims.client_id if claims else None)
    grant_type = request.form.get("grant_type", "")
    detail: dict[str, str | int | bool] = {
        "reason": _without_secrets(description) or code,
        "error": code,
        "path": request.path,
        "grant_type": grant_type if grant_type in _GRANT_TYPES else "other",
    }
    vault_id = claims.vault_id if claims else None
    event = Event(
        "request.refused",
        services().clock(),
        "vendor",
        vault=services().consents.pseudonym(vault_id) if vault_id else None,
        vendor=vendor,
        fields=_fields_of(claims),
        detail=detail,
    )
    services().events.emit(event)


def _presented_claims() -> TokenClaims | None:
    """The claims of the code or refresh token the request presented, if this server
    sealed it (whether or not it is still good)."""
    name, kind = _TOKEN_OF.get(request.form.get("grant_type", ""), ("", ""))
    value = request.form.get(name, "") if name else ""
    return services().access.peek(value, kind) if value else None


def _fields_of(claims: TokenClaims | None) -> tuple[str, ...]:
    if claims is None:
        return ()
    prefix = PROFILE_SCOPE_PREFIX
    return tuple(s[len(prefix) :] for s in claims.scopes if s.startswith(prefix))


def _without_secrets(text: str) -> str:
    """``text`` with every value the request sent (form fields, Basic credentials) cut out,
    so an error description that echoes one never carries it into the log."""
    sent = [value for _, value in request.form.items(multi=True)]
    sent.extend(_basic_credentials())
    for value in sorted(sent, key=len, reverse=True):
        if len(value) >= _SHORTEST_SECRET:
            text = text.replace(value, "[redacted]")
    return text[:_LONGEST_REASON]


def _basic_credentials() -> list[str]:
    basic = _basic_header()
    decoded = None if basic is None else _decoded(basic)
    return [] if decoded is None else decoded.split(":", 1)


@bp.post("/revoke")
def revoke() -> Response:
    """RFC 7009 revocation."""
    return cast(Response, oauth_server().create_endpoint_response("revocation"))


@bp.post("/introspect")
def introspect() -> Response:
    """RFC 7662 introspection; a vendor sees only its own tokens."""
    return cast(Response, oauth_server().create_endpoint_response("introspection"))


@bp.post("/register")
def register() -> Response | tuple[Response, int]:
    """RFC 7591 dynamic registration of a vendor."""
    refused = _check_initial_access_token()
    if refused is not None:
        return refused
    if not request.is_json:
        return _error(400, "invalid_client_metadata", "send the metadata as application/json")
    metadata = json_object_body()
    if metadata is None:
        return _error(400, "invalid_client_metadata", "the body must be one JSON object")
    try:
        vendor, secret = services().vendors.register(metadata)
    except InvalidClientMetadata as error:
        return _error(400, error.code, str(error))
    body: dict[str, Any] = vendor.metadata()
    if secret is not None:
        body["client_secret"] = secret
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 201


def _check_initial_access_token() -> Response | None:
    """When the operator set REGISTRATION_TOKEN, registration needs it as a bearer token."""
    expected = str(services().config["REGISTRATION_TOKEN"])
    if not expected:
        return None
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    matches = hmac.compare_digest(sent.strip().encode(), expected.encode())
    if scheme.lower() == "bearer" and matches:
        return None
    response = _error(401, "invalid_token", "registration needs the operator's access token")
    response.headers["WWW-Authenticate"] = 'Bearer realm="vrm-vault", error="invalid_token"'
    return response


def _error(status: int, code: str, description: str) -> Response:
    response = jsonify(error=code, error_description=description)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response
