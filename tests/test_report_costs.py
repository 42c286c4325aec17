"""`turnout report costs` against a ledger of known rows in a database of its own (the session's
Postgres, a fresh database per test so that other tests' rows never enter the sums), and the pure
arithmetic on plain data for the cases a small ledger cannot reach."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from router.ops.costs import HOURS_PER_MONTH, BackendUse, Window, cost_report, plottable
from router.policy.model import load_policy, parse_policy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "policies" / "default.yaml"

REPORT_KEYS = {
    "since",
    "window_start",
    "window_end",
    "window_hours",
    "hours_per_month",
    "counted",
    "policy",
    "backends",
    "totals",
    "dearest",
    "self_hosted",
    "notes",
}
SELF_HOSTED_KEYS = {
    "backend",
    "gpu_cost_per_hour",
    "monthly_cost_usd",
    "input_tokens_per_month",
    "output_tokens_per_month",
    "capacity_tokens_per_month",
    "usd_per_mtok_at_full_use",
    "replaces",
    "replaces_chosen_by",
    "api_usd_per_mtok",
    "break_even_tokens_per_month",
    "tokens_per_month",
    "served_tokens_per_month",
    "above_break_even",
    "replicas_needed",
    "api_cost_per_month",
    "self_hosted_cost_per_month",
    "cheaper",
    "benchmark_output_tokens_per_s",
    "observed_decode_tokens_per_s",
    "implied_concurrent_streams",
    "note",
}


def insert(url: str, rows: list[dict[str, object]]) -> None:
    import psycopg

    defaults = {"key_id": "k1", "route": "general", "model": "auto", "stream": False, "error": None}
    columns = [
        *defaults,
        *("ts", "backend", "status", "prompt_tokens", "completion_tokens", "cost_usd"),
        *("latency_ms", "overhead_ms"),
    ]
    with psycopg.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO turnout_usage ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})",
            [tuple({**defaults, **row}[name] for name in columns) for row in rows],
        )


def turnout(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TURNOUT_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "router.cli", "report", "costs", "--policy", str(DEFAULT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def row(backend: str, prompt: int, completion: int, **changes: object) -> dict[str, object]:
    """A ledger row charged at the default policy's unit price, an hour ago, answered in 10 s."""
    price = load_policy(DEFAULT).policy.backends[backend].unit_price
    fields: dict[str, object] = {
        "ts": datetime.now(UTC) - timedelta(hours=1),
        "backend": backend,
        "status": 200,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": price.cost(prompt, completion),
        "latency_ms": 10_000.0,
        "overhead_ms": 2_000.0,
    }
    fields.update(changes)
    return fields


KNOWN_ROWS = [
    row("gpt-4", 1_000_000, 200_000),
    row("gpt-4", 1_000_000, 200_000),
    row("haiku", 500_000, 100_000),
    row("haiku", 100_000, 0, status=502, cost_usd=0.1),  # a failed stream that had sent its prompt: counted
    row("llama", 250_000, 500),
    row("llama", 250_000, 500, latency_ms=6_000.0, overhead_ms=0.0),
    row("llama", 0, 0, status=429, cost_usd=0.0),  # no tokens: not counted
    {**row("claude", 0, 0, status=401), "backend": None},  # refused before routing
    row("gpt-4", 9_000_000, 9_000_000, ts=datetime.now(UTC) - timedelta(days=40)),  # before the window
]
PROMPT, COMPLETION = 3_100_000, 501_000


