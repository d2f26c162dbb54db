"""How the cost of one profile write changes with the number of vaults in the store.

Grows one TinyDB store (a real data directory, with fsync) to each size in turn and times
updates of one field of one randomly chosen vault through the full service path (unwrap
the data key, validate, encrypt, locked read-modify-write of the vault file). Prints the
median and p90 per size and the ratio of the largest size's median to the smallest's.

    python bench/write_scaling.py                  # 100 and 10,000 vaults
    python bench/write_scaling.py --sizes 100 1000 --updates 100

The goal is a ratio of at most 1.5: a write touches only its own vault's file.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vrm.config import load_config
from vrm.progress import ProgressReporter
from vrm.services import Services, build_services

# The benchmark measures storage, not password hashing: the cheapest legal Argon2id.
FAST_ARGON2 = {"ARGON2_MEMORY_KIB": 8, "ARGON2_ITERATIONS": 1, "ARGON2_LANES": 1}
PASSWORD = "benchmark password"


def grow(services: Services, vault_ids: list[str], target: int) -> None:
    """Sign up customers until the store holds ``target`` vaults."""
    start = len(vault_ids)
    reporter = ProgressReporter(f"creating vaults up to {target}")
    for i in range(start, target):
        vault_id = services.vaults.sign_up(f"customer{i}@bench.example", PASSWORD)
        services.vaults.set_fields(vault_id, {"given_name": f"Customer {i}", "locale": "en-GB"})
        vault_ids.append(vault_id)
        reporter.update(i + 1 - start, target - start)
    reporter.finish()


def time_updates(
    services: Services, vault_ids: list[str], count: int, rng: random.Random
) -> list[float]:
    """Seconds taken by each of ``count`` single-field updates of random vaults.

    A tenth as many untimed updates go first, so caches are warm at every size alike.
    """
    for n in range(count // 10):
        services.vaults.set_fields(rng.choice(vault_ids), {"x-bench-counter": -n})
    timings = []
    for n in range(count):
        vault_id = rng.choice(vault_ids)
        started = time.perf_counter()
        services.vaults.set_fields(vault_id, {"x-bench-counter": n})
        timings.append(time.perf_counter() - started)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--data", type=Path, help="data directory (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="vrm-bench-") as scratch:
        data = args.data or Path(scratch) / "vrm-data"
        services = build_services(load_config({"DATA": str(data), **FAST_ARGON2}, environ={}))
        vault_ids: list[str] = []
        medians = {}
        for size in sorted(args.sizes):
            grow(services, vault_ids, size)
            timings = time_updates(services, vault_ids, args.updates, rng)
            medians[size] = statistics.median(timings)
            p90 = statistics.quantiles(timings, n=10)[-1]
            print(
                f"{size:>7} vaults: median {medians[size] * 1000:.2f} ms, "
                f"p90 {p90 * 1000:.2f} ms over {args.updates} updates"
            )
        services.close()
    smallest, largest = min(medians), max(medians)
    ratio = medians[largest] / medians[smallest]
    verdict = "meets" if ratio <= 1.5 else "misses"
    print(f"ratio {largest}/{smallest}: {ratio:.2f} ({verdict} the goal of at most 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
