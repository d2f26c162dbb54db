"""Group commit: appends made at once by threads of one process share one round of fsyncs.

To queue appends deterministically, a test holds the log's file lock itself, as another
process appending would: the first append then waits for the lock as the leader, every
later one queues behind it, and :meth:`AuditLog.waiting` says when all are queued. The
rounds of fsyncs are counted through the log's ``on_commit`` hook and by counting the
fsyncs themselves; nothing waits on the clock.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from tests.audit.test_log import VAULTS, assert_log_verifies, event, fill
from tests.kills import ReportingWriter
from vault.audit import AuditLog, byvault, files
from vault.audit import log as log_module
from vault.errors import StorageError


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "audit"


@contextmanager
def lock_held(directory: Path) -> Iterator[None]:
    """Hold the log's file lock, as another process in the middle of an append would."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def wait_until_queued(log: AuditLog, count: int) -> None:
    """Return once ``count`` appends are queued (threads make progress as this yields)."""
    while log.waiting() < count:
        os.sched_yield()


class Appender(threading.Thread):
    """A thread that appends one event and keeps the index it got, or the error."""

    def __init__(self, log: AuditLog, n: int) -> None:
        super().__init__()
        self.log = log
        self.n = n
        self.index: int | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.index = self.log.append_event(event(self.n, writer=f"thread-{self.n}"))
        except BaseException as exc:
            self.error = exc


def queue_appends(log: AuditLog, directory: Path, count: int) -> list[Appender]:
    """Queue ``count`` appends one after another behind a held lock, then let them go."""
    appenders = [Appender(log, n) for n in range(count)]
    with lock_held(directory):
        for number, appender in enumerate(appenders, start=1):
            appender.start()
            wait_until_queued(log, number)
    for appender in appenders:
        appender.join()
    return appenders


