"""Rate limits and spend budgets per API key and team, behind one `Limiter` protocol.

A request is admitted against every scope it belongs to (its key, the key's team) in one atomic
step: every scope's counters are charged or none is. Requests and tokens are counted in fixed
windows aligned to the limiter's clock; concurrency and reserved USD are held by a lease that the
request's settle (or, for a process that died, the lease's expiry) gives back; settled USD is summed
per UTC day and month. `MemoryLimiter` (router.accounts.limits_memory) serves one replica; `RedisLimiter` (router.accounts.limits_redis)
serves many. This module decides and counts: it never builds an HTTP response, never reads the
environment, and never logs a key, a prompt or a URL's password.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from router.http.errors import RateLimited

if TYPE_CHECKING:
    from router.metrics import Metrics

DAY_MS = 86_400_000
CONCURRENCY_RETRY_S = 1.0  # a slot frees when some request ends: there is no reset time to announce
_EPOCH = date(1970, 1, 1)


# The largest limits a key or team takes, over HTTP (router.http.admin) and on the command line
# alike: what the ledger's and headers' integers hold (a CLI limit of 10**23 once made every
# /v1/admin/keys a 500).
MAX_RPM = 2**31 - 1
MAX_CONCURRENT = 2**31 - 1
MAX_TPM = 2**53
MAX_USD = 1e12


class LimitKind(StrEnum):
    requests = "requests"
    tokens = "tokens"
    concurrent = "concurrent"
    budget_day = "budget_day"
    budget_month = "budget_month"


class FailMode(StrEnum):
    """What a shared limiter does while its store is unreachable."""

    open = "open"  # admit every request, unlimited, until the store answers again
    closed = "closed"  # refuse every request until the store answers again


@dataclass(frozen=True, slots=True)
class Limits:
    """Per scope; None means unlimited. rpm and tpm count per window (60 s unless configured)."""

    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None
    usd_day: float | None = None
    usd_month: float | None = None


@dataclass(frozen=True, slots=True)
class Scope:
    name: str  # "key:<id>", "team:<name>"
    limits: Limits = Limits()


@dataclass(frozen=True, slots=True)
class Reservation:
    """What an admitted request holds until it is settled. Plain data: it can be logged and copied."""

    id: str
    scopes: tuple[str, ...]
    tokens: int
    usd_micros: int
    window: int  # the window its tokens were counted in
    degraded: bool = False  # admitted without the store (fail-open): settle charges spend only


@dataclass(frozen=True, slots=True)
class Usage:
    """What one scope had in use when a request arrived, before the request was charged."""

    requests: int = 0
    tokens: int = 0
    concurrent: int = 0
    inflight_micros: int = 0
    day_micros: int = 0
    month_micros: int = 0
    day_missing: bool = False
    month_missing: bool = False


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    reason: LimitKind | None = None  # None when allowed, or refused because the store is down
    scope: str | None = None  # the scope whose limit refused the request
    retry_after_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-*, and retry-after if refused
    reservation: Reservation | None = None  # settle it exactly when allowed
    degraded: bool = False  # decided without the shared store (see FailMode)
    unseeded: tuple[str, ...] = ()  # budgeted scopes whose spend counter is missing: seed_spend them

    def error(self) -> RateLimited:
        """The 429 to answer a refused admission with; add `headers` to the response."""
        if self.reason is None:
            message = "Rate limits cannot be checked right now; retry shortly."
        elif self.reason in (LimitKind.budget_day, LimitKind.budget_month):
            # refused also when nothing is spent yet but this request's estimate is over the budget
            message = (
                f"{_DESCRIPTION[self.reason]} of {self.scope} cannot cover this request: what it has "
                f"spent plus this request's estimated cost is over it; retry after "
                f"{math.ceil(self.retry_after_s)}s, or ask for fewer max_tokens."
            )
        else:
            message = (
                f"{_DESCRIPTION[self.reason]} reached for {self.scope}; "
                f"retry after {math.ceil(self.retry_after_s)}s."
            )
        return RateLimited(message, retry_after=self.retry_after_s)


_DESCRIPTION = {
    LimitKind.requests: "Request rate limit",
    LimitKind.tokens: "Token rate limit",
    LimitKind.concurrent: "Concurrent request limit",
    LimitKind.budget_day: "Daily budget",
    LimitKind.budget_month: "Monthly budget",
}


@dataclass
class LimiterStats:
    """What /metrics says of the limiter. Labels are the limiter (memory or redis) and the reason,
    never a key or a team. Kept here and, once `bind` gives it the gateway's metrics, there too."""

    backend: str
    store_up: bool = True
    store_errors: int = 0  # calls to the shared store that failed
    degraded: int = 0  # admissions decided without the store
    refused: dict[LimitKind, int] = field(default_factory=dict)
    metrics: Metrics | None = None

    def bind(self, metrics: Metrics) -> None:
        self.metrics = metrics
        metrics.limiter_up.labels(self.backend).set(int(self.store_up))
        metrics.limiter_errors.labels(self.backend)
        metrics.limiter_degraded.labels(self.backend)
        for kind in LimitKind:
            metrics.limiter_refused.labels(self.backend, kind.value)

    def count(self, admission: Admission) -> None:
        if admission.degraded:
            self.degraded += 1
            if self.metrics is not None:
                self.metrics.limiter_degraded.labels(self.backend).inc()
        elif admission.reason is not None:
            self.refused[admission.reason] = self.refused.get(admission.reason, 0) + 1
            if self.metrics is not None:
                self.metrics.limiter_refused.labels(self.backend, admission.reason.value).inc()

    def store_failed(self) -> None:
        self.store_errors += 1
        self.store_answered(False)
        if self.metrics is not None:
            self.metrics.limiter_errors.labels(self.backend).inc()

    def store_answered(self, up: bool = True) -> None:
        if up != self.store_up and self.metrics is not None:
            self.metrics.limiter_up.labels(self.backend).set(int(up))
        self.store_up = up


