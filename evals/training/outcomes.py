"""RouteLLM's recorded outcomes (GPT-4-1106 vs Mixtral-8x7B) per prompt: the difficulty model's labels.

Training-time and eval-time only (the runtime must never import this). For each benchmark it reads
the registry's files and yields, per prompt, the quality each model reached (correctness on GSM8K
and MMLU, the GPT-4 judge's 1-10 score averaged over both turns on MT-Bench), whether the strong
model was needed, and rough token counts for the dollar estimate. Prompts are split with the shared
`Split`, and the test side drops the prompts RouteLLM lists as contaminated. This module must never
write anything or fetch data itself.

Target: the strong model is needed when the weak one fails where the strong one succeeds, that is
Mixtral wrong and GPT-4 right (GSM8K, MMLU), or GPT-4's mean MT-Bench score at least
MT_BENCH_MARGIN points above Mixtral's.
"""

from __future__ import annotations

import json
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from evals.datasets import read_jsonl, resolve
from evals.training.corpus import Split, mmlu_names, read_csv, text_key
from evals.training.instructions import authored_rows

STRONG = "gpt-4-1106-preview"
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MT_BENCH_MARGIN = 1.0
CHARS_PER_TOKEN = 4.0
# MMLU answers are one letter; the files hold no responses to measure.
MMLU_OUTPUT_TOKENS = 1.0
BENCHMARKS = ("gsm8k", "mmlu", "mt-bench")
CONTAMINATED = {
    "gsm8k": "routellm-gsm8k-contaminated",
    "mmlu": "routellm-mmlu-contaminated",
    "mt-bench": "routellm-mt-bench-contaminated",
}
# The category corpus names these benchmarks' prompts by their source, which sets the test share.
CORPUS_SOURCE = {"gsm8k": "gsm8k", "mmlu": "routellm-mmlu", "mt-bench": "mt-bench"}
_ANSWER = re.compile(
    r"### Assistant A:\n(.*?)(?=\n\n### User:|\n\n<\|The End of Assistant A's Conversation)", re.S
)


@dataclass(frozen=True, slots=True)
class Outcome:
    text: str  # what the router sees: the prompt, or MT-Bench's first turn
    benchmark: str
    strong: float  # quality GPT-4 reached
    weak: float  # quality Mixtral reached
    input_tokens: float
    strong_output_tokens: float
    weak_output_tokens: float

    @property
    def strong_needed(self) -> bool:
        # Arena-Bench (evals.heldout) is graded as MT-Bench is, and read the same way
        margin = MT_BENCH_MARGIN if self.benchmark in ("mt-bench", "arena-bench") else 1.0
        return self.strong - self.weak >= margin


def _tokens(text: str) -> float:
    return len(text) / CHARS_PER_TOKEN


def gsm8k_outcomes() -> list[Outcome]:
    return [
        Outcome(
            row["prompt"],
            "gsm8k",
            float(row[STRONG] == "True"),
            float(row[WEAK] == "True"),
            _tokens(row["prompt"]),
            _tokens(row[f"{STRONG}_response"]),
            _tokens(row[f"{WEAK}_response"]),
        )
        for row in read_csv(resolve("routellm-gsm8k"))
    ]


def mmlu_outcomes() -> list[Outcome]:
    outcomes = []
    for name in mmlu_names():
        for row in read_csv(resolve(name)):
            strong, weak = float(row[STRONG] == "True"), float(row[WEAK] == "True")
            tokens = _tokens(row["prompt"])
            outcomes.append(
                Outcome(row["prompt"], "mmlu", strong, weak, tokens, MMLU_OUTPUT_TOKENS, MMLU_OUTPUT_TOKENS)
            )
    return outcomes


def _answers_tokens(user_prompt: str) -> float:
    """Output tokens of both turns, read from the judge's copy of the model's conversation."""
    conversation = user_prompt.split("<|The Start of Assistant A's Conversation with User|>")[-1]
    return sum(_tokens(answer) for answer in _ANSWER.findall(conversation))


def mt_bench_outcomes() -> list[Outcome]:
    questions = {}
    with resolve("mt-bench").open(encoding="utf-8") as handle:
        for line in handle:
            question = json.loads(line)
            questions[question["question_id"]] = question["turns"]
    scores: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    answers: dict[int, dict[str, float]] = defaultdict(dict)
    with resolve("routellm-mt-bench").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            scores[record["question_id"]][record["model"]].append(float(record["score"]))
            if record["turn"] == 2:
                answers[record["question_id"]][record["model"]] = _answers_tokens(record["user_prompt"])
    outcomes = []
    for qid, by_model in sorted(scores.items()):
        turns = questions[qid]
        # The second turn resends the first exchange, so its input is both questions and one answer.
        input_tokens = 2 * _tokens(turns[0]) + _tokens(turns[-1]) + answers[qid][STRONG] / 2
        strong, weak = (sum(by_model[m]) / len(by_model[m]) for m in (STRONG, WEAK))
        outcomes.append(
            Outcome(
                turns[0], "mt-bench", strong, weak, input_tokens, answers[qid][STRONG], answers[qid][WEAK]
            )
        )
    return outcomes


