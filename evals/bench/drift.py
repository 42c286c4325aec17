"""`turnout bench drift`: what `turnout drift` takes over a ledger of `--rows` rows (one million by
default; the issue's target is 5 s on this kind of machine).

The rows are written by one COPY into an embedded Postgres started for the run (or into `--url`, whose
ledger must then be empty of other rows): seven-eighths spread over the reference week, one eighth over
the current day, the current day's mix moved (more small talk, shorter prompts, more sensitive data)
so that the report has drift to find. Timed, each the median of `--runs` after one untimed warm-up
(the first scan of fresh rows also writes their hint bits): `compute_drift` on the product's pool, and
the `turnout drift` command end to end (interpreter start, imports, connection, schema check, both
statements). The baseline of the same run is a plain `SELECT count(*)` over the same rows: the floor
of any statement that reads them all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.data import log, postgres_for
from evals.bench.fmt import BenchResult, Bound, On, Target

TARGET_S = 5.0
KEY = "bench-drift"  # the key id of every row the bench writes, so that it can delete them again
REFERENCE, CURRENT = timedelta(days=7), timedelta(days=1)
CATEGORIES = ["code", "math", "reasoning", "writing", "extraction", "simple_chat", "other"]
MIXES = {  # category shares of the reference week and of the current day
    False: [0.25, 0.15, 0.10, 0.20, 0.05, 0.20, 0.05],
    True: [0.15, 0.10, 0.05, 0.15, 0.05, 0.45, 0.05],
}
FINDINGS = ["email", "person", "phone", "credit_card", "street_address", "email,person", "api_key"]
ROUTES = {"code": "hard", "math": "hard", "reasoning": "hard", "simple_chat": "fast"}
BACKENDS = {"hard": "gpt-4", "fast": "haiku", "general": "llama", "sensitive": "llama"}


def ledger_rows(n: int, now: datetime, seed: int = 7) -> list[tuple[Any, ...]]:
    """`n` ledger rows in COPY_USAGE's column order, seven-eighths in the reference week."""
    from router.accounts.usage import COLUMNS

    rng = np.random.default_rng(seed)
    current = rng.random(n) < 1 / 8
    offsets = np.where(current, rng.random(n) * CURRENT.total_seconds(), 0.0)
    offsets = np.where(current, offsets, CURRENT.total_seconds() + rng.random(n) * REFERENCE.total_seconds())
    categories = np.where(
        current,
        rng.choice(len(CATEGORIES), n, p=MIXES[True]),
        rng.choice(len(CATEGORIES), n, p=MIXES[False]),
    )
    auto = rng.random(n) < 0.8
    difficulty = rng.beta(np.where(current, 2.0, 2.5), 3.0)
    prompt = np.maximum(1, rng.lognormal(np.where(current, 5.0, 5.6), 1.0)).astype(int)
    sensitive = rng.random(n) < np.where(current, 0.09, 0.05)
    findings = rng.integers(0, len(FINDINGS), n)
    passages = np.where(rng.random(n) < 0.3, rng.integers(0, 6, n), -1)
    rows = []
    for i in range(n):
        category = CATEGORIES[categories[i]] if auto[i] else None
        route = "sensitive" if sensitive[i] else ROUTES.get(category or "", "general")
        values = {
            "ts": now - timedelta(seconds=float(offsets[i])),
            "key_id": KEY,
            "route": route,
            "backend": BACKENDS[route],
            "model": "auto" if auto[i] else "gpt-4",
            "stream": False,
            "status": 200,
            "prompt_tokens": int(prompt[i]),
            "completion_tokens": 200,
            "cost_usd": 0.001,
            "latency_ms": 900.0,
            "overhead_ms": 0.5,
            "error": None,
            "team": None,
            "category": category,
            "difficulty": float(difficulty[i]) if auto[i] else None,
            "sensitive": bool(sensitive[i]),
            "finding_types": FINDINGS[findings[i]] if sensitive[i] else None,
            "passages": int(passages[i]) if passages[i] >= 0 else None,
        }
        rows.append(tuple(values[name] for name in COLUMNS))
    return rows


