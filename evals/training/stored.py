"""The capability models as the artifact stores them: `pack` makes the one weight table the runtime
reads (router.signals.capability.classifier.Weights), `as_stored` gives the category model in the
precision and pruning that table keeps it in, and `stored_category` reads it back out of an
artifact. Training-time only (evals.training.train, evals.training.anchored).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from router.signals.capability.classifier import CATEGORIES, Weights

if TYPE_CHECKING:
    from evals.training.train import Settings


def pack(
    category: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
    difficulty: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float],
    settings: Settings,
    meta: dict[str, Any],
    frontier: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float] | None = None,
) -> Weights:
    """One (slots, categories + 2) table: the category columns, difficulty's, the frontier score's
    (all zero when `frontier` is None: it says 0.5 everywhere); slots whose weights are all near
    zero are left out. The columns after the 2**bits hashed slots are the meaning vector's, kept whole."""
    if frontier is None:
        frontier = np.zeros_like(difficulty[0]), np.zeros_like(difficulty[1]), 0.0
    table = np.hstack([category[0].T, difficulty[0][:, None], frontier[0][:, None]])
    hashed, meaning = table[: 1 << settings.hash_bits], table[1 << settings.hash_bits :]
    rows = np.flatnonzero(np.abs(hashed).max(axis=1) >= settings.prune_below)
    return Weights(
        hash_bits=settings.hash_bits,
        rows=rows.astype(np.int64),
        weights=hashed[rows].astype(np.float32),
        meaning=(settings.meaning_scale * meaning).astype(np.float32),  # the runtime's vector is unscaled
        cat_bias=category[1].astype(np.float32),
        diff_bias=difficulty[2],
        diff_from_category=difficulty[1].astype(np.float32),
        frontier_bias=frontier[2],
        frontier_from_category=frontier[1].astype(np.float32),
        meta=meta,
    )


def as_stored(
    category: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]], settings: Settings
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """The category model as an artifact stores it: hashed weights in float16, the meaning block
    and the biases in float32, and slots whose category weights are all below prune_below dropped.
    Difficulty is fit on the probabilities this model gives, so that refitting difficulty alone on
    an artifact's category model (`--difficulty-only`) gives what a whole retraining does. The
    runtime reads a little more: `pack` also keeps a slot for its difficulty weight, small category
    weights and all (each below prune_below; about 1e-4 in the probabilities). Dropping those here
    keeps what difficulty learns from independent of difficulty's own weights, without which the
    refit of an artifact would not give it back."""
    coef, bias = category
    # float32 first, as pack stores them: a float64 weight rounded to half precision directly and
    # through float32 can differ, and an artifact's model is read back from its float32 (stored_category)
    hashed = coef[:, : 1 << settings.hash_bits].astype(np.float32)
    kept = np.abs(hashed).max(axis=0) >= settings.prune_below
    stored = np.zeros_like(coef)
    stored[:, : 1 << settings.hash_bits] = np.where(kept, hashed.astype(np.float16), 0.0)
    meaning = settings.meaning_scale * coef[:, 1 << settings.hash_bits :]
    stored[:, 1 << settings.hash_bits :] = meaning.astype(np.float32) / settings.meaning_scale
    return stored, bias.astype(np.float32).astype(np.float64)


def stored_category(
    weights: Weights, settings: Settings
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """An artifact's category model as (coef, bias) over feature_matrix's columns: its weights as
    stored, so that packing them again changes none that is kept."""
    n = len(CATEGORIES)
    coef = np.zeros((n, (1 << weights.hash_bits) + len(weights.meaning)))
    coef[:, weights.rows] = weights.weights[:, :n].T
    coef[:, 1 << weights.hash_bits :] = weights.meaning[:, :n].T / settings.meaning_scale
    return coef, weights.cat_bias.astype(np.float64)
