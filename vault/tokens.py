"""Sealed tokens: what a token grants travels inside it, encrypted and authenticated.

An access token, refresh token or authorization code is ``vrm_<kind>_<base64url>`` where the
body is ``format (1 byte) | nonce (12) | AES-256-GCM-SIV(claims)`` (RFC 8452) under a key
derived from the server's token key, with the kind bound in as associated data.

The nonces are random, and nothing limits how many tokens vendors have minted (client
credentials cost no more than a request), so the cipher must stay safe when two of them
repeat: GCM-SIV does (a repeated nonce shows only that two sealed texts were equal, and no
two tokens are, since each carries its own random id), where a repeated nonce under plain
AES-GCM gives away the key that authenticates every token. Refresh tokens of format 1,
sealed with AES-256-GCM before, still open: they live as long as their grant, and each
refresh seals its successor in the new format. Vendors see an opaque string; the server learns
everything it needs from the token itself, so issuing one needs no database write, and
checking one needs no token table. What can change after issue (the grant being narrowed,
revoked, expired or erased; the vendor disabled; a token revoked) is checked against the
grant on every request. The ``vrm_`` prefix lets secret scanners recognise a leaked token.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import threading
from dataclasses import dataclass, fields
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keys.envelope import RandomBytes
from vault.errors import VaultError

ACCESS = "at"
REFRESH = "rt"
CODE = "ac"
KINDS = (ACCESS, REFRESH, CODE)
_FORMAT = 2  # AES-256-GCM-SIV; what every token is sealed with now.
_FORMAT_GCM = 1  # AES-256-GCM: opened, never sealed any more.
_NONCE = 12
OPENED_CAPACITY = 4096
"""How many opened access tokens a sealer remembers."""


class InvalidToken(VaultError):
    """The token is malformed, forged, expired or no longer backed by a live grant."""


class InsufficientScope(VaultError):
    """The token is valid but grants nothing the request needs (any more)."""


@dataclass(frozen=True)
class TokenClaims:
    """What a token carries. Fields that do not apply to a kind stay at their defaults.

    ``epoch`` is the grant's token epoch at issue: bumping the grant's epoch revokes every
    token issued before. ``family`` and ``counter`` identify a refresh token in its rotation
    chain. ``expires_at`` is in epoch seconds (0: bounded only by the grant).
    """

    kind: str
    client_id: str
    token_id: str
    scopes: tuple[str, ...]
    issued_at: int
    expires_at: int = 0
    vault_id: str | None = None
    grant_id: str | None = None
    epoch: int = 0
    family: str | None = None
    counter: int = 0

    @property
    def scope(self) -> str:
        """The scopes as OAuth's space-separated string."""
        return " ".join(self.scopes)


class TokenSealer:
    """Seals and opens tokens under one server key.

    A vendor presents the same access token on every request for its 15 minutes, so the
    claims of recently opened access tokens are remembered by the token's exact text. That
    changes nothing a check sees: what a token says is fixed when it is sealed (claims are
    immutable), and everything that can change later is checked against the grant and the
    vendor on every request. Codes and refresh tokens are used once, so they are not kept.
    """

    def __init__(self, key: bytes, rng: RandomBytes = os.urandom) -> None:
        self._aead = AESGCMSIV(_derive(key, b"vrm-vault tokens v2"))
        self._aead_gcm = AESGCM(_derive(key, b"vrm-vault tokens v1"))
        self._rng = rng
        self._opened: dict[str, TokenClaims] = {}
        self._lock = threading.Lock()

    def new_id(self) -> str:
        """A fresh random token id (128 bits)."""
        return base64.urlsafe_b64encode(self._rng(16)).decode().rstrip("=")

    def seal(self, claims: TokenClaims) -> str:
        """The token string for ``claims``."""
        if claims.kind not in KINDS:
            raise ValueError(f"unknown token kind {claims.kind!r}")
        payload = json.dumps(_compact(claims), separators=(",", ":")).encode()
        nonce = self._rng(_NONCE)
        body = self._aead.encrypt(nonce, payload, claims.kind.encode())
        blob = bytes([_FORMAT]) + nonce + body
        return f"vrm_{claims.kind}_{base64.urlsafe_b64encode(blob).decode().rstrip('=')}"

    def open(self, token: str, kind: str) -> TokenClaims:
        """The claims of a token of ``kind``; InvalidToken if it is anything else."""
        prefix = f"vrm_{kind}_"
        if not isinstance(token, str) or not token.startswith(prefix) or len(token) > 4096:
            raise InvalidToken("not a token of this server")
        remembered = self._opened.get(token) if kind == ACCESS else None
        if remembered is not None:
            return remembered
        claims = self._decrypt(token, prefix, kind)
        if kind == ACCESS:
            self._remember(token, claims)
        return claims

    def _decrypt(self, token: str, prefix: str, kind: str) -> TokenClaims:
        blob = _b64decode(token[len(prefix) :])
        # Only refresh tokens outlive an upgrade: an access token or code of the old format
        # would have ended within minutes, so only a forgery could present one now.
        known = (_FORMAT, _FORMAT_GCM) if kind == REFRESH else (_FORMAT,)
        if len(blob) < 1 + _NONCE + 16 or blob[0] not in known:
            raise InvalidToken("not a token of this server")
        aead = self._aead if blob[0] == _FORMAT else self._aead_gcm
        try:
            payload = aead.decrypt(blob[1 : 1 + _NONCE], blob[1 + _NONCE :], kind.encode())
        except InvalidTag:
            raise InvalidToken("not a token of this server") from None
        return _expand(kind, json.loads(payload))

    def _remember(self, token: str, claims: TokenClaims) -> None:
        with self._lock:
            if len(self._opened) >= OPENED_CAPACITY:
                del self._opened[next(iter(self._opened))]
            self._opened[token] = claims

    def kind_of(self, token: str) -> str | None:
        """Which kind a token string claims to be (unverified), for dispatch."""
        for kind in KINDS:
            if isinstance(token, str) and token.startswith(f"vrm_{kind}_"):
                return kind
        return None


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(key)


_SEALED_FIELDS = tuple(f.name for f in fields(TokenClaims) if f.name != "kind")


def _compact(claims: TokenClaims) -> dict[str, Any]:
    # Every field is a string, an int or a tuple of strings, so reading them directly
    # gives what dataclasses.asdict would, without its deep copy.
    found = {name: getattr(claims, name) for name in _SEALED_FIELDS}
    return {k: v for k, v in found.items() if v not in (None, 0)}


def _expand(kind: str, data: dict[str, Any]) -> TokenClaims:
    data["scopes"] = tuple(data.get("scopes", ()))
    return TokenClaims(kind=kind, **data)


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not a token of this server") from None
