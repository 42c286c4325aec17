"""The shared `Limiter`: counters in Redis, one Lua script per admission, for many gateway replicas.

Every key carries the same hash tag (`{turnout}` by default), so all of them live in one cluster
slot and one script can check and charge all of a request's scopes atomically; the tag is global
rather than per team because a key's counters must sit with its team's and `spent(key)` must find
them without knowing the team, and one Redis core runs far more admissions per second than a
gateway fleet sends. Time is Redis's own (`TIME` inside the scripts), so replicas with skewed clocks
share windows, days and months. While Redis is unreachable, admissions are decided by FailMode
without waiting on it (one probe per back-off), one log line says so and one says when it is back;
settles and seeds made meanwhile are replayed then. This module never raises for a Redis failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from router.accounts.limits import (
    Admission,
    FailMode,
    LimiterStats,
    Reservation,
    Scope,
    Usage,
    admission,
    degraded_admission,
    new_id,
    to_micros,
)

log = logging.getLogger("turnout.limits")

# Keys, after the tag prefix p = "{turnout}:":
#   rq:<window>:<scope>, tk:<window>:<scope>   requests and tokens per window (expire after 2 windows)
#   cc:<scope>, fu:<scope>                      leases held and USD micros in flight
#   sd:<day>:<scope>, sm:<yyyymm>:<scope>       settled USD micros per UTC day and month
#   leases (zset id -> expiry ms), lease-data (hash id -> [usd, scopes...]),
#   expired (zset id -> forget-at ms: expired leases that may still be settled),
#   gone (zset id -> forget-at ms: admissions settled before Redis ran them, which it must not charge)
# Window keys depend on TIME, so they cannot all be in KEYS; they share KEYS[1]'s slot through the tag.
_PRELUDE = """
local p = ARGV[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(now / 86400000)
-- yyyymm of a day since 1970-01-01 (H. Hinnant's civil_from_days)
local z = day + 719468
local era = math.floor(z / 146097)
local doe = z - era * 146097
local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
local mp = math.floor((5 * doy + 2) / 153)
local m = mp < 10 and mp + 3 or mp - 9
local month = (yoe + era * 400 + (m <= 2 and 1 or 0)) * 100 + m
local DAY_TTL, MONTH_TTL = 2 * 86400000, 32 * 86400000
"""

_ADMIT = (
    _PRELUDE
    + """
local id, tokens, usd = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local window_ms, lease_ms, n = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local win = math.floor(now / window_ms)

-- an admission that waited in a stalled Redis while its gateway gave up on it and settled it
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if redis.call('ZREM', KEYS[4], id) == 1 then return {0, now} end

-- leases of requests whose process died before settling: give back what they held
for _, old in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 16)) do
  local data = redis.call('HGET', KEYS[2], old)
  if data then
    local held = cjson.decode(data)
    for j = 2, #held do
      redis.call('DECR', p .. 'cc:' .. held[j])
      redis.call('DECRBY', p .. 'fu:' .. held[j], held[1])
    end
    redis.call('HDEL', KEYS[2], old)
  end
  redis.call('ZREM', KEYS[1], old)
  redis.call('ZADD', KEYS[3], now + lease_ms, old)
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)

local function over(committed, budget)
  return budget >= 0 and (committed >= budget or committed + usd > budget)
end

