"""`turnout bench gateway`: the gateway's overhead and throughput, against a baseline from the same run.

Three processes on loopback: provider emulators (20 ms think time by default), the gateway, and
this load generator. Every cell is measured twice, straight to the emulator and through the
gateway, so the overhead is a difference within one run, never an absolute claim. LiteLLM's proxy
is measured the same way when it is installed. Every loop is bounded in requests and in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from evals.bench.fmt import BenchResult, Bound, Sample
from evals.bench.fmt import Target as Goal
from evals.bench.otlp import otlp_sink, scraping
from evals.bench.procs import cpu_seconds, free_port, process, rss_mb, wait_http

CELL_DEADLINE_S = 120.0
WARMUP_CALLS = 3  # per client and round, not counted
SATURATION_CLIENTS = 256
BENCH_KEY = "bench-admin-key"
LITELLM_KEY = "sk-bench-" + "0" * 32
PROMPT = [
    {"role": "user", "content": "Summarise the benefits of a gateway in front of several language models."}
]


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


async def load(
    target: Target,
    requests: int,
    concurrency: int,
    stream: bool,
    deadline_s: float = CELL_DEADLINE_S,
    warmup: int = 0,
    ramp_s: float = 0.0,
) -> Sample:
    """`requests` calls from `concurrency` workers, stopping early at the deadline.

    Each worker's first `warmup` calls are made but not counted: every worker starts at the same
    instant on a new connection, a burst that steady clients at this concurrency do not send.
    """
    body = orjson.dumps({**target.body, "stream": stream})
    latencies: list[float] = []
    errors = calls = 0
    first_start, last_end = float("inf"), 0.0
    remaining = requests
    stop_at = time.monotonic() + deadline_s
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker(index: int) -> None:
            nonlocal remaining, errors, calls, first_start, last_end
            await asyncio.sleep(ramp_s * index / concurrency)
            skip = warmup
            while time.monotonic() < stop_at:
                counted = skip == 0
                if counted:
                    if remaining <= 0:
                        return
                    remaining -= 1
                started = time.perf_counter()
                try:
                    async with session.post(target.url, data=body, headers=target.headers) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                calls += 1
                if not counted:
                    skip -= 1
                    continue
                first_start, last_end = min(first_start, started), time.perf_counter()
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        await asyncio.gather(*(worker(index) for index in range(concurrency)))
        return Sample(latencies, errors, max(0.0, last_end - first_start), calls=calls)


async def paired(
    direct: Target,
    via: Target,
    requests: int,
    concurrency: int,
    stream: bool,
    via_pid: int,
    ramp_s: float = 0.0,
) -> tuple[Sample, Sample]:
    """Direct and via samples taken in alternating rounds, so drift on a busy machine hits both alike.

    Each round measures steady clients: they start spread over `ramp_s` (one think time) and their
    first calls are not counted. Started in the same instant instead, the 16 clients of a round
    stay bunched for dozens of calls behind a fixed think time (each waiting for the others'
    turns in the gateway), which is the start of a test, not what 16 clients see.

    The via sample also carries the CPU time its server process spent per request: a figure that,
    unlike latency differences, does not depend on what else the two cores were doing.
    """
    rounds = 4
    direct_all, via_all = Sample([], 0, 0.0), Sample([], 0, 0.0)
    for _ in range(rounds):
        for target, total in ((direct, direct_all), (via, via_all)):
            cpu_before = cpu_seconds(via_pid)
            sample = await load(
                target, max(1, requests // rounds), concurrency, stream, warmup=WARMUP_CALLS, ramp_s=ramp_s
            )
            # the via server's CPU in both: near nothing while the baseline goes direct, and what
            # the baseline costs when it too goes through that server (auto against named)
            total.cpu_s += cpu_seconds(via_pid) - cpu_before
            total.latencies += sample.latencies
            total.errors += sample.errors
            total.seconds += sample.seconds
            total.calls += sample.calls
    return direct_all, via_all


def litellm_proxy(args: argparse.Namespace) -> Path | None:
    """The `litellm` proxy executable: --litellm, else this environment's when its extras are installed."""
    if args.litellm:
        return Path(args.litellm) if Path(args.litellm).exists() else None
    from importlib.util import find_spec

    if find_spec("litellm") is None or find_spec("fastapi") is None or find_spec("backoff") is None:
        return None
    exe = Path(sys.executable).with_name("litellm")
    return exe if exe.exists() else None


def cpu_ms(sample: Sample) -> float:
    """The measured server's CPU milliseconds per call of the sample."""
    return sample.cpu_s / max(1, sample.calls) * 1000


