"""The OpenAPI description of the reach API (segments, offers, intents) and of the
offer-acceptance token request; merged into ``/openapi.json`` by ``vendor_api.openapi``."""

from __future__ import annotations

from typing import Any

from vault.intents import CATEGORIES
from vault.offers import MAX_MESSAGE, MAX_PURPOSE, MAX_TITLE
from vault.segment_query import AGE_BANDS, ATTRIBUTES, MAX_VALUE_CHARS, MAX_VALUES
from vendor_api.oauth import OFFER_GRANT_TYPE

JSON = "application/json"
SUBJECT = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
COUNT = {
    "type": ["integer", "null"],
    "minimum": 0,
    "description": "Null when suppressed (fewer than k, or a noisy value below k).",
}


def reach_paths(api: str) -> dict[str, Any]:
    """The reach API's paths under ``/api/<api>``."""
    base = f"/api/{api}"
    return {
        f"{base}/segments/count": {"post": _count_operation()},
        f"{base}/offers": {"post": _send_operation()},
        f"{base}/offers/{{offer_id}}": {"get": _stats_operation()},
        f"{base}/offers/{{offer_id}}/acceptances": {"get": _acceptances_operation()},
        f"{base}/intents": {"get": _intents_operation()},
        f"{base}/intents/{{intent_id}}/offers": {"post": _answer_operation()},
    }


def reach_schemas() -> dict[str, Any]:
    """The schemas the reach paths and the offer-acceptance grant refer to."""
    return {
        "Segment": _segment(),
        "SegmentCondition": _condition(),
        "CountRequest": _object({"segment": _ref("Segment")}, ["segment"]),
        "Count": _object(
            {"count": COUNT, "suppressed": {"const": True}},
            ["count"],
        ),
        "OfferRequest": _offer_request(segment=True),
        "IntentAnswerRequest": _offer_request(segment=False),
        "OfferSent": _object(
            {
                "id": _offer_id(),
                "delivered": COUNT,
                "suppressed": {"const": True},
                "intent": {"type": "string"},
            },
            ["id"],
        ),
        "OfferStats": _offer_stats(),
        "Acceptances": _object(
            {"acceptances": {"type": "array", "items": _acceptance()}}, ["acceptances"]
        ),
        "Intents": _object({"intents": {"type": "array", "items": _intent()}}, ["intents"]),
        "OfferAcceptanceRequest": _object(
            {
                "grant_type": {"const": OFFER_GRANT_TYPE},
                "code": {
                    "type": "string",
                    "description": "The acceptance code from the webhook or the acceptances "
                    "list; single-use, lives 7 days.",
                },
            },
            ["grant_type", "code"],
        ),
    }


