"""Refits an artifact's category model with added examples, anchored on what it learnt before.

A whole retraining needs every source the category model learnt from, and four of them are
optional samples that not every machine has (evals.training.instructions): retrained here without
them, the model loses what they taught (a trial of the thirtieth session: NI-format held out 0.523
-> 0.343). This refit keeps their part in the one way it can without their text.

fit_category minimises scikit-learn's multinomial logistic loss, which up to a constant factor is

    F(W, b) = C * sum_i s_i * CE_i(W, b) + 1/2 * |W|^2        (s_i: the class weight of row i's label)

Over the rows at hand (the anchor: the category split's training rows, but for the added ones) the
gradient of F at the stored model (W0, b0) is not zero: the absent sources' rows were part of the
sum (and the model was stored pruned and in half precision). The refit stands in for those rows by
their two leading terms around (W0, b0):

- their gradient there, which is exactly what makes (W0, b0) stationary: minus the gradient of the
  rest of the objective at (W0, b0);
- their curvature, taken as the anchor rows' own, weighed by r, the number of absent rows as a
  share of the anchor's (`absent_share`: the total the artifact records less the anchor's, over
  the anchor's; 1,932 / 10,952 = 0.176 for the shipped artifact here).

    F_refit(W, b) = (1 + r) C L_anchor(W, b) + C L_added(W, b) + 1/2 |W|^2 - G.(W - W0) - g.(b - b0)

where (G, g) is the gradient of (1 + r) C L_anchor + 1/2 |W|^2 at (W0, b0). With nothing added,
its minimum is (W0, b0) exactly; with added rows, the model moves towards what a retraining on
every source would give, as near as the absent rows' loss is as curved as the anchor's (`check`
measures how near). Only the added rows move it: whatever else differs from the objective the
stored model was fit with (the class weights, which follow the category counts the artifact
records plus the added rows', so that an added request counts as any other of its category; the
absent rows themselves) is taken up by the linear term at (W0, b0).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import optimize, sparse

from evals.training.train import (
    Settings,
    category_probabilities,
    feature_matrix,
    fit_category,
    without_length_cues,
)
from router.signals.capability.classifier import CATEGORIES, Weights
from router.signals.capability.meaning import Meaning

Model = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]  # (coef (n_categories, dim), bias)


@dataclass(frozen=True, slots=True)
class Refit:
    coef: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]
    iterations: int
    converged: bool
    gradient_norm: float  # of F_refit at the start (W0, b0): how far the added rows pull


def class_weights(counts: dict[str, int], balance: bool = True) -> npt.NDArray[np.float64]:
    """fit_category's class weights (square-root balancing, or none), in CATEGORIES order, from a
    model's category counts."""
    n = np.array([float(counts.get(c, 0)) for c in CATEGORIES])
    if (n <= 0).any():
        raise ValueError(f"every category needs a count to weigh it: {counts}")
    return np.sqrt(n.max() / n) if balance else np.ones(len(CATEGORIES))


def absent_share(trained_counts: dict[str, int], anchor_rows: int) -> float:
    """The rows the model was trained on that the anchor lacks, as a share of the anchor."""
    if anchor_rows <= 0:
        raise ValueError("an empty anchor")
    trained = sum(trained_counts.values())
    return max(trained - anchor_rows, 0) / anchor_rows


