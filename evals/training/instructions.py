"""Requests people wrote: samples of databricks-dolly-15k, FOLIO and Super-NaturalInstructions
(`evals.training.samples` builds them), the small-talk queries of Microsoft's Personality Chat
datasets, and requests written for turnout by authors who saw only the category definitions.

Training-time only. Label mapping (source label → category):

    dolly-15k       creative_writing, brainstorming → writing; closed_qa, information_extraction,
                    summarization → extraction (they come with the passage they refer to; the
                    few without one are left out); classification → extraction with a passage,
                    other without one ("which of these is a fish?"); open_qa, general_qa → other
    folio           → reasoning: FOLIO's premises and conclusion (logic puzzles people wrote) asked as
                    a question in one of FOLIO_TEMPLATES' phrasings; held out by story
    chitchat        every query → simple_chat: greetings, goodbyes, moods, small talk and
                    questions about the assistant itself (165 queries of 101 scenarios; 12,
                    such as "Hello" and "Thank you", are CLINC's too and count there, 2 repeat)
    ni-train        each task → the category a reader gave it from its definition alone, with
                    labels/CATEGORIES.md (labels/ni_train_categories.tsv, one line per task, with
                    why); the prompt is the definition and one instance's input, as in the
                    NI-format sets evals.heldout scores; held out in distribution by the first
                    dataset the task file names as its Source. No task whose name or Source names
                    a dataset those held-out sets draw on may be trained on (NI_HELD_OUT_DATASETS)

    authored        each request → the category its author wrote it for (labels/authored_requests.jsonl:
                    thirty-four authors, one crowd each, 25 requests per category; committed, not
                    optional; twelve more authors' requests, labels/authored_heldout.jsonl, are never
                    trained on: evals.heldout scores them)
    authored-numbers
                    the same, from a brief about numbers (labels/NUMBERS_BRIEF.md): twelve authors,
                    20 requests a category, every one but half the math carrying figures in digits
                    that do not make it math (labels/authored_numbers.jsonl; four more authors' are
                    held out, labels/authored_numbers_heldout.jsonl)
    authored-passages
                    the same, from a brief about pasted text (labels/PASSAGES_BRIEF.md): six authors,
                    each request a text and an ask about it, 40 extraction and 20 of every other
                    category (labels/authored_passages.jsonl; two more authors' are held out,
                    labels/authored_passages_heldout.jsonl)

                    Both were added to a shipped category model by an anchored refit
                    (evals.training.anchored), not by a whole retraining

The first four are optional: on a machine whose mirror folder and cache lack them, training goes on
without them and says so, `missing()` names them (the reproduction test skips on that), and
`python -m evals.training.train` will not overwrite a shipped artifact that was trained with them.
"""

from __future__ import annotations

import functools
import json
import sys
import zlib
from pathlib import Path
from typing import Any

from evals.datasets import REGISTRY, read_jsonl, resolve
from router import datafiles

from .corpus import TEST_FRACTION, Example, cut_passage, text_key, unit_hash

