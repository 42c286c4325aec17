"""Evaluates the packaged capability classifier on held-out prompts: category, difficulty routing, latency.

Run as `python -m evals.routing_eval [--json] [--artifact PATH]`. It loads the artifact as the
gateway does (no retraining), rebuilds the held-out split with the seed stored in the artifact
through the same code training used (`evals.training.corpus.build_split`), and replays RouteLLM's
recorded GPT-4-1106 / Mixtral-8x7B outcomes on the held-out, de-contaminated prompts of GSM8K, MMLU
and MT-Bench. It must never fit anything, never tune a threshold on what it reports, and never
touch the network (datasets come from the registry's mirror or cache).

Dollar assumption: a prompt's input is its characters / 4 tokens (MT-Bench: both user turns plus the
first exchange resent with the second); output tokens are measured from each model's recorded
answers (GSM8K, MT-Bench) or one token (MMLU's answer letter). Prices: GPT-4 $10/M input and $30/M
output, Mixtral $0.6/M both. The classifier's own cost (about 0.1 ms of CPU) is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals import routing_metrics as rm
from evals.training.corpus import DEFAULT_SEED, Split, build_split
from evals.training.outcomes import BENCHMARKS, Outcome, split_outcomes
from router.signals.capability.classifier import CATEGORIES, DEFAULT_ARTIFACT, CapabilityClassifier


def category_report(classifier: CapabilityClassifier, split: Split) -> dict[str, Any]:
    truth = [e.label for e in split.test]
    predicted = [classifier.classify(e.text).category for e in split.test]
    matrix = rm.confusion(truth, predicted, CATEGORIES)
    classes = rm.per_class(matrix, CATEGORIES)
    by_source: dict[str, list[int]] = {}
    for example, guess in zip(split.test, predicted, strict=True):
        by_source.setdefault(example.source, []).append(int(guess == example.label))
    return {
        "n": len(truth),
        "accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "macro_f1": float(np.mean([c["f1"] for c in classes.values()])),
        "per_class": classes,
        "confusion": {"labels": list(CATEGORIES), "rows_true_cols_predicted": matrix.tolist()},
        "accuracy_by_source": {s: float(np.mean(v)) for s, v in sorted(by_source.items())},
    }


def replay_of(outcomes: Sequence[Outcome]) -> rm.Replay:
    strong_in, strong_out = rm.STRONG_PRICE
    weak_in, weak_out = rm.WEAK_PRICE
    return rm.Replay(
        strong=np.array([o.strong for o in outcomes]),
        weak=np.array([o.weak for o in outcomes]),
        strong_cost=np.array(
            [o.input_tokens * strong_in + o.strong_output_tokens * strong_out for o in outcomes]
        ),
        weak_cost=np.array([o.input_tokens * weak_in + o.weak_output_tokens * weak_out for o in outcomes]),
    )


def router_curves(
    classifier: CapabilityClassifier, outcomes: Sequence[Outcome]
) -> tuple[rm.Replay, dict[str, rm.Curve]]:
    """The replay of these outcomes and the cost-quality curve of ours, random and the oracle."""
    replay = replay_of(outcomes)
    scores = [classifier.classify(o.text).difficulty for o in outcomes]
    return replay, {
        "ours": rm.sweep(scores, replay),
        "random": rm.random_router(replay),
        "oracle": rm.oracle(replay),
    }


def difficulty_report(classifier: CapabilityClassifier, outcomes: Sequence[Outcome]) -> dict[str, Any]:
    replay, curves = router_curves(classifier, outcomes)
    needed = np.array([o.strong_needed for o in outcomes])
    return {
        "n": len(outcomes),
        "strong_needed_share": float(needed.mean()),
        "gpt4_quality": float(replay.strong.mean()),
        "mixtral_quality": float(replay.weak.mean()),
        "gpt4_only_dollars_per_1k": float(replay.strong_cost.mean() * 1000),
        "mixtral_only_dollars_per_1k": float(replay.weak_cost.mean() * 1000),
        "routers": {name: rm.summary(curve, replay) for name, curve in curves.items()},
    }


def latency_report(classifier: CapabilityClassifier, texts: Sequence[str]) -> dict[str, float]:
    for text in texts[:50]:  # warm caches and numpy's dispatch before timing
        classifier.classify(text)
    timings = []
    for text in texts:
        start = time.perf_counter_ns()
        classifier.classify(text)
        timings.append((time.perf_counter_ns() - start) / 1000)
    chars = [len(t) for t in texts]
    return {
        "n": len(texts),
        "p50_us": float(np.percentile(timings, 50)),
        "p99_us": float(np.percentile(timings, 99)),
        "median_prompt_chars": float(np.median(chars)),
    }


def held_out_data(
    artifact: Path | None = None, *, outcomes: bool = True
) -> tuple[CapabilityClassifier, Split, dict[str, list[Outcome]]]:
    """The classifier, its held-out split (rebuilt from the artifact's seed) and, unless
    `outcomes=False`, each benchmark's held-out de-contaminated outcomes."""
    classifier = CapabilityClassifier.load(artifact)
    split = build_split(int(classifier.meta.get("split_seed", DEFAULT_SEED)))
    held_out = split_outcomes(split)[1] if outcomes else {}
    return classifier, split, held_out


def run(artifact: Path | None = None) -> dict[str, Any]:
    classifier, split, held_out = held_out_data(artifact)
    seed = split.seed
    texts = [e.text for e in split.test] + [o.text for b in BENCHMARKS for o in held_out[b]]
    return {
        "artifact": str(artifact or DEFAULT_ARTIFACT),
        "split_seed": seed,
        "category": category_report(classifier, split),
        "difficulty": {b: difficulty_report(classifier, held_out[b]) for b in BENCHMARKS},
        "latency": latency_report(classifier, texts),
        "test_counts": dict(Counter(e.label for e in split.test)),
    }


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{100 * value:4.0f}%"


def _category_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"category: {report['n']} held-out prompts, accuracy {report['accuracy']:.3f}, "
        f"macro-F1 {report['macro_f1']:.3f}",
        f"  {'class':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}",
    ]
    for label, c in report["per_class"].items():
        lines.append(
            f"  {label:<12} {c['precision']:>9.3f} {c['recall']:>7.3f} {c['f1']:>6.3f} {c['support']:>8d}"
        )
    short = [label[:6] for label in report["confusion"]["labels"]]
    lines.append("  confusion (rows: true, columns: predicted)")
    lines.append("  " + " " * 12 + "".join(f"{s:>8}" for s in short))
    for label, row in zip(
        report["confusion"]["labels"], report["confusion"]["rows_true_cols_predicted"], strict=True
    ):
        lines.append(f"  {label:<12}" + "".join(f"{v:>8d}" for v in row))
    by_source = ", ".join(f"{s} {a:.2f}" for s, a in report["accuracy_by_source"].items())
    lines.append(f"  accuracy by source: {by_source}")
    return lines


