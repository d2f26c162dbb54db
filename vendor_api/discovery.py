"""Discovery: RFC 8414 server metadata, the JWKS, and a health check."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from vault.fields import STANDARD_FIELDS
from vault.vendors import PROFILE_SCOPE_PREFIX, VENDOR_SCOPES
from vendor_api.oauth import OFFER_GRANT_TYPE
from vrm.app_context import services
from vrm.services import issuer_of

bp = Blueprint("discovery", __name__)

ENDPOINTS = {
    "authorization_endpoint": "/oauth/authorize",
    "token_endpoint": "/oauth/token",
    "registration_endpoint": "/oauth/register",
    "revocation_endpoint": "/oauth/revoke",
    "introspection_endpoint": "/oauth/introspect",
    "jwks_uri": "/jwks.json",
}


def server_metadata(issuer: str) -> dict[str, Any]:
    """The RFC 8414 metadata document for ``issuer``."""
    scopes = [PROFILE_SCOPE_PREFIX + name for name in STANDARD_FIELDS] + sorted(VENDOR_SCOPES)
    return {
        "issuer": issuer,
        **{name: issuer + path for name, path in ENDPOINTS.items()},
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            OFFER_GRANT_TYPE,
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "ui_locales_supported": ["en"],
        "service_documentation": issuer + "/developers",
    }


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> Response:
    """RFC 8414 authorization server metadata; every other endpoint is found from it."""
    response = jsonify(server_metadata(issuer_of(services().config)))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/jwks.json")
def jwks() -> dict[str, Any]:
    """The server's public signing keys: the current one (receipts, webhooks and log
    checkpoints are signed by it), then those retired by a rotation."""
    return services().keys.signing.current().jwks()


@bp.get("/healthz")
def health() -> dict[str, Any]:
    """Liveness: the process answers and can read its store (one keyed read)."""
    services().store.get("health", "ping")
    return {"status": "ok"}
