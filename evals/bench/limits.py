"""`turnout bench limits`: what admission adds to a request, in-process and with a local Redis.

Baselines from the same run: for the in-process limiter, an awaited no-op (the floor of any async
call); for Redis, one PING round trip on the same connection kind (the floor of any Redis call).
Targets from the issue: admission ≤ 0.3 ms p50 in-process, ≤ 1 ms p50 with a local Redis. When no
`--redis-url` is given and `redis-server` is installed, one is started on a free loopback port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from evals.bench.fmt import BenchResult, Bound, On, Target
from router.accounts.limits import FailMode, Limiter, Limits, Scope, new_id
from router.accounts.limits_memory import MemoryLimiter

IN_PROCESS_TARGET_US = 300.0
REDIS_TARGET_US = 1000.0


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_admission(limiter: Limiter, n: int = 2000) -> dict[str, float]:
    """Microseconds per admit and per admit+settle for a key in a team, every limit set (p50, p99)."""
    limits = Limits(rpm=10**9, tpm=10**12, concurrent=10**6, usd_day=1e9, usd_month=1e9)
    tag = new_id()
    scopes = [Scope(f"key:bench-{tag}", limits), Scope(f"team:bench-{tag}", limits)]
    admits: list[float] = []
    totals: list[float] = []
    for i in range(n + n // 10):  # the first tenth warms up connections and caches
        started = time.perf_counter()
        result = await limiter.admit(scopes, 1000, 0.002)
        admitted = time.perf_counter()
        if result.reservation is not None:
            await limiter.settle(result.reservation, 800, 0.0016)
        if i >= n // 10:
            admits.append((admitted - started) * 1e6)
            totals.append((time.perf_counter() - started) * 1e6)
    return {
        "n": n,
        "admit_p50_us": _percentile(admits, 0.5),
        "admit_p99_us": _percentile(admits, 0.99),
        "admit_settle_p50_us": _percentile(totals, 0.5),
        "admit_settle_p99_us": _percentile(totals, 0.99),
    }


async def _noop_us(n: int) -> float:
    async def nothing() -> None:
        return None

    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await nothing()
        samples.append((time.perf_counter() - started) * 1e6)
    return _percentile(samples, 0.5)


async def _ping_us(url: str, n: int) -> float:
    import redis.asyncio as redis

    client = redis.from_url(url)
    try:
        samples = []
        for i in range(n + n // 10):
            started = time.perf_counter()
            await client.ping()
            if i >= n // 10:
                samples.append((time.perf_counter() - started) * 1e6)
        return _percentile(samples, 0.5)
    finally:
        await client.aclose()


@contextlib.contextmanager
def _redis_server() -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tempfile.mkdtemp(prefix="turnout-bench-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            folder,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def _rows(
    result: BenchResult,
    label: str,
    timings: dict[str, float],
    floor: float,
    floor_name: str,
    target_us: float,
) -> None:
    same = {"baseline": floor, "baseline_name": floor_name}
    target = Target(Bound.AT_MOST, target_us, On.VALUE)
    result.add(f"{label} admit p50", timings["admit_p50_us"], "µs", target=target, **same)
    result.add(f"{label} admit p99", timings["admit_p99_us"], "µs", **same)
    result.add(f"{label} admit+settle p50", timings["admit_settle_p50_us"], "µs", **same)


async def _run(requests: int, redis_url: str | None) -> BenchResult:
    result = BenchResult("limits", {"requests": requests, "scopes": "key + team, every limit set"})
    floor = await _noop_us(requests)
    memory = await bench_admission(MemoryLimiter(), requests)
    _rows(result, "in-process", memory, floor, "awaited no-op", IN_PROCESS_TARGET_US)
    if redis_url is None:
        result.notes.append("Redis: not measured (no --redis-url and no redis-server installed)")
        return result.finish()
    from router.accounts.limits_redis import RedisLimiter

    limiter = RedisLimiter(redis_url, on_failure=FailMode.closed, timeout_s=1.0)
    try:
        ping = await _ping_us(redis_url, requests)
        shared = await bench_admission(limiter, requests)
    finally:
        await limiter.close()
    _rows(result, "Redis", shared, ping, "PING round trip", REDIS_TARGET_US)
    return result.finish()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="turnout bench limits", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--redis-url", help="an existing Redis (default: start redis-server on loopback)")
    parser.add_argument("--out", type=Path, help="write limits.json and limits.md here")
    args = parser.parse_args(argv)
    if not 10 <= args.requests <= 1_000_000:
        parser.error("--requests must be between 10 and 1000000")
    if args.redis_url:
        result = asyncio.run(_run(args.requests, args.redis_url))
    else:
        with _redis_server() as url:
            result = asyncio.run(_run(args.requests, url))
    return result.report(args.out)
