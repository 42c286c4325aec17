"""The eval tasks a suite can name, each a function from typed parameters to a `TaskResult`.

A task wraps an existing eval (evals/routing_eval.py, evals/pii_eval.py, evals/rag_eval.py,
evals/e2e.py) and flattens its figures into metric names with a direction; it declares the
registered datasets it reads, so a suite can be checked against them before anything runs. Tasks
must never fit or tune anything on the data they report on, and never touch the network (data comes
through evals.datasets; the e2e task talks to loopback only). Heavy imports happen inside the task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import Field

from evals import e2e
from evals.datasets import names
from evals.results import Better, ConfusionPlot, CostQualityPlot, Params, Series, TaskResult

UP, DOWN, INFO = Better.HIGHER, Better.LOWER, Better.INFO
T = TypeVar("T")

# What build_split reads: the category corpus, of which the routing replay uses the held-out side too.
SPLIT_DATASETS = (
    "mt-bench",
    "vicuna-bench",
    "arena-hard-v2",
    "gsm8k-test",
    "humaneval",
    "clinc150",
    "semantic-router-domains",
    "presidio-synth-v2",
    "anthropic-docs",  # the passages of the passage-task and writing-request families
    *(name for name in names("routellm-mmlu-") if name != "routellm-mmlu-contaminated"),
)
OUTCOME_DATASETS = (
    "routellm-gsm8k",
    "routellm-mt-bench",
    "routellm-gsm8k-contaminated",
    "routellm-mmlu-contaminated",
    "routellm-mt-bench-contaminated",
)
PII_DATASETS = (
    "presidio-synth-v2",
    "presidio-templates",
    "presidio-identities",
    "gitleaks-rules",
    "xstest",
    "mt-bench",
    "arena-hard-v2",
    "gsm8k-test",
    *(name for name in names("routellm-mmlu-") if name != "routellm-mmlu-contaminated"),
)
RAG_DATASETS = ("anthropic-docs", "anthropic-docs-eval")


def sample(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """At most `limit` items, a seeded random subset kept in the original order."""
    if limit is None or limit >= len(items):
        return list(items)
    keep = np.sort(np.random.default_rng(seed).permutation(len(items))[:limit])
    return [items[i] for i in keep]


# ---- routing replay ------------------------------------------------------------------------------
class RoutingParams(Params):
    benchmarks: list[Literal["gsm8k", "mmlu", "mt-bench"]] = Field(
        default=["gsm8k", "mmlu", "mt-bench"], min_length=1
    )
    limit: int | None = Field(None, ge=10, description="held-out prompts per benchmark (a seeded sample)")
    seed: int = 0
    quality_target: float = Field(0.95, gt=0, le=1, description="share of the strong model's quality")
    artifact: Path | None = Field(None, description="classifier artifact (default: the packaged one)")


def routing_replay(params: RoutingParams) -> TaskResult:
    """Replay RouteLLM's GPT-4 / Mixtral outcomes under our difficulty score, random and the oracle."""
    from evals import routing_eval
    from evals import routing_metrics as rm

    classifier, _split, held_out = routing_eval.held_out_data(params.artifact)
    result = TaskResult()
    panels = []
    for benchmark in params.benchmarks:
        outcomes = sample(held_out[benchmark], params.limit, params.seed)
        replay, curves = routing_eval.router_curves(classifier, outcomes)
        n = len(outcomes)
        per_1k = 1000 / n
        result.add(f"{benchmark}.n", n, INFO)
        result.add(f"{benchmark}.always_strong.quality", replay.strong.mean(), INFO)
        result.add(f"{benchmark}.always_weak.quality", replay.weak.mean(), INFO)
        result.add(f"{benchmark}.always_strong.dollars_per_1k", replay.strong_cost.sum() * per_1k, INFO)
        result.add(f"{benchmark}.always_weak.dollars_per_1k", replay.weak_cost.sum() * per_1k, INFO)
        for router, curve in curves.items():
            _router_metrics(result, f"{benchmark}.{router}", rm.summary(curve, replay, params.quality_target))
        series = [
            Series(router, tuple(curve.costs * per_1k), tuple(curve.qualities))
            for router, curve in curves.items()
        ]
        series += [
            Series(
                "always GPT-4",
                (float(replay.strong_cost.sum() * per_1k),),
                (float(replay.strong.mean()),),
                "point",
            ),
            Series(
                "always Mixtral",
                (float(replay.weak_cost.sum() * per_1k),),
                (float(replay.weak.mean()),),
                "point",
            ),
        ]
        target = params.quality_target * float(replay.strong.mean())
        panels.append(CostQualityPlot(f"{benchmark} (n={n})", tuple(series), target))
    result.plots["cost_quality"] = list(panels)
    result.notes.append(
        f"Quality target: {params.quality_target:.0%} of GPT-4's quality; 'at_target' metrics read the "
        "first sweep point reaching it. Dollars: GPT-4-1106 $10/$30 and Mixtral $0.6/$0.6 per M tokens."
    )
    return result


