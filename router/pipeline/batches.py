"""OpenAI's Batch API behind the gateway: files and batch jobs kept in Postgres, and the worker that
runs their lines through the same pipeline as live requests.

A batch is validated when it is created (every line a JSON object with a unique `custom_id`,
method POST, the batch's endpoint as `url`, a `body`); its lines go into `turnout_batch_lines` as
`pending`. Workers (in the gateway, `TURNOUT_BATCH_CONCURRENCY` at a time, or `turnout worker`)
claim lines with `FOR UPDATE SKIP LOCKED` and a lease they renew while a line runs; a line is
`done` or `failed` once, so a restart (whose leases lapse) resumes a batch without redoing a finished
line. A worker in the gateway claims nothing while `TURNOUT_BATCH_YIELD_AT` interactive requests
are in flight. A line refused by the key's limits (429) goes back to `pending` and the worker waits
for the limit's Retry-After. When no line is left, the batch's output and error files are written
(JSONL, in line order) and it is `completed` (or `cancelled`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from router.db import Pool

log = logging.getLogger("turnout.batches")

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
LINE_STATES = ("pending", "running", "done", "failed", "cancelled")
# (status, body) of one line, or None when the line must wait (the key's limits): then Retry-After
RunLine = Callable[[str, str, dict[str, Any]], Awaitable[tuple[int, dict[str, Any], float | None]]]


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:24]}"


class BatchError(ValueError):
    """A batch input file that cannot be run: each problem with its line number."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        super().__init__(problems[0]["message"])
        self.problems = problems


def parse_lines(content: bytes, endpoint: str, max_lines: int) -> list[tuple[int, str, dict[str, Any]]]:
    """The input file's requests as (line number, custom_id, body), or a BatchError listing what is wrong."""
    requests: list[tuple[int, str, dict[str, Any]]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = orjson.loads(raw)
        except orjson.JSONDecodeError:
            problems.append(
                {"code": "invalid_json_line", "message": "This line is not valid JSON.", "line": number}
            )
            continue
        problem = _line_problem(line, endpoint, seen)
        if problem is not None:
            problems.append({"code": "invalid_request", "message": problem, "line": number})
            continue
        seen.add(line["custom_id"])
        requests.append((number, line["custom_id"], line["body"]))
    if not requests and not problems:
        problems.append({"code": "empty_file", "message": "The input file has no requests.", "line": None})
    if len(requests) > max_lines:
        message = f"The input file has {len(requests)} requests; a batch takes at most {max_lines}."
        problems.append({"code": "too_many_requests", "message": message, "line": None})
    if problems:
        raise BatchError(problems[:100])
    return requests


def _line_problem(line: Any, endpoint: str, seen: set[str]) -> str | None:
    if not isinstance(line, dict):
        return "Each line must be a JSON object."
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "'custom_id' must be a non-empty string."
    if custom_id in seen:
        return f"'custom_id' {custom_id!r} is used twice in this file."
    if line.get("method") != "POST":
        return "'method' must be POST."
    if line.get("url") != endpoint:
        return f"'url' must be the batch's endpoint, {endpoint}."
    if not isinstance(line.get("body"), dict):
        return "'body' must be a JSON object."
    if line["body"].get("stream"):
        return "Streaming is not supported in a batch."
    return None


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": int(row["created_at"].timestamp()),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": None,
    }


def _epoch(value: Any) -> int | None:
    return int(value.timestamp()) if value is not None else None


