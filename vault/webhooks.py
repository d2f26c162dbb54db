"""Telling vendors what changed: signed webhooks, queued and retried with backoff.

A vendor that registered ``vrm_webhook_uri`` is told when a customer accepts one of its
offers, and when one of its grants is narrowed, revoked or expires, so a withdrawal
reaches it without waiting for its next request to fail. Each message is a Security Event
Token (RFC 8417): a JWT signed with the server's current Ed25519 key (the first at
``jwks_uri``), POSTed as ``application/secevent+jwt`` (RFC 8935). The vendor verifies it against the
JWKS and checks ``aud`` is its client id; ``jti`` is unique, so a retried delivery can be
recognised.

Messages wait in the shared ``webhooks`` table and a delivery pass (the server runs one
every few seconds; ``vrm webhooks deliver`` runs one by hand) posts those that are due.
A failure (no connection, a timeout, any status but 2xx) is tried again after 30 s, then
1, 2, 4 ... minutes, up to an hour apart, and given up after 10 attempts. A delivery is
leased before it is sent, so two server processes never post the same message at once.

Only public addresses are posted to: a name that resolves to a loopback, private,
link-local or otherwise special address is refused (the server must not be a way into
its own network), unless the operator allows it; the connection goes to the address that
was checked, so a second DNS answer cannot change it.
"""

from __future__ import annotations

import contextlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from joserfc import jws

from keys.envelope import RandomBytes
from keys.errors import KeyringError
from keys.signing import SigningKey, SigningKeys
from vault.clock import Clock, isoformat, parse_iso
from vault.errors import AlreadyExists, NotFound, VaultError
from vault.events import Event, EventSink, vault_pseudonym
from vault.grants import Grant, is_live, pairwise_subject
from vault.service import FollowsNoProfile
from vault.storage.base import Document, Store
from vault.vendors import PROFILE_SCOPE_PREFIX, VendorRegistry

logger = logging.getLogger(__name__)

TABLE = "webhooks"
RECORD_FORMAT = 1
SET_TYPE = "secevent+jwt"
CONTENT_TYPE = "application/secevent+jwt"
EVENT_PREFIX = "urn:vrm-vault:event:"
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
LEASE = timedelta(seconds=60)
KEEP_DONE = timedelta(days=7)
TIMEOUT_SECONDS = 5.0
DEADLINE_SECONDS = 10.0
"""The longest one delivery may take, however slowly the vendor's server answers."""
PASS_SECONDS = 30.0
"""The longest one delivery pass runs; what is left waits for the next pass."""
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


class WebhookRefused(VaultError):
    """The webhook could not be delivered this time; says why (never a secret)."""


class Transport(Protocol):
    """Posts one message; returns the HTTP status or raises WebhookRefused."""

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """Send ``body`` to ``url``."""
        ...


