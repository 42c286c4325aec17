"""Eval suites: the shipped suites load, the fast suite runs end to end into a run folder, a baseline
gates regressions (exit 1, naming the metric), and a bad suite is one line naming file, line and key
(exit 2). The cheap checks run a tiny PII-only suite; the whole fast suite is marked slow."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from evals import e2e, suite
from evals.datasets import REGISTRY, local, read_jsonl
from evals.results import Better, Metric

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "evals" / "suites").glob("*.yaml"))
PII_DATASETS = "[presidio-synth-v2, presidio-templates, presidio-identities, gitleaks-rules, xstest, mt-bench, arena-hard-v2, gsm8k-test, routellm-mmlu-*]"
TINY = f"""\
version: 1
name: tiny
tasks:
  - id: pii
    task: pii
    datasets: {PII_DATASETS}
    params: {{limit: 60}}
    metrics:
      sentence.recall: {{tolerance: 0.01}}
      "span.*": {{tolerance: 2%}}
      benign.pooled.flag_rate: {{tolerance: 0.01, max: 0.5}}
"""
# Shares, rates and scores that must lie in [0, 1] (APGR, AUC and MT-Bench's quality need not).
UNIT = (
    "accuracy",
    "macro_f1",
    ".f1",
    ".f2",
    ".recall",
    ".precision",
    "flag_rate",
    "share_at_target",
    "saving_at_target",
    "recall@3",
    "mrr@3",
    "ndcg@10",
    "_share",
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def metrics_of(run: Path) -> dict[str, float]:
    record = json.loads((run / "metrics.json").read_text())
    return {name: m["value"] for name, m in record["metrics"].items()}


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_shipped_suite_loads(path: Path) -> None:
    loaded = suite.load_suite(path)
    assert loaded.suite.name == path.stem
    assert {"fast", "routing", "pii", "retrieval", "e2e"} <= {p.stem for p in SUITES}


@pytest.mark.slow
def test_fast_suite_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "fast"
    assert suite.main([str(ROOT / "evals" / "suites" / "fast.yaml"), "--out", str(run)]) == 0
    assert "e2e.sensitive_leaks" in capsys.readouterr().out
    for name in ("metrics.json", "report.md", "routing-cost_quality.png", "category-confusion.png"):
        assert (run / name).stat().st_size > 0, name
    record = json.loads((run / "metrics.json").read_text())
    assert [t["id"] for t in record["tasks"]] == ["routing", "heldout", "category", "pii", "retrieval", "e2e"]
    assert 0 <= record["metrics"]["heldout.category.accuracy"]["value"] <= 1
    assert record["started_at"].endswith("Z") and record["regressions"] == [] and record["problems"] == []
    assert all(record["datasets"][name]["sha256"] == REGISTRY[name].sha256 for name in record["datasets"])
    # an optional dataset is recorded exactly where it is here (never downloaded for the run)
    assert ("credsweeper-output" in record["datasets"]) == (local("credsweeper-output") is not None)
    values = metrics_of(run)
    assert len(values) > 100
    for name, value in values.items():
        if any(part in name for part in UNIT):
            assert 0.0 <= value <= 1.0, (name, value)
    assert values["e2e.sensitive_leaks"] == 0 and values["e2e.errors"] == 0
    assert values["e2e.queries"] == 100
    # the other authors' secret sets with passwords people chose, beside the generated fill's
    assert values["pii.secrets_leaked.fresh_k.recall"] < values["pii.secrets.fresh_k.recall"]
    assert 0.5 < values["routing.gsm8k.ours.apgr"] < 1.0
    assert values["routing.gsm8k.random.auc_cost_quality"] == pytest.approx(0.5, abs=1e-3)
    assert (
        values["routing.gsm8k.oracle.strong_share_at_target"]
        < values["routing.gsm8k.ours.strong_share_at_target"]
    )
    report = (run / "report.md").read_text()
    assert "![routing-cost_quality.png](routing-cost_quality.png)" in report and "## e2e" in report


def test_baseline_against_itself_passes_and_a_doctored_one_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite_file = write(tmp_path / "tiny.yaml", TINY)
    first = tmp_path / "first"
    assert suite.main([str(suite_file), "--out", str(first)]) == 0
    assert suite.main([str(suite_file), "--out", str(tmp_path / "again"), "--baseline", str(first)]) == 0
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["metrics"]["pii.sentence.recall"]["status"] == "ok"
    capsys.readouterr()

    record = json.loads((first / "metrics.json").read_text())
    record["metrics"]["pii.sentence.recall"]["value"] += 0.02  # better than this run by more than 0.01
    write(tmp_path / "doctored.json", json.dumps(record))
    code = suite.main(
        [str(suite_file), "--out", str(tmp_path / "third"), "--baseline", str(tmp_path / "doctored.json")]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "1 metric(s) regressed" in err and "pii.sentence.recall" in err and "below baseline" in err
    third = json.loads((tmp_path / "third" / "metrics.json").read_text())
    assert [r["metric"] for r in third["regressions"]] == ["pii.sentence.recall"]


def test_a_bound_fails_without_a_baseline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite_file = write(tmp_path / "tiny.yaml", TINY.replace("{tolerance: 0.01, max: 0.5}", "{max: -1}"))
    assert suite.main([str(suite_file), "--out", str(tmp_path / "run")]) == 1
    assert "pii.benign.pooled.flag_rate" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("params: {limit: 60}", "params: {limt: 60}", ":7: tasks.0.params.limt: unknown key"),
        (
            "params: {limit: 60}",
            "params: {limit: 2}",
            ":7: tasks.0.params.limit: Input should be greater than",
        ),
        ("task: pii", "task: pi", ":5: tasks.0.task: unknown task 'pi'"),
        (
            PII_DATASETS,
            "[presidio-synth-v2, no-such-set]",
            ":6: tasks.0.datasets.1: no registered dataset matches",
        ),
        (PII_DATASETS, "[presidio-synth-v2]", ":6: tasks.0.datasets: task pii also reads presidio-templates"),
        ("{tolerance: 0.01}", "{tolerance: lots}", ":9: tasks.0.metrics.sentence.recall.tolerance:"),
        ("{tolerance: 0.01}", "{}", ":9: tasks.0.metrics.sentence.recall: a gate needs"),
        ("name: tiny", "name: tiny\ncolour: red", ":3: colour: unknown key"),
    ],
)
def test_a_bad_suite_names_file_line_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, expected: str
) -> None:
    assert old in TINY
    suite_file = write(tmp_path / "bad.yaml", TINY.replace(old, new))
    assert suite.main([str(suite_file), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"turnout eval: {suite_file}{expected}"), err
    assert err.count("\n") == 1
    assert not (tmp_path / "run").exists()  # nothing ran


def test_a_gate_that_matches_nothing_is_a_suite_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite_file = write(tmp_path / "tiny.yaml", TINY.replace("sentence.recall:", "sentence.recal:"))
    assert suite.main([str(suite_file), "--out", str(tmp_path / "run")]) == 2
    assert f"{suite_file}:9: tasks.0.metrics.sentence.recal: matches no metric" in capsys.readouterr().err


def test_missing_files_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert suite.main([str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read suite" in capsys.readouterr().err
    suite_file = write(tmp_path / "tiny.yaml", TINY)
    assert suite.main([str(suite_file), "--baseline", str(tmp_path / "no-run")]) == 2
    assert "cannot read baseline" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    write(other / "metrics.json", json.dumps({"suite": "fast", "metrics": {}}))
    assert suite.main([str(suite_file), "--baseline", str(other)]) == 2
    assert "is a run of suite 'fast', not 'tiny'" in capsys.readouterr().err


def test_judge_directions_and_tolerances() -> None:
    gate = suite.Gate(tolerance=0.01)
    higher, lower = Metric(0.80, Better.HIGHER), Metric(0.80, Better.LOWER)
    assert suite.judge("t", "t.m", higher, gate, 0.805).status == "ok"
    assert suite.judge("t", "t.m", higher, gate, 0.82).status == "REGRESSED"
    assert suite.judge("t", "t.m", higher, gate, 0.78).status == "improved"
    assert suite.judge("t", "t.m", lower, gate, 0.78).status == "REGRESSED"
    assert suite.judge("t", "t.m", lower, gate, None).status == "new"
    relative = suite.Gate(tolerance="50%")
    assert suite.judge("t", "t.m", Metric(14.0, Better.LOWER), relative, 10.0).status == "ok"
    assert suite.judge("t", "t.m", Metric(16.0, Better.LOWER), relative, 10.0).status == "REGRESSED"
    assert suite.judge("t", "t.m", Metric(1.0, Better.LOWER), suite.Gate(max=0), None).why == "above max 0"


def test_e2e_sees_what_reached_an_external_emulator() -> None:
    """The leak check reads the emulators: a 'gateway' that forwards everything is caught."""
    import openai

    query = e2e.Query("Call Jane Roe at 555-0100 please", "presidio", True, ("Jane Roe", "555-0100"))
    with e2e.emulators() as emus:
        leaky = openai.OpenAI(
            base_url=emus["openai"].base_url, api_key="sk-eval-openai", max_retries=0, timeout=10
        )
        outcome = e2e.send(leaky, query, [emus["openai"]])
        assert outcome.status == 200 and outcome.reached_external
        assert not e2e.send(leaky, query, [emus["anthropic"]]).reached_external
        leaky.close()


def test_fresh_presidio_sentences_are_well_formed_and_scored(tmp_path, monkeypatch):
    """The held-out PII eval: fills of Presidio's templates with identities the synthetic set never
    uses (fetched from PyPI's presidio-evaluator wheel into the cache), valid checksums included."""
    import ipaddress
    import os
    import random

    from evals import pii_fresh
    from evals.datasets import DatasetError, resolve
    from router.signals.sensitivity.checksums import iban_valid, luhn_valid

    rng = random.Random(5)
    assert all(luhn_valid(pii_fresh.card_number(rng)) for _ in range(50))
    assert all(iban_valid(pii_fresh.iban(rng)) for _ in range(50))
    assert all(ipaddress.ip_address(pii_fresh.public_ip(rng)).is_global for _ in range(50))
    assert all(re.fullmatch(r"(?!000|666)\d{3}-\d{2}-\d{4}", pii_fresh.ssn(rng)) for _ in range(50))
    try:
        resolve("presidio-templates")
        resolve("presidio-identities")
    except DatasetError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))

    synthetic = json.loads(resolve("presidio-synth-v2").read_text())
    used = {word for row in synthetic for word in re.findall(r"\w+", row["full_text"].lower())}
    even, odd = pii_fresh.fresh_identities("even"), pii_fresh.fresh_identities("odd")
    assert even and odd and not {p["Number"] for p in even} & {p["Number"] for p in odd}
    assert all(not set(re.findall(r"\w+", f"{p['GivenName']} {p['Surname']}".lower())) & used for p in even)

    rows = pii_fresh.sentences(even, per_template=2, seed=3)
    assert len(rows) == 2 * len(pii_fresh.templates()) > 200
    assert not [sentence for _, sentence, _ in rows if "{{" in sentence]
    assert any(sentence == sentence.lower() for _, sentence, _ in rows)
    # the two halves of the templates are disjoint, cover them all, and are each about half
    held_out, development = pii_fresh.templates("held-out"), pii_fresh.templates("development")
    assert not set(held_out) & set(development) and len(held_out) + len(development) == len(
        pii_fresh.templates()
    )
    assert 0.35 < len(held_out) / len(pii_fresh.templates()) < 0.65
    report = pii_fresh.run("even", per_template=2, seed=3, template_half="all")
    assert report["sentences"] == len(rows) and 0.5 < report["recall"] <= 1
    headline = pii_fresh.run("even", per_template=2, seed=3)  # held-out templates by default
    assert headline["template_half"] == "held-out" and headline["sentences"] == 2 * len(held_out)
    assert set(report["by_type"]) <= set(pii_fresh.ENTITY.values())
    assert len(report["missed_examples"]) == round((1 - report["recall"]) * len(rows))


