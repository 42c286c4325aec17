"""The meaning vector: the packaged static table, its guards, and that it carries meaning."""

from __future__ import annotations

import json
import math
import random
import re
import string
from pathlib import Path

import numpy as np
import pytest

from evals.training import distill
from router.signals.capability.classifier import (
    DEFAULT_ARTIFACT,
    DIFFICULTY_COLUMN,
    CapabilityArtifactError,
    CapabilityClassifier,
    read_artifact,
)
from router.signals.capability.meaning import (
    DEFAULT_TABLE,
    Meaning,
    MeaningTableError,
    first_sentence,
    read_table,
)


@pytest.fixture(scope="module")
def meaning() -> Meaning:
    return Meaning.packaged()


def _cos(meaning: Meaning, a: str, b: str) -> float:
    return float(meaning.embed(a) @ meaning.embed(b))


def test_vectors_are_unit_length_and_empty_text_is_zero(meaning: Meaning) -> None:
    for text in ("hello there", "def f(x): return x", "naïve café 数学 🚀", "x" * 50_000):
        assert np.linalg.norm(meaning.embed(text)) == pytest.approx(1.0, abs=1e-5)
    for text in ("", "   \n\t"):
        assert not meaning.embed(text).any()


@pytest.mark.parametrize(
    ("anchor", "near", "far"),
    [
        ("Summarize this article", "Give me a brief overview of the following text", "Compute 17 times 23"),
        ("hi, how are you?", "hello! how's it going?", "Prove the theorem by induction"),
        ("Write a poem about the sea", "Compose verses about the ocean", "Fix the SQL syntax error"),
        ("Fix this Python bug", "Why does my JavaScript function crash?", "Write a love letter"),
    ],
)
def test_paraphrases_are_closer_than_other_tasks(meaning: Meaning, anchor: str, near: str, far: str) -> None:
    assert _cos(meaning, anchor, near) > _cos(meaning, anchor, far) + 0.05


def test_word_by_word_pieces_match_the_tokenizer_on_the_whole_text(meaning: Meaning) -> None:
    texts = [
        "Tokenization of un-cased WORDS: naïve users' e-mails, 3.14159 and snake_case_names!",
        "decomposed nai\u0308ve cafe\u0301 and नमस्ते दुनिया, 数学 ∑∫ 🚀",  # combining marks, Devanagari, CJK
        "https://example.com/a/very/long/path?with=query&and=" + "x" * 80,  # a chunk too long to cache
    ]
    for text in texts:
        whole = meaning._tokenizer.encode(text, add_special_tokens=False).ids
        assert meaning.pieces(text) == whole, text
        assert meaning.pieces(text) == meaning.pieces(text)  # the cached path gives the same


def test_ascii_chunks_read_by_wordpiece_alone_match_the_tokenizer(meaning: Meaning) -> None:
    """Printable ASCII chunks skip `encode` (BERT's steps before WordPiece, done in Python): the same
    pieces for words, digits, every punctuation mark, mixed case, words too long for WordPiece
    (one [UNK]), and special tokens written out, which `encode` reads as one piece."""
    assert meaning._wordpiece is not None  # the packaged tokenizer takes that path
    rng = random.Random(5)
    alphabet = [*string.ascii_letters, *string.digits, *string.punctuation]
    chunks = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 24))) for _ in range(3000)]
    chunks += ["a" * 100, "a" * 101, "Ab1" * 40, "x[MASK]y", "[SEP]", "[sep]", "[UNK]", "e-mail's", "3.14"]
    for chunk in chunks:
        assert meaning._word_pieces(chunk) == tuple(
            meaning._tokenizer.encode(chunk, add_special_tokens=False).ids
        ), chunk


def test_a_printable_ascii_head_read_in_one_pass_gives_the_chunks_pieces(meaning: Meaning) -> None:
    """A head of printable ASCII is split into words in one pass (no chunk by chunk look-ups): the
    same pieces as reading it chunk by chunk, and the same count before any cut, wherever the cut
    falls (between chunks, inside one, at the ends); special tokens and other characters (which
    take the chunk path) mixed in too."""
    rng = random.Random(11)
    alphabet = [*string.ascii_letters, *string.digits, *string.punctuation, *" \t\n\x0b\x1c"]
    alphabet += ["[MASK]", "[sep]", "é", "\u00a0", "数", "the", "unbelievably", "xqzvwk"]
    for _ in range(1500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 120)))
        chunks = [(m.start(), meaning._word_pieces(m.group())) for m in re.finditer(r"\S+", text)]
        whole = [piece for _, pieces in chunks for piece in pieces]
        for cut in (None, 0, rng.randrange(0, len(text) + 1), len(text)):
            before = whole if cut is None else [p for start, ps in chunks if start < cut for p in ps]
            assert meaning._pieces_before(text, cut) == (whole, len(before)), (text, cut)


