"""The labelled prompts the category model learns from, and the one held-out split every step shares.

Training-time only (the runtime classifier must never import this): it reads public files through
the dataset registry (`evals.datasets.resolve`), maps each source's labels onto CATEGORIES with the
tables below, and decides once, from a seeded crc32 of each prompt's normalised text, which prompts
are held out. `evals.training.train` and `evals.routing_eval` both call `build_split`, so the test
prompts can never differ between them, and a prompt held out for the category is also held out for
difficulty. This module must never copy data into the repository or fetch anything itself.

Label mapping (source label → category):

    mt-bench        writing, roleplay → writing; reasoning → reasoning; math → math; coding → code;
                    extraction → extraction; stem, humanities → other
    vicuna-bench    generic → simple_chat; knowledge → other; roleplay, writing → writing;
                    common-sense, fermi, counterfactual → reasoning; coding → code; math → math
    arena-hard-v2   coding → code; math → math; creative_writing → writing
    gsm8k-test      → math;  humaneval → code
    clinc150        every in-scope intent → simple_chat; out-of-scope → simple_chat too: they are
                    short everyday requests a small model answers as well, only outside CLINC's
                    150 intents ("how much is an overdraft fee")
    routellm-mmlu   MMLU_CATEGORY below (math subjects → math, computer science → code, logic →
                    reasoning, every other subject → other)
    semantic-router math → math; computer science → code; the other 12 domains → other
    synthetic       extraction instructions (EXTRACTION_TEMPLATES) wrapped around the
                    presidio-synth-v2 sentences, because MT-Bench's 10 prompts are the only public
                    extraction examples in the registry; test prompts use templates training never saw
    code-request    → code: each HumanEval task's docstring restated as a chat request in one of
                    several languages (CODE_TEMPLATES), because the registry's code prompts are
                    either bare Python stubs or long Arena threads and almost never a short "write me
                    a function"; a request is held out exactly when its HumanEval task is, and the
                    held-out ones use templates training never saw
    passage-task    → extraction: Anthropic documentation passages under summary, topic, tone and
                    answer-from-the-text instructions (PASSAGE_TEMPLATES), and CLINC utterances
                    under labelling instructions (LABEL_TEMPLATES): what a pasted passage with a
                    task looks like, numbers and code included; held-out prompts use templates
                    training never saw
    writing-request → writing: compositions on an MMLU subject (TOPIC_TEMPLATES, brainstormed
                    lists included) and rewrites of a documentation passage
                    (REWRITE_TEMPLATES); held-out prompts use each list's last three phrasings
    mmlu-open       MMLU questions that stand alone without their choices, asked as open
                    questions (same label as their subject), so that the topic words and not the
                    multiple-choice layout carry the category; held out exactly when the original is
    dolly-15k,      requests people wrote, sampled from their sources, Super-
    folio, chitchat NaturalInstructions tasks, and requests written for turnout: see
    ni-train,       evals.training.instructions
    authored,
    authored-numbers,
    authored-passages
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from evals.datasets import names, read_jsonl, resolve
from router.signals.capability.classifier import CATEGORIES

TEST_FRACTION = 0.2
# MT-Bench has 80 prompts: a 20% split would leave ~13 after decontamination, too few to read.
TEST_FRACTION_BY_SOURCE = {"mt-bench": 0.5}
DEFAULT_SEED = 20240601
# Caps keep the large sources from drowning the small classes (applied after the split, per part).
DEFAULT_CAP = 600
# The requests written for turnout are balanced by construction (25 of each category per author): a
# cap would only drop a hashed sample of them, so theirs is above what they wrote (850 a category).
CAP_BY_STRATUM = {
    "clinc150/simple_chat": 1200,
    "routellm-mmlu/other": 1200,
    **{f"authored/{category}": 1200 for category in CATEGORIES},
}

MT_BENCH = {
    "writing": "writing",
    "roleplay": "writing",
    "reasoning": "reasoning",
    "math": "math",
    "coding": "code",
    "extraction": "extraction",
    "stem": "other",
    "humanities": "other",
}
VICUNA = {
    "generic": "simple_chat",
    "knowledge": "other",
    "roleplay": "writing",
    "writing": "writing",
    "common-sense": "reasoning",
    "fermi": "reasoning",
    "counterfactual": "reasoning",
    "coding": "code",
    "math": "math",
}
ARENA = {"coding": "code", "math": "math", "creative_writing": "writing"}
MMLU_CATEGORY = {
    "abstract_algebra": "math",
    "college_mathematics": "math",
    "elementary_mathematics": "math",
    "high_school_mathematics": "math",
    "high_school_statistics": "math",
    "college_computer_science": "code",
    "high_school_computer_science": "code",
    "machine_learning": "code",
    "computer_security": "code",
    "formal_logic": "reasoning",
    "logical_fallacies": "reasoning",
}  # every other subject → "other"
SEMANTIC_ROUTER = {"math": "math", "computer science": "code"}  # every other domain → "other"

EXTRACTION_TEMPLATES = (
    "Extract every {types} mentioned in the text below and return them as a JSON object.\n\n{text}",
    "Identify the {types} in the following passage. List each one on its own line.\n{text}",
    "From the records below, pull out all {types}. Output a table with one row per entity.\n{text}",
    "Read the following text and list the {types} it contains, in the order they appear:\n{text}",
    "Parse this text and return a JSON array of the {types} found in it.\n```\n{text}\n```",
    "Find the {types} in the sentences below and output them as CSV with columns type,value.\n{text}",
    "Given the following notes, extract the {types}. Respond with the extracted values only.\n{text}",
    "Which {types} appear in the following passage? Return a JSON dictionary keyed by type.\n{text}",
    # Held out: the test split only uses these phrasings.
    "Pull the {types} out of this message and format them as a bulleted list.\n{text}",
    "Scan the text below for any {types} and give me a structured summary of what you find.\n\n{text}",
    "Extract the following fields from the text: {types}. Output YAML.\n{text}",
)
# Tasks on a passage the user pasted: summaries, classifications, questions answered from the text.
# The passages are the Anthropic documentation chunks (real prose with numbers, names and code) and,
# for the labelling templates, CLINC's short utterances.
PASSAGE_TEMPLATES = (
    "Summarize the following text in three sentences.\n\n{text}",
    "{text}\n\nWhat is the main point of the passage above?",
    "Give me the key takeaways from this article as bullet points:\n{text}",
    "Read the passage and answer: what does it say about {topic}?\n\n{text}",
    "Classify the topic of the following text. Answer with a single label.\n{text}",
    "{text}\n\nTL;DR?",
    "List every number and date mentioned in this text, with what each refers to.\n{text}",
    "Is the tone of this text positive, negative or neutral? Explain briefly.\n\n{text}",
    # Held out: the test split only uses these phrasings.
    "Condense this into one short paragraph for a busy manager:\n{text}",
    "{text}\n\nUsing only the text above, explain {topic}.",
    "Tag this document with up to three categories from: billing, api, security, models, other.\n\n{text}",
)
LABEL_TEMPLATES = (
    'Classify the intent of this customer message: "{text}"',
    "Label the following utterance with its intent.\nUtterance: {text}",
    "What is the user asking for in this message? Answer with one category.\n{text}",
    "Sentiment analysis: is this message positive, negative or neutral?\n{text}",
    "Here is a chat message: {text}\nWhich department should handle it?",
    "Categorize this request into a topic: {text}",
    "Does the following message express a complaint? Answer yes or no.\n\n{text}",
    "Assign one label to this text for our support dashboard: {text}",
    # Held out
    "Route this message to the right team and name the team only: {text}",
    "Give the topic of the sentence below in one word.\n{text}",
    "Decide whether this text is a question, a request or a complaint: {text}",
)
# Writing requests: compositions on a topic (an MMLU subject), and rewrites of a pasted passage (a
# documentation chunk); each list keeps its own last three phrasings for held-out prompts.
TOPIC_TEMPLATES = (
    "Write a short poem about {topic}.",
    "Draft a friendly email to my team announcing a workshop on {topic}.",
    "Brainstorm ten creative ideas for a blog series on {topic}.",
    "Write a catchy slogan for a podcast about {topic}.",
    "Write a two-paragraph story in which a student discovers {topic}.",
    "Give me five possible titles for an essay on {topic}.",
    # Held out
    "Come up with a list of fun activities for a club about {topic}.",
    "Compose a limerick about {topic}.",
    "Write a short speech to open a conference on {topic}.",
)
REWRITE_TEMPLATES = (
    "Rewrite the following paragraph so it sounds more formal:\n\n{text}",
    "Paraphrase this in plain language for a ten-year-old:\n{text}",
    "Make this paragraph shorter and punchier:\n{text}",
    "Turn this passage into a friendly announcement for our newsletter:\n\n{text}",
    # Held out
    "Polish the wording of this paragraph without changing its meaning:\n{text}",
    "Rewrite this in the voice of a pirate:\n{text}",
    "Edit this text for clarity and a warmer tone:\n\n{text}",
)
TEST_TEMPLATES = 3  # the last three of each template list are used by held-out prompts only
CODE_TEMPLATES = (
    "Write a {lang} function {name} that does the following: {desc}",
    "Implement `{name}` in {lang}. {desc}",
    "Can you code this in {lang}? {desc}",
    "I need a {lang} function for this: {desc} Please include a couple of tests.",
    "Help me write {lang} code for this task: {desc}",
    "{desc} Write this as a {lang} function called {name}.",
    "Give me a {lang} implementation. {desc}",
    "Write a short {lang} program that solves this: {desc}",
    "How would I write a {lang} function to do this? {desc}",
    "Please create a {lang} method named {name}. {desc}",
    "Code it up in {lang}: {desc}",
)
LANGUAGES = ("Python", "JavaScript", "TypeScript", "Go", "Rust", "Java", "C++", "C#", "Ruby", "Kotlin")
_DEF = re.compile(r"def (\w+)\(.*?\).*?:\s*[\"']{3}(.*?)[\"']{3}", re.S)
_CHOICES = re.compile(r"\n\s*A[.)]\s")
_NEEDS_CHOICES = re.compile(r"following|these|above|below|statement|scenario|_{2,}", re.I)
_EXAMPLES = re.compile(r">>>|\bexamples?\b\s*:?|\bfor example\b", re.I)


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str
    source: str
    held_out: bool | None = None  # None: decided by the seeded hash of the text


@dataclass
class Split:
    """The held-out decision for every prompt of every source, and the capped category sets."""

    seed: int
    held_out_keys: set[str]
    train_keys: set[str]
    train: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)

    def is_held_out(self, text: str, source: str = "") -> bool:
        key = text_key(text)
        if key in self.held_out_keys:
            return True
        if key in self.train_keys:
            return False
        return unit_hash(key, self.seed) < TEST_FRACTION_BY_SOURCE.get(source, TEST_FRACTION)


def text_key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def unit_hash(key: str, seed: int) -> float:
    """A uniform number in [0, 1) from the text and the seed, the same in every process."""
    return zlib.crc32(f"{seed}:{key}".encode()) / 2**32


def read_csv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(1 << 30)
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def mmlu_names() -> list[str]:
    return [name for name in names("routellm-mmlu-") if name != "routellm-mmlu-contaminated"]


def mmlu_subject(name: str) -> str:
    return name.removeprefix("routellm-mmlu-").replace("-", "_")


def mt_bench_examples() -> list[Example]:
    return [Example(q["turns"][0], MT_BENCH[q["category"]], "mt-bench") for q in read_jsonl("mt-bench")]


def benchmark_examples() -> list[Example]:
    examples = [
        Example(q["turns"][0], VICUNA[q["category"]], "vicuna-bench") for q in read_jsonl("vicuna-bench")
    ]
    examples += [
        Example(q["prompt"], ARENA[q["subcategory"]], "arena-hard-v2") for q in read_jsonl("arena-hard-v2")
    ]
    examples += [Example(q["question"], "math", "gsm8k") for q in read_jsonl("gsm8k-test")]
    examples += [Example(q["prompt"], "code", "humaneval") for q in read_jsonl("humaneval")]
    return examples


def clinc_examples() -> list[Example]:
    data = json.loads(resolve("clinc150").read_text(encoding="utf-8"))
    return [Example(text, "simple_chat", "clinc150") for part in data.values() for text, _intent in part]


def mmlu_examples() -> list[Example]:
    examples = []
    for name in mmlu_names():
        label = MMLU_CATEGORY.get(mmlu_subject(name), "other")
        examples += [Example(row["prompt"], label, "routellm-mmlu") for row in read_csv(resolve(name))]
    return examples


def domain_examples() -> list[Example]:
    labels = json.loads(resolve("semantic-router-domains").read_text(encoding="utf-8"))["labels"]
    return [
        Example(text, SEMANTIC_ROUTER.get(domain, "other"), "semantic-router")
        for domain, entry in labels.items()
        for text in entry["exemplars"]
    ]


def _entity_names(spans: list[dict]) -> str:
    kinds = sorted({span["entity_type"].lower().replace("_", " ") for span in spans})
    return ", ".join(kinds[:-1]) + f" and {kinds[-1]}" if len(kinds) > 1 else kinds[0]


def extraction_examples(seed: int, count: int = 360, group: int = 3) -> list[Example]:
    """Extraction prompts built from presidio-synth-v2: `group` sentences under one instruction."""
    records = [r for r in json.loads(resolve("presidio-synth-v2").read_text(encoding="utf-8")) if r["spans"]]
    records.sort(key=lambda r: unit_hash(text_key(r["full_text"]), seed))
    examples = []
    for start in range(0, min(count * group, len(records) - group + 1), group):
        chunk = records[start : start + group]
        passage = "\n".join(r["full_text"] for r in chunk)
        held_out = unit_hash(text_key(passage), seed) < TEST_FRACTION
        template = _template_for(passage, EXTRACTION_TEMPLATES, held_out)
        types = _entity_names([span for r in chunk for span in r["spans"]])
        examples.append(
            Example(template.format(types=types, text=passage), "extraction", "synthetic", held_out)
        )
    return examples


def cut_passage(text: str, limit: int = 1200, keep_short: bool = True) -> str:
    """A passage as a user pastes it: cut at a paragraph break near `limit` characters (the
    documentation passages are cut there even when shorter, as they always were: keep_short=False)."""
    text = text.strip()
    if keep_short and len(text) <= limit:
        return text
    cut = text.rfind("\n\n", 0, limit)
    return text[: cut if cut > 300 else limit].strip()


def _documentation() -> list[tuple[str, str]]:
    """(heading, text) of each Anthropic documentation chunk, the text cut at a paragraph near 1,200
    characters: passages as a user pastes them."""
    chunks = json.loads(resolve("anthropic-docs").read_text(encoding="utf-8"))
    found = []
    for chunk in chunks:
        text = chunk["text"].strip()
        if text.startswith(chunk["chunk_heading"]):
            text = text[len(chunk["chunk_heading"]) :].strip()
        text = cut_passage(text, keep_short=False)
        if len(text) >= 200:
            found.append((chunk["chunk_heading"].strip(), text))
    return found


def _templated(
    seed: int, items: Iterable[tuple[str, str]], templates: tuple[str, ...], label: str, source: str
) -> list[Example]:
    examples = []
    for topic, text in items:
        held_out = unit_hash(text_key(topic + text), seed) < TEST_FRACTION
        template = _template_for(topic + text, templates, held_out)
        body = template.format(topic=topic.lower() or "this", text=text)
        examples.append(Example(body, label, source, held_out))
    return examples


def passage_examples(seed: int) -> list[Example]:
    """Extraction: passages to summarise, classify or answer from (PASSAGE_TEMPLATES), and short
    messages to label (LABEL_TEMPLATES)."""
    examples = _templated(seed, _documentation(), PASSAGE_TEMPLATES, "extraction", "passage-task")
    data = json.loads(resolve("clinc150").read_text(encoding="utf-8"))
    utterances = sorted(
        {text for text, _intent in data["train"]}, key=lambda t: unit_hash("pick:" + t, seed)
    )[:300]
    return examples + _templated(
        seed, (("", t) for t in utterances), LABEL_TEMPLATES, "extraction", "passage-task"
    )


def writing_requests(seed: int) -> list[Example]:
    """Writing: compositions on an MMLU subject (TOPIC_TEMPLATES) and rewrites of a documentation
    passage (REWRITE_TEMPLATES)."""
    topics = sorted({mmlu_subject(name).replace("_", " ") for name in mmlu_names()})
    passages = _documentation()[::4]  # a quarter of the passages, the rest serve the passage tasks
    examples = _templated(seed, ((t, "") for t in topics), TOPIC_TEMPLATES, "writing", "writing-request")
    return examples + _templated(seed, passages, REWRITE_TEMPLATES, "writing", "writing-request")


def _template_for(text: str, templates: tuple[str, ...], held_out: bool) -> str:
    pick = zlib.crc32(text.encode())
    if held_out:
        return templates[len(templates) - TEST_TEMPLATES + pick % TEST_TEMPLATES]
    return templates[pick % (len(templates) - TEST_TEMPLATES)]


def code_requests(stubs: Iterable[Example], held_out: bool) -> list[Example]:
    """HumanEval stubs restated as chat requests: the task's docstring up to its examples."""
    requests = []
    for stub in stubs:
        found = _DEF.findall(stub.text)
        if not found:
            continue
        name, doc = found[-1]
        desc = " ".join(_EXAMPLES.split(doc, maxsplit=1)[0].split())
        if len(desc) < 20:
            continue
        lang = LANGUAGES[zlib.crc32(name.encode()) % len(LANGUAGES)]
        text = _template_for(desc, CODE_TEMPLATES, held_out).format(lang=lang, name=name, desc=desc)
        requests.append(Example(text, "code", "code-request", held_out))
    return requests


