"""Who is logged in: the customer's vault id in the signed, HttpOnly session cookie.

The cookie also holds a random session id whose digest the vault document keeps (see
:mod:`web.session_ids`): a cookie counts only while its digest is listed.
So logging out ends that session on the server too (a copy of the cookie taken before is
refused), changing the password ends every other session, and erasure ends them all.
Sessions also expire (``SESSION_MINUTES``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from vault.errors import NotFound, VaultError
from vault.storage.base import Document
from vrm.app_context import services
from web.session_ids import is_live, new_session_id, only_session, with_session, without_session

_VAULT = "vault_id"
_SESSION = "session"
SESSIONS = "sessions"
"""The vault document's list of the digests of its live sessions, oldest first."""
P = ParamSpec("P")
R = TypeVar("R")


def log_in(vault_id: str) -> None:
    """Start a fresh session for ``vault_id`` (a new CSRF token comes with it)."""
    session.clear()
    sid = new_session_id()
    _change_sessions(vault_id, lambda live: with_session(live, sid))
    session.permanent = True
    session[_VAULT] = vault_id
    session[_SESSION] = sid


def log_out() -> None:
    """End the session, in the cookie and on the server."""
    vault_id, sid = session.get(_VAULT), session.get(_SESSION)
    session.clear()
    if isinstance(vault_id, str) and isinstance(sid, str):
        with contextlib.suppress(NotFound, ValueError):
            _change_sessions(vault_id, lambda live: without_session(live, sid))


def end_other_sessions() -> None:
    """End every session of the logged-in customer's vault but this one."""
    vault_id, sid = session.get(_VAULT), session.get(_SESSION)
    if isinstance(vault_id, str) and isinstance(sid, str):
        _change_sessions(vault_id, lambda live: only_session(live, sid))


def current_vault() -> str | None:
    """The logged-in customer's vault id, or None (also when the vault was erased, or
    the session was ended)."""
    vault_id, sid = session.get(_VAULT), session.get(_SESSION)
    if not isinstance(vault_id, str) or not isinstance(sid, str):
        return None
    try:
        doc = services().store.read_vault(vault_id)
    except (NotFound, ValueError):
        session.clear()
        return None
    if not is_live(doc.get(SESSIONS, []), sid):
        session.clear()
        return None
    return vault_id


def _change_sessions(vault_id: str, change: Callable[[list[str]], list[str]]) -> None:
    def edit(doc: Document) -> Document:
        return {**doc, SESSIONS: change(list(doc.get(SESSIONS, [])))}

    services().store.update_vault(vault_id, edit)


def login_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Run ``view`` only for a logged-in customer; send anyone else to the login page,
    which brings them back here afterwards."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        vault_id = current_vault()
        if vault_id is None:
            return redirect(url_for("web.login_form", next=_here()), code=303)
        g.vault_id = vault_id
        return view(*args, **kwargs)

    return wrapped


def signed_in_vault() -> str:
    """The vault of the customer a :func:`login_required` view is serving."""
    vault_id: str = g.vault_id
    return vault_id


def _here() -> str | None:
    """This page's path and query, to come back to after logging in. A form post comes
    back to the page of the same path, if there is one; otherwise login goes on as usual."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    if current_app.url_map.bind("").test(request.path, method="GET"):
        return request.path
    return None


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to continue to after login; anything else (another host, a scheme,
    ``//host``) becomes ``default``, so the login page cannot be used to redirect away."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return default  # A line break would end up in the Location header.
    return target


def signed_in() -> bool:
    """Whether a customer is logged in, for the page header. A store that cannot be read
    counts as logged out, so an error page can still be shown."""
    try:
        return current_vault() is not None
    except VaultError:
        return False


def init_app(app: Flask) -> None:
    """Session lifetime from configuration; ``signed_in()`` for templates."""
    app.permanent_session_lifetime = timedelta(minutes=int(app.config["SESSION_MINUTES"]))
    app.jinja_env.globals["signed_in"] = signed_in