local out = {0, now}
local allowed = 1
for i = 0, n - 1 do
  local a = 8 + i * 6
  local name = ARGV[a]
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local rq = tonumber(redis.call('GET', p .. 'rq:' .. win .. ':' .. name) or 0)
  local tk = tonumber(redis.call('GET', p .. 'tk:' .. win .. ':' .. name) or 0)
  local cc = tonumber(redis.call('GET', p .. 'cc:' .. name) or 0)
  local fu = tonumber(redis.call('GET', p .. 'fu:' .. name) or 0)
  local sd = redis.call('GET', p .. 'sd:' .. day .. ':' .. name)
  local sm = redis.call('GET', p .. 'sm:' .. month .. ':' .. name)
  local spent_day, spent_month = tonumber(sd or 0), tonumber(sm or 0)
  if (rpm >= 0 and rq + 1 > rpm) or (tpm >= 0 and tk + tokens > tpm) or (conc >= 0 and cc + 1 > conc)
     or over(spent_day + fu, tonumber(ARGV[a + 4])) or over(spent_month + fu, tonumber(ARGV[a + 5])) then
    allowed = 0
  end
  for _, v in ipairs({rq, tk, cc, fu, spent_day, spent_month, sd and 0 or 1, sm and 0 or 1}) do
    out[#out + 1] = v
  end
end
if allowed == 0 then return out end

local function bump(key, by)
  if redis.call('INCRBY', key, by) == by then redis.call('PEXPIRE', key, 2 * window_ms) end
end
local held = {ARGV[4]}
for i = 0, n - 1 do
  local name = ARGV[8 + i * 6]
  bump(p .. 'rq:' .. win .. ':' .. name, 1)
  bump(p .. 'tk:' .. win .. ':' .. name, tokens)
  redis.call('INCR', p .. 'cc:' .. name)
  if usd > 0 then redis.call('INCRBY', p .. 'fu:' .. name, usd) end
  held[#held + 1] = name
end
redis.call('ZADD', KEYS[1], now + lease_ms, id)
redis.call('HSET', KEYS[2], id, cjson.encode(held))
out[1] = 1
out[#out + 1] = win
return out
"""
)

# ARGV: p, id, tokens delta, cost micros, reserved micros, window, mode, lease ms, names...
# mode 'lease': an admission Redis answered. 'degraded': admitted without Redis; its admission may
# still sit in a stalled Redis, so give back the lease if Redis ran it, and else leave a tombstone
# that stops Redis from ever charging it (and makes a second settle a no-op).
_SETTLE = (
    _PRELUDE
    + """
local id, delta, cost, reserved, win = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6]
local leased = ARGV[7] == 'lease'
local live = redis.call('ZREM', KEYS[1], id)
if live == 1 then
  redis.call('HDEL', KEYS[2], id)
elseif redis.call('ZREM', KEYS[3], id) == 0 then
  if leased or redis.call('ZADD', KEYS[4], 'NX', now + tonumber(ARGV[8]), id) == 0 then
    return 0  -- settled already
  end
end
for i = 9, #ARGV do
  local name = ARGV[i]
  if live == 1 then
    redis.call('DECR', p .. 'cc:' .. name)
    redis.call('DECRBY', p .. 'fu:' .. name, reserved)
  end
  local tk = p .. 'tk:' .. win .. ':' .. name
  if leased and delta ~= 0 and redis.call('EXISTS', tk) == 1 then redis.call('INCRBY', tk, delta) end
  if cost > 0 then
    local sd, sm = p .. 'sd:' .. day .. ':' .. name, p .. 'sm:' .. month .. ':' .. name
    redis.call('INCRBY', sd, cost)
    redis.call('PEXPIRE', sd, DAY_TTL)
    redis.call('INCRBY', sm, cost)
    redis.call('PEXPIRE', sm, MONTH_TTL)
  end
end
return 1
"""
)

# ARGV: p, name, day micros, month micros
_SEED = (
    _PRELUDE
    + """
local function raise(key, value, ttl)
  local current = redis.call('GET', key)
  if not current or tonumber(current) < value then redis.call('SET', key, value, 'PX', ttl) end
end
raise(p .. 'sd:' .. day .. ':' .. ARGV[2], tonumber(ARGV[3]), DAY_TTL)
raise(p .. 'sm:' .. month .. ':' .. ARGV[2], tonumber(ARGV[4]), MONTH_TTL)
return 1
"""
)

_SPENT = (
    _PRELUDE
    + """
return {tonumber(redis.call('GET', p .. 'sd:' .. day .. ':' .. ARGV[2]) or 0),
        tonumber(redis.call('GET', p .. 'sm:' .. month .. ':' .. ARGV[2]) or 0)}
"""
)


def _limit(value: float | None, micros: bool = False) -> int:
    if value is None:
        return -1
    return to_micros(value) if micros else int(value)


def _usage(row: list[int]) -> Usage:
    requests, tokens, concurrent, inflight, day, month, day_missing, month_missing = row
    return Usage(requests, tokens, concurrent, inflight, day, month, day_missing == 1, month_missing == 1)


class RedisLimiter:
    """The `Limiter` over one Redis (or one cluster slot), shared by every replica pointing at it."""

    def __init__(
        self,
        url: str,
        *,
        on_failure: FailMode,
        window_s: float = 60.0,
        lease_ttl_s: float = 600.0,
        timeout_s: float = 0.05,
        backoff_s: float = 1.0,
        prefix: str = "turnout",
    ) -> None:
        self.stats = LimiterStats("redis")
        self.on_failure = on_failure
        self._window_ms = max(1, round(window_s * 1000))
        self._lease_ms = round(lease_ttl_s * 1000)
        self._backoff_s = backoff_s
        # no client-side retries: a retried admission could be charged twice, and a down Redis
        # must cost one short timeout per back-off, not several per request
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
        )
        self._p = f"{{{prefix}}}:"
        self._keys = [self._p + "leases", self._p + "lease-data", self._p + "expired", self._p + "gone"]
        self._admit = self._client.register_script(_ADMIT)
        self._settle_script = self._client.register_script(_SETTLE)
        self._seed = self._client.register_script(_SEED)
        self._spent = self._client.register_script(_SPENT)
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._pending: deque[tuple[Any, list[Any]]] = deque(maxlen=10_000)  # to replay once Redis is back
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replayer: asyncio.Task[Any] | None = None

    async def _run(self, script: Any, args: list[Any]) -> Any:
        """The script's reply, or None if Redis did not answer (logged once, counted, backed off)."""
        if not self._will_send():
            return None
        if self._down_since is not None:
            self._retry_at = time.monotonic() + self._backoff_s  # this call probes; the others keep skipping
        try:
            reply = await script(self._keys, args)
        except (RedisError, OSError) as error:
            self.stats.store_failed()
            self._retry_at = time.monotonic() + self._backoff_s
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning(
                    "Redis limiter unreachable (%s: %s); failing %s until it answers",
                    type(error).__name__,
                    error,
                    self.on_failure,
                )
            return None
        if self._down_since is not None:
            log.info("Redis limiter reachable again after %.1fs", time.monotonic() - self._down_since)
            self._down_since = None
            self.stats.store_answered()
            if self._pending:
                self._spawn(self._replay())
        return reply

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _queue(self, script: Any, args: list[Any]) -> None:
        """Keep a write for when Redis answers again; one background task tries after each back-off,
        so that what a stalled Redis holds is given back even if no request comes to probe it."""
        self._pending.append((script, args))
        if self._replayer is None or self._replayer.done():
            self._replayer = self._spawn(self._replay_until_empty())

    async def _replay_until_empty(self) -> None:
        while self._pending:
            await asyncio.sleep(max(self._retry_at - time.monotonic(), 0.0) + 0.01)
            if self._will_send():
                await self._replay()

    async def _replay(self) -> None:
        while self._pending:
            script, args = self._pending.popleft()
            if await self._run(script, args) is None:
                self._pending.appendleft((script, args))
                return

    async def admit(self, scopes: Sequence[Scope], tokens: int, usd: float) -> Admission:
        if tokens < 0 or usd < 0:
            raise ValueError("tokens and usd must not be negative")
        # shielded: if the caller is cancelled after Redis charged the request, the lease is given back
        task = self._spawn(self._admission(scopes, tokens, usd))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_orphan)
            raise

    def _release_orphan(self, task: asyncio.Task[Admission]) -> None:
        if not task.cancelled() and task.exception() is None and task.result().reservation is not None:
            held = task.result().reservation
            assert held is not None
            self._spawn(self._settlement(held, 0, 0))

    async def _admission(self, scopes: Sequence[Scope], tokens: int, usd: float) -> Admission:
        usd_micros = to_micros(usd)
        lease_id = new_id()
        args: list[Any] = [
            self._p,
            lease_id,
            tokens,
            usd_micros,
            self._window_ms,
            self._lease_ms,
            len(scopes),
        ]
        for scope in scopes:
            limits = scope.limits
            args += (
                scope.name,
                _limit(limits.rpm),
                _limit(limits.tpm),
                _limit(limits.concurrent),
                _limit(limits.usd_day, micros=True),
                _limit(limits.usd_month, micros=True),
            )
        if self._pending and self._will_send():  # Redis may be back: give back what stalls held first
            await self._replay()
        sent = self._will_send()
        reply = await self._run(self._admit, args)
        if reply is None:
            result = degraded_admission(scopes, tokens, usd, self.on_failure, lease_id)
            if result.reservation is None and sent:  # refused, but a stalled Redis may still charge it
                names = tuple(scope.name for scope in scopes)
                lost = Reservation(lease_id, names, tokens, usd_micros, -1, degraded=True)
                self._spawn(self._settlement(lost, 0, 0))
        else:
            used = [_usage(reply[i : i + 8]) for i in range(2, 2 + 8 * len(scopes), 8)]
            held = None
            if reply[0] == 1:
                names = tuple(scope.name for scope in scopes)
                held = Reservation(lease_id, names, tokens, usd_micros, int(reply[-1]))
            result = admission(scopes, used, tokens, usd_micros, int(reply[1]), self._window_ms, held)
        self.stats.count(result)
        return result

    async def settle(self, reservation: Reservation, tokens: int, usd: float) -> None:
        # shielded: a request cancelled while it settles (client gone) is still charged, once
        await asyncio.shield(self._spawn(self._settlement(reservation, tokens, to_micros(usd))))

    def _will_send(self) -> bool:
        """Whether the next `_run` will reach Redis at all (not skipped while backing off)."""
        return self._down_since is None or time.monotonic() >= self._retry_at

    async def _settlement(self, reservation: Reservation, tokens: int, cost: int) -> None:
        args = [
            self._p,
            reservation.id,
            tokens - reservation.tokens,
            cost,
            reservation.usd_micros,
            reservation.window,
            "degraded" if reservation.degraded else "lease",
            self._lease_ms,
            *reservation.scopes,
        ]
        if await self._run(self._settle_script, args) is None:
            self._queue(self._settle_script, args)

    async def spent(self, scope: str) -> tuple[float, float] | None:
        reply = await self._run(self._spent, [self._p, scope])
        return None if reply is None else (reply[0] / 1e6, reply[1] / 1e6)

    async def seed_spend(self, scope: str, usd_day: float, usd_month: float) -> None:
        args = [self._p, scope, to_micros(usd_day), to_micros(usd_month)]
        if await self._run(self._seed, args) is None:
            self._queue(self._seed, args)

    async def close(self) -> None:
        """Let settles under way finish (briefly), then drop the connections."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=1.0)
        for task in list(self._tasks):
            task.cancel()
        await self._client.aclose()