def test_only_the_head_of_a_long_text_is_read(meaning: Meaning) -> None:
    head = "Summarize the following report. " * 70  # > MAX_CHARS
    assert np.allclose(meaning.embed(head), meaning.embed(head + " Write a Rust compiler." * 200))


def test_a_table_for_another_vocabulary_or_a_broken_file_is_refused(tmp_path: Path) -> None:
    with np.load(DEFAULT_TABLE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    other = tmp_path / "other.npz"
    meta = {**json.loads(str(arrays["meta"])), "vocab_sha256": "0" * 64}
    np.savez_compressed(other, rows=arrays["rows"], scale=arrays["scale"], meta=np.array(json.dumps(meta)))
    with pytest.raises(MeaningTableError, match="another MiniLM vocabulary"):
        Meaning.load(other)
    short = tmp_path / "short.npz"
    np.savez_compressed(short, rows=arrays["rows"][:100], scale=arrays["scale"][:100], meta=arrays["meta"])
    with pytest.raises(MeaningTableError, match="rows for a vocabulary"):
        Meaning.load(short)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a table")
    with pytest.raises(MeaningTableError, match="cannot read"):
        Meaning.load(garbage)
    floats = tmp_path / "floats.npz"
    np.savez_compressed(
        floats, rows=arrays["rows"].astype(np.float32), scale=arrays["scale"], meta=arrays["meta"]
    )
    with pytest.raises(MeaningTableError, match="not a format"):
        read_table(floats)


def test_the_classifier_refuses_a_head_trained_on_another_table(tmp_path: Path) -> None:
    with np.load(DEFAULT_ARTIFACT, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    meta = json.loads(str(arrays["meta"]))
    assert meta["meaning_digest"] == Meaning.packaged().digest
    arrays["meta"] = np.array(json.dumps({**meta, "meaning_digest": "f" * 64}))
    path = tmp_path / "stale.npz"
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
    with pytest.raises(CapabilityArtifactError, match="another meaning table"):
        CapabilityClassifier.load(path)
    # the text's vector's rows, then its first sentence's
    assert read_artifact(DEFAULT_ARTIFACT).meaning.shape == (2 * Meaning.packaged().dims, 9)


def test_the_evidence_adds_up_to_the_scores() -> None:
    classifier = CapabilityClassifier.load()
    for text in ("Write a Python function that merges two sorted lists", "thanks a lot!", ""):
        result = classifier.classify(text)
        evidence = classifier.evidence(text)
        assert evidence["category"] == result.category
        for score, value in (("difficulty", result.difficulty), ("frontier", result.frontier)):
            parts = evidence[f"{score}_from"]
            logit = parts["meaning"] + parts["surface"] + parts["prior"]
            assert 1 / (1 + math.exp(-logit)) == pytest.approx(value, abs=0.02)
    assert (
        "python"
        in classifier.evidence("Write a Python function that merges two sorted lists")["category_words"]
    )


def test_distillation_steps() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) @ np.diag([5, 4, 3, 0.1, 0.1, 0.1])
    scores = distill.principal_components(x, 3)
    assert scores.shape == (200, 3)
    variances = scores.var(axis=0)
    assert variances[0] > variances[1] > variances[2] > 5 * x[:, 3:].var(axis=0).max()
    assert (scores[np.abs(scores).argmax(axis=0), range(3)] > 0).all()  # each sign fixed
    weights = distill.sif_weights(1000)
    assert (np.diff(weights) > 0).all() and 0 < weights[0] < weights[-1] < 1  # rarer pieces weigh more
    table = rng.normal(size=(50, 8))
    table[7] = 0.0
    rows, scale = distill.quantize(table)
    assert rows.dtype == np.int8 and not rows[7].any() and scale[7] == 0
    assert np.abs(rows * scale[:, None] - table).max() <= scale.max() / 2 + 1e-6


def test_the_common_direction_is_taken_out() -> None:
    rng = np.random.default_rng(1)
    shared = np.zeros(16)
    shared[3] = 1.0
    vectors = rng.normal(size=(400, 16)) * 0.2 + 2.0 * shared  # every vector leans the same way
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    direction = distill.common_direction(vectors)
    assert abs(direction @ shared) > 0.99 and np.linalg.norm(direction) == pytest.approx(1.0)
    table = rng.normal(size=(50, 16)) + shared
    removed = distill.without_direction(table, direction)
    assert np.abs(removed @ direction).max() < 1e-9
    other = np.linalg.svd(np.eye(16) - np.outer(direction, direction))[0][:, :15]  # the rest of the space
    assert np.allclose(removed @ other, table @ other)


# Prompts of every length and kind: before the common direction was removed from the table their
# unit vectors all leant one way (the mean's length was 0.62 on these; the longer the prompt, the
# further), which the category model read as a length cue.
_MIXED = (
    "hi",
    "thanks a lot!",
    "What is the capital of France?",
    "Write a Python function that merges two sorted lists",
    "Design a Byzantine fault tolerant consensus protocol and prove its safety",
    "Summarise the following passage in two sentences: The committee met on Tuesday to review the "
    "budget. After a long discussion the members agreed to postpone the vote until the next quarter, "
    "when the audited figures will be available.",
    "Solve for x: 3x + 7 = 22",
    "Tell me a joke about cats",
    "Our deployment pipeline builds a container image, pushes it to the registry, and then rolls it "
    "out to three regions one after another. Yesterday the second region kept the old version for an "
    "hour although the rollout reported success. Where should I look first, and how can I make the "
    "rollout verify what is actually running?",
    "Translate 'good morning' into German",
)


def test_the_packaged_table_has_no_shared_direction(meaning: Meaning) -> None:
    vectors = np.stack([meaning.embed(text) for text in _MIXED])
    assert np.linalg.norm(vectors.mean(axis=0)) < 0.45  # 0.30 now; 0.62 with the direction left in
    info = read_table(DEFAULT_TABLE)[1]["common_direction"]
    assert info["mean_length_before"] > 0.5 and info["mean_length_after"] < 0.1


def test_the_common_direction_comes_from_training_prompts_only() -> None:
    from evals.training.corpus import DEFAULT_SEED, build_split, text_key

    texts, source = distill.training_prompts()
    split = build_split(DEFAULT_SEED)
    assert source["texts"] == len(texts) == len(split.train)
    assert not {text_key(text) for text in texts} & split.held_out_keys


def test_distill_keeps_a_table_built_from_sources_this_machine_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    table = tmp_path / "meaning.npz"
    rows, scale = distill.quantize(np.eye(4))
    meta = {
        "format": 1,
        "vocab_sha256": "0" * 64,
        "common_direction": {"optional_sources": ["dolly-15k-sample"]},
    }
    from router.signals.capability.meaning import save_table

    save_table(table, rows, scale, meta)
    assert distill.absent_sources(table, ["dolly-15k-sample", "folio-sample"]) == ["dolly-15k-sample"]
    assert distill.absent_sources(table, []) == []
    assert distill.absent_sources(tmp_path / "none.npz", ["dolly-15k-sample"]) == []
    from evals.training import instructions

    monkeypatch.setattr(instructions, "missing", lambda: ["dolly-15k-sample"])
    before = table.read_bytes()
    assert distill.main(["--out", str(table)]) == 2  # refused before any model is loaded
    assert table.read_bytes() == before and "--allow-missing" in capsys.readouterr().err


def test_the_first_sentence_is_read_apart_for_the_category_not_for_difficulty() -> None:
    """The heads read the text's vector and its first sentence's (Meaning.pair); the category
    weighs the second block, the difficulty model is trained blind to it (train.without_first_sentence)."""
    weights = read_artifact(DEFAULT_ARTIFACT)
    dims = Meaning.packaged().dims
    head = weights.meaning[dims:]
    assert np.abs(head[:, :DIFFICULTY_COLUMN]).max() > 0.1
    assert not head[:, DIFFICULTY_COLUMN:].any()  # difficulty and the frontier score read the whole text only
    passage = "Summarize this report: revenue was $4.2 billion in Q3, up 12% on 2023, and margins 31.5%."
    whole, first = Meaning.packaged().pair(passage)
    assert np.allclose(first, Meaning.packaged().embed("Summarize this report:"))
    assert not np.allclose(whole, first)
    whole, first = Meaning.packaged().pair("What is the capital of Australia?")
    assert whole is first  # one sentence: its own ask, one vector computed once


@pytest.mark.parametrize(
    "text",
    [
        "Summarize this report: revenue was $4.2 billion. Costs fell.",
        "  \n Translate this:\nbonjour tout le monde",
        "Hi.  ",
        ":\nfoo",
        "What is 2+2?",
        "",
        "x" * 1990 + ". yy zz",
        "x" * 3000,
        "naïve café? 数学 🚀. [CLS] more",
        "Hi \n",
        "Do this  \nnext",
        "Hi.\u3000there",
    ],
)
def test_the_pair_is_the_text_and_its_first_sentence_each_read_alone(text: str) -> None:
    """pair() gathers the rows once and takes the first sentence's mean over the first of them:
    the very numbers `embed` gives each read alone, which training and the runtime both rely on."""
    meaning = Meaning.packaged()
    whole, first = meaning.pair(text)
    assert np.array_equal(whole, meaning.embed(text))
    assert np.array_equal(first, meaning.embed(first_sentence(text)))


def test_training_hides_the_first_sentence_from_difficulty_only() -> None:
    from scipy import sparse

    from evals.training.train import without_first_sentence

    meaning = Meaning.packaged()
    x = sparse.csr_matrix(np.ones((2, 10 + 2 * meaning.dims)))
    blind = without_first_sentence(x, meaning).toarray()
    assert blind[:, : 10 + meaning.dims].all() and not blind[:, 10 + meaning.dims :].any()
    assert without_first_sentence(x, None) is x
