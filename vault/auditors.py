"""Auditor accounts: a read-only role that sees the log and the receipts, never a vault.

Auditors live in their own table, filed under a keyed digest of the normalised email with a
domain of their own, so an auditor's email and a customer's never share a key. Passwords
are Argon2id hashes and failed logins slow down exactly as customers' do (the throttle of
:mod:`vault.accounts`). An auditor may also hold read-only API tokens: 32 random bytes shown
once, stored only as their SHA-256 digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

from vault.accounts import PasswordLogins
from vault.clock import isoformat
from vault.errors import AuthenticationFailed, NotFound
from vault.storage.base import Document

TABLE = "auditors"
TOKENS = "auditor_tokens"
EMAIL_DOMAIN = "auditor-login-email"
TOKEN_BYTES = 32


class Auditors(PasswordLogins):
    """Auditor logins and their read-only API tokens. An auditor's id is their digest."""

    TABLE = TABLE
    DOMAIN = EMAIL_DOMAIN
    WHAT = "an auditor"

    def create(self, email: str, password: str) -> str:
        """File a new auditor; return their id. AlreadyExists if the email is taken."""
        return self._file(email, password, {})

    def authenticate(self, email: str, password: str) -> str:
        """The auditor's id, or AuthenticationFailed; LoginThrottled while a delay runs."""
        auditor_id, _ = self._check(email, password)
        return auditor_id

    def remove(self, email: str) -> None:
        """Delete the auditor and their API tokens: their sessions and tokens stop working
        at the next request. NotFound for an unknown email."""
        auditor_id = self.digest(email)
        if not self.exists(auditor_id):
            raise NotFound("no such auditor")
        self.revoke_tokens(email)
        self._store.delete(TABLE, auditor_id)

    def revoke_tokens(self, email: str) -> int:
        """Delete every API token of the auditor; return how many. NotFound for an
        unknown email."""
        auditor_id = self.digest(email)
        if not self.exists(auditor_id):
            raise NotFound("no such auditor")
        held = [k for k, r in self._store.scan(TOKENS) if r.get("auditor") == auditor_id]
        for key in held:
            self._store.delete(TOKENS, key)
        return len(held)

    def sessions(self, auditor_id: str) -> list[str]:
        """The digests of the auditor's live web sessions (empty for an unknown auditor)."""
        record = self._store.get(TABLE, auditor_id)
        return list(record.get("sessions", [])) if record else []

    def change_sessions(self, auditor_id: str, change: Callable[[list[str]], list[str]]) -> None:
        """Replace the list of the auditor's live web sessions by ``change(list)``."""

        def edit(record: Document | None) -> Document | None:
            if record is None:
                return None
            return {**record, "sessions": change(list(record.get("sessions", [])))}

        self._store.update(TABLE, auditor_id, edit)

    def exists(self, auditor_id: str) -> bool:
        """Whether ``auditor_id`` names an auditor."""
        return self._store.get(TABLE, auditor_id) is not None

    def issue_api_token(self, auditor_id: str) -> str:
        """A new read-only API token for the auditor, shown this once."""
        if not self.exists(auditor_id):
            raise NotFound("no such auditor")
        token = base64.urlsafe_b64encode(secrets.token_bytes(TOKEN_BYTES)).rstrip(b"=").decode()
        record = {
            "auditor": auditor_id,
            "digest": _token_digest(token),
            "created_at": isoformat(self._clock()),
        }
        self._store.insert(TOKENS, _token_digest(token), record)
        return token

    def check_api_token(self, token: str) -> str:
        """The id of the auditor holding ``token``; AuthenticationFailed for any other."""
        digest = _token_digest(token)
        record = self._store.get(TOKENS, digest)
        stored = str(record.get("digest", "")) if record else "0" * len(digest)
        matches = hmac.compare_digest(stored.encode(), digest.encode())
        if record is None or not matches or not self.exists(str(record["auditor"])):
            raise AuthenticationFailed()
        return str(record["auditor"])


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