def row(label: str, direct: Sample, via: Sample) -> str:
    over50, over99 = via.pct(0.50) - direct.pct(0.50), via.pct(0.99) - direct.pct(0.99)
    return (
        f"| {label} | {direct.pct(0.5):7.2f} | {via.pct(0.5):7.2f} | {over50:6.2f} | {direct.pct(0.99):7.2f} | "
        f"{via.pct(0.99):7.2f} | {over99:6.2f} | {via.rate:7.1f} | {cpu_ms(via):5.2f} | {via.errors} |"
    )


async def cell(
    direct: Target,
    via: Target,
    label: str,
    concurrency: int,
    stream: bool,
    args: argparse.Namespace,
    via_pid: int,
    result: BenchResult,
    baseline: str = "direct to the emulator",
    server_baseline: bool = False,
) -> None:
    """One latency-table cell: a warm-up, direct and via in alternating rounds, a printed row and
    its figures in the shared format. With `server_baseline` (the baseline goes through the same
    server), also the baseline's server CPU per request and the via side's excess over it, which
    is steadier than a latency difference on two shared cores."""
    await load(via, 20, concurrency, stream)
    measured = await paired(
        direct, via, args.requests, concurrency, stream, via_pid, ramp_s=args.think_ms / 1000
    )
    line = row(label, *measured)
    record(result, label, *measured, baseline)
    if server_baseline:
        base_cpu, excess = cpu_ms(measured[0]), cpu_ms(measured[1]) - cpu_ms(measured[0])
        line += f" {base_cpu:.2f} | {excess:+.2f} |"
        result.add(f"{label} server CPU over baseline", excess, "ms/req")
    print(line, flush=True)


def record(
    result: BenchResult, label: str, direct: Sample, via: Sample, baseline: str = "direct to the emulator"
) -> None:
    """One latency-table cell in the shared format: the via figures against the direct ones."""
    for share in (0.5, 0.99):
        name = f"{label} p{share * 100:g}"
        result.add(name, via.pct(share), "ms", baseline=direct.pct(share), baseline_name=baseline)
    result.add(f"{label} req/s", via.rate, "req/s", baseline=direct.rate, baseline_name=baseline)
    result.add(f"{label} server CPU", cpu_ms(via), "ms/req")
    result.add(f"{label} errors", float(via.errors), "requests")


def run_gateway_bench(args: argparse.Namespace) -> int:
    result = BenchResult(
        "gateway",
        {
            "requests per cell": args.requests,
            "emulator think ms": f"{args.think_ms:g} ± {args.jitter_ms:g}",
            "concurrency": args.concurrency,
            "gateway workers": args.gateway_workers,
            "memory marks": args.memory_requests,
            "saturation s": args.saturation_seconds,
        },
    )
    status = asyncio.run(_bench(args, result))
    out = getattr(args, "out", None)  # `--out DIR`, where the CLI offers it
    if out is not None:
        for path in result.finish().write(out):
            print(f"wrote {path}", file=sys.stderr)
    return status


async def _bench(args: argparse.Namespace, result: BenchResult) -> int:
    concurrencies = [int(c) for c in args.concurrency.split(",")]
    memory_marks = [int(m) for m in args.memory_requests.split(",")]
    env = {**os.environ, "TURNOUT_LOG_LEVEL": "warning"}
    if not getattr(args, "otlp", False):
        return await _bench_with(args, result, concurrencies, memory_marks, env)
    with otlp_sink() as (otlp_url, received):  # traces on, to a collector on loopback
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_url
        status = await _bench_with(args, result, concurrencies, memory_marks, env)
        result.notes.append(
            f"tracing on: every request's spans exported over OTLP/HTTP to a loopback sink "
            f"({received[0] / 1024:.0f} KiB received)"
        )
        return status


