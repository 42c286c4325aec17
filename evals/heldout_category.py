"""Category on prompt sets no training step read, per source (evals.heldout runs it).

Super-NaturalInstructions-format tasks (ni-advicl, 35 tasks, and the 5-task NI sample), each task
mapped once to a category by what it asks (TASK_CATEGORY, written from the task definitions, never
from the classifier's answers); self-instruct's 175 hand-written seed tasks (the Alpaca seeds), each
labelled by a reader who saw only the prompt and the category definitions, never the classifier
(labels/self_instruct_categories.tsv, one line per seed in file order; the definitions are
labels/CATEGORIES.md); and the instructions WizardLM's authors collected from users for their test
set, each skill mapped once (WIZARDLM_SKILL), where the mirror folder or cache holds it. Beside each
accuracy: how often a blind second reader agrees with those labels (labels/second_reader_categories.tsv).
And the requests twelve more authors wrote for turnout exactly as the trained authored ones were
written (labels/authored_heldout.jsonl, each labelled by its author), kept out of training: how the
model does on an author it never read, beside the external sets (a second reader labelled 210 of
each batch's requests, labels/authored_heldout_second_reader.tsv; the report has no second-reader
column for it).

This module must never feed what it scores back into training, nor copy data into the repository.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evals.datasets import DatasetError, read_jsonl, resolve
from router.signals.capability.classifier import CATEGORIES, CapabilityClassifier

if TYPE_CHECKING:
    from evals.training.corpus import Split

Example = tuple[str, str, str]  # (prompt, category, task or skill)

# One category per task, from its definition (what a user of the gateway would call that request).
# Summaries and classifications of a given passage are `extraction`: the answer is read out of the
# text supplied; puzzles and logic are `reasoning`; arithmetic and counting `math`.
TASK_CATEGORY = {
    "task1290_xsum_summarization": "extraction",
    "task1292_yelp_review_full_text_categorization": "extraction",
    "task1393_superglue_copa_text_completion": "reasoning",
    "task1728_web_nlg_data_to_text": "writing",
    "task957_e2e_nlg_text_generation_generate": "writing",
    "task648_answer_generation": "reasoning",
    "task1732_bbh_boolean_expressions": "reasoning",
    "task1733_bbh_causal_judgement": "reasoning",
    "task1734_bbh_date_understanding": "reasoning",
    "task1735_bbh_disambiguation_qa": "reasoning",
    "task1736_bbh_dyck_languages": "reasoning",
    "task1737_bbh_formal_fallacies": "reasoning",
    "task1738_bbh_geometric_shapes": "reasoning",
    "task1739_bbh_hyperbaton": "other",
    "task1740_bbh_logical_deduction_five_objects": "reasoning",
    "task1741_bbh_logical_deduction_seven_objects": "reasoning",
    "task1742_bbh_logical_deduction_three_objects": "reasoning",
    "task1743_bbh_movie_recommendation": "other",
    "task1744_bbh_multistep_arithmetic_two": "math",
    "task1745_bbh_navigate": "reasoning",
    "task1746_bbh_object_counting": "math",
    "task1747_bbh_penguins_in_a_table": "reasoning",
    "task1748_bbh_reasoning_about_colored_objects": "reasoning",
    "task1749_bbh_ruin_names": "other",
    "task1750_bbh_salient_translation_error_detection": "other",
    "task1752_bbh_sports_understanding": "reasoning",
    "task1753_bbh_temporal_sequences": "reasoning",
    "task1754_bbh_tracking_shuffled_objects_five_objects": "reasoning",
    "task1755_bbh_tracking_shuffled_objects_seven_objects": "reasoning",
    "task1756_bbh_tracking_shuffled_objects_three_objects": "reasoning",
    "task1757_bbh_web_of_lies": "reasoning",
    "task1758_bbh_word_sorting": "other",
    "task1760_strategyqa": "reasoning",
    "task1761_svamp": "math",
    "task1762_bbh_snarks": "other",
    # the NI sample
    "task379_agnews_topic_classification": "extraction",
    "task1557_jfleg_answer_generation": "writing",
    "task063_first_i_elements": "code",
    "task045_miscellaneous_sentence_paraphrasing": "writing",
    "task085_unnatural_addsub_arithmetic": "math",
}


SELF_INSTRUCT_LABELS = Path(__file__).resolve().parent / "labels" / "self_instruct_categories.tsv"
# A second reader's categories for the same prompts, given blind (the prompt and CATEGORIES.md only,
# neither the first labels nor the classifier): how far two readers agree is a reference point for
# what a classifier can be expected to score against one of them. Keyed `source:task` for the NI-format tasks (one label per task) and
# `source:` + the first 12 hex of the prompt's sha1 for the others.
SECOND_READER = Path(__file__).resolve().parent / "labels" / "second_reader_categories.tsv"


def category_examples() -> list[Example]:
    """(prompt, category, task) of every NI-format prompt whose task TASK_CATEGORY maps."""
    rows = [(r["prompt"], r["source_task"]) for r in read_jsonl("ni-advicl")]
    rows += [(r["prompt"], r["task"]) for r in read_jsonl("ni-sample")]
    return [(prompt, TASK_CATEGORY[task], task) for prompt, task in rows if task in TASK_CATEGORY]


def self_instruct_examples() -> list[Example]:
    """(prompt, category, seed task) of the self-instruct seeds, labelled line by line in file order."""
    rows = read_jsonl("self-instruct-seeds")
    lines = SELF_INSTRUCT_LABELS.read_text(encoding="utf-8").splitlines()[1:]
    labels = [line.split("\t") for line in lines if line.strip()]
    if [task for task, _ in labels] != [row["source_task"] for row in rows]:
        raise ValueError(f"{SELF_INSTRUCT_LABELS} does not label the seeds one by one in file order")
    return [(row["prompt"], label, task) for row, (task, label) in zip(rows, labels, strict=True)]


# WizardLM's test set: 218 instructions its authors collected from real users, each with a skill and
# an annotated difficulty (1-10). Each skill mapped once by what it names; three skills say nothing
# about the kind of work (Complex Format, Multilingual, Toxicity) and are left out.
WIZARDLM_SKILL = {
    "Math": "math",
    "Code Generation": "code",
    "Code Debug": "code",
    "Computer Science": "code",
    "Writting": "writing",
    "Academic Writing": "writing",
    "Roleplay": "writing",
    "Reasoning": "reasoning",
    "Common-Sense": "reasoning",
    "Counterfactual": "reasoning",
    **dict.fromkeys(
        ("Biology", "Physics", "Chemistry", "History", "Law", "Medicine", "Economy", "Philosophy",
         "Literature", "Art", "Music", "Sport", "Entertainment", "Technology", "Ethics", "TruthfulQA"),
        "other",
    ),
}  # fmt: skip


@functools.cache
def wizardlm_rows() -> list[dict[str, Any]]:
    """The WizardLM test set, or nothing (said once) where neither the mirror folder nor the cache
    holds it (`python -m evals.datasets fetch wizardlm-testset`); never downloaded here."""
    try:
        resolve("wizardlm-testset", download=False)
    except DatasetError as error:
        print(f"evals.heldout: leaving out WizardLM's test set: {error}", file=sys.stderr)
        return []
    return read_jsonl("wizardlm-testset")


def loose_key(text: str) -> str:
    """Letters and digits only, lower case: a prompt that differs from another only in punctuation
    or spacing ("... championship game" against "... championship game.") is the same prompt."""
    return "".join(c for c in text.casefold() if c.isalnum())


@functools.cache
def default_split() -> Split:
    """The category split at the shipped seed, built once per process (it reads every training
    source): held-out sets are checked against it, and leave-one-source-out retrains from it."""
    from evals.training.corpus import DEFAULT_SEED, build_split

    return build_split(DEFAULT_SEED)


@functools.cache
def trained_keys() -> frozenset[str]:
    """loose_key of every prompt of the category split (training and test side, derived prompts too)."""
    split = default_split()
    return frozenset(loose_key(e.text) for e in split.train + split.test)


def wizardlm_examples() -> list[Example]:
    """(prompt, category, skill); the instructions it shares with a training source (two of
    Vicuna-bench's questions) are left out."""
    rows = [row for row in wizardlm_rows() if row["Skill"] in WIZARDLM_SKILL]
    seen = trained_keys() if rows else frozenset()
    return [
        (row["Instruction"], WIZARDLM_SKILL[row["Skill"]], row["Skill"])
        for row in rows
        if loose_key(row["Instruction"]) not in seen
    ]


AUTHORED_HELDOUT = Path(__file__).resolve().parent / "labels" / "authored_heldout.jsonl"
# a blind second reader's labels of 210 of each batch (sha1 of the prompt, first 12 hex digits;
# category): it agrees with the authors on 411 of the 415 texts, so these labels are far less disputed
# than the external sets'
AUTHORED_SECOND_READER = Path(__file__).resolve().parent / "labels" / "authored_heldout_second_reader.tsv"


def word_runs(text: str, length: int = 8) -> set[str]:
    """Every run of `length` words (letters and digits, lower case) in the text."""
    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i : i + length]) for i in range(len(words) - length + 1)}


