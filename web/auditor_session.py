"""Who is logged in as an auditor: the auditor's id under a session key of its own, so a
customer's session never counts as an auditor's, nor the other way round."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from vault.errors import VaultError
from vault.events import Event
from vrm.app_context import services
from web.session_ids import is_live, new_session_id, with_session, without_session

_AUDITOR = "auditor_id"
_SESSION = "auditor_session"
AUDITOR_PSEUDONYM_CHARS = 16
P = ParamSpec("P")
R = TypeVar("R")


def log_in_auditor(auditor_id: str) -> None:
    """Start a fresh session for the auditor (ending any customer's session in it). As
    for customers, the auditor's record lists the digests of their live sessions' random
    ids, so logging out ends a session on the server too."""
    session.clear()
    sid = new_session_id()
    services().auditors.change_sessions(auditor_id, lambda live: with_session(live, sid))
    session.permanent = True
    session[_AUDITOR] = auditor_id
    session[_SESSION] = sid


def log_out_auditor() -> None:
    """End the auditor's session, in the cookie and on the server."""
    auditor_id, sid = session.get(_AUDITOR), session.get(_SESSION)
    session.clear()
    if isinstance(auditor_id, str) and isinstance(sid, str):
        services().auditors.change_sessions(auditor_id, lambda live: without_session(live, sid))


def current_auditor() -> str | None:
    """The logged-in auditor's id, or None (also when the auditor was removed or the
    session ended)."""
    auditor_id, sid = session.get(_AUDITOR), session.get(_SESSION)
    if not isinstance(auditor_id, str) or not isinstance(sid, str):
        return None
    if not is_live(services().auditors.sessions(auditor_id), sid):
        return None
    return auditor_id


def signed_in_auditor() -> bool:
    """Whether an auditor is logged in, for the page header."""
    try:
        return current_auditor() is not None
    except VaultError:
        return False


def record_access(auditor_id: str) -> None:
    """Append the ``auditor.access`` event, the one thing an auditor changes: which auditor
    (a pseudonym: the start of their keyed digest, the same at every access), which page
    and what it asked for (the query, cut at 200 characters)."""
    detail = {
        "auditor": auditor_id[:AUDITOR_PSEUDONYM_CHARS],
        "page": request.path,
        "query": request.query_string.decode("latin-1")[:200],
    }
    event = Event("auditor.access", services().clock(), "auditor", detail=detail)
    services().events.emit(event)


def auditor_required(view: Callable[P, R]) -> Callable[P, R | Response]:
    """Run ``view`` only for a logged-in auditor, logging the access; send anyone else
    (a customer too) to the auditor login page."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | Response:
        auditor_id = current_auditor()
        if auditor_id is None:
            return redirect(url_for("auditor.login_form"), code=303)
        g.auditor_id = auditor_id
        record_access(auditor_id)
        return view(*args, **kwargs)

    return wrapped