class Limiter(Protocol):
    """Admission control for one gateway, or for every replica sharing one store.

    Contract, for every implementation:
    - `admit(scopes, tokens, usd)` checks every scope's limits against its counters plus this
      request (`tokens` = estimated prompt + max_tokens, `usd` = their estimated cost) and, only if
      all pass, charges all of them at once: one request, `tokens` to the current window, one
      concurrency slot and `usd` in flight. A refused admission charges nothing anywhere.
    - Every allowed, non-degraded admission holds a lease; `settle(reservation, tokens, usd)` with
      the real usage returns it, moves the tokens of its window by (real - reserved) and adds the
      real cost to the day's and month's spend. Settling twice does what settling once did; a lease
      never settled expires after `lease_ttl_s` (its slot and USD come back), and a settle within
      another `lease_ttl_s` still charges the spend.
    - Budgets compare settled spend + in-flight reservations + this request's estimate with the
      budget; a budget of 0 refuses everything.
    - `spent(scope)` is the settled (day, month) spend in USD, None if the store cannot answer.
    - `seed_spend(scope, day, month)` raises the current day's and month's spend to at least these
      values (from the ledger, at start-up or when an admission reports the scope `unseeded`).
    - Nothing raises because a store is down: admissions come back `degraded` (allowed or refused
      per FailMode), settles and seeds are replayed when the store answers again.
    """

    stats: LimiterStats

    async def admit(self, scopes: Sequence[Scope], tokens: int, usd: float) -> Admission: ...

    async def settle(self, reservation: Reservation, tokens: int, usd: float) -> None: ...

    async def spent(self, scope: str) -> tuple[float, float] | None: ...

    async def seed_spend(self, scope: str, usd_day: float, usd_month: float) -> None: ...

    async def close(self) -> None: ...


def to_micros(usd: float) -> int:
    """USD as integer micro-dollars: sums stay exact, in Redis as here."""
    return round(usd * 1_000_000)


def new_id() -> str:
    return secrets.token_hex(8)


@lru_cache(maxsize=8)
def month_of(day: int) -> int:
    """yyyymm of a day counted from 1970-01-01 (UTC)."""
    when = _EPOCH + timedelta(days=day)
    return when.year * 100 + when.month


