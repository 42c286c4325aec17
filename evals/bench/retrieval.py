"""`turnout bench retrieval`: search latency over a large collection against the query embedding
alone, and retrieval quality among distractors; LlamaIndex's dense retriever when given."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evals.bench.data import (
    BASE_COLLECTION,
    COLLECTION,
    TEMP_PG,
    TEMP_QDRANT,
    bench_store,
    filler_chunks,
    filler_texts,
    filler_vectors,
    load_chunks,
    log,
    percentile,
    pool_texts,
    settle,
    zipf_vocabulary,
)
from evals.bench.fmt import BenchResult, Bound, On, Target
from evals.bench.llamaindex import LLAMA_RETRIEVE, llamaindex_python, run_llamaindex

ISSUE_LLAMAINDEX_QUERY_MS = 496.0  # dense retriever p50 per query (issue figure)


# --- retrieval ----------------------------------------------------------------------------------------


async def build_collections(args: argparse.Namespace, store: Any, embedder: Any, result: BenchResult) -> Any:
    """The 232-chunk baseline collection and the N-chunk one; returns (chunks, vectors, questions)."""
    from evals.rag_eval import load
    from rag.retrieve import passage_text

    rng = np.random.default_rng(args.seed)
    real, questions = load()
    started = time.perf_counter()
    real_vectors = embedder.embed([passage_text(chunk) for chunk in real])
    result.add("embedder on the real chunks", len(real) / (time.perf_counter() - started), "chunks/s")
    extra = pool_texts(args.pool) if args.pool else []
    pool = np.concatenate([real_vectors, embedder.embed(extra)]) if extra else real_vectors
    fillers = max(0, args.chunks - len(real))
    vocabulary = zipf_vocabulary([chunk.text for chunk in real] + extra, 50_000)
    log(f"making {fillers:,} filler chunks (Zipf text, mixed real embeddings)")
    texts = filler_texts(vocabulary, fillers, rng)
    filler, fit = filler_vectors(pool, fillers, rng)
    chunks = [*real, *filler_chunks(texts, vocabulary, args.per_source, rng)]
    vectors = np.concatenate([real_vectors, filler])
    result.parameters.update(
        {
            "filler vectors": f"convex mixtures of 3 of {len(pool)} real embeddings ({len(real)} docs chunks, "
            f"{len(extra)} Arena-Hard/GSM8K prompts) + Gaussian noise of scale {fit['sigma']:.3f}, renormalised",
            "nearest-real cosine, real vs filler": f"{fit['real nearest cosine']:.3f} vs {fit['filler nearest cosine']:.3f}",
            "filler text": f"Zipf (p ∝ 1/rank) over {len(vocabulary):,} words: the docs' and prompts' by "
            "frequency, then made-up ones; 60-180 words, 50 chunks per made-up path",
        }
    )
    for name in (BASE_COLLECTION, COLLECTION):
        await store.reset_collection(name, embedder.dim, embedder.name)
    await load_chunks(store, BASE_COLLECTION, real, real_vectors)
    log(f"loading {len(chunks):,} chunks into {store.url}")
    seconds = await load_chunks(store, COLLECTION, chunks, vectors)
    result.add(f"load {len(chunks):,} chunks (replace_source, HNSW)", len(chunks) / seconds, "chunks/s")
    return chunks, vectors, questions


async def time_queries(
    retriever: Any, embedder: Any, questions: Sequence[dict[str, Any]], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[list[str]]]]:
    """Latency per query for the embedding alone and each search mode, interleaved query by query
    (the order rotating) so that drift on a shared machine hits all alike; the first round's sources."""
    from rag.retrieve import SearchMode

    steps: list[SearchMode | None] = [None, SearchMode.HYBRID, SearchMode.DENSE, SearchMode.KEYWORD]
    latencies: dict[str, list[float]] = {"embed": [], **{mode.value: [] for mode in SearchMode}}
    sources: dict[str, list[list[str]]] = {mode.value: [] for mode in SearchMode}
    for question in questions[:5]:  # warm-up
        await retriever.search(COLLECTION, question["question"], k=5)
    for round_ in range(rounds):
        for number, question in enumerate(questions):
            shift = (number + round_) % len(steps)
            for mode in steps[shift:] + steps[:shift]:
                started = time.perf_counter()
                if mode is None:
                    embedder.embed([question["question"]])
                else:
                    hits = await retriever.search(COLLECTION, question["question"], k=5, mode=mode)
                latencies["embed" if mode is None else mode.value].append(time.perf_counter() - started)
                if mode is not None and round_ == 0:
                    sources[mode.value].append([hit.chunk.source for hit in hits])
    return latencies, sources


def quality(questions: Sequence[dict[str, Any]], sources: Sequence[Sequence[str]]) -> tuple[float, float]:
    from evals.rag_eval import score

    rows = [score(links, set(q["correct_chunks"])) for q, links in zip(questions, sources, strict=True)]
    return statistics.fmean(r[0] for r in rows), statistics.fmean(r[1] for r in rows)


async def base_sources(retriever: Any, questions: Sequence[dict[str, Any]]) -> dict[str, list[list[str]]]:
    from rag.retrieve import SearchMode

    out: dict[str, list[list[str]]] = {}
    for mode in SearchMode:
        out[mode.value] = [
            [
                hit.chunk.source
                for hit in await retriever.search(BASE_COLLECTION, q["question"], k=5, mode=mode)
            ]
            for q in questions
        ]
    return out


