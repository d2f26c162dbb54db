"""Vendor access: authorization codes, access and refresh tokens, and the check every
vendor request passes before it reads anything.

State lives where it belongs: a code's single use and a refresh token's place in its
rotation chain are recorded in the grant (the customer's own vault file); client
credentials tokens need no state at all. Every request re-reads the grant, so narrowing,
revocation, expiry, erasure and a disabled vendor take effect on the very next request.
Each change function is handed its own fresh copy of the vault document (see
``vault.storage.base``), so the changes below edit it in place.

Refresh tokens rotate on use. Presenting a rotated one again means two parties hold the
chain, so every token of that grant is revoked (RFC 9700 section 4.14); a reused code does
the same (RFC 6749 section 4.1.2), expired or not, for as long as the grant remembers it
(see ``VendorAccess.claim_code``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, NoReturn

from vault.clock import Clock, isoformat, parse_iso
from vault.datakeys import DataKeys
from vault.errors import NotFound, VaultError
from vault.events import Event, EventSink
from vault.fields import JSONValue
from vault.grants import EXPIRED, REVOKED, Consents, Grant, is_live
from vault.profile import ProfileCipher
from vault.storage.base import Document, Store
from vault.tokens import (
    ACCESS,
    CODE,
    REFRESH,
    InsufficientScope,
    InvalidToken,
    TokenClaims,
    TokenSealer,
)
from vault.vendors import PROFILE_SCOPE_PREFIX, VendorRegistry

logger = logging.getLogger(__name__)

ACCESS_TTL = 900
CODE_TTL = 60
OFFER_CODE_METHOD = "offer-acceptance"
"""The PKCE method slot of a code issued for an accepted offer: it has no challenge."""
CODE_MEMORY = 600
LAST_ACCESS_EVERY = timedelta(minutes=1)
#: How many times a new refresh chain tries to claim its register before giving up (each
#: failure means another chain of the grant wrote it in between).
_PLACE_TRIES = 8
REVOKED_TABLE = "revoked_tokens"


@dataclass(frozen=True)
class Principal:
    """Whose data a token reads: one grant of one vault."""

    vault_id: str
    grant_id: str
    epoch: int


@dataclass(frozen=True)
class CodeUse:
    """A claimed authorization code, with what PKCE and the redirect check need."""

    claims: TokenClaims
    redirect_uri: str
    challenge: str
    method: str

    @property
    def principal(self) -> Principal:
        """The grant the code was issued for."""
        return principal_of(self.claims)


@dataclass(frozen=True)
class CheckedRefresh:
    """A refresh token that passed :meth:`VendorAccess.check_refresh`: its claims, the
    scopes its grant still allows, and where its chain stood when checked. The refresh
    moves the chain on from that register value by compare-and-set, so a move since is
    caught, and reads the grant again after the move, so a revocation since is too.
    """

    claims: TokenClaims
    granted: tuple[str, ...]
    position: dict[str, Any] = field(repr=False)
    held: Document | None = field(repr=False)


@dataclass(frozen=True)
class AccessContext:
    """A request that passed the checks, with the scopes still granted."""

    claims: TokenClaims
    scopes: tuple[str, ...]
    doc: Document | None = field(default=None, repr=False)

    @property
    def fields(self) -> tuple[str, ...]:
        """The profile fields the request may read."""
        return tuple(s[len(PROFILE_SCOPE_PREFIX) :] for s in self.scopes if _is_profile(s))


class VendorAccess:
    """Issues and checks the tokens vendors use."""

    def __init__(
        self,
        *,
        store: Store,
        vendors: VendorRegistry,
        consents: Consents,
        datakeys: DataKeys,
        sealer: TokenSealer,
        events: EventSink,
        clock: Clock,
    ) -> None:
        self._store = store
        self._vendors = vendors
        self._consents = consents
        self._datakeys = datakeys
        self._sealer = sealer
        self._events = events
        self._clock = clock

    # Authorization codes.

    def issue_code(
        self,
        principal: Principal,
        client_id: str,
        *,
        scopes: tuple[str, ...],
        redirect_uri: str,
        challenge: str,
        method: str,
        ttl: int = CODE_TTL,
    ) -> str:
        """A single-use code for a grant the customer just gave; lives ``ttl`` seconds
        (CODE_TTL for the authorization code flow)."""
        now = self._clock()
        claims = self._claims(CODE, client_id, scopes, now, ttl, principal)
        entry = {
            "exp": claims.expires_at,
            "redirect_uri": redirect_uri,
            "challenge": challenge,
            "method": method,
            "used": False,
        }

        def change(doc: Document) -> Document:
            record = _live_record(doc, principal.grant_id, now)
            record["codes"] = _remembered(record["codes"], now)
            record["codes"][claims.token_id] = entry
            return doc

        self._store.update_vault(principal.vault_id, change)
        return self._sealer.seal(claims)

    def granted_now(self, claims: TokenClaims) -> tuple[str, ...]:
        """The scopes of a claimed code that its grant still allows now; InvalidToken if
        the grant ended or its tokens were revoked since the code was issued."""
        _, record = self._grant_of(claims)
        return _still_granted(claims.scopes, record)

    def acceptance_code(
        self, vault_id: str, grant: Grant, client_id: str, scopes: tuple[str, ...], ttl: int
    ) -> str:
        """The code a vendor exchanges for tokens of a grant the customer gave by accepting
        an offer (the offer-acceptance grant type): single-use like an authorization code,
        but with no redirect and no PKCE, since the vendor never sent the customer here; it
        is redeemed only with the vendor's client authentication."""
        return self.issue_code(
            Principal(vault_id, grant.grant_id, grant.epoch),
            client_id,
            scopes=scopes,
            redirect_uri="",
            challenge="",
            method=OFFER_CODE_METHOD,
            ttl=ttl,
        )

    def claim_code(
        self,
        code: str,
        client_id: str,
        *,
        kind: str = "S256",
        proof: Callable[[CodeUse], None] | None = None,
    ) -> CodeUse:
        """Use a code once. A second use revokes every token the first one led to.

        ``proof`` is called with the code's record before anything is decided; it raises
        InvalidToken when the request does not prove it holds the code rightfully (the PKCE
        verifier or the redirect URI does not match). Such a request changes nothing: it
        neither uses the code up nor counts as a reuse, so someone who learned a code but
        not its verifier cannot spend it or end the grant's tokens with it.

        ``kind`` is the kind of code the grant type redeeming it takes: ``S256`` (an
        authorization code, which carries a PKCE challenge) or OFFER_CODE_METHOD. A code of
        the other kind is refused untouched, so presenting it to the wrong grant type
        neither uses it up nor counts as a reuse.

        Reuse is checked before expiry: a code replayed after its 60 seconds is still a
        sign that someone else holds it, so the tokens it gave are revoked all the same.
        The grant remembers a used code for CODE_MEMORY seconds (10 minutes) after it
        expires, and forgets it then; a replay after that cannot be told from a late first
        use and is refused as expired, revoking nothing. Keeping used codes until the
        grant's token epoch changes instead would grow the customer's vault file with every
        authorization of a long-lived grant, since epochs rarely change; a stolen code is
        replayed within seconds or minutes, not hours.

        Tokens a code gave carry the grant's epoch at the code's issue, so a reuse ends
        that epoch only if it is still the grant's: if it has moved on, those tokens are
        dead already, and the vendor's later tokens did not come from this code.
        """
        claims = self._sealer.open(code, CODE)
        if claims.client_id != client_id:
            raise InvalidToken("the code was issued to another client")
        self._check_vendor(claims)
        vault_id = principal_of(claims).vault_id
        now = self._clock()
        outcome: dict[str, Any] = {}

        def change(doc: Document) -> Document:
            record = _live_record(doc, claims.grant_id or "", now)
            entry = record["codes"].get(claims.token_id)
            if entry is not None and proof is not None and entry["method"] == kind:
                proof(_code_use(claims, entry))
            if entry is not None and entry["used"]:
                outcome["reused"] = "tokens already revoked"
                if record["epoch"] == claims.epoch:
                    record["epoch"] += 1
                    record["refresh"] = None
                    outcome["reused"] = "grant tokens revoked"
                return doc
            if _ts(now) >= claims.expires_at:
                raise InvalidToken("the code expired")
            if entry is None:
                raise InvalidToken("the code is not known to its grant")
            if entry["method"] != kind:
                raise InvalidToken("that code is not for this grant type")
            entry["used"] = True
            outcome["entry"] = dict(entry)
            record["codes"] = _remembered(record["codes"], now)
            return doc

        self._update_or_invalid(vault_id, change)
        if "reused" in outcome:
            self._emit("token.code_reused", claims, detail={"action": outcome["reused"]})
            raise InvalidToken("the code was already used; its tokens are revoked")
        return _code_use(claims, outcome["entry"])

    # Access and refresh tokens.

    def access_token(
        self, client_id: str, scopes: tuple[str, ...], principal: Principal | None = None
    ) -> tuple[str, TokenClaims]:
        """A new access token (at most ACCESS_TTL seconds); needs no write."""
        claims = self._claims(ACCESS, client_id, scopes, self._clock(), ACCESS_TTL, principal)
        self._emit("token.issued", claims, detail={"kind": "access"})
        return self._sealer.seal(claims), claims

    def refresh(
        self, checked: CheckedRefresh, client_id: str, scopes: tuple[str, ...]
    ) -> tuple[str, str]:
        """Rotate the checked refresh token and issue an access token for ``scopes``;
        return (access token, next refresh token).

        If another request rotated it first, this one is a reuse: the grant's tokens are
        revoked. The two events (token refreshed, access token issued) are recorded
        together, so the audit log syncs once for both.
        """
        nxt = self._rotate(checked)
        claims = self._claims(
            ACCESS, client_id, scopes, self._clock(), ACCESS_TTL, principal_of(checked.claims)
        )
        self._events.emit_all(
            [
                self._event("token.refreshed", nxt),
                self._event("token.issued", claims, detail={"kind": "access"}),
            ]
        )
        return self._sealer.seal(claims), self._sealer.seal(nxt)

    def start_refresh(self, principal: Principal, client_id: str, scopes: tuple[str, ...]) -> str:
        """Begin a new refresh chain for the grant (ending any earlier chain)."""
        now = self._clock()
        claims = self._claims(REFRESH, client_id, scopes, now, 0, principal)
        family = claims.token_id

        def change(doc: Document) -> Document:
            record = _live_record(doc, principal.grant_id, now)
            if record["epoch"] != principal.epoch:
                raise InvalidToken("the grant's tokens were revoked")
            record["chains"] = record.get("chains", 0) + 1
            record["refresh"] = {"family": family, "counter": 1, "gen": record["chains"]}
            return doc

        doc = self._update_or_invalid(principal.vault_id, change)
        sealed = replace(claims, family=family, counter=1)
        start = {"family": family, "counter": 1}
        self._place_chain(principal.vault_id, sealed, start, doc["grants"][principal.grant_id])
        return self._sealer.seal(sealed)

    def _place_chain(
        self, vault_id: str, claims: TokenClaims, start: Document, record: Document
    ) -> None:
        """Put a chain's position in the grant's register, right after the vault write that
        numbered the chain (so that a refresh only ever writes the register in place),
        unless a chain numbered as high or higher is there already: it ended this one.

        The register remembers where the chain it replaces stood (``prev``), so a token of
        that chain used twice just before is still seen as reused. If the grant ended
        while the register was written, the register is removed again (its end removes it
        too, but may have come first).
        """
        generation = record["refresh"]["gen"]
        for _ in range(_PLACE_TRIES):
            held = self._store.read_register(vault_id, _chain_name(claims))
            if held is not None and held.get("gen", 0) >= generation:
                return
            value = {**start, "gen": generation}
            if held is not None and held.get("family") != start["family"]:
                value["prev"] = {"family": held.get("family"), "counter": held.get("counter")}
            if self._swap_chain(vault_id, claims, held, value):
                now = self._clock()
                grant = self._vault_doc(vault_id).get("grants", {}).get(claims.grant_id)
                if grant is None or not is_live(grant, now):
                    remove_chain_register(self._store, vault_id, claims.grant_id or "")
                return
        raise InvalidToken("the grant's refresh chain kept changing; try again")

    def _number_chain(self, vault_id: str, old: TokenClaims) -> None:
        """Number a chain started before registers existed and give it its register, the
        first time it moves: from then on a lost register refuses it, as for any chain."""

        def change(doc: Document) -> Document:
            record = doc.get("grants", {}).get(old.grant_id)
            chain = None if record is None else record["refresh"]
            if chain is not None and chain["family"] == old.family and not chain.get("gen"):
                record["chains"] = record.get("chains", 0) + 1
                chain["gen"] = record["chains"]
            return doc

        record = _live_record(
            self._update_or_invalid(vault_id, change), old.grant_id or "", self._clock()
        )
        chain = record["refresh"]
        if chain is None or chain["family"] != old.family:
            raise InvalidToken("the refresh token was revoked")
        position = {"family": old.family, "counter": chain["counter"]}
        self._place_chain(vault_id, old, position, record)

    def check_refresh(self, token: str, client_id: str) -> CheckedRefresh:
        """Validate a refresh token: return it, the scopes its grant still allows and where
        its chain stands. A token its chain has moved past is a reuse, which revokes the
        grant's tokens."""
        claims = self._open(token, REFRESH, client_id)
        _, record = self._grant_of(claims)
        position, held = self._position(claims, record)
        return CheckedRefresh(
            claims,
            _still_granted(claims.scopes, record),
            self._check_position(claims, position),
            held,
        )

    def _rotate(self, checked: CheckedRefresh) -> TokenClaims:
        """Move the chain of the checked token on by one; return the next token's claims,
        unsealed and not yet recorded. A reuse revokes the grant's tokens and raises
        InvalidToken.

        The chain's position is a register beside the vault (one small durable write),
        moved on by compare-and-set from where the check found it, so of two requests with
        one token only one wins; the vault document is written only when a chain starts
        or its tokens are revoked.
        """
        old, position, held = checked.claims, checked.position, checked.held
        now = self._clock()
        vault_id = principal_of(old).vault_id
        if held is None:
            # A chain from before registers, moving for the first time.
            self._number_chain(vault_id, old)
            record = _live_record(self._vault_doc(vault_id), old.grant_id or "", now)
            found, held = self._position(old, record)
            position = self._check_position(old, found)
        moved = {"family": old.family, "counter": old.counter + 1, "gen": position.get("gen", 0)}
        if not self._swap_chain(vault_id, old, held, moved):
            # Either a request with the same token moved the chain first (a reuse), or a
            # new chain took the register (this one has ended: no reuse, nothing revoked).
            now_held = self._store.read_register(vault_id, _chain_name(old)) or {}
            before = now_held.get("prev") or {}
            if now_held.get("family") == old.family or (
                before.get("family") == old.family and before.get("counter", 0) > old.counter
            ):
                self._reused(old)
            raise InvalidToken("the refresh token was revoked")
        # A revocation or a new chain that landed while the chain moved wins: no tokens.
        record = _live_record(self._vault_doc(vault_id), old.grant_id or "", now)
        if record["epoch"] != old.epoch or (record["refresh"] or {}).get("family") != old.family:
            raise InvalidToken("the grant's tokens were revoked")
        # The next refresh token keeps what this one could still get (RFC 6749 section 6),
        # not the narrower scope this access token was asked for.
        return replace(old, scopes=checked.granted, counter=old.counter + 1, issued_at=_ts(now))

    def _check_position(
        self, claims: TokenClaims, position: dict[str, Any] | None
    ) -> dict[str, Any]:
        """``position`` if the refresh token ``claims`` is the one its chain stands at.

        A token of a chain that has ended is refused; one its chain has moved past is a
        reuse, which revokes the grant's tokens.
        """
        if position is None or position["family"] != claims.family:
            raise InvalidToken("the refresh token was revoked")
        if position["counter"] != claims.counter:
            self._reused(claims)
        return position

    def _position(
        self, claims: TokenClaims, record: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, Document | None]:
        """Where the grant's refresh chain stands (its family and counter), or None if no
        token of it may be used; and the grant's register as read (None if never set).

        The vault document names the live chain; its register says where it is. A chain
        started before registers existed (no ``gen``) that has not moved since has no
        register, and stands where the document says. Otherwise a register that names
        another chain, or none, means this chain cannot be followed: its tokens are
        refused (and nothing revoked) rather than taken from the start again.
        """
        chain = record["refresh"]
        held = self._store.read_register(principal_of(claims).vault_id, _chain_name(claims))
        if chain is None:
            return None, held
        if held is not None and held.get("family") == chain["family"]:
            return held, held
        if held is None and not chain.get("gen"):
            return chain, held
        return None, held

    def _swap_chain(
        self, vault_id: str, claims: TokenClaims, held: Document | None, new: Document
    ) -> bool:
        try:
            return self._store.swap_register(vault_id, _chain_name(claims), held, new)
        except NotFound:
            raise InvalidToken("the customer's vault no longer exists") from None

    def _vault_doc(self, vault_id: str) -> Document:
        try:
            return self._store.read_vault(vault_id)
        except NotFound:
            raise InvalidToken("the customer's vault no longer exists") from None

    # The check every request passes.

    def authorize(self, token: str) -> AccessContext:
        """Check an access token against its vendor and its grant, now.

        Raises InvalidToken (expired, revoked, grant ended, vault erased, vendor disabled)
        or InsufficientScope (nothing it was issued for is still granted).
        """
        claims = self._sealer.open(token, ACCESS)
        self._check_live_token(claims)
        if claims.vault_id is None:
            if self._store.get(REVOKED_TABLE, claims.token_id) is not None:
                raise InvalidToken("the token was revoked")
            return AccessContext(claims, claims.scopes)
        doc, record = self._grant_of(claims)
        if claims.token_id in record["revoked_tokens"]:
            raise InvalidToken("the token was revoked")
        scopes = _still_granted(claims.scopes, record)
        if not scopes:
            raise InsufficientScope("none of the token's fields is still granted")
        return AccessContext(claims, scopes, doc)

    def read_profile(self, context: AccessContext) -> dict[str, JSONValue]:
        """The granted fields that have a value, decrypted, for an authorized request."""
        claims, doc = context.claims, context.doc
        vault_id = principal_of(claims).vault_id
        if doc is None:
            raise InvalidToken("the token is not bound to a customer's grant")
        try:
            dek = self._datakeys.open(vault_id)
        except NotFound:
            # An erasure under way (or cut short) has destroyed the key before the document.
            raise InvalidToken("the customer's vault no longer exists") from None
        shared = ProfileCipher(vault_id, dek, os.urandom).values(doc, context.fields)
        self._note_access(claims, doc)
        self._emit("data.read", claims, fields=tuple(shared))
        return shared

    def peek(self, token: str, kind: str = ACCESS) -> TokenClaims | None:
        """The claims of a genuine token of ``kind`` (an access token unless said),
        checked or not (for logging refusals)."""
        try:
            return self._sealer.open(token, kind)
        except InvalidToken:
            return None

    def subject(self, claims: TokenClaims) -> str | None:
        """The pairwise id the token's vendor knows its customer by."""
        if claims.vault_id is None:
            return None
        return self._consents.subject(claims.vault_id, claims.client_id)

    # Revocation and introspection.

    def revoke(self, token: str, client_id: str) -> None:
        """Revoke a token the vendor holds (RFC 7009). A refresh token takes its grant's
        access tokens with it. Tokens that are invalid already are ignored."""
        kind = self._sealer.kind_of(token)
        try:
            claims = self._open(token, kind or ACCESS, client_id)
        except InvalidToken:
            return
        if claims.vault_id is None:
            self._revoke_client_token(claims)
        else:
            self._revoke_grant_token(claims)
        self._emit("token.revoked", claims, detail={"kind": claims.kind})

    def introspect(self, token: str, client_id: str) -> dict[str, Any]:
        """RFC 7662 answer for a vendor's own access or refresh token; ``{"active": false}``
        for anything else, authorization codes included: a code is not a token a vendor
        holds for API use, only something to exchange for one."""
        kind = self._sealer.kind_of(token)
        if kind not in (ACCESS, REFRESH):
            return {"active": False}
        try:
            claims = self._open(token, kind, client_id)
            scopes = self._live_scopes(claims)
        except (InvalidToken, InsufficientScope, NotFound):
            return {"active": False}
        if not scopes:
            return {"active": False}  # Every field it was for was withdrawn: it reads nothing.
        answer: dict[str, Any] = {
            "active": True,
            "scope": " ".join(scopes),
            "client_id": claims.client_id,
            "token_type": "Bearer" if claims.kind == ACCESS else "refresh_token",
            "iat": claims.issued_at,
        }
        if claims.expires_at:
            answer["exp"] = claims.expires_at
        subject = self.subject(claims)
        if subject:
            answer["sub"] = subject
        return answer

    # Internals.

    def _claims(
        self,
        kind: str,
        client_id: str,
        scopes: tuple[str, ...],
        now: datetime,
        ttl: int,
        principal: Principal | None,
    ) -> TokenClaims:
        return TokenClaims(
            kind=kind,
            client_id=client_id,
            token_id=self._sealer.new_id(),
            scopes=scopes,
            issued_at=_ts(now),
            expires_at=_ts(now) + ttl if ttl else 0,
            vault_id=principal.vault_id if principal else None,
            grant_id=principal.grant_id if principal else None,
            epoch=principal.epoch if principal else 0,
        )

    def _open(self, token: str, kind: str, client_id: str) -> TokenClaims:
        claims = self._sealer.open(token, kind)
        if claims.client_id != client_id:
            raise InvalidToken("the token was issued to another client")
        self._check_live_token(claims)
        return claims

    def _check_live_token(self, claims: TokenClaims) -> None:
        if claims.expires_at and _ts(self._clock()) >= claims.expires_at:
            raise InvalidToken("the token expired")
        self._check_vendor(claims)

    def _check_vendor(self, claims: TokenClaims) -> None:
        try:
            self._vendors.require_active(claims.client_id)
        except VaultError:
            raise InvalidToken("the vendor is disabled") from None

    def _grant_of(self, claims: TokenClaims) -> tuple[Document, dict[str, Any]]:
        doc = self._vault_doc(claims.vault_id or "")
        record = doc.get("grants", {}).get(claims.grant_id)
        if record is None:
            raise InvalidToken("the grant no longer exists")
        now = self._clock()
        if record["status"] == "active" and now >= parse_iso(record["expires_at"]):
            self._consents.expire_due(claims.vault_id or "")
            raise InvalidToken("the grant expired")
        if not is_live(record, now):
            raise InvalidToken(f"the grant was {record['status']}")
        if record["epoch"] != claims.epoch:
            raise InvalidToken("the grant's tokens were revoked")
        return doc, record

    def _live_scopes(self, claims: TokenClaims) -> tuple[str, ...]:
        if claims.kind not in (ACCESS, REFRESH):
            raise InvalidToken("only access and refresh tokens carry scopes for API use")
        if claims.vault_id is None:
            if self._store.get(REVOKED_TABLE, claims.token_id) is not None:
                raise InvalidToken("the token was revoked")
            return claims.scopes
        _, record = self._grant_of(claims)
        if claims.kind == REFRESH:
            position, _ = self._position(claims, record)
            if position is None or (position["family"], position["counter"]) != (
                claims.family,
                claims.counter,
            ):
                raise InvalidToken("the refresh token was rotated or revoked")
        if claims.token_id in record["revoked_tokens"]:
            raise InvalidToken("the token was revoked")
        return _still_granted(claims.scopes, record)

    def forget_expired_revocations(self) -> int:
        """Drop the revocation records of client-credentials tokens that have expired since
        (an expired token is refused anyway); return how many. Run hourly by the server,
        so revoking many tokens does not grow the table for good."""
        now = _ts(self._clock())
        expired = [key for key, record in self._store.scan(REVOKED_TABLE) if record["exp"] <= now]
        for key in expired:
            self._store.delete(REVOKED_TABLE, key)
        return len(expired)

    def _revoke_client_token(self, claims: TokenClaims) -> None:
        record = {"exp": claims.expires_at, "client_id": claims.client_id}
        self._store.update(REVOKED_TABLE, claims.token_id, lambda old: old or record)

    def _revoke_grant_token(self, claims: TokenClaims) -> None:
        now = self._clock()

        def change(doc: Document) -> Document:
            record = doc.get("grants", {}).get(claims.grant_id)
            if record is None or record["epoch"] != claims.epoch:
                return doc
            if claims.kind == REFRESH:
                record["epoch"] += 1
                record["refresh"] = None
            elif claims.kind == CODE:
                # An unused code is forgotten, so it cannot be exchanged (and revokes
                # nothing if it is tried); a used one's tokens are revoked through them.
                entry = record["codes"].get(claims.token_id)
                if entry is not None and not entry["used"]:
                    del record["codes"][claims.token_id]
            else:
                live = {k: v for k, v in record["revoked_tokens"].items() if v > _ts(now)}
                record["revoked_tokens"] = {**live, claims.token_id: claims.expires_at}
            return doc

        self._update_or_invalid(claims.vault_id or "", change)

    def _reused(self, claims: TokenClaims) -> NoReturn:
        """A refresh token came back after it was used: revoke every token of its grant
        (RFC 9700 section 4.14), record it, and refuse the request.

        If they were revoked already (another reuse of the chain got there first), the
        event says so rather than claim this one revoked them.
        """
        outcome = {"action": "tokens already revoked"}

        def change(doc: Document) -> Document:
            record = doc["grants"][claims.grant_id]
            outcome["action"] = "tokens already revoked"
            if record["epoch"] == claims.epoch:
                record["epoch"] += 1
                record["refresh"] = None
                outcome["action"] = "grant tokens revoked"
            return doc

        self._update_or_invalid(claims.vault_id or "", change)
        self._emit("token.refresh_reused", claims, detail=dict(outcome))
        raise InvalidToken("the refresh token was already used; its grant's tokens are revoked")

    def _note_access(self, claims: TokenClaims, doc: Document) -> None:
        """Record the grant's last access, at most once a minute, so reads stay cheap."""
        now = self._clock()
        last = doc["grants"][claims.grant_id].get("last_access")
        if last and now - parse_iso(last) < LAST_ACCESS_EVERY:
            return

        def change(current: Document) -> Document:
            record = current.get("grants", {}).get(claims.grant_id)
            if record is not None:
                record["last_access"] = isoformat(now)
            return current

        self._update_or_invalid(claims.vault_id or "", change)

    def _update_or_invalid(self, vault_id: str, change: Any) -> Document:
        try:
            return self._store.update_vault(vault_id, change)
        except NotFound:
            raise InvalidToken("the grant no longer exists") from None

    def _emit(
        self,
        kind: str,
        claims: TokenClaims,
        *,
        fields: tuple[str, ...] = (),
        detail: dict[str, str | int | bool] | None = None,
    ) -> None:
        self._events.emit(self._event(kind, claims, fields=fields, detail=detail))

    def _event(
        self,
        kind: str,
        claims: TokenClaims,
        *,
        fields: tuple[str, ...] = (),
        detail: dict[str, str | int | bool] | None = None,
    ) -> Event:
        vault = self._consents.pseudonym(claims.vault_id) if claims.vault_id else None
        return Event(
            kind,
            self._clock(),
            "vendor",
            vault=vault,
            vendor=claims.client_id,
            fields=fields,
            detail=detail or {},
        )


