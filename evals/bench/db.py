"""`turnout bench db`: what the gateway's own Postgres work costs, through the product's code.

Every figure goes through the classes the gateway uses (KeyStore, UsageRecorder, Admissions) on the
pool `router.db.open_pool` opens, against an embedded Postgres started for the run (or `--url`). The
baseline of the same run is one `SELECT 1` round trip on the same pool: the floor of any query.
Measured: key lookup (a cache miss of the authenticator), a key's creation (transaction and NOTIFY),
admission of a key with budgets (its and its team's spend read from a ledger of `--ledger-rows`
rows), and the ledger writer's throughput (records per second through COPY).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evals.bench.data import percentile, postgres_for
from evals.bench.fmt import BenchResult

KEYS = 200


async def _timed_us(action: Callable[[int], Awaitable[Any]], n: int) -> list[float]:
    """Microseconds per call of `action(i)`, after a tenth as many untimed warm-up calls."""
    samples: list[float] = []
    for i in range(n + n // 10):
        started = time.perf_counter()
        await action(i)
        if i >= n // 10:
            samples.append((time.perf_counter() - started) * 1e6)
    return samples


def _usage(key_id: str, team: str, ts: datetime, index: int) -> Any:
    from router.accounts.usage import UsageRecord

    return UsageRecord(
        ts=ts,
        key_id=key_id,
        route="fast",
        backend="haiku",
        model="auto",
        stream=index % 3 == 0,
        status=200 if index % 50 else 502,
        prompt_tokens=300 + index % 500,
        completion_tokens=120 + index % 300,
        cost_usd=0.0004 + (index % 7) * 1e-5,
        latency_ms=900.0 + index % 400,
        overhead_ms=0.4,
        error=None,
        team=team,
    )


async def _run(url: str, n: int, ledger_rows: int) -> BenchResult:
    from router.accounts.admission import Admissions, Estimate
    from router.accounts.auth import KeyStore, Principal, hash_key
    from router.accounts.limits import Limits
    from router.accounts.limits_memory import MemoryLimiter
    from router.accounts.usage import UsageRecorder
    from router.db import open_pool

    result = BenchResult("db", {"requests": n, "ledger_rows": ledger_rows, "keys": KEYS})
    pool = await open_pool(url)
    try:
        store = KeyStore(pool)
        rng = random.Random(7)
        keys: list[tuple[str, str, str]] = []  # (id, key, team)

        async def create(i: int) -> None:
            team = f"bench-team-{i % 20}"
            key_id, key = await store.create(f"bench-{i}", team=team, limits=Limits(usd_day=1e6))
            keys.append((key_id, key, team))

        created = await _timed_us(create, KEYS)
        recorder = UsageRecorder(pool, flush_seconds=3600, batch_size=1000)
        now = datetime.now(UTC)
        started = time.perf_counter()
        for index in range(ledger_rows):
            key_id, _, team = keys[index % len(keys)]
            recorder.record(_usage(key_id, team, now - timedelta(seconds=index % 86_400), index))
            if index % 10_000 == 9_999:
                await recorder.flush()
        await recorder.flush()
        written_per_s = ledger_rows / (time.perf_counter() - started)
        hashes = [hash_key(key) for _, key, _ in keys]
        baseline = await _timed_us(lambda i: pool.fetch_one("SELECT 1"), n)
        found = await _timed_us(lambda i: store.find(rng.choice(hashes)), n)

        async def admit(i: int) -> None:
            key_id, _, team = keys[i % len(keys)]
            principal = Principal(
                key_id, "bench", team=team, limits=Limits(usd_day=1e6), team_limits=Limits(usd_month=1e6)
            )
            admissions = Admissions(MemoryLimiter(), pool)  # a fresh one: both scopes read from the ledger
            admission = await admissions.admit(principal, Estimate(1000, 0.002))
            assert admission is not None and admission.allowed
            await admissions.aclose()

        admitted = await _timed_us(admit, n)
    finally:
        await pool.close()
    floor = percentile(baseline, 0.5)
    for name, samples in (
        ("key lookup (KeyStore.find)", found),
        ("admission seeding key and team spend from the ledger", admitted),
        ("key creation (transaction and NOTIFY)", created),
    ):
        result.add(
            f"{name}, p50", percentile(samples, 0.5), "µs", baseline=floor, baseline_name="SELECT 1, p50"
        )
        result.add(f"{name}, p99", percentile(samples, 0.99), "µs")
    result.add("SELECT 1 round trip, p50", floor, "µs")
    result.add("ledger writes (UsageRecorder, batches of 1,000)", written_per_s, "records/s")
    return result.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="turnout bench db", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed calls per measurement")
    parser.add_argument("--ledger-rows", type=int, default=100_000, help="usage rows written before timing")
    parser.add_argument("--url", help="an existing Postgres (default: a temporary embedded one)")
    parser.add_argument("--out", type=Path, help="write db.json and db.md here")
    args = parser.parse_args(argv)
    if not 10 <= args.requests <= 1_000_000 or not 0 <= args.ledger_rows <= 10_000_000:
        parser.error("--requests must be 10 to 1000000 and --ledger-rows 0 to 10000000")
    with postgres_for(args.url, "db") as url:
        result = asyncio.run(_run(url, args.requests, args.ledger_rows))
    return result.report(args.out)