def batch_object(row: dict[str, Any]) -> dict[str, Any]:
    errors = row["errors"]
    return {
        "id": row["id"],
        "object": "batch",
        "endpoint": row["endpoint"],
        "errors": {"object": "list", "data": errors} if errors else None,
        "input_file_id": row["input_file_id"],
        "completion_window": row["completion_window"],
        "status": row["status"],
        "output_file_id": row["output_file_id"],
        "error_file_id": row["error_file_id"],
        "created_at": _epoch(row["created_at"]),
        "in_progress_at": _epoch(row["in_progress_at"]),
        "expires_at": _epoch(row["expires_at"]),
        "finalizing_at": _epoch(row["finalizing_at"]),
        "completed_at": _epoch(row["completed_at"]),
        "failed_at": _epoch(row["failed_at"]),
        "expired_at": None,
        "cancelling_at": _epoch(row["cancelling_at"]),
        "cancelled_at": _epoch(row["cancelled_at"]),
        "request_counts": {"total": row["total"], "completed": row["completed"], "failed": row["failed"]},
        "metadata": row["metadata"],
    }


BATCH_COLUMNS = (
    "b.*, (SELECT count(*) FROM turnout_batch_lines l WHERE l.batch_id = b.id) AS total, "
    "(SELECT count(*) FROM turnout_batch_lines l WHERE l.batch_id = b.id AND l.state = 'done') AS completed, "
    "(SELECT count(*) FROM turnout_batch_lines l WHERE l.batch_id = b.id AND l.state = 'failed') AS failed"
)
CLAIM = """
WITH picked AS (
    SELECT l.batch_id, l.line FROM turnout_batch_lines l JOIN turnout_batches b ON b.id = l.batch_id
    WHERE b.status = 'in_progress'
      AND (l.state = 'pending' OR (l.state = 'running' AND l.lease_until < now()))
      AND (l.not_before IS NULL OR l.not_before <= now())
    ORDER BY b.created_at, l.line
    LIMIT %(n)s
    FOR UPDATE OF l SKIP LOCKED
)
UPDATE turnout_batch_lines l
SET state = 'running', worker = %(worker)s, lease_until = now() + make_interval(secs => %(lease)s)
FROM picked, turnout_batches b
WHERE l.batch_id = picked.batch_id AND l.line = picked.line AND b.id = l.batch_id
RETURNING l.batch_id, l.line, l.custom_id, l.body, b.key_id, b.endpoint
"""
FINISHABLE = """
SELECT b.id, b.status FROM turnout_batches b
WHERE b.status IN ('in_progress', 'cancelling')
  AND NOT EXISTS (
      SELECT 1 FROM turnout_batch_lines l
      WHERE l.batch_id = b.id AND l.state IN ('pending', 'running')
  )
"""


