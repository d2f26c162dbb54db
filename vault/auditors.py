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

from keys.digests import keyed_digest
from vault.accounts import (
    LoginPolicy,
    check_not_throttled,
    failure_change,
    normalise_email,
    success_changes,
    with_changes,
)
from vault.clock import Clock, isoformat
from vault.errors import AlreadyExists, AuthenticationFailed, NotFound
from vault.passwords import PasswordHasher, check_password_rules
from vault.storage.base import Store

TABLE = "auditors"
TOKENS = "auditor_tokens"
EMAIL_DOMAIN = "auditor-login-email"
TOKEN_BYTES = 32


class Auditors:
    """Auditor logins and their read-only API tokens."""

    def __init__(
        self,
        store: Store,
        *,
        index_key: bytes,
        hasher: PasswordHasher,
        clock: Clock,
        policy: LoginPolicy | None = None,
    ) -> None:
        self._store = store
        self._index_key = index_key
        self._hasher = hasher
        self._clock = clock
        self._policy = policy or LoginPolicy()
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    def digest(self, email: str) -> str:
        """The keyed digest an auditor is filed under, which is also their id."""
        return keyed_digest(self._index_key, EMAIL_DOMAIN, normalise_email(email))

    def create(self, email: str, password: str) -> str:
        """File a new auditor; return their id. AlreadyExists if the email is taken."""
        check_password_rules(password)
        auditor_id = self.digest(email)
        record = {
            "password": self._hasher.hash(password),
            "failed": 0,
            "retry_at": None,
            "created_at": isoformat(self._clock()),
        }
        try:
            self._store.insert(TABLE, auditor_id, record)
        except AlreadyExists:
            raise AlreadyExists("an auditor with that email exists already") from None
        return auditor_id

    def authenticate(self, email: str, password: str) -> str:
        """The auditor's id, or AuthenticationFailed; LoginThrottled while a delay runs."""
        auditor_id = self.digest(email)
        record = self._store.get(TABLE, auditor_id)
        if record is None:
            self._hasher.verify(password, self._dummy_hash)
            raise AuthenticationFailed()
        check_not_throttled(record, self._clock())
        if not self._hasher.verify(password, record["password"]):
            self._store.update(TABLE, auditor_id, failure_change(self._policy, self._clock()))
            raise AuthenticationFailed()
        changes = success_changes(self._hasher, password, record)
        if changes:
            self._store.update(TABLE, auditor_id, with_changes(**changes))
        return auditor_id

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
