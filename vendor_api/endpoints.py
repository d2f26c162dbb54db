"""The OAuth endpoints vendors call directly: token, revocation, introspection, and
dynamic client registration (RFC 7591)."""

from __future__ import annotations

import base64
import hmac
from typing import Any, cast

from flask import Blueprint, Response, current_app, jsonify, request

from vault.errors import InvalidClientMetadata
from vendor_api.oauth import VaultServer
from vrm.app_context import services

bp = Blueprint("oauth", __name__, url_prefix="/oauth")


@bp.before_request
def _well_formed() -> Response | None:
    """Refuse what Authlib would misread: a parameter sent twice (RFC 6749 section 3.2)
    and Basic credentials that are not UTF-8."""
    if request.path.endswith("/register"):
        return None
    repeated = [key for key, values in request.form.lists() if len(values) > 1]
    if repeated:
        return _error(400, "invalid_request", "a parameter was sent more than once")
    if not _basic_credentials_decode():
        return _error(401, "invalid_client", "the client credentials are not valid UTF-8")
    return None


def _basic_credentials_decode() -> bool:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return True
    try:
        base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def oauth_server() -> VaultServer:
    """The app's authorization server."""
    return cast(VaultServer, current_app.extensions["vrm_oauth"])


@bp.post("/token")
def token() -> Response:
    """RFC 6749 token endpoint: authorization_code, refresh_token, client_credentials."""
    return cast(Response, oauth_server().create_token_response())


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
    try:
        metadata = request.get_json(silent=True)
    except RecursionError:
        metadata = None
    if not isinstance(metadata, dict):
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
