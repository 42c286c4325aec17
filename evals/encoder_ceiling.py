"""How much a stronger prompt representation could lift the category figure on held-out sources.

Run as `python -m evals.encoder_ceiling [--c 16] [--limit N] [--json]` (about 7 minutes here: the
transformer reads the 12,884 training prompts once). The router reads a prompt through a static
table distilled from all-MiniLM-L6-v2 (one row per word piece, averaged: no transformer on the
request path) beside hashed surface features. This retrains the same category model (the training
code's own class weights, hidden length cues and C) on the shipped split's training side with the
representation swapped, and scores it on the held-out sources of `evals.heldout_category`:

- SHIPPED (`surface + static table of the text and of its first sentence`): the shipped recipe,
  retrained here (it reproduces the shipped figures): the table read over the whole prompt and
  again over its first sentence (what is asked, before any pasted passage), as two blocks;
- `surface + static table`: the recipe before the first sentence's block (until 2026-12-06), and
  `... of its first line` in its place, the variant tried beside it;
- `surface + MiniLM`: the packaged MiniLM itself (the sentence embedding the model was trained to
  give: the transformer run over every prompt, mean pooled, about 8.5 ms a prompt here against the
  0.5 ms p50 budget of every signal);
- `surface + MiniLM + static table`, and each representation alone. `--no-minilm` leaves the
  transformer's rows out (a minute instead of seven).

The gap between `surface + static table` and `surface + MiniLM` bounds what any static table
distilled from MiniLM (model2vec, Tokenlearn) could give this model; what is left beyond the MiniLM rows is the data and the labels',
not the representation's. Training-time only: it imports sentence-transformers. This module must
never feed what it scores back into training, nor copy data into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse

from evals.heldout_category import CATEGORY_SOURCES, POOLED, Example, default_split
from evals.training.train import (
    Settings,
    category_probabilities,
    feature_matrix,
    fit_category,
    without_length_cues,
)
from router.signals.capability.classifier import CATEGORIES
from router.signals.capability.meaning import Meaning, first_sentence

Dense = npt.NDArray[np.float64]
# Which blocks each representation stacks; `surface` is the hashed features with length cues hidden.
SHIPPED = "surface + static table of the text and of its first sentence"
REPRESENTATIONS = {
    SHIPPED: ("surface", "static", "sentence"),
    "surface + static table": ("surface", "static"),
    "surface + static table of the text and of its first line": ("surface", "static", "line"),
    "surface + MiniLM": ("surface", "minilm"),
    "surface + MiniLM + static table": ("surface", "minilm", "static"),
    "static table alone": ("static",),
    "MiniLM alone": ("minilm",),
}


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


HEADS = {"sentence": first_sentence, "line": first_line}


def surface(texts: Sequence[str], bits: int) -> sparse.csr_matrix:
    """The hashed features as the category model reads them (length cues zeroed, as in training)."""
    return without_length_cues(feature_matrix(texts, bits, None), bits)


def minilm_encoder() -> Callable[[Sequence[str]], Dense]:
    """The packaged MiniLM's sentence embeddings (fp32, so the figure does not depend on the CPU)."""
    from rag.embed import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(precision="fp32", runtime="torch")
    return lambda texts: np.asarray(embedder.embed(list(texts)), dtype=np.float64)


class Blocks:
    """Each text set's blocks, built once and stacked per representation."""

    def __init__(
        self,
        texts: Sequence[str],
        settings: Settings,
        encode: Callable[[Sequence[str]], Dense] | None,
    ) -> None:
        meaning = Meaning.packaged()

        def static(read: Callable[[str], str]) -> sparse.csr_matrix:
            vectors = np.stack([meaning.embed(read(t)) for t in texts]).astype(np.float64)
            return sparse.csr_matrix(settings.meaning_scale * vectors)  # as feature_matrix gives it

        self.parts: dict[str, sparse.csr_matrix] = {
            "surface": surface(texts, settings.hash_bits),
            "static": static(str),
            **{name: static(read) for name, read in HEADS.items()},
        }
        if encode is not None:
            self.parts["minilm"] = sparse.csr_matrix(encode(texts))

    def stack(self, names: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.parts[name] for name in names], format="csr")


def ceiling(
    c: float = Settings().category_c,
    limit: int | None = None,
    encode: Callable[[Sequence[str]], Dense] | None = None,
    minilm: bool = True,
) -> dict[str, Any]:
    """Accuracy per held-out source (and `pooled` over POOLED, `in-distribution` on the split's test
    side) for each representation (without MiniLM's rows when `minilm` is false). `limit` trains on
    every limit-th training prompt (a quick look)."""
    settings = Settings(category_c=c)
    encode = (encode or minilm_encoder()) if minilm else None
    split = default_split()
    train = split.train[:: limit or 1]
    held: dict[str, list[Example]] = {name: read() for name, read in CATEGORY_SOURCES.items()}
    held = {name: examples for name, examples in held.items() if examples}
    held["in-distribution"] = [(e.text, e.label, e.source) for e in split.test]
    started = time.perf_counter()
    train_blocks = Blocks([e.text for e in train], settings, encode)
    held_blocks = {
        name: Blocks([p for p, _, _ in examples], settings, encode) for name, examples in held.items()
    }
    report: dict[str, Any] = {"c": c, "train": len(train), "embed_seconds": time.perf_counter() - started}
    for label, names in REPRESENTATIONS.items():
        if not all(name in train_blocks.parts for name in names):
            continue
        coef, bias = fit_category(train_blocks.stack(names), [e.label for e in train], settings)
        hits = {}
        for name, examples in held.items():
            guesses = category_probabilities(held_blocks[name].stack(names), coef, bias).argmax(axis=1)
            hits[name] = np.array(
                [CATEGORIES[g] == lab for g, (_, lab, _) in zip(guesses, examples, strict=True)]
            )
        row = {name: float(h.mean()) for name, h in hits.items()}
        row["pooled"] = float(np.concatenate([hits[name] for name in POOLED if name in hits]).mean())
        report[label] = row
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--c", type=float, default=Settings().category_c, help="inverse L2 strength")
    parser.add_argument("--limit", type=int, default=None, help="train on every N-th training prompt")
    parser.add_argument("--no-minilm", action="store_true", help="leave the transformer's rows out")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from router.settings import make_offline

    make_offline()
    report = ceiling(args.c, args.limit, minilm=not args.no_minilm)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    columns = [k for k in next(v for v in report.values() if isinstance(v, dict))]
    print(
        f"category model, C={report['c']}, {report['train']} training prompts "
        f"(embedding took {report['embed_seconds']:.0f} s)"
    )
    print(f"{'representation':62}" + "".join(f"{col:>18}" for col in columns))
    for label in (label for label in REPRESENTATIONS if label in report):
        print(f"{label:62}" + "".join(f"{report[label][col]:>18.3f}" for col in columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
