"""The capability signal: what kind of task a prompt is (category) and how hard it is for a cheap model.

`CapabilityClassifier.load()` reads the one committed artifact (data/capability.npz, written by
`python -m evals.training.train`) and `classify(text)` scores a prompt with two linear models over
two kinds of features: hashed surface features (words, word pairs, shape cues) and the meaning
vectors of the whole prompt and of its first sentence (`router.signals.capability.meaning`, a static
embedding distilled from MiniLM; the first sentence is mostly what is asked, before any pasted
passage, and only the category reads it). A multinomial logistic regression gives the category, a
logistic regression difficulty (the probability that the strong model is needed because the weak
one falls short, learnt from benchmark outcomes) and another `frontier` (the probability that
people would judge the prompt to need a frontier model, learnt from requests their authors tiered);
`evidence(text)` says which
part of each score came from meaning, from surface and from the prior. It uses numpy and the
meaning table only: it must never import scikit-learn, torch or any model hub, never run a
transformer, and never load an artifact whose format, feature version, hash size or meaning table
differ from what it was trained with.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from router.signals.capability.features import (
    FEATURES_VERSION,
    MAX_WORD_CHARS,
    STOPWORDS,
    featurize,
    slots,
    word_features,
    word_tokens,
)
from router.signals.capability.meaning import Meaning, sentence_apart

CATEGORIES = ("code", "math", "reasoning", "writing", "extraction", "simple_chat", "other")
ARTIFACT_FORMAT = 3
DEFAULT_ARTIFACT = Path(__file__).resolve().parents[1] / "data" / "capability.npz"
# Columns of the weight matrix: one per category, then difficulty, then frontier; one gather scores
# the three models.
DIFFICULTY_COLUMN = len(CATEGORIES)
FRONTIER_COLUMN = DIFFICULTY_COLUMN + 1
COLUMNS = FRONTIER_COLUMN + 1
_ARRAYS = ("format", "features_version", "hash_bits", "categories", "rows", "weights", "cat_bias")
_ARRAYS_MORE = (
    "diff_bias",
    "diff_from_category",
    "frontier_bias",
    "frontier_from_category",
    "meaning",
    "meta",
)

Array = npt.NDArray[np.float32]


class CapabilityArtifactError(ValueError):
    """The artifact is missing, corrupt, or was written for another format or feature extractor."""


@dataclass(frozen=True, slots=True)
class Capability:
    category: str  # one of CATEGORIES
    confidence: float  # probability of that category
    difficulty: float  # in [0, 1]: how likely a cheaper model falls short on this query
    scores: dict[str, float]  # probability per category
    # in [0, 1]: how likely people would judge the query to need a frontier model (learnt from
    # requests their authors tiered hard or easy; difficulty is learnt from benchmark outcomes)
    frontier: float = 0.0


@dataclass(frozen=True, slots=True)
class Weights:
    """Everything an artifact holds, as plain arrays: what training writes and loading reads."""

    hash_bits: int
    rows: npt.NDArray[np.int64]  # hashed slots that carry a weight
    weights: Array  # (len(rows), COLUMNS)
    # (2 x dims of the meaning vector, COLUMNS): the text's rows, then its first sentence's
    meaning: Array
    cat_bias: Array  # (len(CATEGORIES),)
    diff_bias: float
    diff_from_category: Array  # difficulty weight on each category probability
    frontier_bias: float
    frontier_from_category: Array  # frontier weight on each category probability
    meta: dict[str, Any]


def save_artifact(path: Path, weights: Weights) -> None:
    """Write an artifact; float16 weights keep the committed file small, biases stay float32. The
    file is written beside `path` and moved over it whole, so a failed write leaves what was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        _write_arrays(partial, weights)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)


def _write_arrays(partial: Path, weights: Weights) -> None:
    with partial.open("wb") as handle:
        np.savez_compressed(
            handle,
            format=np.int64(ARTIFACT_FORMAT),
            features_version=np.int64(FEATURES_VERSION),
            hash_bits=np.int64(weights.hash_bits),
            categories=np.array(CATEGORIES),
            rows=weights.rows.astype(np.int32),
            weights=weights.weights.astype(np.float16),
            meaning=weights.meaning.astype(np.float32),
            cat_bias=weights.cat_bias.astype(np.float32),
            diff_bias=np.float32(weights.diff_bias),
            diff_from_category=weights.diff_from_category.astype(np.float32),
            frontier_bias=np.float32(weights.frontier_bias),
            frontier_from_category=weights.frontier_from_category.astype(np.float32),
            meta=np.array(json.dumps(weights.meta, sort_keys=True)),
        )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in (*_ARRAYS, *_ARRAYS_MORE) if name not in data.files]
            if missing and "format" in data.files and int(data["format"]) != ARTIFACT_FORMAT:
                # an older format lacks arrays a newer one added: say which format, not which arrays
                _check_versions(
                    path, {"format": data["format"], "features_version": np.asarray(FEATURES_VERSION)}
                )
            if missing:
                raise CapabilityArtifactError(
                    f"{path} is not a capability artifact: missing {', '.join(missing)}"
                )
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise CapabilityArtifactError(
            f"{path} does not exist; run `python -m evals.training.train` to build it"
        ) from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, CapabilityArtifactError):
            raise
        raise CapabilityArtifactError(f"{path} is not a readable capability artifact: {error}") from None