@dataclass(frozen=True)
class DeliveryReport:
    """What one delivery pass did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0


class Webhooks(FollowsNoProfile):
    """Queues signed messages for vendors and delivers them."""

    def __init__(
        self,
        *,
        store: Store,
        vendors: VendorRegistry,
        signing: SigningKeys,
        issuer: str,
        index_key: bytes,
        transport: Transport,
        events: EventSink,
        clock: Clock,
        rng: RandomBytes = os.urandom,
    ) -> None:
        self._store = store
        self._vendors = vendors
        self._signing = signing
        self._issuer = issuer
        self._index_key = index_key
        self._transport = transport
        self._events = events
        self._clock = clock
        self._rng = rng

    def notify(
        self,
        vendor_id: str,
        event: str,
        data: Mapping[str, Any],
        *,
        vault_id: str | None = None,
        once: str | None = None,
    ) -> str | None:
        """Queue ``event`` for the vendor; return the message id (None: no webhook).

        ``vault_id`` names the vault the message is about (kept as its pseudonym), so
        erasing that vault can withdraw what has not been delivered yet. ``once`` names a
        message that must be queued at most once however often this is called for it (an
        erasure finished by the repair pass tells each vendor once): its id, and so its
        ``jti``, is derived from it, and a second call queues nothing (the store refuses the
        second insert).
        """
        vendor = self._vendors.get(vendor_id)
        if vendor is None or vendor.disabled or not vendor.webhook_uri:
            return None
        now = self._clock()
        if once is None:
            message_id = "wh_" + self._rng(12).hex()
        else:
            derived = hmac.new(self._index_key, b"webhook once\0" + once.encode(), "sha256")
            message_id = "wh_" + derived.hexdigest()[:24]
        claims = {
            "iss": self._issuer,
            "aud": vendor_id,
            "iat": int(now.timestamp()),
            "jti": message_id,
            "events": {EVENT_PREFIX + event: dict(data)},
        }
        body = self._signing.current().compact_jws(json.dumps(claims, sort_keys=True), SET_TYPE)
        record = {
            "format": RECORD_FORMAT,
            "vendor": vendor_id,
            "url": vendor.webhook_uri,
            "event": event,
            "body": body,
            "status": PENDING,
            "attempts": 0,
            "created_at": isoformat(now),
            "next_at": isoformat(now),
            "lease_until": None,
            "last_error": None,
            "about": vault_pseudonym(self._index_key, vault_id) if vault_id else None,
        }
        try:
            self._store.insert(TABLE, message_id, record)
        except AlreadyExists:
            if once is None:
                raise
        return message_id

    def grant_withdrawn(self, vault_id: str, grant: Grant, event: str) -> None:
        """Tell the vendor its grant was narrowed, revoked or expired (GrantObserver), with
        the signed receipt of that change: once the grant has ended, the vendor's tokens
        can no longer fetch it from the API."""
        receipt = grant.receipts[-1] if grant.receipts else None
        # The fields this narrowing withdrew: those removed at its receipt's moment.
        withdrawn = [f for f, at in grant.removed if receipt is None or at == receipt.at]
        self.notify(
            grant.vendor_id,
            f"grant.{event}",
            {
                "sub": pairwise_subject(self._index_key, vault_id, grant.vendor_id),
                "status": grant.status,
                "scope": " ".join(PROFILE_SCOPE_PREFIX + f for f in grant.fields),
                "withdrawn": withdrawn if event == "narrowed" else [],
                "expires_at": int(grant.expires_at.timestamp()),
                "receipt": receipt.jws if receipt is not None else "",
            },
            vault_id=vault_id,
        )

    def vault_erasing(self, vault_id: str) -> None:
        """Withdraw undelivered messages about the vault, then tell each vendor holding a
        live grant that the customer erased their vault (VaultObserver)."""
        about = vault_pseudonym(self._index_key, vault_id)
        # Delivered and given-up messages go too: their bodies hold the customer's pairwise
        # id and any acceptance code, which must not outlive the vault.
        for key, record in list(self._store.scan(TABLE)):
            if record.get("about") == about:
                self._store.delete(TABLE, key)
        now = self._clock()
        try:
            grants = self._store.read_vault(vault_id).get("grants", {})
        except NotFound:
            grants = {}  # Discarded already (a repair finishing an erasure): nothing to tell.
        for record in grants.values():
            if is_live(record, now):
                vendor_id = record["vendor"]
                sub = pairwise_subject(self._index_key, vault_id, vendor_id)
                data = {"sub": sub, "status": "erased"}
                once = f"grant.erased\0{vault_id}\0{record['id']}"
                self.notify(vendor_id, "grant.erased", data, once=once)

    def deliver_due(self, limit: int = 100) -> DeliveryReport:
        """Post the messages that are due, at most ``limit``; reschedule failures."""
        now = self._clock()
        due: list[tuple[str, str]] = []
        # One read of the table finds what is due and what is old enough to forget.
        for key, record in self._store.scan(TABLE):
            if record["status"] == PENDING:
                if parse_iso(record["next_at"]) <= now:
                    due.append((record["created_at"], key))
            elif _done_long_ago(record, now):
                self._store.delete(TABLE, key)
        delivered = retrying = failed = 0
        try:
            # One key for the pass: what was queued under another is signed again with it.
            signing = self._signing.current()
        except KeyringError as error:
            # The server's own fault: the vendors' attempts are not spent on it. Messages
            # wait (a queued one may carry a withdrawn key's signature) until it is fixed.
            logger.error("webhooks: not sent, the signing key cannot be loaded: %s", error)
            return DeliveryReport(0, len(due), 0)
        started = time.monotonic()
        # Oldest first, so a vendor hears of a grant's changes in the order they happened.
        for _, key in sorted(due)[:limit]:
            if time.monotonic() - started > PASS_SECONDS:
                break
            leased = self._lease(key)
            if leased is None:
                continue
            outcome = self._attempt(key, leased, signing)
            delivered += outcome == DELIVERED
            failed += outcome == FAILED
            retrying += outcome == PENDING
        return DeliveryReport(delivered, retrying, failed)

    def pending(self) -> list[tuple[str, Document]]:
        """Every message not yet delivered or given up (for the operator and tests)."""
        return [(k, r) for k, r in self._store.scan(TABLE) if r["status"] == PENDING]

    def message(self, message_id: str) -> Document | None:
        """One message's record."""
        return self._store.get(TABLE, message_id)

    def _lease(self, key: str) -> Document | None:
        """Take the message for one attempt, timed from now (a pass can run for a while)."""
        leased: list[Document] = []
        now = self._clock()

        def change(record: Document | None) -> Document | None:
            leased.clear()
            if record is None or record["status"] != PENDING:
                return record
            held = record.get("lease_until")
            if held and parse_iso(held) > now:
                return record
            new = {**record, "lease_until": isoformat(now + LEASE)}
            leased.append(new)
            return new

        self._store.update(TABLE, key, change)
        return leased[0] if leased else None

    def _attempt(self, key: str, record: Document, signing: SigningKey) -> str:
        """Post a leased message and record the outcome, timed from when the post ended.

        A vendor disabled (or gone) since the message was queued is not sent anything.
        The outcome is recorded only while the record is still there under this lease: a
        message withdrawn meanwhile (its vault erased) stays withdrawn, and one another
        process leased anew after this lease ran out is left to that process.
        """
        attempts = record["attempts"]
        vendor = self._vendors.get(record["vendor"])
        if vendor is None or vendor.disabled:
            error: str | None = "the vendor is disabled: not sent"
            outcome = FAILED
        else:
            attempts += 1
            error = self._post(record, signing)
            if error is None:
                outcome = DELIVERED
            elif attempts >= MAX_ATTEMPTS:
                outcome = FAILED
            else:
                outcome = PENDING
        now = self._clock()
        wait = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LONGEST_WAIT)
        update = {
            "status": outcome,
            "attempts": attempts,
            "next_at": isoformat(now + wait),
            "lease_until": None,
            "last_error": error,
            "done_at": isoformat(now) if outcome != PENDING else None,
        }
        lease = record["lease_until"]

        def change(current: Document | None) -> Document | None:
            if current is None or current.get("lease_until") != lease:
                return current
            return {**current, **update}

        self._store.update(TABLE, key, change)
        self._events.emit(
            Event(
                "webhook.delivered" if outcome == DELIVERED else "webhook.failed",
                now,
                "system",
                vendor=record["vendor"],
                detail={"event": record["event"], "attempt": attempts, "error": error or ""},
            )
        )
        return outcome

    def _post(self, record: Document, signing: SigningKey) -> str | None:
        """Send the message once, signed by ``signing``; None if the vendor took it, else
        why not."""
        headers = {"Content-Type": CONTENT_TYPE, "Accept": "application/json"}
        try:
            body = _signed_by(record["body"], signing)
            status = self._transport.post(record["url"], body.encode(), headers)
        except WebhookRefused as refused:
            return str(refused)
        except Exception as error:
            # Anything else counts as a failed attempt, so the message is still given up in
            # the end rather than held under a lease that every pass runs into again.
            logger.warning("webhook to vendor %s: %s", record["vendor"], type(error).__name__)
            return f"could not deliver: {type(error).__name__}"
        return None if 200 <= status < 300 else f"answered HTTP {status}"