@functools.cache
def trained_word_runs() -> frozenset[str]:
    """word_runs of every prompt of the category split (training and test side)."""
    split = default_split()
    return frozenset(run for e in split.train + split.test for run in word_runs(e.text))


def authored_heldout_examples(path: Path = AUTHORED_HELDOUT) -> list[Example]:
    """The held-out authors' requests: (prompt, the category its author wrote it for, author); those
    a training source also holds ("hi", "tell me a joke") or nearly ("Can you read PDFs if I upload
    them, or only text?": eight words in a row in common) are left out."""
    from evals.training.instructions import authored_rows

    rows = authored_rows(path)
    seen, runs = trained_keys(), trained_word_runs()
    return [
        (row["prompt"], row["category"], f"author {row['crowd']}")
        for row in rows
        if loose_key(row["prompt"]) not in seen and not word_runs(row["prompt"]) & runs
    ]


# four authors of the numbers brief (labels/NUMBERS_BRIEF.md) held out: requests full of figures that
# are not math, and math without them; the others' train (labels/authored_numbers.jsonl); and two of
# the pasted-text brief (labels/PASSAGES_BRIEF.md): a text and an ask about it
NUMBERS_HELDOUT = AUTHORED_HELDOUT.with_name("authored_numbers_heldout.jsonl")
PASSAGES_HELDOUT = AUTHORED_HELDOUT.with_name("authored_passages_heldout.jsonl")
# each brief's trained source (evals.training.instructions.BRIEFS) → its held-out authors' file
BRIEFS_HELDOUT = {"authored-numbers": NUMBERS_HELDOUT, "authored-passages": PASSAGES_HELDOUT}
# two authors of the task-definition brief (labels/TASKS_BRIEF.md): the task defined in general terms,
# then the input. Its six other authors' requests (labels/authored_tasks.jsonl) were written to train
# on; a refit with them failed the rule fixed for it (README), so nothing trains on them yet
TASKS_HELDOUT = AUTHORED_HELDOUT.with_name("authored_tasks_heldout.jsonl")
# three authors of the short-request brief (labels/SHORT_BRIEF.md): what people type in a few seconds,
# at most twelve words (thirty-third session). Its six other authors' requests
# (labels/authored_short.jsonl) were written to train on; a refit with them failed the rule fixed for
# it (README), so nothing trains on them
SHORT_HELDOUT = AUTHORED_HELDOUT.with_name("authored_short_heldout.jsonl")


