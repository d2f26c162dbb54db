"""The audit log: every event, in order, in append-only files under one Merkle tree.

Layout under the log's directory::

    log.json                    {"format":1}: the version of this layout, checked on open
    lock                        appenders hold an exclusive flock on it, one at a time
    durable.json                {"size":n}: every derived file below is on disk for the
                                first n entries (see Durability)
    entries.jsonl               entry i is line i: its canonical JSON, then "\\n"
    offsets.bin                 where line i ends in entries.jsonl: 8 bytes, big-endian
    level-00.bin, level-01.bin  the Merkle tree, one file of 32-byte hashes per level
                                (see vault.audit.levels); level-00.bin holds the leaves
    by-vault/<k[:2]>/<k>.bin    the indexes of the entries whose "vault" is k, 8 bytes
                                each (see vault.audit.byvault)

An entry is stored as given (for an event, ``Event.to_json()``) with no index added: its
index is its position, which the tree binds, and line i without its "\\n" is exactly the
leaf, so anyone can recompute a leaf hash from an exported event alone.

**Size.** The log holds as many entries as offsets.bin holds whole records. An append
writes, under the lock: the entry's line at the end of entries.jsonl, then its leaf hash
and the nodes it completes, its vault index record, and only then its offset record. So
a reader that finds an offset finds everything the entry needs in place.

**Group commit.** Appends made at once by threads of one process are written together
(see vault.audit.groupcommit): the first waiting for the lock takes, once it holds it,
every append queued by then, and writes them in queue order as one batch, each step above
for all of them before the next step for any. A batch is the unit of the fsync below: one
covers all its appends, so under load the fsyncs per append fall.

**Durability.** entries.jsonl is the record; every other file is derived from it and can
be recomputed. With ``sync="always"`` a batch fsyncs entries.jsonl once, after writing
its lines and before writing anything derived from them, and no append returns before
that: a returned append survives a crash of the process, the OS or the machine, and every
derived record on disk belongs to a line already durable. The derived files are not
fsynced per batch. Instead, once DURABLE_EVERY entries have been appended past the mark
in durable.json (and when the log is closed), the file system is flushed in one
``syncfs`` and the mark moved to the log's size: everything derived below the mark is on
disk. The flush is of the whole file system the log lives on (``syncfs``; elsewhere
``sync``, which on some systems may return before the data is written), under the lock,
so on a disk busy with other writes it can hold appends up for as long as that flush
takes. With ``sync="none"`` nothing is fsynced (the mark is still moved, without a
flush); a killed process still loses nothing, but an OS crash or power loss can lose
recent appends, or keep some of their files' pages and not others, which recovery repairs
only in part (:meth:`AuditLog.verify` finds what is left). It is for benchmarks and
tests.

**Recovery.** Nothing derived is trusted past the durable mark after a crash, and nothing
counts that entries.jsonl does not hold whole. On open, under the lock, the log reads
entries.jsonl from the mark (or from where the offsets end, if sooner) and rolls forward:
each complete line that is an entry in canonical form becomes the next entry (with
``sync``, entries.jsonl is fsynced before anything is derived from them), and the offsets
and the vault index records of the vaults those lines name are rewritten from the mark on
where they differ; level hashes that are missing or zeroed (what a crash leaves) are
recomputed, while a stored hash that is present and differs is kept, so that
:meth:`AuditLog.verify` still reports an entry edited by hand; anything past the new size
is cut. Offsets are cut back only past the first that differs, so a reader in another
process never sees the log shrink below what agrees with the entries. The first line that
is not whole, and all after it, is cut last, so a recovery that is itself cut short
leaves the sign for the next. So an append that wrote its line but died before its offset
(its caller never saw it return) is kept: an action may fail with its record kept, but
never happen without one. An append that found entries.jsonl longer than the last offset
(a writer killed mid-batch) does the same from the last offset. Each repair is logged as
a warning and kept in :attr:`AuditLog.recovered`; on a log closed cleanly, or left by a
live writer, nothing differs and nothing is reported. Offsets that point past the end of
entries.jsonl (which only a hand can cause) are cut and the whole vault index rebuilt.

**Readers** take no lock: they read the size once from offsets.bin and then only what that
size covers, all of which was written before its offset record.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import accumulate, pairwise
from pathlib import Path
from types import TracebackType
from typing import Any

from vault.audit import merkle
from vault.audit.byvault import VaultIndex, check_key
from vault.audit.errors import AuditError, LogCorrupted, NotInLog
from vault.audit.files import (
    datasync,
    file_size,
    make_dir,
    open_file,
    read_exact,
    replace_file,
    sync_dir,
    sync_file_system,
    write_at,
)
from vault.audit.groupcommit import CommitQueue, Pending
from vault.audit.levels import TreeLevels
from vault.audit.merkle import EMPTY_ROOT, HASH_SIZE, canonical_json
from vault.errors import StorageError
from vault.events import Event

#: Version of the layout above, recorded in ``log.json``.
FORMAT = 1

#: How many entries may be appended past the durable mark before the derived files are
#: flushed and the mark moved: what recovery after a crash recomputes at most, give or take
#: a batch.
DURABLE_EVERY = 1024

#: The values of AuditLog's ``sync``: fsync every append, or leave flushing to the OS.
SYNC_MODES = ("always", "none")

logger = logging.getLogger(__name__)

_OFFSET = struct.Struct(">Q")
_ZERO_HASH = bytes(HASH_SIZE)
_CHUNK = 1024


class AuditLog:
    """The append-only, tamper-evident event log stored in ``directory``.

    Any number of processes (and threads) may open and append to the same directory at
    once: appends serialise on the lock and none is lost, and the appends of one process's
    threads share fsyncs (group commit). ``sync`` is ``"always"`` or ``"none"`` (see the
    module docstring for what each promises). ``on_commit``, if given, is called with the
    number of appends in each batch once the batch is written (and synced): a hook for
    metrics and tests, which must neither raise nor append. Repairs made on open or
    since are listed in :attr:`recovered`, one sentence each, for the caller to show.
    """

    def __init__(
        self,
        directory: Path,
        *,
        sync: str = "always",
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {sync!r}")
        self.directory = Path(directory)
        self.recovered: list[str] = []
        self._sync = sync == "always"
        self._on_commit = on_commit
        self._mutex = threading.Lock()
        self._queue = CommitQueue()
        self._durable = 0
        self._fds: list[int] = []
        self._known = (0, 0)
        self._levels = TreeLevels(self.directory)
        self._index = VaultIndex(self.directory / "by-vault", sync=self._sync)
        # Index records are made durable by the flush that moves the mark, not one by one.
        self._batch_index = VaultIndex(self.directory / "by-vault", sync=False)
        # Not open yet: a failure below closes what was opened, and only that.
        self._lock = self._entries = self._offsets = -1
        try:
            make_dir(self.directory, sync=self._sync)
            self._lock = self._open("lock")
            self._entries = self._open("entries.jsonl")
            self._offsets = self._open("offsets.bin")
            with self._exclusive():
                if _check_format(self.directory / "log.json", sync=self._sync):
                    self._write_durable(0)
                self._recover(thorough=True)
        except BaseException:
            self.close()
            raise

    # Writing.

    def append(self, entry: Mapping[str, Any]) -> int:
        """Add ``entry`` (a JSON object) at the end of the log; return its index.

        With ``sync="always"`` its line is fsynced before it returns. Raises ValueError (or
        TypeError) for an entry that is not JSON or whose ``vault`` is not a pseudonym,
        before anything is written, and StorageError if the files cannot be written (the
        next append then recovers whatever this one left). Appends from several threads at
        once are written together, in the order they were queued, with one fsync (see the
        module docstring).
        """
        return self.append_all([entry])[0]

    def append_all(self, entries: Sequence[Mapping[str, Any]]) -> list[int]:
        """Add ``entries`` at the end of the log, in order and next to each other, in one
        batch (so with one fsync); return their indexes. Each is checked as by
        :meth:`append` before any is written."""
        mine = [
            Pending(
                canonical_json(entry if isinstance(entry, dict) else dict(entry)), _vault_of(entry)
            )
            for entry in entries
        ]
        if not mine:
            return []
        if self._queue.join(mine):
            self._lead(mine)
        for pending in mine:
            if pending.error is not None:
                raise pending.error
        return [pending.index for pending in mine]

    def append_event(self, event: Event) -> int:
        """Add ``event`` at the end of the log; return its index."""
        return self.append(event.to_json())

    def waiting(self) -> int:
        """How many appends of this process are queued for the next batch, not yet taken."""
        return self._queue.waiting()

    def rebuild_index(self) -> int:
        """Rebuild the whole per-vault index from entries.jsonl; return the entries indexed.

        For an index file lost or damaged outside a crash the log can see (deleted by
        hand, or pages lost in an OS crash with ``sync="none"``).
        """
        with self._exclusive():
            size, _ = self._recover()
            found = self._scan_vaults(size)
            self._index.replace_all(found)
        return sum(len(indexes) for indexes in found.values())

    def close(self) -> None:
        """Flush the derived files of a whole log, then close the log's files.

        Any later use fails rather than touch a reused descriptor. A log that is not whole
        (a writer died mid-batch) or cannot be flushed still closes, the latter with a
        warning: the next open recovers, from the mark.
        """
        if self._lock >= 0 and self._offsets >= 0:
            try:
                with self._exclusive():
                    size, torn = divmod(file_size(self._offsets), _OFFSET.size)
                    if not torn and file_size(self._entries) == self._end_of(size):
                        self._make_durable(size)
            except (OSError, AuditError) as exc:
                logger.warning("audit log %s: not flushed on close: %s", self.directory, exc)
        self._levels.close()
        while self._fds:
            os.close(self._fds.pop())
        self._lock = self._entries = self._offsets = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Reading.

    def size(self) -> int:
        """How many entries the log holds now."""
        return file_size(self._offsets) // _OFFSET.size

    def entry(self, index: int) -> dict[str, Any]:
        """Entry ``index`` as stored; NotInLog if there is none."""
        self._check_index(index, self.size())
        return _parse(index, self._line(index))

    def line(self, index: int) -> bytes:
        """Entry ``index`` exactly as stored: the bytes its leaf hash is computed over."""
        self._check_index(index, self.size())
        return self._line(index)

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[dict[str, Any]]:
        """Entries ``start`` to ``end - 1`` (to the current end by default), in order."""
        end = self._checked_size(end)
        if not 0 <= start <= end:
            raise NotInLog(f"no entries from {start} to {end}")
        return (_parse(index, line) for index, line in self._lines(start, end))

    def leaf_hash(self, index: int) -> bytes:
        """The Merkle leaf hash of entry ``index``, as stored in the tree."""
        self._check_index(index, self.size())
        return self._levels.read(0, index)

    def root(self, size: int | None = None) -> bytes:
        """The Merkle tree hash of the first ``size`` entries (all of them by default)."""
        size = self._checked_size(size)
        return self._levels.subtree_hash(0, size) if size else EMPTY_ROOT

    def root_from_entries(self, size: int | None = None) -> bytes:
        """The tree hash of the first ``size`` entries, recomputed from entries.jsonl alone.

        The stored tree is not read, so this is what the entries hash to now, whatever the
        level files say; compare it with a signed checkpoint to learn whether the log still
        holds what was signed. O(size).
        """
        size = self._checked_size(size)
        leaves = [merkle.leaf_hash(line) for _, line in self._lines(0, size)]
        return merkle.root_by_levels(leaves)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries."""
        size = self._checked_size(size)
        self._check_index(index, size)
        return merkle.inclusion_proof(index, size, self._levels.subtree_hash)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 proof that the tree of ``old_size`` entries is a prefix of ``new_size``."""
        new_size = self._checked_size(new_size)
        if not 0 <= old_size <= new_size:
            raise NotInLog(f"no consistency proof from size {old_size} to {new_size}")
        return merkle.consistency_proof(old_size, new_size, self._levels.subtree_hash)

    def indexes_for(self, key: str) -> list[int]:
        """The indexes of the entries whose ``vault`` is ``key``, in order.

        Records at or past the size (an unfinished append's) are ignored, and each entry
        listed is read to confirm it names ``key``: a record that does not, which only
        damage a crash cannot explain leaves, is skipped with a warning, so one vault's
        history never shows another's entry.
        """
        check_key(key)
        found: list[int] = []
        for index in self._indexed(key, self.size()):
            if _parse(index, self._line(index)).get("vault") == key:
                found.append(index)
            else:
                logger.warning(
                    "audit log %s: the by-vault index of %s lists entry %d, which "
                    "names another vault; rebuild_index() repairs it",
                    self.directory,
                    key,
                    index,
                )
        return found

    def verify(self) -> None:
        """Check the whole log against itself, as an auditor would; O(n), read-only.

        Every line must be canonical JSON whose leaf hash is the stored one, every stored
        node must be the hash of its children, and the per-vault index must list exactly
        the entries naming each vault. Raises LogCorrupted naming the first thing wrong.
        """
        size = self.size()
        leaves, vaults = self._verify_entries(size)
        self._verify_levels(leaves)
        self._verify_index(size, vaults)

    # Appending and recovery, under the lock (all but the last fsync of a batch).

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the log's lock against other threads (the mutex) and processes (flock)."""
        with self._mutex:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock, fcntl.LOCK_UN)

    def _lead(self, mine: list[Pending]) -> None:
        """Write every queued append (``mine`` among them) as one batch, then hand over."""
        batch: list[Pending] = []
        try:
            with self._exclusive():
                batch = self._queue.take()
                self._commit(batch)
            if self._on_commit is not None:
                self._on_commit(len(batch))
        except BaseException as exc:
            if not batch:
                self._queue.withdraw(mine)
                batch = mine
            self._fail(batch, mine, exc)
        finally:
            self._queue.finish(batch)

    def _fail(self, batch: list[Pending], mine: list[Pending], exc: BaseException) -> None:
        """Give each append of a batch that failed its own error; the leader's is ``exc``.

        Anything but an OSError (a bug, an interrupt) reaches the leader's caller as it is.
        """
        for pending in batch:
            if pending in mine and not isinstance(exc, OSError):
                pending.error = exc
            else:
                error = StorageError(f"cannot append to the audit log {self.directory}: {exc}")
                error.__cause__ = exc
                pending.error = error

    def _commit(self, batch: list[Pending]) -> None:
        """Write ``batch`` after the last entry: lines, fsync, hashes, index records, offsets.

        Each step is done for the whole batch. With ``sync`` entries.jsonl is fsynced once,
        before anything derived from the lines is written; the derived files are flushed
        only when the durable mark moves.
        """
        first, end = self._recover()
        ends = list(accumulate((len(pending.line) + 1 for pending in batch), initial=end))
        write_at(self._entries, b"".join(pending.line + b"\n" for pending in batch), end)
        if self._sync:
            self._sync_lines(end)
        for index, pending in enumerate(batch, start=first):
            self._levels.add_leaf(index, merkle.leaf_hash(pending.line))
        for index, pending in enumerate(batch, start=first):
            if pending.key is not None:
                self._add_to_index(pending.key, index)
        write_at(self._offsets, b"".join(map(_OFFSET.pack, ends[1:])), first * _OFFSET.size)
        size = first + len(batch)
        self._known = (size, ends[-1])
        for index, pending in enumerate(batch, start=first):
            pending.index = index
        if size - self._durable >= DURABLE_EVERY:
            self._make_durable(size)

    def _sync_lines(self, end: int) -> None:
        """Fsync entries.jsonl; if that fails, cut the batch's lines from ``end`` and raise.

        The batch's appends all fail, so their lines are taken back at once rather than
        kept by the next recovery (if the cut fails too, that recovery keeps them).
        """
        try:
            datasync(self._entries)
        except OSError:
            length = file_size(self._entries)
            with suppress(OSError):
                os.ftruncate(self._entries, end)
                self._report(f"entries.jsonl: cut the {length - end} bytes of a batch not synced")
            raise

    def _make_durable(self, size: int, *, force: bool = False) -> None:
        """Flush every derived file to disk, then move the durable mark to ``size``.

        Under the lock, with ``size`` the log's size. Another process may have moved the
        mark since this one last looked: then nothing is done unless ``size`` is at least
        DURABLE_EVERY past it, so several writers flush no more often than one. ``force``
        flushes and sets the mark whatever it was (recovery's own use).
        """
        mark = self._read_durable()
        if not force and mark is not None:
            moved = mark > self._durable and size - mark < DURABLE_EVERY
            if mark >= size or moved:
                self._durable = mark
                return
        if self._sync:
            sync_file_system(self._offsets)
        self._write_durable(size)

    def _read_durable(self) -> int | None:
        """The durable mark, 0 if it is unreadable, or None for a log made before marks."""
        try:
            found = json.loads((self.directory / "durable.json").read_bytes())
        except FileNotFoundError:
            return None
        except ValueError:
            found = None
        size = found.get("size") if isinstance(found, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            self._report("durable.json: unreadable, so every derived file is checked")
            return 0
        return size

    def _write_durable(self, size: int) -> None:
        replace_file(
            self.directory / "durable.json", canonical_json({"size": size}), sync=self._sync
        )
        self._durable = size

    def _add_to_index(self, key: str, index: int) -> None:
        cut = self._batch_index.add(key, index)
        if cut:
            self._report(
                f"by-vault index of {key}: cut {cut} record(s) at or past entry {index}, "
                "left by an append that never finished"
            )

    def _recover(self, *, thorough: bool = False) -> tuple[int, int]:
        """Roll forward from what can be trusted; return ``(size, end offset)``.

        An append writes its line first, so a writer that died mid-batch left entries.jsonl
        longer than the last offset, or a partial offset record. Unless ``thorough`` (as on
        open, which starts from the durable mark), a log without either sign is taken as
        whole: other damage is not a crash's, and :meth:`verify` finds it.
        """
        size, torn = divmod(file_size(self._offsets), _OFFSET.size)
        end = self._known[1] if self._known[0] == size else self._end_of(size)
        if not thorough and not torn and file_size(self._entries) == end:
            return size, end
        start = size
        mark: int | None = size
        if thorough:
            mark = self._read_durable()
            start = size if mark is None else min(mark, size)
            self._durable = start
        start, lost = self._within_entries(start)
        size, end = self._roll_forward(start, rebuild_index=lost)
        self._known = (size, end)
        if thorough and (mark is None or mark > size):
            # A log from before marks was fsynced whole, and a mark past the size (entries
            # cut by hand) promises too much: either way, flush and mark what is there now.
            self._make_durable(size, force=True)
        return size, end

    def _within_entries(self, start: int) -> tuple[int, bool]:
        """Lower ``start`` past offsets that point beyond entries.jsonl; return (start, any)."""
        length = file_size(self._entries)
        kept = start
        while kept and self._end_of(kept) > length:
            kept -= 1
        if kept < start:
            self._report(
                f"offsets.bin: cut the offsets of entries {kept} to {start - 1}, "
                "which point past the end of entries.jsonl"
            )
        return kept, kept < start

    def _roll_forward(self, start: int, *, rebuild_index: bool) -> tuple[int, int]:
        """Make every derived file agree with entries.jsonl from entry ``start`` on.

        The offsets below ``start`` are trusted. Each whole line after them is an entry:
        with ``sync`` entries.jsonl is fsynced first, so nothing is derived from a line
        that is not durable. Offsets, missing hashes and index records from ``start`` are
        rewritten where they differ, and the first line that is not whole is cut with all
        after it, last.
        """
        begin = self._end_of(start)
        length = file_size(self._entries)
        tail = read_exact(self._entries, length - begin, begin, "entries.jsonl")
        lines, vaults, used = _whole_lines(tail)
        if lines and self._sync:
            datasync(self._entries)
        size = start + len(lines)
        ends = list(accumulate((len(line) + 1 for line in lines), initial=begin))
        offsets = b"".join(map(_OFFSET.pack, ends[1:]))
        stored = os.pread(self._offsets, len(offsets), start * _OFFSET.size)
        same = start + _common_prefix(stored, offsets) // _OFFSET.size
        offsets_whole = same == size and file_size(self._offsets) == size * _OFFSET.size
        if not offsets_whole:
            # Readers never see offsets that disagree with the entries, nor fewer than agree.
            os.ftruncate(self._offsets, same * _OFFSET.size)
        self._roll_levels(start, size, lines)
        if rebuild_index:
            self._index.replace_all(self._scan_vaults(size))
            self._report("by-vault: rebuilt the whole index from entries.jsonl")
        else:
            self._roll_index(start, size, vaults, tail[used:])
        if not offsets_whole:
            write_at(self._offsets, offsets[(same - start) * _OFFSET.size :], same * _OFFSET.size)
            self._report(
                f"offsets.bin: rewrote the offsets of entries {same} to {size - 1}"
                if same < size
                else f"offsets.bin: cut what followed the offset of entry {size - 1}"
            )
        if used < len(tail):
            os.ftruncate(self._entries, begin + used)
            cut = len(tail) - used
            self._report(f"entries.jsonl: cut {cut} bytes of an unfinished entry {size}")
        return size, ends[-1]

    def _roll_levels(self, start: int, size: int, lines: list[bytes]) -> None:
        """Give each level exactly the hashes of ``size`` entries, checked from ``start``."""
        leaves = [merkle.leaf_hash(line) for line in lines]
        for level in sorted(set(range(size.bit_length() + 1)) | set(self._levels.on_disk())):
            wanted = size >> level
            length = self._levels.length(level)
            first = min(start >> level, length // HASH_SIZE, wanted)
            if first == wanted and length == wanted * HASH_SIZE:
                continue
            name = self._levels.path(level).name
            hashes = b"".join(
                leaves[position - start] if not level and position >= start
                else self._stored_node(level, position)
                for position in range(first, wanted)
            )  # fmt: skip
            stored = self._levels.stored(level, first, wanted - first)
            merged, kept = _keep_present(stored, hashes)
            if merged != stored:
                self._levels.write(level, first, merged)
                self._report(f"{name}: recomputed hashes {first} to {wanted - 1}")
            if kept:
                self._report(
                    f"{name}: kept {kept} hash(es) from {first} on that do not match the "
                    "entries, for verify() to report"
                )
            if length > wanted * HASH_SIZE:
                self._levels.truncate(level, wanted)
                extra = length - wanted * HASH_SIZE
                self._report(f"{name}: cut {extra} bytes past its {wanted} hashes")

    def _stored_node(self, level: int, position: int) -> bytes:
        """A hash recomputed from the files: a leaf from its entry, a node from below."""
        if level:
            return self._levels.node(level, position)
        return merkle.leaf_hash(self._line(position))

    def _roll_index(self, start: int, size: int, vaults: list[str | None], cut: bytes) -> None:
        """Give each vault named from ``start`` (``vaults``, one per entry) exactly its
        records from ``start`` on, and cut the records that the lines about to be cut left
        past ``size``."""
        named: dict[str, list[int]] = {}
        for index, key in enumerate(vaults, start=start):
            if key is not None:
                named.setdefault(key, []).append(index)
        for key, indexes in named.items():
            if self._batch_index.rewrite_from(key, start, indexes):
                self._report(f"by-vault index of {key}: rewrote its records from entry {start}")
        for key in _vaults_in(cut) - named.keys():
            if removed := self._batch_index.trim(key, size):
                self._report(
                    f"by-vault index of {key}: cut {removed} record(s) of unfinished entries"
                )

    def _report(self, message: str) -> None:
        logger.warning("audit log %s: %s", self.directory, message)
        self.recovered.append(message)

    # Reading the files.

    def _end_of(self, size: int) -> int:
        """Where the first ``size`` entries end in entries.jsonl."""
        return self._ends(size - 1, size)[-1] if size else 0

    def _ends(self, first: int, last: int) -> list[int]:
        """End offsets of entries ``first - 1`` to ``last - 1`` (entry -1 ends at 0)."""
        begin = max(first - 1, 0)
        raw = read_exact(
            self._offsets, (last - begin) * _OFFSET.size, begin * _OFFSET.size, "offsets.bin"
        )
        ends = [end for (end,) in _OFFSET.iter_unpack(raw)]
        return ends if first else [0, *ends]

    def _line(self, index: int) -> bytes:
        """Entry ``index``'s line without its newline: the bytes its leaf hashes."""
        return next(line for _, line in self._lines(index, index + 1))

    def _lines(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """``(index, line)`` of entries ``start`` to ``end - 1``, read a chunk at a time."""
        for first in range(start, end, _CHUNK):
            ends = self._ends(first, min(first + _CHUNK, end))
            if any(b <= a for a, b in pairwise(ends)):
                raise LogCorrupted(f"offsets.bin: the offsets after entry {first} do not rise")
            data = read_exact(self._entries, ends[-1] - ends[0], ends[0], "entries.jsonl")
            for index, (a, b) in enumerate(pairwise(ends), start=first):
                line = data[a - ends[0] : b - ends[0]]
                if not line.endswith(b"\n"):
                    raise LogCorrupted(f"entry {index} does not end its line in entries.jsonl")
                yield index, line[:-1]

    def _scan_vaults(self, size: int) -> dict[str, list[int]]:
        found: dict[str, list[int]] = {}
        for index, line in self._lines(0, size):
            for key in _vaults_in(line + b"\n"):
                found.setdefault(key, []).append(index)
        return found

    def _indexed(self, key: str, size: int) -> list[int]:
        """The index records of ``key`` below ``size``, unchecked."""
        return [index for index in self._index.read(key) if index < size]

    def _checked_size(self, size: int | None) -> int:
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise NotInLog(f"the log holds {current} entries: there is no tree of size {size}")
        return size

    @staticmethod
    def _check_index(index: int, size: int) -> None:
        if not 0 <= index < size:
            raise NotInLog(f"there is no entry {index} in a tree of size {size}")

    # Verification.

    def _verify_entries(self, size: int) -> tuple[list[bytes], dict[str, list[int]]]:
        """Check each line against its stored leaf hash; return the leaves and vaults seen."""
        stored = self._levels.read_many(0, size)
        leaves: list[bytes] = []
        vaults: dict[str, list[int]] = {}
        for index, line in self._lines(0, size):
            entry = _parse(index, line)
            if canonical_json(entry) != line:
                raise LogCorrupted(f"entry {index} is not in canonical JSON form")
            leaf = merkle.leaf_hash(line)
            if leaf != stored[index * HASH_SIZE : (index + 1) * HASH_SIZE]:
                raise LogCorrupted(f"entry {index} does not match its leaf hash in level-00.bin")
            leaves.append(leaf)
            if isinstance(entry.get("vault"), str):
                vaults.setdefault(entry["vault"], []).append(index)
        return leaves, vaults

    def _verify_levels(self, leaves: list[bytes]) -> None:
        """Recompute every stored node from the leaves and compare."""
        below, level = leaves, 1
        while len(below) >= 2:
            above = [merkle.node_hash(below[j], below[j + 1]) for j in range(0, len(below) - 1, 2)]
            stored = self._levels.read_many(level, len(above))
            if stored != b"".join(above):
                wrong = next(
                    j for j, node in enumerate(above) if stored[j * HASH_SIZE :][:HASH_SIZE] != node
                )
                first = wrong << level
                raise LogCorrupted(
                    f"level-{level:02d}.bin: hash {wrong} (entries {first} to "
                    f"{first + (1 << level) - 1}) is not the hash of its children"
                )
            below, level = above, level + 1

    def _verify_index(self, size: int, vaults: Mapping[str, list[int]]) -> None:
        for key in sorted(set(vaults) | set(self._index.keys())):
            if self._indexed(key, size) != vaults.get(key, []):
                raise LogCorrupted(
                    f"the by-vault index of {key} does not list exactly the entries naming it; "
                    "rebuild_index() repairs it"
                )

    def _open(self, name: str) -> int:
        fd, created = open_file(self.directory / name)
        self._fds.append(fd)
        if created and self._sync:
            sync_dir(self.directory)
        return fd


def _common_prefix(a: bytes, b: bytes) -> int:
    """How many bytes ``a`` and ``b`` share from the start."""
    return next(
        (n for n, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def _keep_present(stored: bytes, computed: bytes) -> tuple[bytes, int]:
    """``computed``, but with each hash ``stored`` holds whole and not zeroed kept as it
    is; return it and how many of those kept differ from what was computed.

    A hash past the durable mark that a crash did not keep is missing or zeroed; one
    present and different was changed by hand, and recovery must not hide that.
    """
    merged = bytearray(computed)
    kept = 0
    for offset in range(0, min(len(stored), len(computed)) // HASH_SIZE * HASH_SIZE, HASH_SIZE):
        hash_ = stored[offset : offset + HASH_SIZE]
        if hash_ != _ZERO_HASH and hash_ != computed[offset : offset + HASH_SIZE]:
            merged[offset : offset + HASH_SIZE] = hash_
            kept += 1
    return bytes(merged), kept


def _whole_lines(data: bytes) -> tuple[list[bytes], list[str | None], int]:
    """The whole entries at the start of ``data``, the vault each names (or None), and
    how many bytes they take.

    A line is whole if it ends in "\\n" and is a JSON object in canonical form whose
    ``vault``, if any, is a pseudonym: what an append writes, and not what a torn write or
    a lost page leaves.
    """
    lines: list[bytes] = []
    vaults: list[str | None] = []
    used = 0
    while (stop := data.find(b"\n", used)) >= 0:
        line = data[used:stop]
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict) or canonical_json(entry) != line:
                break
            vaults.append(_vault_of(entry))
        except (ValueError, TypeError, RecursionError):
            break
        lines.append(line)
        used = stop + 1
    return lines, vaults, used


def _vault_of(entry: Mapping[str, Any]) -> str | None:
    """The entry's vault pseudonym, checked, or None if it names no vault."""
    vault = entry.get("vault")
    return None if vault is None else check_key(vault)


def _vaults_in(data: bytes) -> set[str]:
    """The vault pseudonyms named by the complete lines in ``data`` (torn lines skipped)."""
    found: set[str] = set()
    for line in data.split(b"\n")[:-1]:
        try:
            entry = json.loads(line)
            found.add(check_key(entry["vault"]))
        except (ValueError, TypeError, KeyError):
            continue
    return found


def _parse(index: int, line: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError as exc:
        raise LogCorrupted(f"entry {index} is not valid JSON") from exc
    if not isinstance(entry, dict):
        raise LogCorrupted(f"entry {index} is not a JSON object")
    return entry


def _check_format(path: Path, *, sync: bool) -> bool:
    """Record the layout's version on first use (return True); refuse a log of another."""
    wanted = {"format": FORMAT}
    try:
        found = json.loads(path.read_bytes())
    except FileNotFoundError:
        replace_file(path, canonical_json(wanted), sync=sync)
        return True
    except ValueError as exc:
        raise LogCorrupted(f"{path} is not valid JSON") from exc
    if found != wanted:
        raise AuditError(f"{path} says {found}, but this code reads {wanted}")
    return False
