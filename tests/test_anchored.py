"""The anchored refit of a category model (evals.training.anchored), on small synthetic problems
where the whole retraining it stands in for can be run and compared."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from evals.training import anchored, train
from router.signals.capability.classifier import CATEGORIES

C = 2.0
DIMS = 300


def _rows(rng: np.random.Generator, centers: np.ndarray, n: int, shift: float = 0.0):
    y = rng.integers(0, len(CATEGORIES), n)
    x = centers[y] * 0.3 + rng.normal(size=(n, DIMS))
    x[:, :20] += shift  # rows whose first features read otherwise than the rest's
    x[rng.random(x.shape) < 0.8] = 0.0
    return sparse.csr_matrix(x), [CATEGORIES[i] for i in y]


def _sklearn(x: sparse.csr_matrix, labels: list[str], weights: np.ndarray):
    y = np.array([CATEGORIES.index(label) for label in labels])
    model = LogisticRegression(C=C, class_weight=dict(enumerate(weights)), max_iter=5000, tol=1e-10)
    model.fit(x, y)
    return model.coef_, model.intercept_


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(len(CATEGORIES), DIMS))
    kept, absent, added = (_rows(rng, centers, n, s) for n, s in ((800, 0.0), (200, 0.0), (150, 1.0)))
    test = _rows(rng, centers, 2000, 0.5)[0]
    weights = anchored.class_weights(Counter(kept[1] + absent[1]))
    start = _sklearn(sparse.vstack([kept[0], absent[0]]), kept[1] + absent[1], weights)
    return SimpleNamespace(kept=kept, absent=absent, added=added, test=test, weights=weights, start=start)


def test_the_objective_is_the_one_scikit_learn_minimises(problem) -> None:
    x, labels = problem.kept
    coef, bias = _sklearn(x, labels, problem.weights)
    y = np.array([CATEGORIES.index(label) for label in labels])
    _, grad_coef, grad_bias = anchored._loss(x, x.T.tocsc(), y, C * problem.weights[y], coef, bias)
    assert np.abs(grad_coef + coef).max() < 1e-4 * np.abs(coef).max()
    assert np.abs(grad_bias).max() < 1e-4


def test_with_nothing_added_the_refit_keeps_the_model_it_starts_from(problem) -> None:
    # the start is not the optimum of the anchor rows alone (200 of its rows are absent), and the
    # refit still returns it: the absent rows' gradient is what the linear term restores
    x, labels = problem.kept
    share = anchored.absent_share(Counter(labels + problem.absent[1]), len(labels))
    assert share == pytest.approx(0.25)
    result = anchored.refit(problem.start, x, labels, x[:0], [], c=C, weights=problem.weights, share=share)
    assert np.array_equal(result.coef, problem.start[0]) and result.gradient_norm < 1e-8
    # without the linear term the start would not be a minimum: the absent rows' pull is real
    y = np.array([CATEGORIES.index(label) for label in labels])
    weights = C * (1 + share) * problem.weights[y]
    _, grad_coef, _ = anchored._loss(x, x.T.tocsc(), y, weights, *problem.start)
    assert np.abs(grad_coef + problem.start[0]).max() > 0.05
    unanchored = anchored.refit(problem.start, x, labels, x[:0], [], c=C, weights=problem.weights, share=0.0)
    assert unanchored.gradient_norm < 1e-8  # the linear term takes the whole gradient either way


def test_the_refit_is_closer_to_retraining_on_every_row_than_retraining_without_the_absent(problem) -> None:
    (x, labels), (absent_x, absent_labels), (added_x, added_labels) = (
        problem.kept,
        problem.absent,
        problem.added,
    )
    everything = _sklearn(
        sparse.vstack([x, absent_x, added_x]), labels + absent_labels + added_labels, problem.weights
    )
    without_absent = _sklearn(sparse.vstack([x, added_x]), labels + added_labels, problem.weights)
    result = anchored.refit(
        problem.start, x, labels, added_x, added_labels, c=C, weights=problem.weights,
        share=len(absent_labels) / len(labels),
    )  # fmt: skip
    assert result.converged and result.gradient_norm > 1.0

    def picks(model) -> np.ndarray:
        return (np.asarray(problem.test @ model[0].T) + model[1]).argmax(axis=1)

    truth = picks(everything)
    refit_agrees = (picks((result.coef, result.bias)) == truth).mean()
    assert refit_agrees > 0.9
    assert refit_agrees > (picks(without_absent) == truth).mean() + 0.05
    assert refit_agrees > (picks(problem.start) == truth).mean() + 0.05
    distance = np.linalg.norm(result.coef - everything[0])
    assert distance < 0.5 * np.linalg.norm(without_absent[0] - everything[0])


def test_class_weights_need_every_category() -> None:
    weights = anchored.class_weights({c: 100 * (i + 1) for i, c in enumerate(CATEGORIES)})
    assert weights.min() == 1.0 and weights[0] == pytest.approx(np.sqrt(7.0))
    with pytest.raises(ValueError, match="every category"):
        anchored.class_weights({"code": 10})


def test_refit_category_says_what_it_added_and_refuses_what_it_cannot_add(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evals.training import instructions
    from evals.training.instructions import OPTIONAL

    rng = np.random.default_rng(1)
    words = {c: [f"{c}word{i}" for i in range(12)] for c in CATEGORIES}

    def row(label: str, source: str) -> SimpleNamespace:
        return SimpleNamespace(text=" ".join(rng.choice(words[label], 5)), label=label, source=source)

    new = "authored-numbers"
    rows = [row(c, "old") for c in CATEGORIES for _ in range(6)] + [row("math", new) for _ in range(5)]
    settings = train.Settings(hash_bits=10, meaning=False)
    old = [e for e in rows if e.source == "old"]
    start = train.category_model([e.text for e in old], [e.label for e in old], settings, None)
    meta = {
        "category_counts": dict(Counter(e.label for e in old) + Counter(code=6)),
        "optional_sources": list(OPTIONAL),
    }
    keep = SimpleNamespace(meta=meta)
    (coef, bias), added_meta = anchored.refit_category(keep, start, rows, [new], settings)
    entry = added_meta["category_refits"][-1]
    assert entry["added_sources"] == [new] and entry["added_rows"] == 5 and entry["anchor_rows"] == 42
    assert entry["absent_share"] == round(6 / 42, 4)
    assert added_meta["category_counts"]["math"] == 11 and added_meta["category_counts"]["code"] == 12
    probe = train.feature_matrix([" ".join(words["math"][:5])], 10, None)
    before = train.category_probabilities(probe, *start)[0, CATEGORIES.index("math")]
    after = train.category_probabilities(probe, coef, bias)[0, CATEGORIES.index("math")]
    assert after > before

    def refused(why: str, keep_meta: dict, sources: list[str], rows=rows) -> None:
        with pytest.raises(anchored.RefitError, match=why):
            anchored.refit_category(SimpleNamespace(meta=keep_meta), start, rows, sources, settings)

    refused("only add the briefs' sources .* not old", meta, ["old"])  # learnt already: twice
    refused("not authored-numbes", meta, [new, "authored-numbes"])  # a misspelt name
    refused("no training rows of authored-passages", meta, [new, "authored-passages"])
    refused("learnt authored-numbers in an earlier refit", meta | added_meta, [new])
    refused("no category counts", {}, [new])
    refused("name the sources", meta, [])
    refused("besides the added ones", meta, [new], [e for e in rows if e.source == new])
    # a machine holding a sample the artifact never learnt from: its rows would count as learnt
    monkeypatch.setattr(instructions, "missing", lambda: [])
    refused("this machine holds dolly-15k-sample", meta | {"optional_sources": []}, [new])
