"""Files a command writes for its user that hold what must stay private (an export)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from keys.files import private_temporary


@contextmanager
def private_output(path: Path) -> Iterator[TextIO]:
    """A text file to write ``path`` through, readable by its owner only (mode 0600).

    It is written beside ``path`` through :func:`keys.files.private_temporary`, then
    renamed over ``path`` when the block ends without an error: an existing file there
    keeps neither its content nor its looser mode, a link there is replaced rather than
    followed, and a failed write leaves ``path`` as it was. A directory that does not
    exist fails at once, before the block runs.
    """
    temporary, fd = private_temporary(path)
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