def numbers_heldout_examples() -> list[Example]:
    return authored_heldout_examples(NUMBERS_HELDOUT)


def passages_heldout_examples() -> list[Example]:
    return authored_heldout_examples(PASSAGES_HELDOUT)


def tasks_heldout_examples() -> list[Example]:
    return authored_heldout_examples(TASKS_HELDOUT)


def short_heldout_examples() -> list[Example]:
    return authored_heldout_examples(SHORT_HELDOUT)


CATEGORY_SOURCES = {
    "ni-format": category_examples,
    "self-instruct": self_instruct_examples,
    "wizardlm": wizardlm_examples,
    "authored-heldout": authored_heldout_examples,
    "numbers-heldout": numbers_heldout_examples,
    "passages-heldout": passages_heldout_examples,
    "tasks-heldout": tasks_heldout_examples,
    "short-heldout": short_heldout_examples,
}
# the sets a blind second reader labelled too (labels/second_reader_categories.tsv)
SECOND_READ = ("ni-format", "self-instruct", "wizardlm")
# `pooled` is over the sources every checkout has (../shared/data), so that it means the same on
# every machine; WizardLM's set, where present, is reported beside it.
POOLED = ("ni-format", "self-instruct")


@functools.cache
def second_reader_labels() -> dict[str, str]:
    lines = SECOND_READER.read_text(encoding="utf-8").splitlines()[1:]
    table = dict(line.split("\t") for line in lines if line.strip())
    unknown = set(table.values()) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"{SECOND_READER}: not a category: {sorted(unknown)}")
    return table


