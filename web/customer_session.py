"""Who is logged in: the customer's vault id in the signed, HttpOnly session cookie.

Sessions expire (``SESSION_MINUTES``); a session whose vault was erased is treated as
logged out, so erasure ends every session of that vault at once.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, session

from vault.errors import NotFound
from vrm.app_context import services

_VAULT = "vault_id"


def log_in(vault_id: str) -> None:
    """Start a fresh session for ``vault_id`` (a new CSRF token comes with it)."""
    session.clear()
    session.permanent = True
    session[_VAULT] = vault_id


def log_out() -> None:
    """End the session."""
    session.clear()


def current_vault() -> str | None:
    """The logged-in customer's vault id, or None (also when the vault was erased)."""
    vault_id = session.get(_VAULT)
    if not isinstance(vault_id, str):
        return None
    try:
        services().store.read_vault(vault_id)
    except (NotFound, ValueError):
        session.clear()
        return None
    return vault_id


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to continue to after login; anything else (another host, a scheme,
    ``//host``) becomes ``default``, so the login page cannot be used to redirect away."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def init_app(app: Flask) -> None:
    """Session lifetime from configuration."""
    app.permanent_session_lifetime = timedelta(minutes=int(app.config["SESSION_MINUTES"]))
