"""The vault's operations for a customer: sign-up, login, profile, history, export, erasure.

This is the one object the web pages, the vendor API and the command line call. It holds
no Flask and no storage library; time, randomness, the store and the keys come in.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from keys import Keyring
from keys.envelope import RandomBytes
from vault.accounts import Accounts, LoginPolicy
from vault.clock import Clock, isoformat, system_clock
from vault.datakeys import DataKeys
from vault.errors import AlreadyExists, NotFound, ValidationError
from vault.events import Event, EventSink, vault_pseudonym
from vault.fields import JSONValue, spec_for, validate_field
from vault.grants import Grant
from vault.passwords import PasswordHasher, check_password_rules
from vault.profile import FieldVersion, ProfileCipher, new_document
from vault.segment_query import SEGMENTABLE_FIELDS
from vault.storage.base import Document, Store
from vault.terms import known_terms

EXPORT_FORMAT = "vrm-vault-export/1"
LOGIN_EMAIL = "account:login_email"
TERMS_LABEL = "account:terms"


SEGMENTABLE = "segmentable"
"""A change name observers see when the customer changes which fields are countable."""

logger = logging.getLogger(__name__)

PENDING_TABLE = "derived_pending"
"""Vaults whose derived records (segment index, mailbox) may lag their document: marked
before a change observers follow is written, cleared once they have followed it."""

REVISION = "rev"
"""The vault document's revision: moved on by every write that observers follow."""

ERASING_TABLE = "erasing"
"""Vaults whose erasure has begun: marked first, cleared last, so an erasure cut short
(a crash, a step that failed) is finished by repair_derived."""

EVERYTHING_DERIVED = frozenset({SEGMENTABLE, "channel_preferences", *SEGMENTABLE_FIELDS})
"""The change names that make every observer rewrite what it derives from a vault."""


class VaultObserver(Protocol):
    """Keeps something derived from vaults (the segment index, offer mailboxes) in step."""

    def vault_changed(
        self,
        vault_id: str,
        doc: Document,
        profile: Mapping[str, JSONValue],
        changed: frozenset[str],
    ) -> None:
        """``changed`` fields (or SEGMENTABLE) of the vault were just written."""
        ...

    def vault_erasing(self, vault_id: str) -> None:
        """The vault is about to be erased: forget everything derived from it."""
        ...

    def follows(self, changed: frozenset[str]) -> bool:
        """Whether a change of these fields (or SEGMENTABLE) alters what it derives."""
        ...


class FollowsNoProfile:
    """A VaultObserver that derives nothing from the profile: only erasure concerns it."""

    def vault_changed(
        self,
        vault_id: str,
        doc: Document,
        profile: Mapping[str, JSONValue],
        changed: frozenset[str],
    ) -> None:
        """Nothing to follow."""

    def follows(self, changed: frozenset[str]) -> bool:
        """Nothing to follow."""
        return False


@dataclass(frozen=True)
class Vaults:
    """Everything the service needs, passed in."""

    store: Store
    keyring: Keyring
    index_key: bytes
    hasher: PasswordHasher
    events: EventSink
    clock: Clock = system_clock
    rng: RandomBytes = os.urandom
    login_policy: LoginPolicy | None = None
    observers: tuple[VaultObserver, ...] = ()