async def _write(url: str, rows: list[tuple[Any, ...]]) -> None:
    import psycopg

    from router.accounts.usage import COPY_TYPES, COPY_USAGE

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        found = await (await connection.execute("SELECT count(*) FROM turnout_usage")).fetchone()
        if found is not None and found[0]:
            raise SystemExit(
                f"turnout bench drift: the ledger at --url holds {found[0]} rows; use an empty one"
            )
        async with connection.cursor().copy(COPY_USAGE) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                await copy.write_row(row)
        await connection.execute("ANALYZE turnout_usage")


async def _timings(url: str, runs: int, now: datetime) -> tuple[list[float], list[float], Any]:
    """Seconds of compute_drift and of the count, each after an untimed warm-up."""
    from router.db import open_pool
    from router.ops.drift import compute_drift

    pool = await open_pool(url, max_size=2)
    start = now - CURRENT - REFERENCE
    count_sql = "SELECT count(*) AS n FROM turnout_usage WHERE ts >= %(start)s AND ts < %(end)s"
    try:
        drift, counts = [], []
        report = None
        for run in range(runs + 1):
            began = time.perf_counter()
            report = await compute_drift(pool, REFERENCE, CURRENT, now=now)
            if run:
                drift.append(time.perf_counter() - began)
            began = time.perf_counter()
            await pool.fetch_one(count_sql, {"start": start, "end": now})
            if run:
                counts.append(time.perf_counter() - began)
    finally:
        await pool.close()
    return drift, counts, report


def _command_seconds(url: str, runs: int) -> list[float]:
    """Seconds of `turnout drift --json` as a subprocess, after an untimed warm-up."""
    env = {**os.environ, "TURNOUT_DATABASE_URL": url}
    seconds = []
    for run in range(runs + 1):
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "router.cli", "drift", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise SystemExit(f"turnout bench drift: `turnout drift` failed: {done.stderr.strip()[-500:]}")
        if run:
            seconds.append(time.perf_counter() - began)
    return seconds


def _run(url: str, n: int, runs: int) -> BenchResult:
    from router.db import open_pool

    async def migrate() -> None:
        await (await open_pool(url, max_size=1)).close()

    asyncio.run(migrate())
    now = datetime.now(UTC)
    log(f"generating {n:,} ledger rows")
    rows = ledger_rows(n, now)
    began = time.perf_counter()
    asyncio.run(_write(url, rows))
    written = time.perf_counter() - began
    del rows
    log(f"written in {written:.1f} s; timing")
    result = BenchResult("drift", {"rows": n, "runs": runs, "reference": "7d", "current": "1d"})
    drift, counts, report = asyncio.run(_timings(url, runs, now))
    command = _command_seconds(url, runs)
    floor = statistics.median(counts)
    target = Target(Bound.AT_MOST, TARGET_S, On.VALUE)
    result.add(
        f"compute_drift over {n:,} rows, median",
        statistics.median(drift),
        "s",
        baseline=floor,
        baseline_name="SELECT count(*) over the same rows",
        target=target,
    )
    result.add(
        "`turnout drift --json`, the command end to end, median",
        statistics.median(command),
        "s",
        baseline=floor,
        baseline_name="SELECT count(*) over the same rows",
        target=target,
    )
    result.add("SELECT count(*) over the same rows, median", floor, "s")
    result.add("ledger rows written by COPY", n / written, "rows/s")
    if report is not None:
        found = ", ".join(
            f"{s.signal} {s.psi:.3f} ({s.status})" if s.psi is not None else f"{s.signal} ({s.status})"
            for s in report.signals
        )
        result.notes.append(f"PSI on the generated ledger (the current day's mix moved on purpose): {found}")
    return result.finish()


async def _delete(url: str) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        await connection.execute("DELETE FROM turnout_usage WHERE key_id = %s", (KEY,))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="turnout bench drift", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each measurement (median)")
    parser.add_argument("--url", help="an existing Postgres with an empty ledger (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="write drift.json and drift.md here")
    args = parser.parse_args(argv)
    if not 1_000 <= args.rows <= 20_000_000 or not 1 <= args.runs <= 20:
        parser.error("--rows must be 1000 to 20000000 and --runs 1 to 20")
    with postgres_for(args.url, "drift") as url:
        try:
            result = _run(url, args.rows, args.runs)
        finally:  # in another ledger (--url) only the rows the bench wrote are removed
            if args.url:
                asyncio.run(_delete(url))
    return result.report(args.out)
