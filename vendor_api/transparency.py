"""The log's public face: signed checkpoints and Merkle proofs (RFC 9162).

Like a Certificate Transparency log, these publish only hashes and the tree's size, never
an event, so anyone (an auditor, a customer checking one entry of their access history, a
vendor) can check that what they were shown is in the one log everyone else sees.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, request

from vault.audit import ProofError
from vrm.app_context import services
from vrm.http_errors import error_response

bp = Blueprint("transparency", __name__, url_prefix="/audit")


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """A signed C2SP checkpoint of the log as it is now."""
    note = services().checkpoints.sign()
    response = Response(note, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/proof/inclusion")
def inclusion() -> Response | dict[str, Any]:
    """The inclusion proof of entry ``index`` in the tree of ``size`` entries."""
    numbers = _numbers("index", "size")
    if isinstance(numbers, Response):
        return numbers
    index, size = numbers
    log = services().audit
    if not 0 <= index < size <= log.size():
        return error_response(400, "invalid_request", "need 0 <= index < size <= log size")
    proof = log.inclusion_proof(index, size)
    return {
        "index": index,
        "size": size,
        "leaf_hash": _b64(log.leaf_hash(index)),
        "root": _b64(log.root(size)),
        "proof": [_b64(h) for h in proof],
    }


@bp.get("/proof/consistency")
def consistency() -> Response | dict[str, Any]:
    """The consistency proof that the tree of ``old`` entries is a prefix of ``new``."""
    numbers = _numbers("old", "new")
    if isinstance(numbers, Response):
        return numbers
    old, new = numbers
    log = services().audit
    if not 0 < old <= new <= log.size():
        return error_response(400, "invalid_request", "need 0 < old <= new <= log size")
    try:
        proof = log.consistency_proof(old, new)
    except (ProofError, ValueError):
        return error_response(400, "invalid_request", "no proof for those sizes")
    return {
        "old": old,
        "new": new,
        "old_root": _b64(log.root(old)),
        "new_root": _b64(log.root(new)),
        "proof": [_b64(h) for h in proof],
    }


def _numbers(*names: str) -> tuple[int, int] | Response:
    values = []
    for name in names:
        text = request.args.get(name, "")
        if not text.isascii() or not text.isdigit() or len(text) > 18:
            return error_response(400, "invalid_request", f"{name} must be a whole number")
        values.append(int(text))
    return values[0], values[1]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
