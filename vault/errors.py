"""Errors raised by the vault domain.

Every check that protects data raises one of these rather than returning a flag the caller
could forget. The web layers map them to HTTP statuses in one place.
"""

from __future__ import annotations


class VaultError(Exception):
    """Base class of every error the vault domain raises."""


class ValidationError(VaultError):
    """A value broke a rule; names the field and the rule so the customer can fix it."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class NotFound(VaultError):
    """The vault, account or record asked for does not exist (or no longer does)."""


class AlreadyExists(VaultError):
    """A record with that key exists already; nothing was written."""


class AuthenticationFailed(VaultError):
    """The email and password did not match an account.

    The message is the same whether the account exists or not.
    """

    def __init__(self, message: str = "email or password is wrong") -> None:
        super().__init__(message)


class LoginThrottled(AuthenticationFailed):
    """Too many failed logins: the next attempt is accepted only after a delay."""

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, round(retry_after))
        super().__init__(f"too many failed logins; try again in {seconds} s")
        self.retry_after = retry_after


class StorageError(VaultError):
    """The store could not be read or written (unreadable file, broken connection)."""


class OutdatedStore(StorageError):
    """The store was written by an earlier version and must be upgraded before use.

    It is never upgraded as a side effect of opening it: a server process of the earlier
    version may still be using it, and would misread what this version writes.
    """


class InvalidClientMetadata(VaultError):
    """A vendor's registration metadata broke a rule (RFC 7591 section 3.2.2).

    ``code`` is the RFC 7591 error code: ``invalid_redirect_uri`` or
    ``invalid_client_metadata``.
    """

    def __init__(self, field: str, rule: str, *, code: str = "invalid_client_metadata") -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule
        self.code = code


class VendorDisabled(VaultError):
    """The operator disabled this vendor: none of its requests or tokens are honoured."""


class QuotaExceeded(VaultError):
    """A vendor used up a quota (such as its daily segment queries); try again later."""