def _check_versions(path: Path, arrays: dict[str, np.ndarray]) -> None:
    expected = {"format": ARTIFACT_FORMAT, "features_version": FEATURES_VERSION}
    for name, want in expected.items():
        found = int(arrays[name])
        if found != want:
            raise CapabilityArtifactError(
                f"{path} has {name} {found} but this code reads {want}; retrain with `python -m evals.training.train`"
            )
    categories = tuple(str(c) for c in arrays["categories"])
    if categories != CATEGORIES:
        raise CapabilityArtifactError(
            f"{path} was trained for categories {categories}, this code has {CATEGORIES}"
        )


def read_artifact(path: Path) -> Weights:
    arrays = _read_arrays(path)
    _check_versions(path, arrays)
    bits = int(arrays["hash_bits"])
    rows = arrays["rows"].astype(np.int64)
    weights = arrays["weights"].astype(np.float32)
    meaning = arrays["meaning"].astype(np.float32)
    n = len(CATEGORIES)
    shapes_ok = (
        8 <= bits <= 24
        and rows.ndim == 1
        and weights.shape == (len(rows), COLUMNS)
        and meaning.ndim == 2
        and meaning.shape[1] == COLUMNS
        and arrays["cat_bias"].shape == (n,)
        and arrays["diff_from_category"].shape == (n,)
        and arrays["frontier_from_category"].shape == (n,)
        and (len(rows) == 0 or (int(rows.min()) >= 0 and int(rows.max()) < (1 << bits)))
    )
    if not shapes_ok:
        raise CapabilityArtifactError(f"{path} has inconsistent shapes or hash slots (hash_bits {bits})")
    finite = (
        weights,
        meaning,
        arrays["cat_bias"],
        arrays["diff_from_category"],
        arrays["frontier_from_category"],
    )
    if not all(np.isfinite(a).all() for a in finite):
        raise CapabilityArtifactError(f"{path} holds non-finite weights")
    return Weights(
        hash_bits=bits,
        rows=rows,
        weights=weights,
        meaning=meaning,
        cat_bias=arrays["cat_bias"].astype(np.float32),
        diff_bias=float(arrays["diff_bias"]),
        diff_from_category=arrays["diff_from_category"].astype(np.float32),
        frontier_bias=float(arrays["frontier_bias"]),
        frontier_from_category=arrays["frontier_from_category"].astype(np.float32),
        meta=json.loads(str(arrays["meta"])),
    )


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)  # the mirrored form never overflows for very negative margins
    return e / (1.0 + e)


def _strongest(words: list[str], pushes: Array, count: int = 3) -> list[str]:
    """The words whose weight pushed a score up most, strongest first."""
    order = np.argsort(-pushes, kind="stable")[:count]
    return [words[i] for i in order if pushes[i] > 0]