def open_questions(questions: Iterable[Example], held_out: bool) -> list[Example]:
    """MMLU stems that read as complete questions once the choices are dropped."""
    found = []
    for question in questions:
        choices = _CHOICES.search(question.text)
        stem = question.text[: choices.start()].strip() if choices else ""
        if len(stem) >= 25 and stem[-1] in "?." and not _NEEDS_CHOICES.search(stem):
            found.append(Example(stem, question.label, "mmlu-open", held_out))
    return found


def all_examples(seed: int) -> list[Example]:
    """Every labelled prompt once (first source wins on duplicate text), in a fixed source order."""
    from evals.training.instructions import (
        authored_examples,
        brief_examples,
        chitchat_examples,
        dolly_examples,
        folio_examples,
        ni_examples,
    )

    loaded = [
        *mt_bench_examples(),
        *benchmark_examples(),
        *clinc_examples(),
        *mmlu_examples(),
        *domain_examples(),
        *extraction_examples(seed),
        *passage_examples(seed),
        *writing_requests(seed),
        *dolly_examples(),
        *folio_examples(seed),
        *chitchat_examples(),
        *ni_examples(seed),
        *authored_examples(),
        *brief_examples(),
    ]
    seen: set[str] = set()
    unique = []
    for example in loaded:
        key = text_key(example.text)
        if key and key not in seen:
            seen.add(key)
            unique.append(example)
    return unique


