"""CSRF protection for every form: a per-session secret echoed in a hidden field.

The token is random, kept in the signed session cookie, and compared in constant time. A
POST without it, or with another, is refused before the view runs.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request, session

FIELD = "csrf_token"
_SESSION_KEY = "csrf"


def csrf_token() -> str:
    """The current session's token, created on first use (for templates)."""
    token = session.get(_SESSION_KEY)
    if not isinstance(token, str):
        token = session[_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Refuse an unsafe request whose form does not carry the session's token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.blueprint not in PROTECTED_BLUEPRINTS:
        return
    expected = session.get(_SESSION_KEY)
    sent = request.form.get(FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, description="the form expired or came from another site; please try again")


PROTECTED_BLUEPRINTS = {"web", "consent", "auditor"}


def init_app(app: Flask) -> None:
    """Check every form post to the people-facing blueprints; offer the token to templates."""
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
