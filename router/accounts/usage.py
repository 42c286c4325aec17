"""The usage ledger: its writer (records queued on the request path, written in batches) and the
summaries that `turnout usage` and GET /v1/usage print.

`record` only appends to a bounded buffer; a background task copies batches into turnout_usage
every `flush_seconds` or `batch_size` records. If Postgres is down, records wait (up to the bound,
then the oldest are dropped and counted) and the gateway keeps serving. A record Postgres refuses
(it should not happen: text is cleaned of NUL and bounded when recorded) is dropped on its own,
logged and counted, so that one bad row never holds back the others. Never blocks a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from router.db import Pool
from router.policy.model import Policy, Price

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
    team: str | None = None
    # the routing signals, for drift (`turnout drift`); never the text
    category: str | None = None  # capability category (model "auto" only)
    difficulty: float | None = None
    sensitive: bool | None = None  # None: the signals were never computed (refused before routing)
    finding_types: str | None = None  # sorted, comma-separated
    passages: int | None = None  # passages retrieved into the context; None: no retrieval


COLUMNS = [f.name for f in fields(UsageRecord)]
COLUMN_TYPES = {
    "ts": "timestamptz",
    "stream": "bool",
    "status": "int4",
    "prompt_tokens": "int4",
    "completion_tokens": "int4",
    "cost_usd": "float8",
    "latency_ms": "float8",
    "overhead_ms": "float8",
    "difficulty": "float4",
    "sensitive": "bool",
    "passages": "int4",
}
COPY_TYPES = [COLUMN_TYPES.get(name, "text") for name in COLUMNS]
COPY_USAGE = f"COPY turnout_usage ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)"
INT32_MAX = 2**31 - 1  # the token columns are Postgres integers
TEXT_LIMIT = 1000  # characters kept of a text column: a model name or an error message, never a prompt


def clean_text(value: str | None, limit: int = TEXT_LIMIT) -> str | None:
    """A value Postgres' text type takes: no NUL (which it refuses), at most `limit` characters;
    lone surrogates, which a JSON body can carry and UTF-8 cannot, become U+FFFD."""
    if value is None:
        return None
    if len(value) > limit:
        value = value[:limit] + "…"
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _row(record: UsageRecord) -> tuple[object, ...]:
    # dataclasses.astuple deep-copies every field: ~90 us a record, on the event loop
    return tuple(getattr(record, name) for name in COLUMNS)


def _refused(error: BaseException) -> bool:
    """Whether a failed write says Postgres cannot take these rows (a data or constraint error,
    SQLSTATE classes 22 and 23, or a value the driver cannot encode) rather than that it is away
    or unwell, which keeps the rows for the next try."""
    import psycopg

    if isinstance(error, psycopg.Error) and error.sqlstate:
        return error.sqlstate[:2] in ("22", "23")
    return isinstance(error, (psycopg.DataError, ValueError, TypeError, ArithmeticError))


class UsageRecorder:
    def __init__(self, pool: Pool, flush_seconds: float, batch_size: int, max_buffer: int = 200_000) -> None:
        self._pool = pool
        self._flush_seconds = flush_seconds
        self._batch_size = batch_size
        self._buffer: deque[UsageRecord] = deque(maxlen=max_buffer)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0  # oldest records pushed out of a full buffer while Postgres was away
        self.refused = 0  # records Postgres would not take

    def record(self, record: UsageRecord) -> None:
        record.model = clean_text(record.model, 200)
        record.error = clean_text(record.error)
        record.route = clean_text(record.route, 200)
        record.prompt_tokens = min(
            max(record.prompt_tokens, 0), INT32_MAX
        )  # an upstream's usage may be absurd
        record.completion_tokens = min(max(record.completion_tokens, 0), INT32_MAX)
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
                await self._write(batch)
            except Exception as error:
                if not _refused(error):  # keep serving; retry on the next tick
                    log.warning(
                        "usage ledger write failed (%s); %d records kept for retry", error, len(batch)
                    )
                    self._buffer.extendleft(reversed(batch))
                    return
                if not await self._write_one_by_one(batch):
                    return
                continue
            self.written += len(batch)

    async def _write(self, batch: list[UsageRecord]) -> None:
        async with self._pool.connection() as connection, connection.cursor().copy(COPY_USAGE) as copy:
            copy.set_types(COPY_TYPES)
            for record in batch:
                await copy.write_row(_row(record))

    async def _write_one_by_one(self, batch: list[UsageRecord]) -> bool:
        """After Postgres refused a batch: write its records alone and drop only those it refuses.
        False when Postgres went away meanwhile (the rest are kept for the next tick)."""
        for index, record in enumerate(batch):
            try:
                await self._write([record])
            except Exception as error:
                if not _refused(error):
                    self._buffer.extendleft(reversed(batch[index:]))
                    return False
                self.refused += 1
                log.error(
                    "usage ledger refused a record of key %s (%s: %s); dropped, the others are kept",
                    record.key_id,
                    type(error).__name__,
                    str(error).splitlines()[0] if str(error) else "",
                )
                continue
            self.written += 1
        return True

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


GROUPS = {"route": "route", "backend": "backend", "key": "key_id", "team": "team", "model": "model"}
_SINCE = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """'7d', '24h', '30m', '2w', or an ISO date/time (UTC when it names no zone)."""
    now = now or datetime.now(UTC)
    match = _SINCE.match(text.strip())
    if match and float(match[1]) == 0:  # "0d": a window with nothing in it ("0s" is no unit either)
        raise ValueError(f"--since {text!r}: a window longer than 0 (30m, 24h, 7d, ...)")
    try:
        if match:
            return now - timedelta(seconds=float(match[1]) * _UNITS[match[2]])
        moment = datetime.fromisoformat(text.strip())
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: use 30m, 24h, 7d, 2w or an ISO date such as 2026-11-01"
        ) from None
    except OverflowError:
        raise ValueError(f"--since {text!r}: that is before year 1 or after year 9999") from None


async def summarize(
    pool: Pool,
    *,
    since: datetime,
    by: str = "route",
    key: str | None = None,
    team: str | None = None,
    baseline: Price | None = None,
) -> dict[str, Any]:
    """Requests, tokens, cost and latency per group since a moment, and what the same tokens would
    have cost on the baseline backend (GPT-4 in the default policy)."""
    column = GROUPS[by]
    rows = await pool.fetch_all(
        f"""
        SELECT {column} AS grp, count(*) AS requests,
               count(*) FILTER (WHERE status >= 400) AS errors,
               count(*) FILTER (WHERE stream) AS streamed,
               coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
               coalesce(sum(completion_tokens), 0) AS completion_tokens,
               coalesce(sum(cost_usd), 0) AS cost_usd,
               coalesce(sum(prompt_tokens) FILTER (WHERE route IS DISTINCT FROM 'embeddings'), 0)
                   AS chat_prompt_tokens,
               coalesce(sum(completion_tokens) FILTER (WHERE route IS DISTINCT FROM 'embeddings'), 0)
                   AS chat_completion_tokens,
               coalesce(sum(cost_usd) FILTER (WHERE route = 'embeddings'), 0) AS embeddings_usd,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS latency_p50_ms,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY overhead_ms) AS overhead_p50_ms
        FROM turnout_usage
        WHERE ts >= %(since)s AND (%(key)s::text IS NULL OR key_id = %(key)s)
          AND (%(team)s::text IS NULL OR team = %(team)s)
        GROUP BY grp ORDER BY cost_usd DESC, requests DESC
        """,
        {"since": since, "key": key, "team": team},
    )
    groups = []
    for row in rows:
        item = row
        item[by] = item.pop("grp")
        item["cost_usd"] = round(float(item["cost_usd"]), 6)
        for name in ("latency_p50_ms", "overhead_p50_ms"):
            item[name] = round(float(item[name] or 0.0), 3)
        # the baseline is a chat model: embeddings (the "embeddings" route's rows) could never go to
        # it, so their tokens are not priced there (they had been, inflating saved_usd); what they
        # cost is the same either way, so it stands in the baseline as it is
        prompt, completion = item.pop("chat_prompt_tokens"), item.pop("chat_completion_tokens")
        embeddings_usd = float(item.pop("embeddings_usd"))
        if baseline is not None:
            item["baseline_usd"] = round(baseline.cost(prompt, completion) + embeddings_usd, 6)
        groups.append(item)
    total_cost = sum(g["cost_usd"] for g in groups)
    totals: dict[str, Any] = {
        "requests": sum(g["requests"] for g in groups),
        "errors": sum(g["errors"] for g in groups),
        "prompt_tokens": sum(g["prompt_tokens"] for g in groups),
        "completion_tokens": sum(g["completion_tokens"] for g in groups),
        "cost_usd": round(total_cost, 6),
    }
    if baseline is not None:
        base = sum(g["baseline_usd"] for g in groups)
        totals["baseline_usd"] = round(base, 6)
        totals["saved_usd"] = round(base - total_cost, 6)
        totals["saved_share"] = round((base - total_cost) / base, 4) if base else 0.0
    return {
        "since": since.isoformat(),
        "by": by,
        "key": key,
        "team": team,
        "groups": groups,
        "totals": totals,
    }


def baseline_price(policy: Policy, name: str | None = None) -> tuple[str, Price] | None:
    """The backend savings are counted against: `name` when given (ValueError if the policy has no
    such backend), else the policy's dearest (by the cost of 1,000 tokens in and 1,000 out)."""
    if name is not None:
        if name not in policy.backends:
            known = ", ".join(policy.backends)
            raise ValueError(f"baseline {name!r} is not a backend of the policy; use one of: {known}")
        return name, policy.backends[name].unit_price
    if not policy.backends:
        return None
    dearest = max(policy.backends, key=lambda n: policy.backends[n].unit_price.cost(1000, 1000))
    return dearest, policy.backends[dearest].unit_price
