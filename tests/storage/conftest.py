"""The ``store`` fixture: every test that takes it runs once per backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vault.storage import Store, open_store

#: How a test opens each backend, by id. A new backend is one more entry here (a
#: PostgreSQL one would also skip itself when no test server is configured).
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "memory": lambda tmp_path: open_store("memory"),
    "tinydb": lambda tmp_path: open_store("tinydb", root=tmp_path / "store"),
}


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store of each backend in turn, closed after the test."""
    opened = BACKENDS[request.param](tmp_path)
    yield opened
    opened.close()
