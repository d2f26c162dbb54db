"""Audit log performance: durable appends per second at 10,000 and at 1,000,000 events,
and the time to produce an inclusion and a consistency proof at 1,000,000.

The log is grown with appends that leave flushing to the OS (progress shown), then timed
with durable ones (fsync on every append, the server's default), so growing to a million
takes about a minute rather than hours.

    python bench/audit_append.py                     # 10,000 and 1,000,000
    python bench/audit_append.py --sizes 10000 100000 --durable 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault.audit import AuditLog
from vault.events import Event
from vrm.progress import ProgressReporter

AT = datetime(2026, 11, 25, tzinfo=UTC)


def event(n: int) -> Event:
    """A data-read event shaped like the server's."""
    return Event(
        "data.read",
        AT,
        "vendor",
        vault=f"{n % 5000:032x}",
        vendor="vnd_0123456789abcdef01234567",
        fields=("email", "given_name"),
    )


def grow(directory: Path, target: int) -> None:
    """Append fast until the log holds ``target`` events."""
    with AuditLog(directory, sync="none") as log:
        start = log.size()
        reporter = ProgressReporter(f"growing the log to {target:,}")
        for n in range(start, target):
            log.append_event(event(n))
            if (n - start) % 1000 == 999 or n == target - 1:
                reporter.update(n + 1 - start, target - start)
        reporter.finish()


def durable_rate(directory: Path, count: int) -> float:
    """Durable appends per second over ``count`` appends."""
    with AuditLog(directory, sync="always") as log:
        base = log.size()
        started = time.perf_counter()
        for n in range(count):
            log.append_event(event(base + n))
        return count / (time.perf_counter() - started)


def proof_times(directory: Path, samples: int = 200) -> tuple[float, float]:
    """Median seconds for an inclusion proof and for a consistency proof at this size."""
    with AuditLog(directory, sync="none") as log:
        size = log.size()
        inclusion, consistency = [], []
        for i in range(samples):
            index = (i * 7919) % size
            t = time.perf_counter()
            log.inclusion_proof(index, size)
            inclusion.append(time.perf_counter() - t)
            old = max(1, (i * 104729) % size)
            t = time.perf_counter()
            log.consistency_proof(old, size)
            consistency.append(time.perf_counter() - t)
    return statistics.median(inclusion), statistics.median(consistency)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--durable", type=int, default=300, help="timed durable appends")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vrm-audit-bench-") as scratch:
        directory = Path(scratch) / "audit"
        for size in sorted(args.sizes):
            grow(directory, size)
            rate = durable_rate(directory, args.durable)
            inclusion, consistency = proof_times(directory)
            print(
                f"{size:>9,} events: {rate:,.0f} durable appends/s; "
                f"inclusion proof {inclusion * 1e6:.0f} us, "
                f"consistency proof {consistency * 1e6:.0f} us (medians)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
