"""Exporting the audit log with a signed checkpoint, and verifying an export offline.

An export is JSON lines (UTF-8), written by :func:`export_log`::

    {"format": "vrm-audit-export/1", "since": N, "size": S, "prefix": [hex, ...]}
    {"index": N, "entry": {...event...}, "leaf": "<hex leaf hash the log holds>"}
    ...                                   (one line per entry, N to S - 1, in order)
    {"checkpoint": "<signed note of the tree of S entries>"}

``prefix`` is empty when ``since`` is 0. Otherwise it holds the hashes of the perfect
subtrees covering entries ``[0, since)`` (largest first, as the binary digits of ``since``
split it): with them and the leaves from ``since`` on, the verifier recomputes the root of
the whole tree. They are not trusted: a wrong one only makes the root fail to match.

:func:`verify_export` needs nothing but the file, the public key (and its note key name)
and optionally an older checkpoint. It reads the file with :func:`read_export` (parsing
and hashing each line once) and checks it with :func:`check_export`, which reports one
:class:`Problem` for each failure, naming an entry index where one can be named:

* every line parses and the header is this format;
* index continuity: the n-th entry line must say ``index since + n``. The first line that
  breaks it is reported at ``min(found, expected)`` -- that is the first index that is
  missing, out of place or duplicated. A dropped event at i, two events swapped at i and
  i + 1, and a line inserted at i (carrying index i, so i appears twice) are all reported
  at i. Only the first break is reported; everything after it is shifted.
* every entry's leaf: ``SHA-256(0x00 || canonical JSON of the entry)`` must equal the
  ``leaf`` stated beside it; an edited event is reported at its index (each one, up to
  :data:`MAX_LEAF_PROBLEMS`).
* the checkpoint's signature, and that its size is the export's end: a truncated export
  (tail dropped) is reported at the first missing index; an export longer than the
  checkpoint at the first index beyond it.
* the root over the stated leaves must equal the signed root. Together with the leaf check
  this is the same as recomputing the root from the events themselves. It catches a
  rewrite that also replaced the leaf hashes (and an insertion that renumbered every later
  line), but a root alone cannot say *which* entry changed, so this problem names no index.
* with a previous checkpoint (same key): it must be no larger than this one, and the root
  of the first ``previous.size`` entries must equal its root -- with every entry present
  this is the same as an RFC 9162 consistency check. A history rewritten and re-signed
  after the previous checkpoint is reported here as "entries 0 to previous.size - 1 do not
  match the previous checkpoint", again without a single index. When ``since`` is past
  the previous size, the prefix cannot be recomputed and that is reported as a problem.

The report is ``ok`` only when there is no problem at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from vault.audit.checkpoint import Checkpoint, PublicKeys, parse_checkpoint, verify_checkpoint
from vault.audit.errors import CheckpointError
from vault.audit.log import AuditLog
from vault.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    canonical_json,
    leaf_hash,
    node_hash,
    root_by_levels,
    split_point,
    subtree_hash_of,
)
from vault.private_files import private_output

FORMAT = "vrm-audit-export/1"
MAX_LEAF_PROBLEMS = 20

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an export; ``index`` is the entry it names, if it names one."""

    index: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.index is None else f"entry {self.index}: {self.message}"


@dataclass
class VerifyReport:
    """What :func:`verify_export` found: problems in the order found, and the checkpoint."""

    problems: list[Problem] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    entries: int = 0
    since: int = 0

    @property
    def ok(self) -> bool:
        """True only when nothing is wrong."""
        return not self.problems

    @property
    def first_bad_index(self) -> int | None:
        """The lowest entry index any problem names."""
        indexes = [p.index for p in self.problems if p.index is not None]
        return min(indexes) if indexes else None

    def add(self, index: int | None, message: str) -> None:
        """Record one problem."""
        self.problems.append(Problem(index, message))