class HttpTransport:
    """Posts over HTTP(S) to public addresses only (see the module's note)."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        timeout: float = TIMEOUT_SECONDS,
        deadline: float = DEADLINE_SECONDS,
    ) -> None:
        self._allow_private = allow_private
        self._timeout = timeout
        self._deadline = deadline
        self._tls = ssl.create_default_context()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body``; the status code, or WebhookRefused."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise WebhookRefused("the webhook URI is not an http(s) URL")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = resolve(
            parts.hostname, port, allow_private=self._allow_private, timeout=self._timeout
        )
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(parts.scheme, parts.hostname, port, address)
        # The socket timeout bounds each read; a server dripping a byte at a time would
        # never trip it, so the whole exchange also has a deadline that cuts the socket.
        watchdog = threading.Timer(self._deadline, _cut, args=(connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            connection.request("POST", path, body=body, headers=dict(headers))
            status = connection.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            raise WebhookRefused(f"could not deliver: {type(error).__name__}") from None
        finally:
            watchdog.cancel()
            connection.close()
        return status

    def _connection(
        self, scheme: str, host: str, port: int, address: str
    ) -> http.client.HTTPConnection:
        if scheme == "https":
            return _PinnedHTTPS(host, port, address, self._timeout, self._tls)
        return _PinnedHTTP(host, port, address, self._timeout)


def _done_long_ago(record: Document, now: datetime) -> bool:
    """A delivered or abandoned message kept past KEEP_DONE."""
    done = record.get("done_at")
    return isinstance(done, str) and parse_iso(done) < now - KEEP_DONE


def _cut(connection: http.client.HTTPConnection) -> None:
    """End a delivery that ran past its deadline: blocked reads return at once."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def resolve(host: str, port: int, *, allow_private: bool, timeout: float = TIMEOUT_SECONDS) -> str:
    """The address to connect to for ``host``; WebhookRefused if any answer is not a
    public address (unless ``allow_private``), the name does not resolve, or the lookup
    takes longer than ``timeout`` seconds (a vendor's slow name server must not hold
    the delivery pass)."""
    answers = _lookup(host, port, timeout)
    addresses = [str(answer[4][0]) for answer in answers]
    for address in addresses:
        check_address(address, allow_private=allow_private)
    if not addresses:
        raise WebhookRefused("the webhook host does not resolve")
    return addresses[0]


