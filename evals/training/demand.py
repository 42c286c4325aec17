"""How much the per-source difficulty priors should weigh, judged on the training side only.

Run as `python -m evals.training.demand [--tiers] [--weights 1,2,4,8] [--folds 3]`. For each candidate
DEMAND_WEIGHT it refits the difficulty model `folds` times, each time without one fold of the
training prompts (folds by the prompt's crc32), and scores the left-out fold: out-of-fold
predictions, so no prompt is scored by a model that read it. It prints, per weight:

- the calibration error per source: |mean predicted difficulty - the source's label rate| (its
  prior for a DEMAND_PRIOR source, the share needing the strong model for a benchmark), averaged
  over the sources so that MMLU's 11,000 questions count as one source like Arena-Hard's 400;
- the AUC of "strong model needed" within each RouteLLM benchmark (what the replay ranks by).

A small weight leaves the priors outvoted by the benchmark questions (Arena-Hard's training prompts,
prior 0.8, came out at 0.56 on average with weight 1); a larger one calibrates the sources better
but turns the priors into source detectors at the cost of ranking within a benchmark. Calibration is
why the weight is raised; what stops it is the ranking: the weight in evals.training.outcomes is the
largest candidate whose GSM8K and MMLU AUC stay within AUC_SLACK of weight 1's (`choose`), a slack
set after reading this table, which weight 4 passed by about 0.0002 on MMLU; since 2026-12-07 (two
priors gone, the shipped category model read) the rule gives 2.

With `--tiers` (candidates 0,0.125,0.25,0.5,1,2,4) the same is done for TIER_WEIGHT, the weight of the
authors' tiered requests, the priors at DEMAND_WEIGHT, and the same rule picks it.

The folds hold out difficulty labels only: the category model whose probabilities are difficulty
features is the shipped artifact's (as `train --difficulty-only` refits on it; since 2026-12-07,
fit once on the whole training side before), which has read most of the prior sources' prompts as
category examples (their category, never their difficulty).

Training-time only: it reads the training side of the shared split and never a held-out prompt.
"""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

AUC_SLACK = 0.005


def out_of_fold(candidates: Sequence[float], folds: int = 3, tiers: bool = False) -> list[dict[str, Any]]:
    """Out-of-fold difficulty margins of the training-side rows at each candidate DEMAND_WEIGHT
    (or, with `tiers`, at each candidate TIER_WEIGHT, the priors at DEMAND_WEIGHT), scored. The
    rows and their features are built once: a weight only scales the priors' (or tiers') rows."""
    from evals.training import outcomes as outcome_data
    from evals.training import train
    from evals.training.corpus import DEFAULT_SEED, build_split
    from router.signals.capability.classifier import DEFAULT_ARTIFACT, read_artifact
    from router.signals.capability.meaning import Meaning

    settings = train.Settings(seed=DEFAULT_SEED)
    split = build_split(DEFAULT_SEED)
    outcomes, _held_out = outcome_data.split_outcomes(split)
    by_source = outcome_data.demand_sources(split)
    demand, shares = outcome_data.demand_outcomes(split, 1.0, by_source)
    tier_rows, tier_shares = outcome_data.tier_outcomes(1.0) if tiers else ([], [])
    rows = outcomes + demand + tier_rows
    source_of = {text: source for source, texts in by_source.items() for text in texts}
    sources = np.array(
        [o.benchmark for o in outcomes] + [source_of[o.text] for o in demand] + ["tier"] * len(tier_rows)
    )
    meaning = Meaning.packaged() if settings.meaning else None
    # the shipped category model, as `train --difficulty-only` refits difficulty on it
    category = train.stored_category(read_artifact(DEFAULT_ARTIFACT), settings)
    texts = [row.text for row in rows]
    features = train.difficulty_features(*train.score_inputs(texts, category, settings, meaning))
    needed = np.array([row.strong_needed for row in rows], dtype=int)
    fold = np.array([zlib.crc32(text.encode("utf-8")) % folds for text in texts])
    benchmark_weights = [train.BENCHMARK_WEIGHT[o.benchmark] for o in outcomes]
    demand_weight = outcome_data.DEMAND_WEIGHT
    return [
        _score(
            float(weight),
            np.array(
                benchmark_weights
                + [(demand_weight if tiers else weight) * s for s in shares]
                + [weight * s for s in tier_shares]
            ),
            features,
            needed,
            fold,
            sources,
            settings,
        )
        for weight in candidates
    ]


