"""The capability signal: the packaged artifact, its guards, hashing stability, training, eval arithmetic.

Fast and offline: the packaged artifact is read as the gateway reads it, training runs on a few
hand-written prompts in a small hash space, and the split test skips when the public data is not
in a local mirror or cache (it must never download).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evals import routing_metrics as rm
from evals.training.train import Settings, train
from router.signals.capability.classifier import (
    CATEGORIES,
    DEFAULT_ARTIFACT,
    CapabilityArtifactError,
    CapabilityClassifier,
    read_artifact,
    save_artifact,
)
from router.signals.capability.features import featurize

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def classifier() -> CapabilityClassifier:
    return CapabilityClassifier.load()


@pytest.mark.parametrize(
    ("prompt", "category"),
    [
        ("Write a Python function that checks whether a number is prime.", "code"),
        ("A farmer has 12 cows, buys 7 more and then sells 5. How many cows does he have now?", "math"),
        ("write a poem about autumn", "writing"),
        ("set an alarm for 7am", "simple_chat"),
    ],
)
def test_packaged_artifact_classifies_obvious_prompts(
    classifier: CapabilityClassifier, prompt: str, category: str
) -> None:
    result = classifier.classify(prompt)
    assert result.category == category, result.scores
    assert set(result.scores) == set(CATEGORIES)
    assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-5)
    assert result.confidence == result.scores[category] == max(result.scores.values())
    assert 0.0 <= result.difficulty <= 1.0


def test_difficulty_stays_a_probability_on_odd_input(classifier: CapabilityClassifier) -> None:
    for text in ("", " ", "{" * 5000, "7" * 20000, "naïve café 数学 ∑∫ 🚀"):
        result = classifier.classify(text)
        assert 0.0 <= result.difficulty <= 1.0
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=1e-5)


def _rewrite(source: Path, target: Path, **changes: object) -> Path:
    with np.load(source, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    arrays.update({name: np.asarray(value) for name, value in changes.items()})
    np.savez_compressed(target, **arrays)  # type: ignore[arg-type]
    return target


def test_corrupt_or_missing_artifact_is_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CapabilityArtifactError, match="not a readable capability artifact"):
        CapabilityClassifier.load(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(DEFAULT_ARTIFACT.read_bytes()[:5000])
    with pytest.raises(CapabilityArtifactError):
        CapabilityClassifier.load(truncated)
    with pytest.raises(CapabilityArtifactError, match="does not exist"):
        CapabilityClassifier.load(tmp_path / "absent.npz")
    other = tmp_path / "other.npz"
    np.savez(other, something=np.zeros(3))
    with pytest.raises(CapabilityArtifactError, match="missing"):
        CapabilityClassifier.load(other)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features_version": np.int64(999)}, "features_version 999"),
        ({"format": np.int64(0)}, "format 0"),
        ({"hash_bits": np.int64(10)}, "hash slots"),
        ({"categories": np.array(["code", "math"])}, "categories"),
    ],
)
def test_mismatched_artifact_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    mismatched = _rewrite(DEFAULT_ARTIFACT, tmp_path / "mismatched.npz", **change)
    with pytest.raises(CapabilityArtifactError, match=message):
        CapabilityClassifier.load(mismatched)


def test_an_artifact_of_the_format_before_the_frontier_score_is_refused_by_its_format(tmp_path: Path) -> None:
    """Format 2 had no frontier arrays: its refusal names the format and how to retrain, not the
    arrays it lacks; a frontier column of another shape is refused as inconsistent."""
    with np.load(DEFAULT_ARTIFACT, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files if not name.startswith("frontier_")}
    arrays["format"] = np.int64(2)
    old = tmp_path / "format2.npz"
    np.savez_compressed(old, **arrays)  # type: ignore[arg-type]
    with pytest.raises(CapabilityArtifactError, match="format 2 but this code reads 3; retrain"):
        CapabilityClassifier.load(old)
    narrow = _rewrite(
        DEFAULT_ARTIFACT, tmp_path / "narrow.npz", frontier_from_category=np.zeros(3, np.float32)
    )
    with pytest.raises(CapabilityArtifactError, match="inconsistent shapes"):
        CapabilityClassifier.load(narrow)


def test_the_frontier_score_is_a_probability_and_ranks_proofs_over_routine_requests() -> None:
    classifier = CapabilityClassifier.load()
    hard = classifier.classify("Prove that every finite integral domain is a field, step by step.")
    routine = classifier.classify("Write a Python function that reverses a string.")
    assert 0 <= routine.frontier < hard.frontier <= 1


def test_hashing_is_the_same_in_every_process() -> None:
    text = "def add(a, b):\n    return a + b  # Sum 2 numbers: {x} == 3?"
    here = featurize(text)
    script = (
        "import json, sys; from router.signals.capability.features import featurize; "
        "i, v = featurize(sys.argv[1]); print(json.dumps([i.tolist(), v.tolist()]))"
    )
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script, text],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        indices, values = json.loads(out.stdout)
        assert indices == here[0].tolist()
        assert np.allclose(values, here[1])


TINY = {
    "code": [
        "write a python function to sort a list",
        "fix this javascript bug in my loop",
        "def f(x): return x",
    ],
    "math": ["what is 12 plus 30", "solve 3x + 2 = 11 for x", "how many apples are left if 5 of 9 are eaten"],
    "writing": ["write a poem about the sea", "compose a short story about a fox", "draft a sonnet on rain"],
    "simple_chat": ["set an alarm for 7am", "what time is it", "turn off the kitchen lights"],
}


def test_tiny_training_run_writes_a_loadable_artifact(tmp_path: Path) -> None:
    texts = [t for examples in TINY.values() for t in examples]
    labels = [label for label, examples in TINY.items() for _ in examples]
    needed = [label in ("code", "math") for label in labels]
    weights = train(texts, labels, texts, needed, Settings(hash_bits=12, max_iter=200), {"note": "tiny"})
    path = tmp_path / "tiny.npz"
    save_artifact(path, weights)
    loaded = CapabilityClassifier.load(path)
    assert loaded.hash_bits == 12 and loaded.meta["note"] == "tiny"
    for text, label in zip(texts, labels, strict=True):
        assert loaded.classify(text).category == label
    # Categories absent from training are never predicted.
    assert loaded.classify("extract the names from this text").category in TINY
    assert (
        loaded.classify("solve 3x + 2 = 11 for x").difficulty > loaded.classify("what time is it").difficulty
    )
    assert read_artifact(path).rows.max() < 1 << 12


def test_training_with_a_single_difficulty_class_still_yields_a_model(tmp_path: Path) -> None:
    texts = TINY["code"] + TINY["writing"]
    labels = ["code"] * 3 + ["writing"] * 3
    weights = train(texts, labels, texts, [False] * 6, Settings(hash_bits=10, max_iter=100))
    save_artifact(tmp_path / "one.npz", weights)
    result = CapabilityClassifier.load(tmp_path / "one.npz").classify("write a haiku")
    assert result.difficulty < 0.01


def _replay(strong: list[float], weak: list[float]) -> rm.Replay:
    return rm.Replay(np.array(strong), np.array(weak), np.full(len(strong), 1.0), np.full(len(strong), 0.0))


def test_sweep_oracle_and_random_match_hand_computed_figures() -> None:
    replay = _replay([1, 1, 1, 0], [0, 1, 1, 0])  # only the first prompt needs the strong model
    perfect = rm.summary(rm.sweep([0.9, 0.1, 0.2, 0.3], replay), replay)
    assert perfect["strong_share_at_target"] == 0.25
    assert perfect["cpt50"] == 0.25 and perfect["dollar_saving_at_target"] == pytest.approx(0.75)
    assert perfect["apgr"] == pytest.approx(0.875)
    assert rm.summary(rm.oracle(replay), replay)["apgr"] == pytest.approx(0.875)
    random = rm.summary(rm.random_router(replay), replay)
    assert random["apgr"] == pytest.approx(0.5)
    assert random["cpt80"] == pytest.approx(0.8, abs=1e-3)
    tied = rm.sweep([0.5, 0.5, 0.5, 0.5], replay)  # one threshold moves all tied prompts together
    assert tied.shares.tolist() == [0.0, 1.0]


def test_demand_weight_rule_and_soft_labels() -> None:
    """The rule of evals.training.demand picks the largest weight that keeps the benchmark ranking,
    and a prior's two soft-labelled rows carry the weight times their shares."""
    from evals.training.demand import AUC_SLACK, choose
    from evals.training.outcomes import DEMAND_PRIOR, demand_outcomes

    def report(weight: float, gsm8k: float, mmlu: float) -> dict[str, object]:
        return {"weight": weight, "auc": {"gsm8k": gsm8k, "mmlu": mmlu, "mt-bench": 0.5}}

    base = report(1, 0.570, 0.643)
    assert choose([base, report(2, 0.567, 0.641), report(4, 0.566, 0.6385), report(8, 0.564, 0.635)]) == 4
    assert choose([base, report(2, 0.570 - 2 * AUC_SLACK, 0.650)]) == 1  # GSM8K fell too far
    assert choose([base, report(2, 0.580, 0.643 - 2 * AUC_SLACK)]) == 1  # MMLU fell too far
    from evals.training.corpus import DEFAULT_SEED, build_split

    split = build_split(DEFAULT_SEED)
    one, one_weights = demand_outcomes(split, 1.0)
    four, four_weights = demand_outcomes(split, 4.0)
    assert [o.text for o in one] == [o.text for o in four]
    assert np.allclose(np.array(four_weights), 4 * np.array(one_weights))
    # every prompt of a source with prior p: a "needed" row of weight p and a "not needed" one of 1 - p
    needed = [w for o, w in zip(one, one_weights, strict=True) if o.strong_needed]
    assert needed and max(needed) == pytest.approx(max(DEMAND_PRIOR.values()))
    # and the packaged artifact says which weight it was trained with
    from evals.training.outcomes import DEMAND_WEIGHT
    from router.signals.capability.classifier import CapabilityClassifier

    assert CapabilityClassifier.load().meta["demand_weight"] == DEMAND_WEIGHT