async def _bench_with(
    args: argparse.Namespace,
    result: BenchResult,
    concurrencies: list[int],
    memory_marks: list[int],
    env: dict[str, str],
) -> int:
    home = Path(tempfile.mkdtemp(prefix="turnout-bench-"))
    ports = {"openai": free_port(), "anthropic": free_port(), "gateway": free_port()}
    cli = [sys.executable, "-m", "router.cli"]
    think = [str(args.think_ms), "--jitter-ms", str(args.jitter_ms)]
    with (
        process(
            [*cli, "emulate", "openai", "--port", str(ports["openai"]), "--think-ms", *think], env
        ) as openai_emu,
        process(
            [*cli, "emulate", "anthropic", "--port", str(ports["anthropic"]), "--think-ms", *think], env
        ) as anthropic_emu,
    ):
        wait_http(f"http://127.0.0.1:{ports['openai']}/v1/models", openai_emu)
        wait_http(f"http://127.0.0.1:{ports['anthropic']}/v1/models", anthropic_emu)
        gateway_env = {
            **env,
            "TURNOUT_HOME": str(home),
            "TURNOUT_ADMIN_KEY": BENCH_KEY,
            "TURNOUT_PORT": str(ports["gateway"]),
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{ports['openai']}/v1",
            "ANTHROPIC_API_KEY": "bench",
            "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{ports['anthropic']}",
        }
        async with contextlib.AsyncExitStack() as cleanup:
            cleanup.callback(shutil.rmtree, home, True)  # after the gateway (and its Postgres) stopped
            serve = [*cli, "serve", "--workers", str(args.gateway_workers)]
            gateway = cleanup.enter_context(process(serve, gateway_env))
            # ready, not only alive: start-up (the embedder, the keyword index) must not share the
            # cores with the first cells
            wait_http(f"http://127.0.0.1:{ports['gateway']}/readyz", gateway)
            targets = _targets(ports)
            metrics_url = f"http://127.0.0.1:{ports['gateway']}/metrics"
            scrapes = await cleanup.enter_async_context(
                scraping(metrics_url, getattr(args, "scrape_seconds", 0.0))
            )
            print(
                f"# turnout bench gateway — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, emulator think time {args.think_ms:g} ± {args.jitter_ms:g} ms"
            )
            print(f"# {args.requests} requests per cell; latencies in ms; overhead = via - direct\n")
            print(
                "| cell | direct p50 | via p50 | +p50 | direct p99 | via p99 | +p99 | via req/s | CPU ms/req | errors |"
            )
            print("|---|---|---|---|---|---|---|---|---|---|")
            for wire in ("openai", "anthropic"):
                direct_target, gateway_target = targets[wire], targets[f"gateway-{wire}"]
                for stream in (False, True):
                    for concurrency in concurrencies:
                        label = f"{wire} {'stream' if stream else 'json'} c={concurrency}"
                        await cell(
                            direct_target,
                            gateway_target,
                            label,
                            concurrency,
                            stream,
                            args,
                            gateway.pid,
                            result,
                        )
            await _auto_against_named(targets, args, gateway.pid, result)
            await _saturation(targets, args, result)
            if not args.no_litellm:
                await _litellm(ports, args, env, home, result)
            await _memory(targets["gateway-openai"], gateway.pid, memory_marks, result)
            if getattr(args, "scrape_seconds", 0.0) > 0:
                result.notes.append(
                    f"/metrics scraped every {getattr(args, 'scrape_seconds', 0.0):g} s during the run: {scrapes[0]} scrapes, "
                    f"{scrapes[1] / max(scrapes[0], 1) / 1024:.0f} KiB each"
                )
    return 0


