"""Files a command writes for its user that hold what must stay private (an export)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


@contextmanager
def private_output(path: Path) -> Iterator[TextIO]:
    """A text file to write ``path`` through, readable by its owner only (mode 0600).

    It is written beside ``path`` under a temporary name created exclusively and never
    through a link, then renamed over ``path`` when the block ends without an error: an
    existing file there keeps neither its content nor its looser mode, a link there is
    replaced rather than followed, and a failed write leaves ``path`` as it was. A
    directory that does not exist fails at once, before the block runs.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