def test_category_scores_from_a_confusion_matrix() -> None:
    matrix = rm.confusion(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "b"])
    assert matrix.tolist() == [[1, 1], [0, 2]]
    scores = rm.per_class(matrix, ["a", "b"])
    assert scores["a"]["precision"] == 1.0 and scores["a"]["recall"] == 0.5
    assert scores["b"]["f1"] == pytest.approx(0.8)


def test_split_is_deterministic_and_held_out_prompts_never_train() -> None:
    from evals.datasets import DatasetError, names, resolve
    from evals.training.corpus import build_split, text_key

    needed = ["mt-bench", "vicuna-bench", "arena-hard-v2", "gsm8k-test", "humaneval", "clinc150"]
    needed += ["semantic-router-domains", "presidio-synth-v2", "anthropic-docs", *names("routellm-mmlu-")]
    try:
        for name in needed:
            resolve(name, download=False)
    except DatasetError:
        if os.environ.get(
            "CI"
        ):  # CI lays ../shared/data beside the checkout: missing data is a failure there
            raise
        pytest.skip("the public datasets are not in a local mirror or cache")
    first, second = build_split(7), build_split(7)
    assert first.held_out_keys == second.held_out_keys
    assert not first.held_out_keys & first.train_keys
    assert not {text_key(e.text) for e in first.train} & first.held_out_keys
    assert {e.label for e in first.test} == set(CATEGORIES)


