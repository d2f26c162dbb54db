"""Where vault documents and shared tables are kept, behind one Protocol.

:func:`open_store` picks a backend by name from configuration. Each backend module is
imported only when asked for, so the storage library of one (tinydb, later psycopg) is
never a dependency of code that uses another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vault.storage.base import Document, Store

__all__ = ["Document", "Store", "open_store"]


def open_store(kind: str, *, root: Path | None = None, **options: object) -> Store:
    """Open the store backend named ``kind`` ("tinydb" or "memory").

    ``root`` is the directory a file-based backend keeps its data in; the memory backend
    ignores it, so switching a configuration to it changes nothing else. ``options`` go to
    the backend's constructor (for example ``shards`` for TinyDB). Raise ValueError for an
    unknown kind, naming the known ones.
    """
    try:
        opener = _OPENERS[kind]
    except KeyError:
        known = ", ".join(sorted(_OPENERS))
        raise ValueError(f"unknown store kind {kind!r}; known kinds: {known}") from None
    return opener(root, options)


def _open_tinydb(root: Path | None, options: dict[str, Any]) -> Store:
    from vault.storage.tinydb import TinyDBStore

    if root is None:
        raise ValueError("the tinydb store needs root, the directory to keep its files in")
    return TinyDBStore(root, **options)


def _open_memory(root: Path | None, options: dict[str, Any]) -> Store:
    from vault.storage.memory import MemoryStore

    return MemoryStore(**options)


#: Backends by name. A new one (PostgreSQL) is one more opener that imports its module.
_OPENERS: dict[str, Callable[[Path | None, dict[str, Any]], Store]] = {
    "memory": _open_memory,
    "tinydb": _open_tinydb,
}
