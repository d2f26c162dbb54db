"""Pages for people (customers, auditors): login, consent, security headers on every
response, and readable error pages."""

from __future__ import annotations

from flask import Flask, Response, request

from web import (
    access_pages,
    account,
    auditor_pages,
    auditor_session,
    csrf,
    customer_session,
    display,
    export,
    grants_pages,
    navigation,
    preferences,
    profile_pages,
    reach_pages,
)
from web.pages import bp
from web.policy import content_security_policy

PAGE_MODULES = (
    account,
    profile_pages,
    preferences,
    grants_pages,
    reach_pages,
    access_pages,
    export,
    display,
    navigation,
)
"""The modules whose routes and filters join the ``web`` blueprint as they are imported."""

SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response: Response) -> Response:
    """Set the headers every response carries, page or JSON. A page is never stored by
    the browser or anything between: pages show a customer's own data, which must not be
    there for the next person at the same computer to bring back."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html" or request.path.startswith(("/api/", "/oauth/")):
        # The APIs answer with tokens, profile values, receipts and log entries alike.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Register the pages, CSRF checks, sessions and headers on ``app``."""
    app.register_blueprint(bp)
    app.register_blueprint(auditor_pages.bp)
    app.jinja_env.globals["auditor_signed_in"] = auditor_session.signed_in_auditor
    csrf.init_app(app)
    customer_session.init_app(app)
    app.after_request(add_security_headers)
