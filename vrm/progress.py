"""Progress for long operations, on standard error.

On a terminal it is a bar redrawn in place; elsewhere (logs, CI) one line at each tenth of
the way, so a log shows the operation moving without thousands of lines.
"""

from __future__ import annotations

import io
import sys
import time
from typing import TextIO


class ProgressReporter:
    """Reports ``done`` out of ``total`` for one labelled operation."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self._label = label
        # Standard error closed (2>&-): the operation goes on, unreported.
        self._stream: TextIO = stream or sys.stderr or io.StringIO()
        self._tty = self._stream.isatty()
        self._started = time.monotonic()
        self._last_tenth = -1
        self._shown = False

    def update(self, done: int, total: int) -> None:
        """Record that ``done`` of ``total`` items are finished."""
        if total <= 0:
            return
        if self._tty:
            self._draw(done, total)
            return
        tenth = done * 10 // total
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self._line(done, total)

    def finish(self) -> None:
        """End the bar's line on a terminal."""
        if self._tty and self._shown:
            self._stream.write("\n")
            self._stream.flush()

    def _draw(self, done: int, total: int) -> None:
        width = 30
        filled = done * width // total
        bar = "#" * filled + "-" * (width - filled)
        self._stream.write(f"\r{self._label} [{bar}] {done}/{total} {self._eta(done, total)}")
        self._stream.flush()
        self._shown = True

    def _line(self, done: int, total: int) -> None:
        percent = done * 100 // total
        self._stream.write(f"{self._label}: {done}/{total} ({percent}%)\n")
        self._stream.flush()

    def _eta(self, done: int, total: int) -> str:
        elapsed = time.monotonic() - self._started
        if done == 0 or done == total:
            return f"{elapsed:.0f}s"
        return f"eta {elapsed * (total - done) / done:.0f}s"