def _needs_public_datasets() -> None:
    """Skip where the public datasets are in neither a mirror folder nor the cache; CI lays
    ../shared/data beside the checkout, so there it fails instead."""
    from evals.datasets import DatasetError, resolve

    try:
        resolve("routellm-gsm8k", download=False)
    except DatasetError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the public datasets are not in a local mirror or cache")


@pytest.mark.slow
def test_retraining_on_the_shipped_seed_reproduces_the_packaged_figures() -> None:
    """`make train` is one command that gives back what is shipped; the seed spread starts from it."""
    from evals import routing_eval, seed_spread
    from evals.training.instructions import missing

    _needs_public_datasets()
    if missing():  # sampled sources the shipped artifact was trained with (evals.training.samples)
        pytest.skip(f"the shipped classifier was trained with {', '.join(missing())}, not on this machine")
    if read_artifact(DEFAULT_ARTIFACT).meta.get("category_refits"):
        # a whole retraining on every source (the added ones among them) is the model that would
        # replace it, not a reproduction of it
        pytest.skip("the shipped category model was refit with added sources (evals.training.anchored)")
    packaged = routing_eval.run()
    retrained = seed_spread.one_seed(packaged["split_seed"])
    assert retrained["category_accuracy"] == pytest.approx(packaged["category"]["accuracy"])
    for benchmark, report in packaged["difficulty"].items():
        for name in seed_spread.ROUTERS:
            shipped = report["routers"][name]["call_saving_at_target"]
            assert retrained["call_saving"][benchmark][name] == pytest.approx(shipped, abs=1e-9), (
                benchmark,
                name,
            )
    ours = packaged["difficulty"]["gsm8k"]["routers"]["ours"]["call_saving_at_target"]
    shown = f"{100 * ours:.0f}% ({100 * ours:.0f}-{100 * ours:.0f}%)"
    assert shown in seed_spread.render(seed_spread.summarise([retrained]))


