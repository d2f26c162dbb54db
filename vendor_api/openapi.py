"""The OpenAPI 3.1 description of every JSON endpoint, served at ``/openapi.json``.

Vendors and their tools (client generators, API consoles, contract tests) read the protocol
from one machine-readable place rather than from prose. The document is built from the same
constants the server enforces (scopes, field names, token lifetime, registration limits,
consent durations), so those cannot drift apart, and ``tests/test_openapi.py`` checks it
against the routes the app registers and against real responses. It describes only what
this server does today: where it departs from an RFC's usual answer, the document says so.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from vault.access import ACCESS_TTL
from vault.fields import STANDARD_FIELDS
from vault.grants import DEFAULT_DAYS, DURATION_DAYS
from vault.vendors import (
    AUTH_METHODS,
    GRANT_TYPES,
    MAX_CONTACTS,
    MAX_NAME_CHARS,
    MAX_PURPOSE_CHARS,
    MAX_REDIRECT_URIS,
    MAX_SCOPES,
    MAX_URI_CHARS,
    PROFILE_SCOPE_PREFIX,
    VENDOR_SCOPES,
)
from vendor_api.discovery import ENDPOINTS
from vendor_api.oauth import OFFER_GRANT_TYPE
from vendor_api.openapi_reach import reach_paths, reach_schemas
from vrm.app_context import services
from vrm.services import issuer_of

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.1.0"
API_VERSION = "v1"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
CUSTOM_FIELD_PATTERN = "^x-[a-z0-9][a-z0-9_-]{0,62}$"
SUBJECT_PATTERN = "^[0-9a-f]{32}$"
JWS_PATTERN = r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"
CLIENT_ID_PATTERN = "^vnd_[0-9a-f]{24}$"
#: Text the server trims and refuses when nothing is left: it must hold a visible character.
NOT_BLANK = r"\S"
#: RFC 6749 scope: scope-tokens (%x21 / %x23-5B / %x5D-7E) separated by spaces.
SCOPE_PATTERN = r"^ *[\x21\x23-\x5b\x5d-\x7e]+( +[\x21\x23-\x5b\x5d-\x7e]+)* *$"

VENDOR_SCOPE_PURPOSES = {
    "segments:query": "Count customers matching a predicate over segmentable fields.",
    "offers:send": "Send offers to a segment of customers.",
    "intents:read": "Read intents customers published, without their identity.",
}
"""What each vendor-level scope (client credentials only) is for."""


@bp.get("/openapi.json")
def document() -> Response:
    """This server's OpenAPI document, with the issuer as its server URL."""
    response = jsonify(openapi_document(issuer_of(services().config)))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def openapi_document(issuer: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every JSON endpoint the server at ``issuer`` answers."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(),
        "servers": [{"url": issuer, "description": "this vault (its OAuth issuer)"}],
        "tags": _tags(),
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "responses": _responses(),
            "headers": _headers(),
            "securitySchemes": _security_schemes(issuer),
        },
    }


def profile_scopes() -> dict[str, str]:
    """``profile:<field>`` for every standard field, with what reading it gives."""
    return {
        PROFILE_SCOPE_PREFIX + name: f"Read the customer's {spec.label.lower()}: {spec.description}"
        for name, spec in STANDARD_FIELDS.items()
    }


def _info() -> dict[str, Any]:
    return {
        "title": "vrm-vault vendor API",
        "version": API_VERSION,
        "summary": "OAuth 2.0 access to the fields customers choose to share, field by field.",
        "description": (
            "Every endpoint is found from the RFC 8414 metadata at "
            "`/.well-known/oauth-authorization-server`. Vendors register (RFC 7591), "
            "stating a purpose for every profile field they ask for; customers consent "
            "field by field at `/oauth/authorize` (a browser endpoint: HTML and redirects); "
            "vendors then read exactly the granted, still active fields at "
            "`/api/v1/profile`. Every API call checks the grant, so a customer's narrowing "
            "or revocation takes effect on the vendor's very next request. Errors are JSON "
            '`{"error", "error_description"}` with a 4xx status.'
        ),
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
    }


def _tags() -> list[dict[str, str]]:
    return [
        {"name": "discovery", "description": "Server metadata, signing keys, health."},
        {"name": "oauth", "description": "Token, revocation and introspection endpoints."},
        {"name": "registration", "description": "RFC 7591 dynamic client registration."},
        {"name": "api", "description": "The vendor's view of one customer's grant."},
        {"name": "browser", "description": "Pages a customer's browser is sent to."},
        {"name": "auditor", "description": "The auditor's read-only view of the log."},
        {"name": "reach", "description": "Segment counts, offers and intents (vendor-level)."},
    ]


# Paths.


