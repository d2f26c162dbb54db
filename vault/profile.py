"""The encrypted profile inside a vault document, with the full history of every field.

A vault document holds, per field, a list of versions ``{"v", "value", "size", "at"}``: the
last is current, the earlier ones are the history a customer can review. ``value`` is the
field value sealed with the vault's data key for (vault id, field, version), or None where
the customer cleared the field. ``size`` is the plaintext length (the ciphertext shows it
anyway) so the profile size limit is checked without decrypting.

Standard fields are stored under their names. A custom field ``x-<name>`` is stored under a
slot named by a keyed digest of its name, with the name itself sealed, because a name a
customer chose (``x-diagnosis``) can be as personal as its value.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from keys import Context, DataKey
from keys.envelope import RandomBytes
from vault.clock import isoformat, parse_iso
from vault.errors import ValidationError
from vault.fields import (
    MAX_PROFILE_BYTES,
    JSONValue,
    decode_value,
    encode_value,
    is_custom,
)
from vault.storage.base import Document

FORMAT = 1
NAME_VERSION = 0


@dataclass(frozen=True)
class FieldVersion:
    """One value a field held, from ``at`` until the next version (None: cleared)."""

    version: int
    value: JSONValue | None
    at: datetime


def new_document(vault_id: str, login_digest: str, created_at: datetime) -> Document:
    """An empty vault document."""
    return {
        "format": FORMAT,
        "vault_id": vault_id,
        "login_digest": login_digest,
        "created_at": isoformat(created_at),
        "fields": {},
    }


class ProfileCipher:
    """Reads and writes the fields of one vault document with that vault's data key."""

    def __init__(self, vault_id: str, dek: DataKey, rng: RandomBytes) -> None:
        self._vault_id = vault_id
        self._dek = dek
        self._rng = rng

    def slot(self, name: str) -> str:
        """Where field ``name`` is stored in the document."""
        if not is_custom(name):
            return name
        return "x-" + self._dek.mac(b"custom-field\x00" + name.encode()).hex()[:32]

    def apply(
        self, doc: Document, changes: Mapping[str, JSONValue | None], at: datetime
    ) -> Document:
        """Return ``doc`` with each named field set (or cleared, for None) at ``at``.

        A value equal to the current one adds no version. Raises ValidationError if the
        profile would exceed its size limit.
        """
        new = copy.deepcopy(doc)
        for name, value in changes.items():
            self._apply_one(new["fields"], name, value, at)
        _check_size(new["fields"])
        return new

    def seal_note(self, label: str, text: str) -> str:
        """Seal a piece of account text (the login email) that is not a profile field."""
        return self._seal(label, NAME_VERSION, text.encode())

    def open_note(self, label: str, sealed: str) -> str:
        """Open text sealed by :meth:`seal_note` under the same label."""
        return self._dek.open(sealed, Context(self._vault_id, label, NAME_VERSION)).decode()

    def current(self, doc: Document) -> dict[str, JSONValue]:
        """Every field that has a value now, decrypted, standard fields first."""
        values: dict[str, JSONValue] = {}
        for slot, record in doc["fields"].items():
            latest = record["versions"][-1]
            if latest["value"] is not None:
                name = self._name(slot, record)
                values[name] = self._open(name, latest)
        return dict(sorted(values.items(), key=lambda item: (is_custom(item[0]), item[0])))

    def values(self, doc: Document, names: Iterable[str]) -> dict[str, JSONValue]:
        """The current values of just ``names`` (those that have one), decrypting nothing
        else: a vendor's read opens only the fields it was granted."""
        found: dict[str, JSONValue] = {}
        for name in names:
            record = doc["fields"].get(self.slot(name))
            if record is not None and record["versions"][-1]["value"] is not None:
                found[name] = self._open(name, record["versions"][-1])
        return found

    def history(self, doc: Document) -> dict[str, list[FieldVersion]]:
        """Every version of every field, oldest first, decrypted."""
        result: dict[str, list[FieldVersion]] = {}
        for slot, record in doc["fields"].items():
            name = self._name(slot, record)
            result[name] = [
                FieldVersion(
                    v["v"],
                    None if v["value"] is None else self._open(name, v),
                    parse_iso(v["at"]),
                )
                for v in record["versions"]
            ]
        return result

    def _apply_one(
        self, fields: dict[str, Any], name: str, value: JSONValue | None, at: datetime
    ) -> None:
        slot = self.slot(name)
        record = fields.setdefault(slot, {"versions": []})
        if is_custom(name) and "name" not in record:
            record["name"] = self._seal(slot, NAME_VERSION, name.encode())
        versions = record["versions"]
        if versions and self._same(name, versions[-1], value):
            return
        number = versions[-1]["v"] + 1 if versions else 1
        entry: dict[str, Any] = {"v": number, "value": None, "size": 0, "at": isoformat(at)}
        if value is not None:
            plaintext = encode_value(value)
            entry.update(value=self._seal(name, number, plaintext), size=len(plaintext))
        versions.append(entry)

    def _same(self, name: str, latest: Mapping[str, Any], value: JSONValue | None) -> bool:
        if latest["value"] is None or value is None:
            return latest["value"] is None and value is None
        return bool(self._open(name, latest) == value)

    def _name(self, slot: str, record: Mapping[str, Any]) -> str:
        if "name" not in record:
            return slot
        return self._dek.open(record["name"], Context(self._vault_id, slot, NAME_VERSION)).decode()

    def _open(self, name: str, version: Mapping[str, Any]) -> JSONValue:
        context = Context(self._vault_id, name, version["v"])
        return decode_value(self._dek.open(version["value"], context))

    def _seal(self, name: str, version: int, plaintext: bytes) -> str:
        return self._dek.seal(plaintext, Context(self._vault_id, name, version), self._rng)


def _check_size(fields: Mapping[str, Any]) -> None:
    total = sum(record["versions"][-1]["size"] for record in fields.values())
    if total > MAX_PROFILE_BYTES:
        raise ValidationError(
            "profile", f"must be at most {MAX_PROFILE_BYTES} bytes in all, not {total}"
        )
