"""Retrains the capability signal from public data and writes its one artifact.

Run as `python -m evals.training.train [--out PATH] [--seed N] [--difficulty-only | --refit-category
SOURCES]`. It builds the shared split (`evals.training.corpus.build_split`), fits a class-weighted multinomial logistic regression for the
category and a logistic regression for difficulty (hashed features, the meaning vector, and for
difficulty the category probabilities) on the training side only, and writes data/capability.npz.
Difficulty learns from RouteLLM's recorded outcomes, from per-source priors where no outcomes
exist (`evals.training.outcomes.DEMAND_PRIOR`) and from authors' tiered requests (`TIER_WEIGHT`),
all of them sources every checkout has; a third logistic regression, the frontier score, learns
the authors' tiers alone (hard against easy, every category). `--difficulty-only` keeps the
category model of the artifact at --out and refits difficulty and the frontier score alone, which
gives what a whole retraining would (both read the category probabilities of the stored weights
either way, `as_stored`); `--refit-category` adds the briefs' requests to it instead, by the anchored
refit of evals.training.anchored, for a machine without every source. Rebuild data/meaning.npz first
(`python -m evals.training.distill`) only when the embedding model or the category model's training
prompts change (the table's common direction is taken from them). scikit-learn is used here
and nowhere at run time. This module must never read a held-out prompt into a model, never copy
data into the repository, and never touch the network itself (datasets come from the registry).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from evals.training.stored import as_stored, pack, stored_category
from router.signals.capability.classifier import (
    CATEGORIES,
    DEFAULT_ARTIFACT,
    Weights,
    read_artifact,
    save_artifact,
)
from router.signals.capability.features import (
    DEFAULT_HASH_BITS,
    FEATURES_VERSION,
    featurize,
    length_cue_names,
    slots,
)
from router.signals.capability.meaning import Meaning

# MMLU gives 11k of the 12k difficulty examples; unweighted, it alone would decide what length and
# numbers mean. With these weights the open-ended benchmarks count (3-fold CV on the training side,
# AUC of "strong needed" at C=0.5: GSM8K 0.566 → 0.578, MT-Bench 0.869 → 0.881 on only 40 prompts,
# MMLU 0.654 → 0.648; dropping the category probabilities costs MT-Bench 0.03). Difficulty is thus
# a ranking score first and only roughly a calibrated probability.
BENCHMARK_WEIGHT = {"gsm8k": 4.0, "mmlu": 1.0, "mt-bench": 10.0}


@dataclass(frozen=True, slots=True)
class Settings:
    hash_bits: int = DEFAULT_HASH_BITS
    # Inverse L2 strengths, chosen by 4-fold (category) and 3-fold (difficulty) cross-validation on the
    # training side only: category macro-F1 0.878 / 0.887 at C=4 / 16 (0.859 / 0.881 without class
    # balancing); difficulty AUC about flat for C in 0.1-0.5 and lower at 2.
    category_c: float = 16.0
    difficulty_c: float = 0.5
    # the frontier score's: leave-one-author-out AUC over the eight training authors 0.982 / 0.988 /
    # 0.991 / 0.992 at C 0.1 / 0.5 / 2 / 8 (`python -m evals.training.frontier`)
    frontier_c: float = 0.5
    max_iter: int = 300
    # the anchored refit's L-BFGS iterations (evals.training.anchored; it starts at the stored model)
    refit_max_iter: int = 500
    balance: bool = True
    seed: int = 0
    # Weights whose largest magnitude across all columns is below this are dropped from the artifact.
    prune_below: float = 2e-3
    # The meaning vector (router.signals.capability.meaning) as features beside the hashed ones, multiplied by
    # meaning_scale while training (a larger scale regularises its weights less than the hashed ones).
    meaning: bool = True
    meaning_scale: float = 1.0


def feature_matrix(
    texts: Sequence[str], bits: int, meaning: Meaning | None, meaning_scale: float = 1.0
) -> sparse.csr_matrix:
    """Rows of hashed features (repeated slots add up, exactly as the runtime's gather-and-sum
    does), then the meaning vectors' columns after the 2**bits hashed ones: the text's, then its
    first sentence's (`Meaning.pair`)."""
    indptr = [0]
    indices: list[npt.NDArray[np.int64]] = []
    values: list[npt.NDArray[np.float32]] = []
    for text in texts:
        idx, val = featurize(text, bits)
        indices.append(idx)
        values.append(val)
        indptr.append(indptr[-1] + len(idx))
    matrix = sparse.csr_matrix(
        (
            np.concatenate(values) if values else np.zeros(0, np.float32),
            np.concatenate(indices) if indices else np.zeros(0, np.int64),
            np.array(indptr),
        ),
        shape=(len(texts), 1 << bits),
        dtype=np.float64,
    )
    matrix.sum_duplicates()
    if meaning is None:
        return matrix
    pairs = [np.concatenate(meaning.pair(text)) for text in texts]
    vectors = np.stack(pairs) if texts else np.zeros((0, 2 * meaning.dims))
    return sparse.hstack(
        [matrix, sparse.csr_matrix(meaning_scale * vectors.astype(np.float64))], format="csr"
    )