def _paths() -> dict[str, Any]:
    return {
        "/.well-known/oauth-authorization-server": {"get": _metadata_operation()},
        ENDPOINTS["jwks_uri"]: {"get": _jwks_operation()},
        "/healthz": {"get": _health_operation()},
        "/audit/checkpoint": {"get": _checkpoint_operation()},
        "/audit/proof/inclusion": {"get": _inclusion_operation()},
        "/audit/proof/consistency": {"get": _proof_operation("consistency", ["old", "new"])},
        "/openapi.json": {"get": _openapi_operation()},
        ENDPOINTS["authorization_endpoint"]: _authorize_path(),
        ENDPOINTS["token_endpoint"]: {"post": _token_operation()},
        ENDPOINTS["revocation_endpoint"]: {"post": _revocation_operation()},
        ENDPOINTS["introspection_endpoint"]: {"post": _introspection_operation()},
        ENDPOINTS["registration_endpoint"]: {"post": _registration_operation()},
        f"/api/{API_VERSION}/profile": {"get": _profile_operation()},
        f"/api/{API_VERSION}/grant": {"get": _grant_operation()},
        f"/api/{API_VERSION}/grant/receipt": {"get": _receipt_operation()},
        f"/api/{API_VERSION}/audit/log": {"get": _auditor_log_operation()},
        f"/api/{API_VERSION}/audit/vendors": {"get": _auditor_vendors_operation()},
        f"/api/{API_VERSION}/audit/receipts": {"get": _auditor_receipt_operation()},
        **reach_paths(API_VERSION),
    }


