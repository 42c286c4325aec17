"""The in-process limiter: one gateway's counters in memory (router.accounts.limits has the
contract, the admission rules every limiter shares, and make_limiter; limits_redis the shared one).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from router.accounts.limits import (
    DAY_MS,
    Admission,
    LimiterStats,
    Reservation,
    Scope,
    Usage,
    admission,
    month_of,
    new_id,
    refusals,
    to_micros,
)


@dataclass(slots=True)
class _Counters:
    window: int = -1
    requests: int = 0
    tokens: int = 0
    concurrent: int = 0
    inflight_micros: int = 0
    day: int = -1
    day_micros: int = 0
    month: int = -1
    month_micros: int = 0

    def usage(self, window: int, day: int, month: int) -> Usage:
        current = self.window == window
        return Usage(
            self.requests if current else 0,
            self.tokens if current else 0,
            self.concurrent,
            self.inflight_micros,
            self.day_micros if self.day == day else 0,
            self.month_micros if self.month == month else 0,
            self.day != day,
            self.month != month,
        )

    def charge(self, window: int, tokens: int, usd_micros: int) -> None:
        if self.window != window:
            self.window, self.requests, self.tokens = window, 0, 0
        self.requests += 1
        self.tokens += tokens
        self.concurrent += 1
        self.inflight_micros += usd_micros

    def release(self, usd_micros: int) -> None:
        self.concurrent -= 1
        self.inflight_micros -= usd_micros

    def spend(self, day: int, month: int, day_micros: int, month_micros: int, *, at_least: bool) -> None:
        """Add to the day's and month's spend, or raise each to at least the value (a seed)."""
        if self.day != day:
            self.day, self.day_micros = day, 0
        if self.month != month:
            self.month, self.month_micros = month, 0
        if at_least:
            self.day_micros = max(self.day_micros, day_micros)
            self.month_micros = max(self.month_micros, month_micros)
        else:
            self.day_micros += day_micros
            self.month_micros += month_micros


class MemoryLimiter:
    """One replica's limiter: plain dicts on the event loop's thread, O(1) per admission.

    Counters live as long as the process; the gateway seeds budgets from the ledger when it starts.
    """

    def __init__(
        self,
        *,
        window_s: float = 60.0,
        lease_ttl_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = LimiterStats("memory")
        self._window_ms = max(1, round(window_s * 1000))
        self._lease_ms = round(lease_ttl_s * 1000)
        self._clock = clock
        self._counters: dict[str, _Counters] = {}
        # insertion order is expiry order: every lease gets the same TTL
        self._leases: OrderedDict[str, tuple[int, Reservation]] = OrderedDict()
        self._expired: OrderedDict[str, int] = OrderedDict()  # expired, not yet settled: id -> forget at

    def _now(self) -> tuple[int, int, int]:
        now_ms = int(self._clock() * 1000)
        return now_ms, now_ms // DAY_MS, month_of(now_ms // DAY_MS)

    def _counter(self, name: str) -> _Counters:
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = _Counters()
        return counter

    def _expire(self, now_ms: int) -> None:
        while self._leases:
            lease_id, (expiry, held) = next(iter(self._leases.items()))
            if expiry > now_ms:
                break
            del self._leases[lease_id]
            for name in held.scopes:
                self._counter(name).release(held.usd_micros)
            self._expired[lease_id] = now_ms + self._lease_ms
        while self._expired and next(iter(self._expired.values())) <= now_ms:
            self._expired.popitem(last=False)

    async def admit(self, scopes: Sequence[Scope], tokens: int, usd: float) -> Admission:
        if tokens < 0 or usd < 0:
            raise ValueError("tokens and usd must not be negative")
        now_ms, day, month = self._now()
        window = now_ms // self._window_ms
        self._expire(now_ms)
        counters = [self._counter(scope.name) for scope in scopes]
        used = [counter.usage(window, day, month) for counter in counters]
        usd_micros = to_micros(usd)
        held = None
        if not any(refusals(s.limits, u, tokens, usd_micros) for s, u in zip(scopes, used, strict=True)):
            held = Reservation(new_id(), tuple(s.name for s in scopes), tokens, usd_micros, window)
            for counter in counters:
                counter.charge(window, tokens, usd_micros)
            self._leases[held.id] = (now_ms + self._lease_ms, held)
        result = admission(scopes, used, tokens, usd_micros, now_ms, self._window_ms, held)
        self.stats.count(result)
        return result

    async def settle(self, reservation: Reservation, tokens: int, usd: float) -> None:
        lease = self._leases.pop(reservation.id, None)
        if lease is None and self._expired.pop(reservation.id, None) is None:
            return  # settled already (or never admitted here)
        _, day, month = self._now()
        cost = to_micros(usd)
        for name in reservation.scopes:
            counter = self._counter(name)
            if lease is not None:
                counter.release(reservation.usd_micros)
            if counter.window == reservation.window:
                counter.tokens += tokens - reservation.tokens
            if cost:
                counter.spend(day, month, cost, cost, at_least=False)

    async def spent(self, scope: str) -> tuple[float, float] | None:
        _, day, month = self._now()
        used = self._counters.get(scope, _Counters()).usage(-1, day, month)
        return used.day_micros / 1e6, used.month_micros / 1e6

    async def seed_spend(self, scope: str, usd_day: float, usd_month: float) -> None:
        _, day, month = self._now()
        self._counter(scope).spend(day, month, to_micros(usd_day), to_micros(usd_month), at_least=True)

    async def close(self) -> None:
        return None