def _score(
    weight: float,
    weights: npt.NDArray[np.float64],
    features: Any,
    needed: npt.NDArray[np.int64],
    fold: npt.NDArray[np.int64],
    sources: npt.NDArray[np.str_],
    settings: Any,
) -> dict[str, Any]:
    from evals.training.outcomes import BENCHMARKS

    margin = np.zeros(len(needed))
    for k in sorted(set(fold.tolist())):
        model = LogisticRegression(C=settings.difficulty_c, max_iter=settings.max_iter, random_state=0)
        model.fit(features[fold != k], needed[fold != k], sample_weight=weights[fold != k])
        margin[fold == k] = model.decision_function(features[fold == k])
    predicted = 1.0 / (1.0 + np.exp(-margin))
    per_source = {}
    for source in sorted(set(sources)):
        mask = sources == source
        scale = weights[mask] if weights[mask].sum() > 0 else None  # a candidate weight of 0
        per_source[source] = {
            "label_rate": float(np.average(needed[mask], weights=scale)),
            "predicted": float(np.average(predicted[mask], weights=scale)),
        }
    return {
        "weight": weight,
        "calibration_error": float(
            np.mean([abs(s["label_rate"] - s["predicted"]) for s in per_source.values()])
        ),
        "auc": {
            benchmark: float(roc_auc_score(needed[sources == benchmark], margin[sources == benchmark]))
            for benchmark in (*BENCHMARKS, "tier")
            if (sources == benchmark).any()
        },
        "per_source": per_source,
    }


def choose(reports: Sequence[dict[str, Any]]) -> float:
    """The largest weight whose GSM8K and MMLU AUC stay within AUC_SLACK of the first (baseline) weight's."""
    base = reports[0]["auc"]
    kept = [
        r["weight"] for r in reports if all(r["auc"][b] >= base[b] - AUC_SLACK for b in ("gsm8k", "mmlu"))
    ]
    return max(kept)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.training.demand", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--weights",
        default=None,
        help="candidate weights, the first is the baseline (default 1,2,4,8; with --tiers 0,0.125,0.25,0.5,1,2,4)",
    )
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument(
        "--tiers", action="store_true", help="weigh the authors' tiered requests (TIER_WEIGHT) instead"
    )
    args = parser.parse_args(argv)
    from router.settings import make_offline

    make_offline()
    weights = args.weights or ("0,0.125,0.25,0.5,1,2,4" if args.tiers else "1,2,4,8")
    reports = out_of_fold([float(w) for w in weights.split(",")], args.folds, args.tiers)
    sources = list(reports[0]["per_source"])
    aucs = list(reports[0]["auc"])
    print(
        "| weight | calibration error | "
        + " | ".join(f"AUC {a}" for a in aucs)
        + " | "
        + " | ".join(sources)
        + " |"
    )
    print("|---" * (2 + len(aucs) + len(sources)) + "|")
    for r in reports:
        cells = [f"{r['per_source'][s]['predicted']:.2f}" for s in sources]
        print(
            f"| {r['weight']:g} | {r['calibration_error']:.3f} | "
            + " | ".join(f"{r['auc'][a]:.3f}" for a in aucs)
            + " | "
            + " | ".join(cells)
            + " |"
        )
    rates = " | ".join(f"{reports[0]['per_source'][s]['label_rate']:.2f}" for s in sources)
    print("| label rate |" + " |" * (1 + len(aucs)) + f" {rates} |")
    print(
        f"\nchosen (largest weight within {AUC_SLACK} of the first's GSM8K and MMLU AUC): {choose(reports):g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