def _lookup(host: str, port: int, timeout: float) -> list[Any]:
    """``getaddrinfo``, given up after ``timeout`` seconds. The resolver has no timeout of
    its own, so it runs on a thread of its own, left to finish (or not) by itself."""
    found: list[list[Any]] = []

    def look_up() -> None:
        with contextlib.suppress(OSError, UnicodeError):
            found.append(list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))

    lookup = threading.Thread(target=look_up, name="webhook name lookup", daemon=True)
    lookup.start()
    lookup.join(timeout)
    if lookup.is_alive():
        raise WebhookRefused("the webhook host did not resolve in time")
    if not found:
        raise WebhookRefused("the webhook host does not resolve")
    return found[0]


_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")


def check_address(address: str, *, allow_private: bool) -> None:
    """Refuse an address that is not globally routable, unless ``allow_private``."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip in _NAT64_WELL_KNOWN:
        # An IPv6-only host reaches IPv4 through NAT64 (RFC 6052): the address is the IPv4
        # one in the last 32 bits, which must be global (the prefix never carries others).
        check_address(str(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)), allow_private=allow_private)
        return
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 address can carry an IPv4 one (mapped, 6to4, Teredo): check that too.
        teredo = ip.teredo
        for embedded in (ip.ipv4_mapped, ip.sixtofour, *(teredo or ())):
            if embedded is not None:
                check_address(str(embedded), allow_private=allow_private)
    # fec0::/10, deprecated site-local (RFC 3879), which ipaddress counts as global.
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    if site_local and not allow_private:
        raise WebhookRefused("the webhook host resolves to a private or loopback address")
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        raise WebhookRefused("the webhook host resolves to an address that cannot be used")
    if not ip.is_global and not allow_private:
        raise WebhookRefused("the webhook host resolves to a private or loopback address")


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=tls)
        self._address = address
        self._tls = tls

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


def _signed_by(body: str, signing: SigningKey) -> str:
    """The queued message ``body`` as ``signing`` signs it: one queued before a rotation is
    signed again, so that a vendor can check it against the keys published now (a key
    withdrawn as compromised among them no longer)."""
    queued = jws.extract_compact(body.encode("ascii"))
    if queued.headers().get("kid") == signing.kid:
        return body
    return signing.compact_jws(queued.payload, SET_TYPE)
