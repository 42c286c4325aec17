"""`turnout bench ingest`: ingest throughput against the embedder alone on the same texts, a rerun
against a full ingest, and LlamaIndex's IngestionPipeline when its Python is given."""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from evals.bench.data import (
    COLLECTION,
    TEMP_PG,
    TEMP_QDRANT,
    Stopwatch,
    bench_store,
    build_corpus,
    log,
)
from evals.bench.fmt import BenchResult, Bound, On, Target
from evals.bench.llamaindex import LLAMA_INGEST, llamaindex_python, run_llamaindex

ISSUE_LLAMAINDEX_INGEST = 7.2  # chunks/s, 20 SEC filings (issue figure)


# --- ingest -------------------------------------------------------------------------------------------


def prepared_batches(root: Path, embedder: Any, options: Any) -> tuple[list[list[str]], list[str], float]:
    """The passage texts ingest embeds, grouped as ingest groups them; failures; parse+chunk seconds.

    Uses the pipeline's own per-file step, so the texts are exactly ingest's, not a re-implementation.
    """
    from ingest.pipeline import FileStatus, Ingestor, discover, source_name
    from rag.retrieve import passage_text

    ingestor = Ingestor(cast(Any, None), embedder, options)
    started = time.perf_counter()
    files, _ = discover(root)
    batches: list[list[str]] = [[]]
    failures = []
    for path in files:
        prepared = ingestor._prepare(source_name(root, path), path, None)
        if prepared.status is FileStatus.failed:
            failures.append(prepared.source)
            continue
        if len(batches[-1]) >= options.batch_chunks:
            batches.append([])
        batches[-1].extend(passage_text(chunk) for chunk in prepared.chunks)
    return [batch for batch in batches if batch], failures, time.perf_counter() - started


