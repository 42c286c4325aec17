"""`turnout drift`: the PSI arithmetic on hand-made shares, a hand-made ledger whose every count is
known, and ledgers made from public prompt sets by the gateway's own signal engine and routing (two
sets of different mixes drift; two halves of one shuffled mix do not). Each test has a database of its
own on the session's Postgres, written by the ledger's real writer."""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from router.accounts.usage import UsageRecord
from router.ops.drift import (
    EPSILON,
    MIN_ROWS,
    RARE,
    SIGNALS,
    DriftReport,
    compute_drift,
    pool_rare,
    psi,
    status_of,
    token_bins,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WEEK, DAY = timedelta(days=7), timedelta(days=1)


# ---- the arithmetic ------------------------------------------------------------------------------
def test_psi_on_hand_made_shares():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    swapped = 2 * 0.2 * math.log(0.6 / 0.4)  # (0.4-0.6) ln(0.4/0.6) + (0.6-0.4) ln(0.6/0.4)
    assert psi([0.6, 0.4], [0.4, 0.6]) == pytest.approx(swapped)
    assert psi([0.4, 0.6], [0.6, 0.4]) == pytest.approx(swapped)  # symmetric
    # an empty reference bin counts as EPSILON: a new 5% bin alone is past "act"
    new_bin = (0.95 - 1.0) * math.log(0.95) + (0.05 - EPSILON) * math.log(0.05 / EPSILON)
    assert psi([1.0, 0.0], [0.95, 0.05]) == pytest.approx(new_bin)
    assert new_bin > 0.25
    with pytest.raises(ValueError):
        psi([0.5, 0.5], [1.0])


def test_status_follows_the_seed_thresholds():
    assert [status_of(v) for v in (0.0, 0.0999, 0.1, 0.25, 0.2501, None)] == [
        "stable",
        "stable",
        "watch",
        "watch",
        "act",
        "too few rows",
    ]


def test_rare_values_are_pooled_and_token_bins_are_labelled():
    assert pool_rare({"a": 900, "b": 95, "c": 5}, {"a": 500, "b": 500}) == ["a", "b", RARE]
    assert pool_rare({"a": 90, "b": 10}, {"a": 99, "c": 1}) == ["a", "b", "c"]  # c is 1% of current
    many = {f"v{i:02d}": 100 for i in range(20)}
    assert len(pool_rare(many, many)) == 12 and pool_rare(many, many)[-1] == RARE
    assert token_bins([40, 80, 81, 360]) == ["<40", "40-79", "80", "81-359", ">=360"]
    assert token_bins([1, 5]) == ["1-4", ">=5"]  # no prompt has fewer than one token


# ---- a ledger per test ---------------------------------------------------------------------------
def record(ts: datetime, **changes: Any) -> UsageRecord:
    fields: dict[str, Any] = {
        "ts": ts,
        "key_id": "k1",
        "route": "general",
        "backend": "llama",
        "model": "auto",
        "stream": False,
        "status": 200,
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cost_usd": 0.0,
        "latency_ms": 500.0,
        "overhead_ms": 1.0,
        "error": None,
        "sensitive": False,  # as the gateway writes it for a request whose signals were computed
    }
    return UsageRecord(**{**fields, **changes})


def write(url: str, records: list[UsageRecord]) -> None:
    """Through the gateway's own ledger writer (UsageRecorder, COPY in batches)."""
    from router.accounts.usage import UsageRecorder
    from router.db import open_pool

    async def run() -> None:
        pool = await open_pool(url, max_size=1)
        try:
            recorder = UsageRecorder(pool, flush_seconds=3600, batch_size=1000)
            for item in records:
                recorder.record(item)
            await recorder.flush()
            assert recorder.written == len(records)
        finally:
            await pool.close()

    asyncio.run(run())


def drift(
    url: str, now: datetime = NOW, reference: timedelta = WEEK, current: timedelta = DAY
) -> DriftReport:
    from router.db import open_pool

    async def run() -> DriftReport:
        pool = await open_pool(url, max_size=2)
        try:
            return await compute_drift(pool, reference, current, now=now)
        finally:
            await pool.close()

    return asyncio.run(run())


def turnout(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TURNOUT_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "drift", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def hand_made_window(ts: datetime, code: int, chat: int) -> list[UsageRecord]:
    """`code` hard code requests and `chat` fast small talk; prompt tokens 1..n; one in ten
    sensitive (half of those with two finding types); no retrieval."""
    rows = []
    for i in range(code + chat):
        is_code = i < code
        sensitive = i % 10 == 0
        rows.append(
            record(
                ts,
                category="code" if is_code else "simple_chat",
                difficulty=0.05 if is_code else 1.0,  # 1.0 falls in the last bin, not past it
                route="hard" if is_code else "fast",
                backend="gpt-4" if is_code else "haiku",
                prompt_tokens=i + 1,
                sensitive=sensitive,
                finding_types=("email,person" if i % 20 == 0 else "email") if sensitive else None,
            )
        )
    return rows


def test_a_hand_made_ledger_gives_the_shares_and_psi_counted_by_hand(fresh_db):
    url = fresh_db()
    cur_start, ref_start = NOW - DAY, NOW - DAY - WEEK
    rows = hand_made_window(NOW - timedelta(days=3), code=300, chat=100)
    rows += hand_made_window(NOW - timedelta(hours=12), code=100, chat=300)
    rows += [record(NOW - timedelta(hours=6), model="gpt-4") for _ in range(50)]  # named: no category
    rows += [
        record(NOW - timedelta(hours=6), route=None, backend=None, status=401, prompt_tokens=0)
        for _ in range(10)
    ]  # refused before routing
    rows += [record(cur_start, category="code", difficulty=0.05, route="hard", backend="gpt-4")]  # current
    rows += [record(NOW), record(ref_start - timedelta(seconds=1))]  # outside both windows
    write(url, rows)

    report = drift(url)
    assert (report.reference_start, report.reference_end) == (ref_start, cur_start)
    assert (report.current_start, report.current_end) == (cur_start, NOW)
    assert (report.reference_rows, report.current_rows) == (400, 400 + 50 + 10 + 1)
    assert [s.signal for s in report.signals] == list(SIGNALS)

    category = report.signal("category")
    assert (category.reference_rows, category.current_rows) == (400, 401)
    shares = dict(zip(category.bins, zip(category.reference, category.current, strict=True), strict=True))
    assert shares == {
        "code": (0.75, pytest.approx(101 / 401)),
        "simple_chat": (0.25, pytest.approx(300 / 401)),
    }
    expected = (101 / 401 - 0.75) * math.log(101 / 401 / 0.75) + (300 / 401 - 0.25) * math.log(
        300 / 401 / 0.25
    )
    assert category.psi == pytest.approx(expected) and category.status == "act"

    difficulty = report.signal("difficulty")
    assert len(difficulty.bins) == 10 and difficulty.bins[0] == "0.0-0.1" and difficulty.bins[-1] == "0.9-1.0"
    assert difficulty.reference[0] == 0.75 and difficulty.reference[-1] == 0.25  # 1.0 is in the last bin
    assert sum(difficulty.reference[1:-1]) == 0

    tokens = report.signal("prompt_tokens")  # deciles of 1..400 in the reference: 40, 80, ... 360
    assert tokens.bins == ["<40", *(f"{k}-{k + 39}" for k in range(40, 360, 40)), ">=360"]
    assert tokens.reference[0] == pytest.approx(39 / 400) and tokens.reference[-1] == pytest.approx(41 / 400)
    assert tokens.reference_rows == 400 and tokens.current_rows == 451  # the 401s had no tokens
    assert tokens.status in ("stable", "watch", "act")

    sensitive = report.signal("sensitive")  # routed requests only: the refused ten are not counted
    assert sensitive.bins == ["no", "yes"] and sensitive.current_rows == 451
    assert sensitive.reference == [0.9, pytest.approx(0.1)]
    assert sensitive.current == [pytest.approx(1 - 40 / 451), pytest.approx(40 / 451)]

    route = report.signal("route")
    assert set(route.bins) == {"hard", "fast", "general"} and route.current_rows == 451
    assert report.signal("backend").current_rows == 451

    # 40 requests with findings a window, under MIN_ROWS: shares shown, no PSI
    findings = report.signal("finding_types")
    assert findings.psi is None and findings.status == "too few rows"
    assert (findings.reference_rows, findings.current_rows) == (40, 40)
    assert dict(zip(findings.bins, findings.reference, strict=True)) == {
        "email": pytest.approx(40 / 60),
        "person": pytest.approx(20 / 60),
    }
    hits = report.signal("retrieval_hit")  # nothing tried retrieval
    assert (hits.psi, hits.status, hits.reference_rows, hits.current_rows) == (None, "too few rows", 0, 0)


def test_retrieval_hits_and_an_empty_ledger(fresh_db):
    url = fresh_db()
    empty = drift(url)
    assert (empty.reference_rows, empty.current_rows) == (0, 0)
    assert all(s.psi is None and s.status == "too few rows" for s in empty.signals)

    old, new = NOW - timedelta(days=2), NOW - timedelta(hours=1)
    rows = [record(old, passages=3 if i % 5 else 0) for i in range(MIN_ROWS)]  # 80% hits
    rows += [record(new, passages=3 if i % 2 else 0) for i in range(MIN_ROWS)]  # 50% hits
    rows += [record(new, passages=None) for _ in range(100)]  # no retrieval tried: not counted
    write(url, rows)
    hits = drift(url).signal("retrieval_hit")
    assert hits.bins == ["miss", "hit"]
    assert (hits.reference_rows, hits.current_rows) == (MIN_ROWS, MIN_ROWS)
    assert hits.reference == [0.2, 0.8] and hits.current == [0.5, 0.5]
    assert hits.psi == pytest.approx(psi([0.2, 0.8], [0.5, 0.5])) and hits.status == "act"
    assert drift(url, now=NOW - timedelta(hours=2)).signal("retrieval_hit").status == "too few rows"


def test_an_empty_reference_window_still_counts_the_current_prompts(fresh_db):
    """A third trial (2026-12-08): with no reference rows there are no token deciles, and every
    current row's prompt_tokens fell out (0 current rows, where `sensitive` had them all)."""
    url = fresh_db()
    write(url, [record(NOW - timedelta(hours=1)) for _ in range(40)])
    report = drift(url)
    tokens, sensitive = report.signal("prompt_tokens"), report.signal("sensitive")
    assert (report.reference_rows, report.current_rows) == (0, 40)
    assert tokens.current_rows == sensitive.current_rows == 40 and tokens.bins == ["all"]


# ---- ledgers made from public prompt sets --------------------------------------------------------
@pytest.fixture(scope="module")
def engine() -> Any:
    from router.policy.model import load_policy
    from router.signals.capability.classifier import CapabilityClassifier
    from router.signals.collect import SignalEngine

    policy = load_policy(ROOT / "policies" / "default.yaml").policy
    return SignalEngine(policy, CapabilityClassifier.load())


def signal_rows(engine: Any, texts: list[str], start: datetime, end: datetime) -> list[UsageRecord]:
    """One ledger row per prompt, as the gateway would record it for `model: "auto"`: its signals
    from the signal engine, its route and first backend from the default policy's decision. Spread
    evenly over [start, end), a minute clear of either end."""
    from router.pipeline.routing import decide
    from router.schema import ChatRequest
    from router.signals.latency import LatencyTracker

    latency = LatencyTracker()
    step = (end - start - timedelta(minutes=2)) / len(texts)
    rows = []
    for i, text in enumerate(texts):
        request = ChatRequest.model_validate(
            {"model": "auto", "messages": [{"role": "user", "content": text}]}
        )
        signals = engine.compute(request)
        decision = decide(engine.policy, signals, "auto", latency)
        rows.append(
            record(
                start + timedelta(minutes=1) + step * i,
                route=decision.route,
                backend=decision.backends[0] if decision.backends else None,
                prompt_tokens=signals.prompt_tokens,
                category=signals.capability.category,
                difficulty=signals.capability.difficulty,
                sensitive=signals.sensitive,
                finding_types=",".join(sorted(signals.finding_types)) or None,
            )
        )
    return rows


def prompts(name: str) -> list[str]:
    from evals.datasets import read_jsonl, resolve

    if name == "gsm8k-test":
        return [row["question"] for row in read_jsonl(name)]
    if name == "humaneval":
        return [row["prompt"] for row in read_jsonl(name)]
    if name == "mt-bench":
        return [row["turns"][0] for row in read_jsonl(name)]
    if name == "arena-hard-v2":
        return [row["prompt"] for row in read_jsonl(name)]
    if name == "clinc150":
        return [text for text, _intent in json.loads(resolve(name).read_text())["test"]]
    if name == "presidio-synth-v2":
        return [row["full_text"] for row in json.loads(resolve(name).read_text())]
    raise KeyError(name)


def test_math_and_code_against_small_talk_drifts(fresh_db, engine, tmp_path):
    url = fresh_db()
    now = datetime.now(UTC)
    reference = random.Random(1).sample(prompts("gsm8k-test"), 300) + prompts("humaneval")
    current = random.Random(2).sample(prompts("clinc150"), 400)
    write(url, signal_rows(engine, reference, now - DAY - WEEK, now - DAY))
    write(url, signal_rows(engine, current, now - DAY, now))

    report = drift(url, now=now)
    assert (report.reference_rows, report.current_rows) == (464, 400)
    for name in ("category", "prompt_tokens", "route"):
        signal = report.signal(name)
        assert signal.psi is not None and signal.psi > 0.25 and signal.status == "act", signal
    category = report.signal("category")
    assert category.current[category.bins.index("simple_chat")] > 0.9
    assert category.reference[category.bins.index("simple_chat")] < 0.05

    png = tmp_path / "drift.png"
    result = turnout(url, "--json", "--png", str(png))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert set(printed) == {
        "reference_start",
        "reference_end",
        "current_start",
        "current_end",
        "reference_rows",
        "current_rows",
        "thresholds",
        "signals",
    }
    assert printed["thresholds"] == {"watch": 0.1, "act": 0.25, "min_rows": MIN_ROWS, "epsilon": EPSILON}
    assert [s["signal"] for s in printed["signals"]] == list(SIGNALS)
    assert all(
        set(s)
        == {"signal", "psi", "status", "reference_rows", "current_rows", "bins", "reference", "current"}
        for s in printed["signals"]
    )
    assert printed["signals"][0]["status"] == "act" and printed["current_rows"] == 400
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000

    text = turnout(url)
    assert text.returncode == 0, text.stderr
    line = next(line for line in text.stdout.splitlines() if line.startswith("category "))
    assert line.split()[1:3] == [f"{category.psi:.3f}", "act"]
    assert "thresholds: PSI < 0.1 stable, 0.1-0.25 watch, > 0.25 act" in text.stdout


def test_two_halves_of_one_shuffled_mix_do_not_drift(fresh_db, engine):
    url = fresh_db()
    mix = prompts("presidio-synth-v2")[:1200]  # enough findings in each half for finding_types
    for name in ("gsm8k-test", "clinc150", "arena-hard-v2"):
        mix += random.Random(name).sample(prompts(name), 250)
    mix += prompts("humaneval") + prompts("mt-bench")
    random.Random(3).shuffle(mix)
    half = len(mix) // 2
    write(url, signal_rows(engine, mix[:half], NOW - DAY - WEEK, NOW - DAY))
    write(url, signal_rows(engine, mix[half:], NOW - DAY, NOW))

    report = drift(url)
    measured = {s.signal: s for s in report.signals if s.psi is not None}
    assert set(measured) == set(SIGNALS) - {"retrieval_hit"}  # no prompt here tried retrieval
    for signal in measured.values():
        assert signal.psi is not None and signal.psi < 0.1 and signal.status == "stable", signal
    assert report.signal("finding_types").current_rows >= MIN_ROWS


# ---- the command's errors ------------------------------------------------------------------------
def test_a_bad_window_or_an_unreachable_database_is_one_line(fresh_db):
    url = fresh_db()
    for args in (
        ("--reference", "0d"),
        ("--current", "banana"),
        ("--current", "99999999999w"),
        ("--reference", "999999d"),
    ):
        result = turnout(url, *args)
        assert result.returncode == 2, result
        assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith(f"turnout: {args[0]}")
    away = turnout("postgresql://turnout@127.0.0.1:9/none")
    assert away.returncode == 2
    assert away.stderr.strip().count("\n") == 0 and away.stderr.startswith("turnout: database:")
    assert away.stdout == ""


def test_the_bench_prints_its_table_and_leaves_no_rows_behind(fresh_db):
    import psycopg

    url = fresh_db()
    options = ["--rows", "4000", "--runs", "1", "--url", url]
    bench = [sys.executable, "-m", "router.cli", "bench", "drift", *options]
    result = subprocess.run(bench, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "| compute_drift over 4,000 rows, median |" in result.stdout
    assert "| SELECT count(*) over the same rows, median |" in result.stdout
    assert "category 0." in result.stdout and "(act)" in result.stdout  # the moved mix is found
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM turnout_usage").fetchone() == (0,)

    write(url, [record(NOW)])  # a ledger in use is never written to
    refused = subprocess.run(bench, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert refused.returncode != 0 and "use an empty one" in refused.stderr
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT count(*) FROM turnout_usage").fetchone() == (1,)


def test_the_gateway_exports_live_psi_and_warns_once_when_a_signal_passes_act(fresh_db, caplog):
    """router.ops.gauges: what the gateway runs every TURNOUT_GAUGES_SECONDS, on a drifted ledger."""
    import logging

    from router.db import open_pool
    from router.metrics import Metrics
    from router.ops.gauges import LiveGauges

    url = fresh_db()
    now = datetime.now(UTC)
    rows = hand_made_window(now - timedelta(days=3), code=300, chat=100)
    rows += hand_made_window(now - timedelta(hours=12), code=100, chat=300)
    write(url, rows)
    metrics = Metrics()
    caplog.set_level(logging.WARNING, logger="turnout.drift")

    async def looks() -> None:
        pool = await open_pool(url, max_size=2)
        try:
            gauges = LiveGauges(pool, metrics, 300, reference=WEEK, current=DAY)
            await gauges.look()
            await gauges.look()  # still drifted: no second warning
        finally:
            await pool.close()

    asyncio.run(looks())
    expected = drift(url, now=datetime.now(UTC)).signal("category")
    assert expected.psi is not None and expected.psi > 0.25
    text = metrics.render().decode()
    line = next(line for line in text.splitlines() if line.startswith('turnout_drift_psi{signal="category"}'))
    assert float(line.split()[-1]) == pytest.approx(expected.psi, rel=1e-6)
    assert 'turnout_batch_lines{state="queued"} 0.0' in text
    warned = [r.getMessage() for r in caplog.records if "drifted" in r.getMessage()]
    acting = {s.signal for s in drift(url, now=datetime.now(UTC)).signals if s.status == "act"}
    assert len(warned) == len(acting) and any("category" in message for message in warned)
