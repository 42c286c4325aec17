"""The usage ledger's writer: records are queued on the request path and written in batches.

`record` only appends to a bounded buffer; a background task copies batches into turnout_usage
every `flush_seconds` or `batch_size` records. If Postgres is down, records wait (up to the bound,
then the oldest are dropped and counted) and the gateway keeps serving. Never blocks a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

log = logging.getLogger("turnout.usage")


@dataclass(slots=True)
class UsageRecord:
    ts: datetime
    key_id: str
    route: str | None
    backend: str | None
    model: str | None
    stream: bool
    status: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    overhead_ms: float
    error: str | None


COLUMNS = [f.name for f in fields(UsageRecord)]


def _row(record: UsageRecord) -> tuple[object, ...]:
    # dataclasses.astuple deep-copies every field: ~90 us a record, on the event loop
    return tuple(getattr(record, name) for name in COLUMNS)


class UsageRecorder:
    def __init__(self, pool: Any, flush_seconds: float, batch_size: int, max_buffer: int = 200_000) -> None:
        self._pool = pool
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._buffer: deque[UsageRecord] = deque(maxlen=max_buffer)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0

    def record(self, record: UsageRecord) -> None:
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped += 1
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="usage-recorder")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._flush_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        while self._buffer:
            batch = [self._buffer.popleft() for _ in range(min(self._batch_size, len(self._buffer)))]
            try:
                await self._pool.copy_records_to_table(
                    "turnout_usage", records=[_row(r) for r in batch], columns=COLUMNS
                )
            except Exception as error:  # keep serving; retry on the next tick
                log.warning("usage ledger write failed (%s); %d records kept for retry", error, len(batch))
                self._buffer.extendleft(reversed(batch))
                return
            self.written += len(batch)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.flush()
