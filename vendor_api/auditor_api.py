"""The auditor's read-only JSON API: the log's entries, the per-vendor summary and consent
receipts by id, for a bearer holding an auditor API token (``vrm auditor token``). Vendor
tokens do not work here, and auditor tokens work nowhere else."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from vault.audit.summary import vendor_summary
from vault.errors import AuthenticationFailed
from vault.receipt_lookup import find_receipt
from vrm.app_context import services
from vrm.http_errors import error_response
from web.auditor_session import record_access

bp = Blueprint("auditor_api", __name__, url_prefix="/api/v1/audit")
MAX_ENTRIES = 1000
MAX_RECEIPT_ID = 64


@bp.before_request
def require_auditor_token() -> Response | None:
    """Refuse any request without a valid auditor token; log every accepted one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed()
        auditor_id = services().auditors.check_api_token(token.strip())
    except AuthenticationFailed:
        response = error_response(401, "invalid_token", "an auditor API token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="vrm-vault", error="invalid_token"'
        return response
    record_access(auditor_id)
    return None


@bp.get("/log")
def log() -> Response | dict[str, Any]:
    """Entries ``start`` (default 0) up to ``end`` (default the log's size), with indexes;
    at most 1000 at a time."""
    audit = services().audit
    size = audit.size()
    start, end = _number("start", 0), _number("end", size)
    if start is None or end is None or not 0 <= start <= end <= size:
        return error_response(400, "invalid_request", "need 0 <= start <= end <= log size")
    end = min(end, start + MAX_ENTRIES)
    entries = [{"index": start + i, "entry": e} for i, e in enumerate(audit.entries(start, end))]
    return {"size": size, "start": start, "end": end, "entries": entries}


@bp.get("/vendors")
def vendors() -> dict[str, Any]:
    """For each vendor in the log: grants by kind, reads per field, refused requests."""
    summary = vendor_summary(services().audit.entries())
    return {"vendors": {vendor: counts.to_json() for vendor, counts in summary.items()}}


@bp.get("/receipts")
def receipt() -> Response | dict[str, Any]:
    """The consent receipt whose id is ``id``: its event, time and claims, and whether its
    signature verifies with the server's published keys."""
    receipt_id = request.args.get("id", "").strip()
    if not receipt_id or len(receipt_id) > MAX_RECEIPT_ID:
        return error_response(400, "invalid_request", "send the receipt's id as id=<receipt id>")
    found = find_receipt(services().store, receipt_id, services().keys.signing.current().jwks())
    if found is None:
        return error_response(404, "not_found", "no receipt has that id")
    answer: dict[str, Any] = {
        "receipt_id": found.receipt_id,
        "event": found.event,
        "at": found.at,
        "verifies": found.verifies,
        "claims": found.claims,
    }
    if found.problem is not None:
        answer["problem"] = found.problem
    return answer


def _number(name: str, default: int) -> int | None:
    text = request.args.get(name, "")
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)