LOADERS: dict[str, Callable[[], list[Outcome]]] = {
    "gsm8k": gsm8k_outcomes,
    "mmlu": mmlu_outcomes,
    "mt-bench": mt_bench_outcomes,
}


def contaminated_keys(benchmark: str) -> set[str]:
    with resolve(CONTAMINATED[benchmark]).open(encoding="utf-8") as handle:
        return {text_key(json.loads(line)["eval_prompt"]) for line in handle if line.strip()}


def split_outcomes(split: Split) -> tuple[list[Outcome], dict[str, list[Outcome]]]:
    """Training outcomes of every benchmark, and each benchmark's decontaminated held-out outcomes."""
    train: list[Outcome] = []
    test: dict[str, list[Outcome]] = {}
    for benchmark in BENCHMARKS:
        excluded = contaminated_keys(benchmark)
        test[benchmark] = []
        for outcome in LOADERS[benchmark]():
            if not split.is_held_out(outcome.text, CORPUS_SOURCE[benchmark]):
                train.append(outcome)
            elif text_key(outcome.text) not in excluded:
                test[benchmark].append(outcome)
    return train, test


# Difficulty where no per-prompt outcomes exist, as a prior per source: the share of its prompts on
# which the weak model falls short where the strong one succeeds. Each prompt enters training twice,
# as "needed" with weight DEMAND_WEIGHT * prior and as "not needed" with the rest (a soft label).
#   arena-hard-v2 (hard_prompt only): chosen from Chatbot Arena as the prompts that separate strong
#       models, on which Mixtral-class models lose to GPT-4-class ones nearly always: 0.8.
#   code-request (HumanEval restated): published HumanEval pass@1 of about 0.85 for GPT-4-1106 and
#       about 0.40 for Mixtral-8x7B-Instruct, so roughly 0.43 need the strong model.
#   clinc150: everyday requests any model answers: 0.0.
#   semantic-router (vLLM semantic-router's privacy labels, an independent project's): its
#       architecture_analysis, root_cause_analysis and multi_step_tradeoffs exemplars (design and
#       analysis that strong models do better, as Arena-Hard's): 0.8; its simple_task ones: 0.0.
#       Only the half with even crc32 trains (`semantic_router_demand`); evals.heldout scores the other.
# Two sources were priors here until 2026-12-07 and are no longer: dolly-15k (0.1) and chitchat
# (0.0), both optional samples (evals.training.instructions) that not every checkout has, so
# difficulty refit alone on a shipped category model (`train --difficulty-only`) would have
# differed from machine to machine; the authors' easy requests and small talk below say as much.
# Only the training side of the shared split is used, so held-out prompts stay unseen.
DEMAND_PRIOR = {
    "arena-hard-v2": 0.8,
    "code-request": 0.43,
    "clinc150": 0.0,
    "semantic-router-complex": 0.8,
    "semantic-router-simple": 0.0,
}
COMPLEX_CLASSES = ("architecture_analysis", "root_cause_analysis", "multi_step_tradeoffs")
# How much a prior's soft label weighs against a benchmark question's outcome, on the training side
# only (`python -m evals.training.demand`): at weight 1 the priors were outvoted by MMLU's 11,000
# questions (Arena-Hard's training prompts, prior 0.8, came out at 0.56 out of fold; 0.64 at 4) and
# the per-source calibration error falls as the weight grows (0.111, 0.100, 0.089, 0.081 at 1, 2, 4,
# 8); 4 was the largest of those whose ranking within GSM8K and MMLU stays within 0.005 AUC of weight
# 1's, a slack set after reading that table (4 passed it by about 0.0002 on MMLU). Since 2026-12-07
# (dolly's and small talk's priors gone, the shipped category model's probabilities read) the same
# rule gives 2: GSM8K AUC 0.561, 0.559, 0.556, 0.553 and calibration error 0.117, 0.105, 0.096, 0.090
# at 1, 2, 4, 8 (4 falls outside by about 0.0003 on GSM8K).
DEMAND_WEIGHT = 2.0
CLINC_DEMAND_EVERY = 20  # every 20th CLINC training utterance: 750, about as many as the others


def semantic_router_demand(training: bool) -> tuple[list[str], list[str]]:
    """(complex, simple) exemplars of vLLM semantic-router's privacy labels: the training half
    (even crc32 of the text), or the other half that evals.heldout scores."""
    labels = json.loads(resolve("semantic-router-privacy").read_text(encoding="utf-8"))["labels"]

    def side(texts: list[str]) -> list[str]:
        return [t for t in texts if (zlib.crc32(t.encode("utf-8")) % 2 == 0) == training]

    hard = [text for name in COMPLEX_CLASSES for text in labels[name]["exemplars"]]
    return side(hard), side(labels["simple_task"]["exemplars"])