def test_product_packages_never_import_the_tooling() -> None:
    """router/, rag/ and ingest/ never import evals (benchmarks, training, the registry) at module
    level; only the CLI's bench and eval commands load it, inside the command."""
    import ast

    offenders = []
    for package in ("router", "rag", "ingest"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:  # module level only
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "evals"]
    assert offenders == []
    for path in sorted((ROOT / "router").rglob("*.py")):  # nor anything of the tooling, lazily
        if path.name != "cli.py":
            text = path.read_text(encoding="utf-8")
            assert "from evals" not in text and "import evals" not in text, path


def test_refitting_difficulty_alone_keeps_the_category_model_and_equals_a_whole_retraining(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`train --difficulty-only` keeps an artifact's category weights as stored and fits difficulty
    on the probabilities the runtime will compute from them, which a whole retraining uses too: the
    two give the same difficulty model. The command refuses an artifact of another split seed."""
    from evals.training.train import main, stored_category

    texts = [t for examples in TINY.values() for t in examples]
    labels = [label for label, examples in TINY.items() for _ in examples]
    needed = [label in ("code", "math") for label in labels]
    settings = Settings(hash_bits=10, max_iter=200)
    hard = [label in ("code", "reasoning") for label in labels]  # the frontier score's labels
    whole = train(texts, labels, texts, needed, settings, frontier_texts=texts, frontier_hard=hard)
    alone = train(
        [], [], texts, needed, settings, dict(whole.meta), None, stored_category(whole, settings), texts, hard
    )
    assert alone.diff_bias == whole.diff_bias and alone.frontier_bias == whole.frontier_bias
    assert np.array_equal(alone.frontier_from_category, whole.frontier_from_category)
    assert whole.frontier_bias != 0 and np.abs(whole.weights[:, -1]).max() > 0  # a model, not the zero column
    assert np.array_equal(alone.diff_from_category, whole.diff_from_category)
    assert np.array_equal(alone.rows, whole.rows) and np.array_equal(alone.weights, whole.weights)
    assert np.array_equal(alone.meaning, whole.meaning) and np.array_equal(alone.cat_bias, whole.cat_bias)
    # and what difficulty learnt from is what the runtime computes from the stored category weights
    from evals.training.train import as_stored, category_probabilities, feature_matrix
    from router.signals.capability.meaning import Meaning

    x = feature_matrix(texts, settings.hash_bits, Meaning.packaged())
    learnt = category_probabilities(x, *as_stored(stored_category(whole, settings), settings))
    runtime = np.array([CapabilityClassifier(whole).raw_scores(text)[0] for text in texts])
    assert np.abs(learnt - runtime).max() < 1e-3

    artifact = tmp_path / "other-seed.npz"
    save_artifact(artifact, train(texts, labels, texts, needed, settings, {"split_seed": 7}))
    before = artifact.read_bytes()
    assert main(["--difficulty-only", "--out", str(artifact)]) == 2
    assert "split seed 7" in capsys.readouterr().err and artifact.read_bytes() == before
    from evals.training.corpus import DEFAULT_SEED

    save_artifact(artifact, train(texts, labels, texts, needed, settings, {"split_seed": DEFAULT_SEED}))
    before = artifact.read_bytes()
    assert main(["--difficulty-only", "--out", str(artifact)]) == 2  # 2**10 slots, not the code's
    assert "2**10 slots" in capsys.readouterr().err and artifact.read_bytes() == before
    stale = {"split_seed": DEFAULT_SEED, "meaning_digest": "an older table"}
    wide = Settings(max_iter=50)  # the code's own hash size
    save_artifact(artifact, train(texts, labels, texts, needed, wide, stale))
    before = artifact.read_bytes()
    assert main(["--difficulty-only", "--out", str(artifact)]) == 2
    assert "another meaning table" in capsys.readouterr().err and artifact.read_bytes() == before


def test_a_failed_write_leaves_the_artifact_that_was_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [t for examples in TINY.values() for t in examples]
    labels = [label for label, examples in TINY.items() for _ in examples]
    weights = train(texts, labels, texts, [False] * len(texts), Settings(hash_bits=10, max_iter=50))
    artifact = tmp_path / "capability.npz"
    save_artifact(artifact, weights)
    before = artifact.read_bytes()

    def disk_full(handle: object, **arrays: object) -> None:
        handle.write(b"PK\x03\x04 half an archive")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", disk_full)
    with pytest.raises(OSError, match="No space"):
        save_artifact(artifact, weights)
    assert artifact.read_bytes() == before and list(tmp_path.iterdir()) == [artifact]


@pytest.mark.slow
def test_refitting_the_shipped_difficulty_alone_gives_back_the_shipped_artifact(tmp_path: Path) -> None:
    """Difficulty learns only from sources every checkout has, so `train --difficulty-only` on the
    shipped artifact gives it back on any machine with the public datasets: array for array on a CPU
    like the one it was made on, and on another (whose floating-point kernels differ, and the
    solver's path with them: 2026-12-07, an AVX-512 machine) the same categories and the same
    scores within a hundredth, read on the authored requests."""
    import json
    import shutil

    from evals.training.train import main

    _needs_public_datasets()
    artifact = tmp_path / "capability.npz"
    shutil.copyfile(DEFAULT_ARTIFACT, artifact)
    assert main(["--difficulty-only", "--out", str(artifact)]) == 0
    with np.load(DEFAULT_ARTIFACT) as shipped, np.load(artifact) as refit:
        assert sorted(shipped.files) == sorted(refit.files)
        assert np.array_equal(shipped["cat_bias"], refit["cat_bias"])
    shipped_model, refit_model = CapabilityClassifier.load(), CapabilityClassifier.load(artifact)
    rows = (Path(__file__).resolve().parents[1] / "evals" / "labels" / "authored_requests.jsonl").read_text()
    prompts = [json.loads(line)["prompt"] for line in rows.splitlines()[:1500] if line.strip()]
    before, after = map(lambda model: [model.classify(p) for p in prompts], (shipped_model, refit_model))
    assert [c.category for c in before] == [c.category for c in after]
    difficulty = np.abs(np.array([c.difficulty for c in before]) - np.array([c.difficulty for c in after]))
    frontier = np.abs(np.array([c.frontier for c in before]) - np.array([c.frontier for c in after]))
    assert difficulty.max() < 0.03 and difficulty.mean() < 0.01 and frontier.max() < 1e-3