class EndedChains:
    """Removes the refresh-chain register of a grant that has ended (revoked or expired).

    No token of an ended grant is honoured again (every check reads the grant first) and an
    ended grant never comes back (a new authorization makes a new grant), so the register
    would only take up space. A :class:`~vault.grants.GrantObserver`.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def grant_withdrawn(self, vault_id: str, grant: Grant, event: str) -> None:
        """Remove the ended grant's register; a narrowed grant keeps its chain."""
        if event in (REVOKED, EXPIRED):
            remove_chain_register(self._store, vault_id, grant.grant_id)


def remove_chain_register(store: Store, vault_id: str, grant_id: str) -> None:
    """Remove the refresh-chain register of the ended grant ``grant_id``; never raises."""
    try:
        store.delete_register(vault_id, _chain_name_of(grant_id))
    except (OSError, VaultError) as error:
        # The grant has ended whatever happens here; a leftover register is only disk.
        # The error names the file, and so the vault: only its kind is logged.
        cause = error if isinstance(error, OSError) else error.__cause__
        reason = cause.strerror if isinstance(cause, OSError) else None
        logger.warning(
            "the register of an ended grant was not removed: %s", reason or type(error).__name__
        )


def _code_use(claims: TokenClaims, entry: Mapping[str, Any]) -> CodeUse:
    return CodeUse(claims, entry["redirect_uri"], entry["challenge"], entry["method"])


