"""The frontier score's regularisation and the default policy's threshold on it, judged on the
training authors only.

Run as `python -m evals.training.frontier [--cs 0.1,0.5,2,8] [--thresholds 0.5,0.6,0.7,0.8,0.9]`.
Each training author of labels/authored_difficulty.jsonl is left out in turn; the frontier model
(evals.training.train: the authors' tiers alone, every category) is fit on the others, on the
shipped artifact's category model, and scores the author left out. It prints:

- for each candidate C, the mean (and each author's) AUC of "hard" over "easy" out of author;
- at Settings.frontier_c, for each candidate threshold, the share of the out-of-author scores over
  it among easy code, math and reasoning requests, easy requests of any category, and hard code,
  math and reasoning requests; and the threshold `choose` takes: the smallest whose easy code, math
  and reasoning share is at most EASY_BUDGET (what the frontier condition may send to the strong
  tier on its own). policies/default.yaml's `frontier: {gte: 0.7}` is that threshold.

Training-time only: it never reads a held-out author's request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

EASY_BUDGET = 0.02
STRONG_TIER_CATEGORIES = ("code", "math", "reasoning")  # what the default policy's hard route takes


def choose(thresholds: Sequence[float], easy_share: Sequence[float], budget: float = EASY_BUDGET) -> float:
    """The smallest threshold whose share of easy requests over it is at most `budget` (the
    largest candidate when none is)."""
    within = [t for t, share in zip(thresholds, easy_share, strict=True) if share <= budget]
    return min(within) if within else max(thresholds)


def out_of_author(c_values: Sequence[float]) -> tuple[list[dict[str, Any]], npt.NDArray[np.float64]]:
    """Per C: each training author's out-of-author AUC; and the out-of-author scores at the
    shipped Settings.frontier_c (in tier_rows order)."""
    from evals.training import train
    from evals.training.corpus import DEFAULT_SEED
    from evals.training.outcomes import crowd_order, tier_rows
    from router.signals.capability.classifier import DEFAULT_ARTIFACT, read_artifact
    from router.signals.capability.meaning import Meaning

    settings = train.Settings(seed=DEFAULT_SEED)
    meaning = Meaning.packaged()
    category = train.stored_category(read_artifact(DEFAULT_ARTIFACT), settings)
    rows = tier_rows()
    x, probs = train.score_inputs([r["prompt"] for r in rows], category, settings, meaning)
    hard = np.array([r["tier"] == "hard" for r in rows])
    crowds = np.array([r["crowd"] for r in rows])
    reports, shipped = [], np.zeros(len(rows))
    authors = crowd_order(crowds)
    for c in c_values:
        scores = np.zeros(len(rows))
        for crowd in authors:
            mine = crowds == crowd
            coef, from_category, bias = train.fit_difficulty(
                x[~mine], probs[~mine], hard[~mine], settings, c=c
            )
            margin = np.asarray(x[mine] @ coef).ravel() + probs[mine] @ from_category + bias
            scores[mine] = 1.0 / (1.0 + np.exp(-margin))
        reports.append(
            {
                "c": c,
                "auc_by_author": {
                    crowd: float(roc_auc_score(hard[crowds == crowd], scores[crowds == crowd]))
                    for crowd in authors
                },
            }
        )
        if c == settings.frontier_c:
            shipped = scores
    return reports, shipped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.training.frontier", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--cs", default="0.1,0.5,2,8", help="candidate C values (Settings.frontier_c among them)"
    )
    parser.add_argument("--thresholds", default="0.5,0.6,0.7,0.8,0.9", help="candidate thresholds")
    args = parser.parse_args(argv)
    from evals.datasets import DatasetError
    from evals.training.outcomes import tier_rows
    from evals.training.train import Settings

    try:
        c_values = [float(v) for v in args.cs.split(",")]
        thresholds = [float(v) for v in args.thresholds.split(",")]
    except ValueError as error:
        parser.exit(2, f"frontier: {error}\n")
    if Settings().frontier_c not in c_values:
        parser.exit(2, f"frontier: --cs must include Settings.frontier_c ({Settings().frontier_c})\n")
    try:
        reports, scores = out_of_author(c_values)
    except DatasetError as error:
        print(f"frontier: {error}", file=sys.stderr)
        return 2
    for report in reports:
        aucs = report["auc_by_author"]
        each = " ".join(f"{crowd} {auc:.3f}" for crowd, auc in aucs.items())
        print(f"C {report['c']:g}: out-of-author AUC mean {np.mean(list(aucs.values())):.3f} ({each})")
    rows = tier_rows()
    hard = np.array([r["tier"] == "hard" for r in rows])
    strong = np.array([r["category"] in STRONG_TIER_CATEGORIES for r in rows])
    easy_share = [float(np.mean(scores[~hard & strong] >= t)) for t in thresholds]
    print(f"at C {Settings().frontier_c:g}, share of out-of-author scores at or over each threshold:")
    print(
        "| threshold | easy code/math/reasoning | easy, any category | hard code/math/reasoning |\n|---|---|---|---|"
    )
    for t, share in zip(thresholds, easy_share, strict=True):
        print(
            f"| {t:g} | {share:.3f} | {np.mean(scores[~hard] >= t):.3f} | {np.mean(scores[hard & strong] >= t):.3f} |"
        )
    print(
        f"chosen (the smallest with at most {EASY_BUDGET:.0%} of easy code/math/reasoning over it): {choose(thresholds, easy_share):g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