def report_latency(result: BenchResult, latencies: dict[str, list[float]]) -> None:
    ms = {name: [value * 1000 for value in values] for name, values in latencies.items()}
    embed50, embed99 = percentile(ms["embed"], 0.5), percentile(ms["embed"], 0.99)
    result.add("query embedding alone (embedder.embed([q])) p50", embed50, "ms")
    result.add("query embedding alone p99", embed99, "ms")
    versus = {"baseline_name": "query embedding alone"}
    result.add(
        "hybrid search k=5, query embedding included, p50",
        percentile(ms["hybrid"], 0.5),
        "ms",
        baseline=embed50,
        target=Target(Bound.AT_MOST, 15.0, On.VALUE),
        **versus,
    )
    result.add("hybrid search p99", percentile(ms["hybrid"], 0.99), "ms", baseline=embed99, **versus)
    result.add("dense only p50", percentile(ms["dense"], 0.5), "ms", baseline=embed50, **versus)
    result.add("keyword only (BM25) p50", percentile(ms["keyword"], 0.5), "ms")


def report_quality(
    result: BenchResult,
    questions: Sequence[dict[str, Any]],
    big: dict[str, list[list[str]]],
    base: dict[str, list[list[str]]],
    chunks: int,
) -> None:
    for mode in ("hybrid", "dense", "keyword"):
        recall, mrr = quality(questions, big[mode])
        base_recall, base_mrr = quality(questions, base[mode])
        for metric, value, baseline in (("recall@3", recall, base_recall), ("MRR@3", mrr, base_mrr)):
            result.add(
                f"{mode} {metric}, {chunks:,} chunks",
                value,
                "",
                baseline=baseline,
                baseline_name="the 232 real chunks alone",
            )


async def llamaindex_retrieval(
    python: str, chunks: Sequence[Any], vectors: np.ndarray, questions: Sequence[dict[str, Any]], folder: Path
) -> dict[str, Any]:
    from rag.embed import model_path

    np.save(folder / "vectors.npy", vectors)
    with open(folder / "nodes.jsonl", "w", encoding="utf-8") as handle:
        for chunk in chunks:
            handle.write(json.dumps({"id": chunk.id, "text": chunk.text, "source": chunk.source}) + "\n")
    config = {
        "vectors": str(folder / "vectors.npy"),
        "nodes": str(folder / "nodes.jsonl"),
        "model": model_path(),
        "k": 5,
        "questions": [q["question"] for q in questions],
    }
    return await asyncio.to_thread(run_llamaindex, python, LLAMA_RETRIEVE, config)


async def bench_retrieval(args: argparse.Namespace) -> BenchResult:
    from rag.embed import make_embedder
    from rag.retrieve import Retriever

    result = BenchResult("retrieval", {"chunks": args.chunks, "store": args.store, "k": 5})
    with tempfile.TemporaryDirectory(prefix="turnout-bench-retrieval-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)  # the embedded Postgres runs as another user when this is root
        embedder = make_embedder(args.embedder)
        embedder.embed(["warm up"])
        result.parameters["embedder"] = embedder.name
        async with bench_store(args.store, folder) as (store, url):
            chunks, vectors, questions = await build_collections(args, store, embedder, result)
            if await settle(url):
                result.parameters["before timing"] = "VACUUM ANALYZE"
            retriever = Retriever(store, embedder)
            started = time.perf_counter()
            await retriever.keyword_index(COLLECTION)
            result.add(
                f"keyword index build, once ({len(chunks):,} chunks)", time.perf_counter() - started, "s"
            )
            await retriever.keyword_index(BASE_COLLECTION)
            rounds = max(1, math.ceil(args.queries / len(questions)))
            result.parameters["timed queries per mode"] = rounds * len(questions)
            log(f"timing {rounds * len(questions)} queries per mode")
            latencies, sources = await time_queries(retriever, embedder, questions, rounds)
            base = await base_sources(retriever, questions)
            if args.store not in (TEMP_PG, TEMP_QDRANT):
                for name in (BASE_COLLECTION, COLLECTION):  # leave the user's store without our chunks
                    await store.reset_collection(name, embedder.dim, embedder.name)
        report_latency(result, latencies)
        report_quality(result, questions, sources, base, len(chunks))
        python = llamaindex_python(args.llamaindex)
        if python is None:
            result.add(
                "LlamaIndex dense retriever p50 (issue figure)",
                ISSUE_LLAMAINDEX_QUERY_MS,
                "ms",
                note="not measured in this run (no usable --llamaindex PYTHON)",
            )
            return result
        log(f"LlamaIndex VectorStoreIndex (in memory) over the same {len(chunks):,} chunks and vectors")
        try:
            llama = await llamaindex_retrieval(python, chunks, vectors, questions, folder)
        except (RuntimeError, subprocess.SubprocessError, ValueError) as error:
            result.notes.append(f"LlamaIndex retrieval failed, not measured: {error}")
            return result
    llama_ms = [value * 1000 for value in llama["latencies"]]
    result.add(
        "LlamaIndex dense retriever p50 (VectorStoreIndex in memory, same vectors)",
        percentile(llama_ms, 0.5),
        "ms",
        baseline=percentile([v * 1000 for v in latencies["dense"]], 0.5),
        baseline_name="turnout dense only p50",
        note=f"index built in {llama['build_seconds']:.1f} s; p99 {percentile(llama_ms, 0.99):.0f} ms",
    )
    result.add("LlamaIndex dense retriever p99", percentile(llama_ms, 0.99), "ms")
    recall, mrr = quality(questions, llama["sources"])
    turnout_recall, turnout_mrr = quality(questions, sources["dense"])
    result.add(
        "LlamaIndex dense recall@3", recall, "", baseline=turnout_recall, baseline_name="turnout dense"
    )
    result.add("LlamaIndex dense MRR@3", mrr, "", baseline=turnout_mrr, baseline_name="turnout dense")
    return result
