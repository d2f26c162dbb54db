"""The audit log on real files: layout, reads, proofs, many writers, torn tails and crashes.

Child processes use the "spawn" start method and open their own AuditLog on the same
directory, as separate server workers would. A crash at a chosen step of an append is an
exception raised in place of a write: the log keeps nothing in process memory, so the
files are left exactly as a kill at that step would leave them. The busy-writer test sends
a real SIGKILL at a moment a child reports over a pipe, so no test waits on the clock.
"""

from __future__ import annotations

import logging
import os
import signal
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from tests.audit.vectors import LEAVES, ROOTS
from tests.kills import SPAWN, ReportingWriter
from vault.audit import (
    EMPTY_ROOT,
    AuditError,
    AuditLog,
    AuditSink,
    LogCorrupted,
    NotInLog,
    byvault,
    canonical_json,
    files,
    leaf_hash,
    levels,
    root_from_leaves,
    verify_consistency,
    verify_inclusion,
)
from vault.audit import log as log_module
from vault.audit.levels import TreeLevels
from vault.errors import StorageError
from vault.events import Event, EventSink

VAULTS = [f"{n:02x}" * 16 for n in (0xA1, 0xB2, 0xC3)]
AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def vault_of(n: int) -> str:
    """The vault that event number ``n`` names by default: each of VAULTS in turn."""
    return VAULTS[n % len(VAULTS)]


def event(n: int, vault: str | None = None, *, writer: str = "main") -> Event:
    """Event number ``n``, naming ``vault`` or by default ``vault_of(n)``."""
    return Event(
        type="data.read",
        at=AT,
        actor="vendor",
        vault=vault_of(n) if vault is None else vault,
        vendor="acme",
        fields=("email", "name"),
        detail={"n": n, "writer": writer},
    )


def fill(log: AuditLog, count: int) -> None:
    for n in range(log.size(), log.size() + count):
        assert log.append_event(event(n)) == n


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@pytest.fixture
def log(directory: Path) -> Iterator[AuditLog]:
    with AuditLog(directory, sync="none") as opened:
        yield opened


def reopen(directory: Path) -> AuditLog:
    return AuditLog(directory, sync="none")


def naive_leaves(log: AuditLog) -> list[bytes]:
    """Leaf hashes recomputed from the entries alone, as an auditor would."""
    return [leaf_hash(canonical_json(entry)) for entry in log.entries()]


