"""Webhooks: signed Security Event Tokens a vendor verifies with the published key,
retried with backoff, sent for accepted offers and for every withdrawal of a grant."""

from __future__ import annotations

import base64
import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet

from keys import rotate_signing_key
from tests.conftest import FakeClock
from tests.reach.conftest import ISSUER, Marketer, Receiver, customer, cyclist
from vault.clock import parse_iso
from vault.errors import StorageError
from vault.offers import Offers
from vault.receipts import verify_receipt
from vault.webhooks import (
    CONTENT_TYPE,
    MAX_ATTEMPTS,
    HttpTransport,
    WebhookRefused,
    check_address,
)
from vrm.services import Services

OFFER = {
    "title": "Lights for winter",
    "message": "Front and back, rechargeable.",
    "fields": {"email": "send you the voucher", "given_name": "greet you"},
    "segment": {"field": "interests", "equals": "cycling"},
}


def verified(client: FlaskClient, body: bytes) -> dict[str, Any]:
    """What a vendor does: check the signature against jwks_uri, then read the claims."""
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    token = jws.deserialize_compact(body.decode(), keys, algorithms=["Ed25519"])
    assert token.headers()["typ"] == "secevent+jwt"
    claims: dict[str, Any] = json.loads(token.payload)
    return claims


def accepted_offer(client: FlaskClient, vault: Services, marketer: Marketer) -> tuple[str, str]:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = client.post("/api/v1/offers", json=OFFER, headers=marketer.bearer).get_json()
    vault.offers.accept(ids[0], offer["id"], ["email"])
    return ids[0], offer["id"]