def count_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the inode of every file the log fsyncs from now on, in order; a flush of
    the whole file system is recorded as 0."""
    synced: list[int] = []
    real = files.datasync
    real_flush = files.sync_file_system

    def datasync(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        real(fd)

    def sync_file_system(fd: int) -> None:
        synced.append(0)
        real_flush(fd)

    for module in (log_module, byvault):
        monkeypatch.setattr(module, "datasync", datasync)
    monkeypatch.setattr(log_module, "sync_file_system", sync_file_system)
    return synced


def test_appends_queued_together_are_written_as_one_batch_in_queue_order(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    with AuditLog(directory, on_commit=batches.append) as log:
        synced = count_fsyncs(monkeypatch)
        appenders = queue_appends(log, directory, 12)

        assert [appender.error for appender in appenders] == [None] * 12
        assert [appender.index for appender in appenders] == list(range(12))
        assert batches == [12]
        assert [entry["detail"]["n"] for entry in log.entries()] == list(range(12))
        # One fsync, of entries.jsonl, where one append at a time would have made 12.
        assert synced == [(directory / "entries.jsonl").stat().st_ino]
    monkeypatch.undo()

    with AuditLog(directory) as again:
        assert again.recovered == []
        assert_log_verifies(again)


def test_derived_files_are_flushed_together_each_time_the_mark_moves(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "DURABLE_EVERY", 5)
    entries = directory / "entries.jsonl"
    with AuditLog(directory) as log:
        synced = count_fsyncs(monkeypatch)
        for n in range(12):
            log.append_event(event(n))
        line = entries.stat().st_ino
        # One fsync of entries.jsonl an append; the derived files only at entries 5 and 10.
        assert synced == [line] * 5 + [0] + [line] * 5 + [0] + [line] * 2
        assert (directory / "durable.json").read_bytes() == b'{"size":10}'
    assert synced[-1] == 0
    assert (directory / "durable.json").read_bytes() == b'{"size":12}'


def test_a_mark_another_writer_moved_is_kept(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_module, "DURABLE_EVERY", 4)
    with AuditLog(directory) as behind, AuditLog(directory) as ahead:
        fill(behind, 3)
        fill(ahead, 5)
        assert (directory / "durable.json").read_bytes() == b'{"size":8}'
        behind.close()
        assert (directory / "durable.json").read_bytes() == b'{"size":8}'


def test_entries_appended_together_are_one_batch_with_one_fsync(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    with AuditLog(directory, on_commit=batches.append) as log:
        fill(log, 2)
        synced = count_fsyncs(monkeypatch)
        entries = [event(n).to_json() for n in range(2, 5)]
        assert log.append_all(entries) == [2, 3, 4]
        assert log.append_all([]) == []
        assert batches == [1, 1, 3]
        assert synced == [(directory / "entries.jsonl").stat().st_ino]
        assert [log.entry(index) for index in (2, 3, 4)] == entries
        with pytest.raises(ValueError, match="pseudonym"):
            log.append_all([event(5).to_json(), {**event(6).to_json(), "vault": "../x"}])
        assert log.size() == 5
        assert_log_verifies(log)


def test_an_append_alone_is_written_at_once_in_a_batch_of_its_own(directory: Path) -> None:
    batches: list[int] = []
    with AuditLog(directory, on_commit=batches.append) as log:
        assert [log.append_event(event(n)) for n in range(3)] == [0, 1, 2]
        assert batches == [1, 1, 1]
        assert log.waiting() == 0


def test_many_threads_appending_at_once_all_land_and_survive_reopen(directory: Path) -> None:
    batches: list[int] = []
    returned: dict[str, list[int]] = {}

    def write(writer: str) -> None:
        returned[writer] = [log.append_event(event(n, writer=writer)) for n in range(25)]

    with AuditLog(directory, on_commit=batches.append) as log:
        threads = [threading.Thread(target=write, args=(f"thread-{t}",)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sum(batches) == 200

    with AuditLog(directory) as again:
        assert again.recovered == []
        assert sorted(i for indexes in returned.values() for i in indexes) == list(range(200))
        for writer, indexes in returned.items():
            assert indexes == sorted(indexes)
            assert [again.entry(i)["detail"] for i in indexes] == [
                {"n": n, "writer": writer} for n in range(25)
            ]
        for key in VAULTS:
            assert all(again.entry(i)["vault"] == key for i in again.indexes_for(key))
        assert_log_verifies(again)


def failing_once(real: Callable[[int], None]) -> Callable[[int], None]:
    """A datasync whose first call fails as a dying disk would."""
    calls = 0

    def datasync(fd: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    return datasync


def test_a_batch_that_cannot_be_written_fails_every_append_in_it(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(directory) as log:
        for n in range(3):
            log.append_event(event(n))
        root = log.root()
        monkeypatch.setattr(log_module, "datasync", failing_once(files.datasync))
        appenders = queue_appends(log, directory, 5)
        monkeypatch.undo()

        for appender in appenders:
            assert isinstance(appender.error, StorageError)
            assert "Input/output error" in str(appender.error)
            assert appender.index is None
        assert log.size() == 3
        assert log.append_event(event(3)) == 3
        assert any(message.startswith("entries.jsonl: cut") for message in log.recovered)
        assert log.root(3) == root
        assert [entry["detail"]["n"] for entry in log.entries()] == [0, 1, 2, 3]
        assert_log_verifies(log)


def test_a_leader_that_cannot_take_the_lock_fails_only_its_own_append(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(directory) as log:
        real = fcntl.flock

        def flock(fd: int, operation: int) -> None:
            monkeypatch.setattr(fcntl, "flock", real)
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(fcntl, "flock", flock)
        with pytest.raises(StorageError, match="No locks available"):
            log.append_event(event(0))

        assert log.waiting() == 0
        assert log.append_event(event(1)) == 0
        assert log.entry(0)["detail"]["n"] == 1


# Threads of a process killed at any moment.


def threads_write_for_ever(directory: Path, writers: list[str], sender: Connection) -> None:
    """Append from a thread per writer for ever, reporting each (writer, n, index) returned."""
    sending = threading.Lock()

    def write(writer: str) -> None:
        n = 0
        while True:
            index = log.append_event(event(n, writer=writer))
            with sending:
                sender.send((writer, n, index))
            n += 1

    with AuditLog(directory) as log:
        threads = [threading.Thread(target=write, args=(writer,)) for writer in writers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.mark.slow
def test_threads_killed_at_any_moment_keep_every_append_that_returned(directory: Path) -> None:
    AuditLog(directory).close()
    for round_ in range(3):
        writers = [f"round-{round_}-thread-{t}" for t in range(4)]
        writer = ReportingWriter(threads_write_for_ever, directory, writers)
        seen: list[tuple[str, int, int]] = [next(writer.reports) for _ in range(40 + 7 * round_)]
        seen.extend(writer.kill())
        assert writer.process.exitcode == -signal.SIGKILL

        with AuditLog(directory, sync="none") as log:
            for writer, n, index in seen:
                assert log.entry(index)["detail"] == {"n": n, "writer": writer}
            entries = list(log.entries())
            for writer in writers:
                mine = [e["detail"]["n"] for e in entries if e["detail"]["writer"] == writer]
                returned = sum(1 for reported, _, _ in seen if reported == writer)
                # Each thread's appends in the order it made them; at most one more than
                # it saw return (an append in flight, or returned but not yet reported).
                assert mine == list(range(len(mine)))
                assert returned <= len(mine) <= returned + 1
            assert_log_verifies(log)


def test_a_file_system_flush_uses_syncfs_or_else_sync(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory.mkdir()
    fd = os.open(directory, os.O_RDONLY)
    try:
        files.sync_file_system(fd)
        flushed: list[str] = []
        monkeypatch.setattr(files, "_syncfs", None)
        monkeypatch.setattr(os, "sync", lambda: flushed.append("sync"))
        files.sync_file_system(fd)
        assert flushed == ["sync"]

        def failing(_fd: int) -> int:
            ctypes.set_errno(errno.EIO)
            return -1

        monkeypatch.setattr(files, "_syncfs", failing)
        with pytest.raises(OSError, match="Input/output error"):
            files.sync_file_system(fd)
    finally:
        os.close(fd)
