"""CPU time a vendor request costs the process that serves it, and what waiting on the
audit log's fsync adds to it.

``bench/oauth_throughput.py`` measures req/s under gunicorn and wrk, which swings with
whatever else the machine runs. This runs the same requests (the same app, fixtures and
phases) one at a time through Flask's test client in this process and reads
``time.process_time`` around them, which varies far less: it is the figure to compare
when changing a request path. Each endpoint is measured with the audit log as
``VRM_AUDIT_SYNC`` says (``always``: an fsync an append; ``none``: no fsync) and, with
``--sleep``, as ``always`` but with every fsync of the log replaced by a sleep of the
median fsync time just measured: a request that costs as much CPU then as under
``always`` pays for the wait, not for the fsync. The ``append`` column is the CPU spent
inside the audit log's append alone.

    python bench/request_cpu.py                 # 500 requests an endpoint, each mode
    python bench/request_cpu.py --requests 250 --modes none always
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import oauth_throughput as throughput

from vault.audit import log as audit_log
from vrm.app import create_app
from vrm.config import load_config
from vrm.progress import ProgressReporter

MODES = ("none", "always", "sleep")
ENDPOINTS = ("hello world", "profile", "client credentials", "refresh")


def fsync_seconds(directory: Path, samples: int = 200) -> float:
    """The median time of an fdatasync after a small append, on ``directory``'s disk."""
    path = directory / "fsync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    times = []
    try:
        for n in range(samples):
            os.pwrite(fd, b"x" * 200, n * 200)
            start = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times)


@contextmanager
def append_cpu() -> Iterator[list[float]]:
    """Sum the CPU seconds spent inside AuditLog.append_all while the block runs."""
    spent = [0.0]
    real = audit_log.AuditLog.append_all

    def timed(log: audit_log.AuditLog, entries: Any) -> list[int]:
        start = time.process_time()
        try:
            return real(log, entries)
        finally:
            spent[0] += time.process_time() - start

    audit_log.AuditLog.append_all = timed  # type: ignore[method-assign,assignment]
    try:
        yield spent
    finally:
        audit_log.AuditLog.append_all = real  # type: ignore[method-assign]


@contextmanager
def fsync_as_sleep(seconds: float) -> Iterator[None]:
    """Replace the audit log's fsync by a sleep of ``seconds``."""
    real = audit_log.datasync  # type: ignore[attr-defined]
    setattr(audit_log, "datasync", lambda fd: time.sleep(seconds))  # noqa: B010
    try:
        yield
    finally:
        setattr(audit_log, "datasync", real)  # noqa: B010


def request_runner(app: Any, fixture: throughput.Fixture) -> dict[str, Callable[[int], int]]:
    """For each endpoint, a function making request number ``n``; returns its status."""
    client = app.test_client()
    profile, credentials, refresh = throughput.phases(fixture)

    def send(phase: throughput.Phase, body: str) -> int:
        response = client.open(
            phase.path, method=phase.method, headers=dict(phase.headers), data=body
        )
        return int(response.status_code)

    return {
        "hello world": lambda n: int(client.get("/bench/hello").status_code),
        "profile": lambda n: send(profile, ""),
        "client credentials": lambda n: send(credentials, credentials.body),
        "refresh": lambda n: send(refresh, refresh.bodies[n]),
    }


def measure(run: Callable[[int], int], first: int, count: int) -> tuple[float, float]:
    """CPU ms a request, and of that in the audit append, over requests first.. first+count."""
    with append_cpu() as spent:
        start = time.process_time()
        for n in range(first, first + count):
            status = run(n)
            if status != 200:
                raise RuntimeError(f"request {n} answered {status}")
        total = time.process_time() - start
    return total * 1000 / count, spent[0] * 1000 / count


def run_mode(
    mode: str, requests: int, scratch: Path, pause: float
) -> dict[str, tuple[float, float]]:
    """Every endpoint's figures with the audit log in ``mode`` (a fresh data directory)."""
    sync = "always" if mode == "sleep" else mode
    overrides = {"DATA": str(scratch / f"data-{mode}"), "ISSUER": "http://127.0.0.1:1"}
    setup = load_config({**overrides, **throughput.FAST_ARGON2, "AUDIT_SYNC": "none"}, environ={})
    # Two refresh tokens a request: one batch to warm up, one measured.
    fixture = throughput.prepare(setup, 2 * requests, 2)
    app = create_app({**setup, "AUDIT_SYNC": sync})
    app.add_url_rule("/bench/hello", "bench_hello", lambda: {"hello": "world"})
    runners = request_runner(app, fixture)
    results = {}
    with fsync_as_sleep(pause) if mode == "sleep" else nullcontext():
        for name in ENDPOINTS:
            measure(runners[name], 0, requests)  # warm-up
            results[name] = measure(runners[name], requests, requests)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500, help="measured requests an endpoint")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vrm-cpu-") as scratch_dir:
        scratch = Path(scratch_dir)
        pause = fsync_seconds(scratch)
        print(f"fdatasync on this disk: median {pause * 1000:.3f} ms")
        table: dict[str, dict[str, tuple[float, float]]] = {}
        reporter = ProgressReporter("measuring request CPU")
        for done, mode in enumerate(args.modes):
            reporter.update(done, len(args.modes))
            table[mode] = run_mode(mode, args.requests, scratch, pause)
        reporter.finish()
    header = f"{'endpoint':<20}" + "".join(
        f"{mode + ' ms':>12}{'append':>9}" for mode in args.modes
    )
    print(header)
    print("-" * len(header))
    for name in ENDPOINTS:
        cells = "".join(
            f"{table[mode][name][0]:>12.3f}{table[mode][name][1]:>9.3f}" for mode in args.modes
        )
        print(f"{name:<20}{cells}")
    print(
        f"CPU ms of this process a request (user + system), {args.requests} requests an endpoint "
        "after as many to warm up; append: of that, inside the audit log's append"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