def prefix_ranges(since: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``[start, end)`` covering ``[0, since)``, largest first."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for bit in reversed(range(since.bit_length())):
        if since >> bit & 1:
            ranges.append((start, start + (1 << bit)))
            start += 1 << bit
    return ranges


def export_log(
    log: AuditLog,
    out: Path,
    checkpoint_text: str,
    since: int = 0,
    *,
    progress: Progress | None = None,
) -> int:
    """Write entries ``since`` to the checkpoint's size to ``out`` (mode 0600).

    ``checkpoint_text`` must be a checkpoint of ``log`` (its size no larger than the log's);
    returns the number of entries written.
    """
    checkpoint = parse_checkpoint(checkpoint_text)
    size = checkpoint.size
    if size > log.size():
        raise CheckpointError(f"the checkpoint's size {size} is beyond the log's {log.size()}")
    if not 0 <= since <= size:
        raise CheckpointError(f"--since {since} is not between 0 and the tree size {size}")
    if log.root(size) != checkpoint.root:
        raise CheckpointError("the checkpoint's root is not the log's root at its size")
    prefix = _prefix_hashes(log, since)
    with private_output(out) as handle:
        header = {"format": FORMAT, "since": since, "size": size, "prefix": prefix}
        handle.write(_line(header))
        for index, entry in enumerate(log.entries(since, size), start=since):
            leaf = log.leaf_hash(index).hex()
            handle.write(_line({"index": index, "entry": entry, "leaf": leaf}))
            if progress is not None:
                progress(index + 1 - since, size - since)
        handle.write(_line({"checkpoint": checkpoint_text}))
    return size - since


def verify_export(
    path: Path,
    public_key_raw: PublicKeys,
    key_name: str,
    previous_checkpoint_text: str | None = None,
) -> VerifyReport:
    """Check an export against its signed checkpoint (and an older one); see the module."""
    with path.open("r", encoding="utf-8") as handle:
        read = read_export(handle.read().split("\n"))
    return check_export(read, public_key_raw, key_name, previous_checkpoint_text)


@dataclass(frozen=True)
class EntryLine:
    """One entry line of an export as read: the index and leaf it states, and the leaf
    its event hashes to (``computed``; empty when the line holds no event)."""

    index: object
    stated: bytes | None
    computed: bytes
    has_entry: bool


@dataclass(frozen=True)
class ReadExport:
    """An export split into its lines and hashed, before anything is checked.

    ``header`` is the first JSON line and ``checkpoint`` the last, if it holds one;
    ``unreadable`` are the problems of lines that are not JSON objects.
    """

    header: dict[str, Any] | None
    entries: list[EntryLine]
    checkpoint: dict[str, Any] | None
    unreadable: list[Problem]


def read_export(lines: Iterable[str]) -> ReadExport:
    """Parse an export's lines and hash each event; every check is left to
    :func:`check_export`, so the costly part is done once per line."""
    report = VerifyReport()
    docs = list(_documents([line for line in lines if line.strip()], report))
    header = docs[0] if docs else None
    body = docs[1:]
    checkpoint = body.pop() if body and "checkpoint" in body[-1] else None
    entries = [_entry_line(doc) for doc in body]
    return ReadExport(header, entries, checkpoint, report.problems)


def check_export(
    read: ReadExport,
    public_key_raw: PublicKeys,
    key_name: str,
    previous_checkpoint_text: str | None = None,
) -> VerifyReport:
    """Check a read export against its signed checkpoint (and an older one)."""
    report = VerifyReport(problems=list(read.unreadable))
    if read.header is None:
        report.add(None, "the export is empty")
        return report
    header = _header(read.header, report)
    if header is None:
        return report
    since, stated_size, prefix = header
    report.since = since
    leaves = _check_entries(read.entries, since, report)
    report.entries = len(leaves)
    end = since + len(leaves)
    if stated_size != end:
        where = min(stated_size, end)
        report.add(where, f"the header says the export ends at {stated_size}, it ends at {end}")
    checkpoint = _checkpoint(read.checkpoint, public_key_raw, key_name, report)
    if checkpoint is None:
        return report
    report.checkpoint = checkpoint
    if checkpoint.size > end:
        report.add(end, f"missing: the checkpoint commits to {checkpoint.size} entries")
    elif checkpoint.size < end:
        report.add(checkpoint.size, f"beyond the checkpoint's {checkpoint.size} entries")
    known = _Tree(prefix, since, leaves)
    if known.root(end) != checkpoint.root:
        report.add(None, f"the root of the {end} entries does not match the signed checkpoint")
    if previous_checkpoint_text is not None:
        _check_previous(previous_checkpoint_text, public_key_raw, key_name, known, end, report)
    return report


class _Tree:
    """Subtree hashes from the export: the prefix's perfect subtrees, then stated leaves."""

    def __init__(self, prefix: Sequence[bytes], since: int, leaves: Sequence[bytes]) -> None:
        self._known = dict(zip(prefix_ranges(since), prefix, strict=True))
        self._since = since
        self._leaves = leaves

    def root(self, size: int) -> bytes:
        """The root of the first ``size`` entries (at least ``since`` of them)."""
        if not self._since:
            return root_by_levels(self._leaves[:size])
        return self._mth(0, size) if size else EMPTY_ROOT

    def _mth(self, start: int, end: int) -> bytes:
        known = self._known.get((start, end))
        if known is not None:
            return known
        if end - start == 1:
            if start < self._since:
                raise CheckpointError(f"entry {start} is before the export and its prefix")
            return self._leaves[start - self._since]
        middle = start + split_point(end - start)
        return node_hash(self._mth(start, middle), self._mth(middle, end))


def _prefix_hashes(log: AuditLog, since: int) -> list[str]:
    if since == 0:
        return []
    subtree = subtree_hash_of([log.leaf_hash(i) for i in range(since)])
    return [subtree(start, end).hex() for start, end in prefix_ranges(since)]


def _line(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"


def _documents(lines: list[str], report: VerifyReport) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        try:
            doc = json.loads(line, object_pairs_hook=_without_repeats)
        except _RepeatedKey as repeated:
            # A reader keeping the first of two values would see another event than the
            # one hashed (json keeps the last): such a line is refused, not read.
            report.add(None, f"line {number} repeats the key {repeated.key!r}")
            continue
        except (ValueError, RecursionError):
            report.add(None, f"line {number} is not JSON")
            continue
        if not isinstance(doc, dict):
            report.add(None, f"line {number} is not a JSON object")
            continue
        yield doc


class _RepeatedKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"repeated key {key!r}")
        self.key = key


def _without_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _RepeatedKey(key[:40])
        found[key] = value
    return found


def _header(doc: dict[str, Any], report: VerifyReport) -> tuple[int, int, list[bytes]] | None:
    if doc.get("format") != FORMAT:
        report.add(None, f"the first line is not a {FORMAT} header")
        return None
    since, size, prefix = doc.get("since"), doc.get("size"), doc.get("prefix", [])
    if not (_is_size(since) and _is_size(size) and isinstance(prefix, list)):
        report.add(None, "the header's since, size or prefix is malformed")
        return None
    hashes = [_hash(h) for h in prefix]
    good = [h for h in hashes if h is not None]
    if len(good) != len(hashes) or len(good) != len(prefix_ranges(since)):
        report.add(None, f"the header's prefix does not hold the hashes for since={since}")
        return None
    return since, size, good


def _entry_line(doc: dict[str, Any]) -> EntryLine:
    if "entry" not in doc:
        return EntryLine(doc.get("index"), None, b"", has_entry=False)
    return EntryLine(doc.get("index"), _hash(doc.get("leaf")), _leaf_of(doc["entry"]), True)


def _check_entries(entries: Sequence[EntryLine], since: int, report: VerifyReport) -> list[bytes]:
    """Check index continuity and each event against its stated leaf; return the leaves
    the root is computed from (the stated ones, or the computed ones where none is stated).

    An intact export passes with a few list comparisons; the line by line walk runs only
    to find what is wrong.
    """
    indexes = [line.index for line in entries]
    if indexes != list(range(since, since + len(entries))):
        _report_discontinuity(indexes, since, report)
    leaves = [line.stated if line.stated is not None else line.computed for line in entries]
    if [line.computed for line in entries] != leaves or not all(e.has_entry for e in entries):
        _report_bad_lines(entries, since, report)
    return leaves


def _report_discontinuity(indexes: Sequence[object], since: int, report: VerifyReport) -> None:
    """Report the first line whose index breaks the sequence ``since, since + 1, ...``."""
    for position, index in enumerate(indexes):
        expected = since + position
        if index == expected and _is_count(index):
            continue
        if _is_count(index):
            report.add(
                min(index, expected),
                f"out of sequence: line {position + 2} holds index {index} "
                f"where {expected} was expected (dropped, reordered or inserted)",
            )
        else:
            report.add(expected, f"line {position + 2} has no valid index")
        return


def _report_bad_lines(entries: Sequence[EntryLine], since: int, report: VerifyReport) -> None:
    """Report lines without an event, and events that do not match their stated leaf."""
    leaf_problems = 0
    for position, line in enumerate(entries):
        expected = since + position
        if not line.has_entry:
            report.add(expected, f"line {position + 2} holds no entry")
        elif line.computed != line.stated and leaf_problems < MAX_LEAF_PROBLEMS:
            leaf_problems += 1
            label = line.index if _is_count(line.index) else expected
            report.add(label, "the event does not match its leaf hash (edited)")


def _checkpoint(
    doc: dict[str, Any] | None, public_raw: PublicKeys, key_name: str, report: VerifyReport
) -> Checkpoint | None:
    text = None if doc is None else doc.get("checkpoint")
    if not isinstance(text, str):
        report.add(None, "the export does not end with a checkpoint line")
        return None
    try:
        checkpoint = verify_checkpoint(text, public_raw, key_name)
    except CheckpointError as error:
        report.add(None, f"the checkpoint is refused: {error}")
        return None
    if checkpoint.origin != key_name:
        report.add(None, f"the checkpoint is of another log ({checkpoint.origin[:80]!r})")
        return None
    return checkpoint


def _check_previous(
    text: str, public_raw: PublicKeys, key_name: str, tree: _Tree, end: int, report: VerifyReport
) -> None:
    try:
        previous = verify_checkpoint(text, public_raw, key_name)
    except CheckpointError as error:
        report.add(None, f"the previous checkpoint is refused: {error}")
        return
    if previous.origin != key_name:
        report.add(None, f"the previous checkpoint is of another log ({previous.origin[:80]!r})")
        return
    if previous.size > end:
        report.add(
            None,
            f"the previous checkpoint has {previous.size} entries, more than "
            f"this export's {end}: the log shrank",
        )
        return
    if previous.size < report.since:
        report.add(
            None,
            f"the export starts at {report.since}, after the previous "
            f"checkpoint's size {previous.size}: export with a smaller --since",
        )
        return
    if tree.root(previous.size) != previous.root:
        last = previous.size - 1
        report.add(
            None, f"entries 0 to {last} do not match the previous checkpoint: history was rewritten"
        )


def _leaf_of(entry: object) -> bytes:
    try:
        return leaf_hash(canonical_json(entry))
    except (TypeError, ValueError):
        return b""


def _hash(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if len(raw) == HASH_SIZE else None


MAX_SIZE = 2**63 - 1
"""The largest log size or index an export may state (more than any log could hold)."""


def _is_size(value: object) -> TypeGuard[int]:
    return _is_count(value) and value <= MAX_SIZE


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
