"""Limits, budgets and the usage ledger through the running gateway (in-process limiter), the
`turnout keys|teams|usage` CLI, and the accuracy test: 4 gateway processes with 2 workers each
sharing one real redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import (
    ADMIN_KEY,
    ROOT,
    Emulators,
    free_port,
    free_ports,
    run,
    serve_in_thread,
    wait_for_rows,
)
from tests.conftest import test_policy as make_test_policy

HELLO = [{"role": "user", "content": "hello there"}]


async def _create(url: str, name: str, **options: Any) -> tuple[str, str]:
    from router.accounts.auth import KeyStore
    from router.accounts.limits import Limits
    from router.db import open_pool

    pool = await open_pool(url, max_size=2)
    try:
        limits = Limits(**options.pop("limits", {}))
        created: tuple[str, str] = await KeyStore(pool).create(name, limits=limits, **options)
        return created
    finally:
        await pool.close()


def key_with(gateway: Any, name: str, **options: Any) -> tuple[str, str]:
    return run(_create(gateway.settings.database_url.get_secret_value(), name, **options))


def turnout(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_requests_per_minute_with_openai_headers(gateway: Any, emulators: Emulators) -> None:
    _, key = key_with(gateway, "rpm-2", limits={"rpm": 2, "tpm": 100_000})
    client = gateway.client(key)
    first = client.chat.completions.with_raw_response.create(model="llama", messages=HELLO, max_tokens=16)
    second = client.chat.completions.with_raw_response.create(model="llama", messages=HELLO, max_tokens=16)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.headers["x-ratelimit-limit-tokens"] == "100000"
    assert second.headers["x-ratelimit-reset-requests"].endswith("s")
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="llama", messages=HELLO, max_tokens=16)
    assert refused.value.code == "rate_limit_exceeded"
    assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    assert refused.value.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert emulators.vllm.script.requests == 2


def test_tokens_are_reserved_then_settled_to_real_usage(gateway: Any, emulators: Emulators) -> None:
    """max_tokens=300 reserves ~310 of 400; the answer uses ~10, so after settling a second fits."""
    _, key = key_with(gateway, "tpm-400", limits={"tpm": 400})
    client = gateway.client(key)
    client.chat.completions.create(model="llama", messages=HELLO, max_tokens=300)
    remaining = 0
    for _ in range(50):  # settling happens off the request path
        probe = httpx.post(
            gateway.base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={"model": "llama", "messages": HELLO, "max_tokens": 1},
        )
        remaining = int(probe.headers["x-ratelimit-remaining-tokens"])
        if remaining > 300:
            break
        time.sleep(0.05)
    assert remaining > 300
    second = client.chat.completions.with_raw_response.create(model="llama", messages=HELLO, max_tokens=300)
    assert int(second.headers["x-ratelimit-remaining-tokens"]) < 100
    with pytest.raises(openai.RateLimitError) as refused:  # ~380 asked, under 400 left once settled
        client.chat.completions.create(model="llama", messages=HELLO, max_tokens=370)
    assert "token rate limit" in refused.value.message.lower()


def test_budget_refuses_or_downgrades(gateway: Any, emulators: Emulators) -> None:
    # gpt-4 at $2.5/$10 per Mtok: ~10 prompt + 1,000 output tokens is ~$0.01; llama costs ~$0.001
    _, strict = key_with(gateway, "budget-strict", limits={"usd_day": 0.005})
    with pytest.raises(openai.RateLimitError) as refused:
        gateway.client(strict).chat.completions.create(model="gpt-4", messages=HELLO, max_tokens=1000)
    assert "budget" in refused.value.message
    assert emulators.openai.script.requests == 0

    from router.accounts.auth import OnBudget

    _, lenient = key_with(gateway, "budget-down", limits={"usd_day": 0.005}, on_budget=OnBudget.downgrade)
    raw = gateway.client(lenient).chat.completions.with_raw_response.create(
        model="gpt-4", messages=HELLO, max_tokens=1000
    )
    assert raw.headers["x-turnout-backend"] == "llama"
    assert raw.headers["x-turnout-route"].endswith("+downgraded")
    assert emulators.openai.script.requests == 0


def test_team_limits_apply_across_its_keys(gateway: Any, emulators: Emulators) -> None:
    env = {"TURNOUT_DATABASE_URL": gateway.settings.database_url.get_secret_value()}
    assert turnout("teams", "set", "search-team", "--rpm", "3", env=env).returncode == 0
    created = [
        json.loads(turnout("keys", "create", "--name", n, "--team", "search-team", "--json", env=env).stdout)
        for n in ("team-a", "team-b")
    ]
    a, b = (gateway.client(item["key"]) for item in created)
    for client in (a, b, a):
        client.chat.completions.create(model="llama", messages=HELLO, max_tokens=8)
    with pytest.raises(openai.RateLimitError):
        b.chat.completions.create(model="llama", messages=HELLO, max_tokens=8)
    listing = json.loads(turnout("teams", "list", "--json", env=env).stdout)
    assert {"name": "search-team", "keys": 2}.items() <= next(
        t for t in listing if t["name"] == "search-team"
    ).items()


def test_keys_update_applies_to_a_running_gateway(gateway: Any, emulators: Emulators) -> None:
    env = {"TURNOUT_DATABASE_URL": gateway.settings.database_url.get_secret_value()}
    created = json.loads(turnout("keys", "create", "--name", "later-limited", "--json", env=env).stdout)
    client = gateway.client(created["key"])
    first = client.chat.completions.with_raw_response.create(model="llama", messages=HELLO, max_tokens=8)
    assert "x-ratelimit-limit-requests" not in first.headers
    update = turnout("keys", "update", created["id"], "--rpm", "1", env=env)
    assert update.returncode == 0, update.stderr
    deadline = time.monotonic() + 5
    limited = None
    while time.monotonic() < deadline:  # LISTEN/NOTIFY drops the key cache of the gateway
        raw = client.chat.completions.with_raw_response.create(model="llama", messages=HELLO, max_tokens=8)
        limited = raw.headers.get("x-ratelimit-limit-requests")
        if limited:
            break
        time.sleep(0.05)
    assert limited == "1"
    listing = json.loads(turnout("keys", "list", "--json", env=env).stdout)
    assert next(k for k in listing if k["id"] == created["id"])["limits"] == {"rpm": 1}
    assert turnout("keys", "update", "key_nope", "--rpm", "1", env=env).returncode == 1


def test_stream_left_early_is_charged_for_what_it_streamed(gateway: Any, emulators: Emulators) -> None:
    key_id, key = key_with(gateway, "stream-budget", limits={"usd_month": 5.0})
    emulators.openai.script.token_ms = 100
    try:
        with httpx.stream(
            "POST",
            gateway.base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {key}"},
            json={
                "model": "gpt-4",
                "messages": [{"role": "user", "content": "please write a long story about the sea"}],
                "stream": True,
                "max_tokens": 200,
            },
            timeout=20,
        ) as response:
            events = 0
            for line in response.iter_lines():
                events += line.startswith("data: ")
                if events >= 4:
                    break
    finally:
        emulators.openai.script.token_ms = 0
    url = gateway.settings.database_url.get_secret_value()
    rows = wait_for_rows(url, f"SELECT * FROM turnout_usage WHERE key_id = '{key_id}'")
    row = rows[0]
    assert row["status"] == 499 and row["stream"]
    assert 3 <= row["completion_tokens"] < 200 and row["prompt_tokens"] > 0 and row["cost_usd"] > 0


def test_a_request_alone_over_the_token_limit_is_a_400_not_a_429(gateway: Any, emulators: Emulators) -> None:
    """A 429 "retry after 55s" for a request no wait could admit had the openai SDK retry it for
    three minutes; it is a 400 that says so (and a smaller one is admitted)."""
    _, key = key_with(gateway, "tpm-100", limits={"tpm": 100})
    response = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "llama", "messages": HELLO, "max_tokens": 200},
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "tokens_over_limit" and "max_tokens" in error["message"]
    assert "more than the 100 tokens per minute" in error["message"]
    small = gateway.client(key).chat.completions.create(model="llama", messages=HELLO, max_tokens=20)
    assert small.choices[0].message.content


def test_embeddings_are_not_priced_at_the_chat_baseline(gateway: Any, emulators: Emulators) -> None:
    """A third trial (2026-12-08): local embeddings cost 0 but their tokens were priced at the
    baseline chat model's input price, and that counted as saved."""
    key_id, key = key_with(gateway, "embeddings-usage")
    gateway.client(key).embeddings.create(model="local-minilm", input=["the quick brown fox"] * 3)
    # a provider's priced model: what it cost is the same whatever the baseline, so nothing is saved
    gateway.client(key).embeddings.create(model="text-embedding-3-small", input=["the quick brown fox"] * 3)
    url = gateway.settings.database_url.get_secret_value()
    wait_for_rows(url, f"SELECT * FROM turnout_usage WHERE key_id = '{key_id}'", lambda r: len(r) == 2)
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    body = httpx.get(gateway.base_url + f"/v1/usage?key={key_id}&by=backend&since=1h", headers=admin).json()
    groups = {group["backend"]: group for group in body["groups"]}
    local, priced = groups["local-minilm"], groups["text-embedding-3-small"]
    assert local["prompt_tokens"] > 0 and local["baseline_usd"] == 0
    assert priced["cost_usd"] > 0 and priced["baseline_usd"] == priced["cost_usd"]
    assert body["totals"]["saved_usd"] == 0