OPTIONAL = ("dolly-15k-sample", "folio-sample", "personality-chat", "ni-train-sample")
NI_LABELS = Path(__file__).resolve().parents[1] / "labels" / "ni_train_categories.tsv"
NI_PROMPT_CHARS = 2000  # as the NI-format sets cut theirs
# The datasets behind the NI-format tasks evals.heldout scores, and what was built from them
# (BIG-Bench and its Hard subset, XSum, Yelp, COPA and COD3S, which reuses COPA's premises; WebNLG, E2E
# and DART, which is made of both; StrategyQA, SVAMP and the ASDiv/MAWPS problems SVAMP was made
# from; AG News, JFLEG, WinoWhy/WSC; the NI sample's list, arithmetic and paraphrase tasks, which NI's
# authors wrote: its "synthetic" and "miscellaneous" sources), the sources already trained on, and
# the benchmarks kept for judging the router from outside (ARC, WinoGrande, MBPP: the shared data's
# curator asks that no extension take them): a task whose name or Source field holds one of these
# is never trained on, so those sets stay held out by source dataset.
NI_HELD_OUT_DATASETS = (
    "bbh", "bigbench", "big_bench", "xsum", "yelp", "copa", "cod3s", "web_nlg", "webnlg", "e2e", "dart",
    "strategyqa", "svamp", "asdiv", "mawps", "agnews", "ag_news", "jfleg", "_elements", "unnatural",
    "addsub", "synthetic", "miscellaneous", "wsc", "winograd", "winowhy", "task648_", "task1393_",
    "gsm8k", "mmlu", "humaneval", "clinc", "mt_bench", "dolly", "folio", "self_instruct", "alpaca",
    "winogrande", "mbpp", "ai2_arc", "_arc_",
)  # fmt: skip
# Source names too short to look for inside other words ("arc" is in "sarcasm"): matched whole.
NI_HELD_OUT_SOURCES = ("arc",)
DOLLY = {
    "creative_writing": "writing",
    "brainstorming": "writing",
    "closed_qa": "extraction",
    "information_extraction": "extraction",
    "summarization": "extraction",
    "open_qa": "other",
    "general_qa": "other",
}


def missing() -> list[str]:
    """The optional sources that neither the mirror folder nor the cache holds."""
    return [name for name in OPTIONAL if datafiles.find(REGISTRY[name].local_path) is None]


@functools.cache
def _path(name: str) -> Path | None:
    """The source's checked file, or None (said once) where it is absent; a file that is there but
    is not the registered one is an error, never a silent change of the training data."""
    if name in missing():
        print(f"training without '{name}': not in the mirror folder or the cache", file=sys.stderr)
        return None
    return resolve(name, download=False)


def dolly_example(row: dict[str, str]) -> Example | None:
    """One dolly record as a prompt (instruction, then its passage) with its category, or None for
    a passage task that came without its passage."""
    context = cut_passage(row["context"])
    if row["category"] == "classification":
        label = "extraction" if context else "other"
    else:
        label = DOLLY[row["category"]]
        if label == "extraction" and not context:
            return None
    return Example(row["instruction"].strip() + (f"\n\n{context}" if context else ""), label, "dolly-15k")


def dolly_examples() -> list[Example]:
    rows = read_jsonl("dolly-15k-sample") if _path("dolly-15k-sample") else []
    return [example for example in map(dolly_example, rows) if example]


FOLIO_TEMPLATES = (
    "{premises}\n\nBased on the statements above, is the following true, false, or uncertain? {conclusion}",
    "Given these premises:\n{premises}\nDoes it follow that {conclusion} Answer True, False or Uncertain.",
    "Premises: {premises}\nConclusion: {conclusion}\nIs the conclusion true, false or unknown?",
    "Assume the following. {premises} Can we conclude that {conclusion}",
)


def folio_example(row: dict[str, Any], seed: int) -> Example:
    """FOLIO's premises and conclusion as a question, in the phrasing the conclusion's crc32 picks;
    held out by story (its premises), so that no held-out puzzle shares its premises with a trained
    one."""
    premises = " ".join(p.strip() for p in row["premises"])
    conclusion = row["conclusion"].strip()
    template = FOLIO_TEMPLATES[zlib.crc32(conclusion.encode()) % len(FOLIO_TEMPLATES)]
    held_out = unit_hash(text_key(premises), seed) < TEST_FRACTION
    return Example(template.format(premises=premises, conclusion=conclusion), "reasoning", "folio", held_out)


def folio_examples(seed: int) -> list[Example]:
    rows = read_jsonl("folio-sample") if _path("folio-sample") else []
    return [folio_example(row, seed) for row in rows]


def chitchat_queries(table: str) -> list[Example]:
    """Personality Chat's QnA Maker file: a header, then Question, Answer, Metadata per line."""
    queries = [line.split("\t")[0].strip() for line in table.splitlines()[1:]]
    return [Example(query, "simple_chat", "chitchat") for query in queries if query]


def chitchat_examples() -> list[Example]:
    path = _path("personality-chat")
    return chitchat_queries(path.read_text(encoding="utf-8")) if path else []


