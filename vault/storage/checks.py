"""What every backend accepts: vault ids, table names, keys and documents.

The backends share these checks so that they agree on what they reject: code tested
against the in-memory store must not meet a new error on the TinyDB or PostgreSQL one.
Names end up in file paths and SQL identifiers, so they are checked before any use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping

from vault.storage.base import REGISTER_BYTES, Document

_VAULT_ID = re.compile(r"[0-9a-z]{2,64}")
_TABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}")
_KEY = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def check_vault_id(vault_id: str) -> str:
    """Return ``vault_id`` if it is 2 to 64 lowercase letters and digits (hex or base32).

    Raise ValueError otherwise. The id names the vault's file, so nothing else is let in.
    """
    return _checked("vault id", _VAULT_ID, vault_id)


def check_table(table: str) -> str:
    """Return ``table`` if it is a valid table name; raise ValueError otherwise.

    Table names follow the Protocol's alphabet and also start with a letter or digit, so
    one can never be ``..`` or a hidden directory.
    """
    return _checked("table name", _TABLE, table)


def check_key(key: str) -> str:
    """Return ``key`` if it is 1 to 200 characters of ``[A-Za-z0-9_.:-]``."""
    return _checked("key", _KEY, key)


def json_document(value: object) -> Document:
    """Return a fresh copy of ``value`` as a JSON store would give it back.

    Raise TypeError if ``value`` is not a dict of JSON values, and ValueError for NaN
    or infinities (which JSON and PostgreSQL cannot hold). Copying through JSON gives every
    backend the same result, so tuples come back as lists, as they would from a file.
    """
    if not isinstance(value, dict):
        raise TypeError(f"a document is a dict, not {type(value).__name__}")
    copy: Document = json.loads(json.dumps(value, allow_nan=False))
    return copy


def register_bytes(value: object) -> bytes:
    """Return a register's value as the compact JSON a backend stores.

    Raise TypeError or ValueError as :func:`json_document` does, and ValueError for a value
    longer than ``REGISTER_BYTES``.
    """
    encoded = json.dumps(json_document(value), separators=(",", ":")).encode()
    if len(encoded) > REGISTER_BYTES:
        raise ValueError(f"a register holds at most {REGISTER_BYTES} bytes, not {len(encoded)}")
    return encoded


def checked_changes(
    keys: Collection[str], new: Mapping[str, Document | None]
) -> dict[str, Document | None]:
    """Return ``update_many``'s new values as stored copies, before anything is written.

    Raise ValueError for a key outside ``keys``, so a change function cannot reach records
    it was not given, and TypeError or ValueError for a value that is not a document.
    """
    outside = sorted(set(new) - set(keys))
    if outside:
        raise ValueError(f"change returned keys it was not given: {outside!r:.200}")
    return {key: None if value is None else json_document(value) for key, value in new.items()}


def _checked(what: str, pattern: re.Pattern[str], value: object) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r:.80}")
    return value
