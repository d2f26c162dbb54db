"""The TinyDB backend on disk: layout, modes, damaged files, many processes, crashes.

Child processes use the "spawn" start method and open their own TinyDBStore on the same
root, as separate server workers would. Crashes are SIGKILLs a child sends itself at a
chosen step of a write, so the tests never wait on the clock.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
from tinydb import TinyDB

from tests.kills import SPAWN, ReportingWriter
from vault.errors import NotFound, OutdatedStore, StorageError
from vault.storage import Document, open_store, registers
from vault.storage.tinydb import FORMAT, TinyDBStore, upgrade_store

VAULT = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
TABLE = "accounts"
WORKERS = 4
WRITES = 200


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> TinyDBStore:
    return TinyDBStore(root)


def vault_file(root: Path, vault_id: str = VAULT) -> Path:
    return root / "vaults" / vault_id[:2] / f"{vault_id}.json"


def shard_file(root: Path, key: str, table: str = TABLE, shards: int = 256) -> Path:
    shard = hashlib.sha256(key.encode()).digest()[0] % shards
    return root / "tables" / table / f"{shard:02x}.json"


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def assert_every_file_is_valid(root: Path, *, temp_allowed: bool = False) -> None:
    """Every data file parses as JSON, and (unless allowed) no temp file is left behind."""
    for path in files_under(root):
        assert temp_allowed or not path.name.endswith(".tmp"), path
        if path.suffix == ".json":
            json.loads(path.read_text())


# Layout and modes.


def test_files_follow_the_documented_layout(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"profile": {}})
    store.insert(TABLE, "digest-1", {"vault": VAULT})

    expected = {root / "store.json", vault_file(root), shard_file(root, "digest-1")}
    assert files_under(root) == expected | {p.with_name(p.name + ".lock") for p in expected}


def test_data_files_open_with_stock_tinydb(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"profile": {"n": 1}})
    store.insert(TABLE, "digest-1", {"vault": VAULT})

    with TinyDB(vault_file(root), access_mode="r") as db:
        assert db.all() == [{"k": VAULT, "v": {"profile": {"n": 1}}}]
    with TinyDB(shard_file(root, "digest-1"), access_mode="r") as db:
        assert db.all() == [{"k": "digest-1", "v": {"vault": VAULT}}]


def test_files_and_directories_are_private(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"profile": {}})
    store.insert(TABLE, "digest-1", {"vault": VAULT})

    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_shard_count_bounds_the_files_of_a_table(root: Path) -> None:
    store = TinyDBStore(root, shards=4)
    for n in range(100):
        store.insert(TABLE, f"key-{n}", {"n": n})

    names = {path.name for path in (root / "tables" / TABLE).glob("*.json")}
    assert names == {"00.json", "01.json", "02.json", "03.json"}
    assert len(dict(store.scan(TABLE))) == 100


def test_reopening_with_another_shard_count_is_refused(root: Path) -> None:
    TinyDBStore(root, shards=16)

    with pytest.raises(StorageError, match="shards"):
        TinyDBStore(root, shards=256)
    TinyDBStore(root, shards=16)


@pytest.mark.parametrize("shards", [0, 257, True])
def test_shard_count_out_of_range_is_rejected(root: Path, shards: int) -> None:
    with pytest.raises(ValueError, match="shards"):
        TinyDBStore(root, shards=shards)


def test_deleted_vault_leaves_no_file(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"profile": {}})

    store.delete_vault(VAULT)

    assert files_under(root / "vaults") == set()


def test_emptied_shard_leaves_no_data_file(root: Path, store: TinyDBStore) -> None:
    store.insert(TABLE, "k", {"n": 1})

    store.delete(TABLE, "k")

    assert not shard_file(root, "k").exists()
    assert list(store.scan(TABLE)) == []


def test_open_store_opens_tinydb_with_options(root: Path) -> None:
    store = open_store("tinydb", root=root, shards=8)

    assert isinstance(store, TinyDBStore)
    assert json.loads((root / "store.json").read_text()) == {"format": FORMAT, "shards": 8}


# Damaged and leftover files.


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b"[]", b'{"_default": 3}'])
def test_damaged_vault_file_raises_storage_error_naming_it(
    root: Path, store: TinyDBStore, content: bytes
) -> None:
    store.create_vault(VAULT, {"n": 1})
    vault_file(root).write_bytes(content)

    for call in (
        lambda: store.read_vault(VAULT),
        lambda: store.update_vault(VAULT, lambda doc: doc),
        lambda: store.create_vault(VAULT, {}),
    ):
        with pytest.raises(StorageError, match=re.escape(str(vault_file(root)))):
            call()
    assert vault_file(root).read_bytes() == content


def test_damaged_shard_file_raises_storage_error_naming_it(root: Path, store: TinyDBStore) -> None:
    store.insert(TABLE, "k", {"n": 1})
    shard_file(root, "k").write_text('{"_default": {"1": {"k": "k"')

    for call in (
        lambda: store.get(TABLE, "k"),
        lambda: list(store.scan(TABLE)),
        lambda: store.update(TABLE, "k", lambda rec: rec),
    ):
        with pytest.raises(StorageError, match=re.escape(str(shard_file(root, "k")))):
            call()


def test_leftover_temp_file_is_ignored_then_cleaned_by_next_write(
    root: Path, store: TinyDBStore
) -> None:
    store.create_vault(VAULT, {"n": 1})
    temp = vault_file(root).with_name(f"{VAULT}.json.tmp")
    temp.write_text('{"half a wr')

    assert store.read_vault(VAULT) == {"n": 1}
    assert list(store.vault_ids()) == [VAULT]
    store.update_vault(VAULT, lambda doc: {"n": 2})

    assert not temp.exists()
    assert store.read_vault(VAULT) == {"n": 2}


# Many processes at once.


def appending(item: str) -> Callable[[Document], Document]:
    return lambda doc: {**doc, "log": [*doc["log"], item]}


def append_to_vault(root: Path, vault_id: str, worker: int) -> None:
    store = TinyDBStore(root)
    for n in range(WRITES):
        store.update_vault(vault_id, appending(f"{worker}:{n}"))


def counter_keys(worker: int, n: int) -> list[str]:
    """The counters write ``n`` of ``worker`` bumps: one or two, in different shards."""
    first = f"counter-{(worker + n) % 8}"
    return [first] if n % 3 == 0 else [first, f"counter-{(worker + 3 * n + 1) % 8 or 1}"]


def bumping(keys: list[str]) -> Callable[[Mapping[str, Document]], dict[str, Document | None]]:
    return lambda current: {key: {"n": current.get(key, {"n": 0})["n"] + 1} for key in keys}


def bump_counters(root: Path, worker: int) -> None:
    store = TinyDBStore(root)
    for n in range(WRITES):
        keys = sorted(set(counter_keys(worker, n)))
        if len(keys) == 1:
            store.update(TABLE, keys[0], lambda rec: {"n": (rec or {"n": 0})["n"] + 1})
        else:
            store.update_many(TABLE, keys, bumping(keys))


def run_workers(target: Callable[..., None], args: list[tuple[Any, ...]]) -> None:
    processes = [SPAWN.Process(target=target, args=each) for each in args]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0] * len(processes)


def write_same_sizes(root: Path) -> None:
    store = TinyDBStore(root)
    store.update_vault(VAULT, lambda doc: {"log": ["b"]})
    store.update(TABLE, "k", lambda rec: {"n": 1})


def test_a_read_after_another_process_wrote_sees_its_write(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"log": ["a"]})
    store.insert(TABLE, "k", {"n": 0})
    assert store.read_vault(VAULT) == {"log": ["a"]}
    assert store.get(TABLE, "k") == {"n": 0}

    run_workers(write_same_sizes, [(root,)])

    assert store.read_vault(VAULT) == {"log": ["b"]}
    assert store.get(TABLE, "k") == {"n": 1}


def test_an_update_reads_and_writes_the_file_once(
    root: Path, store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_vault(VAULT, {"n": 0})
    store.insert(TABLE, "k", {"n": 0})
    reads: list[Path] = []
    real_read = Path.read_bytes

    def counted(path: Path) -> bytes:
        reads.append(path)
        return real_read(path)

    monkeypatch.setattr(Path, "read_bytes", counted)
    store.update_vault(VAULT, lambda doc: {"n": doc["n"] + 1})
    store.update(TABLE, "k", lambda rec: {"n": (rec or {"n": 0})["n"] + 1})

    assert reads == [vault_file(root), shard_file(root, "k")]
    assert json.loads(vault_file(root).read_text())["_default"]["1"]["v"] == {"n": 1}


@pytest.mark.slow
def test_processes_writing_one_vault_lose_no_update(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"log": []})

    run_workers(append_to_vault, [(root, VAULT, worker) for worker in range(WORKERS)])

    log = store.read_vault(VAULT)["log"]
    assert len(log) == WORKERS * WRITES
    for worker in range(WORKERS):
        assert [item for item in log if item.startswith(f"{worker}:")] == [
            f"{worker}:{n}" for n in range(WRITES)
        ]
    assert_every_file_is_valid(root)


@pytest.mark.slow
def test_processes_writing_own_vaults_lose_no_update(root: Path, store: TinyDBStore) -> None:
    ids = [f"{worker:02x}" * 16 for worker in range(WORKERS)]
    for vault_id in ids:
        store.create_vault(vault_id, {"log": []})

    run_workers(append_to_vault, [(root, ids[worker], worker) for worker in range(WORKERS)])

    for worker, vault_id in enumerate(ids):
        assert store.read_vault(vault_id)["log"] == [f"{worker}:{n}" for n in range(WRITES)]
    assert_every_file_is_valid(root)


@pytest.mark.slow
def test_processes_writing_one_table_lose_no_update(root: Path, store: TinyDBStore) -> None:
    run_workers(bump_counters, [(root, worker) for worker in range(WORKERS)])

    expected: dict[str, int] = {}
    for worker in range(WORKERS):
        for n in range(WRITES):
            for key in set(counter_keys(worker, n)):
                expected[key] = expected.get(key, 0) + 1
    assert {key: record["n"] for key, record in store.scan(TABLE)} == expected
    assert len({shard_file(root, key) for key in expected}) > 1
    assert_every_file_is_valid(root)


# Crashes.


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def die_before_rename(*args: object) -> None:
    die()


def die_in_temp_write(fd: int) -> None:
    """Stand-in for os.fsync: cut the temp file in half and die before it is synced."""
    if stat.S_ISREG(os.fstat(fd).st_mode):
        os.ftruncate(fd, os.fstat(fd).st_size // 2)
        die()


CRASHES: dict[str, tuple[str, Callable[..., None]]] = {
    "before_rename": ("replace", die_before_rename),
    "in_temp_write": ("fsync", die_in_temp_write),
}


#: Keys "a" and "b" fall in different shard files: update_many writes b's file first.
CHANGES: dict[str, Callable[[TinyDBStore], object]] = {
    "vault": lambda store: store.update_vault(VAULT, lambda doc: {"version": 2}),
    "table": lambda store: store.update_many(
        TABLE, ["a", "b"], lambda recs: {"a": {"version": 2}, "b": {"version": 2}}
    ),
    "split": lambda store: store.update_many(
        TABLE, ["a", "b"], lambda recs: {"a": {"version": 2}, "b": None}
    ),
}


def write_then_crash(root: Path, target: str, crash: str) -> None:
    store = TinyDBStore(root)
    name, stand_in = CRASHES[crash]
    setattr(os, name, stand_in)
    CHANGES[target](store)


def crash_while_writing(root: Path, target: str, crash: str) -> None:
    process = SPAWN.Process(target=write_then_crash, args=(root, target, crash))
    process.start()
    process.join(timeout=60)
    assert process.exitcode == -signal.SIGKILL
    assert any(path.name.endswith(".tmp") for path in files_under(root))


def prepare_versions(store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"version": 1, "pad": "x" * 10_000})
    store.insert(TABLE, "a", {"version": 1})
    store.insert(TABLE, "b", {"version": 1})


@pytest.mark.slow
@pytest.mark.parametrize("crash", sorted(CRASHES))
@pytest.mark.parametrize("target", ["vault", "table"])
def test_writer_killed_mid_write_leaves_old_version(
    root: Path, store: TinyDBStore, target: str, crash: str
) -> None:
    prepare_versions(store)

    crash_while_writing(root, target, crash)

    assert store.read_vault(VAULT)["version"] == 1
    assert dict(store.scan(TABLE)) == {"a": {"version": 1}, "b": {"version": 1}}
    store.update_vault(VAULT, lambda doc: {"version": 3})
    store.update_many(TABLE, ["a", "b"], lambda recs: {"a": {"version": 3}, "b": {"version": 3}})
    assert store.read_vault(VAULT) == {"version": 3}
    assert_every_file_is_valid(root)


@pytest.mark.slow
def test_crash_between_shard_files_keeps_each_file_whole(root: Path, store: TinyDBStore) -> None:
    """update_many is atomic per shard file against crashes, as its docstring says."""
    prepare_versions(store)

    crash_while_writing(root, "split", "before_rename")

    assert dict(store.scan(TABLE)) == {"a": {"version": 1}}
    assert_every_file_is_valid(root, temp_allowed=True)


def next_version(doc: Document) -> Document:
    """The next version, with a size that varies so kills land in different steps."""
    version = doc["version"] + 1
    return {"version": version, "pad": "x" * (997 * (version % 37))}


def write_versions(root: Path, sender: Connection) -> None:
    """Write versions one after another for ever, reporting each once it is stored."""
    store = TinyDBStore(root)
    while True:
        sender.send(store.update_vault(VAULT, next_version)["version"])


@pytest.mark.slow
def test_busy_writer_killed_at_any_moment_leaves_old_or_new(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"version": 0})
    for round_ in range(8):
        start = store.read_vault(VAULT)["version"]
        writer = ReportingWriter(write_versions, root)
        last = next(version for version in writer.reports if version >= start + 1 + round_ * 3)
        last = max(writer.kill(), default=last)

        assert writer.process.exitcode == -signal.SIGKILL
        assert store.read_vault(VAULT)["version"] in (last, last + 1)
        assert_every_file_is_valid(root, temp_allowed=True)


# Registers: two slots in a file of their own, set in place.

CHAIN = "refresh.g1"


def register_file(root: Path, name: str = CHAIN, vault_id: str = VAULT) -> Path:
    return root / "vaults" / vault_id[:2] / f"{vault_id}.{name}.reg"


def advance_register(root: Path, worker: int) -> None:
    """Try to move the register on by one WRITES times; record how many tries won."""
    store = TinyDBStore(root)
    wins = 0
    for _ in range(WRITES):
        held = store.read_register(VAULT, CHAIN)
        count = 0 if held is None else held["counter"]
        if store.swap_register(VAULT, CHAIN, held, {"counter": count + 1, "by": worker}):
            wins += 1
    store.update(TABLE, f"wins-{worker}", lambda record: {"n": wins})


def test_a_register_is_a_private_file_of_fixed_size_beside_its_vault(
    root: Path, store: TinyDBStore
) -> None:
    store.create_vault(VAULT, {"n": 1})

    for count in range(1, 6):
        store.swap_register(VAULT, CHAIN, store.read_register(VAULT, CHAIN), {"counter": count})

    path = register_file(root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_size == registers.FILE_BYTES
    assert list(store.vault_ids()) == [VAULT]
    assert store.read_vault(VAULT) == {"n": 1}


def test_a_register_file_with_no_valid_slot_is_damaged_not_unset(
    root: Path, store: TinyDBStore
) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.swap_register(VAULT, CHAIN, None, {"counter": 1})
    register_file(root).write_bytes(b"\0" * registers.FILE_BYTES)

    with pytest.raises(StorageError, match="no valid slot"):
        store.read_register(VAULT, CHAIN)
    with pytest.raises(StorageError, match="no valid slot"):
        store.swap_register(VAULT, CHAIN, None, {"counter": 1})


def test_a_register_file_appears_with_its_first_value(
    root: Path, store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made under a temporary name and renamed into place, so no reader ever sees a
    register file without a valid slot, and a crash before the rename leaves none."""
    store.create_vault(VAULT, {"n": 1})

    def crash(*args: object) -> None:
        raise Crash

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(Crash):
        store.swap_register(VAULT, CHAIN, None, {"counter": 1})
    monkeypatch.undo()

    assert not register_file(root).exists()
    assert store.read_register(VAULT, CHAIN) is None
    assert store.swap_register(VAULT, CHAIN, None, {"counter": 1})
    assert store.read_register(VAULT, CHAIN) == {"counter": 1}
    assert [path.name for path in files_under(root) if path.name.endswith(".tmp")] == []


