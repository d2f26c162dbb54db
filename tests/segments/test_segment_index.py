"""The segment index counts exactly what a brute-force pass over the plaintext counts,
holds no plaintext, and follows every change from the next query."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from vault.events import ListSink
from vault.segment_counts import CountPolicy, SegmentCounts
from vault.segment_query import (
    SEGMENTABLE_FIELDS,
    SegmentQueryError,
    attributes_of,
    parse_predicate,
)
from vault.segments import SegmentIndex, SegmentUpdater
from vault.service import SEGMENTABLE
from vault.storage import Store, open_store

KEY = b"k" * 32
TODAY = date(2026, 12, 1)
INTERESTS = ["cycling", "photography", "cooking", "jazz", "hiking", "chess"]
COUNTRIES = ["GB", "DE", "FR", "NL"]
REGIONS = ["North", "South", "Bavaria", "Île-de-France"]
GENDERS = ["Woman", "Man", "Non-binary"]
LOCALES = ["en-GB", "de-DE", "fr-FR"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store("tinydb", root=tmp_path / "store")
    yield opened
    opened.close()


def generated(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    profile: dict[str, Any] = {
        "interests": rng.sample(INTERESTS, rng.randint(0, 3)),
        "postal_address": {
            "street": "1 High Street",
            "locality": "Town",
            "country": rng.choice(COUNTRIES),
            "region": rng.choice(REGIONS),
        },
        "gender": rng.choice(GENDERS),
        "locale": rng.choice(LOCALES),
        "birthdate": f"{rng.randint(1940, 2012)}-{rng.randint(1, 12):02d}-15",
    }
    marked = [f for f in SEGMENTABLE_FIELDS if rng.random() < 0.7]
    return profile, marked


def brute_force(node: Mapping[str, Any], profile: Mapping[str, Any], marked: list[str]) -> bool:
    """What a predicate means, written out over the plaintext."""
    if "all" in node:
        return all(brute_force(part, profile, marked) for part in node["all"])
    if "any" in node:
        return any(brute_force(part, profile, marked) for part in node["any"])
    field = node["field"]
    source = {"country": "postal_address", "region": "postal_address"}.get(field, field)
    if source not in marked:
        return False
    if field == "birthdate":
        age = TODAY.year - int(profile["birthdate"][:4])
        bands = [node["age_band"]] if isinstance(node["age_band"], str) else node["age_band"]
        ranges = {"18-24": (18, 24), "25-34": (25, 34), "35-44": (35, 44), "65+": (65, 200)}
        return any(ranges[b][0] <= age <= ranges[b][1] for b in bands)
    wanted = [node["equals"]] if "equals" in node else node["in"]
    wanted = {w.casefold() for w in wanted}
    if field == "interests":
        return bool(wanted & {i.casefold() for i in profile["interests"]})
    value = profile["postal_address"][field] if source == "postal_address" else profile[field]
    return value.casefold() in wanted


QUERIES: list[dict[str, Any]] = [
    {"field": "interests", "equals": "cycling"},
    {"field": "interests", "in": ["JAZZ", "chess"]},
    {"field": "country", "equals": "gb"},
    {"field": "region", "equals": "île-de-france"},
    {"field": "birthdate", "age_band": "25-34"},
    {"field": "birthdate", "age_band": ["18-24", "65+"]},
    {"all": [{"field": "country", "in": ["DE", "NL"]}, {"field": "gender", "equals": "woman"}]},
    {
        "any": [
            {"field": "locale", "equals": "fr-fr"},
            {
                "all": [
                    {"field": "interests", "equals": "hiking"},
                    {"field": "birthdate", "age_band": "35-44"},
                ]
            },
        ]
    },
]


def test_counts_over_a_thousand_vaults_equal_a_brute_force_count(store: Store) -> None:
    rng = random.Random(7)
    index = SegmentIndex(store, key=KEY)
    updater = SegmentUpdater(index, key=KEY)
    people: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for _ in range(1000):
        vault_id = f"{rng.getrandbits(128):032x}"
        profile, marked = generated(rng)
        people[vault_id] = (profile, marked)
        updater.vault_changed(vault_id, {SEGMENTABLE: marked}, profile, frozenset({SEGMENTABLE}))

    counts = SegmentCounts(
        index=index,
        store=store,
        key=KEY,
        policy=CountPolicy(k=1, noise=0, daily_queries=100),
        events=ListSink(),
        clock=lambda: datetime(2026, 12, 1, tzinfo=UTC),
    )
    for query in QUERIES:
        expected = {v for v, (p, m) in people.items() if brute_force(query, p, m)}
        predicate = parse_predicate(query, today=TODAY)
        assert index.members(predicate) == expected, query
        assert counts.count("vnd_" + "a" * 24, predicate).count == len(expected)
        assert 0 < len(expected) < 1000


def test_a_change_counts_from_the_next_query_even_in_another_process_view(store: Store) -> None:
    writer = SegmentIndex(store, key=KEY)
    reader = SegmentIndex(store, key=KEY)  # Another worker's in-memory copy.
    updater = SegmentUpdater(writer, key=KEY)
    query = parse_predicate({"field": "interests", "equals": "chess"}, today=TODAY)
    vault = "ab" * 16
    profile = {"interests": ["chess"]}
    assert reader.members(query) == set()

    updater.vault_changed(vault, {SEGMENTABLE: ["interests"]}, profile, frozenset({SEGMENTABLE}))
    assert reader.members(query) == {vault}

    updater.vault_changed(vault, {SEGMENTABLE: []}, profile, frozenset({SEGMENTABLE}))
    assert reader.members(query) == set()

    updater.vault_changed(vault, {SEGMENTABLE: ["interests"]}, profile, frozenset({SEGMENTABLE}))
    updater.vault_erasing(vault)
    assert reader.members(query) == set()


def test_unmarked_fields_leave_no_token(store: Store) -> None:
    index = SegmentIndex(store, key=KEY)
    updater = SegmentUpdater(index, key=KEY)
    profile = {"interests": ["chess"], "gender": "Woman"}
    updater.vault_changed("cd" * 16, {SEGMENTABLE: ["gender"]}, profile, frozenset({SEGMENTABLE}))

    chess = parse_predicate({"field": "interests", "equals": "chess"}, today=TODAY)
    woman = parse_predicate({"field": "gender", "equals": "woman"}, today=TODAY)
    assert index.members(chess) == set()
    assert index.members(woman) == {"cd" * 16}


def test_index_files_hold_no_plaintext_value(store: Store, tmp_path: Path) -> None:
    index = SegmentIndex(store, key=KEY)
    updater = SegmentUpdater(index, key=KEY)
    profile = {
        "interests": ["zymurgy"],
        "postal_address": {"country": "GB", "region": "Rutlandshire"},
        "gender": "Androgyne",
        "locale": "cy-GB",
        "birthdate": "1987-03-04",
    }
    updater.vault_changed(
        "ef" * 16, {SEGMENTABLE: list(SEGMENTABLE_FIELDS)}, profile, frozenset({SEGMENTABLE})
    )

    blob = b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())
    for value in (
        "zymurgy",
        "Rutlandshire",
        "rutlandshire",
        "Androgyne",
        "androgyne",
        "cy-GB",
        "1987",
    ):
        assert value.encode() not in blob


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"field": "email", "equals": "a@b.c"}, "email"),
        ({"field": "given_name", "in": ["Ada"]}, "given_name"),
        ({"all": [{"field": "phone", "equals": "+44"}]}, "phone"),
        ({"field": "birthdate", "equals": "1990-01-01"}, "birthdate"),
        ({"field": "birthdate", "age_band": "30-40"}, "birthdate"),
        ({"field": "country", "equals": ["GB"]}, "country"),
        ({"field": "country"}, "country"),
        ({"all": []}, "segment"),
        ([], "segment"),
    ],
)
def test_bad_predicates_are_refused_naming_the_field(query: Any, field: str) -> None:
    with pytest.raises(SegmentQueryError) as refused:
        parse_predicate(query, today=TODAY)
    assert refused.value.field == field


def test_predicates_are_bounded() -> None:
    deep: dict[str, Any] = {"field": "gender", "equals": "x"}
    for _ in range(6):
        deep = {"all": [deep]}
    with pytest.raises(SegmentQueryError, match="levels"):
        parse_predicate(deep, today=TODAY)
    wide = {"any": [{"field": "gender", "equals": str(n)} for n in range(33)]}
    with pytest.raises(SegmentQueryError, match="conditions"):
        parse_predicate(wide, today=TODAY)


def test_attributes_are_named_once_in_order() -> None:
    predicate = parse_predicate(QUERIES[7], today=TODAY)
    assert attributes_of(predicate) == ("locale", "interests", "birthdate")