def principal_of(claims: TokenClaims) -> Principal:
    """The grant a token is bound to; InvalidToken for a token bound to none."""
    if not claims.vault_id or not claims.grant_id:
        raise InvalidToken("the token is not bound to a customer's grant")
    return Principal(claims.vault_id, claims.grant_id, claims.epoch)


def _chain_name(claims: TokenClaims) -> str:
    """The name of the register holding the position of the grant's refresh chain."""
    return _chain_name_of(claims.grant_id or "")


def _chain_name_of(grant_id: str) -> str:
    return f"refresh.{grant_id}"


def _live_record(doc: Document, grant_id: str, now: datetime) -> dict[str, Any]:
    record = doc.get("grants", {}).get(grant_id)
    if record is None or not is_live(record, now):
        raise InvalidToken("the grant is no longer live")
    return record  # type: ignore[no-any-return]


def _still_granted(scopes: tuple[str, ...], record: dict[str, Any]) -> tuple[str, ...]:
    granted = record["fields"]
    return tuple(s for s in scopes if _is_profile(s) and s[len(PROFILE_SCOPE_PREFIX) :] in granted)


def _remembered(codes: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The codes still worth keeping: unexpired ones, and used ones for CODE_MEMORY more
    seconds so that a replay is recognised (see ``VendorAccess.claim_code``)."""
    return {
        k: v for k, v in codes.items() if v["exp"] + (CODE_MEMORY if v["used"] else 0) > _ts(now)
    }


def _is_profile(scope: str) -> bool:
    return scope.startswith(PROFILE_SCOPE_PREFIX)


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())