def _router_metrics(result: TaskResult, prefix: str, summary: dict[str, float | None]) -> None:
    # The random and oracle baselines depend on the data only: reported, never gated.
    up, down = (UP, DOWN) if prefix.endswith(".ours") else (INFO, INFO)
    result.add(f"{prefix}.apgr", summary["apgr"], up)
    result.add(f"{prefix}.auc_cost_quality", summary["auc_cost_quality"], up)
    result.add(f"{prefix}.cpt50", summary["cpt50"], down)
    result.add(f"{prefix}.cpt80", summary["cpt80"], down)
    result.add(f"{prefix}.strong_share_at_target", summary["strong_share_at_target"], down)
    result.add(f"{prefix}.call_saving_at_target", summary["call_saving_at_target"], up)
    result.add(f"{prefix}.cost_saving_at_target", summary["dollar_saving_at_target"], up)


# ---- category --------------------------------------------------------------------------------------
class CategoryParams(Params):
    limit: int | None = Field(None, ge=10, description="held-out prompts (a seeded sample)")
    seed: int = 0
    artifact: Path | None = None


def category(params: CategoryParams) -> TaskResult:
    """Per-class precision, recall and F1 of the capability classifier on its held-out prompts."""
    from evals import routing_eval

    classifier, split, _ = routing_eval.held_out_data(params.artifact, outcomes=False)
    split = replace(split, test=sample(split.test, params.limit, params.seed))
    report = routing_eval.category_report(classifier, split)
    result = TaskResult()
    result.add("n", report["n"], INFO)
    result.add("accuracy", report["accuracy"], UP)
    result.add("macro_f1", report["macro_f1"], UP)
    for label, scores in report["per_class"].items():
        for key in ("precision", "recall", "f1"):
            result.add(f"class.{label}.{key}", scores[key], UP)
        result.add(f"class.{label}.support", scores["support"], INFO)
    for source, accuracy in report["accuracy_by_source"].items():
        result.add(f"source.{source}.accuracy", accuracy, UP)
    latency = routing_eval.latency_report(classifier, [e.text for e in split.test])
    result.add("latency.p50_us", latency["p50_us"], DOWN)
    result.add("latency.p99_us", latency["p99_us"], DOWN)
    confusion = report["confusion"]
    matrix = tuple(tuple(int(v) for v in row) for row in confusion["rows_true_cols_predicted"])
    result.plots["confusion"] = [
        ConfusionPlot(f"category, {report['n']} held-out prompts", tuple(confusion["labels"]), matrix)
    ]
    return result


# ---- held out by source ----------------------------------------------------------------------------
HELDOUT_DATASETS = (
    "mmlu-pro-outcomes",
    "ni-advicl",
    "ni-sample",
    "self-instruct-seeds",
    "semantic-router-privacy",
)


class HeldoutParams(Params):
    artifact: Path | None = None


