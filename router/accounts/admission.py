"""Admission: a key's (and its team's) limits and budgets applied to one planned request.

The limiter (router.accounts.limits: in-process or Redis) decides; this module estimates what a request will
cost before it runs (prompt tokens, including retrieved context, plus max_tokens or the expected
output; USD on the first backend of the plan), seeds budget counters from the usage ledger the first
time a scope is seen and whenever the limiter reports one missing, and settles each reservation with
the real usage exactly once. Keys without limits never reach the limiter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from router.accounts.auth import Principal
from router.accounts.limits import Admission, Limiter, Reservation, Scope
from router.db import Pool
from router.http.errors import OverLimit

log = logging.getLogger("turnout.admission")

SEED_RETRY_S = 30.0
LEDGER_SPEND = """
SELECT
  coalesce(sum(cost_usd) FILTER (WHERE ts >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)
    AS day,
  coalesce(sum(cost_usd) FILTER (WHERE ts >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)
    AS month
FROM turnout_usage
WHERE ts >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AND {column} = %s
"""


@dataclass(frozen=True, slots=True)
class Estimate:
    tokens: int
    usd: float


class Admissions:
    def __init__(self, limiter: Limiter, pool: Pool) -> None:
        self.limiter = limiter
        self.pool = pool
        self._seeded: set[str] = set()
        self._retry_at: dict[str, float] = {}  # scope -> when to try the ledger again after a failure
        self._tasks: set[asyncio.Task[None]] = set()

    async def admit(self, principal: Principal, estimate: Estimate) -> Admission | None:
        """None when the key has no limits; else the limiter's verdict (check `.allowed`)."""
        scopes = principal.scopes()
        if not scopes:
            return None
        for scope in scopes:
            tpm = scope.limits.tpm
            if tpm is not None and estimate.tokens > tpm:
                raise OverLimit(
                    f"This request needs {estimate.tokens} tokens (its input plus the most output it "
                    f"may produce), more than the {tpm} tokens per minute of {scope.name}: no wait "
                    "admits it. Send less input, or ask for less output (max_tokens)."
                )
        await self._seed([scope for scope in scopes if _budgeted(scope) and scope.name not in self._seeded])
        admission = await self.limiter.admit(scopes, estimate.tokens, estimate.usd)
        if admission.unseeded:  # a new day or month, or a Redis that lost its data: reseed for what follows
            self._seeded.difference_update(admission.unseeded)
            self._spawn(self._seed([scope for scope in scopes if scope.name in admission.unseeded]))
        return admission

    async def _seed(self, scopes: list[Scope]) -> None:
        now = time.monotonic()
        for scope in scopes:
            if self._retry_at.get(scope.name, 0.0) > now:
                continue  # the ledger failed a moment ago: not one query and one log line per request
            kind, _, name = scope.name.partition(":")
            column = "key_id" if kind == "key" else "team"
            try:
                row = await self.pool.fetch_one(LEDGER_SPEND.format(column=column), (name,))
            except Exception as error:  # the ledger is down: budgets start from what the limiter holds
                log.warning("could not read spend of %s from the ledger: %s", scope.name, error)
                self._retry_at[scope.name] = now + SEED_RETRY_S
                continue
            day, month = (float(row["day"]), float(row["month"])) if row else (0.0, 0.0)
            await self.limiter.seed_spend(scope.name, day, month)
            self._seeded.add(scope.name)

    def settle(self, reservation: Reservation | None, tokens: int, usd: float) -> None:
        """Reconcile off the request path; the limiter makes a second settle of one reservation a no-op."""
        if reservation is not None:
            self._spawn(self.limiter.settle(reservation, tokens, usd))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        await self.limiter.close()


def _budgeted(scope: Scope) -> bool:
    return scope.limits.usd_day is not None or scope.limits.usd_month is not None
