"""How much the routing figures depend on the one held-out split: retrain on several split seeds.

Run as `python -m evals.seed_spread [--seeds 5] [--difficulty-only] [--json]`. For the shipped split seed and then seeds
1, 2, ... it retrains the capability classifier exactly as `python -m evals.training.train --seed N`
would, into a temporary artifact that it reads back (the artifact stores weights at half precision,
and the figures are those of what would ship), and reports category accuracy and, per RouteLLM
benchmark, the call saving at 95% of GPT-4's quality for ours, random and oracle on that seed's held-out,
de-contaminated prompts (as `evals.routing_eval` does for the packaged artifact), with the mean and
range over seeds. Needs the dev extra (scikit-learn); about 30 s per seed here.

`--difficulty-only` keeps the packaged category model for every seed and refits difficulty alone
(`python -m evals.training.train --difficulty-only`), for machines without the optional sources the
category model was trained with. Its figures carry a small leak the full retraining has not: on seeds
other than the shipped one, the category model (whose probabilities difficulty reads) was trained
on some of that seed's held-out prompts, as category examples, never with their outcomes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.routing_eval import category_report, difficulty_report
from evals.training.corpus import DEFAULT_SEED, build_split
from evals.training.outcomes import BENCHMARKS, split_outcomes
from router.signals.capability.classifier import (
    DEFAULT_ARTIFACT,
    CapabilityClassifier,
    Weights,
    read_artifact,
    save_artifact,
)

ROUTERS = ("ours", "random", "oracle")


def one_seed(seed: int, keep: Weights | None = None) -> dict[str, Any]:
    """One seed's figures, retrained whole, or with `keep` (an artifact) its category model kept."""
    from evals.training.train import Settings, train_from_registry

    with tempfile.TemporaryDirectory() as folder:
        artifact = Path(folder) / "capability.npz"
        save_artifact(artifact, train_from_registry(seed, Settings(seed=seed), keep))
        classifier = CapabilityClassifier.load(artifact)
    split = build_split(seed)
    held_out = split_outcomes(split)[1]
    difficulty = {b: difficulty_report(classifier, held_out[b]) for b in BENCHMARKS}
    return {
        "seed": seed,
        "category_accuracy": category_report(classifier, split)["accuracy"],
        "call_saving": {
            b: {name: r["routers"][name]["call_saving_at_target"] for name in ROUTERS}
            for b, r in difficulty.items()
        },
        "held_out": {b: r["n"] for b, r in difficulty.items()},
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values)}


def run(seeds: int, difficulty_only: bool = False) -> dict[str, Any]:
    keep = read_artifact(DEFAULT_ARTIFACT) if difficulty_only else None
    return summarise([one_seed(seed, keep) for seed in [DEFAULT_SEED, *range(1, seeds)]])


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-seed rows of `one_seed`, with the mean and range of each figure over them."""
    return {
        "seeds": [row["seed"] for row in rows],
        "per_seed": rows,
        "category_accuracy": _spread([row["category_accuracy"] for row in rows]),
        "call_saving": {
            b: {name: _spread([row["call_saving"][b][name] for row in rows]) for name in ROUTERS}
            for b in BENCHMARKS
        },
    }


def render(report: dict[str, Any]) -> str:
    accuracy = report["category_accuracy"]
    lines = [
        f"split seeds {report['seeds']}: category accuracy mean {accuracy['mean']:.3f} "
        f"({accuracy['min']:.3f}-{accuracy['max']:.3f})",
        "call saving at 95% of GPT-4's quality: mean (min-max) over seeds",
        f"  {'benchmark':<10}" + "".join(f"{name:>20}" for name in ROUTERS),
    ]
    for benchmark, routers in report["call_saving"].items():
        cells = "".join(
            f"{100 * s['mean']:>9.0f}% ({100 * s['min']:.0f}-{100 * s['max']:.0f}%)".rjust(20)
            for s in routers.values()
        )
        lines.append(f"  {benchmark:<10}{cells}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.seed_spread", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="how many split seeds (the shipped one first)")
    parser.add_argument(
        "--difficulty-only",
        action="store_true",
        help="keep the packaged category model and refit difficulty alone on each seed",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        print("evals.seed_spread: --seeds must be at least 1", file=sys.stderr)
        return 2
    report = run(args.seeds, args.difficulty_only)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
