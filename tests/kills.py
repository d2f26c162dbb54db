"""A writer in a process of its own, killed at any moment: what the crash tests share.

The writer reports its progress down a pipe (each value once the write it stands for has
returned), so the test knows, without a clock, what must have survived the kill.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

SPAWN = multiprocessing.get_context("spawn")


class ReportingWriter:
    """``target(*args, sender)`` started in a spawned process; its reports, in order."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        receiver, sender = SPAWN.Pipe(duplex=False)
        self.process = SPAWN.Process(target=target, args=(*args, sender))
        self.process.start()
        sender.close()
        self._receiver = receiver
        self.reports: Iterator[Any] = received(receiver)

    def ready(self) -> bool:
        """Whether a report is waiting to be read."""
        return self._receiver.poll()

    def kill(self) -> list[Any]:
        """SIGKILL the writer, wait for it (bounded) and return the reports not yet read."""
        assert self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(timeout=60)
        return list(self.reports)


def received(receiver: Connection) -> Iterator[Any]:
    """Everything sent down the pipe, until the sending process is gone."""
    with receiver:
        while True:
            try:
                yield receiver.recv()
            except EOFError:
                return
