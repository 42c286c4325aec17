"""The task-definition and short-request briefs' requests (evals/labels/TASKS_BRIEF.md, SHORT_BRIEF.md):
written, scored, not trained on."""

from __future__ import annotations


def test_the_task_definition_briefs_authors_stay_apart_and_nothing_trains_on_them() -> None:
    """labels/TASKS_BRIEF.md's requests: six authors' written to train on, two held out, different
    people, every category 20 a author; no held-out request repeats a trained one (loosely, or by
    eight words in a row); and, its refit not adopted, none is in the category split."""
    from collections import Counter

    from evals import heldout_category as sets
    from evals.training.instructions import AUTHORED, authored_rows
    from router.signals.capability.classifier import CATEGORIES

    rows, held = authored_rows(AUTHORED.with_name("authored_tasks.jsonl")), authored_rows(sets.TASKS_HELDOUT)
    assert {r["crowd"] for r in rows} == {f"tsk{i}" for i in range(1, 7)}
    assert {r["crowd"] for r in held} == {"tsk7", "tsk8"}
    assert Counter((r["crowd"], r["category"]) for r in rows) == {
        (f"tsk{i}", category): 20 for i in range(1, 7) for category in CATEGORIES
    }
    assert {r["category"] for r in held} == set(CATEGORIES) and len(held) > 250
    runs = {run for r in rows for run in sets.word_runs(r["prompt"])}
    assert not [r for r in held if sets.word_runs(r["prompt"]) & runs]
    assert not {sets.loose_key(r["prompt"]) for r in held} & {sets.loose_key(r["prompt"]) for r in rows}
    assert not {sets.loose_key(r["prompt"]) for r in rows + held} & sets.trained_keys()


def test_the_short_request_briefs_authors_stay_apart_and_nothing_trains_on_them() -> None:
    """labels/SHORT_BRIEF.md's requests: six authors' written to train on, three held out (sht0 wrote
    without a persona), different people, each request at most twelve words before any text it
    supplies; no held-out request repeats a trained one or a corpus prompt; and, its refit not
    adopted, the batch is no training source."""
    from evals import heldout_category as sets
    from evals.training.instructions import AUTHORED, BRIEFS, authored_rows
    from router.signals.capability.classifier import CATEGORIES

    rows, held = authored_rows(AUTHORED.with_name("authored_short.jsonl")), authored_rows(sets.SHORT_HELDOUT)
    assert {r["crowd"] for r in rows} == {f"sht{i}" for i in range(1, 7)}
    assert {r["crowd"] for r in held} == {"sht0", "sht7", "sht8"}
    assert {r["category"] for r in rows} == {r["category"] for r in held} == set(CATEGORIES)
    assert len(rows) > 700 and len(held) > 300
    keys = {sets.loose_key(r["prompt"]) for r in rows}
    assert len(keys) == len(rows) and not {sets.loose_key(r["prompt"]) for r in held} & keys
    assert not {sets.loose_key(r["prompt"]) for r in rows + held} & sets.trained_keys()
    runs = {run for r in rows for run in sets.word_runs(r["prompt"])}
    assert not [r for r in held if sets.word_runs(r["prompt"]) & runs]
    # at most twelve words, but for extraction's text to work on (at most 40 more)
    assert all(len(r["prompt"].split()) <= (52 if r["category"] == "extraction" else 12) for r in rows + held)
    assert "authored-short" not in BRIEFS