def _loss(
    x: sparse.csr_matrix,
    xt: sparse.csc_matrix,
    y: npt.NDArray[np.int64],
    row_weight: npt.NDArray[np.float64],
    coef: npt.NDArray[np.float64],
    bias: npt.NDArray[np.float64],
) -> tuple[float, npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """sum_i row_weight_i * CE_i and its gradients in coef and bias."""
    z = np.asarray(x @ coef.T) + bias
    z -= z.max(axis=1, keepdims=True)
    exp = np.exp(z)
    total = exp.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    loss = float(row_weight @ (np.log(total[:, 0]) - z[rows, y]))
    dz = exp / total
    dz[rows, y] -= 1.0
    dz *= row_weight[:, None]
    return loss, np.asarray(xt @ dz).T, dz.sum(axis=0)


def refit(
    start: Model,
    anchor_x: sparse.csr_matrix,
    anchor_labels: Sequence[str],
    added_x: sparse.csr_matrix,
    added_labels: Sequence[str],
    *,
    c: float,
    weights: npt.NDArray[np.float64],
    share: float,
    max_iter: int = 500,
) -> Refit:
    """The anchored refit of `start` (module docstring); `weights` per category (class_weights),
    `share` the absent rows' share of the anchor (absent_share)."""
    coef0, bias0 = (np.asarray(a, dtype=np.float64) for a in start)
    shape = coef0.shape
    x = sparse.vstack([anchor_x, added_x], format="csr")
    xt = x.T.tocsc()
    y = np.array([CATEGORIES.index(label) for label in [*anchor_labels, *added_labels]])
    scale = np.concatenate([np.full(anchor_x.shape[0], 1.0 + share), np.ones(added_x.shape[0])])
    row_weight = c * scale * weights[y]

    anchor_only = np.concatenate([row_weight[: anchor_x.shape[0]], np.zeros(added_x.shape[0])])
    _, grad_coef0, grad_bias0 = _loss(x, xt, y, anchor_only, coef0, bias0)
    g_coef = grad_coef0 + coef0
    g_bias = grad_bias0

    def objective(theta: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        coef = theta[: coef0.size].reshape(shape)
        bias = theta[coef0.size :]
        loss, grad_coef, grad_bias = _loss(x, xt, y, row_weight, coef, bias)
        delta_coef, delta_bias = coef - coef0, bias - bias0
        value = (
            loss
            + 0.5 * float(np.vdot(coef, coef))
            - float(np.vdot(g_coef, delta_coef))
            - float(g_bias @ delta_bias)
        )
        grad = np.concatenate([(grad_coef + coef - g_coef).ravel(), grad_bias - g_bias])
        return value, grad

    theta0 = np.concatenate([coef0.ravel(), bias0])
    start_norm = float(np.linalg.norm(objective(theta0)[1]))
    result = optimize.minimize(
        objective,
        theta0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": 1e-6, "ftol": 1e-12},
    )
    theta = result.x
    return Refit(
        coef=theta[: coef0.size].reshape(shape),
        bias=theta[coef0.size :],
        iterations=int(result.nit),
        converged=bool(result.success),
        gradient_norm=start_norm,
    )


class RefitError(ValueError):
    """A category refit that cannot be done as asked (refit_category says why)."""


def refit_category(
    keep: Weights,
    category: Model,
    train_rows: Sequence[Any],
    sources: Sequence[str],
    settings: Settings,
) -> tuple[Model, dict[str, Any]]:
    """`keep`'s category model (`category`, as stored) refit (`refit`, above) with the training
    rows of `sources` added, the split's other training rows anchoring it; and the meta that says so (the category counts with the added rows, one more entry of category_refits).

    Only the briefs' sources can be added (evals.training.instructions.BRIEFS), each once: every
    other source a whole retraining reads, so the artifact learnt it already, and adding it again
    would count it twice. The anchor must be rows the artifact learnt from: a machine holding an
    optional sample the artifact was trained without is refused (its rows would count as learnt).
    On a machine holding every sample the artifact was trained with, nothing is absent (share 0)."""
    from evals.training.instructions import BRIEFS, OPTIONAL, missing

    trained = keep.meta.get("category_counts")
    if not trained:
        raise RefitError("the artifact records no category counts to anchor a refit on")
    if not sources:
        raise RefitError("name the sources to add")
    unknown = [name for name in sources if name not in BRIEFS]
    if unknown:
        raise RefitError(f"can only add the briefs' sources ({', '.join(BRIEFS)}), not {', '.join(unknown)}")
    done = {name for entry in keep.meta.get("category_refits", []) for name in entry["added_sources"]}
    again = sorted(done & set(sources))
    if again:
        raise RefitError(f"the artifact learnt {', '.join(again)} in an earlier refit already")
    unseen = sorted(set(OPTIONAL) - set(missing()) - set(keep.meta.get("optional_sources", [])))
    if unseen:
        raise RefitError(f"this machine holds {', '.join(unseen)}, which the artifact was not trained with")
    anchor = [e for e in train_rows if e.source not in sources]
    added = [e for e in train_rows if e.source in sources]
    empty = sorted(set(sources) - {e.source for e in added})
    if empty:
        raise RefitError(f"no training rows of {', '.join(empty)} to add")
    if not anchor:
        raise RefitError("no training rows besides the added ones to anchor the refit on")
    counts = Counter(trained) + Counter(e.label for e in added)
    meaning = Meaning.packaged() if settings.meaning else None

    def matrix(rows: Sequence[Any]) -> sparse.csr_matrix:
        x = feature_matrix([e.text for e in rows], settings.hash_bits, meaning, settings.meaning_scale)
        return without_length_cues(x, settings.hash_bits)

    share = absent_share(trained, len(anchor))
    result = refit(
        category,
        matrix(anchor),
        [e.label for e in anchor],
        matrix(added),
        [e.label for e in added],
        c=settings.category_c,
        weights=class_weights(counts, settings.balance),
        share=share,
        max_iter=settings.refit_max_iter,
    )
    if not result.converged:
        raise RefitError(
            f"the refit did not converge in {result.iterations} iterations (Settings.refit_max_iter)"
        )
    entry = {
        "added_sources": sorted(sources),
        "added_rows": len(added),
        "anchor_rows": len(anchor),
        "absent_share": round(share, 4),
        "iterations": result.iterations,
    }
    refits = [*keep.meta.get("category_refits", []), entry]
    return (result.coef, result.bias), {
        "category_counts": dict(sorted(counts.items())),
        "category_refits": refits,
    }


# The check's stand-in for the absent sources: whole sources and six authors' requests, about as
# many rows (1,540) and as skewed to extraction, writing and other as the four optional samples are.
CHECK_ABSENT_SOURCES = ("passage-task", "writing-request", "semantic-router", "vicuna-bench")
CHECK_ABSENT_CROWDS = ("a", "b", "c", "d", "e", "f")


def check(added_source: str = "authored-numbers") -> dict[str, dict[str, float]]:
    """How close the refit comes to a whole retraining, where both can be run: some training
    sources are made absent (CHECK_ABSENT_*), the model trained with them stands for the shipped
    one, and each candidate is compared with a whole retraining on every row, the added included,
    by the category it picks for each test prompt of the split (`agree`), besides its accuracy.
    The other briefs' sources (evals.training.instructions.BRIEFS) are left out of both sides, so
    that the check is the same whichever briefs the repository holds."""
    from evals.heldout_category import loose_key
    from evals.leave_one_out import authored_crowds
    from evals.training.corpus import DEFAULT_SEED, Example, build_split
    from evals.training.instructions import BRIEFS

    if added_source not in BRIEFS:
        raise ValueError(f"not a brief's source: {added_source}")
    settings, meaning, split = Settings(), Meaning.packaged(), build_split(DEFAULT_SEED)
    crowds = authored_crowds()

    def absent(e: Example) -> bool:
        return e.source in CHECK_ABSENT_SOURCES or (
            e.source == "authored" and bool(crowds.get(loose_key(e.text), set()) & set(CHECK_ABSENT_CROWDS))
        )

    rows = [e for e in split.train if e.source not in BRIEFS]
    test = [e for e in split.test if e.source not in BRIEFS or e.source == added_source]
    kept, gone = [e for e in rows if not absent(e)], [e for e in rows if absent(e)]
    added = [e for e in split.train if e.source == added_source]

    def matrix(part: Sequence[Example]) -> sparse.csr_matrix:
        x = feature_matrix([e.text for e in part], settings.hash_bits, meaning, settings.meaning_scale)
        return without_length_cues(x, settings.hash_bits)

    def labels(part: Sequence[Example]) -> list[str]:
        return [e.label for e in part]

    x_kept, x_gone, x_added = matrix(kept), matrix(gone), matrix(added)

    def whole(*parts: tuple[sparse.csr_matrix, list[str]]) -> Model:
        x = sparse.vstack([p[0] for p in parts], format="csr")
        return fit_category(x, [label for p in parts for label in p[1]], settings)

    trained = whole((x_kept, labels(kept)), (x_gone, labels(gone)))
    everything = whole((x_kept, labels(kept)), (x_gone, labels(gone)), (x_added, labels(added)))
    counts = dict(Counter(labels(kept) + labels(gone)))
    result = refit(
        trained,
        x_kept,
        labels(kept),
        x_added,
        labels(added),
        c=settings.category_c,
        weights=class_weights(dict(Counter(counts) + Counter(labels(added))), settings.balance),
        share=absent_share(counts, len(kept)),
        max_iter=settings.refit_max_iter,
    )
    candidates = {
        "the model trained with the absent rows, not refit": trained,
        "a whole retraining without the absent rows": whole((x_kept, labels(kept)), (x_added, labels(added))),
        "the anchored refit": (result.coef, result.bias),
        "a whole retraining on every row": everything,
    }
    x_test, y_test = matrix(test), np.array(labels(test))
    names = np.array(CATEGORIES)
    truth = names[category_probabilities(x_test, *everything).argmax(axis=1)]
    report = {}
    for name, model in candidates.items():
        picked = names[category_probabilities(x_test, *model).argmax(axis=1)]
        report[name] = {
            "agree": float((picked == truth).mean()),
            "accuracy": float((picked == y_test).mean()),
        }
    report["rows"] = {"kept": len(kept), "absent": len(gone), "added": len(added), "test": len(test)}
    return report


def main() -> int:
    """`python -m evals.training.anchored`: the check (about 7 minutes here)."""
    from router.settings import make_offline

    make_offline()
    report = check()
    rows = report.pop("rows")
    print(
        f"{rows['absent']} of {rows['kept'] + rows['absent']} training rows made absent, {rows['added']} added; "
        f"the category each model picks for the split's {rows['test']} test prompts:"
    )
    for name, row in report.items():
        print(
            f"  {name:<52} agrees with the whole retraining on {row['agree']:.4f}, accuracy {row['accuracy']:.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