def _operation(
    operation_id: str,
    summary: str,
    description: str,
    scope: str,
    ok: dict[str, Any],
    *,
    body: str | None = None,
    status: str = "200",
    parameter: str | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": ["reach"],
        "operationId": operation_id,
        "summary": summary,
        "description": f"{description} Needs a client credentials token with `{scope}`.",
        "security": [{"bearerAuth": []}, {"oauth2": [scope]}],
        "responses": {
            status: {"description": "Done.", "content": {JSON: {"schema": ok}}},
            "400": _error(
                "A malformed body, or a rule broken; the description names the "
                "member or field at fault (a field that is not segmentable, say)."
            ),
            "401": {"$ref": "#/components/responses/BearerUnauthorized"},
            "403": {"$ref": "#/components/responses/BearerForbidden"},
            "5XX": {"$ref": "#/components/responses/ServerError"},
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    if parameter:
        operation["parameters"] = [
            {"name": parameter, "in": "path", "required": True, "schema": {"type": "string"}}
        ]
        operation["responses"]["404"] = _error("No such offer or intent of yours, or not open.")
    return operation


def _count_operation() -> dict[str, Any]:
    operation = _operation(
        "countSegment",
        "Count the customers in a segment",
        "Counts customers whose segmentable fields match the predicate. Counts carry seeded "
        "noise (the same set of customers always gives the same answer) and are suppressed "
        "below k. Each vendor has a daily budget of queries.",
        "segments:query",
        _ref("Count"),
        body="CountRequest",
    )
    operation["responses"]["429"] = _error("The daily query budget is spent.")
    return operation


def _send_operation() -> dict[str, Any]:
    return _operation(
        "sendOffer",
        "Send an offer to a segment",
        "Delivers the offer to every matching customer whose channel preferences, blocks "
        "and monthly cap allow it; answers with how many received it (suppressed below k).",
        "offers:send",
        _ref("OfferSent"),
        body="OfferRequest",
        status="201",
    )


def _stats_operation() -> dict[str, Any]:
    return _operation(
        "getOffer",
        "An offer's numbers",
        "Delivered, viewed, accepted and declined, each null when below k.",
        "offers:send",
        _ref("OfferStats"),
        parameter="offer_id",
    )


def _acceptances_operation() -> dict[str, Any]:
    return _operation(
        "getOfferAcceptances",
        "Who accepted an offer",
        "Each acceptance: the customer's pairwise `sub`, the granted `scope`, and the code "
        f"to exchange at the token endpoint with `grant_type={OFFER_GRANT_TYPE}`.",
        "offers:send",
        _ref("Acceptances"),
        parameter="offer_id",
    )


def _intents_operation() -> dict[str, Any]:
    return _operation(
        "listIntents",
        "Open intents",
        "What customers are looking for, with no identity attached.",
        "intents:read",
        _ref("Intents"),
    )


def _answer_operation() -> dict[str, Any]:
    operation = _operation(
        "answerIntent",
        "Answer an intent with an offer",
        "Delivers the offer to the customer behind the intent (unless they blocked you); "
        "one answer per vendor per intent.",
        "offers:send",
        _ref("OfferSent"),
        body="IntentAnswerRequest",
        status="201",
        parameter="intent_id",
    )
    operation["responses"]["409"] = _error("You already answered this intent.")
    return operation


def _segment() -> dict[str, Any]:
    nodes = {"type": "array", "minItems": 1, "items": _ref("Segment")}
    return {
        "description": "All-of and any-of over conditions, at most 5 levels and 32 conditions.",
        "oneOf": [
            _closed({"all": nodes}, ["all"]),
            _closed({"any": nodes}, ["any"]),
            _ref("SegmentCondition"),
        ],
    }


def _condition() -> dict[str, Any]:
    value = {"type": "string", "pattern": r"\S", "maxLength": MAX_VALUE_CHARS}
    values = {"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": value}
    bands = {"enum": list(AGE_BANDS)}
    band_list = {"type": "array", "minItems": 1, "maxItems": MAX_VALUES, "items": bands}
    fields = [a for a in ATTRIBUTES if a != "birthdate"]
    return {
        "oneOf": [
            _closed({"field": {"enum": fields}, "equals": value}, ["field", "equals"]),
            _closed({"field": {"enum": fields}, "in": values}, ["field", "in"]),
            _closed(
                {
                    "field": {"const": "birthdate"},
                    "age_band": {"oneOf": [bands, band_list]},
                },
                ["field", "age_band"],
            ),
        ]
    }


def _offer_request(*, segment: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE},
        "message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE},
        "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 90, "default": 30},
        "fields": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"type": "string", "maxLength": MAX_PURPOSE},
            "description": "Registered profile fields you would like, each with its purpose.",
        },
    }
    required = ["title", "message", "fields"]
    if segment:
        properties["segment"] = _ref("Segment")
        required.append("segment")
    return _object(properties, required)


def _offer_stats() -> dict[str, Any]:
    return _object(
        {
            "id": _offer_id(),
            "title": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "created_at": {"type": "integer"},
            "expires_at": {"type": "integer"},
            "delivered": COUNT,
            "viewed": COUNT,
            "accepted": COUNT,
            "declined": COUNT,
            "suppressed_below": {"type": "integer"},
            "intent": {"type": "string"},
        },
        ["id", "delivered", "viewed", "accepted", "declined", "suppressed_below"],
    )


def _acceptance() -> dict[str, Any]:
    return _object(
        {
            "sub": SUBJECT,
            "scope": {"type": "string"},
            "code": {"type": "string"},
            "code_expires_at": {"type": "integer"},
            "accepted_at": {"type": "integer"},
        },
        ["sub", "scope", "code", "code_expires_at", "accepted_at"],
    )


def _intent() -> dict[str, Any]:
    budget = _object(
        {"amount": {"type": "integer"}, "currency": {"type": "string"}}, ["amount", "currency"]
    )
    return _object(
        {
            "id": {"type": "string"},
            "category": {"enum": list(CATEGORIES)},
            "text": {"type": "string"},
            "budget": {"oneOf": [budget, {"type": "null"}]},
            "region": {"type": ["string", "null"]},
            "published_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
        },
        ["id", "category", "text", "budget", "region", "published_at", "expires_at"],
    )


def _offer_id() -> dict[str, Any]:
    return {"type": "string", "pattern": "^off_[0-9a-f]{24}$"}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _closed(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """An object with exactly these members: the server refuses any other."""
    return {**_object(properties, required), "additionalProperties": False}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref("Error")}}}