def test_report_sums_reprices_and_finds_the_break_even_by_hand(fresh_db):
    url = fresh_db()
    insert(url, KNOWN_ROWS)
    result = turnout(url, "--since", "30d", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == REPORT_KEYS
    assert report["window_hours"] == pytest.approx(720, abs=0.01)  # the ledger began before --since

    by_backend = {b["backend"]: b for b in report["backends"]}
    assert set(by_backend) == {"gpt-4", "haiku", "llama"}
    assert by_backend["gpt-4"] == {
        "backend": "gpt-4",
        "requests": 2,
        "prompt_tokens": 2_000_000,
        "completion_tokens": 400_000,
        "cost_usd": pytest.approx(2 * (2.5 + 2.0)),
    }
    assert by_backend["haiku"]["requests"] == 2 and by_backend["haiku"]["cost_usd"] == pytest.approx(1.1)
    assert by_backend["llama"]["requests"] == 2
    totals = report["totals"]
    assert (totals["requests"], totals["prompt_tokens"], totals["completion_tokens"]) == (
        6,
        PROMPT,
        COMPLETION,
    )
    charged = 9.0 + 1.1 + 2 * (0.25 * 0.1 + 0.0005 * 1.0)
    assert totals["cost_usd"] == pytest.approx(charged)

    # all on the dearest for this mix: claude ($3/$15) beats gpt-4 ($2.5/$10)
    dearest = 3.1 * 3.0 + 0.501 * 15.0
    assert report["dearest"]["backend"] == "claude"
    assert report["dearest"]["cost_usd"] == pytest.approx(dearest)
    assert report["dearest"]["saved_usd"] == pytest.approx(dearest - charged)

    [llama] = report["self_hosted"]
    assert set(llama) == SELF_HOSTED_KEYS
    share = PROMPT / (PROMPT + COMPLETION)
    monthly = 2.50 * 730
    haiku_per_token = (share * 1.0 + (1 - share) * 5.0) / 1e6  # the cheapest API next to llama in a route
    capacity = 730 / (share / 25_000_000 + (1 - share) / 2_500_000)
    volume = (PROMPT + COMPLETION) * 730 / 720
    assert (llama["replaces"], llama["replaces_chosen_by"]) == ("haiku", "shared route")
    assert llama["monthly_cost_usd"] == pytest.approx(monthly)
    assert llama["capacity_tokens_per_month"] == pytest.approx(capacity)
    assert llama["api_usd_per_mtok"] == pytest.approx(haiku_per_token * 1e6)
    assert llama["break_even_tokens_per_month"] == pytest.approx(monthly / haiku_per_token)
    assert llama["tokens_per_month"] == pytest.approx(volume, rel=1e-6)
    assert llama["above_break_even"] is False and llama["replicas_needed"] == 1
    assert llama["cheaper"] == "api"
    assert llama["api_cost_per_month"] == pytest.approx(haiku_per_token * volume, rel=1e-6)
    # observed per stream: 1,000 output tokens over (10 - 2) + 6 seconds upstream
    assert llama["observed_decode_tokens_per_s"] == pytest.approx(1000 / 14, abs=1e-3)
    assert llama["implied_concurrent_streams"] == pytest.approx((2_500_000 / 3600) / (1000 / 14), abs=0.01)


def test_text_report_and_png_plot(fresh_db, tmp_path):
    url = fresh_db()
    insert(url, KNOWN_ROWS)
    plot = tmp_path / "costs.png"
    result = turnout(url, "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "all on claude (the dearest for these tokens)" in text
    assert "replaces haiku (shared route)" in text and "break-even: " in text
    assert f"plot: {plot}" in text
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000


def test_an_empty_window_reports_zeros_and_draws_nothing(fresh_db, tmp_path):
    url = fresh_db()
    result = turnout(url, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backends"] == [] and report["totals"]["tokens"] == 0 and report["totals"]["cost_usd"] == 0
    assert report["notes"] == ["no traffic with tokens in the window"]
    [llama] = report["self_hosted"]
    assert llama["monthly_cost_usd"] == pytest.approx(1825.0)
    assert llama["break_even_tokens_per_month"] is None and "no traffic" in llama["note"]

    plot = tmp_path / "none.png"
    drawn = turnout(url, "--plot", str(plot))
    assert drawn.returncode == 1 and "note: no traffic with tokens in the window" in drawn.stdout
    assert drawn.stderr.strip().splitlines() == [
        "turnout: no plot written: no traffic in the window to take an input/output mix from"
    ]
    assert not plot.exists()


def test_bad_since_and_unreachable_database_are_one_line(fresh_db):
    from tests.conftest import free_port

    url = fresh_db()
    for since, why in (("yesterday", "use 30m, 24h"), ("2999-01-01", "is in the future")):
        result = turnout(url, "--since", since)
        assert result.returncode == 2 and result.stdout == ""
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"turnout: --since '{since}'") and why in line

    away = turnout(f"postgresql://postgres@127.0.0.1:{free_port()}/turnout")
    assert away.returncode == 2
    [line] = away.stderr.strip().splitlines()
    assert line.startswith("turnout: database: ") and "refused" in line


def test_window_starts_where_the_ledger_does(fresh_db):
    url = fresh_db()
    insert(url, [row("haiku", 1000, 1000, ts=datetime.now(UTC) - timedelta(days=10))])
    report = json.loads(turnout(url, "--json").stdout)
    assert report["window_hours"] == pytest.approx(240, abs=0.05)
    assert report["totals"]["tokens_per_month"] == pytest.approx(2000 * 730 / 240, rel=1e-3)


# The arithmetic on plain data: volumes no test ledger reaches.

NOW = datetime(2026, 1, 31, tzinfo=UTC)
MONTH = Window(NOW - timedelta(hours=HOURS_PER_MONTH), NOW - timedelta(hours=HOURS_PER_MONTH), NOW)


def _policy(gpu: str, backends: str = "") -> object:
    text = f"""
defaults: {{route: all}}
backends:
  api: {{provider: openai, model: m, data: external, price: {{input_per_mtok: 1, output_per_mtok: 4}}}}
  dear: {{provider: openai, model: m, data: external, price: {{input_per_mtok: 8, output_per_mtok: 30}}}}
  {gpu}
  {backends}
routes:
  - {{name: all, backends: [api, dear]}}
"""
    return parse_policy(text, Path("p.yaml"))


def test_above_the_break_even_counts_replicas_and_an_explicit_replaces():
    policy = _policy(
        "gpu1: {provider: vllm, model: m, data: private, gpu: {cost_per_hour: 2, "
        "output_tokens_per_hour: 1000000, input_tokens_per_hour: 10000000, replaces: dear}}"
    )
    # 3G tokens a month, half input: 1.5G in + 1.5G out
    use = BackendUse("api", 10, 1_500_000_000, 1_500_000_000, 0.0)
    report = cost_report(policy, MONTH, [use])  # type: ignore[arg-type]
    [gpu] = report["self_hosted"]
    capacity = 730 / (0.5 / 10_000_000 + 0.5 / 1_000_000)
    per_token = (0.5 * 8 + 0.5 * 30) / 1e6
    assert (gpu["replaces"], gpu["replaces_chosen_by"]) == ("dear", "policy")
    assert gpu["break_even_tokens_per_month"] == pytest.approx(2 * 730 / per_token)
    assert gpu["above_break_even"] is True
    assert gpu["replicas_needed"] == math.ceil(3e9 / capacity) == 3
    assert gpu["self_hosted_cost_per_month"] == pytest.approx(3 * 2 * 730)
    assert gpu["cheaper"] == "self-hosted"
    assert gpu["observed_decode_tokens_per_s"] is None  # it served nothing


def test_a_gpu_dearer_than_the_api_at_full_use_never_breaks_even():
    policy = _policy(
        "slow: {provider: vllm, model: m, data: private, gpu: {cost_per_hour: 50, output_tokens_per_hour: 100000}}"
    )
    report = cost_report(policy, MONTH, [BackendUse("api", 1, 1000, 1000, 0.0025)])  # type: ignore[arg-type]
    [slow] = report["self_hosted"]
    assert (slow["replaces"], slow["replaces_chosen_by"]) == ("api", "cheapest")
    assert slow["break_even_tokens_per_month"] is None
    assert slow["above_break_even"] is False and "at any volume" in slow["note"]
    assert slow["cheaper"] == "api"


def test_no_self_hosted_backend_is_said_in_the_report():
    report = cost_report(_policy(""), MONTH, [BackendUse("api", 1, 1000, 1000, 0.005)])  # type: ignore[arg-type]
    assert report["self_hosted"] == []
    assert any("no self-hosted backend" in note for note in report["notes"])
    assert plottable(report) == ([], "the policy has no self-hosted backend (one with `gpu`)")
    assert report["dearest"]["backend"] == "dear"
    assert report["dearest"]["cost_usd"] == pytest.approx((1000 * 8 + 1000 * 30) / 1e6)


def test_policy_check_names_a_bad_replaces(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        DEFAULT.read_text().replace(
            "input_tokens_per_hour: 25000000}", "input_tokens_per_hour: 25000000, replaces: gpt-5}"
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "policy", "check", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "backends.llama.gpu.replaces: 'gpt-5' is not another backend" in result.stderr
