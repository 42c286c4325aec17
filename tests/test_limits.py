"""The `Limiter` contract, run against the in-memory and the Redis limiter alike; then what only the
Redis limiter has: one hash slot, fail open/closed while Redis is down and recovery after, and
accuracy when many processes share one Redis. Redis is a real redis-server on loopback.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.crc import key_slot

from evals.bench.limits import bench_admission
from router.accounts.limits import (
    Admission,
    FailMode,
    Limiter,
    LimitKind,
    Limits,
    Reservation,
    Scope,
    format_reset,
    make_limiter,
    new_id,
)
from router.accounts.limits_memory import MemoryLimiter
from router.accounts.limits_redis import RedisLimiter
from router.metrics import Metrics
from tests.conftest import free_port

RESET = re.compile(r"\d+ms|(\d+m)?\d+(\.\d+)?s")
Scenario = Callable[[Limiter], Awaitable[None]]


def drive(limiter: Limiter, scenario: Scenario) -> None:
    async def main() -> None:
        try:
            await scenario(limiter)
        finally:
            await limiter.close()

    asyncio.run(main())


async def eventually(read: Callable[[], Awaitable[Any]], expected: Any, timeout_s: float = 5.0) -> bool:
    """Whether read() comes to equal expected within timeout_s (background work, on a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while (value := await read()) != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return bool(value == expected)


def names() -> tuple[str, str]:
    tag = new_id()
    return f"key:test-{tag}", f"team:test-{tag}"


async def admit(limiter: Limiter, scopes: list[Scope], tokens: int = 0, usd: float = 0.0) -> Admission:
    result = await limiter.admit(scopes, tokens, usd)
    assert not result.degraded  # the contract tests need a working store
    return result


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_limiter(backend: str, request: pytest.FixtureRequest) -> Callable[..., Limiter]:
    if backend == "memory":
        return MemoryLimiter
    url = request.getfixturevalue("redis_url")
    return lambda **options: RedisLimiter(url, on_failure=FailMode.closed, timeout_s=1.0, **options)


class TestLimiterContract:
    def test_requests_are_refused_at_limit_plus_one(self, new_limiter: Callable[..., Limiter]) -> None:
        key, _ = names()
        scope = Scope(key, Limits(rpm=3))

        metrics = Metrics()

        async def scenario(limiter: Limiter) -> None:
            limiter.stats.bind(metrics)
            results = [await admit(limiter, [scope]) for _ in range(4)]
            assert [r.allowed for r in results] == [True, True, True, False]
            assert [r.headers["x-ratelimit-remaining-requests"] for r in results] == ["2", "1", "0", "0"]
            assert {r.headers["x-ratelimit-limit-requests"] for r in results} == {"3"}
            assert all(RESET.fullmatch(r.headers["x-ratelimit-reset-requests"]) for r in results)
            assert "x-ratelimit-limit-tokens" not in results[0].headers  # no tpm, no token headers
            refused = results[-1]
            assert (refused.reason, refused.scope, refused.reservation) == (LimitKind.requests, key, None)
            assert 1 <= refused.retry_after_s <= 600
            assert refused.headers["retry-after"] == str(int(refused.retry_after_s))
            error = refused.error()
            assert (
                error.status_code == 429 and error.headers()["retry-after"] == refused.headers["retry-after"]
            )
            assert limiter.stats.refused[LimitKind.requests] == 1
            text = metrics.render().decode()
            label = f'limiter="{limiter.stats.backend}",reason="requests"'
            assert f"turnout_limiter_refused_total{{{label}}} 1.0" in text

        drive(new_limiter(window_s=600), scenario)

    def test_tokens_are_reserved_and_settle_gives_back_the_difference(
        self, new_limiter: Callable[..., Limiter]
    ) -> None:
        key, _ = names()
        scope = Scope(key, Limits(tpm=100))

        async def scenario(limiter: Limiter) -> None:
            first = await admit(limiter, [scope], 60)
            assert first.allowed and first.headers["x-ratelimit-remaining-tokens"] == "40"
            too_many = await admit(limiter, [scope], 50)
            assert too_many.reason is LimitKind.tokens
            assert too_many.headers["x-ratelimit-remaining-tokens"] == "40"
            assert first.reservation is not None
            await limiter.settle(first.reservation, 20, 0.0)  # it used 20 of the 60 reserved
            again = await admit(limiter, [scope], 50)
            assert again.allowed and again.headers["x-ratelimit-remaining-tokens"] == "30"

        drive(new_limiter(window_s=600), scenario)

    def test_settling_twice_is_settling_once(self, new_limiter: Callable[..., Limiter]) -> None:
        key, _ = names()
        scope = Scope(key, Limits(tpm=100, concurrent=1, usd_day=10.0))

        async def scenario(limiter: Limiter) -> None:
            first = await admit(limiter, [scope], 60, 1.0)
            assert first.reservation is not None
            await limiter.settle(first.reservation, 10, 0.5)
            await limiter.settle(first.reservation, 10, 0.5)
            assert await limiter.spent(key) == pytest.approx((0.5, 0.5))
            assert (await admit(limiter, [scope], 90)).allowed  # 10 + 90: the delta was applied once
            refused = await admit(limiter, [scope], 0)
            assert refused.reason is LimitKind.concurrent  # and the slot was given back once

        drive(new_limiter(window_s=600), scenario)

    def test_concurrency_slots_come_back_on_settle(self, new_limiter: Callable[..., Limiter]) -> None:
        key, _ = names()
        scope = Scope(key, Limits(concurrent=2))

        async def scenario(limiter: Limiter) -> None:
            first, second = await admit(limiter, [scope]), await admit(limiter, [scope])
            third = await admit(limiter, [scope])
            assert first.allowed and second.allowed and not third.allowed
            assert (third.reason, third.retry_after_s, third.headers["retry-after"]) == (
                LimitKind.concurrent,
                1.0,
                "1",
            )
            assert first.reservation is not None
            await limiter.settle(first.reservation, 0, 0.0)
            assert (await admit(limiter, [scope])).allowed

        drive(new_limiter(), scenario)

    def test_a_lease_never_settled_expires_and_a_late_settle_still_charges(
        self, new_limiter: Callable[..., Limiter]
    ) -> None:
        key, _ = names()
        scope = Scope(key, Limits(concurrent=1, usd_day=10.0))

        async def scenario(limiter: Limiter) -> None:
            lost = await admit(limiter, [scope], 0, 1.0)
            assert not (await admit(limiter, [scope])).allowed
            await asyncio.sleep(0.35)
            after = await admit(limiter, [scope], 0, 9.0)  # the lost lease's slot and USD are free
            assert after.allowed
            assert lost.reservation is not None
            await limiter.settle(lost.reservation, 0, 0.25)
            await limiter.settle(lost.reservation, 0, 0.25)
            assert await limiter.spent(key) == pytest.approx((0.25, 0.25))
            assert (await admit(limiter, [scope])).reason is LimitKind.concurrent  # nothing released twice

        drive(new_limiter(lease_ttl_s=0.3), scenario)

    def test_budgets_count_in_flight_reservations_and_charge_real_cost(
        self, new_limiter: Callable[..., Limiter]
    ) -> None:
        key, team = names()
        daily, monthly = Scope(key, Limits(usd_day=1.0)), Scope(team, Limits(usd_month=0.5))

        async def scenario(limiter: Limiter) -> None:
            a, b = await admit(limiter, [daily], 0, 0.4), await admit(limiter, [daily], 0, 0.4)
            refused = await admit(limiter, [daily], 0, 0.4)  # 0.8 in flight + 0.4 > 1.0
            assert a.allowed and b.allowed and refused.reason is LimitKind.budget_day
            midnight = (math.floor(time.time() / 86400) + 1) * 86400
            assert refused.retry_after_s == pytest.approx(midnight - time.time(), abs=2)
            assert a.reservation and b.reservation
            await limiter.settle(a.reservation, 0, 0.1)
            assert await limiter.spent(key) == pytest.approx((0.1, 0.1))
            c = await admit(limiter, [daily], 0, 0.4)  # 0.1 spent + 0.4 + 0.4 in flight
            assert c.allowed and c.reservation
            await limiter.settle(b.reservation, 0, 0.4)
            await limiter.settle(c.reservation, 0, 0.4)
            assert (await admit(limiter, [daily], 0, 0.2)).reason is LimitKind.budget_day
            last = await admit(limiter, [daily], 0, 0.1)  # exactly up to the budget
            assert last.allowed and last.reservation
            await limiter.settle(last.reservation, 0, 0.1)
            assert (await admit(limiter, [daily], 0, 0.0)).reason is LimitKind.budget_day  # spent out

            month = await admit(limiter, [monthly], 0, 0.6)  # nothing spent: the estimate is over it
            assert month.reason is LimitKind.budget_month and 1 <= month.retry_after_s <= 31 * 86400
            said = month.error().message  # it said "Monthly budget reached" with nothing spent
            assert (
                said.startswith(f"Monthly budget of {team} cannot cover this request") and "estimated" in said
            )
            assert (await admit(limiter, [Scope(team + "-zero", Limits(usd_day=0.0))])).reason is (
                LimitKind.budget_day
            )

        drive(new_limiter(), scenario)

    def test_a_refusal_by_one_scope_charges_no_scope(self, new_limiter: Callable[..., Limiter]) -> None:
        key, team = names()
        roomy = Scope(key, Limits(rpm=10, tpm=1000, concurrent=1, usd_day=1.0))
        tight = Scope(team, Limits(tpm=50))

        async def scenario(limiter: Limiter) -> None:
            refused = await admit(limiter, [roomy, tight], 100, 0.5)
            assert (refused.reason, refused.scope) == (LimitKind.tokens, team)
            assert refused.headers["x-ratelimit-remaining-tokens"] == "50"  # the tightest scope
            alone = await admit(limiter, [roomy], 100, 0.9)  # slot, USD and tokens all untouched
            assert alone.allowed
            assert alone.headers["x-ratelimit-remaining-requests"] == "9"
            assert alone.headers["x-ratelimit-remaining-tokens"] == "900"

            closed = Scope(key + "-closed", Limits(rpm=0))
            assert (await admit(limiter, [closed, tight], 30)).scope == closed.name
            assert (await admit(limiter, [tight], 50)).headers["x-ratelimit-remaining-tokens"] == "0"

        drive(new_limiter(window_s=600), scenario)

    def test_windows_roll_over(self, new_limiter: Callable[..., Limiter]) -> None:
        key, _ = names()
        scope = Scope(key, Limits(rpm=2, tpm=100))

        async def next_window() -> None:  # windows are whole seconds of the clock: start each near one
            await asyncio.sleep(math.ceil(time.time()) + 0.02 - time.time())

        async def scenario(limiter: Limiter) -> None:
            await next_window()
            first = await admit(limiter, [scope], 10)
            await admit(limiter, [scope], 10)
            refused = await admit(limiter, [scope], 10)
            assert refused.reason is LimitKind.requests and refused.retry_after_s == 1.0
            assert refused.headers["x-ratelimit-reset-requests"].endswith("ms")
            await next_window()
            fresh = await admit(limiter, [scope], 90)
            assert fresh.allowed and fresh.headers["x-ratelimit-remaining-requests"] == "1"
            assert first.reservation is not None
            await limiter.settle(first.reservation, 100, 0.0)  # adjusts its own, past window
            assert (await admit(limiter, [scope], 10)).headers["x-ratelimit-remaining-tokens"] == "0"

        drive(new_limiter(window_s=1), scenario)

    def test_seed_spend_raises_spend_to_at_least_the_ledger(
        self, new_limiter: Callable[..., Limiter]
    ) -> None:
        key, team = names()
        scope = Scope(key, Limits(usd_day=3.0, usd_month=10.0))

        async def scenario(limiter: Limiter) -> None:
            first = await admit(limiter, [scope, Scope(team)], 0, 0.1)
            assert first.unseeded == (key,)  # budgeted and never seeded; the team has no budget
            await limiter.seed_spend(key, 2.0, 5.0)
            assert await limiter.spent(key) == pytest.approx((2.0, 5.0))
            assert (await admit(limiter, [scope], 0, 0.1)).unseeded == ()
            await limiter.seed_spend(key, 1.0, 1.0)  # lower than what is counted: no change
            assert await limiter.spent(key) == pytest.approx((2.0, 5.0))
            assert first.reservation is not None
            await limiter.settle(first.reservation, 0, 0.5)
            assert await limiter.spent(key) == pytest.approx((2.5, 5.5))
            # 2.5 spent + 0.1 in flight + 0.6 > 3.0
            assert (await admit(limiter, [scope], 0, 0.6)).reason is LimitKind.budget_day
            await limiter.seed_spend(key, 2.5, 9.9)
            assert (await admit(limiter, [scope], 0, 0.2)).reason is LimitKind.budget_month

        drive(new_limiter(), scenario)

    def test_a_cancelled_request_is_charged_what_it_used(self, new_limiter: Callable[..., Limiter]) -> None:
        key, _ = names()
        scope = Scope(key, Limits(concurrent=1, usd_day=5.0))

        async def scenario(limiter: Limiter) -> None:
            streaming = asyncio.Event()

            async def request() -> None:
                admitted = await admit(limiter, [scope], 100, 1.0)
                assert admitted.reservation is not None
                try:
                    streaming.set()
                    await asyncio.sleep(30)
                finally:  # the client went away: charge what was streamed so far
                    await limiter.settle(admitted.reservation, 40, 0.4)

            task = asyncio.create_task(request())
            await streaming.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await limiter.spent(key) == pytest.approx((0.4, 0.4))
            assert (await admit(limiter, [scope], 0, 4.6)).allowed

        drive(new_limiter(), scenario)

    def test_unlimited_scopes_get_no_headers_but_a_reservation(
        self, new_limiter: Callable[..., Limiter]
    ) -> None:
        key, _ = names()

        async def scenario(limiter: Limiter) -> None:
            result = await admit(limiter, [Scope(key)], 10, 0.01)
            assert result.allowed and result.headers == {} and result.reservation is not None
            await limiter.settle(result.reservation, 5, 0.02)
            assert await limiter.spent(key) == pytest.approx((0.02, 0.02))

        drive(new_limiter(), scenario)

    def test_admission_bench_measures_every_admission(
        self, backend: str, new_limiter: Callable[..., Limiter]
    ) -> None:
        """Speed itself is `turnout bench limits`' to report, never a timed test's to assert."""
        timings: dict[str, float] = {}

        async def scenario(limiter: Limiter) -> None:
            timings.update(await bench_admission(limiter, n=200))

        drive(new_limiter(), scenario)
        assert timings["n"] == 200
        assert 0 < timings["admit_p50_us"] <= timings["admit_p99_us"]
        assert timings["admit_p50_us"] <= timings["admit_settle_p50_us"]


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0ms"), (250, "250ms"), (1000, "1s"), (8640, "8.64s"), (12000, "12s"), (63000, "1m3s")],
)
def test_reset_durations_are_written_as_openai_does(ms: int, text: str) -> None:
    assert format_reset(ms) == text