class BatchWorker:
    """Claims batch lines and runs them, `concurrency` at a time, until stopped."""

    def __init__(
        self,
        pool: Pool,
        run_line: RunLine,
        concurrency: int,
        *,
        busy: Callable[[], bool] = lambda: False,
        lease_s: float = 60.0,
        poll_s: float = 0.5,
    ) -> None:
        self.pool = pool
        self.run_line = run_line
        self.concurrency = concurrency
        self.busy = busy
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.worker_id = new_id("worker_")
        self.running: set[asyncio.Task[None]] = set()
        self.wait_until = 0.0  # a line was refused by limits: claim nothing before then
        self.lines_done = 0

    async def run(self) -> None:
        """The loop: finish what is finishable, renew leases, claim what there is room for."""
        renewed = time.monotonic()
        while True:
            try:
                await self._finish_batches()
                if time.monotonic() - renewed > self.lease_s / 3:
                    await self._renew()
                    renewed = time.monotonic()
                room = self.concurrency - len(self.running)
                claimed = []
                if room > 0 and not self.busy() and time.monotonic() >= self.wait_until:
                    claimed = await self.pool.fetch_all(
                        CLAIM, {"n": room, "worker": self.worker_id, "lease": self.lease_s}
                    )
                for line in claimed:
                    task = asyncio.get_running_loop().create_task(self._run(line))
                    self.running.add(task)
                    task.add_done_callback(self.running.discard)
                if not claimed:
                    await asyncio.sleep(self.poll_s)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Postgres away, say: try again shortly, never die
                log.warning("batch worker: %s: %s", type(error).__name__, str(error)[:200])
                await asyncio.sleep(max(self.poll_s, 1.0))

    async def stop(self) -> None:
        """Stop running lines; their leases lapse, so another worker (or a restart) takes them."""
        for task in list(self.running):
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)

    async def _renew(self) -> None:
        async with self.pool.connection() as connection:
            await connection.execute(
                "UPDATE turnout_batch_lines SET lease_until = now() + make_interval(secs => %s) "
                "WHERE worker = %s AND state = 'running'",
                (self.lease_s, self.worker_id),
            )

    async def _run(self, line: dict[str, Any]) -> None:
        status, body, retry_after = await self.run_line(line["key_id"], line["endpoint"], line["body"])
        async with self.pool.connection() as connection:
            if retry_after is not None:  # the key's limits: back to pending, and wait
                self.wait_until = max(self.wait_until, time.monotonic() + retry_after)
                await connection.execute(
                    "UPDATE turnout_batch_lines SET state = 'pending', worker = NULL, "
                    "not_before = now() + make_interval(secs => %s) "
                    "WHERE batch_id = %s AND line = %s AND worker = %s AND state = 'running'",
                    (retry_after, line["batch_id"], line["line"], self.worker_id),
                )
                return
            from psycopg.types.json import Jsonb

            state = "done" if status < 400 else "failed"
            result = {"status_code": status, "request_id": new_id("req_"), "body": body}
            await connection.execute(
                "UPDATE turnout_batch_lines SET state = %s, result = %s "
                "WHERE batch_id = %s AND line = %s AND worker = %s AND state = 'running'",
                (state, Jsonb(result), line["batch_id"], line["line"], self.worker_id),
            )
        self.lines_done += 1

    async def _finish_batches(self) -> None:
        for row in await self.pool.fetch_all(FINISHABLE):
            await finish_batch(self.pool, row["id"], row["status"])


async def finish_batch(pool: Pool, batch_id: str, status: str) -> None:
    """Write the output and error files of a batch with no line left, once (the status guards it)."""
    async with pool.connection() as connection:
        claimed = await connection.execute(
            "UPDATE turnout_batches SET status = 'finalizing', finalizing_at = now() "
            "WHERE id = %s AND status = %s RETURNING key_id",
            (batch_id, status),
        )
        owner = await claimed.fetchone()
        if owner is None:
            return  # another worker finalizes it
        cursor = await connection.execute(
            "SELECT line, custom_id, state, result FROM turnout_batch_lines "
            "WHERE batch_id = %s AND state IN ('done', 'failed') ORDER BY line",
            (batch_id,),
        )
        outputs: dict[str, list[bytes]] = {"done": [], "failed": []}
        for row in await cursor.fetchall():
            entry = {"id": f"batch_req_{batch_id[6:]}_{row['line']}", "custom_id": row["custom_id"]}
            entry.update(response=row["result"], error=None)
            outputs[row["state"]].append(orjson.dumps(entry))
        files = {}
        for state, lines in outputs.items():
            if lines:
                files[state] = await _write_file(
                    connection, owner["key_id"], f"{batch_id}_{state}.jsonl", lines
                )
        final = "completed" if status == "in_progress" else "cancelled"
        stamp = "completed_at" if final == "completed" else "cancelled_at"
        await connection.execute(
            f"UPDATE turnout_batches SET status = %s, {stamp} = now(), output_file_id = %s, error_file_id = %s "
            "WHERE id = %s",
            (final, files.get("done"), files.get("failed"), batch_id),
        )


async def _write_file(connection: Any, key_id: str, filename: str, lines: list[bytes]) -> str:
    content = b"\n".join(lines) + b"\n"
    file_id = new_id("file-")
    await connection.execute(
        "INSERT INTO turnout_files (id, key_id, purpose, filename, bytes, content) VALUES (%s, %s, %s, %s, %s, %s)",
        (file_id, key_id, "batch_output", filename, len(content), content),
    )
    return file_id