def _difficulty_lines(reports: dict[str, Any]) -> list[str]:
    lines = [
        "difficulty: GPT-4 when difficulty >= t, else Mixtral; t swept over held-out, de-contaminated prompts"
    ]
    for benchmark, r in reports.items():
        lines.append(
            f"  {benchmark} (n={r['n']}): GPT-4 quality {r['gpt4_quality']:.3f}, Mixtral {r['mixtral_quality']:.3f}, "
            f"strong needed on {100 * r['strong_needed_share']:.0f}%; $ per 1k queries: GPT-4 "
            f"{r['gpt4_only_dollars_per_1k']:.2f}, Mixtral {r['mixtral_only_dollars_per_1k']:.2f}"
        )
        lines.append(
            f"    {'router':<7} {'GPT-4 calls @95%':>16} {'call saving':>11} {'$ saving':>8} "
            f"{'APGR':>6} {'CPT(50%)':>8} {'CPT(80%)':>8}"
        )
        for name, s in r["routers"].items():
            lines.append(
                f"    {name:<7} {_pct(s['strong_share_at_target']):>16} {_pct(s['call_saving_at_target']):>11} "
                f"{_pct(s['dollar_saving_at_target']):>8} {s['apgr']:>6.3f} {_pct(s['cpt50']):>8} {_pct(s['cpt80']):>8}"
            )
    return lines


def render(report: dict[str, Any]) -> str:
    latency = report["latency"]
    lines = [f"capability classifier {report['artifact']} (split seed {report['split_seed']})", ""]
    lines += [*_category_lines(report["category"]), ""]
    lines += [*_difficulty_lines(report["difficulty"]), ""]
    lines.append(
        f"latency: classify over {latency['n']} held-out prompts (median {latency['median_prompt_chars']:.0f} chars): "
        f"p50 {latency['p50_us']:.0f} µs, p99 {latency['p99_us']:.0f} µs"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.routing_eval", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--artifact", type=Path, default=None, help="artifact to evaluate (default: packaged)"
    )
    args = parser.parse_args(argv)
    report = run(args.artifact)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
