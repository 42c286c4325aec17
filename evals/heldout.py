"""What the router gets right on data it was not built from: held out by source, not by row.

Run as `python -m evals.heldout [--loso] [--json]`. Each measure is on prompts that no
training step read:

1. Difficulty on task families outside the training data: the questions MMLU-Pro's authors added
   from STEM-Ez, TheoremQA and SciBench (its MMLU-derived questions overlap the RouteLLM MMLU
   training data and are reported apart, as in-family), with the per-question outcomes they
   published for Mixtral-8x7B-Instruct (the weak model, as in RouteLLM's data) and
   Gemini-1.5-Pro-002 (the strong one: no GPT-4 file is in that snapshot). The strong model is
   needed when the weak one is wrong and the strong one right. Reported per family: the AUC of the
   difficulty score for that label (random 0.5), APGR, and the share of strong calls needed for 95%
   of the strong model's accuracy, against a random router.
2. Category on prompt sets no training step read, per source, beside a blind second reader's
   agreement with their labels (evals.heldout_category).
3. Complex analysis against simple tasks, labelled by another project: vLLM semantic-router's
   privacy-label exemplars (architecture, root cause, multi-step trade-offs vs simple_task), the
   half that no training step read (evals.training.outcomes.semantic_router_demand): AUC of
   difficulty, and where the default policy's rules send them.
4. Difficulty against the difficulty WizardLM's authors annotated (1-10): AUC of hard (7-10) over
   easy (1-4), and where the default policy sends each.
5. Difficulty on requests people sent to Chatbot Arena, Arena-Bench v1, with the grades a GPT-4 judge
   gave Mixtral's and GPT-4's answers (ARENA_BENCH): AUC of "strong needed", and where the default
   policy sends each group; where its three files are in the mirror folder or the cache.
6. Difficulty on two authors' tiered requests (evals/labels/authored_difficulty_heldout.jsonl:
   "hard" where a frontier model is worth paying for, "easy" where a small one does as well, as
   their authors judged, length kept from telling them apart): AUC of hard over easy, in every
   category and in those whose tiers train (evals.training.outcomes.TIER_CATEGORIES), where the
   default policy sends each, and the category against the one each was written for.
7. `--loso`, leave one source out (evals.leave_one_out): the classifier retrained without each
   training source, author or RouteLLM benchmark in turn and scored on it. About 30 s per
   retraining; needs scikit-learn.

This module must never feed what it scores back into training, nor copy data into the repository.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from evals.datasets import DatasetError, read_jsonl, resolve
from evals.heldout_category import (
    category_heldout,
    digits_to_math,
    loose_key,
    wizardlm_rows,
)
from evals.heldout_routes import Routed, default_decisions, routellm_policy
from evals.routing_eval import difficulty_report
from evals.training.outcomes import CHARS_PER_TOKEN, Outcome
from router.signals.capability.classifier import CATEGORIES, Capability, CapabilityClassifier

STRONG_PRO = "gemini-1.5-pro-002"
WEAK_PRO = "Mixtral-8x7B-Instruct-v0.1"
NEW_FAMILIES = ("stemez", "theoremQA", "scibench")  # MMLU-Pro's own additions; `ori_mmlu` is MMLU


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve: the chance that a positive outranks a negative (ties count half)."""
    order = np.argsort(np.asarray(scores, dtype=np.float64), kind="stable")
    ranked = np.asarray(scores, dtype=np.float64)[order]
    ranks = np.empty(len(ranked))
    start = 0
    while start < len(ranked):  # average ranks over ties
        end = start
        while end + 1 < len(ranked) and ranked[end + 1] == ranked[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    positive = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return None
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mmlu_pro_rows() -> dict[str, list[tuple[Outcome, float]]]:
    """MMLU-Pro's questions with both models' outcomes, by family (`mmlu` for the in-family ones),
    each with the share of the other 27 models that got it wrong: its difficulty as they saw it."""
    by_family: dict[str, list[tuple[Outcome, float]]] = defaultdict(list)
    for row in read_jsonl("mmlu-pro-outcomes"):
        strong, weak = row["correct"].get(STRONG_PRO), row["correct"].get(WEAK_PRO)
        if strong is None or weak is None:
            continue
        family = next((f for f in NEW_FAMILIES if row["src"].startswith(f)), "mmlu")
        tokens = len(row["prompt"]) / CHARS_PER_TOKEN
        others = [
            1 - v for k, v in row["correct"].items() if v is not None and k not in (STRONG_PRO, WEAK_PRO)
        ]
        outcome = Outcome(row["prompt"], f"mmlu-pro/{family}", float(strong), float(weak), tokens, 1.0, 1.0)
        by_family[family].append((outcome, float(np.mean(others)) if others else 0.5))
    return dict(by_family)


def difficulty_heldout(classifier: CapabilityClassifier) -> dict[str, Any]:
    """Per family, the difficulty score against "the weak model fails where the strong one
    succeeds", and the ceiling: the same AUC for the other 27 models' failure rate, i.e. for a score
    that knew each question's true difficulty (on some families that label is mostly noise)."""
    report: dict[str, Any] = {}
    families = mmlu_pro_rows()
    pooled = [row for f in NEW_FAMILIES for row in families.get(f, [])]
    for family, rows in [
        *((f, families.get(f, [])) for f in (*NEW_FAMILIES, "mmlu")),
        ("new-pooled", pooled),
    ]:
        if not rows:
            continue
        outcomes = [o for o, _ in rows]
        needed = [o.strong_needed for o in outcomes]
        scores = [classifier.classify(o.text).difficulty for o in outcomes]
        replay = difficulty_report(classifier, outcomes)
        report[family] = {
            "n": len(outcomes),
            "auc": auc(scores, needed),
            "ceiling_auc": auc([others for _, others in rows], needed),
            "strong_needed_share": replay["strong_needed_share"],
            "apgr": replay["routers"]["ours"]["apgr"],
            "strong_share_at_target": replay["routers"]["ours"]["strong_share_at_target"],
            "random_strong_share_at_target": replay["routers"]["random"]["strong_share_at_target"],
            "mean_difficulty": float(np.mean(scores)),
        }
    return report


def annotated_difficulty(classifier: CapabilityClassifier) -> dict[str, Any] | None:
    """Difficulty against the difficulty WizardLM's authors gave each of their test instructions
    (1-10): the AUC of ranking the hard ones (7-10) above the easy ones (1-4), and where the default
    policy sends each group."""
    rows = [r for r in wizardlm_rows() if r["Difficulty"] >= 7 or r["Difficulty"] <= 4]
    if not rows:
        return None
    hard = [r["Difficulty"] >= 7 for r in rows]
    return ranked_and_routed(classifier, [r["Instruction"] for r in rows], hard, ("hard", "easy"))


def ranked_and_routed(
    classifier: CapabilityClassifier, texts: list[str], positive: list[bool], names: tuple[str, str]
) -> dict[str, Any]:
    """How many texts are positive and negative (keyed by `names`), the AUC of difficulty and of the
    frontier score for `positive`, and the default policy's share of the positives sent to its hard
    route (`<positive>_to_hard_route`) and of the others to its fast one (`<negative>_to_fast_route`)
    and to its hard one (`<negative>_to_hard_route`: what the strong tier costs where it is not needed)."""
    capabilities = [classifier.classify(text) for text in texts]
    return _ranked(capabilities, default_decisions(texts, classifier), positive, names)


def _ranked(
    capabilities: Sequence[Capability],
    decisions: Sequence[Routed],
    positive: Sequence[bool],
    names: tuple[str, str],
) -> dict[str, Any]:
    """ranked_and_routed's figures from texts already classified and routed."""
    pairs = list(zip(decisions, positive, strict=True))

    def share(wanted: bool, holds: Callable[[Routed], bool]) -> float:
        return float(np.mean([holds(d) for d, p in pairs if p == wanted]))

    return {
        names[0]: sum(positive),
        names[1]: len(positive) - sum(positive),
        "auc": auc([c.difficulty for c in capabilities], positive),
        "frontier_auc": auc([c.frontier for c in capabilities], positive),
        f"{names[0]}_to_hard_route": share(True, lambda d: d.route == "hard"),
        f"{names[1]}_to_fast_route": share(False, lambda d: d.route == "fast"),
        f"{names[1]}_to_hard_route": share(False, lambda d: d.route == "hard"),
        # what the caller pays for: the first backend tried is a strong one, by whichever route (the
        # general route's cheapest backend declaring math or reasoning is gpt-4)
        f"{names[0]}_to_strong_backend": share(True, lambda d: d.strong),
        f"{names[1]}_to_strong_backend": share(False, lambda d: d.strong),
    }


# Arena-Bench v1 (lmarena/arena-hard-auto, data/arena-bench-v1): 300 requests people sent to Chatbot
# Arena, each answered by Mixtral-8x7B-Instruct and by GPT-4-1106-preview (RouteLLM's pair) and graded
# 1-10 by a GPT-4 judge against a GPT-4 reference answer: short, open-ended requests of every kind, the
# per-prompt outcomes no training source has. Held out by source, never trained on. "Strong needed"
# reads as on MT-Bench (outcomes.Outcome): GPT-4's grade at least MT_BENCH_MARGIN above Mixtral's.
ARENA_BENCH = ("arena-bench-v1", "arena-bench-v1-mixtral", "arena-bench-v1-gpt4")


def arena_bench_outcomes() -> list[Outcome]:
    """Arena-Bench v1's prompts that both models were graded on (see ARENA_BENCH), or none (said
    once per call) where its files are absent."""
    try:  # as WizardLM's set (wizardlm_rows): where fetched, never downloaded here
        for name in ARENA_BENCH:
            resolve(name, download=False)
    except DatasetError as error:
        print(f"evals.heldout: leaving out Arena-Bench v1: {error}", file=sys.stderr)
        return []
    # one of its prompts is also MT-Bench's, whose outcomes train difficulty
    mt_bench = {loose_key(turn) for row in read_jsonl("mt-bench") for turn in row["turns"]}
    questions = {
        row["question_id"]: row["turns"][0]
        for row in read_jsonl("arena-bench-v1")
        if loose_key(row["turns"][0]) not in mt_bench
    }

    def grades(name: str) -> dict[str, int]:  # null (a grade the judge gave as 7.5) and -1 left out
        return {
            r["question_id"]: r["score"]
            for r in read_jsonl(name)
            if r["score"] is not None and r["score"] >= 1
        }

    weak, strong = grades("arena-bench-v1-mixtral"), grades("arena-bench-v1-gpt4")
    return [
        Outcome(
            questions[qid],
            "arena-bench",
            float(strong[qid]),
            float(grade),
            len(questions[qid]) / CHARS_PER_TOKEN,
            0.0,
            0.0,
        )
        for qid, grade in weak.items()
        if qid in strong and qid in questions  # and not MT-Bench's, nor judged but since replaced
    ]


def arena_bench(classifier: CapabilityClassifier) -> dict[str, Any] | None:
    """Difficulty on Arena-Bench v1's graded requests (ARENA_BENCH): the AUC of ranking those that
    need the strong model above the rest, and where the default policy sends each group. None where
    the files are absent."""
    outcomes = arena_bench_outcomes()
    if not outcomes:
        return None
    needed = [o.strong_needed for o in outcomes]
    return ranked_and_routed(classifier, [o.text for o in outcomes], needed, ("needed", "not_needed"))


def complex_against_simple(classifier: CapabilityClassifier) -> dict[str, Any]:
    """vLLM semantic-router's complex-analysis exemplars (architecture, root cause, multi-step
    trade-offs) against its simple tasks, the half no training step read: whether difficulty ranks
    them apart (AUC), and where the default policy sends them (its `hard` and `fast` routes), both
    with `classifier`."""
    from evals.training.outcomes import semantic_router_demand

    hard, simple = semantic_router_demand(training=False)
    scores = [classifier.classify(text).difficulty for text in hard + simple]
    routed = default_decisions(hard + simple, classifier)
    return {
        "complex": len(hard),
        "simple": len(simple),
        "auc": auc(scores, [True] * len(hard) + [False] * len(simple)),
        "median_complex": float(np.median(scores[: len(hard)])),
        "median_simple": float(np.median(scores[len(hard) :])),
        "complex_to_hard_route": float(np.mean([r.route == "hard" for r in routed[: len(hard)]])),
        "simple_to_fast_route": float(np.mean([r.route == "fast" for r in routed[len(hard) :]])),
        "complex_to_strong_backend": float(np.mean([r.strong for r in routed[: len(hard)]])),
        "simple_to_strong_backend": float(np.mean([r.strong for r in routed[len(hard) :]])),
    }


def authored_tiers(classifier: CapabilityClassifier) -> dict[str, Any]:
    """The held-out authors' tiered requests: how difficulty ranks hard over easy and where the
    default policy sends them (`ranked_and_routed`), in all categories, in TIER_CATEGORIES and in
    the three the policy's strong tier takes, and category accuracy; and, per author, the same in
    TIER_CATEGORIES (`by_crowd`: authors added later were scored fewer times)."""
    from evals.training.outcomes import TIER_CATEGORIES, TIERS_HELD_OUT, crowd_order, tier_rows

    rows = tier_rows(TIERS_HELD_OUT)
    texts = [row["prompt"] for row in rows]
    capabilities = [classifier.classify(text) for text in texts]  # each request classified and routed once
    routed = default_decisions(texts, classifier)

    def group(categories: Sequence[str], crowd: str | None = None) -> dict[str, Any]:
        picked = [
            i for i, row in enumerate(rows) if row["category"] in categories and crowd in (None, row["crowd"])
        ]
        return _ranked(
            [capabilities[i] for i in picked],
            [routed[i] for i in picked],
            [rows[i]["tier"] == "hard" for i in picked],
            ("hard", "easy"),
        )

    crowds = crowd_order(row["crowd"] for row in rows)
    return {
        "crowds": crowds,
        "all": group(CATEGORIES),
        "trained_categories": group(TIER_CATEGORIES),
        "code_math_reasoning": group(("code", "math", "reasoning")),
        "category_accuracy": float(
            np.mean([c.category == row["category"] for c, row in zip(capabilities, rows, strict=True)])
        ),
        "digits_to_math": digits_to_math(
            [(row["prompt"], row["category"], row["crowd"]) for row in rows],
            [c.category for c in capabilities],
        ),
        "by_crowd": {crowd: group(TIER_CATEGORIES, crowd) for crowd in crowds},
    }


def run(loso: bool = False, classifier: CapabilityClassifier | None = None) -> dict[str, Any]:
    classifier = classifier or CapabilityClassifier.load()
    report = {
        "category": category_heldout(classifier),
        "difficulty": difficulty_heldout(classifier),
        "authored_tiers": authored_tiers(classifier),
        "complex_vs_simple": complex_against_simple(classifier),
        "annotated_difficulty": annotated_difficulty(classifier),
        "arena_bench": arena_bench(classifier),
        "routellm_policy": routellm_policy(classifier),
    }
    if loso:
        from evals.leave_one_out import leave_one_source_out

        report["leave_one_source_out"] = leave_one_source_out()
    return report


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.0f}%" if pct else f"{value:.3f}"


