"""Customer accounts: sign-up, login with a growing delay after failures, password change.

Accounts are found by a keyed digest of the normalised email (the ``accounts`` table), so
no plaintext email exists outside the encrypted profile. The record holds the vault id,
the Argon2id hash and the failed-login state; it is shared by every server process, so the
delay holds whichever worker a request reaches.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from keys.digests import keyed_digest
from vault.clock import Clock, isoformat, parse_iso
from vault.errors import AlreadyExists, AuthenticationFailed, LoginThrottled, NotFound
from vault.passwords import PasswordHasher, check_password_rules
from vault.storage.base import Document, RecordChange, Store

TABLE = "accounts"


@dataclass(frozen=True)
class LoginPolicy:
    """How failed logins slow down further attempts.

    After ``free_attempts`` consecutive failures, each further failure makes the next
    attempt wait ``base_delay * 2**(extra failures)`` seconds, at most ``max_delay``.
    """

    free_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 900.0

    def delay_after(self, failures: int) -> float:
        """Seconds to wait after ``failures`` consecutive failures."""
        extra = failures - self.free_attempts
        if extra < 0:
            return 0.0
        return min(self.max_delay, self.base_delay * (1 << min(extra, 32)))


def normalise_email(email: str) -> str:
    """The form of an email used for lookup: NFKC, trimmed, case-folded."""
    return unicodedata.normalize("NFKC", email).strip().casefold()


class Accounts:
    """The login index and password checks."""

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
        # An unknown email is checked against this, so it costs the same time as a known one.
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))

    def digest(self, email: str) -> str:
        """The keyed digest an account is filed under."""
        return keyed_digest(self._index_key, "login-email", normalise_email(email))

    def register(self, email: str, password: str, vault_id: str) -> str:
        """File a new account; return its digest. AlreadyExists if the email is taken."""
        check_password_rules(password)
        digest = self.digest(email)
        record = {
            "vault_id": vault_id,
            "password": self._hasher.hash(password),
            "failed": 0,
            "retry_at": None,
            "created_at": isoformat(self._clock()),
        }
        try:
            self._store.insert(TABLE, digest, record)
        except AlreadyExists:
            raise AlreadyExists("an account with that email exists already") from None
        return digest

    def authenticate(self, email: str, password: str) -> str:
        """Return the vault id of the account, or raise AuthenticationFailed.

        Raises LoginThrottled, without checking the password, while a delay from earlier
        failures runs. An unknown email costs the same hashing time as a known one.
        """
        digest = self.digest(email)
        record = self._store.get(TABLE, digest)
        if record is None:
            self._hasher.verify(password, self._dummy_hash)
            raise AuthenticationFailed()
        self._check_not_throttled(record)
        if not self._hasher.verify(password, record["password"]):
            self._record_failure(digest)
            raise AuthenticationFailed()
        self._record_success(digest, password, record)
        return str(record["vault_id"])

    def change_password(self, email: str, old: str, new: str) -> None:
        """Replace the password after checking the old one."""
        self.authenticate(email, old)
        check_password_rules(new)
        new_hash = self._hasher.hash(new)
        self._store.update(TABLE, self.digest(email), with_changes(password=new_hash))

    def remove(self, digest: str) -> None:
        """Delete the account record: from now on the login fails."""
        if not self._store.delete(TABLE, digest):
            raise NotFound("no such account")

    def _check_not_throttled(self, record: Document) -> None:
        check_not_throttled(record, self._clock())

    def _record_failure(self, digest: str) -> None:
        self._store.update(TABLE, digest, failure_change(self._policy, self._clock()))

    def _record_success(self, digest: str, password: str, record: Document) -> None:
        changes = success_changes(self._hasher, password, record)
        if changes:
            self._store.update(TABLE, digest, with_changes(**changes))


def check_not_throttled(record: Document, now: datetime) -> None:
    """Raise LoginThrottled while the delay from a record's earlier failures runs."""
    if record.get("retry_at"):
        wait = (parse_iso(record["retry_at"]) - now).total_seconds()
        if wait > 0:
            raise LoginThrottled(wait)


def failure_change(policy: LoginPolicy, now: datetime) -> RecordChange:
    """The change that counts one more failed login and sets the next allowed attempt."""

    def change(record: Document | None) -> Document | None:
        if record is None:
            return None
        failed = int(record.get("failed", 0)) + 1
        delay = policy.delay_after(failed)
        retry_at = isoformat(now + timedelta(seconds=delay)) if delay else None
        return {**record, "failed": failed, "retry_at": retry_at}

    return change


def success_changes(hasher: PasswordHasher, password: str, record: Document) -> dict[str, object]:
    """What a successful login changes: the failure count reset, an outdated hash renewed."""
    changes: dict[str, object] = {}
    if record.get("failed") or record.get("retry_at"):
        changes.update(failed=0, retry_at=None)
    if hasher.needs_rehash(record["password"]):
        changes["password"] = hasher.hash(password)
    return changes


def with_changes(**changes: object) -> RecordChange:
    """The change that sets ``changes`` on an existing record."""

    def change(record: Document | None) -> Document | None:
        return None if record is None else {**record, **changes}

    return change