def heldout(params: HeldoutParams) -> TaskResult:
    """Category and difficulty on sources no training step read (evals.heldout): the headline."""
    from evals import heldout as held
    from router.signals.capability.classifier import CapabilityClassifier

    report = held.run(classifier=CapabilityClassifier.load(params.artifact))
    result = TaskResult()
    for source, category in report["category"].items():
        prefix = "category" if source == "pooled" else f"category.{source}"
        result.add(f"{prefix}.accuracy", category["accuracy"], UP)
        result.add(f"{prefix}.mean_recall", category["mean_recall"], UP)
        result.add(f"{prefix}.prompts", category["n"], INFO)
        if category["second_reader"]:
            result.add(f"{prefix}.second_reader.agreement", category["second_reader"]["agreement"], INFO)
            result.add(f"{prefix}.second_reader.classifier", category["second_reader"]["classifier"], INFO)
        for label, recall in category["recall_by_category"].items():
            result.add(f"{prefix}.{label}.recall", recall, UP)
        if category["digits_to_math"]["n"]:
            result.add(f"{prefix}.digits_to_math", category["digits_to_math"]["share"], DOWN)
    tiers = report["authored_tiers"]  # held-out authors' tiered requests (every checkout has them)
    result.add("authored_tiers.category_accuracy", tiers["category_accuracy"], UP)
    if tiers["digits_to_math"]["n"]:
        result.add("authored_tiers.digits_to_math", tiers["digits_to_math"]["share"], DOWN)
    for group in ("all", "trained_categories", "code_math_reasoning"):
        for name in ("auc", "frontier_auc", "hard_to_hard_route", "easy_to_fast_route"):
            result.add(f"authored_tiers.{group}.{name}", tiers[group][name], UP)
        result.add(f"authored_tiers.{group}.easy_to_hard_route", tiers[group]["easy_to_hard_route"], DOWN)
        result.add(
            f"authored_tiers.{group}.hard_to_strong_backend", tiers[group]["hard_to_strong_backend"], UP
        )
        result.add(
            f"authored_tiers.{group}.easy_to_strong_backend", tiers[group]["easy_to_strong_backend"], DOWN
        )
    for crowd, row in tiers["by_crowd"].items():
        result.add(f"authored_tiers.by_crowd.{crowd}.trained_categories.auc", row["auc"], INFO)
    split = report["complex_vs_simple"]
    result.add("complex_vs_simple.auc", split["auc"], UP)
    result.add("complex_vs_simple.complex_to_hard_route", split["complex_to_hard_route"], UP)
    result.add("complex_vs_simple.simple_to_fast_route", split["simple_to_fast_route"], UP)
    for benchmark, row in report["routellm_policy"].items():  # where the default policy sends them
        for name in ("to_hard_route", "to_strong_backend"):
            result.add(f"routellm_policy.{benchmark}.{name}", row[name], INFO)
        result.add(f"routellm_policy.{benchmark}.quality_by_backend", row["quality_by_backend"], UP)
    annotated = report["annotated_difficulty"]  # WizardLM's annotated difficulty, where its set is present
    if annotated:
        result.add("annotated_difficulty.auc", annotated["auc"], UP)
        result.add("annotated_difficulty.hard_to_hard_route", annotated["hard_to_hard_route"], UP)
        result.add("annotated_difficulty.easy_to_fast_route", annotated["easy_to_fast_route"], UP)
    arena = report["arena_bench"]  # Arena-Bench v1's graded requests, where its three files are present
    if arena:
        result.add("arena_bench.auc", arena["auc"], UP)
        result.add("arena_bench.needed_to_hard_route", arena["needed_to_hard_route"], UP)
        result.add("arena_bench.not_needed_to_fast_route", arena["not_needed_to_fast_route"], UP)
        result.add("arena_bench.prompts", arena["needed"] + arena["not_needed"], INFO)
    for family, row in report["difficulty"].items():
        result.add(f"difficulty.{family}.auc", row["auc"], UP)
        result.add(f"difficulty.{family}.ceiling_auc", row["ceiling_auc"], INFO)
        result.add(f"difficulty.{family}.apgr", row["apgr"], UP)
        result.add(f"difficulty.{family}.strong_share_at_target", row["strong_share_at_target"], DOWN)
        result.add(
            f"difficulty.{family}.random_strong_share_at_target", row["random_strong_share_at_target"], INFO
        )
        result.add(f"difficulty.{family}.prompts", row["n"], INFO)
    result.notes.append(
        "Held out by source: NI-format tasks (category, each task mapped once to a category), self-instruct's "
        "175 seed tasks (category, labelled blind to the classifier) and MMLU-Pro's "
        "STEM-Ez, TheoremQA and SciBench families (difficulty; Mixtral-8x7B-Instruct vs Gemini-1.5-Pro). "
        "Targets (issue 13): category >= 0.85 and every category >= 0.70; difficulty AUC >= 0.65, APGR >= 0.60."
    )
    return result


