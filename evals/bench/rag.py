"""`turnout bench ingest` and `turnout bench retrieval`: speed and quality against baselines from the same run.

ingest: a corpus (by default PDFs and Markdown written from the Anthropic docs set) goes through
`Ingestor.run` into a fresh collection; the baseline is the embedder alone on exactly the passages
ingest embeds, in ingest's batches, timed in the same process before and after it. A rerun on the unchanged
corpus is timed against the full run, and LlamaIndex's IngestionPipeline, when an install of it is
given, runs on the same files with the same model in a subprocess. retrieval: the 232 real chunks
plus synthetic fillers up to N chunks in pgvector (HNSW); `Retriever.search` latency (query embedding
included) against the query embedding alone, and recall@3 / MRR@3 against the 232-chunk collection.
Everything runs in temporary folders and a temporary Postgres unless a store is given; nothing here
writes outside them except `--out`, and no loop is unbounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evals.bench.data import (
    BASE_COLLECTION,
    COLLECTION,
    TEMP_PG,
    TEMP_QDRANT,
    log,
)
from evals.bench.fmt import BenchResult
from evals.bench.ingest import bench_ingest
from evals.bench.retrieval import bench_retrieval

# --- command line -------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="turnout bench", description=(__doc__ or "").splitlines()[0])
    suites = root.add_subparsers(dest="suite", required=True)
    store_help = (
        f"{TEMP_PG} (default: an embedded Postgres in a temporary folder), {TEMP_QDRANT} (Qdrant local "
        "mode in a temporary folder), or a store URL (postgresql://..., qdrant://..., qdrant+local://PATH); "
        f"the bench resets the collections {COLLECTION!r} and {BASE_COLLECTION!r} there"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=TEMP_PG, help=store_help)
    common.add_argument(
        "--embedder", help="sentence-transformers model (default: TURNOUT_EMBEDDER, else MiniLM)"
    )
    common.add_argument("--out", type=Path, metavar="DIR", help="also write <suite>.json and <suite>.md here")
    common.add_argument(
        "--llamaindex",
        metavar="PYTHON",
        help="the python of a venv with llama-index-core, llama-index-readers-file and "
        "llama-index-embeddings-huggingface: measure LlamaIndex on the same data in the same run",
    )
    ingest = suites.add_parser(
        "ingest", parents=[common], help="ingest throughput vs the embedder alone, rerun cost, LlamaIndex"
    )
    ingest.add_argument(
        "--corpus", type=Path, help="a folder of your own (default: a generated PDF+Markdown corpus)"
    )
    ingest.add_argument(
        "--docs", type=int, help="generated corpus: only the first N documentation pages (of 45)"
    )
    retrieval = suites.add_parser(
        "retrieval",
        parents=[common],
        help="search latency vs the query embedding alone, quality under distractors",
    )
    retrieval.add_argument("--chunks", type=int, default=100_000, help="collection size (default 100,000)")
    retrieval.add_argument(
        "--queries", type=int, default=300, help="at least this many timed queries per mode"
    )
    retrieval.add_argument(
        "--pool", type=int, default=400, help="unrelated real prompts embedded to shape the filler vectors"
    )
    retrieval.add_argument("--per-source", type=int, default=50, help="filler chunks per made-up file")
    retrieval.add_argument("--seed", type=int, default=0)
    return root


def _check(args: argparse.Namespace) -> str | None:
    if args.suite == "ingest" and args.corpus is not None and not args.corpus.is_dir():
        return f"--corpus {args.corpus}: not a folder"
    if args.suite == "ingest" and args.docs is not None and args.docs < 1:
        return "--docs must be at least 1"
    if args.suite == "retrieval" and not (300 <= args.chunks <= 10_000_000):
        return "--chunks must be between 300 and 10,000,000"
    if args.suite == "retrieval" and (args.queries < 1 or args.pool < 0 or args.per_source < 1):
        return "--queries and --per-source must be positive, --pool at least 0"
    return None


def main(argv: list[str]) -> int:
    """`turnout bench ingest|retrieval ...`: print the result table; 2 on a bad argument or store."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    if problem := _check(args):
        print(f"turnout bench: {problem}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from ingest.cli import quiet_libraries
    from rag.types import StoreError

    quiet_libraries()
    run: Callable[[argparse.Namespace], Any] = bench_ingest if args.suite == "ingest" else bench_retrieval
    try:
        result: BenchResult = asyncio.run(run(args))
    except StoreError as error:
        print(f"turnout bench: {error}", file=sys.stderr)
        return 2
    print(result.finish().to_markdown(), end="", flush=True)
    if args.out is not None:
        for path in result.write(args.out):
            log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