def assert_log_verifies(log: AuditLog) -> None:
    """The stored tree, its root and sample proofs agree with a tree built from scratch."""
    log.verify()
    leaves = naive_leaves(log)
    size = len(leaves)
    assert log.size() == size
    assert log.root() == root_from_leaves(leaves)
    for index in {0, size // 2, size - 1} if size else set():
        verify_inclusion(index, size, leaves[index], log.inclusion_proof(index), log.root())
    for old in {1, size // 3, size - 1} if size > 1 else set():
        old_root = root_from_leaves(leaves[:old])
        verify_consistency(old, size, old_root, log.root(), log.consistency_proof(old, size))


def files_under(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def offsets(directory: Path) -> list[int]:
    data = (directory / "offsets.bin").read_bytes()
    return [end for (end,) in struct.iter_unpack(">Q", data[: len(data) // 8 * 8])]


# Layout and storage format.


def test_files_follow_the_documented_layout(directory: Path, log: AuditLog) -> None:
    fill(log, 5)
    log.append({"type": "key.rotated", "at": "2026-11-25T09:00:00Z", "actor": "system"})

    index_files = {f"by-vault/{key[:2]}/{key}.bin" for key in VAULTS}
    levels_of_six = {"level-00.bin", "level-01.bin", "level-02.bin"}
    assert files_under(directory) == {
        "log.json",
        "lock",
        "durable.json",
        "entries.jsonl",
        "offsets.bin",
        *levels_of_six,
        *index_files,
    }
    assert (directory / "log.json").read_bytes() == b'{"format":1}'
    assert (directory / "durable.json").read_bytes() == b'{"size":0}'
    log.close()
    assert (directory / "durable.json").read_bytes() == b'{"size":6}'


def test_each_entry_is_one_canonical_json_line_and_its_leaf(directory: Path, log: AuditLog) -> None:
    events = [event(n) for n in range(4)]
    for item in events:
        log.append_event(item)

    lines = (directory / "entries.jsonl").read_bytes().splitlines(keepends=True)
    assert lines == [canonical_json(item.to_json()) + b"\n" for item in events]
    ends = [sum(len(line) for line in lines[: n + 1]) for n in range(4)]
    assert offsets(directory) == ends
    leaves = (directory / "level-00.bin").read_bytes()
    assert leaves == b"".join(leaf_hash(line[:-1]) for line in lines)
    assert [log.leaf_hash(n) for n in range(4)] == [leaf_hash(line[:-1]) for line in lines]


def test_entries_are_stored_as_given_without_an_index(log: AuditLog) -> None:
    item = event(0)
    log.append_event(item)
    assert log.entry(0) == item.to_json()


def test_tree_levels_hold_every_complete_aligned_subtree(directory: Path, log: AuditLog) -> None:
    fill(log, 45)
    leaves = naive_leaves(log)

    for level in range(6):
        stored = (directory / f"level-{level:02d}.bin").read_bytes()
        width = 1 << level
        expected = [
            root_from_leaves(leaves[j * width : (j + 1) * width]) for j in range(45 >> level)
        ]
        assert stored == b"".join(expected)
    assert not (directory / "level-06.bin").exists()


def test_stored_tree_reproduces_the_published_roots(tmp_path: Path) -> None:
    tree = TreeLevels(tmp_path)
    for index, leaf in enumerate(LEAVES):
        tree.add_leaf(index, leaf_hash(leaf))
        assert tree.subtree_hash(0, index + 1) == ROOTS[index + 1]
    tree.close()


# Reading.


def test_append_returns_consecutive_indexes_across_reopen(directory: Path, log: AuditLog) -> None:
    assert [log.append_event(event(n)) for n in range(3)] == [0, 1, 2]
    log.close()
    with reopen(directory) as again:
        assert again.append_event(event(3)) == 3
        assert again.size() == 4
        assert [entry["detail"]["n"] for entry in again.entries()] == [0, 1, 2, 3]


def test_entries_are_read_at_random_and_by_range(log: AuditLog) -> None:
    fill(log, 3000)

    assert log.entry(2345) == event(2345).to_json()
    assert list(log.entries(1020, 1030)) == [event(n).to_json() for n in range(1020, 1030)]
    assert [entry["detail"]["n"] for entry in log.entries(1000)] == list(range(1000, 3000))
    assert list(log.entries(7, 7)) == []


@pytest.mark.parametrize(
    "read",
    [
        lambda log: log.entry(3),
        lambda log: log.entry(-1),
        lambda log: log.leaf_hash(3),
        lambda log: log.entries(2, 4),
        lambda log: log.entries(3, 2),
        lambda log: log.root(4),
        lambda log: log.inclusion_proof(3),
        lambda log: log.inclusion_proof(1, 4),
        lambda log: log.consistency_proof(2, 4),
        lambda log: log.consistency_proof(3, 2),
    ],
)
def test_reads_past_the_end_raise_not_in_log(
    log: AuditLog, read: Callable[[AuditLog], Any]
) -> None:
    fill(log, 3)
    with pytest.raises(NotInLog):
        read(log)


def test_every_root_equals_the_naive_root_after_reopen(directory: Path, log: AuditLog) -> None:
    fill(log, 40)
    log.close()
    with reopen(directory) as again:
        fill(again, 27)
        leaves = naive_leaves(again)
        assert again.root(0) == EMPTY_ROOT
        for size in range(68):
            assert again.root(size) == root_from_leaves(leaves[:size])
        assert again.root() == again.root(67)


def test_every_proof_from_the_log_verifies(log: AuditLog) -> None:
    fill(log, 33)
    leaves = naive_leaves(log)
    roots = [root_from_leaves(leaves[:size]) for size in range(34)]

    for size in range(1, 34):
        for index in range(size):
            proof = log.inclusion_proof(index, size)
            verify_inclusion(index, size, leaves[index], proof, roots[size])
        for old in range(size + 1):
            proof = log.consistency_proof(old, size)
            verify_consistency(old, size, roots[old], roots[size], proof)


def test_a_hundred_thousand_appends_keep_the_root_right(directory: Path, log: AuditLog) -> None:
    for n in range(100_000):
        log.append(
            {"type": "token.issued", "at": "2026-11-25T09:00:00Z", "actor": "vendor", "n": n}
        )

    stored = (directory / "level-00.bin").read_bytes()
    leaves = [stored[i : i + 32] for i in range(0, len(stored), 32)]
    assert len(leaves) == log.size() == 100_000
    assert log.root() == root_from_leaves(leaves)
    assert log.root(65_537) == root_from_leaves(leaves[:65_537])
    assert log.entry(99_999)["n"] == 99_999
    verify_inclusion(77_777, 100_000, leaves[77_777], log.inclusion_proof(77_777), log.root())
    old_root = root_from_leaves(leaves[:65_537])
    verify_consistency(65_537, 100_000, old_root, log.root(), log.consistency_proof(65_537))


# Writing.


def test_sink_appends_every_event(log: AuditLog) -> None:
    sink: EventSink = AuditSink(log)
    sink.emit(event(0))
    sink.emit(event(1))
    assert list(log.entries()) == [event(0).to_json(), event(1).to_json()]


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "x", "n": float("nan")},
        {"type": "x", "vault": "../../etc"},
        {"type": "x", "vault": "A1"},
        {"type": "x", "vault": 7},
        {"type": "x", "at": datetime(2026, 1, 1)},
    ],
)
def test_a_malformed_entry_is_refused_before_anything_is_written(
    directory: Path, log: AuditLog, entry: dict[str, Any]
) -> None:
    fill(log, 2)
    before = {name: (directory / name).read_bytes() for name in ("entries.jsonl", "offsets.bin")}

    with pytest.raises((ValueError, TypeError)):
        log.append(entry)

    assert {name: (directory / name).read_bytes() for name in before} == before


def test_appends_that_cannot_be_written_raise_storage_error(
    log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes, offset: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(log_module, "write_at", disk_full)
    with pytest.raises(StorageError, match="No space left"):
        log.append_event(event(0))


def test_unknown_sync_mode_is_refused(directory: Path) -> None:
    with pytest.raises(ValueError, match="sync must be one of"):
        AuditLog(directory, sync="sometimes")


def test_a_log_of_another_format_is_refused(directory: Path) -> None:
    directory.mkdir()
    (directory / "log.json").write_text('{"format":2}')
    with pytest.raises(AuditError, match="format"):
        AuditLog(directory)


def test_synced_appends_are_readable_by_another_instance(directory: Path) -> None:
    with AuditLog(directory) as writer, AuditLog(directory) as reader:
        fill(writer, 9)
        assert reader.size() == 9
        assert reader.root() == writer.root()
        assert_log_verifies(reader)


def test_threads_sharing_one_log_lose_nothing(log: AuditLog) -> None:
    def write(writer: str) -> None:
        for n in range(200):
            log.append_event(event(n, writer=writer))

    threads = [threading.Thread(target=write, args=(f"thread-{t}",)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert log.size() == 800
    assert_log_verifies(log)


# Many processes.


def append_events(directory: Path, writer: str, count: int) -> None:
    with AuditLog(directory, sync="none") as log:
        for n in range(count):
            log.append_event(event(n, writer=writer))


@pytest.mark.slow
def test_two_processes_appending_lose_nothing(directory: Path) -> None:
    AuditLog(directory).close()
    workers = [
        SPAWN.Process(target=append_events, args=(directory, f"worker-{w}", 200)) for w in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    with reopen(directory) as log:
        assert log.recovered == []
        entries = list(log.entries())
        assert len(entries) == 400
        for writer in ("worker-0", "worker-1"):
            mine = [e["detail"]["n"] for e in entries if e["detail"]["writer"] == writer]
            assert mine == list(range(200))
        assert_log_verifies(log)


# Torn tails: the files as a crash mid-append leaves them.


def unfinished_line(n: int = 99) -> bytes:
    return canonical_json(event(n).to_json()) + b"\n"


def add_bytes(path: Path, data: bytes) -> None:
    with open(path, "ab") as file:
        file.write(data)


def cut_bytes(path: Path, count: int) -> None:
    os.truncate(path, path.stat().st_size - count)


def half_a_line(directory: Path) -> None:
    add_bytes(directory / "entries.jsonl", unfinished_line()[:40])


def line_and_index_record(directory: Path) -> None:
    key = vault_of(9)
    add_bytes(directory / "entries.jsonl", unfinished_line(9))
    add_bytes(directory / "by-vault" / key[:2] / f"{key}.bin", struct.pack(">Q", 9))


def partial_offset(directory: Path) -> None:
    line_and_index_record(directory)
    add_bytes(directory / "level-00.bin", bytes(32))
    add_bytes(directory / "offsets.bin", b"\x00\x00\x01")


def extra_level_bytes(directory: Path) -> None:
    line_and_index_record(directory)
    add_bytes(directory / "level-00.bin", bytes(32))
    add_bytes(directory / "level-01.bin", b"\x07" * 5)
    add_bytes(directory / "level-04.bin", b"\x07" * 32)


def missing_level_hashes(directory: Path) -> None:
    cut_bytes(directory / "level-00.bin", 64)
    cut_bytes(directory / "level-01.bin", 32)
    cut_bytes(directory / "level-02.bin", 32)


#: Each kind of damage to a log of 9 entries, what recovery must name as it repairs it,
#: and the size it leaves: a whole line past the offsets is an append that died after
#: writing its line, which is kept (its caller never saw it return, but it may have
#: happened); anything less is cut.
TORN_TAILS: dict[str, tuple[Callable[[Path], None], set[str], int]] = {
    "half a line": (half_a_line, {"entries.jsonl"}, 9),
    "a line and its index record": (
        line_and_index_record,
        {"offsets.bin", "level-00.bin", "level-01.bin"},
        10,
    ),
    "a partial offset": (partial_offset, {"offsets.bin", "level-00.bin", "level-01.bin"}, 10),
    "extra level bytes": (
        extra_level_bytes,
        {"offsets.bin", "level-00.bin", "level-01.bin", "level-04.bin"},
        10,
    ),
    "missing level hashes": (
        missing_level_hashes,
        {"level-00.bin", "level-01.bin", "level-02.bin"},
        9,
    ),
}


@pytest.mark.parametrize("damage", sorted(TORN_TAILS))
def test_torn_tail_is_repaired_and_reported_on_reopen(
    directory: Path, log: AuditLog, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    fill(log, 9)
    root = log.root()
    history = {key: log.indexes_for(key) for key in VAULTS}
    log.close()
    tear, named, size = TORN_TAILS[damage]
    tear(directory)
    if size == 10:
        history[vault_of(9)].append(9)

    with caplog.at_level(logging.WARNING, logger="vault.audit.log"), reopen(directory) as again:
        recovered = list(again.recovered)
        assert {message.split(":")[0] for message in recovered} == named
        assert [record.getMessage() for record in caplog.records] == [
            f"audit log {directory}: {message}" for message in recovered
        ]
        assert again.size() == size
        assert again.root(9) == root
        if size == 10:
            assert again.entry(9) == event(9).to_json()
        assert (directory / "entries.jsonl").stat().st_size == offsets(directory)[-1]
        assert {key: again.indexes_for(key) for key in VAULTS} == history
        assert_log_verifies(again)
        fill(again, 3)
        assert again.recovered == recovered
        assert_log_verifies(again)


def test_derived_files_past_the_durable_mark_are_rebuilt_from_the_entries(
    directory: Path, log: AuditLog
) -> None:
    """What an OS crash can leave of files written but not flushed: offsets, hashes and
    index records past the mark zeroed, cut or gone, with every line still there."""
    fill(log, 13)
    root = log.root()
    history = {key: log.indexes_for(key) for key in VAULTS}
    log.close()
    (directory / "durable.json").write_bytes(b'{"size":5}')
    with open(directory / "offsets.bin", "r+b") as file:
        file.seek(6 * 8)
        file.write(bytes(3 * 8))
    with open(directory / "level-00.bin", "r+b") as file:
        file.seek(5 * 32)
        file.write(bytes(32))
    cut_bytes(directory / "level-01.bin", 3 * 32)
    (directory / "level-03.bin").unlink()
    key = vault_of(12)
    cut_bytes(directory / "by-vault" / key[:2] / f"{key}.bin", 8)

    with reopen(directory) as again:
        assert {message.split(":")[0] for message in again.recovered} == {
            "offsets.bin",
            "level-00.bin",
            "level-01.bin",
            "level-03.bin",
            f"by-vault index of {key}",
        }
        assert again.size() == 13
        assert again.root() == root
        assert {key: again.indexes_for(key) for key in VAULTS} == history
        assert_log_verifies(again)
    assert (directory / "durable.json").read_bytes() == b'{"size":13}'


def test_entries_whose_offsets_were_lost_are_kept(directory: Path, log: AuditLog) -> None:
    fill(log, 9)
    root = log.root()
    log.close()
    (directory / "durable.json").write_bytes(b'{"size":4}')
    os.truncate(directory / "offsets.bin", 4 * 8)

    with reopen(directory) as again:
        assert again.size() == 9
        assert again.root() == root
        assert_log_verifies(again)


def test_a_log_from_before_the_durable_mark_opens_as_it_is(directory: Path, log: AuditLog) -> None:
    fill(log, 9)
    root = log.root()
    log.close()
    (directory / "durable.json").unlink()

    with reopen(directory) as again:
        assert again.recovered == []
        assert again.root() == root
        # Flushed and marked at once, so what it appends next is covered by recovery.
        assert (directory / "durable.json").read_bytes() == b'{"size":9}'
        fill(again, 2)
    assert (directory / "durable.json").read_bytes() == b'{"size":11}'


def test_an_unreadable_mark_makes_the_next_open_check_every_file(
    directory: Path, log: AuditLog
) -> None:
    fill(log, 9)
    root = log.root()
    log.close()
    (directory / "durable.json").write_bytes(b"{not json")
    cut_bytes(directory / "level-00.bin", 32)

    with reopen(directory) as again:
        assert [message.split(":")[0] for message in again.recovered] == [
            "durable.json",
            "level-00.bin",
        ]
        assert again.root() == root
        assert_log_verifies(again)


def test_an_entry_edited_past_the_mark_is_not_hidden_by_recovery(
    directory: Path, log: AuditLog
) -> None:
    fill(log, 20)
    data = bytearray((directory / "entries.jsonl").read_bytes())
    start = offsets(directory)[4]
    data[data.index(b"acme", start)] = ord("A")
    (directory / "entries.jsonl").write_bytes(bytes(data))

    with reopen(directory) as again:
        assert [message.split(":")[0] for message in again.recovered] == ["level-00.bin"]
        assert "kept 1 hash(es)" in again.recovered[0]
        with pytest.raises(LogCorrupted, match="entry 5 does not match its leaf hash"):
            again.verify()


def test_zeroed_index_records_past_the_mark_are_cut(directory: Path, log: AuditLog) -> None:
    fill(log, 18)
    history = {key: log.indexes_for(key) for key in VAULTS}
    log.close()
    (directory / "durable.json").write_bytes(b'{"size":10}')
    key = vault_of(0)
    path = directory / "by-vault" / key[:2] / f"{key}.bin"
    records = path.read_bytes()
    path.write_bytes(records[:32] + bytes(16) + records[48:])

    with reopen(directory) as again:
        assert [message.split(":")[0] for message in again.recovered] == [
            f"by-vault index of {key}"
        ]
        assert {key: again.indexes_for(key) for key in VAULTS} == history
        assert_log_verifies(again)


def test_recovery_never_shows_readers_fewer_entries_than_agree(
    directory: Path, log: AuditLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(log, 20)
    add_bytes(directory / "entries.jsonl", unfinished_line(20))
    offsets_inode = (directory / "offsets.bin").stat().st_ino
    lengths: list[int] = []
    real_truncate = os.ftruncate

    def ftruncate(fd: int, length: int) -> None:
        if os.fstat(fd).st_ino == offsets_inode:
            lengths.append(length)
        real_truncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with reopen(directory) as again:
        assert again.size() == 21
    assert all(length >= 20 * 8 for length in lengths)


def test_recovery_syncs_the_lines_it_derives_from_first(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(directory) as log:
        fill(log, 4)
    add_bytes(directory / "entries.jsonl", unfinished_line(4))
    entries_inode = (directory / "entries.jsonl").stat().st_ino
    order: list[str] = []
    real_datasync = files.datasync
    real_write = files.write_at

    def datasync(fd: int) -> None:
        if os.fstat(fd).st_ino == entries_inode:
            order.append("sync entries")
        real_datasync(fd)

    def write_at(fd: int, data: bytes, offset: int) -> None:
        order.append("derive")
        real_write(fd, data, offset)

    monkeypatch.setattr(log_module, "datasync", datasync)
    for module in (log_module, levels, byvault):
        monkeypatch.setattr(module, "write_at", write_at)
    with AuditLog(directory) as again:
        assert again.size() == 5
    assert order[0] == "sync entries"
    assert "derive" in order


def test_a_clean_reopen_repairs_and_reports_nothing(directory: Path, log: AuditLog) -> None:
    fill(log, 9)
    with reopen(directory) as other:
        assert other.recovered == []
        fill(other, 2)
    fill(log, 2)
    assert log.recovered == []
    assert_log_verifies(log)


def test_a_line_not_in_canonical_form_ends_the_log(directory: Path, log: AuditLog) -> None:
    fill(log, 4)
    root = log.root()
    log.close()
    add_bytes(directory / "entries.jsonl", b'{"b": 1, "a": 2}\n' + unfinished_line(4))

    with reopen(directory) as again:
        assert again.size() == 4
        assert again.root() == root
        assert [message.split(":")[0] for message in again.recovered] == ["entries.jsonl"]
        assert_log_verifies(again)


def test_entries_cut_inside_the_last_line_drop_that_entry(directory: Path, log: AuditLog) -> None:
    fill(log, 9)
    root_of_eight = log.root(8)
    log.close()
    cut_bytes(directory / "entries.jsonl", 10)

    with reopen(directory) as again:
        assert again.size() == 8
        assert again.root() == root_of_eight
        assert any("point past the end" in message for message in again.recovered)
        assert any("rebuilt the whole index" in message for message in again.recovered)
        assert 8 not in again.indexes_for(vault_of(8))
        assert_log_verifies(again)


def test_damage_before_the_tail_is_not_hidden_by_recovery(directory: Path, log: AuditLog) -> None:
    fill(log, 9)
    log.close()
    data = bytearray((directory / "entries.jsonl").read_bytes())
    data[data.index(b"acme")] = ord("A")
    (directory / "entries.jsonl").write_bytes(bytes(data))

    with reopen(directory) as again:
        assert again.recovered == []
        with pytest.raises(LogCorrupted, match="entry 0 does not match its leaf hash"):
            again.verify()


def test_an_edited_node_hash_is_found(directory: Path, log: AuditLog) -> None:
    fill(log, 9)
    with open(directory / "level-02.bin", "r+b") as file:
        file.write(b"\xff")

    with pytest.raises(LogCorrupted, match=r"level-02.bin: hash 0 \(entries 0 to 3\)"):
        log.verify()


# Crashes at each step of an append.


class Crash(BaseException):
    """Stands in for a kill: raised in place of a write, it unwinds past every handler."""


#: Appending entry 7 to a log of 7 writes, in order: the line (then fsyncs it), level-00[7],
#: level-01[3], level-02[1], level-03[0], the vault index record, and last the offset.
APPEND_WRITES = 7


def crash_at_write(monkeypatch: pytest.MonkeyPatch, step: int, *, halfway: bool) -> None:
    """Make write number ``step`` (from 1) of the next append crash before or halfway."""
    done = 0
    real = files.write_at

    def write_at(fd: int, data: bytes, offset: int) -> None:
        nonlocal done
        done += 1
        if done == step:
            if halfway:
                real(fd, data[: len(data) // 2], offset)
            raise Crash
        real(fd, data, offset)

    for module in (log_module, levels, byvault):
        monkeypatch.setattr(module, "write_at", write_at)


@pytest.mark.parametrize("halfway", [False, True], ids=["before", "halfway"])
@pytest.mark.parametrize("step", range(1, APPEND_WRITES + 1))
def test_crash_at_any_write_of_an_append_leaves_the_log_whole(
    directory: Path, monkeypatch: pytest.MonkeyPatch, step: int, halfway: bool
) -> None:
    with AuditLog(directory) as log:
        fill(log, 7)
        root = log.root()
        history = {key: log.indexes_for(key) for key in VAULTS}
        crash_at_write(monkeypatch, step, halfway=halfway)
        with pytest.raises(Crash):
            log.append_event(event(7))
    monkeypatch.undo()

    kept = step > 1
    if kept:
        history[vault_of(7)].append(7)
    with AuditLog(directory) as again:
        assert bool(again.recovered) == (step > 1 or halfway)
        assert again.size() == 7 + kept
        assert again.root(7) == root
        assert {key: again.indexes_for(key) for key in VAULTS} == history
        assert_log_verifies(again)
        assert again.append_event(event(7 + kept)) == 7 + kept
        assert 7 + kept in again.indexes_for(vault_of(7 + kept))
        assert_log_verifies(again)


@pytest.mark.parametrize("synced", [False, True], ids=["during", "after"])
def test_crash_at_the_fsync_of_the_line_keeps_the_entry(
    directory: Path, monkeypatch: pytest.MonkeyPatch, synced: bool
) -> None:
    with AuditLog(directory) as log:
        fill(log, 7)
        entries_inode = (directory / "entries.jsonl").stat().st_ino
        real_datasync = files.datasync

        def datasync(fd: int) -> None:
            if synced:
                real_datasync(fd)
            if os.fstat(fd).st_ino == entries_inode:
                raise Crash

        monkeypatch.setattr(log_module, "datasync", datasync)
        with pytest.raises(Crash):
            log.append_event(event(7))
    monkeypatch.undo()

    with AuditLog(directory) as again:
        assert again.size() == 8
        assert again.entry(7) == event(7).to_json()
        assert 7 in again.indexes_for(vault_of(7))
        assert_log_verifies(again)


def test_a_recovery_cut_short_is_finished_by_the_next(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(directory, sync="none") as log:
        fill(log, 7)
    half_a_line(directory)
    add_bytes(directory / "level-04.bin", b"\x07" * 32)
    real_truncate = os.ftruncate
    entries_inode = (directory / "entries.jsonl").stat().st_ino

    def ftruncate(fd: int, length: int) -> None:
        if os.fstat(fd).st_ino == entries_inode:
            raise Crash
        real_truncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", ftruncate)
    with pytest.raises(Crash):
        AuditLog(directory, sync="none")
    monkeypatch.undo()

    with AuditLog(directory, sync="none") as again:
        assert [message.split(":")[0] for message in again.recovered] == ["entries.jsonl"]
        assert again.size() == 7
        assert_log_verifies(again)


# A busy writer killed at any moment.


def write_for_ever(directory: Path, sender: Connection) -> None:
    """Append events one after another for ever, reporting each index once it returns."""
    with AuditLog(directory) as log:
        while True:
            sender.send(log.append_event(event(log.size())))


@pytest.mark.slow
def test_writer_killed_at_any_moment_leaves_a_log_that_verifies(directory: Path) -> None:
    AuditLog(directory).close()
    for round_ in range(4):
        writer = ReportingWriter(write_for_ever, directory)
        last = next(index for index in writer.reports if index >= 20 * (round_ + 1) + round_)
        last = max(writer.kill(), default=last)
        assert writer.process.exitcode == -signal.SIGKILL

        with reopen(directory) as log:
            assert log.size() in (last + 1, last + 2)
            assert [entry["detail"]["n"] for entry in log.entries()] == list(range(log.size()))
            for number, key in enumerate(VAULTS):
                assert log.indexes_for(key) == list(range(number, log.size(), len(VAULTS)))
            assert_log_verifies(log)


# The per-vault index.


def test_each_vault_lists_exactly_its_own_entries(log: AuditLog) -> None:
    fill(log, 10)
    log.append({"type": "key.rotated", "at": "2026-11-25T09:00:00Z", "actor": "system"})

    assert log.indexes_for(VAULTS[0]) == [0, 3, 6, 9]
    assert log.indexes_for(VAULTS[1]) == [1, 4, 7]
    assert log.indexes_for(VAULTS[2]) == [2, 5, 8]
    assert log.indexes_for("ffff") == []
    for key in VAULTS:
        assert all(log.entry(index)["vault"] == key for index in log.indexes_for(key))


def test_an_unsafe_vault_key_is_refused(log: AuditLog) -> None:
    with pytest.raises(ValueError, match="vault pseudonym"):
        log.indexes_for("../lock")


def test_index_records_past_the_size_are_ignored_then_cut(directory: Path, log: AuditLog) -> None:
    fill(log, 4)
    key = VAULTS[1]
    index_file = directory / "by-vault" / key[:2] / f"{key}.bin"
    add_bytes(index_file, struct.pack(">Q", 4) + b"\x00\x00")

    assert log.indexes_for(key) == [1]
    assert log.append_event(event(4, key)) == 4

    assert log.indexes_for(key) == [1, 4]
    assert index_file.read_bytes() == struct.pack(">QQ", 1, 4)
    assert log.recovered == [
        f"by-vault index of {key}: cut 2 record(s) at or past entry 4, "
        "left by an append that never finished"
    ]
    assert_log_verifies(log)


def test_an_index_record_naming_another_vaults_entry_is_skipped(
    directory: Path, log: AuditLog
) -> None:
    fill(log, 4)
    key = VAULTS[0]
    add_bytes(directory / "by-vault" / key[:2] / f"{key}.bin", struct.pack(">Q", 4))
    fill(log, 1)

    assert log.entry(4)["vault"] != key
    assert log.indexes_for(key) == [0, 3]
    with pytest.raises(LogCorrupted, match=f"by-vault index of {key}"):
        log.verify()
    log.rebuild_index()
    assert_log_verifies(log)


def test_rebuild_index_restores_lost_and_removes_stray_files(
    directory: Path, log: AuditLog
) -> None:
    fill(log, 12)
    before = {key: log.indexes_for(key) for key in VAULTS}
    (directory / "by-vault" / VAULTS[0][:2] / f"{VAULTS[0]}.bin").unlink()
    stray = directory / "by-vault" / "ee" / ("ee" * 16 + ".bin")
    stray.parent.mkdir()
    stray.write_bytes(struct.pack(">Q", 3))
    with pytest.raises(LogCorrupted, match="by-vault index"):
        log.verify()

    assert log.rebuild_index() == 12

    assert {key: log.indexes_for(key) for key in VAULTS} == before
    assert not stray.exists()
    assert_log_verifies(log)


def test_a_log_that_cannot_be_opened_says_why(tmp_path: Path) -> None:
    """A failure while opening closes what was opened and lets the real error through."""
    (tmp_path / "audit").write_text("a file where the log's directory should be")
    with pytest.raises((FileExistsError, NotADirectoryError, StorageError)):
        AuditLog(tmp_path / "audit")