# ---- PII ------------------------------------------------------------------------------------------
class PiiParams(Params):
    limit: int | None = Field(None, ge=10, description="first sentences of Presidio and of each benign set")


def _add_people_sets(result: TaskResult, report: dict[str, Any]) -> None:
    """The helpers' sets: fiction and made-up people; public figures, characters, places and private people."""
    for name, part in report["fiction"].items():
        if "made_up" in part:
            result.add(f"fiction.{name}.made_up.flag_rate", part["made_up"]["flag_rate"], DOWN)
        result.add(f"fiction.{name}.personal.recall", part["personal"]["recall"], UP)
    for kind in ("public", "fictional", "places", "development_public", "development_fictional"):
        result.add(f"figures.{kind}.flag_rate", report["figures"][kind]["flag_rate"], DOWN)
    for kind in ("private", "places_private", "namesakes", "development_private"):
        result.add(f"figures.{kind}.recall", report["figures"][kind]["recall"], UP)


def pii(params: PiiParams) -> TaskResult:
    """Sensitivity detection: the held-out headline (Presidio's held-out templates filled with
    held-out identities), Presidio's labelled sentences, benign prompt sets, XSTest look-alikes."""
    from evals import pii_eval, pii_fresh

    report = pii_eval.run(params.limit)
    presidio = report["presidio"]
    result = TaskResult()
    from evals.tasks_secrets import add_secrets  # heavy: inside the task

    add_secrets(result)
    fresh = pii_fresh.run(half="even", per_template=8, template_half="held-out")
    result.add("heldout.recall", fresh["recall"], UP)
    result.add("heldout.sentences", fresh["sentences"], INFO)
    for entity, recall in fresh["by_type"].items():
        result.add(f"heldout.type.{entity}.recall", recall, UP)
    for half, recall in presidio["sentence_recall_by_template_half"].items():
        result.add(f"presidio_templates.{half}.recall", recall, UP)
    result.add("sentence.positives", presidio["positives"], INFO)
    for key in ("recall", "precision", "f2"):
        result.add(f"sentence.{key}", presidio[f"sentence_{key}"], UP)
        result.add(f"span.{key}", presidio[f"span_{key}"], UP)
    result.add("sentence.quasi_only_flag_rate", presidio["quasi_only_flag_rate"], DOWN)
    result.add("sentence.no_entity_flag_rate", presidio["no_entity_flag_rate"], DOWN)
    for entity, count in presidio["per_type_count"].items():
        result.add(f"type.{entity}.support", count, INFO)
        result.add(f"type.{entity}.recall", presidio["per_type_recall"][entity], UP)
        result.add(f"type.{entity}.precision", presidio["per_type_precision"].get(entity), UP)
        result.add(f"type.{entity}.f2", presidio["per_type_f2"][entity], UP)
    for name, rate in report["benign"].items():
        result.add(f"benign.{name}.flag_rate", rate["rate"], DOWN)
        result.add(f"benign.{name}.prompts", rate["prompts"], INFO)
    result.add("benign.pooled.flag_rate", report["benign_pooled_fpr"], DOWN)
    _add_people_sets(result, report)
    result.add("directive.recall", report["directives"]["recall"], UP)
    result.add("directive.other_flag_rate", report["directives"]["other_flag_rate"], DOWN)
    result.add("latency.p50_us", report["latency_us"]["p50"], DOWN)
    result.add("latency.p99_us", report["latency_us"]["p99"], DOWN)
    result.notes.append(
        "Pooled flag rate: MT-Bench, Arena-Hard v2 and GSM8K; XSTest's privacy look-alikes (public figures, "
        "fictional people) are reported apart as `xstest-lookalike`."
    )
    result.notes.append(
        "Headline: `heldout.recall`, Presidio's templates of the held-out half filled with identities of the "
        "held-out half (evals.pii_fresh). `sentence.*` on the Presidio set are development figures: the rules "
        "were written reading it."
    )
    return result


# ---- retrieval ------------------------------------------------------------------------------------
class Mode(StrEnum):
    hybrid = "hybrid"
    dense = "dense"
    keyword = "keyword"


class RetrievalParams(Params):
    store: str = Field("qdrant+local://:memory:", description="vector store URL the chunks are written to")
    modes: list[Mode] = Field(default=[Mode.hybrid, Mode.dense, Mode.keyword], min_length=1)
    questions: int | None = Field(None, ge=10, description="the first N questions (default all 100)")
    held_out: bool = Field(False, description="also fit the dense weight on one half, report the other")


