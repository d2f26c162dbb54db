"""The segment index: vendors count customers by what customers chose to make countable,
and the index behind it holds no plaintext.

For each vault whose customer marked fields segmentable, the shared ``segments`` table
keeps one record: the vault's *tokens*, keyed digests (blind indexes) of
``attribute + normalised value`` under a server key. Interests, country, region, locale
and gender are indexed by value; the birthdate only as the birth year, so age bands are
ranges of whole years. Without the key a token says nothing; with the same value two
tokens are equal, which is what makes counting possible. Fields not marked segmentable
leave no token, and erasure removes the record.

Counting runs in memory: each process keeps the inverted index (token to vaults) and
re-reads only the partitions of the table whose stamp changed, so a customer's change
counts from the very next query in every process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from keys.digests import keyed_digest
from vault.segment_query import SEGMENTABLE_FIELDS, AllOf, AnyOf, Condition, Predicate, normalise
from vault.service import SEGMENTABLE
from vault.storage.base import Document, Store

TABLE = "segments"
_FOLLOWED = frozenset({SEGMENTABLE, *SEGMENTABLE_FIELDS})
RECORD_FORMAT = 1
TOKEN_HEX = 24
"""Tokens are 96 bits: far beyond collisions among any number of vaults and values."""


def segment_tokens(key: bytes, profile: Mapping[str, Any], segmentable: Iterable[str]) -> list[str]:
    """The tokens of a profile's segmentable fields (none for a field not marked)."""
    marked = set(segmentable)
    pairs: list[tuple[str, str]] = []
    if "interests" in marked:
        pairs += [("interests", tag) for tag in profile.get("interests") or ()]
    address = profile.get("postal_address") or {}
    if "postal_address" in marked:
        pairs += [(a, address[a]) for a in ("country", "region") if address.get(a)]
    for name in ("locale", "gender"):
        if name in marked and profile.get(name):
            pairs.append((name, profile[name]))
    born = profile.get("birthdate")
    if "birthdate" in marked and born:
        pairs.append(("birthdate", born[:4]))
    return sorted({token(key, attribute, value) for attribute, value in pairs})


def token(key: bytes, attribute: str, value: str) -> str:
    """The blind-index token of one attribute value (normalised first)."""
    text = value if attribute == "birthdate" else normalise(attribute, value)
    return keyed_digest(key, "segment-token", f"{attribute}\x00{text}")[:TOKEN_HEX]


@dataclass
class _Partition:
    stamp: str
    members: dict[str, tuple[str, ...]]


class SegmentIndex:
    """Writes each vault's tokens and answers which vaults match a predicate."""

    def __init__(self, store: Store, *, key: bytes) -> None:
        self._store = store
        self._key = key
        self._lock = threading.Lock()
        self._partitions: dict[str, _Partition] = {}
        self._postings: dict[str, set[str]] = {}

    def put(self, vault_id: str, tokens: list[str], revision: int = 0) -> None:
        """Store a vault's tokens as of its document's ``revision``, unless the record holds
        a later revision already (an empty list keeps the revision and counts nothing)."""
        record = {"format": RECORD_FORMAT, "tokens": tokens, "rev": revision}

        def change(current: Document | None) -> Document | None:
            if current is not None and int(current.get("rev", 0)) > revision:
                return current
            return record if tokens or revision else None

        self._store.update(TABLE, vault_id, change)

    def remove(self, vault_id: str) -> None:
        """Forget a vault (on erasure)."""
        self._store.delete(TABLE, vault_id)

    def members(self, predicate: Predicate) -> set[str]:
        """The vault ids matching ``predicate`` now."""
        with self._lock:
            self._refresh()
            return set(self._evaluate(predicate))

    def size(self) -> int:
        """How many vaults have at least one token."""
        with self._lock:
            self._refresh()
            return sum(len(p.members) for p in self._partitions.values())

    def _evaluate(self, predicate: Predicate) -> set[str]:
        if isinstance(predicate, Condition):
            found: set[str] = set()
            for value in predicate.values:
                tok = token(self._key, predicate.attribute, value)
                found |= self._postings.get(tok, set())
            return found
        parts = [self._evaluate(part) for part in predicate.parts]
        if isinstance(predicate, AnyOf):
            return set().union(*parts)
        assert isinstance(predicate, AllOf)
        parts.sort(key=len)
        result = set(parts[0])
        for part in parts[1:]:
            result &= part
        return result

    def _refresh(self) -> None:
        stamps = self._store.partitions(TABLE)
        for name in list(self._partitions):
            if name not in stamps:
                self._drop(name)
        for name, stamp in stamps.items():
            known = self._partitions.get(name)
            if known is None or known.stamp != stamp:
                self._drop(name)
                self._load(name, stamp)

    def _drop(self, name: str) -> None:
        partition = self._partitions.pop(name, None)
        if partition is None:
            return
        for vault_id, tokens in partition.members.items():
            for tok in tokens:
                holders = self._postings.get(tok)
                if holders is not None:
                    holders.discard(vault_id)
                    if not holders:
                        del self._postings[tok]

    def _load(self, name: str, stamp: str) -> None:
        members = {
            vault_id: tuple(record.get("tokens", ()))
            for vault_id, record in self._store.scan_partition(TABLE, name)
        }
        for vault_id, tokens in members.items():
            for tok in tokens:
                self._postings.setdefault(tok, set()).add(vault_id)
        self._partitions[name] = _Partition(stamp, members)


class SegmentUpdater:
    """Keeps a vault's index record in step with its profile and its segmentable flags."""

    def __init__(self, index: SegmentIndex, *, key: bytes) -> None:
        self._index = index
        self._key = key

    def vault_changed(
        self, vault_id: str, doc: Document, profile: Mapping[str, Any], changed: frozenset[str]
    ) -> None:
        """Rewrite the record when a flag, or a value of a marked field, changed."""
        marked = doc.get(SEGMENTABLE) or []
        if SEGMENTABLE not in changed and not changed & set(marked):
            return
        tokens = segment_tokens(self._key, profile, marked)
        self._index.put(vault_id, tokens, int(doc.get("rev", 0)))

    def vault_erasing(self, vault_id: str) -> None:
        """Remove the vault from the index."""
        self._index.remove(vault_id)

    def follows(self, changed: frozenset[str]) -> bool:
        """The index follows the flags and the fields that can be marked."""
        return bool(changed & _FOLLOWED)