class CapabilityClassifier:
    def __init__(self, weights: Weights, meaning: Meaning | None = None) -> None:
        self.hash_bits = weights.hash_bits
        self.meta = weights.meta
        # A dense table indexed by hashed slot: one gather per prompt instead of a sparse lookup.
        self._table = np.zeros((1 << weights.hash_bits, COLUMNS), dtype=np.float32)
        self._table[weights.rows] = weights.weights
        self._meaning_weights = weights.meaning
        self._meaning = None
        if len(weights.meaning):
            self._meaning = meaning or Meaning.packaged()
            trained_on = weights.meta.get("meaning_digest")
            if 2 * self._meaning.dims != len(weights.meaning) or trained_on != self._meaning.digest:
                raise CapabilityArtifactError(
                    "the capability artifact was trained on another meaning table; retrain with "
                    "`python -m evals.training.train`"
                )
        self._cat_bias = weights.cat_bias
        self._diff_bias = np.float32(weights.diff_bias)
        self._diff_from_category = weights.diff_from_category
        # The last step is on eight numbers: plain floats, since each numpy call on so few costs
        # more than the arithmetic, most of all in a server whose caches hold other work.
        self._cat_bias_list: list[float] = weights.cat_bias.tolist()
        self._diff_from_category_list: list[float] = weights.diff_from_category.tolist()
        self._frontier_bias = float(weights.frontier_bias)
        self._frontier_from_category_list: list[float] = weights.frontier_from_category.tolist()

    @classmethod
    def load(cls, path: Path | None = None) -> CapabilityClassifier:
        """The classifier stored at `path`; None means the artifact packaged with turnout."""
        return cls(read_artifact(path or DEFAULT_ARTIFACT))

    def _parts(self, text: str) -> tuple[Array, Array]:
        """Each weight column's sum over the hashed features and over the two meaning vectors."""
        indices, values = featurize(text, self.hash_bits)
        surface = values @ self._table.take(indices, axis=0)
        if self._meaning is None:
            return surface, np.zeros_like(surface)
        whole, head = self._meaning.pair(text)
        dims = self._meaning.dims  # the weights' rows: the text's vector's, then its first sentence's
        return surface, whole @ self._meaning_weights[:dims] + head @ self._meaning_weights[dims:]

    def _prior(self, probs: list[float], frontier: bool = False) -> float:
        """Difficulty's (or the frontier score's) share from the category: its bias plus the
        probabilities' weighted sum."""
        bias, weights = (
            (self._frontier_bias, self._frontier_from_category_list)
            if frontier
            else (float(self._diff_bias), self._diff_from_category_list)
        )
        return bias + sum(p * w for p, w in zip(probs, weights, strict=True))

    def _finish(self, z: Array) -> tuple[list[float], float, float]:
        """Category probabilities (softmax of the logits), difficulty and frontier (each the sigmoid of
        its margin)."""
        scores = z.tolist()
        logits = [a + b for a, b in zip(scores[:DIFFICULTY_COLUMN], self._cat_bias_list, strict=True)]
        top = max(logits)
        exps = [math.exp(logit - top) for logit in logits]
        total = sum(exps)
        probs = [e / total for e in exps]
        difficulty = _sigmoid(scores[DIFFICULTY_COLUMN] + self._prior(probs))
        return probs, difficulty, _sigmoid(scores[FRONTIER_COLUMN] + self._prior(probs, frontier=True))

    def raw_scores(self, text: str) -> tuple[list[float], float, float]:
        """Category probabilities (in CATEGORIES order), difficulty and the frontier score, as numbers."""
        surface, meaning = self._parts(text)
        return self._finish(surface + meaning)

    def classify(self, text: str) -> Capability:
        probs, difficulty, frontier = self.raw_scores(text)
        best = probs.index(max(probs))
        scores = dict(zip(CATEGORIES, probs, strict=True))
        return Capability(CATEGORIES[best], probs[best], difficulty, scores, frontier)

    def evidence(self, text: str) -> dict[str, Any]:
        """Why: for the chosen category, difficulty and the frontier score, the parts of the score (a logit) that
        came from the prompt's meaning (its text's vector and, for the category, its first
        sentence's, which `first_sentence` shows when there is more), from its surface (words, word pairs, shape cues)
        and from the prior (the bias, and for difficulty and the frontier score the category's share),
        and the words that pushed each up most."""
        surface, meaning = self._parts(text)
        probs, difficulty, frontier = self._finish(surface + meaning)
        best = probs.index(max(probs))
        words = sorted(
            {token for token in word_tokens(text.lower()[:MAX_WORD_CHARS]) if token not in STOPWORDS}
        )
        # A word's unigram weight, at the value featurize gives every word feature of this prompt.
        share = 1.0 / math.sqrt(len(word_features(text.lower()))) if words else 0.0
        columns = self._table[slots([f"w:{word}" for word in words], self.hash_bits)] * share

        def parts(column: int, prior: float) -> dict[str, float]:
            return {
                "meaning": round(float(meaning[column]), 2),
                "surface": round(float(surface[column]), 2),
                "prior": round(prior, 2),
            }

        return {
            "category": CATEGORIES[best],
            # read apart for the category's meaning part; None: the prompt is one sentence, its own
            "first_sentence": sentence_apart(text),
            "category_from": parts(best, float(self._cat_bias[best])),
            "category_words": _strongest(words, columns[:, best]),
            "difficulty": round(difficulty, 3),
            "difficulty_from": parts(DIFFICULTY_COLUMN, self._prior(probs)),
            "difficulty_words": _strongest(words, columns[:, DIFFICULTY_COLUMN]),
            "frontier": round(frontier, 3),
            "frontier_from": parts(FRONTIER_COLUMN, self._prior(probs, frontier=True)),
            "frontier_words": _strongest(words, columns[:, FRONTIER_COLUMN]),
        }
