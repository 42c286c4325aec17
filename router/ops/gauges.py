"""Gauges that come from the database rather than from requests: the batch queue and live drift.

Every `interval_s` the gateway counts the batch lines waiting and running, and compares the ledger's
current window of routing signals with its reference window (router.ops.drift); each signal's PSI
becomes `turnout_drift_psi{signal}`, and a signal that passes 0.25 ("act") is logged as a warning
once, when it crosses, not at every look. A failed look is logged and the next one tries again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from router.db import Pool
from router.metrics import Metrics

log = logging.getLogger("turnout.drift")

BATCH_STATES = """
SELECT state, count(*) AS n FROM turnout_batch_lines WHERE state IN ('pending', 'running') GROUP BY state
"""
ACT = 0.25
FIRST_LOOK_S = 30.0


class LiveGauges:
    def __init__(
        self, pool: Pool, metrics: Metrics, interval_s: float, reference: timedelta, current: timedelta
    ) -> None:
        self.pool = pool
        self.metrics = metrics
        self.interval_s = interval_s
        self.reference = reference
        self.current = current
        self.acting: set[str] = set()  # signals over the threshold at the last look

    async def run(self) -> None:
        await asyncio.sleep(min(self.interval_s, FIRST_LOOK_S))  # not while start-up warms the gateway
        while True:
            await self.look()
            await asyncio.sleep(self.interval_s)

    async def look(self) -> None:
        try:
            await self.count_batch_lines()
        except Exception as error:
            log.warning("could not count batch lines: %s", error)
        try:
            await self.measure_drift()
        except Exception as error:
            log.warning("could not measure drift: %s", error)

    async def count_batch_lines(self) -> None:
        rows = await self.pool.fetch_all(BATCH_STATES)
        counts = {row["state"]: row["n"] for row in rows}
        self.metrics.batch_lines.labels("queued").set(counts.get("pending", 0))
        self.metrics.batch_lines.labels("running").set(counts.get("running", 0))

    async def measure_drift(self) -> None:
        from router.ops.drift import compute_drift

        report = await compute_drift(self.pool, self.reference, self.current)
        for signal in report.signals:
            if signal.psi is None:
                continue
            self.metrics.drift.labels(signal.signal).set(signal.psi)
            if signal.psi > ACT and signal.signal not in self.acting:
                self.acting.add(signal.signal)
                log.warning(
                    "routing signal %s drifted: PSI %.3f > %.2f between the last %s and the %s before "
                    "(turnout drift for details); the policy was tuned for other traffic",
                    signal.signal,
                    signal.psi,
                    ACT,
                    self.current,
                    self.reference,
                )
            elif signal.psi <= ACT:
                self.acting.discard(signal.signal)