def _stratify(examples: Iterable[Example], seed: int) -> tuple[list[Example], list[Example]]:
    """Within each (source, label) stratum the lowest-hash share is held out: exact, seeded, stable."""
    strata: dict[tuple[str, str], list[Example]] = defaultdict(list)
    train: list[Example] = []
    test: list[Example] = []
    for example in examples:
        if example.held_out is None:
            strata[(example.source, example.label)].append(example)
        else:
            (test if example.held_out else train).append(example)
    for (source, _label), members in strata.items():
        members.sort(key=lambda e: unit_hash(text_key(e.text), seed))
        cut = round(len(members) * TEST_FRACTION_BY_SOURCE.get(source, TEST_FRACTION))
        test += members[:cut]
        train += members[cut:]
    return train, test


def cap(examples: list[Example], seed: int, share: float) -> list[Example]:
    """At most `share` of each stratum's cap, chosen by the seeded hash so reruns pick the same prompts."""
    strata: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        strata[f"{example.source}/{example.label}"].append(example)
    kept = []
    for stratum, members in sorted(strata.items()):
        members.sort(key=lambda e: unit_hash(text_key(e.text), seed))
        kept += members[: max(1, round(CAP_BY_STRATUM.get(stratum, DEFAULT_CAP) * share))]
    return kept


def split_examples(examples: list[Example], seed: int) -> Split:
    train, test = _stratify(examples, seed)
    train += code_requests((e for e in train if e.source == "humaneval"), held_out=False)
    test += code_requests((e for e in test if e.source == "humaneval"), held_out=True)
    train += open_questions((e for e in train if e.source == "routellm-mmlu"), held_out=False)
    test += open_questions((e for e in test if e.source == "routellm-mmlu"), held_out=True)
    held_out = {text_key(e.text) for e in test}
    # A derived prompt can repeat another's text (two MMLU questions share a stem): held out wins.
    train = [e for e in train if text_key(e.text) not in held_out]
    split = Split(seed, held_out, {text_key(e.text) for e in train})
    split.train = cap(train, seed, 1.0 - TEST_FRACTION)
    split.test = cap(test, seed, TEST_FRACTION)
    return split


def build_split(seed: int = DEFAULT_SEED) -> Split:
    return split_examples(all_examples(seed), seed)
