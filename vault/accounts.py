"""Password logins (customers', and through vault.auditors, auditors'): sign-up, login with
a growing delay after failures, password change.

Accounts are found by a keyed digest of the normalised email (the ``accounts`` table), so
no plaintext email exists outside the encrypted profile. The record holds the vault id,
the Argon2id hash and the failed-login state; it is shared by every server process, so the
delay holds whichever worker a request reaches.
"""

from __future__ import annotations

import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

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


class PasswordLogins:
    """People who log in with an email and a password, filed by a keyed digest of the email.

    Customers and auditors are both this, each in a table of their own under a digest
    domain of their own, so one person's two roles never share a key. Records hold the
    Argon2id hash and the failed-login state, shared by every server process.
    """

    TABLE: ClassVar[str]
    DOMAIN: ClassVar[str]
    WHAT: ClassVar[str]

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
        """The keyed digest a login is filed under."""
        return keyed_digest(self._index_key, self.DOMAIN, normalise_email(email))

    def _file(self, email: str, password: str, extra: Mapping[str, object]) -> str:
        """Store a new login; return its digest. AlreadyExists if the email is taken."""
        check_password_rules(password)
        digest = self.digest(email)
        record = {
            **extra,
            "password": self._hasher.hash(password),
            "failed": 0,
            "retry_at": None,
            "created_at": isoformat(self._clock()),
        }
        try:
            self._store.insert(self.TABLE, digest, record)
        except AlreadyExists:
            raise AlreadyExists(f"{self.WHAT} with that email exists already") from None
        return digest

    def _check(self, email: str, password: str) -> tuple[str, Document]:
        """The digest and record of a correct email and password.

        Raises AuthenticationFailed, or LoginThrottled (without checking the password)
        while a delay from earlier failures runs. An unknown email costs the same hashing
        time as a known one.
        """
        digest = self.digest(email)
        now = self._clock()
        count_failure = failure_change(self._policy, now)
        before: list[Document] = []

        def reserve(record: Document | None) -> Document | None:
            # The attempt counts as a failure before the password is checked, in the same
            # locked write as the throttle check: logins sent at once cannot all get past a
            # delay that the first of them would have started.
            before.clear()
            if record is None:
                return None
            check_not_throttled(record, now)
            before.append(record)
            return count_failure(record)

        if self._store.update(self.TABLE, digest, reserve) is None:
            self._hasher.verify(password, self._dummy_hash)
            raise AuthenticationFailed()
        record = before[0]
        if not self._hasher.verify(password, record["password"]):
            raise AuthenticationFailed()
        changes = success_changes(self._hasher, password, record)
        self._store.update(self.TABLE, digest, with_changes(**{**changes, **_RESET}))
        return digest, record

    def _set_password(self, email: str, new: str) -> None:
        check_password_rules(new)
        new_hash = self._hasher.hash(new)
        self._store.update(self.TABLE, self.digest(email), with_changes(password=new_hash))


class Accounts(PasswordLogins):
    """Customers' logins: each leads to one vault."""

    TABLE = TABLE
    DOMAIN = "login-email"
    WHAT = "an account"

    def register(self, email: str, password: str, vault_id: str) -> str:
        """File a new account; return its digest. AlreadyExists if the email is taken."""
        return self._file(email, password, {"vault_id": vault_id})

    def authenticate(self, email: str, password: str) -> str:
        """Return the vault id of the account, or raise AuthenticationFailed (see _check)."""
        _, record = self._check(email, password)
        return str(record["vault_id"])

    def change_password(self, email: str, old: str, new: str) -> None:
        """Replace the password after checking the old one."""
        self._check(email, old)
        self._set_password(email, new)

    def remove(self, digest: str) -> None:
        """Delete the account record: from now on the login fails."""
        if not self._store.delete(TABLE, digest):
            raise NotFound("no such account")


_RESET = {"failed": 0, "retry_at": None}
"""What a correct password does to the failure count its attempt reserved."""


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
