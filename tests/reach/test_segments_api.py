"""POST /api/v1/segments/count: exact counts, suppression below k, noise that repeating a
query cannot average away, refusals that name the field, and every query in the log."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import FakeClock, make_app
from tests.reach.conftest import Marketer, customer, cyclist, register_marketer
from vault.events import ListSink
from vrm.services import Services

CYCLING = {"segment": {"field": "interests", "equals": "Cycling"}}


def count(client: FlaskClient, marketer: Marketer, body: Any) -> Any:
    return client.post("/api/v1/segments/count", json=body, headers=marketer.bearer)


def test_count_is_exact_at_or_above_k(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    for n in range(4):
        customer(vault, n, cyclist(n))
    customer(vault, 9, {"interests": ["chess"]})

    response = count(client, marketer, CYCLING)

    assert response.status_code == 200
    assert response.get_json() == {"count": 4}


def test_count_below_k_is_suppressed(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    for n in range(2):
        customer(vault, n, cyclist(n))

    assert count(client, marketer, CYCLING).get_json() == {"count": None, "suppressed": True}


def test_fields_not_marked_segmentable_are_not_counted_and_a_change_counts_next_query(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    ids = [customer(vault, n, cyclist(n), segmentable=()) for n in range(3)]
    assert count(client, marketer, CYCLING).get_json()["count"] is None

    for vault_id in ids:
        vault.vaults.set_segmentable(vault_id, ["interests"])
    assert count(client, marketer, CYCLING).get_json() == {"count": 3}

    vault.vaults.set_fields(ids[0], {"interests": ["chess"]})
    assert count(client, marketer, CYCLING).get_json()["count"] is None


def test_erased_customers_leave_the_count(
    client: FlaskClient, vault: Services, marketer: Marketer
) -> None:
    ids = [customer(vault, n, cyclist(n)) for n in range(3)]
    vault.vaults.erase(ids[0])

    assert count(client, marketer, CYCLING).get_json()["count"] is None


@pytest.mark.parametrize(
    ("segment", "named"),
    [
        ({"field": "email", "equals": "a@b.example"}, "email"),
        ({"all": [{"field": "given_name", "equals": "Ada"}]}, "given_name"),
        ({"field": "phone", "in": ["+44"]}, "phone"),
    ],
)
def test_a_field_that_is_not_segmentable_is_refused_by_name(
    client: FlaskClient, marketer: Marketer, segment: Any, named: str
) -> None:
    response = count(client, marketer, {"segment": segment})

    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_request"
    assert named in body["error_description"]
    assert "not segmentable" in body["error_description"]


def test_an_empty_list_of_age_bands_is_told_what_it_may_be(
    client: FlaskClient, marketer: Marketer
) -> None:
    segment = {"field": "birthdate", "age_band": []}
    response = count(client, marketer, {"segment": segment})

    assert response.status_code == 400
    description = response.get_json()["error_description"]
    assert description == "birthdate: must be compared with a string or a non-empty list of strings"


@pytest.mark.parametrize(
    "body",
    [{}, {"segment": None}, {"segment": "cycling"}, {"segment": {"any": []}}, [1, 2]],
)
def test_malformed_predicates_get_a_json_400(
    client: FlaskClient, marketer: Marketer, body: Any
) -> None:
    response = count(client, marketer, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_not_json_is_refused(client: FlaskClient, marketer: Marketer) -> None:
    response = client.post("/api/v1/segments/count", data="segment=1", headers=marketer.bearer)
    assert response.status_code == 400


def test_a_token_without_segments_query_is_refused(client: FlaskClient, vault: Services) -> None:
    offers_only = register_marketer(client, scope="offers:send")

    response = count(client, offers_only, CYCLING)

    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
    assert "segments:query" in response.headers["WWW-Authenticate"]


def test_no_token_is_refused(client: FlaskClient) -> None:
    response = client.post("/api/v1/segments/count", json=CYCLING)
    assert response.status_code == 401


def test_every_query_is_logged_with_attributes_never_values(
    client: FlaskClient, vault: Services, marketer: Marketer, events: ListSink
) -> None:
    count(
        client,
        marketer,
        {
            "segment": {
                "all": [
                    {"field": "interests", "equals": "cycling"},
                    {"field": "country", "equals": "GB"},
                ]
            }
        },
    )

    queries = [e for e in events.events if e.type == "segment.query"]
    assert len(queries) == 1
    assert queries[0].vendor == marketer.client_id
    assert queries[0].fields == ("interests", "country")
    assert "cycling" not in str(queries[0].to_json())


def test_the_daily_budget_is_enforced_and_resets_the_next_day(
    reach_config: dict[str, Any], clock: FakeClock, events: ListSink
) -> None:
    app = make_app({**reach_config, "SEGMENT_DAILY_QUERIES": 2}, clock, events)
    client = app.test_client()
    marketer = register_marketer(client)
    try:
        assert count(client, marketer, CYCLING).status_code == 200
        assert count(client, marketer, CYCLING).status_code == 200
        refused = count(client, marketer, CYCLING)
        assert refused.status_code == 429
        assert refused.get_json()["error"] == "too_many_requests"
        clock.advance(24 * 3600)
        token = client.post(
            "/oauth/token", data={"grant_type": "client_credentials"}, auth=marketer.auth
        ).get_json()["access_token"]
        assert count(client, Marketer(*marketer.auth, token), CYCLING).status_code == 200
    finally:
        app.extensions["vrm"].close()


# Noise against differencing.


@pytest.fixture
def noisy(reach_config: dict[str, Any], clock: FakeClock, events: ListSink) -> Flask:
    return make_app({**reach_config, "SEGMENT_K": 10, "SEGMENT_NOISE": 2.0}, clock, events)


def test_the_same_set_asked_in_other_words_gets_the_same_answer(noisy: Flask) -> None:
    vault: Services = noisy.extensions["vrm"]
    client = noisy.test_client()
    marketer = register_marketer(client)
    try:
        for n in range(30):
            customer(vault, n, cyclist(n))
        first = count(client, marketer, CYCLING).get_json()
        again = count(client, marketer, CYCLING).get_json()
        reworded = count(
            client, marketer, {"segment": {"any": [{"field": "interests", "in": ["cycling"]}]}}
        ).get_json()
        assert first == again == reworded
        assert first["count"] is not None
        assert abs(first["count"] - 30) <= 20
    finally:
        vault.close()


def test_noise_hides_whether_one_person_is_in_a_set(noisy: Flask) -> None:
    """Counts of sets differing by one person: their difference is not always one."""
    counts = noisy.extensions["vrm"].segments
    base = [f"{n:032x}" for n in range(1, 41)]
    differences = set()
    for extra in range(200):
        person = f"{10**6 + extra:032x}"
        with_person = counts.protect([*base[: 20 + extra % 20], person])
        without = counts.protect(base[: 20 + extra % 20])
        assert with_person.count is not None
        assert without.count is not None
        differences.add(with_person.count - without.count)
    assert len(differences) > 3
    noisy.extensions["vrm"].close()


def test_suppression_holds_for_true_counts_below_k_whatever_the_noise(noisy: Flask) -> None:
    counts = noisy.extensions["vrm"].segments
    for size in range(10):
        for salt in range(50):
            members = [f"{salt * 1000 + n:032x}" for n in range(size)]
            assert counts.protect(members).suppressed
    noisy.extensions["vrm"].close()


def test_offers_draw_on_the_same_daily_budget(
    reach_config: dict[str, Any], clock: FakeClock, events: ListSink
) -> None:
    app = make_app({**reach_config, "SEGMENT_DAILY_QUERIES": 1}, clock, events)
    client = app.test_client()
    marketer = register_marketer(client)
    offer = {
        "segment": CYCLING["segment"],
        "title": "t",
        "message": "m",
        "fields": {"email": "send it"},
    }
    try:
        assert client.post("/api/v1/offers", json=offer, headers=marketer.bearer).status_code == 201
        assert count(client, marketer, CYCLING).status_code == 429
        refused = client.post("/api/v1/offers", json=offer, headers=marketer.bearer)
        assert refused.status_code == 429
    finally:
        app.extensions["vrm"].close()


def test_every_vendor_gets_the_same_noisy_answer_for_the_same_set(noisy: Flask) -> None:
    """More vendors do not mean more independent draws to average."""
    vault: Services = noisy.extensions["vrm"]
    client = noisy.test_client()
    try:
        for n in range(30):
            customer(vault, n, cyclist(n))
        answers = [count(client, register_marketer(client), CYCLING).get_json() for _ in range(5)]
        assert all(answer == answers[0] for answer in answers)
        assert answers[0]["count"] is not None
    finally:
        vault.close()
