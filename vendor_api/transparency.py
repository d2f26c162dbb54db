"""The log's public face: signed checkpoints and Merkle proofs (RFC 9162).

Like a Certificate Transparency log, these publish only hashes and the tree's size, never
an event, so anyone (an auditor, a customer checking one entry of their access history, a
vendor) can check that what they were shown is in the one log everyone else sees.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, request

from vault.audit import AuditError, ProofError, parse_checkpoint
from vrm.app_context import services
from vrm.http_errors import error_response

bp = Blueprint("transparency", __name__, url_prefix="/audit")


@bp.get("/checkpoint")
def checkpoint() -> Response:
    """A signed C2SP checkpoint of the log as it is now."""
    try:
        note = services().checkpoints.sign()
    except AuditError:
        return _cannot_sign()
    response = Response(note, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/proof/inclusion")
def inclusion() -> Response | dict[str, Any]:
    """The inclusion proof of entry ``index`` in a signed tree.

    Without ``size`` the tree is the latest signed checkpoint's (one is signed first if
    none covers the entry yet), and the answer carries that checkpoint, so the proof can
    be checked against a signature and not only against a root the server states. With
    ``size`` the proof is for that tree, and carries the checkpoint only if it is the
    latest signed one.
    """
    log = services().audit
    index = _number("index")
    if isinstance(index, Response):
        return index
    if not 0 <= index < log.size():
        return error_response(400, "invalid_request", "need 0 <= index < log size")
    if "size" in request.args:
        return _inclusion_at_size(index)
    try:
        note = services().checkpoints.covering(index + 1)
    except AuditError:
        return _cannot_sign()
    return _inclusion_answer(index, parse_checkpoint(note).size, note)


def _inclusion_at_size(index: int) -> Response | dict[str, Any]:
    size = _number("size")
    if isinstance(size, Response):
        return size
    if not index < size <= services().audit.size():
        return error_response(400, "invalid_request", "need 0 <= index < size <= log size")
    note = services().checkpoints.latest()
    signed = note if note is not None and parse_checkpoint(note).size == size else None
    return _inclusion_answer(index, size, signed)


def _inclusion_answer(index: int, size: int, note: str | None) -> dict[str, Any]:
    log = services().audit
    answer: dict[str, Any] = {
        "index": index,
        "size": size,
        "leaf_hash": _b64(log.leaf_hash(index)),
        "root": _b64(log.root(size)),
        "proof": [_b64(h) for h in log.inclusion_proof(index, size)],
    }
    if note is not None:
        answer["checkpoint"] = note
    return answer


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
        value = _number(name)
        if isinstance(value, Response):
            return value
        values.append(value)
    return values[0], values[1]


def _number(name: str) -> int | Response:
    text = request.args.get(name, "")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return error_response(400, "invalid_request", f"{name} must be a whole number")
    return int(text)


def _cannot_sign() -> Response:
    return error_response(
        500, "server_error", "the audit log no longer extends its last signed checkpoint"
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