def next_month_ms(day: int) -> int:
    when = _EPOCH + timedelta(days=day)
    first = date(when.year + when.month // 12, when.month % 12 + 1, 1)
    return (first - _EPOCH).days * DAY_MS


def format_reset(ms: int) -> str:
    """A duration as OpenAI's x-ratelimit-reset-* headers write it: "250ms", "12s", "8.64s", "1m3s"."""
    if ms < 1000:
        return f"{ms}ms"
    minutes, rest = divmod(ms, 60_000)
    seconds = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def _over_budget(committed: int, estimate: int, budget: float) -> bool:
    limit = to_micros(budget)
    return committed >= limit or committed + estimate > limit


def refusals(limits: Limits, used: Usage, tokens: int, usd_micros: int) -> list[LimitKind]:
    """Which of a scope's limits this request would break. Lua's `allowed` in limits_redis mirrors it."""
    broken = []
    if limits.rpm is not None and used.requests + 1 > limits.rpm:
        broken.append(LimitKind.requests)
    if limits.tpm is not None and used.tokens + tokens > limits.tpm:
        broken.append(LimitKind.tokens)
    if limits.concurrent is not None and used.concurrent + 1 > limits.concurrent:
        broken.append(LimitKind.concurrent)
    if limits.usd_day is not None and _over_budget(
        used.day_micros + used.inflight_micros, usd_micros, limits.usd_day
    ):
        broken.append(LimitKind.budget_day)
    if limits.usd_month is not None and _over_budget(
        used.month_micros + used.inflight_micros, usd_micros, limits.usd_month
    ):
        broken.append(LimitKind.budget_month)
    return broken


def retry_after(kind: LimitKind, now_ms: int, window_ms: int) -> float:
    if kind is LimitKind.concurrent:
        return CONCURRENCY_RETRY_S
    if kind is LimitKind.budget_day:
        until = (now_ms // DAY_MS + 1) * DAY_MS
    elif kind is LimitKind.budget_month:
        until = next_month_ms(now_ms // DAY_MS)
    else:
        until = (now_ms // window_ms + 1) * window_ms
    return float(math.ceil((until - now_ms) / 1000))


def rate_headers(
    scopes: Sequence[Scope], used: Sequence[Usage], tokens: int, charged: bool, reset_ms: int
) -> dict[str, str]:
    """OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}, for the most constrained scope."""
    headers: dict[str, str] = {}
    reset = format_reset(reset_ms)
    for kind in ("requests", "tokens"):
        tightest: tuple[int, int] | None = None
        for scope, usage in zip(scopes, used, strict=True):
            if kind == "requests":
                limit, count = scope.limits.rpm, usage.requests + charged
            else:
                limit, count = scope.limits.tpm, usage.tokens + (tokens if charged else 0)
            if limit is not None and (tightest is None or limit - count < tightest[1]):
                tightest = (limit, max(0, limit - count))
        if tightest is not None:
            headers[f"x-ratelimit-limit-{kind}"] = str(tightest[0])
            headers[f"x-ratelimit-remaining-{kind}"] = str(tightest[1])
            headers[f"x-ratelimit-reset-{kind}"] = reset
    return headers


def admission(
    scopes: Sequence[Scope],
    used: Sequence[Usage],
    tokens: int,
    usd_micros: int,
    now_ms: int,
    window_ms: int,
    reservation: Reservation | None,
) -> Admission:
    """The Admission for counters read before the request (`used`); allowed iff `reservation`."""
    reset_ms = (now_ms // window_ms + 1) * window_ms - now_ms
    headers = rate_headers(scopes, used, tokens, reservation is not None, reset_ms)
    unseeded = tuple(
        scope.name
        for scope, usage in zip(scopes, used, strict=True)
        if (scope.limits.usd_day is not None and usage.day_missing)
        or (scope.limits.usd_month is not None and usage.month_missing)
    )
    if reservation is not None:
        return Admission(True, headers=headers, reservation=reservation, unseeded=unseeded)
    wait, reason, name = 0.0, None, None
    for scope, usage in zip(scopes, used, strict=True):
        for kind in refusals(scope.limits, usage, tokens, usd_micros):
            seconds = retry_after(kind, now_ms, window_ms)
            if seconds > wait:
                wait, reason, name = seconds, kind, scope.name
    headers["retry-after"] = str(math.ceil(wait))
    return Admission(False, reason, name, wait, headers, None, unseeded=unseeded)


def degraded_admission(
    scopes: Sequence[Scope], tokens: int, usd: float, mode: FailMode, lease_id: str | None = None
) -> Admission:
    """Decided without the store: no counters, so no x-ratelimit headers. `lease_id`: the id of an
    admission sent to the store and never answered, which the reservation keeps so that its settle
    can give back whatever the store charged for it after all."""
    if mode is FailMode.closed:
        wait = CONCURRENCY_RETRY_S
        return Admission(False, retry_after_s=wait, headers={"retry-after": "1"}, degraded=True)
    names = tuple(s.name for s in scopes)
    held = Reservation(lease_id or new_id(), names, tokens, to_micros(usd), -1, degraded=True)
    return Admission(True, reservation=held, degraded=True)


def make_limiter(
    redis_url: str | None,
    *,
    on_failure: FailMode,
    window_s: float = 60.0,
    lease_ttl_s: float = 600.0,
    timeout_s: float = 0.05,
    backoff_s: float = 1.0,
) -> Limiter:
    """The limiter for TURNOUT_REDIS_URL: in memory when unset, else Redis (redis://, rediss://, unix://)."""
    if not redis_url:
        from router.accounts.limits_memory import MemoryLimiter

        return MemoryLimiter(window_s=window_s, lease_ttl_s=lease_ttl_s)
    from router.accounts.limits_redis import RedisLimiter

    return RedisLimiter(
        redis_url,
        on_failure=on_failure,
        window_s=window_s,
        lease_ttl_s=lease_ttl_s,
        timeout_s=timeout_s,
        backoff_s=backoff_s,
    )