def embed_alone(embedder: Any, batches: Sequence[list[str]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        embedder.embed(batch)
    return time.perf_counter() - started


async def bench_ingest(args: argparse.Namespace) -> BenchResult:
    from ingest.pipeline import IngestOptions, Ingestor
    from rag.embed import make_embedder

    result = BenchResult("ingest")
    with tempfile.TemporaryDirectory(prefix="turnout-bench-ingest-") as tmp:
        folder = Path(tmp)
        os.chmod(folder, 0o755)  # the embedded Postgres runs as another user when this is root
        corpus = args.corpus.resolve() if args.corpus else folder / "corpus"
        stats = {} if args.corpus else build_corpus(corpus, args.docs)
        embedder = make_embedder(args.embedder)
        options = IngestOptions(collection=COLLECTION)
        batches, failed_parse, parse_s = prepared_batches(corpus, embedder, options)
        chunks = sum(len(batch) for batch in batches)
        result.parameters = {
            "corpus": str(args.corpus or "generated from the Anthropic docs set"),
            **{f"corpus {k}": v for k, v in stats.items()},
            "chunks": chunks,
            "embedder": embedder.name,
            "store": args.store,
            "chunker": options.chunker,
            "batch chunks": options.batch_chunks,
        }
        embedder.embed(batches[0] if batches else ["warm up"])  # model load and first-call costs
        log(f"corpus {corpus}: {stats}; {chunks} chunks; timing the embedder alone")
        before = embed_alone(embedder, batches)
        log(f"embedder alone: {chunks / before:.1f} chunks/s; now a full ingest into {args.store}")
        async with bench_store(args.store, folder) as (store, _):
            await store.reset_collection(COLLECTION, embedder.dim, embedder.name)  # a fresh collection
            timed_store, timed_embedder = (
                Stopwatch(store, "replace_source"),
                Stopwatch(embedder, "embed", "aembed"),
            )
            report = await Ingestor(cast(Any, timed_store), cast(Any, timed_embedder), options).run(corpus)
            rerun = await Ingestor(store, embedder, options).run(corpus)
            if args.store not in (TEMP_PG, TEMP_QDRANT):
                await store.reset_collection(COLLECTION, embedder.dim, embedder.name)  # leave it empty
        log("the embedder alone once more, after the ingest")
        after = embed_alone(embedder, batches)
        embed_s = timed_embedder.seconds["embed"] + timed_embedder.seconds["aembed"]
        split = {"embed": embed_s, "store": timed_store.seconds["replace_source"]}
        ingest_rows(result, chunks, (before, after), report, rerun, split, parse_s)
        failures = report.failures or [(source, "failed when parsed alone") for source in failed_parse]
        result.add(
            "files turnout could not ingest",
            float(len(failures)),
            "files",
            target=Target(Bound.AT_MOST, 0, On.VALUE),
            note="; ".join(f"{source}: {why}" for source, why in failures),
        )
        if report.chunks != chunks:
            result.notes.append(f"ingest wrote {report.chunks} chunks, the baseline embedded {chunks}")
        llamaindex_ingest(args, result, corpus, embedder, options, report)
    return result


def ingest_rows(
    result: BenchResult,
    chunks: int,
    alone_s: tuple[float, float],
    report: Any,
    rerun: Any,
    split: dict[str, float],
    parse_s: float,
) -> None:
    from ingest.pipeline import FileStatus

    alone = result.add(
        "embedder alone: same passages, same batches",
        2 * chunks / sum(alone_s),
        "chunks/s",
        note="timed before and after the ingest: {:.1f} and {:.1f} chunks/s".format(
            *(chunks / seconds for seconds in alone_s)
        ),
    )
    result.add(
        "ingest end to end (Ingestor.run, fresh collection)",
        report.chunks / report.seconds,
        "chunks/s",
        baseline=alone.value,
        baseline_name="embedder alone",
        target=Target(Bound.AT_LEAST, 0.85),
    )
    total = report.seconds
    for name, seconds in (
        ("ingest: time inside embed calls", split["embed"]),
        ("ingest: time inside store writes (overlaps embedding)", split["store"]),
        ("parse + chunk, one pass (overlaps embedding in ingest)", parse_s),
    ):
        result.add(name, seconds, "s", baseline=total, baseline_name="ingest total")
    result.add(
        "rerun on the unchanged corpus",
        rerun.seconds,
        "s",
        baseline=total,
        baseline_name="full ingest",
        target=Target(Bound.AT_MOST, 0.02),
        note=f"{rerun.files[FileStatus.unchanged]} files unchanged, {rerun.chunks} chunks written",
    )


def llamaindex_ingest(
    args: argparse.Namespace, result: BenchResult, corpus: Path, embedder: Any, options: Any, report: Any
) -> None:
    from rag.embed import model_path

    python = llamaindex_python(args.llamaindex)
    if python is None:
        result.add(
            "LlamaIndex IngestionPipeline (issue figure, 20 SEC filings)",
            ISSUE_LLAMAINDEX_INGEST,
            "chunks/s",
            note="not measured in this run (no usable --llamaindex PYTHON); not comparable to this corpus",
        )
        return
    log("LlamaIndex IngestionPipeline on the same corpus")
    config = {
        "corpus": str(corpus),
        "model": model_path(embedder.name),
        "batch": getattr(embedder, "batch_size", 32),
        "max_tokens": options.max_tokens,
        "overlap": options.overlap,
    }
    try:
        llama = run_llamaindex(python, LLAMA_INGEST, config)
    except (RuntimeError, subprocess.SubprocessError, ValueError) as error:
        result.notes.append(f"LlamaIndex ingest failed, not measured: {error}")
        return
    rate = llama["chunks"] / llama["seconds"]
    result.add(
        "LlamaIndex IngestionPipeline, same corpus and model",
        rate,
        "chunks/s",
        note=f"{llama['chunks']} chunks from {llama['files']} files in {llama['seconds']:.1f} s, "
        f"{llama['parse_seconds'] / llama['seconds']:.0%} of it reading files; SentenceSplitter at "
        f"{options.max_tokens}/{options.overlap} MiniLM word pieces, embed batch {config['batch']}",
    )
    more = llama["chunks"] / max(report.chunks, 1) - 1
    result.add(
        "turnout ingest vs LlamaIndex, per chunk",
        report.chunks / report.seconds,
        "chunks/s",
        baseline=rate,
        baseline_name="LlamaIndex IngestionPipeline",
        note=f"LlamaIndex cuts the same text into {more:+.0%} chunks at the same size bound",
    )
    result.add(
        "LlamaIndex: seconds for the corpus (turnout's speed-up)",
        llama["seconds"],
        "s",
        baseline=report.seconds,
        baseline_name="turnout full ingest",
        target=Target(Bound.AT_LEAST, 2.0),
    )
    result.add(
        "files LlamaIndex skipped", float(len(llama["skipped"])), "files", note=", ".join(llama["skipped"])
    )