def fit_category(
    x: sparse.csr_matrix, labels: Sequence[str], settings: Settings
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(coef (n_categories, dim), bias) in CATEGORIES order; a category never seen gets a very low bias."""
    present = sorted(set(labels), key=CATEGORIES.index)
    y = np.array([present.index(label) for label in labels])
    counts = np.bincount(y, minlength=len(present)).astype(float)
    # Square-root balancing: fully balanced weights gave the smallest class (writing) so large a bias
    # that every prompt with few known words fell back to it.
    class_weight = dict(
        enumerate(np.sqrt(counts.max() / counts) if settings.balance else np.ones(len(present)))
    )
    model = LogisticRegression(
        C=settings.category_c,
        class_weight=class_weight,
        max_iter=settings.max_iter,
        random_state=settings.seed,
    )
    model.fit(x, y)
    coef = np.zeros((len(CATEGORIES), x.shape[1]))
    bias = np.full(len(CATEGORIES), -30.0)
    fitted_coef = model.coef_ if len(present) > 2 else np.vstack([-model.coef_[0] / 2, model.coef_[0] / 2])
    fitted_bias = (
        model.intercept_
        if len(present) > 2
        else np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    )
    for row, label in enumerate(present):
        coef[CATEGORIES.index(label)] = fitted_coef[row]
        bias[CATEGORIES.index(label)] = fitted_bias[row]
    return coef, bias


def category_probabilities(
    x: sparse.csr_matrix, coef: npt.NDArray[np.float64], bias: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    logits = np.asarray(x @ coef.T) + bias
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def difficulty_features(x: sparse.csr_matrix, probs: npt.NDArray[np.float64]) -> sparse.csr_matrix:
    """What the difficulty model reads: the prompt's features, then the category probabilities."""
    return sparse.hstack([x, sparse.csr_matrix(probs)], format="csr")


def fit_difficulty(
    x: sparse.csr_matrix,
    probs: npt.NDArray[np.float64],
    needed: Sequence[bool],
    settings: Settings,
    sample_weight: Sequence[float] | None = None,
    c: float | None = None,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """(coef on hashed features, coef on category probabilities, bias); `c` the inverse L2
    strength (default settings.difficulty_c; the frontier score's is settings.frontier_c)."""
    y = np.asarray(needed, dtype=int)
    if y.min() == y.max():  # one class only: a constant model at the observed rate
        rate = min(max(float(y.mean()), 1e-3), 1 - 1e-3)
        return np.zeros(x.shape[1]), np.zeros(len(CATEGORIES)), float(np.log(rate / (1 - rate)))
    model = LogisticRegression(
        C=settings.difficulty_c if c is None else c, max_iter=settings.max_iter, random_state=settings.seed
    )
    model.fit(difficulty_features(x, probs), y, sample_weight=sample_weight)
    coef = model.coef_[0]
    return coef[: x.shape[1]], coef[x.shape[1] :], float(model.intercept_[0])


def without_length_cues(x: sparse.csr_matrix, bits: int) -> sparse.csr_matrix:
    """The features with the length cues' columns zeroed (a zero column gets a zero weight)."""
    blind = sparse.diags(np.ones(x.shape[1]), format="csr")
    blind.data[slots(length_cue_names(), bits)] = 0.0
    return x @ blind


def without_first_sentence(x: sparse.csr_matrix, meaning: Meaning | None) -> sparse.csr_matrix:
    """The features with the first sentence's meaning block (the last columns of feature_matrix)
    zeroed: what the difficulty model reads. That block lifts the category on every external
    held-out set, but difficulty on MMLU-Pro's families fell with it (AUC 0.578 -> 0.568) while it
    rose on WizardLM's annotated set: a change that helps some held-out figures and hurts others
    has not earned its place, so difficulty goes on without it."""
    if meaning is None:
        return x
    keep = np.ones(x.shape[1])
    keep[x.shape[1] - meaning.dims :] = 0.0
    return x @ sparse.diags(keep, format="csr")


def category_model(
    texts: Sequence[str], labels: Sequence[str], settings: Settings, meaning: Meaning | None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The category model (coef, bias), fit with the length cues hidden (length_cue_names)."""
    x = feature_matrix(texts, settings.hash_bits, meaning, settings.meaning_scale)
    return fit_category(without_length_cues(x, settings.hash_bits), labels, settings)


def score_inputs(
    texts: Sequence[str],
    category: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    settings: Settings,
    meaning: Meaning | None,
) -> tuple[sparse.csr_matrix, npt.NDArray[np.float64]]:
    """What difficulty and the frontier score are fit on: the texts' features without the first
    sentence's block, and the category probabilities of `category` as stored (`as_stored`)."""
    x = feature_matrix(texts, settings.hash_bits, meaning, settings.meaning_scale)
    probs = category_probabilities(x, *as_stored(category, settings))
    return without_first_sentence(x, meaning), probs


def train(
    category_texts: Sequence[str],
    category_labels: Sequence[str],
    difficulty_texts: Sequence[str],
    difficulty_needed: Sequence[bool],
    settings: Settings = Settings(),
    meta: dict[str, Any] | None = None,
    difficulty_weights: Sequence[float] | None = None,
    category: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]] | None = None,
    frontier_texts: Sequence[str] = (),
    frontier_hard: Sequence[bool] = (),
) -> Weights:
    """The models from in-memory data (or difficulty and frontier alone, on a given `category`
    model, when the category texts are empty); difficulty and frontier see the category model's
    probabilities. Without frontier texts, the frontier score is 0.5 everywhere."""
    meaning = Meaning.packaged() if settings.meaning else None
    if category is None:
        category = category_model(category_texts, category_labels, settings, meaning)

    difficulty = fit_difficulty(
        *score_inputs(difficulty_texts, category, settings, meaning),
        difficulty_needed,
        settings,
        difficulty_weights,
    )
    frontier = None
    if frontier_texts:
        inputs = score_inputs(frontier_texts, category, settings, meaning)
        frontier = fit_difficulty(*inputs, frontier_hard, settings, c=settings.frontier_c)
    info = {
        "features_version": FEATURES_VERSION,
        "category_counts": dict(sorted(Counter(category_labels).items())),
        "difficulty_examples": len(difficulty_texts),  # weighted rows (a soft label is two)
        "difficulty_positive": int(sum(difficulty_needed)),
        "category_c": settings.category_c,
        "difficulty_c": settings.difficulty_c,
        "frontier_examples": len(frontier_texts),
        "frontier_c": settings.frontier_c,
        **({"meaning_digest": meaning.digest} if meaning else {}),
        **(meta or {}),
    }
    return pack(category, difficulty, settings, info, frontier)


def train_from_registry(
    seed: int, settings: Settings, keep: Weights | None = None, refit_sources: Sequence[str] = ()
) -> Weights:
    """Both models from the registry's data; with `keep`, an artifact trained on this seed,
    its category model is kept (with what its meta says of it) and difficulty alone is refit, or,
    with `refit_sources`, its category model refit with those sources' training rows added
    (refit_category) and then difficulty."""
    from evals.training.corpus import build_split
    from evals.training.outcomes import (
        DEMAND_PRIOR,
        DEMAND_WEIGHT,
        TIER_WEIGHT,
        demand_outcomes,
        split_outcomes,
        tier_outcomes,
        tier_rows,
    )

    split = build_split(seed)
    outcomes, _held_out = split_outcomes(split)
    demand, demand_weights = demand_outcomes(split)
    tiers, tier_weights = tier_outcomes()
    tiered = tier_rows()
    from evals.training.instructions import OPTIONAL, missing

    meta = {
        "split_seed": seed,
        # the optional sampled sources this artifact learnt from (evals.training.instructions)
        "optional_sources": [name for name in OPTIONAL if name not in missing()],
        # prompts, not rows: a soft-labelled prompt enters training as two weighted rows
        "difficulty_by_benchmark": dict(
            sorted(
                Counter(
                    o.benchmark
                    for o in {(o.text, o.benchmark): o for o in outcomes + demand + tiers}.values()
                ).items()
            )
        ),
        "benchmark_weight": BENCHMARK_WEIGHT,
        "demand_prior": DEMAND_PRIOR,
        "demand_weight": DEMAND_WEIGHT,
        "tier_weight": TIER_WEIGHT,
    }
    category, texts, labels = None, [e.text for e in split.train], [e.label for e in split.train]
    if keep is not None:
        category, texts, labels = stored_category(keep, settings), [], []
        meta |= {
            k: keep.meta[k]
            for k in ("optional_sources", "category_counts", "category_refits")
            if k in keep.meta
        }
        if refit_sources:
            from evals.training.anchored import refit_category

            category, refit_meta = refit_category(keep, category, split.train, refit_sources, settings)
            meta |= refit_meta
    return train(
        texts,
        labels,
        [o.text for o in outcomes + demand + tiers],
        [o.strong_needed for o in outcomes + demand + tiers],
        settings,
        meta,
        [BENCHMARK_WEIGHT[o.benchmark] for o in outcomes] + demand_weights + tier_weights,
        category,
        # the frontier score: every training author's tiered request, in every category, unweighted
        [row["prompt"] for row in tiered],
        [row["tier"] == "hard" for row in tiered],
    )


def _kept(out: Path, seed: int) -> Weights:
    """The artifact at `out`, whose category model `--difficulty-only` and `--refit-category` keep:
    ValueError unless it was trained on this split seed, hash size and meaning table."""
    keep = read_artifact(out)
    if keep.meta.get("split_seed") != seed:
        raise ValueError(f"{out} was trained on split seed {keep.meta.get('split_seed')}, not {seed}")
    if keep.hash_bits != Settings().hash_bits:
        raise ValueError(
            f"{out} hashes features into 2**{keep.hash_bits} slots, this code into "
            f"2**{Settings().hash_bits}; retrain it whole"
        )
    if keep.meta.get("meaning_digest") != Meaning.packaged().digest:
        raise ValueError(f"{out}'s category model was trained on another meaning table; retrain it whole")
    return keep


def _absent_sources(out: Path, missing: list[str]) -> list[str]:
    """The optional sources that the artifact at `out` was trained with and that are missing now."""
    if not missing or not out.is_file():
        return []
    try:
        trained_with = read_artifact(out).meta.get("optional_sources", [])
    except (OSError, ValueError):
        return []  # not a readable artifact: nothing to keep
    return [name for name in trained_with if name in missing]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.training.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_ARTIFACT, help="artifact to write")
    parser.add_argument(
        "--seed", type=int, default=None, help="split seed (default: the corpus's fixed seed)"
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="replace the shipped artifact even though sources it was trained with are absent here",
    )
    parser.add_argument(
        "--difficulty-only",
        action="store_true",
        help="keep the category model of the artifact at --out and refit difficulty alone",
    )
    parser.add_argument(
        "--refit-category",
        metavar="SOURCES",
        default=None,
        help="refit the category model of the artifact at --out with the training rows of these "
        "sources (comma-separated, e.g. authored-numbers) added, anchored on what it learnt before "
        "(evals.training.anchored), then difficulty",
    )
    args = parser.parse_args(argv)
    from evals.training.corpus import DEFAULT_SEED
    from evals.training.instructions import missing

    seed = DEFAULT_SEED if args.seed is None else args.seed
    refit_sources = [name.strip() for name in (args.refit_category or "").split(",") if name.strip()]
    if args.refit_category is not None and not refit_sources:
        print("train: --refit-category needs the sources to add (e.g. authored-numbers)", file=sys.stderr)
        return 2
    if args.difficulty_only or refit_sources:
        try:
            keep = _kept(args.out, seed)
        except ValueError as error:
            print(f"train: {error}", file=sys.stderr)
            return 2
        return _write(args.out, keep, seed, refit_sources)
    absent = _absent_sources(args.out, missing())
    if absent and not args.allow_missing:
        print(
            f"train: {args.out} was trained with {', '.join(absent)}, which this machine lacks "
            "(see evals.training.samples); retraining without them would change it: --allow-missing to do so anyway",
            file=sys.stderr,
        )
        return 2

    return _write(args.out, None, seed)


def _write(out: Path, keep: Weights | None, seed: int, refit_sources: Sequence[str] = ()) -> int:
    from evals.training.anchored import RefitError

    started = time.perf_counter()
    try:
        weights = train_from_registry(seed, Settings(seed=seed), keep, refit_sources)
    except RefitError as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    try:
        save_artifact(out, weights)
    except OSError as error:
        print(f"train: could not write {out}: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(weights.rows)} slots) "
        f"in {time.perf_counter() - started:.0f}s; categories {weights.meta['category_counts']}, "
        f"difficulty {weights.meta['difficulty_by_benchmark']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
