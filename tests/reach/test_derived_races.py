"""What is derived from a vault (its segment index record, its mailbox's channels) stays
in step with the vault when another request lands between a write and its observers: the
later write wins whichever observer runs last, and an erasure is not undone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.reach.conftest import Marketer, customer, cyclist
from vault.offers import Offers
from vault.segment_query import parse_predicate
from vault.segments import SegmentUpdater
from vrm.services import Services

CYCLING = {"field": "interests", "equals": "cycling"}
NO_CHANNEL = {"email": False, "sms": False, "phone": False, "post": False}


def meanwhile(
    monkeypatch: pytest.MonkeyPatch, observer: type, other: Callable[[str], object]
) -> None:
    """Run ``other`` once, just before an observer of type ``observer`` follows a change:
    another request that lands between a write and its observers."""
    original = observer.vault_changed  # type: ignore[attr-defined]
    done: list[bool] = []

    def late(self: Any, vault_id: str, *args: Any) -> None:
        if not done:
            done.append(True)
            other(vault_id)
        original(self, vault_id, *args)

    monkeypatch.setattr(observer, "vault_changed", late)


def members(vault: Services, segment: Any = CYCLING) -> set[str]:
    return vault.segment_index.members(parse_predicate(segment, today=vault.clock().date()))


def test_making_nothing_countable_meanwhile_is_not_undone(
    vault: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    meanwhile(monkeypatch, SegmentUpdater, lambda v: vault.vaults.set_segmentable(v, ()))

    vault.vaults.set_fields(vault_id, {"interests": ["cycling", "hiking"]})

    assert vault.vaults.segmentable(vault_id) == ()
    assert vault_id not in members(vault)


def test_of_two_profile_writes_the_later_one_is_counted(
    vault: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    meanwhile(
        monkeypatch, SegmentUpdater, lambda v: vault.vaults.set_fields(v, {"interests": ["chess"]})
    )

    vault.vaults.set_fields(vault_id, {"interests": ["cycling", "hiking"]})

    assert vault.vaults.profile(vault_id)["interests"] == ["chess"]
    assert vault_id in members(vault, {"field": "interests", "equals": "chess"})
    assert vault_id not in members(vault, {"field": "interests", "equals": "hiking"})


def test_a_write_racing_an_erasure_leaves_nothing_counted(
    vault: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    meanwhile(monkeypatch, SegmentUpdater, vault.vaults.erase)

    vault.vaults.set_fields(vault_id, {"interests": ["cycling", "hiking"]})

    assert vault.store.get("segments", vault_id) is None
    assert vault_id not in members(vault)


def test_turning_every_channel_off_meanwhile_is_not_undone(
    client: FlaskClient, vault: Services, marketer: Marketer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    meanwhile(
        monkeypatch,
        Offers,
        lambda v: vault.vaults.set_fields(v, {"channel_preferences": NO_CHANNEL}),
    )

    vault.vaults.set_fields(vault_id, {"channel_preferences": {"email": True, "sms": True}})

    offer = {"title": "T", "message": "M", "fields": {"email": "x"}, "segment": CYCLING}
    assert client.post("/api/v1/offers", json=offer, headers=marketer.bearer).status_code == 201
    assert vault.offers.inbox(vault_id) == []


def test_a_repair_finishes_a_vault_erased_before_its_write(vault: Services) -> None:
    """A pending mark whose vault is gone: every observer forgets it, the webhooks too,
    and the next vault's repair is not held up."""
    gone = customer(vault, 1, cyclist(1))
    vault.vaults.erase(gone)
    vault.store.update("derived_pending", gone, lambda _: {"since": "2026-11-25T09:00:00Z"})

    assert vault.vaults.repair_derived() == 1
    assert list(vault.store.scan("derived_pending")) == []


def test_an_offer_delivered_while_the_customer_blocks_is_closed(
    client: FlaskClient, vault: Services, marketer: Marketer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    offer = {"title": "T", "message": "M", "fields": {"email": "x"}, "segment": CYCLING}
    change_box = Offers._change_box
    sent: list[int] = []

    def delivered_first(offers: Offers, *args: Any) -> None:
        if not sent:
            sent.append(
                client.post("/api/v1/offers", json=offer, headers=marketer.bearer).status_code
            )
        change_box(offers, *args)

    monkeypatch.setattr(Offers, "_change_box", delivered_first)
    vault.offers.block(vault_id, marketer.client_id)

    assert sent == [201]
    assert [item.status for item in vault.offers.inbox(vault_id)] == ["declined"]


def test_an_intent_withdrawn_while_a_vendor_answers_takes_no_answer(
    client: FlaskClient, vault: Services, marketer: Marketer, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault_id = customer(vault, 1, cyclist(1))
    intent = vault.intents.publish(vault_id, {"category": "home", "text": "a sofa"})
    take_answer = type(vault.intents).take_answer

    def withdrawn_first(board: Any, intent_id: str) -> None:
        board.withdraw(vault_id, intent_id)
        take_answer(board, intent_id)

    monkeypatch.setattr(type(vault.intents), "take_answer", withdrawn_first)
    offer = {"title": "T", "message": "M", "fields": {"email": "x"}}
    answer = client.post(
        f"/api/v1/intents/{intent.intent_id}/offers", json=offer, headers=marketer.bearer
    )

    assert answer.status_code == 404
    assert vault.offers.inbox(vault_id) == []