def test_the_url_chooses_the_limiter() -> None:
    assert isinstance(make_limiter(None, on_failure=FailMode.open), MemoryLimiter)
    shared = make_limiter("redis://127.0.0.1:9/0", on_failure=FailMode.closed)  # connects lazily
    assert isinstance(shared, RedisLimiter) and shared.on_failure is FailMode.closed
    asyncio.run(shared.close())


# --- Redis only ---------------------------------------------------------------------------------


class RedisProcess:
    """A redis-server on a port of its own that a test stops and starts; data in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.answers():
            assert time.monotonic() < deadline and self.process.poll() is None, "redis-server did not start"
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot hear SIGTERM
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open and commands queue in the socket, unanswered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    server = RedisProcess(tmp_path)
    yield server
    server.stop()


def count_records(caplog: pytest.LogCaptureFixture, level: int, text: str) -> int:
    return sum(r.levelno == level and text in r.getMessage() for r in caplog.records)


@pytest.mark.integration
def test_every_key_shares_one_slot_and_redis_keeps_the_calendar(redis_url: str) -> None:
    key, team = names()

    async def scenario() -> None:
        limiter = RedisLimiter(redis_url, on_failure=FailMode.closed, timeout_s=1.0)
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            result = await admit(limiter, [Scope(key, Limits(rpm=5)), Scope(team, Limits(usd_day=1))], 5, 0.1)
            assert result.reservation is not None
            await limiter.settle(result.reservation, 5, 0.1)
            keys = [str(k) for k in await client.keys(f"*{key.removeprefix('key:')}*")]
            assert len(keys) == 12  # per scope: requests, tokens, slots, USD in flight, day, month
            assert {key_slot(k.encode()) for k in keys} == {key_slot(b"{turnout}:leases")}
            assert f"{{turnout}}:sm:{datetime.now(UTC):%Y%m}:{team}" in keys

            await client.script_flush()  # a restarted or failed-over Redis forgot the scripts
            assert (await admit(limiter, [Scope(key, Limits(rpm=5))])).allowed
        finally:
            await client.aclose()
            await limiter.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_fail_open_while_redis_is_down_logs_once_and_recovers(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="turnout.limits")
    key, _ = names()
    scope = Scope(key, Limits(rpm=1, usd_day=1.0))

    async def scenario() -> None:
        limiter = RedisLimiter(own_redis.url, on_failure=FailMode.open, timeout_s=0.5, backoff_s=0.2)
        try:
            down = [await limiter.admit([scope], 10, 0.5) for _ in range(5)]
            assert all(a.allowed and a.degraded and a.reservation for a in down)
            assert down[0].reservation is not None
            await limiter.settle(down[0].reservation, 10, 0.5)  # kept for when Redis is back
            assert (limiter.stats.store_errors, limiter.stats.degraded) == (1, 5)  # one probe per back-off
            assert limiter.stats.store_up is False
            assert count_records(caplog, logging.WARNING, "failing open") == 1

            own_redis.start()
            await asyncio.sleep(0.25)
            up = await limiter.admit([scope], 10, 0.0)
            assert up.allowed and not up.degraded
            assert count_records(caplog, logging.INFO, "reachable again") == 1
            # the fail-open request's settle is replayed in the background
            assert await eventually(lambda: limiter.spent(key), pytest.approx((0.5, 0.5)))
            assert (await limiter.admit([scope], 10, 0.0)).reason is LimitKind.requests

            own_redis.stop()
            assert (await limiter.admit([scope], 10, 0.0)).degraded
            assert count_records(caplog, logging.WARNING, "failing open") == 2
        finally:
            await limiter.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_fail_closed_refuses_while_redis_is_down(own_redis: RedisProcess) -> None:
    key, _ = names()

    async def scenario() -> None:
        limiter = RedisLimiter(own_redis.url, on_failure=FailMode.closed, timeout_s=0.5, backoff_s=0.1)
        try:
            down = await limiter.admit([Scope(key)], 10, 0.1)
            assert (down.allowed, down.degraded, down.reason, down.reservation) == (False, True, None, None)
            assert down.retry_after_s == 1.0 and down.error().status_code == 429
            own_redis.start()
            await asyncio.sleep(0.15)
            back = await limiter.admit([Scope(key)], 10, 0.1)
            assert back.allowed and not back.degraded
        finally:
            await limiter.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_a_settle_during_an_outage_is_replayed_once(own_redis: RedisProcess) -> None:
    key, _ = names()
    scope = Scope(key, Limits(concurrent=1, tpm=100))
    own_redis.start()

    async def scenario() -> None:
        limiter = RedisLimiter(
            own_redis.url, on_failure=FailMode.closed, timeout_s=0.5, backoff_s=0.1, window_s=3600
        )
        try:
            held = await admit(limiter, [scope], 60, 0.2)
            assert held.reservation is not None
            client = aioredis.Redis.from_url(own_redis.url)
            await client.save()  # the restarted server comes back with the lease
            await client.aclose()
            own_redis.stop()
            await limiter.settle(held.reservation, 20, 0.1)  # Redis is down: queued

            own_redis.start()
            await asyncio.sleep(0.15)
            # the queued settle is replayed before the next admission: the slot it held is free again
            probe = await limiter.admit([scope], 0, 0.0)
            assert probe.allowed and probe.reservation is not None
            assert await limiter.spent(key) == pytest.approx((0.1, 0.1))  # replayed, once
            await limiter.settle(probe.reservation, 0, 0.0)
            after = await admit(limiter, [scope], 80)
            assert after.allowed and after.reservation is not None
            if after.reservation.window == held.reservation.window:
                assert after.headers["x-ratelimit-remaining-tokens"] == "0"  # 20 + 80
            await limiter.settle(held.reservation, 20, 0.1)
            assert await limiter.spent(key) == pytest.approx((0.1, 0.1))
        finally:
            await limiter.close()

    asyncio.run(scenario())


@pytest.mark.integration
@pytest.mark.parametrize("mode", [FailMode.open, FailMode.closed])
def test_slots_taken_in_a_stalled_redis_do_not_outlive_their_requests(
    own_redis: RedisProcess, mode: FailMode
) -> None:
    """A stalled (SIGSTOPped) Redis runs the admissions it was sent once it resumes, after the
    gateway gave up on them and decided without it. Those leases must be given back when the
    requests end (or at once, for a refused one), not held for the 600 s lease."""
    key, _ = names()
    scope = Scope(key, Limits(concurrent=1))
    own_redis.start()

    async def scenario() -> None:
        limiter = RedisLimiter(own_redis.url, on_failure=mode, timeout_s=0.3, backoff_s=0.2)
        client = aioredis.Redis.from_url(own_redis.url)
        try:
            first = await admit(limiter, [scope])
            assert first.allowed
            await limiter.settle(first.reservation, 0, 0.0)  # type: ignore[arg-type]
            own_redis.pause()
            stalled = await limiter.admit([scope], 5, 0.01)  # sent, never answered
            assert stalled.degraded and stalled.allowed is (mode is FailMode.open)
            own_redis.resume()  # Redis now runs the admission it was sent: a lease nobody will settle
            leases = await client.zcard("{turnout}:leases")
            if stalled.reservation is not None:
                assert leases == 1
                await limiter.settle(stalled.reservation, 5, 0.01)  # the request ends
            assert await eventually(lambda: client.zcard("{turnout}:leases"), 0)
            assert await eventually(lambda: client.get(f"{{turnout}}:cc:{key}"), b"0")
            again = await limiter.admit([scope], 0, 0.0)
            assert again.allowed and not again.degraded, "the key is not locked out"
        finally:
            await client.aclose()
            await limiter.close()

    asyncio.run(scenario())


@pytest.mark.integration
def test_a_settle_that_reaches_redis_before_its_stalled_admission_leaves_nothing_held(
    own_redis: RedisProcess,
) -> None:
    """The settle of an admission decided without Redis may reach Redis first (on a new
    connection) and the admission after it: the tombstone it leaves stops the late charge."""
    key, _ = names()
    scope = Scope(key, Limits(concurrent=1))
    own_redis.start()

    async def scenario() -> None:
        limiter = RedisLimiter(own_redis.url, on_failure=FailMode.open, timeout_s=0.3, backoff_s=0.0)
        try:
            reservation = Reservation("late-one", (key,), 0, 0, -1, degraded=True)
            await limiter.settle(reservation, 0, 0.0)
            await limiter.settle(reservation, 0, 0.0)  # a second settle is a no-op
            limiter_admit = limiter._admit  # the admission as the stalled Redis would run it now
            args = ["{turnout}:", "late-one", 0, 0, 60_000, 600_000, 1, key, -1, -1, 1, -1, -1]
            await limiter_admit(limiter._keys, args)
            held = await limiter.admit([scope], 0, 0.0)
            assert held.allowed and not held.degraded
        finally:
            await limiter.close()

    asyncio.run(scenario())


RPM, TPM = 200, 3000


def hammer(url: str, start_at: float, stop_at: float, names: tuple[str, str], seed: int) -> Any:
    """One process: admit and settle as fast as it can on two scopes; what was admitted, per window."""
    return asyncio.run(_hammer(url, start_at, stop_at, names, seed))


async def _hammer(url: str, start_at: float, stop_at: float, names: tuple[str, str], seed: int) -> Any:
    rng = random.Random(seed)
    limiter = RedisLimiter(url, on_failure=FailMode.closed, window_s=1, timeout_s=2.0)
    by_requests, by_tokens = Scope(names[0], Limits(rpm=RPM)), Scope(names[1], Limits(tpm=TPM))
    requests: list[int] = []
    tokens: list[tuple[int, int]] = []
    degraded = 0
    await asyncio.sleep(max(0.0, start_at - time.time()))
    while time.time() < stop_at:
        first = await limiter.admit([by_requests], 0, 0.0)
        if first.reservation is not None:
            requests.append(first.reservation.window)
            await limiter.settle(first.reservation, 0, 0.0)
        wanted = rng.randint(1, 50)
        second = await limiter.admit([by_tokens], wanted, 0.0)
        if second.reservation is not None:
            used = rng.randint(wanted // 2, wanted)
            await limiter.settle(second.reservation, used, 0.0)
            tokens.append((second.reservation.window, used))
        degraded += first.degraded + second.degraded
    await limiter.close()
    return requests, tokens, degraded


def _ready(barrier: Any) -> None:
    barrier.wait(60)  # a worker process has imported everything: hold it until all eight have


@pytest.mark.slow
@pytest.mark.integration
def test_processes_sharing_one_redis_stay_within_the_limits(redis_url: str) -> None:
    scopes = names()
    context = get_context("spawn")
    barrier = context.Barrier(9)
    with ProcessPoolExecutor(8, mp_context=context, initializer=_ready, initargs=(barrier,)) as pool:
        for _ in range(8):
            pool.submit(time.time)  # starts the eight workers
        barrier.wait(60)
        start_at = math.ceil(time.time() + 0.2)  # whole seconds: the 1 s windows of Redis's clock
        stop_at = start_at + 2
        futures = [pool.submit(hammer, redis_url, start_at, stop_at, scopes, seed) for seed in range(8)]
        results = [future.result(timeout=60) for future in futures]
    requests: Counter[int] = Counter()
    tokens: Counter[int] = Counter()
    for admitted, used, degraded in results:
        assert degraded == 0
        requests.update(admitted)
        for window, count in used:
            tokens[window] += count
    assert max(requests.values()) <= RPM * 1.01, requests
    assert max(tokens.values()) <= TPM * 1.01, tokens
    for window in (start_at, start_at + 1):  # every process was running for all of these
        assert requests[window] >= 0.9 * RPM, requests
        assert tokens[window] >= 0.9 * TPM, tokens
