"""Segment counts and offer fan-out on a real TinyDB store (fsync on, audit sync on).

Part 1, counts: grows the segment index to each size and times ``SegmentCounts.count`` (the
whole vendor query: daily-budget write, index lookup, seeded noise, audit append) for three
shapes of predicate, 50 queries each:

* **after a change**: before each query one indexed customer changes a marked field
  (``SegmentUpdater.vault_changed``), so the query first re-reads that one partition;
* **steady state**: nothing changed since the last query;
* **cold**: a new process's first query (a fresh index loads every partition), 3 times.

The goal is at most 200 ms at 100,000 vaults (judged on the p90 of the first two).
Counting reads only the index, so these vaults are index records written directly (keyed
tokens of synthetic profiles, in batches), not whole vaults.

Part 2, fan-out: creates real recipients (data key, vault document, profile written
through ``VaultService.set_fields`` so the index and the sealed mailbox follow, no
password) into the same store, then times ``Offers.send`` of two offers to the segment
that matches exactly them, in a freshly built service (as a worker that has not just
opened those vaults' keys).

    python bench/segments.py            # 10,000 and 100,000 indexed; 10,000 recipients
    python bench/segments.py --quick    # 1,000 and 10,000; 1,000 recipients
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault.profile import ProfileCipher, new_document
from vault.segment_counts import SegmentCounts
from vault.segment_query import SEGMENTABLE_FIELDS, Predicate, parse_predicate
from vault.segments import RECORD_FORMAT, TABLE, SegmentIndex, SegmentUpdater, segment_tokens
from vault.service import LOGIN_EMAIL, SEGMENTABLE
from vrm.config import load_config
from vrm.progress import ProgressReporter
from vrm.services import Services, build_services

GOAL_SECONDS = 0.200
QUERIES = 50
COLD_SAMPLES = 3
INDEX_BATCH = 5_000
OFFER_TAG = "trail running"
"""The interest only the fan-out's recipients have, so the offer's segment is exactly them."""

SHAPES: Mapping[str, dict[str, Any]] = {
    "equality": {"field": "country", "equals": "GB"},
    "in": {"field": "interests", "in": ["cycling", "photography", "jazz"]},
    "all-of": {
        "all": [
            {"field": "interests", "equals": "cycling"},
            {"field": "birthdate", "age_band": "25-34"},
        ]
    },
}

COUNTRIES = {"GB": 30, "DE": 20, "FR": 15, "NL": 8, "ES": 8, "IT": 8, "IE": 4, "US": 4, "SE": 3}
INTERESTS = [
    "cycling", "photography", "jazz", "cooking", "hiking", "chess", "gardening", "football",
    "running", "yoga", "gaming", "reading", "travel", "films", "opera", "climbing", "sailing",
    "knitting", "baking", "birdwatching", "tennis", "golf", "wine", "coffee", "camping",
    "fishing", "painting", "pottery", "astronomy", "dancing",
]  # fmt: skip
INTEREST_WEIGHTS = [1 / (rank + 2) for rank in range(len(INTERESTS))]
GENDERS = {"woman": 48, "man": 47, "non-binary": 3, "agender": 2}
LOCALES = ["en-GB", "de-DE", "fr-FR", "nl-NL", "es-ES", "it-IT", "en-US", "sv-SE"]


def synthetic_profile(rng: random.Random, today: date) -> dict[str, Any]:
    """A plausible profile: skewed countries and interests, adults of every age."""
    interests = list(dict.fromkeys(rng.choices(INTERESTS, INTEREST_WEIGHTS, k=rng.randint(1, 5))))
    return {
        "interests": interests,
        "postal_address": {
            "street": f"{rng.randint(1, 300)} High Street",
            "locality": "Town",
            "region": f"Region {rng.randint(1, 12)}",
            "country": rng.choices(list(COUNTRIES), list(COUNTRIES.values()))[0],
        },
        "locale": rng.choice(LOCALES),
        "gender": rng.choices(list(GENDERS), list(GENDERS.values()))[0],
        "birthdate": f"{today.year - rng.randint(18, 80)}-{rng.randint(1, 12):02d}-15",
    }


def synthetic_marks(rng: random.Random) -> list[str]:
    """The fields a customer made countable: each with probability 3/4, at least one."""
    return [f for f in SEGMENTABLE_FIELDS if rng.random() < 0.75] or ["postal_address"]


def seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def summary(timings: list[float]) -> tuple[float, float]:
    """Median and p90."""
    return statistics.median(timings), statistics.quantiles(timings, n=10)[-1]


# Part 1: counts.


def grow_index(services: Services, ids: list[str], target: int, rng: random.Random) -> float:
    """Write index records (as SegmentIndex.put stores them) until ``target`` vaults are
    indexed; return the seconds it took."""
    key = services.keys.index_key
    today = services.clock().date()
    start = len(ids)
    reporter = ProgressReporter(f"indexing synthetic vaults up to {target:,}")
    started = time.perf_counter()
    batch: dict[str, dict[str, Any]] = {}
    for n in range(start, target):
        vault_id = rng.randbytes(16).hex()
        tokens = segment_tokens(key, synthetic_profile(rng, today), synthetic_marks(rng))
        batch[vault_id] = {"format": RECORD_FORMAT, "tokens": tokens}
        ids.append(vault_id)
        if len(batch) == INDEX_BATCH or n == target - 1:
            records = dict(batch)
            services.store.update_many(TABLE, list(records), lambda _, r=records: r)
            batch.clear()
        if (n + 1 - start) % 500 == 0 or n == target - 1:
            reporter.update(n + 1 - start, target - start)
    reporter.finish()
    return time.perf_counter() - started


def change_one(
    services: Services, updater: SegmentUpdater, ids: list[str], rng: random.Random
) -> None:
    """One indexed customer changes their interests (rewrites one partition)."""
    doc = {SEGMENTABLE: list(SEGMENTABLE_FIELDS)}
    profile = synthetic_profile(rng, services.clock().date())
    updater.vault_changed(rng.choice(ids), doc, profile, frozenset({"interests"}))


def time_counts(
    counts: SegmentCounts,
    vendor_id: str,
    predicate: Predicate,
    before: Callable[[], None] | None = None,
) -> list[float]:
    """Seconds taken by each of QUERIES counts (``before`` runs untimed before each)."""
    timings = []
    for _ in range(QUERIES):
        if before is not None:
            before()
        started = time.perf_counter()
        counts.count(vendor_id, predicate)
        timings.append(time.perf_counter() - started)
    return timings


def time_parts(services: Services, vendor_id: str, predicate: Predicate) -> tuple[float, float]:
    """Median seconds of the index lookup alone and of the noise/suppression alone."""
    lookups, protects = [], []
    for _ in range(QUERIES):
        started = time.perf_counter()
        members = services.segment_index.members(predicate)
        lookups.append(time.perf_counter() - started)
        started = time.perf_counter()
        services.segments.protect(members)
        protects.append(time.perf_counter() - started)
    return statistics.median(lookups), statistics.median(protects)


def time_cold(services: Services, vendor_id: str, predicate: Predicate) -> list[float]:
    """Seconds of a new process's first count: a fresh index loads every partition."""
    timings = []
    for _ in range(COLD_SAMPLES):
        fresh = SegmentIndex(services.store, key=services.keys.index_key)
        counts = SegmentCounts(
            index=fresh,
            store=services.store,
            key=services.keys.index_key,
            policy=services.segments.policy,
            events=services.events,
            clock=services.clock,
        )
        started = time.perf_counter()
        counts.count(vendor_id, predicate)
        timings.append(time.perf_counter() - started)
    return timings


