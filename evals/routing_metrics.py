"""The arithmetic of routing evals: classification scores and RouteLLM-style cost/quality sweeps.

Pure functions on arrays, no I/O and no model: `sweep` replays recorded per-prompt outcomes of a
strong and a weak model under a threshold on a router's score; `summary` reads off the share of
strong calls needed for a quality target, APGR and CPT. Definitions follow RouteLLM (Ong et al.,
2024): PGR = (quality - weak-only) / (strong-only - weak-only), APGR = the area under PGR over the
share of strong calls (0 → 1), CPT(x) = the smallest share of strong calls reaching PGR ≥ x. The
area under the cost-quality curve is APGR's dollar twin: PGR over the share of the extra dollars
that strong-only spends above weak-only (0 → 1); random routing scores 0.5 on both. This module
must never decide on a threshold from the data it reports on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

# $ per token. GPT-4-1106: $10/M input, $30/M output; Mixtral-8x7B: $0.6/M both ways.
STRONG_PRICE = (10e-6, 30e-6)
WEAK_PRICE = (0.6e-6, 0.6e-6)


@dataclass(frozen=True)
class Curve:
    shares: Floats  # share of prompts sent to the strong model, ascending from 0 to 1
    qualities: Floats  # mean quality at that share
    costs: Floats  # total dollars at that share


@dataclass(frozen=True)
class Replay:
    """Per-prompt outcomes of one benchmark's held-out prompts."""

    strong: Floats
    weak: Floats
    strong_cost: Floats  # dollars if this prompt goes to the strong model
    weak_cost: Floats


def sweep(scores: Sequence[float] | Floats, replay: Replay) -> Curve:
    """Route prompts with score ≥ t to the strong model for every distinct t (ties move together)."""
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    sorted_scores = np.asarray(scores, dtype=float)[order]
    n = len(order)
    gain = np.concatenate([[0.0], np.cumsum((replay.strong - replay.weak)[order])])
    extra = np.concatenate([[0.0], np.cumsum((replay.strong_cost - replay.weak_cost)[order])])
    # k prompts routed is reachable by a threshold only where the score changes (or at 0 and n).
    ks = [0, *[k for k in range(1, n) if sorted_scores[k] != sorted_scores[k - 1]], n]
    ks_arr = np.array(sorted(set(ks)))
    return Curve(
        shares=ks_arr / n,
        qualities=(replay.weak.sum() + gain[ks_arr]) / n,
        costs=replay.weak_cost.sum() + extra[ks_arr],
    )


def oracle(replay: Replay) -> Curve:
    """The best order: the prompts where the strong model gains most go first."""
    # Tiny descending offsets make every prefix reachable without reordering real differences.
    return sweep(replay.strong - replay.weak + 1e-9 * np.arange(len(replay.strong))[::-1], replay)


def random_router(replay: Replay, points: int = 10001) -> Curve:
    """The expectation of routing a random share: a straight line between weak-only and strong-only."""
    shares = np.linspace(0.0, 1.0, points)
    weak_q, strong_q = replay.weak.mean(), replay.strong.mean()
    weak_c, strong_c = replay.weak_cost.sum(), replay.strong_cost.sum()
    return Curve(shares, weak_q + shares * (strong_q - weak_q), weak_c + shares * (strong_c - weak_c))


def _first(curve: Curve, reached: npt.NDArray[np.bool_]) -> int | None:
    hits = np.flatnonzero(reached)
    return int(hits[0]) if len(hits) else None


def _share_reaching(curve: Curve, target: float) -> tuple[float, float] | None:
    """(share, cost) at the first sweep point whose quality reaches target."""
    index = _first(curve, curve.qualities >= target - 1e-12)
    if index is None:
        return None
    return float(curve.shares[index]), float(curve.costs[index])


def _area(xs: Floats, ys: Floats) -> float:
    return float(np.sum(np.diff(xs) * (ys[1:] + ys[:-1]) / 2))


def summary(curve: Curve, replay: Replay, quality_share: float = 0.95) -> dict[str, float | None]:
    strong_q, weak_q = float(replay.strong.mean()), float(replay.weak.mean())
    gap = strong_q - weak_q
    pgr = (curve.qualities - weak_q) / gap if gap else np.zeros_like(curve.qualities)
    found = _share_reaching(curve, quality_share * strong_q)
    strong_only_cost = float(replay.strong_cost.sum())
    weak_only_cost = float(replay.weak_cost.sum())
    extra = strong_only_cost - weak_only_cost
    apgr = _area(curve.shares, pgr)
    auc = _area((curve.costs - weak_only_cost) / extra, pgr) if extra > 0 else None

    def cpt(level: float) -> float | None:
        index = _first(curve, pgr >= level - 1e-12)
        return None if index is None else float(curve.shares[index])

    share, cost = found if found else (None, None)
    return {
        "strong_share_at_target": share,
        "call_saving_at_target": None if share is None else 1.0 - share,
        "dollar_saving_at_target": None if cost is None else 1.0 - cost / strong_only_cost,
        "apgr": apgr,
        "auc_cost_quality": auc,
        "cpt50": cpt(0.5),
        "cpt80": cpt(0.8),
    }


def confusion(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> npt.NDArray[np.int64]:
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for t, p in zip(truth, predicted, strict=True):
        matrix[index[t], index[p]] += 1
    return matrix


def per_class(matrix: npt.NDArray[np.int64], labels: Sequence[str]) -> dict[str, dict[str, float]]:
    scores = {}
    for i, label in enumerate(labels):
        tp = float(matrix[i, i])
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall = tp / matrix[i, :].sum() if matrix[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores[label] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": int(matrix[i, :].sum()),
        }
    return scores
