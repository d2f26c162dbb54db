"""Keyed digests (blind indexes): look records up by a secret-keyed hash, never by value."""

from __future__ import annotations

import hmac
from hashlib import sha256


def keyed_digest(key: bytes, domain: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, separated by ``domain``, as hex.

    The domain keeps digests made for one purpose (say, login lookup) from matching those
    made for another (say, a segment index) even for the same value.
    """
    message = domain.encode() + b"\x00" + value.encode()
    return hmac.new(key, message, sha256).hexdigest()
