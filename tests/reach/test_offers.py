"""Offers reach exactly the customers whose preferences, blocks and caps allow; accepting
gives a working token for exactly the fields chosen; declining gives nothing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.reach.conftest import Marketer, Receiver, customer, cyclist
from vault.errors import ValidationError
from vault.events import ListSink
from vault.offers import quiet_until
from vendor_api.oauth import OFFER_GRANT_TYPE
from vrm.services import Services

CYCLING = {"field": "interests", "equals": "cycling"}
OFFER = {
    "title": "Ten percent off cycling jackets",
    "message": "Our winter range, for riders who stay out in the rain.",
    "expires_in_days": 14,
    "fields": {"email": "send you the discount code", "given_name": "address you by name"},
}


def send(client: FlaskClient, marketer: Marketer, segment: Any = CYCLING) -> Any:
    response = client.post(
        "/api/v1/offers", json={**OFFER, "segment": segment}, headers=marketer.bearer
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def inbox_ids(vault: Services, vault_id: str) -> list[str]:
    return [item.offer.offer_id for item in vault.offers.inbox(vault_id)]


def test_an_offer_reaches_exactly_those_who_allow_it(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    opted_in = [customer(vault, n, cyclist(n)) for n in range(3)]
    no_channel = customer(vault, 10, cyclist(10), channels={"email": False})
    never_chose = customer(vault, 11, cyclist(11), channels=None)
    blocker = customer(vault, 12, cyclist(12))
    vault.offers.block(blocker, marketer.client_id)
    capped = customer(
        vault, 13, cyclist(13), channels={"post": True, "max_offers_per_vendor_per_month": 1}
    )
    not_countable = customer(vault, 14, cyclist(14), segmentable=("postal_address",))
    chess = customer(vault, 15, {"interests": ["chess"]})

    first = send(client, marketer)
    second = send(client, marketer)

    for vault_id in opted_in:
        assert inbox_ids(vault, vault_id) == [second["id"], first["id"]]
    assert inbox_ids(vault, capped) == [first["id"]]
    for vault_id in (no_channel, never_chose, blocker, not_countable, chess):
        assert inbox_ids(vault, vault_id) == []
    assert first["delivered"] == 4
    assert second["delivered"] == 3


def test_the_cap_counts_per_calendar_month(
    client: FlaskClient, vault: Services, marketer: Marketer, clock: Any
) -> None:
    ids = [
        customer(
            vault, n, cyclist(n), channels={"email": True, "max_offers_per_vendor_per_month": 1}
        )
        for n in range(3)
    ]
    send(client, marketer)
    assert send(client, marketer)["delivered"] is None  # nobody: all capped this month

    clock.advance(31 * 24 * 3600)
    client_token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=marketer.auth
    ).get_json()["access_token"]
    later = send(client, Marketer(*marketer.auth, client_token))
    assert later["delivered"] == 3
    assert all(len(inbox_ids(vault, v)) == 2 for v in ids)


def test_delivered_below_k_is_suppressed(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    reached = customer(vault, 1, cyclist(1))

    sent = send(client, marketer)

    assert sent == {"id": sent["id"], "delivered": None, "suppressed": True}
    assert inbox_ids(vault, reached) == [sent["id"]]


def test_accepting_with_a_field_unchecked_gives_tokens_for_exactly_the_chosen_field(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)

    grant = vault.offers.accept(ids[0], offer["id"], ["given_name"])
    assert dict(grant.fields) == {"given_name": "address you by name"}
    acceptances = client.get(
        f"/api/v1/offers/{offer['id']}/acceptances", headers=marketer.bearer
    ).get_json()["acceptances"]
    assert len(acceptances) == 1
    assert acceptances[0]["scope"] == "profile:given_name"

    tokens = client.post(
        "/oauth/token",
        data={"grant_type": OFFER_GRANT_TYPE, "code": acceptances[0]["code"]},
        auth=marketer.auth,
    )
    assert tokens.status_code == 200, tokens.get_json()
    body = tokens.get_json()
    assert body["scope"] == "profile:given_name"
    assert body["refresh_token"]
    profile = client.get(
        "/api/v1/profile", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).get_json()
    assert profile == {"sub": acceptances[0]["sub"], "given_name": "Rider0"}


def redeem(client: FlaskClient, marketer: Marketer, code: str) -> Any:
    return client.post(
        "/oauth/token", data={"grant_type": OFFER_GRANT_TYPE, "code": code}, auth=marketer.auth
    )


def accepted_code(
    client: FlaskClient, vault: Services, marketer: Marketer, fields: list[str]
) -> tuple[str, str]:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)
    vault.offers.accept(ids[0], offer["id"], fields)
    return ids[0], vault.offers.acceptances(marketer.client_id, offer["id"])[0]["code"]


def test_a_vendor_not_registered_for_refresh_tokens_gets_none_for_an_acceptance(
    client: FlaskClient, vault: Services
) -> None:
    from tests.reach.conftest import register_marketer

    no_refresh = register_marketer(client, grant_types=["authorization_code", "client_credentials"])
    _, code = accepted_code(client, vault, no_refresh, ["email"])

    body = redeem(client, no_refresh, code).get_json()

    assert body["scope"] == "profile:email"
    assert "refresh_token" not in body


def test_an_acceptance_code_is_single_use(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    _, code = accepted_code(client, vault, marketer, ["email"])
    first = redeem(client, marketer, code)
    assert first.status_code == 200

    again = redeem(client, marketer, code)

    assert again.status_code == 400
    assert again.get_json()["error"] == "invalid_grant"
    token = {"Authorization": f"Bearer {first.get_json()['access_token']}"}
    assert client.get("/api/v1/profile", headers=token).status_code == 401


def test_the_wrong_grant_type_neither_accepts_nor_spends_the_code(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    _, code = accepted_code(client, vault, marketer, ["email"])

    as_auth_code = client.post(
        "/oauth/token",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": "x" * 43},
        auth=marketer.auth,
    )

    assert as_auth_code.status_code == 400
    assert as_auth_code.get_json()["error"] == "invalid_grant"
    assert redeem(client, marketer, code).status_code == 200


def test_a_code_gives_only_what_is_still_granted(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    vault_id, code = accepted_code(client, vault, marketer, ["email", "given_name"])
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.remove_field(vault_id, grant.grant_id, "email")

    tokens = redeem(client, marketer, code)

    assert tokens.status_code == 200
    assert tokens.get_json()["scope"] == "profile:given_name"


def test_a_code_for_an_ended_grant_is_invalid_grant(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    vault_id, code = accepted_code(client, vault, marketer, ["email"])
    (grant,) = vault.consents.grants(vault_id)
    vault.consents.revoke(vault_id, grant.grant_id)

    refused = redeem(client, marketer, code)

    assert refused.status_code == 400
    assert refused.get_json()["error"] == "invalid_grant"


def test_another_vendor_cannot_redeem_the_code(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    from tests.reach.conftest import register_marketer

    rival = register_marketer(client)
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)
    vault.offers.accept(ids[0], offer["id"], ["email"])
    code = vault.offers.acceptances(marketer.client_id, offer["id"])[0]["code"]

    stolen = client.post(
        "/oauth/token", data={"grant_type": OFFER_GRANT_TYPE, "code": code}, auth=rival.auth
    )
    assert stolen.status_code == 400
    assert client.get(f"/api/v1/offers/{offer['id']}", headers=rival.bearer).status_code == 404


def test_declining_gives_the_vendor_nothing(
    client: FlaskClient, vault: Services, marketer: Marketer, receiver: Receiver
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)

    vault.offers.decline(ids[0], offer["id"])

    assert vault.consents.grants(ids[0]) == []
    assert vault.offers.acceptances(marketer.client_id, offer["id"]) == []
    vault.webhooks.deliver_due()
    assert receiver.received == []
    with pytest.raises(ValidationError):
        vault.offers.accept(ids[0], offer["id"], ["email"])


def test_the_vendor_sees_views_acceptances_and_declines_only_from_k(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(4)]
    offer = send(client, marketer)
    for vault_id in ids:
        vault.offers.open(vault_id, offer["id"])
    vault.offers.open(ids[0], offer["id"])  # A second look is not a second view.
    for vault_id in ids[:3]:
        vault.offers.decline(vault_id, offer["id"])
    vault.offers.accept(ids[3], offer["id"], ["email"])

    stats = client.get(f"/api/v1/offers/{offer['id']}", headers=marketer.bearer).get_json()

    assert stats["delivered"] == 4
    assert stats["viewed"] == 3  # 4, rounded down to a multiple of k.
    assert stats["declined"] == 3
    assert stats["accepted"] is None
    assert stats["suppressed_below"] == 3


def test_offer_fields_must_be_registered_and_purposes_given(
    client: FlaskClient, marketer: Marketer
) -> None:
    for fields, named in (
        ({"phone": "call you"}, "fields"),
        ({"email": ""}, "fields.email"),
        ({}, "fields"),
    ):
        response = client.post(
            "/api/v1/offers",
            json={**OFFER, "fields": fields, "segment": CYCLING},
            headers=marketer.bearer,
        )
        assert response.status_code == 400
        assert response.get_json()["error_description"].startswith(named)


def test_blocking_declines_what_is_waiting_and_stops_new_offers(
    client: FlaskClient, vault: Services, marketer: Marketer, events: ListSink
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)

    vault.offers.block(ids[0], marketer.client_id)

    assert [i.status for i in vault.offers.inbox(ids[0])] == ["declined"]
    send(client, marketer)
    assert inbox_ids(vault, ids[0]) == [offer["id"]]
    assert "vendor.blocked" in events.types()
    vault.offers.unblock(ids[0], marketer.client_id)
    send(client, marketer)
    assert len(inbox_ids(vault, ids[0])) == 2


@pytest.mark.parametrize("offer_id", ["off_" + "é" * 24, "off_" + "²" * 24, "off_x", "../x"])
def test_malformed_offer_ids_are_404_not_500(
    client: FlaskClient, marketer: Marketer, offer_id: str
) -> None:
    assert client.get(f"/api/v1/offers/{offer_id}", headers=marketer.bearer).status_code == 404


@pytest.mark.parametrize("pair", [("accept", "accept"), ("accept", "decline")])
def test_two_answers_at_once_cannot_both_count(
    client: FlaskClient, vault: Services, marketer: Marketer, pair: tuple[str, str]
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)
    start = threading.Barrier(2)

    def answer(kind: str) -> None:
        start.wait()
        try:
            if kind == "accept":
                vault.offers.accept(ids[0], offer["id"], ["email"])
            else:
                vault.offers.decline(ids[0], offer["id"])
        except ValidationError:
            pass  # The one that came second is told the offer was answered.

    threads = [threading.Thread(target=answer, args=(kind,)) for kind in pair]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    record = vault.store.get("offers", offer["id"])
    assert record is not None
    assert record["accepted"] + record["declined"] == 1
    assert len(record["acceptances"]) == record["accepted"]
    assert len(vault.consents.grants(ids[0])) == record["accepted"]


def test_a_block_closes_waiting_offers_without_counting_declines(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    offer = send(client, marketer)

    vault.offers.block(ids[0], marketer.client_id)

    record = vault.store.get("offers", offer["id"])
    assert record is not None
    assert record["declined"] == 0
    assert [i.status for i in vault.offers.inbox(ids[0])] == ["declined"]


def test_an_offer_delivered_in_quiet_hours_waits_for_them_to_end(
    client: FlaskClient, vault: Services, marketer: Marketer, clock: Any
) -> None:
    quiet = {"start": "21:00", "end": "08:00", "timezone": "Europe/London"}
    night = customer(vault, 1, cyclist(1), channels={"email": True, "quiet_hours": quiet})
    clock.now = clock.now.replace(hour=7, minute=30)  # 07:30 in London, in winter.

    send(client, marketer)

    (item,) = vault.offers.inbox(night)
    assert item.notify_after == clock.now.replace(hour=8, minute=0)


@pytest.mark.parametrize(
    ("start", "end", "at", "waits_until"),
    [
        ("21:00", "08:00", "22:15", "08:00+1"),
        ("21:00", "08:00", "07:59", "08:00"),
        ("21:00", "08:00", "08:00", None),
        ("12:00", "14:00", "13:00", "14:00"),
        ("12:00", "14:00", "20:00", None),
    ],
)
def test_quiet_hours_span_midnight_or_not(
    start: str, end: str, at: str, waits_until: str | None
) -> None:
    hours = {"start": start, "end": end, "timezone": "UTC"}
    now = datetime(2026, 12, 1, *map(int, at.split(":")), tzinfo=UTC)

    found = quiet_until(hours, now)

    if waits_until is None:
        assert found is None
    else:
        clock_time, _, next_day = waits_until.partition("+")
        hour, minute = map(int, clock_time.split(":"))
        expected = now.replace(hour=hour, minute=minute) + timedelta(days=int(next_day or 0))
        assert found == expected
