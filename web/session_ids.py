"""Server-side session ids, shared by customers' and auditors' sessions.

A session cookie holds a random id; the account's record (the vault document, the auditor
record) keeps the SHA-256 digests of its live ids, the most recent MAX_SESSIONS of them. A
cookie counts only while its id's digest is listed, so removing the digest ends the
session on the server, whatever copies of the cookie exist.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

MAX_SESSIONS = 20
"""Sessions an account keeps at once; a login beyond that ends the oldest."""


def new_session_id() -> str:
    """A fresh random session id (256 bits), for the cookie."""
    return secrets.token_urlsafe(32)


def with_session(live: Sequence[str], sid: str) -> list[str]:
    """``live`` with ``sid`` added, the oldest dropped beyond MAX_SESSIONS."""
    return [*live, _digest(sid)][-MAX_SESSIONS:]


def without_session(live: Sequence[str], sid: str) -> list[str]:
    """``live`` with ``sid`` ended."""
    return [digest for digest in live if digest != _digest(sid)]


def only_session(live: Sequence[str], sid: str) -> list[str]:
    """``live`` with every session but ``sid`` ended."""
    return [digest for digest in live if digest == _digest(sid)]


def is_live(live: Sequence[str], sid: str) -> bool:
    """Whether ``sid`` is one of the ``live`` sessions (compared in constant time)."""
    mine = _digest(sid)
    return any(hmac.compare_digest(mine, digest) for digest in live)


def _digest(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()
