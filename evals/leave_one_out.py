"""Leave one source out: the capability classifier retrained without each training source of the
category corpus in turn and scored on that source, without each author of the authored requests in
turn and scored on that author's (`authored/<crowd>`), and without each RouteLLM benchmark and
scored on its held-out prompts (difficulty AUC). `python -m evals.heldout --loso` reports it beside
the held-out sets; about 30 s per retraining here, and it needs scikit-learn. Training-time only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from evals.heldout import auc
from evals.heldout_category import default_split, loose_key, word_runs
from evals.training.corpus import Example, Split
from evals.training.outcomes import Outcome
from router.signals.capability.classifier import CapabilityClassifier

FAMILY = {"code-request": "humaneval", "mmlu-open": "routellm-mmlu"}  # derived prompts go with their source


def left_out_groups(split: Split) -> list[tuple[str, list[Example], list[Example]]]:
    """(name, training prompts kept, prompts scored) for each category source left out, and for each
    author of the authored requests (`authored/<crowd>`: how the model does on one author's requests
    having read the other authors'). What leaves with a group: its prompts, any other source's
    prompt that is one of them but for punctuation and case, and, for an author, any other author's
    request that shares eight words in a row with one of them (a source's template wording is
    shared by design, so a source group does not apply that last test). A text several authors
    wrote ("hi", "capital of Australia?") counts as each one's."""
    crowds = authored_crowds()

    def of_source(source: str) -> Callable[[Example], bool]:
        return lambda e: FAMILY.get(e.source, e.source) == source

    def of_author(name: str) -> Callable[[Example], bool]:
        return lambda e: e.source == "authored" and name in crowds.get(loose_key(e.text), ())

    groups = [(s, of_source(s), False) for s in sorted({FAMILY.get(e.source, e.source) for e in split.train})]
    groups += [(f"authored/{n}", of_author(n), True) for n in sorted(set().union(*crowds.values()))]
    result = []
    for name, left_out, by_runs in groups:
        scored = [e for e in split.train + split.test if left_out(e)]
        gone = {loose_key(e.text) for e in scored}
        runs = {run for e in scored for run in word_runs(e.text)} if by_runs else set()
        kept = [
            e
            for e in split.train
            if not left_out(e)
            and loose_key(e.text) not in gone
            and not (e.source == "authored" and word_runs(e.text) & runs)
        ]
        result.append((name, kept, scored))
    return result


def leave_one_source_out() -> dict[str, Any]:
    """Retrain without each category source or author (left_out_groups; scored on it) and without
    each RouteLLM benchmark (AUC on it)."""
    from evals.training.outcomes import BENCHMARKS, split_outcomes
    from evals.training.train import BENCHMARK_WEIGHT, Settings, train

    split = default_split()
    outcomes, held_out = split_outcomes(split)
    report: dict[str, Any] = {"category": {}, "difficulty": {}}

    def fit(category: list[Any], difficulty: list[Outcome]) -> CapabilityClassifier:
        return CapabilityClassifier(
            train(
                [e.text for e in category],
                [e.label for e in category],
                [o.text for o in difficulty],
                [o.strong_needed for o in difficulty],
                Settings(),
                {},
                [BENCHMARK_WEIGHT[o.benchmark] for o in difficulty],
            )
        )

    for name, kept, scored in left_out_groups(split):
        classifier = fit(kept, outcomes)
        hits = [classifier.classify(e.text).category == e.label for e in scored]
        report["category"][name] = {"n": len(scored), "accuracy": float(np.mean(hits)) if hits else None}
    for benchmark in BENCHMARKS:
        classifier = fit(split.train, [o for o in outcomes if o.benchmark != benchmark])
        tests = held_out[benchmark]
        scores = [classifier.classify(o.text).difficulty for o in tests]
        report["difficulty"][benchmark] = {
            "n": len(tests),
            "auc": auc(scores, [o.strong_needed for o in tests]),
        }
    return report


def authored_crowds() -> dict[str, set[str]]:
    """Each authored request's loose_key → the crowds (authors) who wrote it: one, or several for a
    text more than one author wrote, in any case or punctuation."""
    from evals.training.instructions import authored_rows

    crowds: dict[str, set[str]] = defaultdict(set)
    for row in authored_rows():
        crowds[loose_key(row["prompt"])].add(row["crowd"])
    return dict(crowds)