def measure_counts(
    services: Services, vendor_id: str, ids: list[str], rng: random.Random
) -> dict[str, float]:
    """Print the count latencies at this size; return the worst median and p90, and cold."""
    today = services.clock().date()
    updater = SegmentUpdater(services.segment_index, key=services.keys.index_key)
    predicates = {name: parse_predicate(shape, today=today) for name, shape in SHAPES.items()}
    cold = time_cold(services, vendor_id, predicates["equality"])
    print(
        f"  cold (new process, all partitions loaded): median {seconds(statistics.median(cold))}"
        f" over {COLD_SAMPLES} first queries"
    )
    services.segments.count(vendor_id, predicates["equality"])  # Warm the shared index.
    worst = {"median": 0.0, "p90": 0.0}
    for name, predicate in predicates.items():
        matches = len(services.segment_index.members(predicate))
        after = time_counts(
            services.segments, vendor_id, predicate, lambda: change_one(services, updater, ids, rng)
        )
        steady = time_counts(services.segments, vendor_id, predicate)
        lookup, protect = time_parts(services, vendor_id, predicate)
        line = [f"  {name:<8} ({matches:>6,} match)"]
        for label, timings in (("after a change", after), ("steady", steady)):
            median, p90 = summary(timings)
            worst["median"] = max(worst["median"], median)
            worst["p90"] = max(worst["p90"], p90)
            line.append(f"{label}: median {seconds(median)}, p90 {seconds(p90)}")
        print("; ".join(line))
        rest = statistics.median(steady) - lookup - protect
        print(
            f"{'':<26}steady, by part: index lookup {seconds(lookup)}, noise {seconds(protect)},"
            f" the rest (budget write, audit append) {seconds(rest)}"
        )
    worst["cold"] = statistics.median(cold)
    return worst


# Part 2: fan-out.