def test_usage_endpoint_and_cli(gateway: Any, emulators: Emulators) -> None:
    key_id, key = key_with(gateway, "usage-reader")
    for model in ("llama", "gpt-4", "haiku"):
        gateway.client(key).chat.completions.create(model=model, messages=HELLO, max_tokens=20)
    refused = httpx.post(  # refused before a route was chosen: a ledger row with no route
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-9", "messages": HELLO},
        headers={"authorization": f"Bearer {key}"},
    )
    assert refused.status_code == 404
    url = gateway.settings.database_url.get_secret_value()
    rows = wait_for_rows(url, f"SELECT * FROM turnout_usage WHERE key_id = '{key_id}'", lambda r: len(r) == 4)
    assert sorted(str(row["route"]) for row in rows) == ["None", "explicit", "explicit", "explicit"]
    routed = 4
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    body = httpx.get(gateway.base_url + f"/v1/usage?key={key_id}&by=backend&since=1h", headers=admin).json()
    assert {g["backend"] for g in body["groups"]} == {"llama", "gpt-4", "haiku", None}
    totals = body["totals"]
    assert totals["requests"] == routed and body["baseline_backend"] == "claude"  # the policy's dearest
    assert 0 < totals["cost_usd"] < totals["baseline_usd"] and totals["saved_usd"] > 0
    named = httpx.get(
        gateway.base_url + f"/v1/usage?key={key_id}&since=1h&baseline=gpt-4", headers=admin
    ).json()
    assert named["baseline_backend"] == "gpt-4" and named["totals"]["baseline_usd"] < totals["baseline_usd"]
    unknown = httpx.get(gateway.base_url + "/v1/usage?baseline=gpt-9", headers=admin)
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "baseline"
    assert (
        httpx.get(gateway.base_url + "/v1/usage", headers={"authorization": f"Bearer {key}"}).status_code
        == 403
    )
    bad = httpx.get(gateway.base_url + "/v1/usage?by=color", headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "by"

    env = {"TURNOUT_DATABASE_URL": url}
    cli = turnout("usage", "--key", key_id, "--by", "backend", "--since", "1h", "--json", env=env)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["totals"]["requests"] == routed
    table = turnout("usage", "--key", key_id, "--since", "1h", env=env)
    assert "saved $" in table.stdout and "all on claude" in table.stdout
    assert "None" not in table.stdout and "(not routed)" in table.stdout  # it printed "None"
    named_cli = turnout("usage", "--key", key_id, "--since", "1h", "--baseline", "gpt-4", env=env)
    assert "all on gpt-4" in named_cli.stdout
    unknown_cli = turnout("usage", "--baseline", "gpt-9", env=env)
    assert unknown_cli.returncode != 0 and "gpt-9" in unknown_cli.stderr
    assert turnout("usage", "--since", "yesterday", env=env).returncode == 2


# --- the accuracy test: 4 gateways x 2 workers, one Redis -------------------------------------


def _gateway_process(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "router.cli", "serve", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _seconds(reset: str) -> float:
    """OpenAI's reset format as the gateway writes it: '250ms', '1.5s', '1m3s'."""
    if reset.endswith("ms"):
        return float(reset[:-2]) / 1000
    minutes, _, rest = reset.rpartition("m")
    return (float(minutes) * 60 if minutes else 0.0) + float(rest.rstrip("s") or 0)


@dataclass
class Answer:
    status: int
    window_end: float  # wall-clock end of the limiter window that admitted it (from its reset header)
    tokens: int


async def _burst(ports: list[int], key: str, seconds: float, clients: int, window_s: float) -> list[Answer]:
    """Many clients round-robin over the gateways for a bounded time and count."""
    import aiohttp

    answers: list[Answer] = []
    deadline = time.monotonic() + seconds
    body = {"model": "llama", "messages": HELLO, "max_tokens": 10}
    headers = {"authorization": f"Bearer {key}"}

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        i = n
        while time.monotonic() < deadline and len(answers) < 20_000:
            url = f"http://127.0.0.1:{ports[i % len(ports)]}/v1/chat/completions"
            i += 1
            async with session.post(url, json=body, headers=headers) as response:
                payload = await response.json()
                if response.status != 200:
                    answers.append(Answer(response.status, 0.0, 0))
                    continue
                names = [
                    n
                    for n in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
                    if n in response.headers
                ]
                if not names:  # admitted without Redis (fail-open): would break the count
                    answers.append(Answer(-1, 0.0, 0))
                    continue
                reset = _seconds(response.headers[names[0]])
                end = round((time.time() + reset) / window_s) * window_s  # windows align to the clock
                answers.append(Answer(200, end, payload["usage"]["total_tokens"]))

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(client(n, session) for n in range(clients)))
    return answers


def _requests_counted(port: int) -> int:
    """The requests one gateway's /metrics counts, over every label set (a new connection each time)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"connection": "close"}).text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "turnout_requests")
    return int(sum(sample.value for sample in family.samples if sample.name == "turnout_requests_total"))


def _start_gateways(env: dict[str, str], count: int) -> tuple[list[int], list[subprocess.Popen[bytes]]]:
    ports = free_ports(count)
    processes = [_gateway_process(port, env) for port in ports]
    deadline = time.monotonic() + 90
    for port, process in zip(ports, processes, strict=True):
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "gateways did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    return ports, processes


@pytest.mark.slow
def test_limits_hold_across_4_gateways_with_2_workers_each(
    pg_url: str, redis_url: str, emulators_session: Emulators, tmp_path: Path
) -> None:
    window_s, rpm, tpm = 2.0, 60, 700
    _, by_requests = run(_create(pg_url, "shared-rpm", limits={"rpm": rpm}))
    _, by_tokens = run(_create(pg_url, "shared-tpm", limits={"tpm": tpm}))
    env = {
        **{k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"},  # each its own
        "TURNOUT_DATABASE_URL": pg_url,
        "TURNOUT_REDIS_URL": redis_url,
        "TURNOUT_LIMITS_WINDOW_S": str(window_s),
        "TURNOUT_POLICY": str(make_test_policy(emulators_session, tmp_path / "policy.yaml")),
        "TURNOUT_HOME": str(tmp_path),
        "TURNOUT_ADMIN_KEY": ADMIN_KEY,
        "TURNOUT_TEST_MISTRAL_KEY": "x",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": emulators_session.openai.base_url,
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": emulators_session.anthropic.base_url,
        "VLLM_BASE_URL": emulators_session.vllm.base_url,
        "TURNOUT_LOG_LEVEL": "warning",
        "TURNOUT_EMBEDDER": "hash-64",  # eight workers must not each warm the model: limits are the point
    }
    ports, processes = _start_gateways(env, 4)
    try:
        requests = run(_burst(ports, by_requests, 3 * window_s + 0.5, 48, window_s))
        tokens = run(_burst(ports, by_tokens, 3 * window_s + 0.5, 48, window_s))
        # /metrics sums both workers' counts whichever worker answers the scrape (multiprocess mode)
        counted = 0
        for port in ports:
            scrapes = {_requests_counted(port) for _ in range(4)}
            assert len(scrapes) == 1, (port, scrapes)
            counted += scrapes.pop()
        assert counted == len(requests) + len(tokens)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(20)
    for answers, limit, measure in ((requests, rpm, "requests"), (tokens, tpm, "tokens")):
        statuses = Counter(a.status for a in answers)
        assert set(statuses) <= {200, 429}, statuses
        assert statuses[429] > statuses[200] > 0, statuses
        per_window: Counter[float] = Counter()
        for answer in answers:
            if answer.status == 200:
                per_window[answer.window_end] += 1 if measure == "requests" else answer.tokens
        assert max(per_window.values()) <= limit * 1.01, (measure, per_window)
        busy = [used for used in per_window.values() if used >= 0.75 * limit]
        assert len(busy) >= 2, (measure, per_window)  # the burst really did saturate several windows


def test_bench_limits_prints_both_limiters_against_their_floors(redis_url: str, tmp_path: Path) -> None:
    from evals.bench.limits import main

    assert main(["--requests", "50", "--redis-url", redis_url, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "limits.json").read_text())
    rows = {row["name"]: row for row in result["rows"]}
    for name in ("in-process admit p50", "Redis admit p50"):
        assert rows[name]["value"] > 0 and rows[name]["baseline"] > 0 and rows[name]["ratio"] > 1
        assert rows[name]["met"] in (True, False)
    assert "| Redis admit p50 |" in (tmp_path / "limits.md").read_text()


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise RuntimeError("redis-server did not start")


def _gateway_on(pg_url: str, emus: Emulators, home: Path, **settings: Any) -> tuple[Any, Any, str]:
    from router.http.app import create_app
    from router.settings import Settings

    config = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=make_test_policy(emus, home / "policy.yaml"),
        home=home,
        vllm_base_url=emus.vllm.base_url,
        embedder="hash-64",  # limits are what these gateways are for: no model to warm
        **settings,
    )
    server, thread = serve_in_thread(create_app(config), port := free_port())
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.mark.integration
def test_redis_down_fails_open_or_closed_and_recovers(
    pg_url: str, emulators_session: Emulators, tmp_path: Path
) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    # Hold the port bound but not listening: connections are refused, and no gateway started
    # below can be given the same port (a bare free_port() here once handed it to a gateway).
    hold = socket.socket()
    hold.bind(("127.0.0.1", 0))
    port = int(hold.getsockname()[1])
    _, key = run(_create(pg_url, "redis-outage", limits={"rpm": 1}))
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "llama", "messages": HELLO, "max_tokens": 5}
    opened = _gateway_on(pg_url, emulators_session, tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
    (tmp_path / "closed").mkdir()
    closed = _gateway_on(
        pg_url,
        emulators_session,
        tmp_path / "closed",
        redis_url=f"redis://127.0.0.1:{port}/0",
        limits_on_failure="closed",
    )
    redis = None
    try:
        statuses = [
            httpx.post(opened[2] + "/v1/chat/completions", json=body, headers=headers).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200]  # open: admitted without limits while Redis is away
        text = httpx.get(opened[2] + "/metrics").text
        assert 'turnout_limiter_store_up{limiter="redis"} 0.0' in text
        degraded = next(
            line for line in text.splitlines() if line.startswith("turnout_limiter_degraded_total")
        )
        assert int(float(degraded.split()[-1])) >= 3
        refused = httpx.post(closed[2] + "/v1/chat/completions", json=body, headers=headers)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"

        hold.close()
        redis = _start_redis(port)
        deadline = time.monotonic() + 10
        seen: list[int] = []
        while time.monotonic() < deadline and 429 not in seen:  # back after the short back-off
            seen.append(
                httpx.post(opened[2] + "/v1/chat/completions", json=body, headers=headers).status_code
            )
            time.sleep(0.2)
        assert 429 in seen  # rpm=1 holds again
        assert 'turnout_limiter_store_up{limiter="redis"} 1.0' in httpx.get(opened[2] + "/metrics").text
    finally:
        hold.close()
        for server, thread, _ in (opened, closed):
            server.should_exit = True
            thread.join(15)
        if redis is not None:
            redis.terminate()
            redis.wait(10)


def test_ledger_down_while_seeding_budgets_is_one_log_line_not_one_per_request(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from router.accounts.admission import Admissions, Estimate
    from router.accounts.auth import Principal
    from router.accounts.limits import Limits
    from router.accounts.limits_memory import MemoryLimiter
    from router.db import connect_pool

    async def main() -> list[bool]:
        pool = await connect_pool(pg_url, max_size=1)
        await pool.close()  # the ledger is unreachable from here on
        admissions = Admissions(MemoryLimiter(), pool)
        principal = Principal("key_ledgerdown", "k", limits=Limits(usd_day=1.0))
        allowed = []
        for _ in range(5):
            admission = await admissions.admit(principal, Estimate(10, 0.001))
            assert admission is not None
            allowed.append(admission.allowed)
        await admissions.aclose()
        return allowed

    with caplog.at_level("WARNING", logger="turnout.admission"):
        assert run(main()) == [True] * 5  # budgets start from what the limiter holds
    assert len([r for r in caplog.records if "could not read spend" in r.message]) == 1


@pytest.mark.integration
def test_a_redis_stall_does_not_lock_a_concurrency_limited_key_out(
    pg_url: str, emulators_session: Emulators, tmp_path: Path
) -> None:
    """Redis stopped (SIGSTOP) while requests are admitted open, then resumed: it runs the
    admissions it was sent, but those slots end with their requests instead of holding the key at
    its limit for the 600 s lease."""
    import signal

    import redis

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    port = free_port()
    server = _start_redis(port)
    key_id, key = run(_create(pg_url, "stalled-concurrency", limits={"concurrent": 2}))
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "llama", "messages": HELLO, "max_tokens": 5}
    gateway = _gateway_on(
        pg_url,
        emulators_session,
        tmp_path,
        redis_url=f"redis://127.0.0.1:{port}/0",
        limits_redis_timeout_s=0.3,
    )
    probe = redis.Redis(port=port)
    try:
        assert httpx.post(gateway[2] + "/v1/chat/completions", json=body, headers=headers).status_code == 200
        server.send_signal(signal.SIGSTOP)
        stalled = [
            httpx.post(
                gateway[2] + "/v1/chat/completions", json=body, headers=headers, timeout=20
            ).status_code
            for _ in range(2)
        ]
        assert stalled == [200, 200]  # admitted open
        server.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 10
        in_flight = probe.get(f"{{turnout}}:cc:key:{key_id}")
        while in_flight not in (None, b"0") and time.monotonic() < deadline:
            time.sleep(0.1)
            in_flight = probe.get(f"{{turnout}}:cc:key:{key_id}")
        assert in_flight in (None, b"0"), "slots taken during the stall outlived their requests"
        answers = [
            httpx.post(gateway[2] + "/v1/chat/completions", json=body, headers=headers).status_code
            for _ in range(3)
        ]
        assert answers == [200, 200, 200]
    finally:
        server.send_signal(signal.SIGCONT)
        gateway[0].should_exit = True
        gateway[1].join(15)
        probe.close()
        server.terminate()
        server.wait(10)
