"""OpenAI's Batch API behind the gateway: files and batch jobs kept in Postgres, and the worker that
runs their lines through the same pipeline as live requests.

A batch is validated when it is created (every line a JSON object with a unique `custom_id`,
method POST, the batch's endpoint as `url`, a `body`); its lines go into `turnout_batch_lines` as
`pending`. Workers (in the gateway, `TURNOUT_BATCH_CONCURRENCY` at a time, or `turnout worker`)
poll for lines every 0.5 s while there is work and back off to every 5 s when there is none (a
batch created or cancelled in the same process wakes its workers at once); they claim lines with `FOR UPDATE SKIP LOCKED` and a lease they renew while a line runs; a line is
`done` or `failed` once, so a restart (whose leases lapse) resumes a batch without redoing a finished
line. A worker in the gateway claims nothing while `TURNOUT_BATCH_YIELD_AT` interactive requests
are in flight. A line refused by the key's limits (429) goes back to `pending` and that key's lines
wait for the limit's Retry-After (other keys' go on); a line that could only run after the batch's
`expires_at` fails with that 429. When no line is left, the batch's output and error files are written
(JSONL, in line order) and it is `completed` (or `cancelled`).
"""

from __future__ import annotations

import asyncio
import contextlib
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
        # the tokens of the lines answered so far, as OpenAI's Batch reports them (its `model` stays
        # null: one batch's lines may name several models, "auto" among them)
        "model": None,
        "usage": {
            "input_tokens": row["input_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": row["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": row["input_tokens"] + row["output_tokens"],
        },
    }


# the batch and its lines' counts and tokens, in one read of its lines (a row of `c`)
BATCH_COLUMNS = (
    "b.*, c.* FROM turnout_batches b CROSS JOIN LATERAL (SELECT count(*) AS total, "
    "count(*) FILTER (WHERE l.state = 'done') AS completed, "
    "count(*) FILTER (WHERE l.state = 'failed') AS failed, "
    "coalesce(sum((l.result #>> '{body,usage,prompt_tokens}')::bigint) FILTER (WHERE l.state = 'done'), 0)::bigint "
    "AS input_tokens, "
    "coalesce(sum((l.result #>> '{body,usage,completion_tokens}')::bigint) FILTER (WHERE l.state = 'done'), 0)::bigint "
    "AS output_tokens "
    "FROM turnout_batch_lines l WHERE l.batch_id = b.id) c"
)
CLAIM = """
WITH picked AS (
    SELECT l.batch_id, l.line FROM turnout_batch_lines l JOIN turnout_batches b ON b.id = l.batch_id
    WHERE b.status = 'in_progress' AND b.key_id <> ALL(%(waiting)s::text[])
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
# A batch is finished when no line is left to run: for a cancelled one, a line whose worker died
# (its lease lapsed) is not waited for.
FINISHABLE = """
SELECT b.id, b.status FROM turnout_batches b
WHERE b.status IN ('in_progress', 'cancelling')
  AND NOT EXISTS (
      SELECT 1 FROM turnout_batch_lines l
      WHERE l.batch_id = b.id
        AND (l.state = 'pending'
             OR (l.state = 'running' AND (b.status = 'in_progress' OR l.lease_until >= now())))
  )
"""


_workers: set[BatchWorker] = set()  # the workers of this process, woken when a batch arrives here


def nudge() -> None:
    """Wake this process's workers now (a batch was created or cancelled here); workers in other
    processes find it at their next poll."""
    for worker in _workers:
        worker.wake.set()


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
        idle_max_s: float = 5.0,
    ) -> None:
        self.pool = pool
        self.run_line = run_line
        self.concurrency = concurrency
        self.busy = busy
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.idle_max_s = idle_max_s  # with nothing to do, polls slow down to this
        self.worker_id = new_id("worker_")
        self.running: set[asyncio.Task[None]] = set()
        self.active: set[str] = set()  # "batch_id:line" of the lines running here
        self.key_wait: dict[str, float] = {}  # a key's line was refused by its limits: its lines wait
        self.lines_done = 0
        self.wake = asyncio.Event()

    async def run(self) -> None:
        """The loop: finish what is finishable, renew leases, claim what there is room for."""
        renewed = time.monotonic()
        idle_s = self.poll_s
        _workers.add(self)
        try:
            await self._loop(renewed, idle_s)
        finally:
            _workers.discard(self)

    async def _loop(self, renewed: float, idle_s: float) -> None:
        while True:
            try:
                finished = await self._finish_batches()
                if time.monotonic() - renewed > self.lease_s / 3:
                    await self._renew()
                    renewed = time.monotonic()
                room = self.concurrency - len(self.running)
                claimed = []
                if room > 0 and not self.busy():
                    now = time.monotonic()
                    waiting = [key for key, until in self.key_wait.items() if until > now]
                    self.key_wait = {key: self.key_wait[key] for key in waiting}
                    claimed = await self.pool.fetch_all(
                        CLAIM,
                        {"n": room, "worker": self.worker_id, "lease": self.lease_s, "waiting": waiting},
                    )
                for line in claimed:
                    task = asyncio.get_running_loop().create_task(self._run(line))
                    self.running.add(task)
                    task.add_done_callback(self.running.discard)
                if claimed or finished or self.running:
                    idle_s = self.poll_s
                else:  # nothing queued: poll less and less often, up to idle_max_s
                    idle_s = min(self.idle_max_s, idle_s * 2)
                if not claimed:
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), idle_s)
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
        """Extend the leases of the lines running here now (a line whose run ended unrecorded is
        left to lapse, so that another worker runs it)."""
        if not self.active:
            return
        async with self.pool.connection() as connection:
            await connection.execute(
                "UPDATE turnout_batch_lines SET lease_until = now() + make_interval(secs => %s) "
                "WHERE worker = %s AND state = 'running' AND batch_id || ':' || line = ANY(%s::text[])",
                (self.lease_s, self.worker_id, list(self.active)),
            )

    async def _run(self, line: dict[str, Any]) -> None:
        active = f"{line['batch_id']}:{line['line']}"
        self.active.add(active)
        try:
            await self._run_once(line)
        finally:
            self.active.discard(active)

    async def _run_once(self, line: dict[str, Any]) -> None:
        try:
            status, body, retry_after = await self.run_line(line["key_id"], line["endpoint"], line["body"])
        except (asyncio.CancelledError, ConnectionError):
            raise  # stopping, or Postgres away: the lease lapses and the line runs again
        except Exception as error:  # a fault of ours: the line fails, never stays claimed
            log.exception("batch %s line %s failed", line["batch_id"], line["line"])
            kind = {
                "message": f"The gateway failed running this line ({type(error).__name__}).",
                "type": "api_error",
            }
            status, body, retry_after = 500, {"error": {**kind, "param": None, "code": None}}, None
        try:
            await self._record(line, status, body, retry_after)
        except Exception as error:  # Postgres away: the lease lapses and the line runs again
            log.warning("batch %s line %s: not recorded: %s", line["batch_id"], line["line"], error)

    async def _record(
        self, line: dict[str, Any], status: int, body: dict[str, Any], retry_after: float | None
    ) -> None:
        from psycopg.types.json import Jsonb

        where = "WHERE batch_id = %s AND line = %s AND worker = %s AND state = 'running'"
        key = (line["batch_id"], line["line"], self.worker_id)
        result = {"status_code": status, "request_id": new_id("req_"), "body": body}
        async with self.pool.connection() as connection:
            if retry_after is not None:  # the key's limits: this key's lines wait; past expiry the line fails
                wait = max(1.0, retry_after)
                self.key_wait[line["key_id"]] = time.monotonic() + wait
                await connection.execute(
                    "UPDATE turnout_batch_lines l SET worker = NULL, "
                    "not_before = now() + make_interval(secs => %s), result = %s, state = CASE "
                    "  WHEN b.status <> 'in_progress' THEN 'cancelled' "
                    "  WHEN now() + make_interval(secs => %s) > b.expires_at THEN 'failed' "
                    "  ELSE 'pending' END "
                    "FROM turnout_batches b WHERE b.id = l.batch_id AND l.batch_id = %s AND l.line = %s "
                    "AND l.worker = %s AND l.state = 'running'",
                    (wait, Jsonb(result), wait, *key),
                )
                return
            state = "done" if status < 400 else "failed"
            await connection.execute(
                f"UPDATE turnout_batch_lines SET state = %s, result = %s {where}",
                (state, Jsonb(result), *key),
            )
            if status == 401:  # the key was revoked or expired: its batches' other waiting lines
                # fail now with the same answer, not one by one (4 a second: hours for a big batch)
                await connection.execute(
                    "UPDATE turnout_batch_lines l SET state = 'failed', result = jsonb_set(%s, "
                    "'{request_id}', to_jsonb('req_' || substr(md5(random()::text || l.line), 1, 24))) "
                    "FROM turnout_batches b WHERE b.id = l.batch_id AND b.key_id = %s "
                    "AND b.status = 'in_progress' AND l.state = 'pending'",
                    (Jsonb(result), line["key_id"]),
                )
        self.lines_done += 1

    async def _finish_batches(self) -> bool:
        rows = await self.pool.fetch_all(FINISHABLE)
        for row in rows:
            await finish_batch(self.pool, row["id"], row["status"])
        return bool(rows)


async def finish_batch(pool: Pool, batch_id: str, status: str) -> None:
    """Write the output and error files of a batch with no line left, once (the status guards it)."""
    async with pool.connection() as connection, connection.transaction():  # all of it, or none
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