class VaultService:
    """Customer operations on vaults."""

    def __init__(self, deps: Vaults) -> None:
        self._store = deps.store
        self._index_key = deps.index_key
        self._events = deps.events
        self._clock = deps.clock
        self._rng = deps.rng
        self._observers = deps.observers
        self.datakeys = DataKeys(deps.store, deps.keyring, deps.rng)
        self.accounts = Accounts(
            deps.store,
            index_key=deps.index_key,
            hasher=deps.hasher,
            clock=deps.clock,
            policy=deps.login_policy,
        )

    # Accounts.

    def sign_up(self, email: str, password: str) -> str:
        """Create an account and its vault; return the vault id.

        The email becomes the login and the profile's first ``email`` value.
        """
        now = self._clock()
        address = validate_field("email", email, today=now.date())
        check_password_rules(password)
        digest = self.accounts.digest(email)
        if self._store.get("accounts", digest) is not None:
            raise AlreadyExists("an account with that email exists already")
        vault_id = self._rng(16).hex()
        cipher = ProfileCipher(vault_id, self.datakeys.create(vault_id), self._rng)
        doc = cipher.apply(new_document(vault_id, digest, now), {"email": address}, now)
        doc["login_email"] = cipher.seal_note(LOGIN_EMAIL, str(address))
        self._store.create_vault(vault_id, doc)
        try:
            self.accounts.register(email, password, vault_id)
        except BaseException:
            self._discard(vault_id)
            raise
        self._emit("vault.created", "customer", vault_id)
        return vault_id

    def authenticate(self, email: str, password: str) -> str:
        """Return the vault id for a correct email and password (see Accounts)."""
        return self.accounts.authenticate(email, password)

    def change_password(self, email: str, old: str, new: str) -> None:
        """Replace the customer's password after checking the old one."""
        self.accounts.change_password(email, old, new)
        self._emit("account.password_changed", "customer", self.accounts_vault(email))

    def accounts_vault(self, email: str) -> str:
        """The vault id filed under ``email`` (NotFound if none)."""
        record = self._store.get("accounts", self.accounts.digest(email))
        if record is None:
            raise NotFound("no account with that email")
        return str(record["vault_id"])

    # Profile.

    def set_fields(self, vault_id: str, values: Mapping[str, object]) -> dict[str, JSONValue]:
        """Validate and store new values; return the profile as it is afterwards.

        Raises ValidationError for the first value that breaks a rule, before anything
        is written.
        """
        now = self._clock()
        clean = {name: validate_field(name, v, today=now.date()) for name, v in values.items()}
        return self._change(vault_id, dict(clean))

    def clear_fields(self, vault_id: str, names: Iterable[str]) -> dict[str, JSONValue]:
        """Remove the current value of each named field (its history stays)."""
        changes: dict[str, JSONValue | None] = {}
        for name in names:
            spec_for(name)  # Refuses unknown names before anything is written.
            changes[name] = None
        return self._change(vault_id, changes)

    def profile(self, vault_id: str) -> dict[str, JSONValue]:
        """The current value of every field that has one."""
        return self._cipher(vault_id).current(self._store.read_vault(vault_id))

    def history(self, vault_id: str) -> dict[str, list[FieldVersion]]:
        """Every version of every field, oldest first."""
        return self._cipher(vault_id).history(self._store.read_vault(vault_id))

    # Segments.

    def set_segmentable(self, vault_id: str, fields: Iterable[str]) -> tuple[str, ...]:
        """Choose which fields vendors may count this vault by (none until chosen); the
        change counts from the very next query."""
        chosen = tuple(dict.fromkeys(fields))
        for name in chosen:
            if name not in SEGMENTABLE_FIELDS:
                raise ValidationError(name, "cannot be made segmentable")
        kept = tuple(name for name in SEGMENTABLE_FIELDS if name in chosen)

        def change(doc: Document) -> Document:
            return {**doc, SEGMENTABLE: list(kept)}

        _, mark = self._derived_write(vault_id, frozenset({SEGMENTABLE}), change)
        self._follow(vault_id, frozenset({SEGMENTABLE}), mark)
        self._emit("segments.changed", "customer", vault_id, detail={"fields": " ".join(kept)})
        return kept

    def segmentable(self, vault_id: str) -> tuple[str, ...]:
        """The fields vendors may count this vault by."""
        return tuple(self._store.read_vault(vault_id).get(SEGMENTABLE, ()))

    # Personal terms.

    def set_terms(self, vault_id: str, term_ids: Iterable[str]) -> tuple[str, ...]:
        """Choose the personal terms offered to vendors; unknown ids are refused."""
        chosen = tuple(term_ids)
        kept = known_terms(chosen)
        if len(set(chosen)) != len(kept):
            raise ValidationError("terms", "names a term that does not exist")
        cipher = self._cipher(vault_id)

        def change(doc: Document) -> Document:
            return {**doc, "terms": cipher.seal_note(TERMS_LABEL, json.dumps(list(kept)))}

        self._store.update_vault(vault_id, change)
        return kept

    def terms(self, vault_id: str) -> tuple[str, ...]:
        """The personal terms the customer offers to vendors (none until chosen)."""
        doc = self._store.read_vault(vault_id)
        if "terms" not in doc:
            return ()
        opened = self._cipher(vault_id).open_note(TERMS_LABEL, doc["terms"])
        return known_terms(json.loads(opened))

    # Export and erasure.

    def export(self, vault_id: str) -> dict[str, Any]:
        """Everything the vault holds, decrypted, as one JSON-serialisable document: the
        login, the profile, every field's history, and every grant with its receipts."""
        doc = self._store.read_vault(vault_id)
        cipher = self._cipher(vault_id)
        result = {
            "format": EXPORT_FORMAT,
            "exported_at": isoformat(self._clock()),
            "vault": {"id": vault_id, "created_at": doc["created_at"]},
            "account": {"email": cipher.open_note(LOGIN_EMAIL, doc["login_email"])},
            "profile": cipher.current(doc),
            "history": _history_json(cipher.history(doc)),
            "terms": list(self.terms(vault_id)),
            "grants": [
                Grant.from_record(record).to_json() for record in doc.get("grants", {}).values()
            ],
        }
        self._emit("vault.exported", "customer", vault_id)
        return result

    def erase(self, vault_id: str) -> None:
        """Crypto-shred the vault: login first, then what is derived from the vault, then
        the data key, then the document.

        The vault is marked as being erased before anything is removed, and the mark is
        cleared last: an erasure cut short anywhere (its login already gone, so the
        customer could not start it again) is finished by :meth:`repair_derived`, which
        the server runs when it starts and every hour. The order means an interrupted
        erasure never leaves a working login to an unreadable vault.
        """
        self._store.read_vault(vault_id)  # NotFound for a vault that does not exist.
        since = {"since": isoformat(self._clock())}
        self._store.update(ERASING_TABLE, vault_id, lambda mark: mark or since)
        self._finish_erasing(vault_id)

    def _finish_erasing(self, vault_id: str) -> None:
        """Every step of an erasure, each of which may have been done already."""
        try:
            doc = self._store.read_vault(vault_id)
        except NotFound:
            doc = None  # Discarded already: only the mark was left.
        if doc is not None:
            with contextlib.suppress(NotFound):
                self.accounts.remove(doc["login_digest"])
            self._forget(vault_id)
            self._discard(vault_id)
            self._emit("vault.erased", "customer", vault_id)
        self._store.delete(ERASING_TABLE, vault_id)

    def pseudonym(self, vault_id: str) -> str:
        """The stable pseudonym events use for a vault: it reveals nothing about the id."""
        return vault_pseudonym(self._index_key, vault_id)

    def _change(self, vault_id: str, changes: Mapping[str, JSONValue | None]) -> dict[str, Any]:
        cipher = self._cipher(vault_id)
        now = self._clock()
        changed = frozenset(changes)
        doc, mark = self._derived_write(vault_id, changed, lambda d: cipher.apply(d, changes, now))
        self._follow(vault_id, changed, mark)
        return cipher.current(doc)

    def _derived_write(
        self, vault_id: str, changed: frozenset[str], change: Callable[[Document], Document]
    ) -> tuple[Document, Document | None]:
        """Write the vault, first marking it pending if an observer follows the change, so
        a crash between the write and the observers is repaired by repair_derived; return
        the document written and the mark (None if nothing follows the change).

        Every such write moves the document's revision on by one: what observers derive
        from it carries the revision, so of two writes racing, the records end up as the
        later one says, whichever notified last.
        """
        mark = None
        if any(observer.follows(changed) for observer in self._observers):
            mark = {"since": isoformat(self._clock()), "id": secrets.token_hex(8)}
            self._store.update(PENDING_TABLE, vault_id, lambda _: mark)

        def revised(doc: Document) -> Document:
            return {**change(doc), REVISION: int(doc.get(REVISION, 0)) + 1}

        return self._store.update_vault(vault_id, revised), mark

    def _follow(self, vault_id: str, changed: frozenset[str], mark: Document | None) -> None:
        """Bring what observers derive in step with the vault as it is now (read afresh, so
        a write that landed meanwhile is not undone), then clear this write's pending mark
        if no later write replaced it. A vault being erased meanwhile is forgotten again:
        whatever this notification wrote back must not outlive the erasure."""
        if mark is None:
            return
        if self._bring_up_to_date(vault_id, changed) and self._being_erased(vault_id):
            self._forget(vault_id)
        self._store.update(PENDING_TABLE, vault_id, lambda held: None if held == mark else held)

    def _being_erased(self, vault_id: str) -> bool:
        """Whether an erasure of the vault has begun (its mark is set first, and cleared
        only once the document is gone)."""
        if self._store.get(ERASING_TABLE, vault_id) is not None:
            return True
        try:
            self._store.read_vault(vault_id)
        except NotFound:
            return True
        return False

    def repair_derived(self) -> int:
        """Finish every erasure cut short, and bring the derived records of every vault
        marked pending up to date with its document (after a crash between the two);
        return how many vaults were repaired."""
        repaired = 0
        for vault_id, _ in list(self._store.scan(ERASING_TABLE)):
            self._finish_erasing(vault_id)
            repaired += 1
        for vault_id, _ in list(self._store.scan(PENDING_TABLE)):
            try:
                self._bring_up_to_date(vault_id, EVERYTHING_DERIVED)
            except Exception:
                # One vault that cannot be repaired now must not keep the others waiting:
                # its mark stays, and the next pass tries it again.
                logger.exception("repair of the derived records of a vault failed")
                continue
            self._store.delete(PENDING_TABLE, vault_id)
            repaired += 1
        return repaired

    def _bring_up_to_date(self, vault_id: str, changed: frozenset[str]) -> bool:
        """Tell the observers of ``changed`` in the vault as it is now (read afresh), or,
        if it is gone, that it is; return whether it was there."""
        try:
            doc = self._store.read_vault(vault_id)
        except NotFound:
            self._forget(vault_id)
            return False
        self._notify(vault_id, doc, changed)
        return True

    def _forget(self, vault_id: str) -> None:
        """Have every observer forget what it derived from the vault."""
        for observer in self._observers:
            observer.vault_erasing(vault_id)

    def _cipher(self, vault_id: str) -> ProfileCipher:
        return ProfileCipher(vault_id, self.datakeys.open(vault_id), self._rng)

    def _discard(self, vault_id: str) -> None:
        self.datakeys.destroy(vault_id)
        with contextlib.suppress(NotFound):
            self._store.delete_vault(vault_id)

    def _notify(
        self,
        vault_id: str,
        doc: Document,
        changed: frozenset[str],
        profile: Mapping[str, JSONValue] | None = None,
    ) -> None:
        if not self._observers:
            return
        current = self._cipher(vault_id).current(doc) if profile is None else profile
        for observer in self._observers:
            observer.vault_changed(vault_id, doc, current, changed)

    def _emit(
        self, kind: str, actor: str, vault_id: str, detail: Mapping[str, str] | None = None
    ) -> None:
        vault = self.pseudonym(vault_id)
        self._events.emit(Event(kind, self._clock(), actor, vault=vault, detail=detail or {}))


def _history_json(history: Mapping[str, list[FieldVersion]]) -> dict[str, list[Document]]:
    return {
        name: [{"version": v.version, "value": v.value, "at": isoformat(v.at)} for v in versions]
        for name, versions in history.items()
    }