def demand_sources(split: Split) -> dict[str, list[str]]:
    """The training-side prompts of each of DEMAND_PRIOR's sources."""
    arena = [q["prompt"] for q in read_jsonl("arena-hard-v2") if q["category"] == "hard_prompt"]
    clinc = json.loads(resolve("clinc150").read_text(encoding="utf-8"))["train"]
    sources = {
        "arena-hard-v2": [t for t in arena if not split.is_held_out(t, "arena-hard-v2")],
        "code-request": [e.text for e in split.train if e.source == "code-request"],
        "clinc150": [t for t, _intent in clinc[::CLINC_DEMAND_EVERY] if not split.is_held_out(t, "clinc150")],
    }
    sources["semantic-router-complex"], sources["semantic-router-simple"] = semantic_router_demand(True)
    return sources


# Requests written for turnout with a difficulty tier, by authors who read only the tier and category
# definitions and a persona to write as (never an evaluation set, the classifier or this repository):
# "hard" where a frontier model is clearly worth paying for, "easy" where a small one does as well,
# with length kept from telling the two apart (half the hard requests short, half the easy ones
# long). Eight authors' requests train (labels/authored_difficulty.jsonl); four more authors'
# (labels/authored_difficulty_heldout.jsonl, less those that repeat a trained tier or authored
# category request but for case and punctuation, or share eight words in a row with one: classic
# puzzles and short small talk both sides wrote) are never trained on; evals.heldout scores them.
# Besides difficulty, every trained request (all categories) trains the frontier score
# (evals.training.train), the authors' judgement as a model of its own.
# Only the categories where the recorded outcomes say a strong model is ever needed train: on the
# training side of MT-Bench, GPT-4 beat Mixtral by a point on 0 of 20 writing, role-play,
# humanities and STEM-knowledge questions (turnout's writing and other) and on 12 of 20 maths,
# reasoning, coding and extraction ones, so an author's "hard essay" would teach what the outcomes
# deny (it did: trained on every category, MT-Bench's held-out replay fell most, which is what
# prompted this check). Each request is its own label, weighing TIER_WEIGHT: chosen as
# DEMAND_WEIGHT was (`python -m evals.training.demand --tiers`), the largest candidate whose
# out-of-fold GSM8K and MMLU AUC stay within AUC_SLACK of no tiers at all: 0.25 with four authors,
# 0.125 with eight (2026-12-07).
TIERS = Path(__file__).resolve().parents[1] / "labels" / "authored_difficulty.jsonl"
TIERS_HELD_OUT = TIERS.with_name("authored_difficulty_heldout.jsonl")
TIER_CATEGORIES = ("code", "math", "reasoning", "extraction", "simple_chat")
TIER_WEIGHT = 0.125


def crowd_order(crowds: Iterable[str]) -> list[str]:
    """The authors' crowd names once each, in number order (d5 before d11)."""
    return sorted(set(crowds), key=lambda crowd: (len(crowd), crowd))


def tier_rows(path: Path = TIERS) -> list[dict[str, str]]:
    """The {"category", "tier", "prompt", "crowd"} rows of an authored-difficulty file."""
    return authored_rows(path)


def tier_outcomes(weight: float = TIER_WEIGHT) -> tuple[list[Outcome], list[float]]:
    """The training authors' tiered requests of TIER_CATEGORIES as outcomes ("needed" for a hard
    one), and their weights."""
    outcomes = [
        Outcome(row["prompt"], "tier", float(row["tier"] == "hard"), 0.0, 0.0, 0.0, 0.0)
        for row in tier_rows()
        if row["category"] in TIER_CATEGORIES
    ]
    return outcomes, [weight] * len(outcomes)


def demand_outcomes(
    split: Split, weight: float = DEMAND_WEIGHT, sources: dict[str, list[str]] | None = None
) -> tuple[list[Outcome], list[float]]:
    """Soft-labelled outcomes for the training-side prompts of DEMAND_PRIOR's sources (`sources`, as
    `demand_sources` gives them, read here when not given), and weights (`weight` times each
    label's share)."""
    outcomes: list[Outcome] = []
    weights: list[float] = []
    for source, texts in (sources or demand_sources(split)).items():
        prior = DEMAND_PRIOR[source]
        for text in texts:
            for needed, share in ((True, prior), (False, 1.0 - prior)):
                if share > 0:
                    outcomes.append(Outcome(text, "demand", float(needed), 0.0, 0.0, 0.0, 0.0))
                    weights.append(weight * share)
    return outcomes, weights
