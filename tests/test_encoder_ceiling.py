"""The representation-ceiling harness retrains the shipped recipe faithfully: its `surface + static
table` row is what the runtime classifier, trained by the training code on the same prompts, scores.
The transformer is swapped for the project's hashing test double here (the full MiniLM run takes
minutes; what is checked is the harness, not MiniLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evals import encoder_ceiling
from evals.heldout_category import CATEGORY_SOURCES, default_split
from evals.training.train import Settings, train
from rag.testing import HashEmbedder
from router.signals.capability.classifier import CapabilityClassifier, save_artifact
from router.signals.capability.meaning import first_sentence

LIMIT = 25  # every 25th training prompt: about 500


def test_static_row_is_the_runtime_classifier_trained_on_the_same_prompts(tmp_path: Path) -> None:
    double = HashEmbedder(64)
    report = encoder_ceiling.ceiling(limit=LIMIT, encode=lambda texts: double.embed(texts).astype(np.float64))
    prompts = default_split().train[::LIMIT]
    assert report["train"] == len(prompts) > 300
    texts, labels = [e.text for e in prompts], [e.label for e in prompts]
    weights = train(texts, labels, texts, [i % 2 == 0 for i in range(len(texts))], Settings())
    save_artifact(tmp_path / "c.npz", weights)
    runtime = CapabilityClassifier.load(tmp_path / "c.npz")
    row = report[encoder_ceiling.SHIPPED]
    for name, read in CATEGORY_SOURCES.items():
        examples = read()
        if not examples:
            continue
        accuracy = np.mean([runtime.classify(p).category == label for p, label, _ in examples])
        # the runtime drops near-zero weights and computes in float32: one prompt may differ (none did)
        assert abs(row[name] - accuracy) * len(examples) <= 1.0 + 1e-9, name
    assert set(report) >= set(encoder_ceiling.REPRESENTATIONS)
    # the pooled figure is over the pooled sources' prompts, not a mean of their accuracies
    ni, si = len(CATEGORY_SOURCES["ni-format"]()), len(CATEGORY_SOURCES["self-instruct"]())
    expected = (row["ni-format"] * ni + row["self-instruct"] * si) / (ni + si)
    assert abs(row["pooled"] - expected) < 1e-9


def test_the_heads_read_what_a_request_asks_before_its_passage() -> None:
    passage = "Summarize the following paragraph: The company reported revenue of $4.2 billion. It grew."
    assert first_sentence(passage) == "Summarize the following paragraph:"
    assert first_sentence("  What is 2+2?\nThanks") == "What is 2+2?"
    assert first_sentence("Version 3.11 is out") == "Version 3.11 is out"  # one sentence: itself
    assert first_sentence("x" * 5000 + ". Then more") == "x" * 2000  # the head the meaning vector reads
    assert (
        encoder_ceiling.first_line("Translate this: hello there\nand this") == "Translate this: hello there"
    )


def test_without_minilm_only_the_static_rows_are_reported() -> None:
    report = encoder_ceiling.ceiling(limit=100, minilm=False)
    rows = {label for label, names in encoder_ceiling.REPRESENTATIONS.items() if "minilm" not in names}
    assert rows == {label for label in report if label in encoder_ceiling.REPRESENTATIONS}
    assert len(rows) == 4 and encoder_ceiling.SHIPPED in rows
