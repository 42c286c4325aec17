"""Retries, fallback and circuit breaking around backend calls.

`call_with_fallback` walks a route's backends in order: it skips those whose circuit is open,
retries one backend on retryable failures (429, 5xx, connection, timeout) with exponential backoff
and jitter, honouring Retry-After up to a cap, then falls back to the next. Errors that are the
caller's (a 400 from upstream) end the walk at once: another backend would refuse them too.
This module never builds an HTTP response; it returns a result or raises router.http.errors.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from router.backends.base import Backend
from router.http.errors import InvalidRequest, NoBackendAvailable, UpstreamError, UpstreamStatus
from router.policy.model import Circuit, Policy

T = TypeVar("T")


class CircuitState(StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


@dataclass
class CircuitBreaker:
    """Opens after `failures` consecutive failed attempts; after `cooldown_s` lets one probe through."""

    config: Circuit
    clock: Callable[[], float] = time.monotonic
    state: CircuitState = CircuitState.closed
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probing: bool = False

    def allow(self) -> bool:
        if self.state is CircuitState.closed:
            return True
        if self.state is CircuitState.open and self.clock() - self.opened_at >= self.config.cooldown_s:
            self.state = CircuitState.half_open
            self.probing = False
        if self.state is CircuitState.half_open and not self.probing:
            self.probing = True
            return True
        return False

    def success(self) -> None:
        self.state = CircuitState.closed
        self.consecutive_failures = 0
        self.probing = False

    def failure(self) -> None:
        self.consecutive_failures += 1
        if self.state is CircuitState.half_open or self.consecutive_failures >= self.config.failures:
            self.state = CircuitState.open
            self.opened_at = self.clock()
        self.probing = False


@dataclass
class Breakers:
    """One breaker per backend name; survives policy reloads, reset when its settings change."""

    by_name: dict[str, CircuitBreaker] = field(default_factory=dict)

    def get(self, name: str, config: Circuit) -> CircuitBreaker:
        breaker = self.by_name.get(name)
        if breaker is None or breaker.config != config:
            breaker = self.by_name[name] = CircuitBreaker(config)
        return breaker


@dataclass
class Outcome(Generic[T]):
    backend: Backend
    result: T
    failed_s: float  # spent on failed attempts and backoff: upstream time, not turnout's
    attempts: list[str]  # why each backend before this one was left: failed, circuit open, refused
    sent: int = 1  # upstream calls made, this one's included: a backend passed over is none


def backoff_delay(attempt: int, base_s: float, cap_s: float, retry_after: float | None) -> float:
    delay = min(cap_s, base_s * (2**attempt)) * random.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


async def call_with_fallback(
    backends: list[Backend],
    call: Callable[[Backend], Awaitable[T]],
    policy: Policy,
    breakers: Breakers,
) -> Outcome[T]:
    """Try each backend in order until one answers; raise the most telling error if none does. A
    backend whose adapter refuses the request before sending it (an Anthropic backend and a
    conversation with no user turn, or n > 1) is passed over for the next one: the route chose it,
    and another allowed backend may take the request as it is; if none does, that refusal is the
    answer."""
    waited = 0.0
    attempts: list[str] = []
    failed = 0  # calls sent that failed
    last: UpstreamError | None = None
    refused: InvalidRequest | None = None
    for backend in backends:
        breaker = breakers.get(backend.name, policy.circuit(backend.name))
        if not breaker.allow():
            attempts.append(f"{backend.name}: circuit open")
            continue
        retries = policy.retries(backend.name)
        for attempt in range(retries.attempts + 1):
            started = time.perf_counter()
            try:
                result = await call(backend)
            except UpstreamError as error:
                waited += time.perf_counter() - started
                failed += 1
                if isinstance(error, UpstreamStatus) and error.caller_fault:
                    breaker.success()  # the backend is healthy; the request is not
                    raise
                breaker.failure()
                last = error
                attempts.append(f"{backend.name}: {error.message}")
                too_long = error.retry_after is not None and error.retry_after > retries.max_retry_after_s
                if not error.retryable or too_long or attempt == retries.attempts or not breaker.allow():
                    break
                delay = backoff_delay(attempt, retries.backoff_s, retries.max_backoff_s, error.retry_after)
                await asyncio.sleep(delay)
                waited += delay
                continue
            except InvalidRequest as error:  # not sent: this backend cannot take it, the next may
                breaker.probing = False
                refused = refused or error
                attempts.append(f"{backend.name}: {error.message}")
                break
            except BaseException:
                breaker.probing = False
                raise
            breaker.success()
            return Outcome(backend, result, waited, attempts, failed + 1)
    summary = "; ".join(attempts) or "no backend to try"
    if last is None and refused is not None:
        raise refused
    if last is None:
        raise NoBackendAvailable(f"No backend is available for this request ({summary}).")
    last.message = f"All backends failed: {summary}"
    raise last
