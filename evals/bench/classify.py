"""`turnout bench classify`: the per-query cost of every routing signal, against counting tokens alone
on the same real queries (MT-Bench, GSM8K, Arena-Hard prompts, Presidio's PII sentences)."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from evals.bench.fmt import Sample


def run_classify_bench(args: argparse.Namespace) -> int:
    """Per-query cost of computing every signal, against counting tokens alone on the same texts."""
    from evals.datasets import DatasetError
    from router import tokens
    from router.policy.model import load_policy
    from router.schema import ChatRequest
    from router.settings import Settings
    from router.signals.capability.classifier import CapabilityClassifier
    from router.signals.collect import SignalEngine

    try:
        texts = _bench_texts(args.queries)
    except DatasetError as error:
        print(f"turnout: {error}", file=sys.stderr)
        return 2
    # as the gateway: TURNOUT_POLICY, else the checkout's default, else the packaged one
    policy = load_policy(args.policy or Settings().policy).policy
    engine = SignalEngine(policy, CapabilityClassifier.load())
    requests = [
        ChatRequest.model_validate({"model": "auto", "messages": [{"role": "user", "content": t}]})
        for t in texts
    ]
    for request in requests[:50]:  # warm caches
        engine.compute(request)
    timings: dict[str, list[float]] = {"tokens only (baseline)": [], "all signals": []}
    for request in requests:
        started = time.perf_counter()
        tokens.count(request)
        timings["tokens only (baseline)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        engine.compute(request)
        timings["all signals"].append(time.perf_counter() - started)
    base = statistics.median(timings["tokens only (baseline)"])
    print(
        f"# turnout bench classify — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {len(requests)} queries"
    )
    print("| step | p50 ms | p99 ms | p50 / baseline |\n|---|---|---|---|")
    for name, values in timings.items():
        sample = Sample(values, 0, sum(values))
        print(
            f"| {name} | {sample.pct(0.5):.3f} | {sample.pct(0.99):.3f} | {statistics.median(values) / base:.1f}x |"
        )
    return 0


def _bench_texts(limit: int) -> list[str]:
    """A mix of real queries: MT-Bench, GSM8K, Arena-Hard prompts and Presidio's PII sentences."""
    import json

    from evals.datasets import read_jsonl as jsonl
    from evals.datasets import resolve

    texts: list[str] = [turn for row in jsonl("mt-bench") for turn in row["turns"]]
    texts += [row["question"] for row in jsonl("gsm8k-test")[:400]]
    texts += [row["prompt"] for row in jsonl("arena-hard-v2")[:200]]
    texts += [row["full_text"] for row in json.loads(resolve("presidio-synth-v2").read_text())[:400]]
    return texts[:limit]