def retrieval(params: RetrievalParams) -> TaskResult:
    """The Anthropic cookbook's retrieval set through rag.retrieve.Retriever (evals/rag_eval.py)."""
    return asyncio.run(_retrieval(params))


async def _retrieval(params: RetrievalParams) -> TaskResult:
    from evals import rag_eval
    from rag.embed import SentenceTransformerEmbedder
    from rag.retrieve import Retriever, SearchMode
    from rag.stores import open_store

    chunks, questions = rag_eval.load()
    questions = questions[: params.questions]
    embedder = SentenceTransformerEmbedder()
    store = await open_store(params.store)
    result = TaskResult()
    try:
        await rag_eval.index(store, embedder, chunks)
        retriever = Retriever(store, embedder)
        await retriever.keyword_index(rag_eval.COLLECTION)  # built once, before the timed queries
        result.add("chunks", len(chunks), INFO)
        result.add("questions", len(questions), INFO)
        for mode in params.modes:
            figures = await rag_eval.run_mode(retriever, questions, SearchMode(mode.value))
            for key, value in figures["all"].items():
                result.add(f"{mode.value}.{key}", value, UP)
            result.add(f"{mode.value}.latency_p50_ms", figures["latency_ms"]["p50"], DOWN)
            result.add(f"{mode.value}.latency_p99_ms", figures["latency_ms"]["p99"], DOWN)
        if params.held_out:
            _held_out_metrics(result, await rag_eval.held_out(retriever, questions))
    finally:
        await store.close()
    result.notes.append(
        f"k = {rag_eval.K}: recall@3 = |top 3 ∩ gold| / |gold|, MRR@3, nDCG@10 with binary gains; "
        f"embedder {embedder.name}, store {params.store}."
    )
    return result


def _held_out_metrics(result: TaskResult, held: dict[str, Any]) -> None:
    for fold in held["folds"].values():
        ((half, figures),) = ((k, v) for k, v in fold.items() if k != "dense_weight")
        result.add(f"held_out.{half}.dense_weight", fold["dense_weight"], INFO)
        for key, value in figures.items():
            result.add(f"held_out.{half}.{key}", value, UP)
    for key, value in held["rrf60"]["all"].items():
        result.add(f"held_out.rrf60.{key}", value, UP)


# ---- the registry ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    name: str
    summary: str
    params: type[Params]
    datasets: tuple[str, ...]  # every registered dataset the task reads
    run: Callable[[Any], TaskResult]
    # read where a mirror folder or the cache holds them, skipped where not (never downloaded)
    optional_datasets: tuple[str, ...] = ()


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            "routing_replay",
            "APGR, CPT, cost saving at a quality target and the cost-quality AUC on RouteLLM's outcomes",
            RoutingParams,
            (*SPLIT_DATASETS, *OUTCOME_DATASETS),
            routing_replay,
        ),
        Task(
            "category",
            "per-class precision, recall, F1 and the confusion matrix",
            CategoryParams,
            SPLIT_DATASETS,
            category,
        ),
        Task(
            "heldout",
            "category and difficulty on sources no training step read (the headline figures)",
            HeldoutParams,
            HELDOUT_DATASETS,
            heldout,
            ("wizardlm-testset", "arena-bench-v1", "arena-bench-v1-mixtral", "arena-bench-v1-gpt4"),
        ),
        Task(
            "pii",
            "sensitivity detection per entity type and per sentence; benign flag rates",
            PiiParams,
            PII_DATASETS,
            pii,
            # fivethirtyeight's public figures, read by the gateway from a mirror folder where there is
            # one: the look-alike flag rate is 10% with it, 16% on the shipped keys alone
            ("credsweeper-output", "public-figures"),
        ),
        Task(
            "retrieval",
            "recall@3, MRR@3, nDCG@10 and latency on the Anthropic docs set",
            RetrievalParams,
            RAG_DATASETS,
            retrieval,
        ),
        Task(
            "e2e",
            "queries through a running gateway and emulators: backend shares, cost, latency, leaks",
            e2e.E2EParams,
            e2e.DATASETS,
            e2e.run,
        ),
    )
}