def second_reader_key(source: str, example: Example) -> str:
    prompt, _label, task = example
    if source == "ni-format":
        return f"{source}:{task}"
    return f"{source}:{hashlib.sha1(prompt.encode('utf-8')).hexdigest()[:12]}"


def second_reader(source: str, examples: list[Example]) -> list[str] | None:
    """The second reader's label of each example, or None for a set it did not read."""
    if source not in SECOND_READ:
        return None
    table = second_reader_labels()
    return [table[second_reader_key(source, example)] for example in examples]


def category_heldout(classifier: CapabilityClassifier) -> dict[str, Any]:
    """Per held-out source, and `pooled` over POOLED; each prompt is classified once."""
    parts: dict[str, tuple[list[Example], list[str], list[str] | None]] = {}
    for name, read in CATEGORY_SOURCES.items():
        examples = read()
        if examples:
            guesses = [classifier.classify(prompt).category for prompt, _, _ in examples]
            parts[name] = (examples, guesses, second_reader(name, examples))
    report = {name: category_scores(*part) for name, part in parts.items()}
    pooled = [parts[name] for name in POOLED if name in parts]
    report["pooled"] = category_scores(
        [example for part in pooled for example in part[0]],
        [guess for part in pooled for guess in part[1]],
        [label for part in pooled for label in part[2] or ()],
    )
    return report


_DIGIT = re.compile(r"\d")


def digits_to_math(examples: list[Example], predicted: list[str]) -> dict[str, Any]:
    """What figures do to the category: of the requests labelled other than math that hold a digit,
    how many (`n`) and the share read as math."""
    read_as_math = [
        guess == "math"
        for (prompt, label, _), guess in zip(examples, predicted, strict=True)
        if label != "math" and _DIGIT.search(prompt)
    ]
    return {"n": len(read_as_math), "share": float(np.mean(read_as_math)) if read_as_math else 0.0}


def category_scores(
    examples: list[Example], predicted: list[str], second: list[str] | None
) -> dict[str, Any]:
    """Accuracy, recall and confusion per category; and the second reader's agreement with the
    labels (`agreement`) and the classifier's accuracy against the second reader (`classifier`),
    None for a set the second reader did not read."""
    by_label: dict[str, list[int]] = defaultdict(list)
    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for (_, label, _), guess in zip(examples, predicted, strict=True):
        by_label[label].append(int(guess == label))
        confusion[label][guess] += 1
    hits = [hit for values in by_label.values() for hit in values]
    return {
        "n": len(examples),
        "tasks": len({task for _, _, task in examples}),
        "accuracy": float(np.mean(hits)) if hits else 0.0,
        "recall_by_category": {label: float(np.mean(v)) for label, v in sorted(by_label.items())},
        "mean_recall": float(np.mean([np.mean(v) for v in by_label.values()])) if by_label else 0.0,
        "predicted_as": {label: dict(confusion[label].most_common()) for label in sorted(confusion)},
        "digits_to_math": digits_to_math(examples, predicted),
        "second_reader": None
        if second is None
        else {
            "agreement": float(
                np.mean([s == label for s, (_, label, _) in zip(second, examples, strict=True)])
            ),
            "classifier": float(np.mean([s == g for s, g in zip(second, predicted, strict=True)])),
        },
    }
