"""How much the per-source difficulty priors should weigh, judged on the training side only.

Run as `python -m evals.training.demand [--weights 1,2,4,8] [--folds 3]`. For each candidate
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
set after reading this table, which weight 4 passes by about 0.0002 on MMLU.

The folds hold out difficulty labels only: the category model whose probabilities are difficulty
features is fit once on the whole training side, where it has read most of the prior sources'
prompts as category examples (their category, never their difficulty).

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


def out_of_fold(candidates: Sequence[float], folds: int = 3) -> list[dict[str, Any]]:
    """Out-of-fold difficulty margins of the training-side rows at each candidate DEMAND_WEIGHT,
    scored. The rows and their features are built once: a weight only scales the priors' rows."""
    from evals.training import outcomes as outcome_data
    from evals.training import train
    from evals.training.corpus import DEFAULT_SEED, build_split
    from router.signals.capability.meaning import Meaning

    settings = train.Settings(seed=DEFAULT_SEED)
    split = build_split(DEFAULT_SEED)
    outcomes, _held_out = outcome_data.split_outcomes(split)
    by_source = outcome_data.demand_sources(split)
    demand, shares = outcome_data.demand_outcomes(split, 1.0, by_source)
    rows = outcomes + demand
    source_of = {text: source for source, texts in by_source.items() for text in texts}
    sources = np.array([o.benchmark for o in outcomes] + [source_of[o.text] for o in demand])
    meaning = Meaning.packaged() if settings.meaning else None
    category = train.category_model(
        [e.text for e in split.train], [e.label for e in split.train], settings, meaning
    )
    texts = [row.text for row in rows]
    x = train.feature_matrix(texts, settings.hash_bits, meaning, settings.meaning_scale)
    probs = train.category_probabilities(x, *category)
    features = train.difficulty_features(train.without_first_sentence(x, meaning), probs)
    needed = np.array([row.strong_needed for row in rows], dtype=int)
    fold = np.array([zlib.crc32(text.encode("utf-8")) % folds for text in texts])
    benchmark_weights = [train.BENCHMARK_WEIGHT[o.benchmark] for o in outcomes]
    return [
        _score(
            float(weight),
            np.array(benchmark_weights + [weight * s for s in shares]),
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
        per_source[source] = {
            "label_rate": float(np.average(needed[mask], weights=weights[mask])),
            "predicted": float(np.average(predicted[mask], weights=weights[mask])),
        }
    return {
        "weight": weight,
        "calibration_error": float(
            np.mean([abs(s["label_rate"] - s["predicted"]) for s in per_source.values()])
        ),
        "auc": {
            benchmark: float(roc_auc_score(needed[sources == benchmark], margin[sources == benchmark]))
            for benchmark in BENCHMARKS
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
        "--weights", default="1,2,4,8", help="candidate DEMAND_WEIGHTs, the first is the baseline"
    )
    parser.add_argument("--folds", type=int, default=3)
    args = parser.parse_args(argv)
    from router.settings import make_offline

    make_offline()
    reports = out_of_fold([float(w) for w in args.weights.split(",")], args.folds)
    sources = list(reports[0]["per_source"])
    print(
        "| weight | calibration error | AUC GSM8K | AUC MMLU | AUC MT-Bench | " + " | ".join(sources) + " |"
    )
    print("|---" * (5 + len(sources)) + "|")
    for r in reports:
        cells = [f"{r['per_source'][s]['predicted']:.2f}" for s in sources]
        print(
            f"| {r['weight']:g} | {r['calibration_error']:.3f} | {r['auc']['gsm8k']:.3f} | {r['auc']['mmlu']:.3f} "
            f"| {r['auc']['mt-bench']:.3f} | " + " | ".join(cells) + " |"
        )
    rates = " | ".join(f"{reports[0]['per_source'][s]['label_rate']:.2f}" for s in sources)
    print(f"| label rate | | | | | {rates} |")
    print(
        f"\nchosen (largest weight within {AUC_SLACK} of the first's GSM8K and MMLU AUC): {choose(reports):g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
