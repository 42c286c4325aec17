"""The usage ledger's writer against the real Postgres: one row it cannot write never holds back
the others, and text is made storable when it is recorded."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from router.accounts.usage import UsageRecord, UsageRecorder, clean_text

pytestmark = pytest.mark.integration


def _record(key: str, **changes: object) -> UsageRecord:
    fields: dict[str, object] = {
        "ts": datetime.now(UTC),
        "key_id": key,
        "route": "fast",
        "backend": "llama",
        "model": "auto",
        "stream": False,
        "status": 200,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cost_usd": 0.0,
        "latency_ms": 1.0,
        "overhead_ms": 0.5,
        "error": None,
    }
    fields.update(changes)
    return UsageRecord(**fields)  # type: ignore[arg-type]


def test_clean_text_makes_any_string_storable() -> None:
    assert clean_text("auto\x00x") == "auto\ufffdx"
    assert clean_text("a\ud800b") == "a?b"
    assert clean_text("é" * 2000, 10) == "é" * 10 + "…"
    assert clean_text(None) is None


def test_a_row_postgres_refuses_is_dropped_alone(pg_url: str) -> None:
    from router.db import open_pool

    key = f"ledger-test-{datetime.now(UTC).timestamp()}"

    async def scenario() -> tuple[list[int], UsageRecorder]:
        pool = await open_pool(pg_url, max_size=2)
        try:
            recorder = UsageRecorder(pool, flush_seconds=60, batch_size=100)
            recorder.record(_record(key, prompt_tokens=1))
            recorder.record(_record(key, prompt_tokens=2, stream=None))  # NOT NULL: Postgres refuses it
            recorder.record(_record(key, prompt_tokens=3, model="auto\x00", completion_tokens=2**40))
            await recorder.flush()
            recorder.record(_record(key, prompt_tokens=4))
            await recorder.flush()
            rows = await pool.fetch_all(
                "SELECT prompt_tokens FROM turnout_usage WHERE key_id = %s ORDER BY id", (key,)
            )
            return [row["prompt_tokens"] for row in rows], recorder
        finally:
            await pool.close()

    written, recorder = asyncio.run(scenario())
    assert written == [1, 3, 4]
    assert (recorder.written, recorder.refused) == (3, 1)