def create_recipients(services: Services, count: int, rng: random.Random) -> float:
    """Create ``count`` real vaults that opted in to email and match the offer's segment;
    return the seconds it took."""
    vaults = services.vaults
    reporter = ProgressReporter(f"creating {count:,} recipient vaults")
    started = time.perf_counter()
    for n in range(count):
        now = services.clock()
        vault_id = rng.randbytes(16).hex()
        email = f"recipient{n}@bench.example"
        cipher = ProfileCipher(vault_id, vaults.datakeys.create(vault_id), os.urandom)
        doc = cipher.apply(
            new_document(vault_id, vaults.accounts.digest(email), now), {"email": email}, now
        )
        doc["login_email"] = cipher.seal_note(LOGIN_EMAIL, email)
        marks = {*synthetic_marks(rng), "interests"}
        doc[SEGMENTABLE] = [f for f in SEGMENTABLE_FIELDS if f in marks]
        services.store.create_vault(vault_id, doc)
        profile = synthetic_profile(rng, now.date())
        profile["interests"].append(OFFER_TAG)
        profile["channel_preferences"] = {
            "email": True,
            "sms": False,
            "phone": False,
            "post": rng.random() < 0.3,
        }
        # The service path: validate, encrypt, write, then the index and the mailbox follow.
        vaults.set_fields(vault_id, profile)
        reporter.update(n + 1, count)
    reporter.finish()
    return time.perf_counter() - started


def register_vendor(services: Services) -> str:
    vendor, _ = services.vendors.register(
        {
            "client_name": "Bench Outfitters",
            "redirect_uris": ["https://outfitters.example/callback"],
            "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
            "scope": "profile:email profile:given_name segments:query offers:send",
            "vrm_field_purposes": {"email": "send the discount code", "given_name": "greet you"},
        }
    )
    return vendor.client_id


def measure_fanout(services: Services, vendor_id: str, recipients: int) -> None:
    from vault.offers import parse_offer

    vendor = services.vendors.require_active(vendor_id)
    today = services.clock().date()
    predicate = parse_predicate({"field": "interests", "equals": OFFER_TAG}, today=today)
    started = time.perf_counter()
    matched = len(services.segment_index.members(predicate))
    print(
        f"  index warm-up (loads {services.segment_index.size():,} vaults): "
        f"{seconds(time.perf_counter() - started)}"
    )
    started = time.perf_counter()
    services.segment_index.members(predicate)
    print(f"  segment lookup alone ({matched:,} match): {seconds(time.perf_counter() - started)}")
    for ordinal in ("1st", "2nd"):
        request = parse_offer(
            {
                "title": f"{ordinal} trail offer",
                "message": "10% off trail shoes this month.",
                "fields": {"email": "send you the discount code"},
            },
            vendor,
        )
        reporter = ProgressReporter(f"delivering the {ordinal} offer")
        started = time.perf_counter()
        sent = services.offers.send(vendor_id, predicate, request, progress=reporter.update)
        elapsed = time.perf_counter() - started
        reporter.finish()
        delivered = sent.delivered.true_count
        note = "" if delivered == recipients else f" (expected {recipients:,})"
        print(
            f"  {ordinal} offer: {elapsed:.2f} s to deliver to {delivered:,} mailboxes{note}, "
            f"{elapsed / max(delivered, 1) * 1000:.2f} ms per customer"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k/10k indexed, 1k recipients")
    parser.add_argument("--sizes", type=int, nargs="+", help="indexed vaults to count at")
    parser.add_argument("--recipients", type=int, help="real vaults the offer reaches")
    parser.add_argument("--data", type=Path, help="data directory (default: a temporary one)")
    args = parser.parse_args()
    sizes = sorted(args.sizes or ([1_000, 10_000] if args.quick else [10_000, 100_000]))
    recipients = args.recipients or (1_000 if args.quick else 10_000)
    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="vrm-segments-bench-") as scratch:
        data = args.data or Path(scratch) / "vrm-data"
        # Production settings (TinyDB, fsync, audit sync "always"), except a daily query
        # budget large enough for the benchmark's own queries.
        config = load_config(
            {
                "DATA": str(data),
                "ARGON2_MEMORY_KIB": 8,
                "ARGON2_ITERATIONS": 1,
                "ARGON2_LANES": 1,
                "SEGMENT_DAILY_QUERIES": 10**9,
            },
            environ={},
        )
        services = build_services(config)
        vendor_id = register_vendor(services)
        print(
            f"Segment counts ({QUERIES} queries per shape and mode; goal: at most "
            f"{seconds(GOAL_SECONDS)} at the largest size):"
        )
        ids: list[str] = []
        worst: dict[str, float] = {}
        for size in sizes:
            took = grow_index(services, ids, size, rng)
            print(f"{size:>7,} vaults indexed (written in {took:.1f} s):")
            worst = measure_counts(services, vendor_id, ids, rng)
        verdict = "met" if worst["p90"] <= GOAL_SECONDS else "missed"
        print(
            f"goal at {sizes[-1]:,}: worst median {seconds(worst['median'])}, worst p90 "
            f"{seconds(worst['p90'])} (after a change and steady): {verdict}"
        )
        cold_verdict = "within" if worst["cold"] <= GOAL_SECONDS else "over"
        print(f"  a new process's first query: {seconds(worst['cold'])} ({cold_verdict} the goal)")

        print(f"Offer fan-out to {recipients:,} real recipients:")
        took = create_recipients(services, recipients, rng)
        print(
            f"  created in {took:.1f} s ({took / recipients * 1000:.1f} ms a vault: data key, "
            f"vault file, profile write, index record, sealed mailbox)"
        )
        services.close()
        services = build_services(config)  # A worker that has not just opened these keys.
        measure_fanout(services, vendor_id, recipients)
        services.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
