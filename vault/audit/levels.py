"""The log's Merkle tree on disk: one file of hashes per tree level.

``level-KK.bin`` holds, at byte ``32 * j``, the hash of the complete subtree over leaves
``[j * 2**K, (j + 1) * 2**K)``; ``level-00.bin`` holds the leaf hashes. Only complete,
aligned subtrees are stored, so a hash once written never changes: appending leaf ``i``
writes its hash and one node for each subtree it completes (O(log n) writes, two on
average), and nothing earlier is rewritten. For ``n`` leaves level ``K`` holds exactly
``n >> K`` hashes; anything past that is the torn tail of an unfinished append.

Any subtree the RFC's recursive split produces is a complete aligned one (one read) or
splits into one of those and a smaller right part, so a root or proof costs O(log n) reads.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from vault.audit.errors import LogCorrupted
from vault.audit.files import file_size, open_file, read_exact, write_at
from vault.audit.merkle import HASH_SIZE, node_hash, split_point

_LEVEL_FILE = re.compile(r"level-(\d{2})\.bin")


class TreeLevels:
    """The level files under ``directory``, opened as they are needed and kept open."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._labels = [f"level-{level:02d}.bin" for level in range(64)]
        self._names = [os.path.join(directory, label) for label in self._labels]
        self._fds: dict[int, int] = {}
        self._opening = threading.Lock()

    def path(self, level: int) -> Path:
        """The file of ``level``."""
        return Path(self._names[level])

    def on_disk(self) -> Iterator[int]:
        """The levels that have a file, in no particular order."""
        for name in os.listdir(self._directory):
            if match := _LEVEL_FILE.fullmatch(name):
                yield int(match.group(1))

    def length(self, level: int) -> int:
        """The length in bytes of the level's file (0 if it has none)."""
        if level in self._fds:
            return file_size(self._fds[level])
        try:
            return os.stat(self._names[level]).st_size
        except FileNotFoundError:
            return 0

    def read(self, level: int, position: int) -> bytes:
        """The hash at ``position`` of ``level``."""
        offset = position * HASH_SIZE
        return read_exact(self._fd(level), HASH_SIZE, offset, self._labels[level])

    def read_many(self, level: int, count: int) -> bytes:
        """The first ``count`` hashes of ``level``, concatenated."""
        if count == 0:
            return b""
        return read_exact(self._fd(level), count * HASH_SIZE, 0, self._labels[level])

    def stored(self, level: int, first: int, count: int) -> bytes:
        """Up to ``count`` hashes of ``level`` from ``first``: as many as the file holds."""
        return os.pread(self._fd(level), count * HASH_SIZE, first * HASH_SIZE)

    def write(self, level: int, position: int, value: bytes) -> None:
        """Store ``value`` (one hash, or several in a row) at ``position`` of ``level``."""
        write_at(self._fd(level), value, position * HASH_SIZE)

    def truncate(self, level: int, count: int) -> None:
        """Cut ``level`` to its first ``count`` hashes."""
        os.ftruncate(self._fd(level), count * HASH_SIZE)

    def add_leaf(self, index: int, leaf: bytes) -> None:
        """Store leaf ``index`` and the node of every subtree it completes."""
        self.write(0, index, leaf)
        level, position, node = 0, index, leaf
        while position & 1:
            node = node_hash(self.read(level, position - 1), node)
            level, position = level + 1, position >> 1
            self.write(level, position, node)

    def node(self, level: int, position: int) -> bytes:
        """The hash at ``position`` of ``level`` (at least 1), from its two children."""
        left = self.read(level - 1, 2 * position)
        return node_hash(left, self.read(level - 1, 2 * position + 1))

    def subtree_hash(self, start: int, end: int) -> bytes:
        """The Merkle tree hash of leaves ``[start, end)``, all of them stored."""
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            level = width.bit_length() - 1
            return self.read(level, start >> level)
        middle = start + split_point(width)
        return node_hash(self.subtree_hash(start, middle), self.subtree_hash(middle, end))

    def close(self) -> None:
        """Close every open level file."""
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def _fd(self, level: int) -> int:
        fd = self._fds.get(level)
        return self._open(level) if fd is None else fd

    def _open(self, level: int) -> int:
        """Open the level's file once, even if readers in several threads ask at once."""
        if not 0 <= level < len(self._names):
            raise LogCorrupted(f"no tree has level {level}")
        with self._opening:
            if level not in self._fds:
                self._fds[level] = open_file(self._names[level])[0]
            return self._fds[level]
