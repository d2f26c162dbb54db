"""The vendor's reach API: count a segment, send offers, read intents and answer them.

Every call needs a client-credentials access token carrying the vendor-level scope it
names (``segments:query``, ``offers:send``, ``intents:read``); the token is checked like
any other on every request, so a disabled vendor is refused at once. Bodies are single
JSON objects; a bad one is a 400 that names the member at fault.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from vault.errors import NotFound, ValidationError
from vault.offers import parse_offer
from vault.segment_query import parse_predicate
from vault.vendors import Vendor
from vendor_api.resources import BearerError, authorized, json_object_body
from vrm.app_context import services

bp = Blueprint("reach", __name__, url_prefix="/api/v1")


@bp.post("/segments/count")
def count_segment() -> dict[str, Any]:
    """How many customers match a predicate over segmentable fields (suppressed below k)."""
    vendor = _vendor_with("segments:query")
    body = _json_object()
    predicate = parse_predicate(body.get("segment"), today=services().clock().date())
    return services().segments.count(vendor.client_id, predicate).to_json()


@bp.post("/offers")
def send_offer() -> tuple[Response, int]:
    """Send an offer to a segment; answer with its id and how many received it."""
    vendor = _vendor_with("offers:send")
    body = _json_object()
    predicate = parse_predicate(body.get("segment"), today=services().clock().date())
    offer = parse_offer(body, vendor)
    sent = services().offers.send(vendor.client_id, predicate, offer)
    answer = {"id": sent.offer_id, **_delivered(sent.delivered.to_json())}
    return _created(answer)


@bp.get("/offers/<offer_id>")
def offer_stats(offer_id: str) -> dict[str, Any]:
    """An offer's numbers: delivered, viewed, accepted, declined (each suppressed below k)."""
    vendor = _vendor_with("offers:send")
    return services().offers.stats(vendor.client_id, offer_id)


@bp.get("/offers/<offer_id>/acceptances")
def offer_acceptances(offer_id: str) -> dict[str, Any]:
    """Who accepted (pairwise ids), what they granted, and the codes to exchange."""
    vendor = _vendor_with("offers:send")
    return {"acceptances": services().offers.acceptances(vendor.client_id, offer_id)}


@bp.get("/intents")
def list_intents() -> dict[str, Any]:
    """Every open intent, with no identity attached."""
    _vendor_with("intents:read")
    intents = services().intents.open_intents()
    return {"intents": [_public(intent.to_json()) for intent in intents]}


@bp.post("/intents/<intent_id>/offers")
def answer_intent(intent_id: str) -> tuple[Response, int]:
    """Answer one open intent with an offer to that customer alone."""
    vendor = _vendor_with("offers:send")
    offer = parse_offer(_json_object(), vendor)
    offer_id = services().offers.answer_intent(vendor.client_id, intent_id, offer)
    return _created({"id": offer_id, "intent": intent_id})


def _vendor_with(scope: str) -> Vendor:
    context = authorized(grant_bound=False)
    if context.claims.vault_id is not None or scope not in context.scopes:
        raise BearerError(403, "insufficient_scope", f"this needs a client token with {scope}")
    try:
        return services().vendors.require_active(context.claims.client_id)
    except NotFound:
        raise BearerError(401, "invalid_token", "the vendor is not registered") from None


def _json_object() -> dict[str, Any]:
    body = json_object_body()
    if body is None:
        raise ValidationError("body", "must be one JSON object, sent as application/json")
    return body


def _delivered(count: dict[str, object]) -> dict[str, object]:
    if count.get("suppressed"):
        return {"delivered": None, "suppressed": True}
    return {"delivered": count["count"]}


def _public(intent: dict[str, Any]) -> dict[str, Any]:
    intent.pop("status", None)
    return intent


def _created(body: dict[str, Any]) -> tuple[Response, int]:
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 201