def _digits(share: dict[str, Any]) -> str:
    """What figures do to the category, for a line of the report ("" where no request has one)."""
    if not share["n"]:
        return ""
    return f"; of {share['n']} not math with a digit, {100 * share['share']:.1f}% read as math"


def render(report: dict[str, Any]) -> str:
    lines = []
    for source, category in report["category"].items():
        second = category["second_reader"]
        lines += [
            f"category on {category['n']} prompts of {category['tasks']} {source} tasks never trained on: "
            f"accuracy {category['accuracy']:.3f}, mean recall {category['mean_recall']:.3f}"
            + _digits(category["digits_to_math"])
            + (f"; a second reader agrees with the labels on {second['agreement']:.3f}, the classifier "
               f"with the second reader on {second['classifier']:.3f}" if second else ""),
            *(f"  {label:<12} recall {value:.3f}  predicted as {category['predicted_as'][label]}"
              for label, value in category["recall_by_category"].items()),
        ]  # fmt: skip
    lines += [
        f"difficulty on MMLU-Pro, {WEAK_PRO} (weak) vs {STRONG_PRO} (strong):",
        f"  {'family':<12}{'n':>6}{'AUC':>8}{'ceiling':>9}{'APGR':>8}{'strong calls for 95%':>24}{'random':>9}",
    ]  # fmt: skip
    for family, row in report["difficulty"].items():
        lines.append(
            f"  {family:<12}{row['n']:>6}{_fmt(row['auc']):>8}{_fmt(row['ceiling_auc']):>9}{_fmt(row['apgr']):>8}"
            f"{_fmt(row['strong_share_at_target'], True):>24}{_fmt(row['random_strong_share_at_target'], True):>9}"
        )
    tiers = report["authored_tiers"]
    lines.append(
        f"held-out authors' tiered requests ({', '.join(tiers['crowds'])}), category accuracy "
        f"{tiers['category_accuracy']:.3f}{_digits(tiers['digits_to_math'])}; difficulty, hard vs easy:"
    )
    groups = [(name, tiers[name]) for name in ("all", "trained_categories", "code_math_reasoning")]
    groups += [(f"{crowd}, trained categories", row) for crowd, row in tiers["by_crowd"].items()]
    for name, row in groups:
        lines.append(
            f"  {name:<28} {row['hard']:>4} hard {row['easy']:>4} easy: AUC {_fmt(row['auc'])} (frontier "
            f"{_fmt(row['frontier_auc'])}); default policy: {100 * row['hard_to_hard_route']:.0f}% of hard to the "
            f"hard route, easy {100 * row['easy_to_fast_route']:.0f}% to the fast one and "
            f"{100 * row['easy_to_hard_route']:.0f}% to the hard one; first backend GPT-4 or Claude: "
            f"{100 * row['hard_to_strong_backend']:.0f}% of hard, {100 * row['easy_to_strong_backend']:.0f}% of easy"
        )
    split = report["complex_vs_simple"]
    lines.append(
        f"complex analysis ({split['complex']}) vs simple tasks ({split['simple']}), semantic-router's held-out half: "
        f"AUC {_fmt(split['auc'])}, median difficulty {split['median_complex']:.2f} vs {split['median_simple']:.2f}; "
        f"default policy: {100 * split['complex_to_hard_route']:.0f}% of complex to the hard route, "
        f"{100 * split['simple_to_fast_route']:.0f}% of simple to the fast one; first backend GPT-4 or Claude: "
        f"{100 * split['complex_to_strong_backend']:.0f}% of complex, {100 * split['simple_to_strong_backend']:.0f}% of simple"
    )
    for benchmark, row in report["routellm_policy"].items():
        lines.append(
            f"RouteLLM's held-out {benchmark} ({row['n']}), default policy: {100 * row['to_hard_route']:.1f}% to the "
            f"hard route, {100 * row['to_strong_backend']:.1f}% first to GPT-4 or Claude; quality (GPT-4's grade "
            f"where routed strong, Mixtral's elsewhere) {row['quality_by_route']:.3f} by the hard route, "
            f"{row['quality_by_backend']:.3f} by the first backend, {row['quality_strong']:.3f} GPT-4 alone"
        )
    annotated = report.get("annotated_difficulty")
    if annotated:
        lines.append(
            f"WizardLM's annotated difficulty, hard (7-10: {annotated['hard']}) vs easy (1-4: {annotated['easy']}): "
            f"AUC {_fmt(annotated['auc'])}; default policy: {100 * annotated['hard_to_hard_route']:.0f}% of hard to "
            f"the hard route, {100 * annotated['easy_to_fast_route']:.0f}% of easy to the fast one"
        )
    arena = report.get("arena_bench")
    if arena:
        lines.append(
            f"Arena-Bench v1 (never trained on), GPT-4's grade a point above Mixtral's, strong needed ({arena['needed']}) vs not "
            f"({arena['not_needed']}): AUC {_fmt(arena['auc'])}; default policy: "
            f"{100 * arena['needed_to_hard_route']:.0f}% of needed to the hard route, "
            f"{100 * arena['not_needed_to_fast_route']:.0f}% of not needed to the fast one; first backend GPT-4 "
            f"or Claude: {100 * arena['needed_to_strong_backend']:.0f}% of needed, "
            f"{100 * arena['not_needed_to_strong_backend']:.0f}% of not needed"
        )
    loso = report.get("leave_one_source_out")
    if loso:
        lines.append("leave one source out (retrained without it, scored on it):")
        lines += [
            f"  category {s:<24} n={r['n']:<6} accuracy {_fmt(r['accuracy'])}"
            for s, r in loso["category"].items()
        ]
        lines += [
            f"  difficulty {b:<22} n={r['n']:<6} AUC {_fmt(r['auc'])}" for b, r in loso["difficulty"].items()
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.heldout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loso", action="store_true", help="also retrain leaving each source out (minutes)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.loso)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