@functools.cache
def _ni_lines() -> tuple[tuple[str, ...], ...]:
    """labels/ni_train_categories.tsv, read once: task, category, commit, instance ids
    (comma-separated), the task file's Source datasets (semicolon-separated), why."""
    lines = NI_LABELS.read_text(encoding="utf-8").splitlines()[1:]
    return tuple(tuple(line.split("\t")) for line in lines if line.strip())


@functools.cache
def ni_labels() -> dict[str, str]:
    """Task name → category."""
    return {fields[0]: fields[1] for fields in _ni_lines()}


def ni_selection() -> list[tuple[str, str, list[str]]]:
    """(task, commit it was read at, ids of the instances kept), as the sample was built."""
    return [(fields[0], fields[2], fields[3].split(",")) for fields in _ni_lines()]


@functools.cache
def ni_sources() -> dict[str, tuple[str, ...]]:
    """Task name → the datasets its file names as its Source."""
    return {fields[0]: tuple(fields[4].split(";")) for fields in _ni_lines()}


def ni_excluded(task: str, sources: tuple[str, ...] = ()) -> bool:
    """Whether the task's name or one of its Source datasets is one NI_HELD_OUT_DATASETS names (or
    NI_HELD_OUT_SOURCES, whole)."""
    return any(name in part.lower() for part in (task, *sources) for name in NI_HELD_OUT_DATASETS) or any(
        source.lower() in NI_HELD_OUT_SOURCES for source in sources
    )


def ni_example(row: dict[str, Any], seed: int) -> Example:
    """A row as a prompt under its task's label; held out in distribution with every task whose
    Source names the same dataset first, so that no held-out prompt's dataset was trained on."""
    labels, sources = ni_labels(), ni_sources()
    if ni_excluded(row["task"], sources.get(row["task"], ())):
        raise ValueError(f"{row['task']} draws on a held-out dataset and must not be trained on")
    if row["task"] not in labels:
        raise ValueError(f"{NI_LABELS} has no category for {row['task']}")
    prompt = (row["definition"].strip() + "\n\n" + row["input"].strip())[:NI_PROMPT_CHARS]
    held_out = unit_hash(sources[row["task"]][0] or row["task"], seed) < TEST_FRACTION
    return Example(prompt, labels[row["task"]], "ni-train", held_out)


def ni_examples(seed: int) -> list[Example]:
    rows = read_jsonl("ni-train-sample") if _path("ni-train-sample") else []
    return [ni_example(row, seed) for row in rows]


AUTHORED = Path(__file__).resolve().parents[1] / "labels" / "authored_requests.jsonl"
# the requests written from a brief of their own, each a source of its own (so that a refit can add
# it, `train --refit-category`, and the split of the first authors' requests stays as it was)
BRIEFS = {
    "authored-numbers": AUTHORED.with_name("authored_numbers.jsonl"),
    "authored-passages": AUTHORED.with_name("authored_passages.jsonl"),
}


def authored_examples() -> list[Example]:
    """Requests written for turnout, each with its category, by authors who read only
    labels/CATEGORIES.md and a crowd to write for (never an evaluation set, the classifier or this
    repository): labels/authored_requests.jsonl, one {"category", "prompt", "crowd"} per line. The
    file is part of the repository: without it training stops rather than go on without it."""
    return [Example(row["prompt"], row["category"], "authored") for row in authored_rows()]


def brief_examples() -> list[Example]:
    """The trained requests of each brief (BRIEFS), as authored_examples, each under its source."""
    return [
        Example(row["prompt"], row["category"], source)
        for source, path in BRIEFS.items()
        for row in authored_rows(path)
    ]


def authored_rows(path: Path = AUTHORED) -> list[dict[str, str]]:
    """The rows of an authored-requests file, one JSON object a line: {"category", "prompt",
    "crowd"} (this one, or the held-out authors' that evals.heldout_category scores), and
    "tier" besides in the tiered requests' (evals.training.outcomes.tier_rows)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
