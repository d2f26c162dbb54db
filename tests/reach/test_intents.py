"""Intents: customers publish what they look for; vendors see it with no identity and
answer with an offer that lands in that customer's inbox alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import FakeClock
from tests.reach.conftest import Marketer, customer, cyclist, register_marketer
from vault.access_export import full_export
from vault.errors import NotFound, ValidationError
from vrm.services import Services

INTENT = {
    "category": "electronics",
    "text": "A mirrorless camera for bird photography",
    "budget": "900",
    "currency": "eur",
    "region": "Rutland",
    "days": "30",
}
ANSWER = {
    "title": "Our birding kit",
    "message": "A body and a long lens, within your budget.",
    "fields": {"email": "send you the quote"},
}


def test_vendors_see_open_intents_without_identity(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    intent = vault.intents.publish(vault_id, INTENT)

    listed = client.get("/api/v1/intents", headers=marketer.bearer)

    assert listed.status_code == 200
    (shown,) = listed.get_json()["intents"]
    assert shown["id"] == intent.intent_id
    assert shown["text"] == INTENT["text"]
    assert shown["budget"] == {"amount": 900, "currency": "EUR"}
    assert vault_id not in listed.get_data(as_text=True)
    assert "customer1@example.org" not in listed.get_data(as_text=True)


def test_an_answer_lands_in_that_customer_s_inbox_alone_once_per_vendor(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    asker = customer(vault, 1, cyclist(1), channels=None)
    other = customer(vault, 2, cyclist(2))
    intent = vault.intents.publish(asker, INTENT)

    answered = client.post(
        f"/api/v1/intents/{intent.intent_id}/offers", json=ANSWER, headers=marketer.bearer
    )

    assert answered.status_code == 201
    offer_id = answered.get_json()["id"]
    assert [i.offer.offer_id for i in vault.offers.inbox(asker)] == [offer_id]
    assert vault.offers.inbox(other) == []
    twice = client.post(
        f"/api/v1/intents/{intent.intent_id}/offers", json=ANSWER, headers=marketer.bearer
    )
    assert twice.status_code == 409


def test_withdrawn_and_expired_intents_are_closed(
    client: FlaskClient, vault: Services, marketer: Marketer, clock: FakeClock
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    withdrawn = vault.intents.publish(vault_id, INTENT)
    expiring = vault.intents.publish(vault_id, {**INTENT, "days": "7"})
    vault.intents.withdraw(vault_id, withdrawn.intent_id)
    clock.advance(8 * 24 * 3600)

    token = client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=marketer.auth
    ).get_json()["access_token"]
    fresh = Marketer(*marketer.auth, token)
    assert client.get("/api/v1/intents", headers=fresh.bearer).get_json() == {"intents": []}
    for intent in (withdrawn, expiring):
        response = client.post(
            f"/api/v1/intents/{intent.intent_id}/offers", json=ANSWER, headers=fresh.bearer
        )
        assert response.status_code == 404


def test_a_customer_cannot_withdraw_another_s_intent(vault: Services) -> None:
    owner = customer(vault, 1, cyclist(1))
    intruder = customer(vault, 2, cyclist(2))
    intent = vault.intents.publish(owner, INTENT)

    with pytest.raises(NotFound):
        vault.intents.withdraw(intruder, intent.intent_id)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "weapons"}, "category"),
        ({"text": "  "}, "text"),
        ({"text": "x" * 501}, "text"),
        ({"budget": "lots"}, "budget"),
        ({"currency": "euro"}, "currency"),
        ({"days": "3"}, "days"),
        ({"text": "bad\u202etext"}, "text"),
        ({"text": "hidden\u200btext"}, "text"),
    ],
)
def test_bad_intents_are_refused_by_field(
    vault: Services, change: dict[str, Any], field: str
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    with pytest.raises(ValidationError) as refused:
        vault.intents.publish(vault_id, {**INTENT, **change})
    assert refused.value.field == field


def test_intents_need_intents_read(client: FlaskClient, vault: Services) -> None:
    counter = register_marketer(client, scope="segments:query")
    assert client.get("/api/v1/intents", headers=counter.bearer).status_code == 403


def test_erasure_removes_intents_mailbox_and_index(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    vault.intents.publish(vault_id, INTENT)
    others = [customer(vault, n, cyclist(n)) for n in range(2, 5)]
    client.post(
        "/api/v1/offers",
        json={**ANSWER, "segment": {"field": "interests", "equals": "cycling"}},
        headers=marketer.bearer,
    )

    vault.vaults.erase(vault_id)

    assert vault.intents.open_intents() == []
    assert vault.store.get("mailboxes", vault_id) is None
    assert vault.store.get("segments", vault_id) is None
    assert vault.store.get("mailboxes", others[0]) is not None


def test_the_export_holds_offers_intents_and_segmentable_fields(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    intent = vault.intents.publish(vault_id, INTENT)
    client.post(f"/api/v1/intents/{intent.intent_id}/offers", json=ANSWER, headers=marketer.bearer)

    document = full_export(
        vault.vaults, vault.history, vault_id, offers=vault.offers, intents=vault.intents
    )

    assert document["segmentable"] == ["interests", "postal_address"]
    assert document["intents"][0]["text"] == INTENT["text"]
    (offer,) = document["offers"]["offers"]
    assert offer["title"] == ANSWER["title"]
    assert document["offers"]["channels"] == ["email"]


def test_no_indexed_value_or_intent_text_is_anywhere_on_disk(
    client: FlaskClient, vault: Services, marketer: Marketer, data_dir: Path
) -> None:
    secrets = {
        "interests": ["velocipedism"],
        "postal_address": {
            "street": "1 Quiet Row",
            "locality": "Oakham",
            "country": "GB",
            "region": "Rutlandshire",
        },
        "gender": "Androgynous",
        "locale": "cy-GB",
        "birthdate": "1983-07-19",
    }
    ids = [
        customer(
            vault,
            n,
            secrets,
            segmentable=("interests", "postal_address", "gender", "locale", "birthdate"),
        )
        for n in range(3)
    ]
    vault.intents.publish(
        ids[0], {**INTENT, "text": "Seeking a tandem for two", "region": "Leicestershire"}
    )
    offer = client.post(
        "/api/v1/offers",
        json={
            **ANSWER,
            "segment": {
                "all": [
                    {"field": "interests", "equals": "velocipedism"},
                    {"field": "region", "equals": "Rutlandshire"},
                ]
            },
        },
        headers=marketer.bearer,
    ).get_json()
    assert offer["delivered"] == 3
    vault.offers.accept(ids[1], offer["id"], ["email"])
    vault.webhooks.deliver_due()

    blob = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    for value in (
        "velocipedism",
        "Rutlandshire",
        "rutlandshire",
        "Androgynous",
        "androgynous",
        "cy-GB",
        "1983-07-19",
        "Seeking a tandem",
        "Leicestershire",
        "Oakham",
    ):
        assert value.encode() not in blob, value


@pytest.mark.parametrize("intent_id", ["int_" + "é" * 24, "int_" + "²" * 24, "int_1"])
def test_malformed_intent_ids_are_404_not_500(
    client: FlaskClient, marketer: Marketer, intent_id: str
) -> None:
    response = client.post(
        f"/api/v1/intents/{intent_id}/offers", json=ANSWER, headers=marketer.bearer
    )
    assert response.status_code == 404


def test_an_intent_takes_a_bounded_number_of_answers(
    client: FlaskClient, vault: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vault.intents.MAX_ANSWERS", 2)
    vault_id = customer(vault, 1, cyclist(1))
    intent = vault.intents.publish(vault_id, INTENT)
    answers = []
    for _ in range(3):
        vendor = register_marketer(client)
        answers.append(
            client.post(
                f"/api/v1/intents/{intent.intent_id}/offers", json=ANSWER, headers=vendor.bearer
            ).status_code
        )

    assert answers == [201, 201, 429]
    assert len(vault.offers.inbox(vault_id)) == 2