def test_auc_is_the_chance_a_positive_outranks_a_negative() -> None:
    from evals.heldout import auc

    assert auc([0.1, 0.2, 0.8, 0.9], [False, False, True, True]) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], [False, False, True, True]) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], [False, True, False, True]) == 0.5  # ties count half
    assert auc([0.3, 0.1, 0.4, 0.2], [True, False, False, True]) == 0.5
    assert auc([0.3, 0.4], [True, True]) is None  # no negative: undefined


def test_heldout_sources_are_mapped_whole_and_scored() -> None:
    """Every NI-format task gets one category (none silently dropped), and every held-out figure is
    computed on prompts no training source holds."""
    import gzip

    from evals import heldout
    from evals import heldout_category as sets
    from evals.datasets import DatasetError, resolve
    from evals.training.corpus import build_split, text_key
    from router.signals.capability.classifier import CATEGORIES

    try:
        with gzip.open(resolve("ni-advicl"), "rt") as advicl, gzip.open(resolve("ni-sample"), "rt") as sample:
            tasks = {json.loads(line)["source_task"] for line in advicl}
            tasks |= {json.loads(line)["task"] for line in sample}
    except DatasetError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))
    assert tasks == set(sets.TASK_CATEGORY) and set(sets.TASK_CATEGORY.values()) <= set(CATEGORIES)
    split = build_split()
    seen = {text_key(e.text) for e in split.train + split.test}
    assert not [p for p, _, _ in sets.category_examples() if text_key(p) in seen]
    # nor does any NI task trained on share its definition with a held-out NI-format task
    definitions = {text_key(p.split("\n\n")[0]) for p, _, _ in sets.category_examples()}
    trained_ni = [e for e in split.train + split.test if e.source == "ni-train"]
    assert not [e.text for e in trained_ni if text_key(e.text.split("\n\n")[0]) in definitions]
    from evals.training.instructions import missing

    if "ni-train-sample" not in missing():  # nor any input: no 8 words in a row in common
        held = [sets.category_examples(), sets.self_instruct_examples(), sets.wizardlm_examples()]
        scored = set().union(*(sets.word_runs(p.split("\n\n", 1)[-1]) for rows in held for p, _, _ in rows))
        assert not [r["task"] for r in read_jsonl("ni-train-sample") if sets.word_runs(r["input"]) & scored]
    labelled = sets.self_instruct_examples()  # one blind label per seed, in file order
    assert len(labelled) == 175 and {label for _, label, _ in labelled} == set(CATEGORIES)
    assert not [p for p, _, _ in labelled if text_key(p) in seen]
    families = heldout.mmlu_pro_rows()
    assert (
        set(heldout.NEW_FAMILIES) <= set(families)
        and min(len(families[f]) for f in heldout.NEW_FAMILIES) > 300
    )
    report = heldout.run()
    category = report["category"]
    assert category["ni-format"]["n"] > 700 and category["self-instruct"]["n"] == 175
    assert category["pooled"]["n"] == category["ni-format"]["n"] + 175  # the same pool on every machine
    assert sets.loose_key("As a sports commentator, describe it") == sets.loose_key(
        "as a Sports commentator describe it."
    )
    wizardlm = sets.wizardlm_examples()  # only where the mirror folder or the cache holds it
    assert not [p for p, _, _ in wizardlm if sets.loose_key(p) in {sets.loose_key(t) for t in seen}]
    if wizardlm:
        skills = {row["Skill"] for row in sets.wizardlm_rows()}
        assert skills - set(sets.WIZARDLM_SKILL) == {"Complex Format", "Multilingual", "Toxicity"}
        assert category["wizardlm"]["n"] == len(wizardlm) and report["annotated_difficulty"]["hard"] > 50
    assert all(0 <= row["accuracy"] <= 1 and 0 <= row["mean_recall"] <= 1 for row in category.values())
    # every external held-out prompt has a blind second reading, and the two readers mostly agree;
    # the held-out authors' requests are labelled by their authors only
    assert all(
        0.7 < row["second_reader"]["agreement"] < 1
        for name, row in category.items()
        if name in sets.SECOND_READ
    )
    authored = category["authored-heldout"]
    assert authored["second_reader"] is None and authored["n"] == len(sets.authored_heldout_examples()) > 900
    numbers = category["numbers-heldout"]  # the numbers brief's held-out authors: non-math all hold digits
    assert numbers["second_reader"] is None and numbers["n"] == len(sets.numbers_heldout_examples()) > 400
    outside_math = sum(sum(row.values()) for label, row in numbers["predicted_as"].items() if label != "math")
    assert numbers["digits_to_math"]["n"] == outside_math
    passages = category["passages-heldout"]  # the pasted-text brief's held-out authors
    assert passages["n"] == len(sets.passages_heldout_examples()) > 250
    assert passages["recall_by_category"].keys() == numbers["recall_by_category"].keys() == set(CATEGORIES)
    tasks = category["tasks-heldout"]  # the task-definition brief's held-out authors
    assert tasks["n"] == len(sets.tasks_heldout_examples()) > 200
    assert tasks["recall_by_category"].keys() == set(CATEGORIES)
    short = category["short-heldout"]  # the short-request brief's held-out authors
    assert short["n"] == len(sets.short_heldout_examples()) > 300
    assert short["recall_by_category"].keys() == set(CATEGORIES)
    digits = report["authored_tiers"]["digits_to_math"]
    assert 0 <= digits["share"] <= 1 and digits["n"] > 100
    listed = {key.split(":")[0] for key in sets.second_reader_labels()}
    assert listed == {"ni-format", "self-instruct", "wizardlm"}
    from evals.training.outcomes import semantic_router_demand

    trained, held = semantic_router_demand(True), semantic_router_demand(False)
    assert not (set(trained[0] + trained[1]) & set(held[0] + held[1]))  # the halves never meet
    assert len(trained[0] + held[0]) == 65 and len(trained[1] + held[1]) == 28
    split = report["complex_vs_simple"]
    assert (split["complex"], split["simple"]) == (len(held[0]), len(held[1]))
    assert 0 <= split["auc"] <= 1 and 0 <= split["complex_to_hard_route"] <= 1
    assert all(0 <= row["auc"] <= 1 and 0 <= row["ceiling_auc"] <= 1 for row in report["difficulty"].values())
    # difficulty ranks the held-out authors' hard requests over their easy ones (0.76 shipped), the
    # frontier score more so (0.98), and a group is only the categories it names (code, math and
    # reasoning are fewer than all); each author is scored alone too
    tiers = report["authored_tiers"]
    assert tiers["crowds"] == ["d5", "d6", "d11", "d12"] and tiers["trained_categories"]["auc"] > 0.75
    assert tiers["trained_categories"]["frontier_auc"] > 0.9
    assert set(tiers["by_crowd"]) == set(tiers["crowds"])
    assert sum(tiers["by_crowd"][c]["hard"] for c in tiers["crowds"]) == tiers["trained_categories"]["hard"]
    sizes = [
        tiers[g]["hard"] + tiers[g]["easy"] for g in ("all", "trained_categories", "code_math_reasoning")
    ]
    assert sizes[0] > sizes[1] > sizes[2] > 150 and 0 <= tiers["category_accuracy"] <= 1
    # the hard route's first backend is a strong one, and the general route's is too for math and
    # reasoning (gpt-4 is its cheapest backend declaring them): the strong tier's share is never less
    for group in ("all", "trained_categories", "code_math_reasoning"):
        row = tiers[group]
        assert row["hard_to_strong_backend"] >= row["hard_to_hard_route"]
        assert row["easy_to_strong_backend"] >= row["easy_to_hard_route"]
    policy = report["routellm_policy"]
    assert set(policy) == {"gsm8k", "mmlu", "mt-bench"}
    for row in policy.values():
        assert row["to_strong_backend"] >= row["to_hard_route"] and row["n"] > 30
        assert min(row["quality_by_route"], row["quality_by_backend"]) > 0
    # GSM8K is math: most of it reaches gpt-4 by the general route, not the hard one
    assert policy["gsm8k"]["to_strong_backend"] > policy["gsm8k"]["to_hard_route"] + 0.3


def test_digits_to_math_counts_requests_outside_math_that_hold_a_digit() -> None:
    from evals.heldout_category import category_scores

    examples = [
        ("Should I buy the 27-inch one?", "other", "a"),  # read as math: counts, a hit for the share
        ("Summarise: sales rose 12% in Q3.", "extraction", "a"),  # read right: counts
        ("Summarise this memo for me.", "extraction", "a"),  # no digit: left out
        ("What is 17% of 240?", "math", "a"),  # math itself: left out
    ]
    report = category_scores(examples, ["math", "extraction", "math", "math"], None)
    assert report["digits_to_math"] == {"n": 2, "share": 0.5}
    assert category_scores(examples[2:], ["math", "math"], None)["digits_to_math"] == {"n": 0, "share": 0.0}
