"""Errors to HTTP, in one place.

Machine clients get ``{"error": code, "error_description": text}`` with a 4xx status (OAuth
error codes where OAuth defines them); a browser asking for HTML gets a readable page.
Nothing reveals internals: an unexpected exception is logged and answered with a plain 500.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from keys.errors import KeyringError
from vault.errors import (
    AlreadyExists,
    AuthenticationFailed,
    LoginThrottled,
    NotFound,
    QuotaExceeded,
    StorageError,
    ValidationError,
    VaultError,
)

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[Exception], int, str]] = [
    (LoginThrottled, 429, "slow_down"),
    (QuotaExceeded, 429, "too_many_requests"),
    (AuthenticationFailed, 401, "access_denied"),
    (ValidationError, 400, "invalid_request"),
    (NotFound, 404, "not_found"),
    (AlreadyExists, 409, "conflict"),
    (StorageError, 503, "temporarily_unavailable"),
]


def status_for(error: VaultError) -> tuple[int, str]:
    """The HTTP status and error code for a domain error."""
    for kind, status, code in _STATUS:
        if isinstance(error, kind):
            return status, code
    return 400, "invalid_request"


def error_response(status: int, code: str, description: str) -> Response:
    """A JSON or HTML error response, whichever the client prefers."""
    if _wants_html():
        page = render_template("error.html", status=status, description=description)
        response = Response(page, status=status, mimetype="text/html")
    else:
        response = jsonify(error=code, error_description=description)
        response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def register_error_handlers(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(VaultError, _vault_error)
    app.register_error_handler(KeyringError, _keyring_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(UnicodeError, _undecodable)
    app.register_error_handler(Exception, _unexpected)


def _vault_error(error: VaultError) -> Response:
    status, code = status_for(error)
    response = error_response(status, code, str(error))
    if isinstance(error, LoginThrottled):
        response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
    return response


def _keyring_error(error: KeyringError) -> Response:
    log.error("key error: %s", type(error).__name__)
    return error_response(500, "server_error", "the server could not use its keys")


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = "invalid_request" if status < 500 else "server_error"
    if status == 404:
        code = "not_found"
    elif status == 405:
        code = "method_not_allowed"
    response = error_response(status, code, error.description or "request failed")
    for name, value in error.get_headers():
        if name.lower() in ("allow", "retry-after", "www-authenticate"):
            response.headers[name] = value
    return response


def _undecodable(error: UnicodeError) -> Response:
    return error_response(400, "invalid_request", "the request is not valid UTF-8")


def _unexpected(error: Exception) -> Response:
    log.exception("unexpected error", exc_info=error)
    return error_response(500, "server_error", "something went wrong on the server")


def _wants_html() -> bool:
    # The machines' endpoints answer JSON whatever a client's Accept says; only the
    # authorization endpoint among them is a page a person sees.
    machine = request.path.startswith(("/api/", "/oauth/"))
    if machine and request.path != "/oauth/authorize":
        return False
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return (
        best == "text/html"
        and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]
    )
