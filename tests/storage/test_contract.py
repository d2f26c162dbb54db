"""The storage contract: every backend passes the same tests (see the ``store`` fixture)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vault.errors import AlreadyExists, NotFound
from vault.storage import Document, Store, open_store

VAULT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
OTHER = "b32vaultidinlowercase234567"
TABLE = "accounts"


def vault_id(n: int) -> str:
    """A hex vault id; ids from different ``n`` fall in different shard directories."""
    return hashlib.sha256(str(n).encode()).hexdigest()[:32]


def fail(_: object) -> Any:
    raise RuntimeError("change refused")


# Vault documents.


def test_store_satisfies_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_created_vault_reads_back(store: Store) -> None:
    store.create_vault(VAULT, {"profile": {"name": "x"}, "version": 1})

    assert store.read_vault(VAULT) == {"profile": {"name": "x"}, "version": 1}


def test_create_with_taken_id_raises_and_keeps_original(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})

    with pytest.raises(AlreadyExists):
        store.create_vault(VAULT, {"n": 2})
    assert store.read_vault(VAULT) == {"n": 1}


def test_read_of_missing_vault_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.read_vault(VAULT)


def test_update_replaces_document_and_returns_it(store: Store) -> None:
    store.create_vault(VAULT, {"keep": 1, "drop": 2})

    returned = store.update_vault(VAULT, lambda doc: {"keep": doc["keep"] + 1})

    assert returned == {"keep": 2}
    assert store.read_vault(VAULT) == {"keep": 2}


def test_update_of_missing_vault_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.update_vault(VAULT, lambda doc: doc)
    assert store.count_vaults() == 0


def test_failed_change_writes_nothing(store: Store) -> None:
    store.create_vault(VAULT, {"items": [1]})

    def mutate_then_fail(doc: Document) -> Document:
        doc["items"].append(2)
        raise RuntimeError("change refused")

    with pytest.raises(RuntimeError, match="change refused"):
        store.update_vault(VAULT, mutate_then_fail)
    assert store.read_vault(VAULT) == {"items": [1]}


def test_deleted_vault_is_gone_and_its_id_free_again(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.create_vault(OTHER, {"n": 2})

    store.delete_vault(VAULT)

    with pytest.raises(NotFound):
        store.read_vault(VAULT)
    assert list(store.vault_ids()) == [OTHER]
    store.create_vault(VAULT, {"n": 3})
    assert store.read_vault(VAULT) == {"n": 3}


def test_delete_of_missing_vault_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.delete_vault(VAULT)


def test_vault_ids_and_count_see_every_vault(store: Store) -> None:
    ids = {vault_id(n) for n in range(40)}
    for each in ids:
        store.create_vault(each, {"id": each})

    assert set(store.vault_ids()) == ids
    assert store.count_vaults() == 40


def test_empty_store_has_no_vaults(store: Store) -> None:
    assert list(store.vault_ids()) == []
    assert store.count_vaults() == 0


def test_concurrent_updates_lose_nothing(store: Store) -> None:
    store.create_vault(VAULT, {"count": 0})

    def work() -> None:
        for _ in range(25):
            store.update_vault(VAULT, lambda doc: {"count": doc["count"] + 1})

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.read_vault(VAULT) == {"count": 200}


# Returned values are copies.


def test_returned_vault_documents_are_copies(store: Store) -> None:
    given_doc: Document = {"list": [1], "nested": {"a": 1}}
    store.create_vault(VAULT, given_doc)
    given_doc["list"].append("changed after create")

    store.read_vault(VAULT)["nested"]["a"] = "changed after read"
    store.update_vault(VAULT, lambda doc: doc)["list"].append("changed after update")

    assert store.read_vault(VAULT) == {"list": [1], "nested": {"a": 1}}


def test_returned_records_are_copies(store: Store) -> None:
    given_record: Document = {"list": [1]}
    store.insert(TABLE, "k", given_record)
    given_record["list"].append("changed after insert")

    store.get(TABLE, "k")["list"].append("changed after get")  # type: ignore[index]
    store.update(TABLE, "k", lambda rec: rec)["list"].append("changed")  # type: ignore[index]
    for _, record in store.scan(TABLE):
        record["list"].append("changed after scan")

    assert store.get(TABLE, "k") == {"list": [1]}


def test_a_repeated_read_returns_a_new_copy_each_time(store: Store) -> None:
    store.create_vault(VAULT, {"list": [1]})
    store.insert(TABLE, "k", {"list": [1]})

    for _ in range(3):
        store.read_vault(VAULT)["list"].append("changed after read")
        store.get(TABLE, "k")["list"].append("changed after get")  # type: ignore[index]

    assert store.read_vault(VAULT) == {"list": [1]}
    assert store.get(TABLE, "k") == {"list": [1]}


def test_a_many_change_that_mutates_its_copies_changes_only_what_it_returns(store: Store) -> None:
    for key in ("a", "b", "c"):
        store.insert(TABLE, key, {"n": 0})

    def change(records: Mapping[str, Document]) -> dict[str, Document | None]:
        for record in records.values():
            record["n"] = 99
        return {"a": {"n": 1}}

    store.update_many(TABLE, ["a", "b"], change)

    assert {key: store.get(TABLE, key) for key in "abc"} == {
        "a": {"n": 1},
        "b": {"n": 0},
        "c": {"n": 0},
    }


# Shared tables.


def test_missing_record_reads_as_none(store: Store) -> None:
    assert store.get(TABLE, "nobody") is None


def test_inserted_record_reads_back(store: Store) -> None:
    store.insert(TABLE, "k1", {"vault": VAULT})

    assert store.get(TABLE, "k1") == {"vault": VAULT}


def test_insert_at_taken_key_raises_and_keeps_original(store: Store) -> None:
    store.insert(TABLE, "k1", {"n": 1})

    with pytest.raises(AlreadyExists):
        store.insert(TABLE, "k1", {"n": 2})
    assert store.get(TABLE, "k1") == {"n": 1}


def test_update_from_none_creates_record(store: Store) -> None:
    seen: list[Document | None] = []

    def create(current: Document | None) -> Document:
        seen.append(current)
        return {"n": 1}

    assert store.update(TABLE, "k1", create) == {"n": 1}
    assert seen == [None]
    assert store.get(TABLE, "k1") == {"n": 1}


def test_update_replaces_record(store: Store) -> None:
    store.insert(TABLE, "k1", {"n": 1, "old": True})

    returned = store.update(TABLE, "k1", lambda rec: {"n": rec["n"] + 1} if rec else None)

    assert returned == {"n": 2}
    assert store.get(TABLE, "k1") == {"n": 2}


def test_update_returning_none_deletes_record(store: Store) -> None:
    store.insert(TABLE, "k1", {"n": 1})

    assert store.update(TABLE, "k1", lambda rec: None) is None
    assert store.get(TABLE, "k1") is None
    assert list(store.scan(TABLE)) == []


def test_update_returning_none_for_missing_record_leaves_it_absent(store: Store) -> None:
    assert store.update(TABLE, "k1", lambda rec: None) is None
    assert store.get(TABLE, "k1") is None


def test_failed_record_change_writes_nothing(store: Store) -> None:
    store.insert(TABLE, "k1", {"n": 1})

    with pytest.raises(RuntimeError):
        store.update(TABLE, "k1", fail)
    with pytest.raises(RuntimeError):
        store.update(TABLE, "k2", fail)
    assert dict(store.scan(TABLE)) == {"k1": {"n": 1}}


def test_update_many_changes_records_in_many_shards_together(store: Store) -> None:
    keys = [f"key-{n}" for n in range(30)]
    for key in keys[:20]:
        store.insert(TABLE, key, {"n": 1})

    def bump(current: Mapping[str, Document]) -> dict[str, Document | None]:
        assert set(current) == set(keys[:20])
        return {key: {"n": current.get(key, {"n": 0})["n"] + 1} for key in keys}

    store.update_many(TABLE, keys, bump)

    assert dict(store.scan(TABLE)) == {
        **{key: {"n": 2} for key in keys[:20]},
        **{key: {"n": 1} for key in keys[20:]},
    }


def test_update_many_deletes_with_none_and_leaves_unnamed_keys(store: Store) -> None:
    for key in ("a", "b", "c", "d"):
        store.insert(TABLE, key, {"key": key})

    store.update_many(TABLE, ["a", "b", "c"], lambda current: {"a": None, "b": {"key": "B"}})

    assert dict(store.scan(TABLE)) == {"b": {"key": "B"}, "c": {"key": "c"}, "d": {"key": "d"}}


def test_update_many_rejects_keys_it_was_not_given(store: Store) -> None:
    store.insert(TABLE, "a", {"n": 1})

    with pytest.raises(ValueError, match="not given"):
        store.update_many(TABLE, ["a"], lambda current: {"a": None, "other": {"n": 2}})
    assert dict(store.scan(TABLE)) == {"a": {"n": 1}}


def test_failed_many_change_writes_nothing(store: Store) -> None:
    keys = [f"key-{n}" for n in range(10)]
    for key in keys:
        store.insert(TABLE, key, {"n": 1})

    def mutate_then_fail(current: Mapping[str, Document]) -> Mapping[str, Document | None]:
        for record in current.values():
            record["n"] = 99
        raise RuntimeError("change refused")

    with pytest.raises(RuntimeError):
        store.update_many(TABLE, keys, mutate_then_fail)
    assert dict(store.scan(TABLE)) == {key: {"n": 1} for key in keys}


def test_delete_reports_whether_there_was_a_record(store: Store) -> None:
    store.insert(TABLE, "k1", {"n": 1})

    assert store.delete(TABLE, "k1") is True
    assert store.delete(TABLE, "k1") is False
    assert store.delete(TABLE, "never") is False
    assert store.get(TABLE, "k1") is None


def test_scan_sees_every_record(store: Store) -> None:
    records = {f"digest:{n:04d}": {"n": n} for n in range(150)}
    for key, record in records.items():
        store.insert(TABLE, key, record)

    assert dict(store.scan(TABLE)) == records


def test_scan_of_unused_table_is_empty(store: Store) -> None:
    assert list(store.scan("never_written")) == []


def test_tables_keep_separate_records(store: Store) -> None:
    store.insert("one", "k", {"table": 1})
    store.insert("two", "k", {"table": 2})

    assert store.get("one", "k") == {"table": 1}
    assert dict(store.scan("two")) == {"k": {"table": 2}}


# Values and names.

UNICODE_DOC: Document = {
    "name": "Zoë Ångström 名前 🚀",
    "nested": {"list": [1, -2.5, None, True, False, {"deep": ["x", [], {}]}]},
    'quote"and\\slash': "line\nbreak\ttab",
    "big": 2**70,
}


def test_unicode_and_nested_values_round_trip(store: Store) -> None:
    store.create_vault(VAULT, UNICODE_DOC)
    store.insert(TABLE, "k", UNICODE_DOC)

    assert store.read_vault(VAULT) == UNICODE_DOC
    assert store.get(TABLE, "k") == UNICODE_DOC
    assert dict(store.scan(TABLE)) == {"k": UNICODE_DOC}


# NUL is left out of strings: PostgreSQL's jsonb cannot hold it.
json_text = st.text(st.characters(exclude_characters="\x00"), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | json_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(json_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.dictionaries(json_text, json_values, max_size=5))
def test_any_json_document_round_trips(store: Store, doc: Document) -> None:
    store.update(TABLE, "k", lambda current: doc)

    assert store.get(TABLE, "k") == doc


def test_values_json_cannot_hold_are_rejected(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})

    with pytest.raises(TypeError):
        store.create_vault(OTHER, {"when": object()})
    with pytest.raises(TypeError):
        store.insert(TABLE, "k", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JSON"):
        store.update_vault(VAULT, lambda doc: {"n": float("nan")})
    assert store.read_vault(VAULT) == {"n": 1}
    assert list(store.vault_ids()) == [VAULT]
    assert store.get(TABLE, "k") is None


@pytest.mark.parametrize("bad", [None, 7, ["k"], {"k": 1}])
def test_names_that_are_not_text_are_rejected(store: Store, bad: Any) -> None:
    with pytest.raises(ValueError, match="invalid"):
        store.get(TABLE, bad)
    with pytest.raises(ValueError, match="invalid"):
        store.get(bad, "k")
    with pytest.raises(ValueError, match="invalid"):
        store.read_vault(bad)


BAD_TABLES = ["", "a/b", "..", ".hidden", "has space", "é", "x" * 201, "tab\n"]
BAD_KEYS = ["", "a/b", "has space", "ü", "x" * 201, "../up"]
BAD_VAULT_IDS = ["", "a", "ABCDEF12", "../etc", "ab/cd", "ab.json", "x" * 65]


def table_calls(table: str, key: str) -> list[Callable[[Store], object]]:
    return [
        lambda s: s.get(table, key),
        lambda s: s.insert(table, key, {}),
        lambda s: s.update(table, key, lambda rec: {}),
        lambda s: s.update_many(table, [key], lambda recs: {}),
        lambda s: s.delete(table, key),
    ]


@pytest.mark.parametrize("table", BAD_TABLES)
def test_invalid_table_names_are_rejected(store: Store, table: str) -> None:
    for call in [*table_calls(table, "key"), lambda s: list(s.scan(table))]:
        with pytest.raises(ValueError, match="table name"):
            call(store)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_invalid_keys_are_rejected(store: Store, key: str) -> None:
    for call in table_calls(TABLE, key):
        with pytest.raises(ValueError, match="key"):
            call(store)
    assert list(store.scan(TABLE)) == []


@pytest.mark.parametrize("bad_id", BAD_VAULT_IDS)
def test_invalid_vault_ids_are_rejected(store: Store, bad_id: str) -> None:
    calls: list[Callable[[Store], object]] = [
        lambda s: s.create_vault(bad_id, {}),
        lambda s: s.read_vault(bad_id),
        lambda s: s.update_vault(bad_id, lambda doc: doc),
        lambda s: s.delete_vault(bad_id),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="vault id"):
            call(store)
    assert store.count_vaults() == 0


def test_longest_valid_names_are_accepted(store: Store) -> None:
    table, key, long_id = "t" * 200, "k" * 200, "v" * 64

    store.insert(table, key, {"n": 1})
    store.create_vault(long_id, {"n": 1})

    assert dict(store.scan(table)) == {key: {"n": 1}}
    assert list(store.vault_ids()) == [long_id]


# Opening.


def test_open_store_rejects_unknown_kind_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known kinds: memory, tinydb"):
        open_store("mongodb")


def test_open_store_requires_root_for_tinydb() -> None:
    with pytest.raises(ValueError, match="root"):
        open_store("tinydb")


def test_open_store_passes_options_to_the_backend(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        open_store("memory", root=tmp_path, colour="blue")
    with pytest.raises(ValueError, match="shards"):
        open_store("tinydb", root=tmp_path, shards=1000)


# Partitions: how readers that keep a table in memory notice what changed.


def _partitioned(store: Store, table: str) -> dict[str, Document]:
    return {
        key: record
        for partition in store.partitions(table)
        for key, record in store.scan_partition(table, partition)
    }


def test_partitions_together_hold_the_whole_table(store: Store) -> None:
    for n in range(40):
        store.insert(TABLE, f"k{n}", {"n": n})

    assert _partitioned(store, TABLE) == dict(store.scan(TABLE))


def test_a_write_changes_the_stamp_of_its_partition_only(store: Store) -> None:
    for n in range(40):
        store.insert(TABLE, f"k{n}", {"n": n})
    before = store.partitions(TABLE)

    store.update(TABLE, "k7", lambda record: {"n": -7})

    after = store.partitions(TABLE)
    changed = [p for p in after if after[p] != before.get(p)]
    assert len(changed) == 1
    assert ("k7", {"n": -7}) in list(store.scan_partition(TABLE, changed[0]))


def test_deleting_changes_a_stamp_and_the_record_leaves_its_partition(store: Store) -> None:
    store.insert(TABLE, "gone", {"n": 1})
    before = store.partitions(TABLE)

    store.delete(TABLE, "gone")

    assert store.partitions(TABLE) != before
    assert "gone" not in _partitioned(store, TABLE)


def test_unknown_partition_yields_nothing(store: Store) -> None:
    store.insert(TABLE, "k", {"n": 1})

    assert list(store.scan_partition(TABLE, "../../vaults")) == []
    assert list(store.scan_partition(TABLE, "zz")) == []


# Registers: small values beside a vault, moved on by compare-and-set.

CHAIN = "refresh.g1"


def test_a_register_never_set_reads_none(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})

    assert store.read_register(VAULT, CHAIN) is None


def test_a_swap_from_the_held_value_sets_the_register(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})

    assert store.swap_register(VAULT, CHAIN, None, {"family": "f", "counter": 2}) is True
    assert store.swap_register(VAULT, CHAIN, {"family": "f", "counter": 2}, {"counter": 3})

    assert store.read_register(VAULT, CHAIN) == {"counter": 3}
    assert store.read_vault(VAULT) == {"n": 1}


def test_a_swap_from_another_value_changes_nothing(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.swap_register(VAULT, CHAIN, None, {"counter": 2})

    assert store.swap_register(VAULT, CHAIN, None, {"counter": 9}) is False
    assert store.swap_register(VAULT, CHAIN, {"counter": 1}, {"counter": 9}) is False

    assert store.read_register(VAULT, CHAIN) == {"counter": 2}


def test_a_deleted_register_reads_as_never_set_and_others_stay(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.swap_register(VAULT, CHAIN, None, {"counter": 2})
    store.swap_register(VAULT, "refresh.g2", None, {"counter": 5})

    store.delete_register(VAULT, CHAIN)
    store.delete_register(VAULT, CHAIN)  # Gone already: nothing to do.
    store.delete_register(VAULT, "refresh.never")

    assert store.read_register(VAULT, CHAIN) is None
    assert store.read_register(VAULT, "refresh.g2") == {"counter": 5}
    assert store.swap_register(VAULT, CHAIN, {"counter": 2}, {"counter": 3}) is False
    assert store.read_vault(VAULT) == {"n": 1}


def test_registers_are_kept_per_vault_and_name(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.create_vault(OTHER, {"n": 2})

    store.swap_register(VAULT, CHAIN, None, {"counter": 1})
    store.swap_register(VAULT, "refresh.g2", None, {"counter": 5})

    assert store.read_register(VAULT, CHAIN) == {"counter": 1}
    assert store.read_register(VAULT, "refresh.g2") == {"counter": 5}
    assert store.read_register(OTHER, CHAIN) is None


def test_threads_swapping_one_register_from_one_value_succeed_once_each_step(
    store: Store,
) -> None:
    store.create_vault(VAULT, {"n": 1})
    wins: list[int] = []

    def advance(worker: int) -> None:
        for _ in range(25):
            held = store.read_register(VAULT, CHAIN)
            count = 0 if held is None else held["counter"]
            if store.swap_register(VAULT, CHAIN, held, {"counter": count + 1}):
                wins.append(worker)

    threads = [threading.Thread(target=advance, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.read_register(VAULT, CHAIN) == {"counter": len(wins)}


def test_a_register_of_a_missing_vault_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        store.swap_register(VAULT, CHAIN, None, {"counter": 1})

    assert store.read_register(VAULT, CHAIN) is None


def test_erasing_a_vault_erases_its_registers(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.swap_register(VAULT, CHAIN, None, {"counter": 1})

    store.delete_vault(VAULT)
    store.create_vault(VAULT, {"n": 2})

    assert store.read_register(VAULT, CHAIN) is None


@pytest.mark.parametrize("name", ["", "../x", "a/b", "x" * 201, "a b"])
def test_bad_register_names_are_refused(store: Store, name: str) -> None:
    store.create_vault(VAULT, {"n": 1})

    with pytest.raises(ValueError, match="invalid key"):
        store.swap_register(VAULT, name, None, {"counter": 1})
    with pytest.raises(ValueError, match="invalid key"):
        store.read_register(VAULT, name)


def test_a_register_value_too_long_is_refused_and_changes_nothing(store: Store) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.swap_register(VAULT, CHAIN, None, {"counter": 1})

    with pytest.raises(ValueError, match="at most 400 bytes"):
        store.swap_register(VAULT, CHAIN, {"counter": 1}, {"pad": "x" * 500})
    with pytest.raises(TypeError):
        store.swap_register(VAULT, CHAIN, {"counter": 1}, ["not", "a", "document"])  # type: ignore[arg-type]

    assert store.read_register(VAULT, CHAIN) == {"counter": 1}