def register_at(store: TinyDBStore, count: int) -> None:
    """The vault VAULT, with its register CHAIN moved on swap by swap to ``count``."""
    store.create_vault(VAULT, {"n": 1})
    held = None
    for counter in range(1, count + 1):
        assert store.swap_register(VAULT, CHAIN, held, {"counter": counter})
        held = {"counter": counter}


class Crash(Exception):
    """The process dying at this point (raised instead, so the test can look after)."""


def test_a_swap_torn_mid_write_leaves_the_value_before_it(
    root: Path, store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_at(store, 2)
    real_pwrite = os.pwrite

    def torn(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, data[:100] + b"\xff" * 20, offset)
        raise Crash

    for count in (2, 3, 4):
        monkeypatch.setattr(registers.os, "pwrite", torn)
        with pytest.raises(Crash):
            store.swap_register(VAULT, CHAIN, {"counter": count}, {"counter": 99})
        monkeypatch.undo()

        assert store.read_register(VAULT, CHAIN) == {"counter": count}
        assert store.swap_register(VAULT, CHAIN, {"counter": count}, {"counter": count + 1})


def failing_syncs(failures: int) -> Callable[[int], None]:
    """An fdatasync that fails with EIO the first ``failures`` times, then syncs."""
    real = os.fdatasync
    left = [failures]

    def datasync(fd: int) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise OSError(5, "Input/output error")
        real(fd)

    return datasync


def test_a_swap_that_cannot_be_synced_is_taken_back(
    root: Path, store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_at(store, 2)
    monkeypatch.setattr(registers.os, "fdatasync", failing_syncs(1))

    with pytest.raises(StorageError, match="Input/output error"):
        store.swap_register(VAULT, CHAIN, {"counter": 2}, {"counter": 3})

    assert store.read_register(VAULT, CHAIN) == {"counter": 2}
    assert TinyDBStore(root).read_register(VAULT, CHAIN) == {"counter": 2}
    assert store.swap_register(VAULT, CHAIN, {"counter": 2}, {"counter": 3})
    assert store.read_register(VAULT, CHAIN) == {"counter": 3}


def test_a_take_back_that_cannot_be_synced_either_still_reads_as_before(
    root: Path, store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_at(store, 1)
    monkeypatch.setattr(registers.os, "fdatasync", failing_syncs(2))

    with pytest.raises(StorageError, match="Input/output error"):
        store.swap_register(VAULT, CHAIN, {"counter": 1}, {"counter": 2})

    assert store.read_register(VAULT, CHAIN) == {"counter": 1}


def test_a_take_back_that_cannot_be_written_leaves_the_new_value_and_the_first_error(
    root: Path, store: TinyDBStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_at(store, 1)
    real_pwrite = os.pwrite
    writes: list[bytes] = []

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        writes.append(data)
        if len(writes) > 1:
            raise OSError(28, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(registers.os, "fdatasync", failing_syncs(1))
    monkeypatch.setattr(registers.os, "pwrite", pwrite)

    with pytest.raises(StorageError, match="Input/output error"):
        store.swap_register(VAULT, CHAIN, {"counter": 1}, {"counter": 2})

    assert writes[1] == bytes(registers.SLOT_BYTES)
    assert store.read_register(VAULT, CHAIN) == {"counter": 2}


def test_a_swap_on_an_erased_vault_leaves_no_lock_file(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.delete_vault(VAULT)

    with pytest.raises(NotFound):
        store.swap_register(VAULT, CHAIN, None, {"counter": 1})

    assert [path for path in files_under(root) if VAULT in path.name] == []


def test_a_format_1_root_is_refused_untouched_until_upgraded(root: Path) -> None:
    root.mkdir()
    earlier = json.dumps({"format": 1, "shards": 256})
    (root / "store.json").write_text(earlier)

    with pytest.raises(OutdatedStore, match="vrm store upgrade"):
        TinyDBStore(root)
    assert (root / "store.json").read_text() == earlier

    assert upgrade_store(root) == 1
    assert json.loads((root / "store.json").read_text()) == {"format": FORMAT, "shards": 256}
    TinyDBStore(root).create_vault(VAULT, {"n": 1})
    assert upgrade_store(root) == FORMAT


def test_an_upgraded_root_keeps_its_shard_count(root: Path) -> None:
    root.mkdir()
    (root / "store.json").write_text(json.dumps({"format": 1, "shards": 8}))

    upgrade_store(root)

    assert json.loads((root / "store.json").read_text()) == {"format": FORMAT, "shards": 8}
    with pytest.raises(StorageError, match="says"):
        TinyDBStore(root)
    TinyDBStore(root, shards=8)


@pytest.mark.parametrize(
    "found",
    [
        {"format": FORMAT + 1, "shards": 256},
        {"format": True, "shards": 256},
        {"format": float(FORMAT), "shards": 256},
        {"format": FORMAT, "shards": 256.0},
        {"format": 1},
        {"format": 1, "shards": "x"},
        {"format": 1, "shards": 0},
        {"format": 1, "shards": True},
        {"format": 1, "shards": 256, "extra": 1},
        [],
    ],
)
def test_a_root_of_an_unknown_format_is_neither_opened_nor_upgraded(
    root: Path, found: object
) -> None:
    root.mkdir()
    (root / "store.json").write_text(json.dumps(found))

    with pytest.raises(StorageError, match="says") as opened:
        TinyDBStore(root)
    assert not isinstance(opened.value, OutdatedStore)
    with pytest.raises(StorageError, match="cannot upgrade"):
        upgrade_store(root)
    assert json.loads((root / "store.json").read_text()) == found


def test_upgrading_where_there_is_no_store_creates_nothing(root: Path) -> None:
    with pytest.raises(NotFound, match="no store"):
        upgrade_store(root)
    assert not root.exists()


def test_erasing_a_vault_removes_its_register_files(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"n": 1})
    store.swap_register(VAULT, CHAIN, None, {"counter": 1})
    store.swap_register(VAULT, "refresh.g2", None, {"counter": 1})

    store.delete_vault(VAULT)

    assert [path for path in files_under(root) if VAULT in path.name] == []


def test_processes_swapping_one_register_lose_no_step(root: Path, store: TinyDBStore) -> None:
    store.create_vault(VAULT, {"n": 1})

    run_workers(advance_register, [(root, worker) for worker in range(WORKERS)])

    final = store.read_register(VAULT, CHAIN)
    wins = [store.get(TABLE, f"wins-{worker}") for worker in range(WORKERS)]
    assert final is not None
    assert final["counter"] == sum(won["n"] for won in wins if won is not None)
    assert final["counter"] >= WRITES


def swap_for_ever(root: Path, sender: Connection) -> None:
    """Move the register on for ever, reporting each value once its swap has returned."""
    store = TinyDBStore(root)
    while True:
        held = store.read_register(VAULT, CHAIN)
        count = 0 if held is None else held["counter"]
        if store.swap_register(VAULT, CHAIN, held, {"counter": count + 1}):
            sender.send(count + 1)


@pytest.mark.slow
def test_a_swapping_process_killed_at_any_moment_leaves_the_last_value_or_the_next(
    root: Path, store: TinyDBStore
) -> None:
    store.create_vault(VAULT, {"n": 1})
    for round_ in range(6):
        held = store.read_register(VAULT, CHAIN)
        start = 0 if held is None else held["counter"]
        writer = ReportingWriter(swap_for_ever, root)
        last = next(count for count in writer.reports if count >= start + 1 + round_ * 5)
        last = max(writer.kill(), default=last)

        assert writer.process.exitcode == -signal.SIGKILL
        after = store.read_register(VAULT, CHAIN)
        assert after is not None
        assert after["counter"] in (last, last + 1)