def _metadata_operation() -> dict[str, Any]:
    return {
        "tags": ["discovery"],
        "operationId": "getServerMetadata",
        "summary": "RFC 8414 authorization server metadata",
        "description": "Every other endpoint is found from this document.",
        "security": [],
        "responses": {
            "200": _json_ok("The metadata.", "ServerMetadata", cache="public, max-age=300"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _jwks_operation() -> dict[str, Any]:
    return {
        "tags": ["discovery"],
        "operationId": "getJwks",
        "summary": "The server's public signing keys (RFC 7517 JWK Set)",
        "description": (
            "Consent receipts, webhooks and audit log checkpoints are signed by the first key "
            "(the current one); the keys after it were retired by a rotation and are listed "
            "so that what they signed still verifies. Find a JWS's key by its `kid`."
        ),
        "security": [],
        "responses": {
            "200": _json_ok("The key set.", "JWKS"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _checkpoint_operation() -> dict[str, Any]:
    return {
        "tags": ["audit"],
        "operationId": "getCheckpoint",
        "summary": "A signed C2SP tlog-checkpoint of the audit log as it is now",
        "description": (
            "Origin line, tree size, base64 root hash, a blank line, and an Ed25519 note "
            "signature. Never inconsistent with a checkpoint signed before."
        ),
        "security": [],
        "responses": {
            "200": {
                "description": "The signed note.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "5XX": _ref_response("ServerError"),
        },
    }


def _proof_operation(kind: str, names: list[str]) -> dict[str, Any]:
    hashes = {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}}
    base64_hash = {"type": "string", "contentEncoding": "base64"}
    fields = ["leaf_hash", "root"] if kind == "inclusion" else ["old_root", "new_root"]
    schema = {
        "type": "object",
        "required": [*names, *fields, "proof"],
        "properties": {
            **{name: {"type": "integer", "minimum": 0} for name in names},
            **dict.fromkeys(fields, base64_hash),
            "proof": hashes,
        },
    }
    return {
        "tags": ["audit"],
        "operationId": f"get{kind.title()}Proof",
        "summary": f"An RFC 9162 {kind} proof in the audit log",
        "security": [],
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": True,
                "schema": {"type": "integer", "minimum": 0 if name == "index" else 1},
            }
            for name in names
        ],
        "responses": {
            "200": {"description": "The proof.", "content": {JSON: {"schema": schema}}},
            "400": {
                "description": "Sizes or index outside the log.",
                "content": {JSON: {"schema": _schema_ref("Error")}},
            },
            "5XX": _ref_response("ServerError"),
        },
    }


def _inclusion_operation() -> dict[str, Any]:
    operation = _proof_operation("inclusion", ["index", "size"])
    operation["description"] = (
        "Without `size`, the proof is in the tree of the latest signed checkpoint (one is "
        "signed first if none covers the entry yet), and the answer carries that checkpoint: "
        "check its signature, then the proof against its root."
    )
    operation["parameters"][1]["required"] = False
    schema = operation["responses"]["200"]["content"][JSON]["schema"]
    schema["properties"]["checkpoint"] = {
        "type": "string",
        "description": "The signed checkpoint (a C2SP signed note) of the tree of `size` "
        "entries: always there without `size`; with it, only if that is the latest one.",
    }
    return operation


def _health_operation() -> dict[str, Any]:
    return {
        "tags": ["discovery"],
        "operationId": "getHealth",
        "summary": "Liveness: the process answers and can read its store",
        "security": [],
        "responses": {
            "200": _json_ok("The server is up.", "Health"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _openapi_operation() -> dict[str, Any]:
    return {
        "tags": ["discovery"],
        "operationId": "getOpenApiDocument",
        "summary": "This OpenAPI document",
        "security": [],
        "responses": {
            "200": {
                "description": "The OpenAPI 3.1 document.",
                "headers": {"Cache-Control": _cache_header("public, max-age=300")},
                "content": {JSON: {"schema": {"type": "object", "required": ["openapi"]}}},
            },
        },
    }


def _authorize_path() -> dict[str, Any]:
    return {
        "summary": "The authorization endpoint (browser only: HTML pages and redirects)",
        "description": (
            "Send the customer's browser here; it is not called by vendor code. The customer "
            "logs in (a redirect to `/login` first if needed), sees one checkbox per "
            "requested field with the vendor's stated purpose, and allows (perhaps fewer "
            "fields, for a chosen time) or denies. A request for nothing beyond the live "
            "grant is answered at once. PKCE with S256 is required of every client."
        ),
        "parameters": _authorize_parameters(),
        "get": _authorize_get(),
        "post": _authorize_post(),
    }


def _authorize_parameters() -> list[dict[str, Any]]:
    def query(name: str, required: bool, schema: dict[str, Any], text: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "schema": schema,
            "description": text,
        }

    return [
        query("response_type", True, {"const": "code"}, "Only the code flow is supported."),
        query(
            "client_id",
            True,
            {"type": "string", "pattern": CLIENT_ID_PATTERN},
            "The vendor's client id.",
        ),
        query(
            "redirect_uri",
            False,
            {"type": "string", "format": "uri"},
            "Matched exactly against a registered one; optional only when exactly one "
            "is registered.",
        ),
        query(
            "scope",
            False,
            {"type": "string", "pattern": SCOPE_PATTERN},
            "Space-separated `profile:<field>` scopes, each registered by the vendor; "
            "absent means every registered profile scope.",
        ),
        query("state", False, {"type": "string"}, "Echoed back unchanged (recommended)."),
        query(
            "code_challenge",
            True,
            {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            "BASE64URL(SHA-256(code_verifier)) without padding (RFC 7636).",
        ),
        query("code_challenge_method", True, {"const": "S256"}, "`plain` is refused."),
    ]


def _authorize_get() -> dict[str, Any]:
    return {
        "tags": ["browser"],
        "operationId": "authorize",
        "summary": "Ask the customer for consent",
        "security": [],
        "responses": {
            "200": {"description": "The consent page.", "content": {"text/html": {}}},
            **_authorize_redirects(),
        },
    }


def _authorize_post() -> dict[str, Any]:
    fields = {
        "csrf_token": {"type": "string", "minLength": 1, "description": "From the consent page."},
        "decision": {"enum": ["allow", "deny"]},
        "field": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The fields the customer left checked.",
        },
        "duration": {
            "enum": [str(days) for days in DURATION_DAYS],
            "default": str(DEFAULT_DAYS),
            "description": "Days the grant lasts.",
        },
    }
    return {
        "tags": ["browser"],
        "operationId": "decideConsent",
        "summary": "The consent form's answer (posted by the customer's browser)",
        "security": [],
        "requestBody": {
            "required": True,
            "content": {
                FORM: {
                    "schema": {
                        "type": "object",
                        "properties": fields,
                        "required": ["csrf_token", "decision"],
                    }
                }
            },
        },
        "responses": _authorize_redirects(),
    }


def _authorize_redirects() -> dict[str, Any]:
    return {
        "302": {
            "description": (
                "Back to the vendor's redirect URI with `code`, `state` and `iss` (RFC 9207), "
                "or with `error` (such as `access_denied` or `invalid_scope`), "
                "`error_description`, `state` and `iss`."
            ),
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        "303": {"description": "To the login page first; it continues here afterwards."},
        "400": {
            "description": (
                "The client or redirect URI cannot be trusted, or the form is invalid: an "
                "error page, or the Error JSON for a client that prefers JSON."
            ),
            "content": {"text/html": {}, JSON: {"schema": _schema_ref("Error")}},
        },
    }


def _token_operation() -> dict[str, Any]:
    return {
        "tags": ["oauth"],
        "operationId": "token",
        "summary": "RFC 6749 token endpoint",
        "description": (
            "Three grant types: `authorization_code` (with the PKCE `code_verifier`), "
            "`refresh_token` (refresh tokens rotate: each is used once, and reusing one "
            "revokes every token of its grant) and `client_credentials` (vendor-level scopes "
            "only, confidential clients only). Confidential clients authenticate with HTTP "
            "Basic (`client_secret_basic`) or with `client_id` and `client_secret` in the "
            "form (`client_secret_post`); public clients send `client_id` alone. A request "
            "for more than the grant still allows gets what it allows, and `scope` in the "
            "answer says what that is; only when nothing requested is still granted is the "
            "answer `invalid_scope`. A refresh keeps the refresh token's own scope (RFC 6749 "
            "section 6) whatever the access token was asked for. A code exchange gives what "
            "the grant allows at the exchange. Parameters go in the form body: a request with "
            "a query string is `invalid_request`. A wrong `code_verifier` or `redirect_uri` "
            "leaves the code unused."
        ),
        "security": _client_auth_security(),
        "requestBody": _form_body("TokenRequest"),
        "responses": {
            "200": _json_ok("The tokens.", "TokenResponse", cache="no-store", pragma=True),
            "400": _oauth_error(
                "The request was refused; `invalid_client` when a `client_id` sent in the "
                "form names no registered, active client (any other failed client "
                "authentication is a 401).",
                [
                    "invalid_request",
                    "invalid_client",
                    "invalid_grant",
                    "unauthorized_client",
                    "unsupported_grant_type",
                    "invalid_scope",
                ],
            ),
            "401": _ref_response("ClientAuthFailed"),
            "413": _ref_response("TooLarge"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _revocation_operation() -> dict[str, Any]:
    return {
        "tags": ["oauth"],
        "operationId": "revoke",
        "summary": "RFC 7009 token revocation",
        "description": (
            "Revokes an access or refresh token the calling client holds; revoking a refresh "
            "token ends every token of its grant, and an unused authorization code can no "
            "longer be exchanged. An unknown, invalid or foreign token is "
            "answered 200 as well (RFC 7009 section 2.2). Public clients identify with "
            "`client_id` in the form."
        ),
        "security": _client_auth_security(),
        "requestBody": _form_body("TokenHintRequest"),
        "responses": {
            "200": _json_ok("Revoked, or nothing to revoke.", "Empty", cache="no-store"),
            "400": _oauth_error(
                "`token` is missing (`invalid_request`), or a `client_id` sent in the form "
                "names no registered, active client (`invalid_client`; any other failed "
                "client authentication is a 401).",
                ["invalid_request", "invalid_client"],
            ),
            "401": _ref_response("ClientAuthFailedOrTokenType"),
            "413": _ref_response("TooLarge"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _introspection_operation() -> dict[str, Any]:
    return {
        "tags": ["oauth"],
        "operationId": "introspect",
        "summary": "RFC 7662 token introspection",
        "description": (
            "For confidential clients, about their own tokens only: any other token, and "
            "any token no longer usable (expired, revoked, rotated, grant ended, every field "
            'it was for withdrawn), is `{"active": false}`. `scope` is what the grant still '
            "allows."
        ),
        "security": _client_auth_security(),
        "requestBody": _form_body("TokenHintRequest"),
        "responses": {
            "200": _json_ok("What the token is.", "Introspection", cache="no-store"),
            "400": _oauth_error(
                "`token` is missing (`invalid_request`), or a `client_id` sent in the form "
                "names no registered, active client (`invalid_client`; any other failed "
                "client authentication is a 401).",
                ["invalid_request", "invalid_client"],
            ),
            "401": _ref_response("ClientAuthFailedOrTokenType"),
            "413": _ref_response("TooLarge"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _registration_operation() -> dict[str, Any]:
    return {
        "tags": ["registration"],
        "operationId": "registerClient",
        "summary": "RFC 7591 dynamic client registration",
        "description": (
            "Register a vendor. The client secret is returned this once; only its digest is "
            "kept. When the operator configured an initial access token (RFC 7591 section "
            "3), send it as a bearer token; otherwise no authentication is needed."
        ),
        "security": [{"initialAccessToken": []}, {}],
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": _schema_ref("ClientMetadata")}},
        },
        "responses": {
            "201": _json_ok("Registered.", "ClientInformation", cache="no-store"),
            "400": _oauth_error(
                "The metadata broke a rule; the description names the member.",
                ["invalid_client_metadata", "invalid_redirect_uri"],
            ),
            "401": _bearer_error(
                "An initial access token is required and was missing or wrong.",
                ["invalid_token"],
            ),
            "413": _ref_response("TooLarge"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _profile_operation() -> dict[str, Any]:
    return _api_operation(
        "getProfile",
        "The granted, still active profile fields",
        "Exactly the fields the grant allows now and that have a value, with the pairwise "
        "`sub`. Fields without a value are left out.",
        _json_ok("The profile.", "Profile"),
    )


def _grant_operation() -> dict[str, Any]:
    return _api_operation(
        "getGrant",
        "The vendor's grant from this customer",
        "The granted fields with their purposes, when the grant was given and when it ends.",
        _json_ok("The grant.", "Grant"),
    )


def _receipt_operation() -> dict[str, Any]:
    return _api_operation(
        "getGrantReceipt",
        "The grant's signed consent receipts",
        "The latest receipt (a JWS signed by a key in `/jwks.json`) and every earlier one.",
        _json_ok("The receipts.", "Receipts"),
    )


def _api_operation(
    operation_id: str, summary: str, description: str, ok: dict[str, Any]
) -> dict[str, Any]:
    return {
        "tags": ["api"],
        "operationId": operation_id,
        "summary": summary,
        "description": description + " Needs an access token from a customer's grant; "
        "a client credentials token is refused with `insufficient_scope`.",
        "security": [{"bearerAuth": []}, {"oauth2": []}],
        "responses": {
            "200": ok,
            "400": _ref_response("BearerMalformed"),
            "401": _ref_response("BearerUnauthorized"),
            "403": _ref_response("BearerForbidden"),
            "5XX": _ref_response("ServerError"),
        },
    }


def _auditor_operation(
    operation_id: str, summary: str, description: str, schema: dict[str, Any]
) -> dict[str, Any]:
    error = {"content": {JSON: {"schema": _schema_ref("Error")}}}
    return {
        "tags": ["auditor"],
        "operationId": operation_id,
        "summary": summary,
        "description": description + " Read-only; needs an auditor API token "
        "(`vrm auditor token`), which works on no other endpoint. Every call is logged as "
        "an `auditor.access` event.",
        "security": [{"auditorToken": []}],
        "responses": {
            "200": {"description": "The answer.", "content": {JSON: {"schema": schema}}},
            "400": {"description": "A parameter is out of range.", **error},
            "401": {"description": "No valid auditor token (`invalid_token`).", **error},
            "5XX": _ref_response("ServerError"),
        },
    }


def _auditor_log_operation() -> dict[str, Any]:
    whole = {"type": "integer", "minimum": 0}
    entry = {
        "type": "object",
        "required": ["index", "entry"],
        "properties": {"index": whole, "entry": {"type": "object"}},
    }
    schema = {
        "type": "object",
        "required": ["size", "start", "end", "entries"],
        "properties": {
            "size": whole,
            "start": whole,
            "end": whole,
            "entries": {"type": "array", "items": entry},
        },
    }
    operation = _auditor_operation(
        "getAuditLog",
        "Audit log entries with their indexes",
        "Entries from `start` (default 0) up to `end` (default the log's size), at most "
        "1000 per call.",
        schema,
    )
    operation["parameters"] = [
        {"name": name, "in": "query", "required": False, "schema": whole}
        for name in ("start", "end")
    ]
    return operation


def _auditor_vendors_operation() -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    states = ["active", "revoked", "expired", "erased", "disabled"]
    events = ["given", "extended", "narrowed", "revoked", "expired"]
    vendor = {
        "type": "object",
        "required": ["grants", "grant_events", "reads", "refused"],
        "properties": {
            "grants": {
                "type": "object",
                "required": states,
                "properties": dict.fromkeys(states, count),
                "description": "Grants as they stand: active now, or how each ended.",
            },
            "grant_events": {
                "type": "object",
                "required": events,
                "properties": dict.fromkeys(events, count),
            },
            "reads": {"type": "object", "additionalProperties": count},
            "refused": count,
        },
    }
    schema = {
        "type": "object",
        "required": ["vendors"],
        "properties": {"vendors": {"type": "object", "additionalProperties": vendor}},
    }
    return _auditor_operation(
        "getAuditVendorSummary",
        "Per-vendor summary computed from the log",
        "For each vendor: its grants as they stand (active, or ended by revocation, expiry "
        "or erasure of the vault), derived from the grant events; the grant events by kind; "
        "reads per field; refused requests.",
        schema,
    )


def _auditor_receipt_operation() -> dict[str, Any]:
    text = {"type": "string"}
    schema = {
        "type": "object",
        "required": ["receipt_id", "event", "at", "verifies", "claims"],
        "properties": {
            "receipt_id": text,
            "event": {"enum": ["given", "extended", "narrowed", "revoked", "expired"]},
            "at": {"type": "string", "format": "date-time"},
            "verifies": {
                "type": "boolean",
                "description": "Whether the JWS verifies with the keys at `/jwks.json`.",
            },
            "claims": {
                "type": "object",
                "description": "The receipt's claims (empty when it does not verify).",
            },
            "problem": {"type": "string", "description": "Why it does not verify."},
        },
    }
    operation = _auditor_operation(
        "getAuditReceipt",
        "A consent receipt by its id",
        "The receipt's event, time and claims (Kantara Consent Receipt fields: pseudonyms, "
        "the vendor, purposes and field names, never a profile value), and whether its "
        "signature verifies.",
        schema,
    )
    operation["parameters"] = [
        {
            "name": "id",
            "in": "query",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
            "description": "The receipt id: its `consentReceiptID` (a UUID).",
        }
    ]
    operation["responses"]["404"] = {
        "description": "No receipt has that id (`not_found`).",
        "content": {JSON: {"schema": _schema_ref("Error")}},
    }
    return operation


# Response building blocks.


def _json_ok(
    description: str, schema: str, *, cache: str | None = None, pragma: bool = False
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if cache:
        headers["Cache-Control"] = _cache_header(cache)
    if pragma:
        headers["Pragma"] = _header_ref("Pragma")
    response: dict[str, Any] = {"description": description}
    if headers:
        response["headers"] = headers
    response["content"] = {JSON: {"schema": _schema_ref(schema)}}
    return response


def _oauth_error(description: str, codes: list[str], **headers: Any) -> dict[str, Any]:
    """An Error response whose ``error`` is one of ``codes``."""
    response: dict[str, Any] = {
        "description": f"{description} `error` is one of: {', '.join(codes)}.",
        "content": {JSON: {"schema": _error_schema(codes)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _bearer_error(description: str, codes: list[str]) -> dict[str, Any]:
    """An Error response with the RFC 6750 ``WWW-Authenticate: Bearer`` challenge."""
    return _oauth_error(description, codes, **{"WWW-Authenticate": _header_ref("BearerChallenge")})


def _error_schema(codes: list[str]) -> dict[str, Any]:
    return {**_schema_ref("Error"), "properties": {"error": {"enum": codes}}}


def _cache_header(value: str) -> dict[str, Any]:
    return {"schema": {"const": value}, "description": f"Always `{value}`."}


def _form_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {FORM: {"schema": _schema_ref(schema)}}}


def _client_auth_security() -> list[dict[str, list[str]]]:
    """HTTP Basic, or credentials in the form body, which OpenAPI cannot name as a scheme:
    the empty requirement stands for ``client_secret_post`` (and public clients)."""
    return [{"clientBasic": []}, {}]


def _schema_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ref_response(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _header_ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _responses() -> dict[str, Any]:
    basic = {"WWW-Authenticate": _header_ref("BasicChallenge")}
    return {
        "ClientAuthFailed": _oauth_error(
            "Client authentication failed (unknown client, wrong secret, or a method the "
            "client did not register).",
            ["invalid_client"],
            **basic,
        ),
        "ClientAuthFailedOrTokenType": _oauth_error(
            "Client authentication failed (with a `WWW-Authenticate: Basic` challenge). "
            "`token_type_hint` is ignored: every token names its own kind.",
            ["invalid_client"],
        ),
        "BearerMalformed": _bearer_error(
            "The Authorization header is not `Bearer <token>`.", ["invalid_request"]
        ),
        "BearerUnauthorized": _bearer_error(
            "No access token (`invalid_request`, with a bare challenge), or one that is not "
            "usable now: expired, revoked, its grant ended or its vendor disabled "
            "(`invalid_token`).",
            ["invalid_request", "invalid_token"],
        ),
        "BearerForbidden": _bearer_error(
            "None of the token's fields is still granted, or the token is not from a "
            "customer's grant.",
            ["insufficient_scope"],
        ),
        "TooLarge": _oauth_error("The request body is larger than 1 MiB.", ["invalid_request"]),
        "ServerError": _oauth_error(
            "The server failed (500) or its store is unavailable (503).",
            ["server_error", "temporarily_unavailable"],
        ),
    }


def _headers() -> dict[str, Any]:
    return {
        "Pragma": {"schema": {"const": "no-cache"}},
        "BasicChallenge": {
            "description": '`Basic error="invalid_client", error_description="..."`.',
            "schema": {"type": "string", "pattern": "^Basic "},
        },
        "BearerChallenge": {
            "description": (
                'RFC 6750 challenge: `Bearer realm="vrm-vault"`, with `error` and '
                "`error_description` unless the request simply carried no token."
            ),
            "schema": {"type": "string", "pattern": "^Bearer "},
        },
    }


# Security schemes.


def _security_schemes(issuer: str) -> dict[str, Any]:
    token_url = issuer + ENDPOINTS["token_endpoint"]
    return {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": f"An access token from the token endpoint; lives {ACCESS_TTL} s.",
        },
        "clientBasic": {
            "type": "http",
            "scheme": "basic",
            "description": (
                "Client authentication `client_secret_basic`: the client id and secret "
                "(RFC 6749 section 2.3.1). `client_secret_post` sends them in the form body "
                "instead."
            ),
        },
        "auditorToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "An auditor's read-only API token from `vrm auditor token`.",
        },
        "initialAccessToken": {
            "type": "http",
            "scheme": "bearer",
            "description": "The operator's initial access token for registration, if set.",
        },
        "oauth2": {
            "type": "oauth2",
            "description": (
                "Authorization code with PKCE (S256 only, required of every client) for "
                "`profile:<field>` scopes, through the customer's consent; client credentials "
                "for vendor-level scopes. Custom fields are `profile:x-<name>`."
            ),
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": issuer + ENDPOINTS["authorization_endpoint"],
                    "tokenUrl": token_url,
                    "refreshUrl": token_url,
                    "scopes": profile_scopes(),
                },
                "clientCredentials": {"tokenUrl": token_url, "scopes": VENDOR_SCOPE_PURPOSES},
            },
        },
    }


# Schemas.


def _schemas() -> dict[str, Any]:
    return {
        "Error": _error(),
        "ServerMetadata": _server_metadata(),
        "JWKS": _jwks(),
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        "TokenRequest": _token_request(),
        "AuthorizationCodeRequest": _code_request(),
        "RefreshTokenRequest": _refresh_request(),
        "ClientCredentialsRequest": _client_credentials_request(),
        "TokenResponse": _token_response(),
        "TokenHintRequest": _token_hint_request(),
        "Introspection": _introspection(),
        "Empty": {"type": "object", "maxProperties": 0},
        "ClientMetadata": _client_metadata(),
        "ClientInformation": _client_information(),
        "Profile": _profile(),
        "Grant": _grant(),
        "Receipts": _receipts(),
        **reach_schemas(),
    }


def _error() -> dict[str, Any]:
    return {
        "type": "object",
        "description": (
            "Every error. `error` is an OAuth error code where OAuth defines one; "
            "`error_description` says in words what went wrong."
        ),
        "required": ["error", "error_description"],
        "properties": {
            "error": {"type": "string", "pattern": "^[a-z_]+$"},
            "error_description": {"type": "string"},
        },
        "additionalProperties": False,
    }


def _server_metadata() -> dict[str, Any]:
    uri = {"type": "string", "format": "uri"}
    strings = {"type": "array", "items": {"type": "string"}}
    properties: dict[str, Any] = {"issuer": uri, **dict.fromkeys(ENDPOINTS, uri)}
    properties.update(
        {
            "scopes_supported": strings,
            "response_types_supported": {"type": "array", "items": {"const": "code"}},
            "response_modes_supported": strings,
            "grant_types_supported": {
                "type": "array",
                "items": {"enum": [*GRANT_TYPES, OFFER_GRANT_TYPE]},
            },
            "token_endpoint_auth_methods_supported": strings,
            "revocation_endpoint_auth_methods_supported": strings,
            "introspection_endpoint_auth_methods_supported": strings,
            "code_challenge_methods_supported": {"const": ["S256"]},
            "authorization_response_iss_parameter_supported": {"type": "boolean"},
            "ui_locales_supported": strings,
            "service_documentation": uri,
        }
    )
    return {
        "type": "object",
        "description": "RFC 8414 metadata; clients ignore members they do not know.",
        "required": list(properties),
        "properties": properties,
    }


def _jwks() -> dict[str, Any]:
    key = {
        "type": "object",
        "required": ["kty", "kid"],
        "properties": {
            "kty": {"enum": ["OKP", "EC"]},
            "crv": {"enum": ["Ed25519", "P-256"]},
            "alg": {"enum": ["Ed25519", "EdDSA", "ES256"]},
            "use": {"const": "sig"},
            "kid": {"type": "string"},
            "x": {"type": "string"},
            "y": {"type": "string"},
        },
    }
    return {
        "type": "object",
        "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": key}},
    }


def _client_auth_fields() -> dict[str, Any]:
    return {
        "client_id": {"type": "string", "description": "With `client_secret_post` or `none`."},
        "client_secret": {"type": "string", "description": "With `client_secret_post`."},
    }


def _token_request() -> dict[str, Any]:
    grants = {
        "authorization_code": "AuthorizationCodeRequest",
        "refresh_token": "RefreshTokenRequest",
        "client_credentials": "ClientCredentialsRequest",
        OFFER_GRANT_TYPE: "OfferAcceptanceRequest",
    }
    return {
        "oneOf": [_schema_ref(name) for name in grants.values()],
        "discriminator": {
            "propertyName": "grant_type",
            "mapping": {grant: f"#/components/schemas/{name}" for grant, name in grants.items()},
        },
    }


def _code_request() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["grant_type", "code", "code_verifier"],
        "properties": {
            "grant_type": {"const": "authorization_code"},
            "code": {
                "type": "string",
                "minLength": 1,
                "description": "Single-use; lives 60 seconds.",
            },
            "redirect_uri": {
                "type": "string",
                "description": "Required, and the same, if the authorization request sent one.",
            },
            "code_verifier": {"type": "string", "pattern": "^[A-Za-z0-9._~-]{43,128}$"},
            **_client_auth_fields(),
        },
    }


def _refresh_request() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["grant_type", "refresh_token"],
        "properties": {
            "grant_type": {"const": "refresh_token"},
            "refresh_token": {
                "type": "string",
                "minLength": 1,
                "description": "Usable once (it rotates).",
            },
            "scope": {
                "type": "string",
                "pattern": SCOPE_PATTERN,
                "description": "Optional; the answer holds what the grant still allows of it.",
            },
            **_client_auth_fields(),
        },
    }


def _client_credentials_request() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"const": "client_credentials"},
            "scope": {
                "type": "string",
                "pattern": SCOPE_PATTERN,
                "description": "Registered vendor-level scopes; absent means all of them.",
            },
            **_client_auth_fields(),
        },
    }


def _token_response() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "minimum": 1, "maximum": ACCESS_TTL},
            "scope": {
                "type": "string",
                "description": "Always sent: what the token actually carries.",
            },
            "refresh_token": {
                "type": "string",
                "description": "With authorization_code and refresh_token; use it once.",
            },
        },
        "additionalProperties": False,
    }


def _token_hint_request() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {"type": "string", "minLength": 1},
            "token_type_hint": {
                "type": "string",
                "examples": ["access_token", "refresh_token"],
                "description": "Accepted and ignored, whatever its value (RFC 7009 section 2.1 "
                "lets a server ignore it): every token names its own kind.",
            },
            **_client_auth_fields(),
        },
    }


def _introspection() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["active"],
        "properties": {
            "active": {"type": "boolean"},
            "scope": {"type": "string"},
            "client_id": {"type": "string"},
            "token_type": {"enum": ["Bearer", "refresh_token"]},
            "iat": {"type": "integer"},
            "exp": {"type": "integer", "description": "Access tokens only."},
            "sub": {
                "type": "string",
                "pattern": SUBJECT_PATTERN,
                "description": "The customer's pairwise id, for grant tokens.",
            },
        },
        "additionalProperties": False,
    }


def _client_metadata_properties() -> dict[str, Any]:
    uri = {"type": "string", "format": "uri", "maxLength": MAX_URI_CHARS}
    return {
        "client_name": {
            "type": "string",
            "pattern": NOT_BLANK,
            "description": f"Shown on the consent page; 1-{MAX_NAME_CHARS} characters once "
            "trimmed, no control characters.",
        },
        "redirect_uris": {
            "type": "array",
            "items": uri,
            "uniqueItems": True,
            "maxItems": MAX_REDIRECT_URIS,
            "description": "Required with authorization_code, refused without it. https, or "
            "http on a loopback host; no fragment; matched exactly.",
        },
        "grant_types": {
            "type": "array",
            "items": {"enum": list(GRANT_TYPES)},
            "uniqueItems": True,
            "minItems": 1,
            "default": ["authorization_code"],
        },
        "response_types": {
            "type": "array",
            "items": {"const": "code"},
            "uniqueItems": True,
            "description": '`["code"]` with authorization_code, else empty.',
        },
        "token_endpoint_auth_method": {
            "enum": list(AUTH_METHODS),
            "default": "client_secret_basic",
        },
        "scope": {
            "type": "string",
            "pattern": _registrable_scopes(),
            "description": f"Space-separated, at most {MAX_SCOPES}: `profile:<field>` scopes (with "
            "authorization_code) and vendor-level scopes (with client_credentials).",
        },
        "vrm_field_purposes": {
            "type": "object",
            "additionalProperties": {"type": "string", "pattern": NOT_BLANK},
            "description": "Field name to the purpose the vendor states "
            "for it; every `profile:<field>` scope needs one, at most "
            f"{MAX_PURPOSE_CHARS} characters.",
        },
        "vrm_webhook_uri": {
            **uri,
            "description": "Where the server POSTs signed Security Event Tokens "
            "(RFC 8417, `application/secevent+jwt`): an accepted offer, a grant narrowed, "
            "revoked or expired, an erased vault. Verify them against `jwks_uri`. Only "
            "public addresses are posted to, unless the operator allows others.",
        },
        "client_uri": uri,
        "policy_uri": uri,
        "contacts": {
            "type": "array",
            "items": {"type": "string", "format": "email"},
            "uniqueItems": True,
            "maxItems": MAX_CONTACTS,
        },
    }


def _registrable_scopes() -> str:
    """A pattern for the scopes a vendor may register: profile:<field> for a standard or
    custom field, and the vendor-level scopes."""
    fields = "|".join([*STANDARD_FIELDS, CUSTOM_FIELD_PATTERN.strip("^$")])
    token = f"(profile:({fields})|{'|'.join(sorted(VENDOR_SCOPES))})"
    return f"^ *{token}( +{token})* *$"


def _client_metadata() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 7591 client metadata; members not listed here are ignored.",
        "required": ["client_name", "scope"],
        "properties": _client_metadata_properties(),
    }


def _client_information() -> dict[str, Any]:
    issued = {
        "client_id": {"type": "string", "pattern": "^vnd_[0-9a-f]{24}$"},
        "client_id_issued_at": {"type": "integer"},
        "client_secret": {
            "type": "string",
            "description": "Confidential clients only; shown this once.",
        },
        "client_secret_expires_at": {
            "const": 0,
            "description": "Confidential clients only: secrets do not expire.",
        },
    }
    return {
        "type": "object",
        "description": "RFC 7591 client information response.",
        "required": [
            "client_id",
            "client_id_issued_at",
            "client_name",
            "redirect_uris",
            "grant_types",
            "response_types",
            "token_endpoint_auth_method",
            "scope",
            "vrm_field_purposes",
        ],
        "properties": {**issued, **_client_metadata_properties()},
        "dependentRequired": {"client_secret": ["client_secret_expires_at"]},
        "additionalProperties": False,
    }


def _profile() -> dict[str, Any]:
    fields = {
        name: {"description": spec.description}
        if spec.structured
        else {"type": "string", "description": spec.description}
        for name, spec in STANDARD_FIELDS.items()
    }
    return {
        "type": "object",
        "description": "The pairwise `sub` and each granted field that has a value; custom "
        "fields (`x-<name>`) hold any JSON value.",
        "required": ["sub"],
        "properties": {"sub": _subject(), **fields},
        "propertyNames": {
            "anyOf": [{"enum": ["sub", *STANDARD_FIELDS]}, {"pattern": CUSTOM_FIELD_PATTERN}]
        },
    }


def _subject() -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": SUBJECT_PATTERN,
        "description": "The customer's pairwise id: stable for this vendor, different at "
        "every other.",
    }


def _grant() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["sub", "status", "fields", "scope", "given_at", "expires_at", "terms"],
        "properties": {
            "sub": _subject(),
            "status": {
                "const": "active",
                "description": "A grant that is not live is answered 401 instead.",
            },
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Granted field to the purpose the vendor stated.",
            },
            "scope": {"type": "string", "description": "What this token may read now."},
            "given_at": {"type": "integer", "description": "Unix time."},
            "expires_at": {"type": "integer", "description": "Unix time."},
            "terms": {"type": "array", "items": {"type": "string"}},
        },
        "additionalProperties": False,
    }


def _receipts() -> dict[str, Any]:
    jws = {
        "type": "string",
        "pattern": JWS_PATTERN,
        "description": "A compact JWS (Kantara Consent Receipt v1.1 claims).",
    }
    item = {
        "type": "object",
        "required": ["event", "receipt"],
        "properties": {"event": {"enum": ["given", "extended", "narrowed"]}, "receipt": jws},
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "required": ["receipt", "receipts"],
        "properties": {"receipt": jws, "receipts": {"type": "array", "items": item, "minItems": 1}},
        "additionalProperties": False,
    }