def _targets(ports: dict[str, int]) -> dict[str, Target]:
    gateway = f"http://127.0.0.1:{ports['gateway']}/v1/chat/completions"
    auth = {"authorization": f"Bearer {BENCH_KEY}", "content-type": "application/json"}
    return {
        "openai": Target(
            "openai",
            f"http://127.0.0.1:{ports['openai']}/v1/chat/completions",
            {"authorization": "Bearer bench"},
            {"model": "gpt-4o", "messages": PROMPT},
        ),
        "anthropic": Target(
            "anthropic",
            f"http://127.0.0.1:{ports['anthropic']}/v1/messages",
            {"x-api-key": "bench", "anthropic-version": "2023-06-01"},
            {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": PROMPT},
        ),
        "gateway-openai": Target("gateway", gateway, auth, {"model": "gpt-4", "messages": PROMPT}),
        "gateway-anthropic": Target("gateway", gateway, auth, {"model": "claude", "messages": PROMPT}),
    }


async def _auto_against_named(
    targets: dict[str, Target], args: argparse.Namespace, gateway_pid: int, result: BenchResult
) -> None:
    """What `model: "auto"` costs over naming the backend it picks: every routing signal of the
    request (sensitivity scan, category and difficulty, cost and latency estimates) and the route.
    Both go through the gateway to the same emulator, in alternating rounds."""
    named = targets["gateway-openai"]
    auto = Target("gateway", named.url, named.headers, {**named.body, "model": "auto"})
    async with (  # which backend auto picks for this prompt
        aiohttp.ClientSession() as session,
        session.post(auto.url, headers=auto.headers, json=auto.body) as response,
    ):
        backend = response.headers.get("x-turnout-backend", "")
        await response.read()
    if not backend:
        result.notes.append("auto against named: auto was not answered, not measured")
        return
    named = Target("gateway", named.url, named.headers, {**named.body, "model": backend})
    print(
        f"\n| auto against naming its pick ({backend}) | named p50 | auto p50 | +p50 | named p99 | auto p99 | +p99 | auto req/s | CPU ms/req | errors | named CPU ms/req | +CPU ms/req |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for concurrency in (1, 16):
        label = f"auto json c={concurrency}"
        await cell(
            named, auto, label, concurrency, False, args, gateway_pid, result, f"model: {backend}", True
        )


async def _saturation(targets: dict[str, Target], args: argparse.Namespace, result: BenchResult) -> None:
    print(
        f"\n| saturation (json, c={SATURATION_CLIENTS}, ≤ {args.saturation_seconds:g} s) | req/s | p50 ms | errors |\n|---|---|---|---|"
    )
    samples: dict[str, Sample] = {}
    for name in ("openai", "gateway-openai"):
        sample = samples[name] = await load(
            targets[name], 20_000, SATURATION_CLIENTS, False, deadline_s=args.saturation_seconds
        )
        label = "emulator alone" if name == "openai" else "through turnout"
        print(f"| {label} | {sample.rate:.1f} | {sample.pct(0.5):.2f} | {sample.errors} |", flush=True)
    alone, via = samples["openai"], samples["gateway-openai"]
    label = f"saturation json c={SATURATION_CLIENTS}"
    result.add(f"{label} req/s", via.rate, "req/s", baseline=alone.rate, baseline_name="emulator alone")
    result.add(f"{label} p50", via.pct(0.5), "ms", baseline=alone.pct(0.5), baseline_name="emulator alone")
    result.add(f"{label} errors", float(via.errors), "requests")


async def _litellm(
    ports: dict[str, int], args: argparse.Namespace, env: dict[str, str], home: Path, result: BenchResult
) -> None:
    exe = litellm_proxy(args)
    if exe is None:
        print("\nLiteLLM proxy: not installed (pip install 'litellm[proxy]', or --litellm PATH), skipped.")
        result.notes.append("LiteLLM proxy: not installed, not measured")
        return
    port = free_port()
    config = home / "litellm.yaml"
    config.write_text(
        f"general_settings:\n  master_key: {LITELLM_KEY}\n"
        "model_list:\n  - model_name: gpt-4\n    litellm_params:\n      model: openai/gpt-4o\n"
        f"      api_base: http://127.0.0.1:{ports['openai']}/v1\n      api_key: bench\n"
    )
    with process(
        [str(exe), "--config", str(config), "--port", str(port), "--num_workers", "1"], env
    ) as proxy:
        try:
            wait_http(f"http://127.0.0.1:{port}/health/liveliness", proxy, timeout_s=120)
        except RuntimeError as error:
            print(f"\nLiteLLM proxy: did not start (...{str(error)[-300:]}), skipped.")
            result.notes.append("LiteLLM proxy: did not start, not measured")
            return
        target = Target(
            "litellm",
            f"http://127.0.0.1:{port}/v1/chat/completions",
            {"authorization": f"Bearer {LITELLM_KEY}"},
            {"model": "gpt-4", "messages": PROMPT},
        )
        direct_target = Target(
            "openai",
            f"http://127.0.0.1:{ports['openai']}/v1/chat/completions",
            {"authorization": "Bearer bench"},
            {"model": "gpt-4o", "messages": PROMPT},
        )
        print(
            "\n| LiteLLM proxy (1 worker), same emulator | direct p50 | via p50 | +p50 | direct p99 | via p99 | +p99 | via req/s | CPU ms/req | errors |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for stream in (False, True):
            for concurrency in (1, 16):
                label = f"litellm {'stream' if stream else 'json'} c={concurrency}"
                await cell(direct_target, target, label, concurrency, stream, args, proxy.pid, result)
        sample = await load(target, 20_000, SATURATION_CLIENTS, False, deadline_s=args.saturation_seconds)
        print(
            f"\nLiteLLM proxy saturation (json, c={SATURATION_CLIENTS}): {sample.rate:.1f} req/s, {sample.errors} errors"
        )
        result.add(f"litellm saturation json c={SATURATION_CLIENTS} req/s", sample.rate, "req/s")


async def _memory(target: Target, pid: int, marks: list[int], result: BenchResult) -> None:
    baseline = rss_mb(pid)
    done = 0
    readings = []
    for mark in marks:
        sample = await load(target, mark - done, 16, False, deadline_s=300)
        done += len(sample.latencies) + sample.errors
        readings.append((done, rss_mb(pid)))
    print(f"\n| gateway memory | RSS MB |\n|---|---|\n| after warm-up | {baseline:.1f} |")
    for count, mb in readings:
        print(f"| after {count} requests | {mb:.1f} |")
        result.add(
            f"gateway RSS after {count} requests", mb, "MB", baseline=baseline, baseline_name="after warm-up"
        )
    if len(readings) >= 2:
        growth = (readings[-1][1] - readings[0][1]) / readings[0][1] * 100
        print(f"\ngrowth from {readings[0][0]} to {readings[-1][0]} requests: {growth:+.1f}% (budget ≤ 10%)")
        result.add(
            f"gateway RSS after {readings[-1][0]} requests vs after {readings[0][0]}",
            readings[-1][1],
            "MB",
            baseline=readings[0][1],
            baseline_name=f"after {readings[0][0]} requests",
            target=Goal(Bound.AT_MOST, 1.10),
        )