def test_an_accepted_offer_reaches_the_vendor_signed_and_verifiable(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    _, offer_id = accepted_offer(client, vault, marketer)

    report = vault.webhooks.deliver_due()

    assert report.delivered == 1
    content_type, body = receiver.received[0]
    assert content_type == CONTENT_TYPE
    claims = verified(client, body)
    assert claims["iss"] == ISSUER
    assert claims["aud"] == marketer.client_id
    event = claims["events"]["urn:vrm-vault:event:offer.accepted"]
    assert event["offer"] == offer_id
    assert event["scope"] == "profile:email"
    assert event["code"] == vault.offers.acceptances(marketer.client_id, offer_id)[0]["code"]


def test_a_forged_or_altered_message_does_not_verify(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    accepted_offer(client, vault, marketer)
    vault.webhooks.deliver_due()
    header, payload, signature = receiver.received[0][1].decode().split(".")
    altered = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")

    with pytest.raises(BadSignatureError):
        verified(client, f"{header}.{altered}.{signature}".encode())


def queued_then_rotated(
    client: FlaskClient, vault: Services, marketer: Marketer, *, withdrawn: bool
) -> Path:
    """Queue a message (signed by the key in use), then rotate that key; the keys folder."""
    accepted_offer(client, vault, marketer)
    keys_dir = Path(vault.config["DATA"]) / "keys"
    rotate_signing_key(keys_dir, publish_old=not withdrawn)
    return keys_dir


@pytest.mark.parametrize("compromised", [False, True], ids=["retired", "withdrawn"])
def test_a_message_queued_before_a_signing_key_rotation_is_sent_signed_by_the_new_key(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    compromised: bool,
) -> None:
    queued_then_rotated(client, vault, marketer, withdrawn=compromised)
    assert vault.webhooks.deliver_due().delivered == 1
    body = receiver.received[0][1]
    header = json.loads(base64.urlsafe_b64decode(body.split(b".")[0] + b"=="))
    assert header["kid"] == vault.keys.signing.current().kid
    assert verified(client, body)["aud"] == marketer.client_id


def test_while_the_signing_key_cannot_be_loaded_nothing_unverifiable_is_sent(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    keys_dir = queued_then_rotated(client, vault, marketer, withdrawn=True)
    key_file = keys_dir / "signing-ed25519.pem"
    key_file.chmod(0o644)  # The new key refused by the key loader, for now.

    for _ in range(MAX_ATTEMPTS + 1):  # However long that lasts, ...
        report = vault.webhooks.deliver_due()
        assert (report.delivered, report.retrying) == (0, 1)
        clock.advance(24 * 3600)
    assert receiver.received == []
    ((_, listed),) = vault.webhooks.pending()
    assert listed["attempts"] == 0  # ... no attempt of the vendor's is spent on it.

    key_file.chmod(0o600)
    assert vault.webhooks.deliver_due().delivered == 1
    assert verified(client, receiver.received[0][1])["aud"] == marketer.client_id


def test_failed_deliveries_are_retried_with_growing_waits_then_succeed(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    receiver.statuses = [500, 503, 200]
    accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()

    assert vault.webhooks.deliver_due().retrying == 1
    first = vault.webhooks.message(message_id)
    assert first is not None
    assert first["attempts"] == 1
    assert parse_iso(first["next_at"]) == clock.now + timedelta(seconds=30)
    assert vault.webhooks.deliver_due().retrying == 0  # Not due yet: nothing is sent.
    assert len(receiver.received) == 1

    clock.advance(30)
    vault.webhooks.deliver_due()
    second = vault.webhooks.message(message_id)
    assert second is not None
    assert second["attempts"] == 2
    assert parse_iso(second["next_at"]) == clock.now + timedelta(seconds=60)

    clock.advance(60)
    assert vault.webhooks.deliver_due().delivered == 1
    assert len(receiver.received) == 3
    assert receiver.received[0][1] == receiver.received[2][1]  # The same message, same jti.
    assert vault.webhooks.pending() == []


def test_a_vendor_that_never_answers_is_given_up_after_the_last_attempt(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    receiver.statuses = [500] * MAX_ATTEMPTS
    accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()

    for _ in range(MAX_ATTEMPTS):
        vault.webhooks.deliver_due()
        clock.advance(3600)

    record = vault.webhooks.message(message_id)
    assert record is not None
    assert record["status"] == "failed"
    assert record["attempts"] == MAX_ATTEMPTS
    assert record["last_error"] == "answered HTTP 500"


def test_withdrawals_are_pushed_to_the_vendor(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    vault_id, offer_id = accepted_offer(client, vault, marketer)
    sub = vault.offers.acceptances(marketer.client_id, offer_id)[0]["sub"]
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.give(vault_id, marketer.client_id, ["given_name"], days=7)
    vault.consents.remove_field(vault_id, grant.grant_id, "email")
    ends = clock.now + timedelta(days=7)
    clock.advance(8 * 24 * 3600)

    assert vault.consents.expire_all() == 1

    vault.webhooks.deliver_due()
    kinds = []
    for _, body in receiver.received:
        ((kind, event),) = verified(client, body)["events"].items()
        kinds.append(kind.rsplit(":", 1)[1])
        jwks = client.get("/jwks.json").get_json()
        if kind.endswith("grant.narrowed"):
            receipt = event.pop("receipt")
            assert event == {
                "sub": sub,
                "status": "active",
                "scope": "profile:given_name",
                "withdrawn": ["email"],
                "expires_at": int(ends.timestamp()),
            }
            assert verify_receipt(receipt, jwks)["vrm"]["event"] == "narrowed"
        if kind.endswith("grant.expired"):
            assert event["status"] == "expired"
            assert event["sub"] == sub
            # Its tokens can no longer fetch it: the receipt of the end comes with it.
            assert verify_receipt(event["receipt"], jwks)["vrm"]["event"] == "expired"
    assert sorted(kinds) == ["grant.expired", "grant.narrowed", "offer.accepted"]


def test_expiry_is_recorded_at_the_grant_s_end_not_when_noticed(
    client: FlaskClient, vault: Services, marketer: Marketer, clock: FakeClock, events: Any
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)
    (grant,) = vault.consents.grants(vault_id)
    clock.advance(200 * 24 * 3600)

    vault.consents.expire_all()

    (expired,) = [e for e in events.events if e.type == "grant.expired"]
    assert expired.at == grant.expires_at
    (ended,) = vault.consents.grants(vault_id)
    assert ended.status == "expired"
    assert ended.ended_at == grant.expires_at


def test_revocation_is_pushed(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.revoke(vault_id, grant.grant_id)

    vault.webhooks.deliver_due()

    events = {}
    for _, body in receiver.received:
        events.update(verified(client, body)["events"])
    assert events["urn:vrm-vault:event:grant.revoked"]["status"] == "revoked"
    assert events["urn:vrm-vault:event:grant.revoked"]["scope"] == "profile:email"


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "192.168.1.20",
        "172.16.0.5",
        "127.0.0.1",
        "169.254.169.254",
        "::1",
        "fd00::1",
        "0.0.0.0",  # noqa: S104 (refused, never bound)
        "224.0.0.1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "2002:7f00:1::1",
        "2002:a9fe:a9fe::1",
        "2002:a00:1::1",
        "2001:0:4136:e378:8000:63bf:f5ff:fffe",
        "fec0::1",
        "64:ff9b::a00:1",  # NAT64 (RFC 6052) carrying 10.0.0.1
        "64:ff9b::7f00:1",  # ... and 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # ... and 169.254.169.254
        "64:ff9b:1::5db8:d822",  # the local-use NAT64 prefix (RFC 8215): any IPv4 behind it
        "64:ff9b::1:5db8:d822",  # in 64:ff9b::/32 but outside the well-known /96
    ],
)
def test_private_and_special_addresses_are_refused(address: str) -> None:
    with pytest.raises(WebhookRefused):
        check_address(address, allow_private=False)


def test_public_addresses_are_allowed() -> None:
    check_address("93.184.216.34", allow_private=False)
    check_address("2606:2800:220:1:248:1893:25c8:1946", allow_private=False)


def test_a_public_ipv4_address_behind_the_well_known_nat64_prefix_is_allowed() -> None:
    # An IPv6-only host reaches 93.184.216.34 as 64:ff9b::5db8:d822 (RFC 6052).
    check_address("64:ff9b::5db8:d822", allow_private=False)


def test_vendors_without_a_webhook_are_not_queued(client: FlaskClient, vault: Services) -> None:
    from tests.reach.conftest import register_marketer

    quiet = register_marketer(client)
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = client.post("/api/v1/offers", json=OFFER, headers=quiet.bearer).get_json()
    vault.offers.accept(ids[0], offer["id"], ["email"])

    assert vault.webhooks.pending() == []


def test_erasure_withdraws_undelivered_messages_and_tells_the_vendor(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    vault_id, offer_id = accepted_offer(client, vault, marketer)
    sub = vault.offers.acceptances(marketer.client_id, offer_id)[0]["sub"]

    vault.vaults.erase(vault_id)

    assert vault.offers.acceptances(marketer.client_id, offer_id) == []
    vault.webhooks.deliver_due()
    (only,) = [verified(client, body)["events"] for _, body in receiver.received]
    assert only == {"urn:vrm-vault:event:grant.erased": {"sub": sub, "status": "erased"}}


def test_an_erasure_finished_by_the_repair_pass_tells_the_vendor_once(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)

    def full_disk(*_: Any) -> None:
        raise StorageError("no space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(Offers, "vault_erasing", full_disk)  # After the webhooks were queued.
        with pytest.raises(StorageError):
            vault.vaults.erase(vault_id)
    assert vault.vaults.repair_derived() == 1
    vault.webhooks.deliver_due()

    (only,) = [verified(client, body) for _, body in receiver.received]
    assert list(only["events"]) == ["urn:vrm-vault:event:grant.erased"]


def test_a_vendor_that_never_answers_cannot_hold_a_delivery_past_its_deadline() -> None:
    """The socket timeout alone would wait for ever on a server that keeps the line open;
    the delivery's deadline cuts it."""
    release = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            release.wait(30)  # Holds the connection open, answering nothing.

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    transport = HttpTransport(allow_private=True, timeout=30.0, deadline=0.2)
    try:
        with pytest.raises(WebhookRefused, match="could not deliver"):
            transport.post(f"http://127.0.0.1:{server.server_address[1]}/", b"{}", {})
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_vendor_hears_of_a_grant_s_changes_in_the_order_they_happened(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.give(vault_id, marketer.client_id, ["given_name"])
    clock.advance(1)
    vault.consents.remove_field(vault_id, grant.grant_id, "email")
    clock.advance(1)
    vault.consents.revoke(vault_id, grant.grant_id)

    vault.webhooks.deliver_due()

    kinds = [
        next(iter(verified(client, body)["events"])).rsplit(":", 1)[1]
        for _, body in receiver.received
    ]
    assert kinds == ["offer.accepted", "grant.narrowed", "grant.revoked"]


def test_a_message_withdrawn_while_it_is_being_delivered_stays_withdrawn(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()
    receiver.statuses = [503]
    receiver.during = lambda: vault.vaults.erase(vault_id)

    vault.webhooks.deliver_due()

    assert vault.webhooks.message(message_id) is None
    assert all(r["event"] != "offer.accepted" for _, r in vault.webhooks.pending())


def test_each_attempt_is_leased_and_retried_from_its_own_time(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = client.post("/api/v1/offers", json=OFFER, headers=marketer.bearer).get_json()
    for vault_id in ids[:2]:
        vault.offers.accept(vault_id, offer["id"], ["email"])
    receiver.statuses = [500, 500]
    leases: list[bool] = []

    def slow_vendor() -> None:
        # Each delivery takes 40 s; the one in flight must still hold its lease.
        held = [
            parse_iso(r["lease_until"]) for _, r in vault.webhooks.pending() if r["lease_until"]
        ]
        leases.append(len(held) == 1 and held[0] > clock.now)
        clock.advance(40)

    receiver.during = slow_vendor
    start = clock.now

    assert vault.webhooks.deliver_due().retrying == 2
    assert leases == [True, True]
    # Each 30 s wait runs from its own failure, at 40 s and at 80 s into the pass.
    waits = sorted(parse_iso(r["next_at"]) - start for _, r in vault.webhooks.pending())
    assert waits == [timedelta(seconds=70), timedelta(seconds=110)]


def test_a_vendor_disabled_after_a_message_was_queued_is_sent_nothing(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()
    vault.vendors.disable(marketer.client_id)

    report = vault.webhooks.deliver_due()

    assert (report.delivered, report.failed) == (0, 1)
    assert receiver.received == []
    record = vault.webhooks.message(message_id)
    assert record is not None
    assert record["status"] == "failed"
    assert record["last_error"] == "the vendor is disabled: not sent"


def test_erasure_removes_delivered_messages_about_the_vault_too(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()
    assert vault.webhooks.deliver_due().delivered == 1

    vault.vaults.erase(vault_id)

    assert vault.webhooks.message(message_id) is None


def test_a_transport_that_breaks_counts_as_a_failed_attempt(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()

    def broken(*_: Any) -> int:
        raise RuntimeError("a bug in the transport")

    monkeypatch.setattr(HttpTransport, "post", broken)
    report = vault.webhooks.deliver_due()

    assert report.retrying == 1
    record = vault.webhooks.message(message_id)
    assert record is not None
    assert record["attempts"] == 1
    assert record["lease_until"] is None


def test_an_attempt_whose_lease_ran_out_leaves_the_message_to_the_one_that_took_it(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    accepted_offer(client, vault, marketer)
    ((message_id, _),) = vault.webhooks.pending()
    # The first post hangs past its lease; meanwhile another process takes the message and
    # delivers it (answered first, 200); then the first post fails (answered last, 500).
    receiver.statuses = [200, 500]
    other: list[int] = []

    def another_process() -> None:
        if not other:
            other.append(-1)
            clock.advance(61)
            other.append(vault.webhooks.deliver_due().delivered)

    receiver.during = another_process
    vault.webhooks.deliver_due()

    assert other == [-1, 1]
    record = vault.webhooks.message(message_id)
    assert record is not None
    assert record["status"] == "delivered"


def test_a_name_server_that_never_answers_cannot_hold_a_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resolver has no timeout of its own: the lookup is given up after the timeout."""
    release = threading.Event()

    def silent_resolver(*_: Any, **__: Any) -> list[Any]:
        release.wait(30)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", silent_resolver)
    transport = HttpTransport(allow_private=True, timeout=0.05, deadline=30.0)
    try:
        with pytest.raises(WebhookRefused, match="did not resolve in time"):
            transport.post("https://slow-dns.example/hook", b"{}", {})
    finally:
        release.set()


def test_each_narrowing_names_only_the_fields_it_withdrew(
    client: FlaskClient,
    vault: Services,
    marketer: Marketer,
    receiver: Receiver,
    clock: FakeClock,
) -> None:
    vault_id, _ = accepted_offer(client, vault, marketer)
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.give(vault_id, marketer.client_id, ["given_name", "postal_address"])
    vault.consents.remove_field(vault_id, grant.grant_id, "email")
    clock.advance(1)
    vault.consents.remove_field(vault_id, grant.grant_id, "given_name")

    vault.webhooks.deliver_due()

    withdrawn = [
        event["withdrawn"]
        for _, body in receiver.received
        for kind, event in verified(client, body)["events"].items()
        if kind.endswith("grant.narrowed")
    ]
    assert withdrawn == [["email"], ["given_name"]]
