"""`ingest PATH`: discover, parse, chunk, embed, upsert, prune, incrementally.

A collection mirrors one folder. The store's manifest holds, per file, its content hash, the embedder
and the chunker (with its options); a rerun skips files whose three match, replaces the others, and
deletes the chunks of files that are gone. A file's chunks and its manifest entry are written by one
`replace_source` call, which the stores make safe to interrupt, so a run killed at any point and run
again ends exactly where a clean run would. One bad file is reported and skipped; it never stops the
run, and nothing here swallows an error without counting it.

Parsing runs in a producer thread while the embedder runs in another (torch releases the GIL), and
the store write of one batch overlaps the embedding of the next.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ingest.chunker import CHUNKER_VERSION, chunk_document
from ingest.parsers import ParseError, parse_bytes, supported
from ingest.progress import Progress
from rag.embed import Embedder, embed_async
from rag.retrieve import passage_text
from rag.types import Chunk, FileRecord, VectorStore, chunk_id, content_hash

SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".turnout"}


class FileStatus(StrEnum):
    new = "new"
    changed = "changed"
    unchanged = "unchanged"
    failed = "failed"
    deleted = "deleted"


@dataclass(frozen=True)
class IngestOptions:
    collection: str = "docs"
    max_tokens: int = 200
    overlap: int = 32
    max_file_bytes: int = 50 * 2**20
    batch_chunks: int = 64
    tags: tuple[str, ...] = ()
    prune: bool = True
    encoding: str | None = None  # for text files that are neither UTF-8 nor UTF-16 with a BOM

    @property
    def chunker(self) -> str:
        """What a file's chunks were made with: a change re-ingests the file (tags included: they
        are stored with every chunk, and a rerun with other tags left the old ones)."""
        tags = f"/tags{','.join(sorted(set(self.tags)))}" if self.tags else ""
        return f"{CHUNKER_VERSION}/max{self.max_tokens}/overlap{self.overlap}{tags}"


@dataclass
class Report:
    files: dict[FileStatus, int] = field(default_factory=lambda: dict.fromkeys(FileStatus, 0))
    failures: list[tuple[str, str]] = field(default_factory=list)
    unsupported: int = 0
    chunks: int = 0
    seconds: float = 0.0
    reembedded: bool = False

    @property
    def done(self) -> int:
        return sum(count for status, count in self.files.items() if status is not FileStatus.deleted)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        rate = self.chunks / self.seconds if self.seconds else 0.0
        counts = ", ".join(f"{count} {status.value}" for status, count in self.files.items() if count)
        extra = f"; {self.unsupported} of unsupported types ignored" if self.unsupported else ""
        return (
            f"{counts or 'no files'}{extra}; {self.chunks} chunks written in {self.seconds:.1f} s "
            f"({rate:.1f} chunks/s)"
        )


@dataclass
class Prepared:
    """One file read, hashed, parsed and chunked (or the reason it could not be)."""

    source: str
    status: FileStatus
    file_hash: str = ""
    chunks: list[Chunk] = field(default_factory=list)
    error: str | None = None


def discover(root: Path, problems: list[tuple[str, str]] | None = None) -> tuple[list[Path], int]:
    """Supported files under root (or root itself), sorted; and how many others were ignored. A
    folder that cannot be listed and a link to nothing go into `problems` as (path under root, why)."""
    if root.is_file():
        return ([root], 0) if supported(root) else ([], 1)
    found: list[Path] = []
    ignored = 0

    def unlisted(error: OSError) -> None:
        if problems is not None and error.filename is not None:
            problems.append(
                (source_name(root, Path(error.filename)), f"folder not readable ({error.strerror})")
            )

    for folder, dirs, files in os.walk(root, onerror=unlisted):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(folder) / name
            if name.startswith("."):
                continue
            if not path.is_file():
                if problems is not None and path.is_symlink() and not path.exists() and supported(path):
                    problems.append((source_name(root, path), "a link to a file that does not exist"))
                continue
            if supported(path):
                found.append(path)
            else:
                ignored += 1
    return found, ignored


def source_name(root: Path, path: Path) -> str:
    return path.name if root.is_file() else path.relative_to(root).as_posix()


def known_as(path: Path, sources: Iterable[str]) -> str:
    """The name a file named alone goes under: the longest stored source its path ends with (an
    earlier `ingest docs` stored docs/sub/a.md as sub/a.md), else its own name."""
    parts = path.resolve().parts
    best = path.name
    for source in sources:
        tail = tuple(source.split("/"))
        if len(tail) > best.count("/") + 1 and parts[-len(tail) :] == tail:
            best = source
    return best


class Ingestor:
    def __init__(self, store: VectorStore, embedder: Embedder, options: IngestOptions) -> None:
        self.store = store
        self.embedder = embedder
        self.options = options

    async def run(self, root: Path, progress: Progress | None = None) -> Report:
        started = time.perf_counter()
        report = Report()
        progress = progress or Progress()
        options = self.options
        problems: list[tuple[str, str]] = []
        files, report.unsupported = discover(root, problems)
        progress.started(len(files))
        for source, reason in problems:
            report.failures.append((source, reason))
            progress.failed(source, reason)
        dim = self._dim()
        info = await self.store.open_collection(options.collection, dim, self.embedder.name)
        dropped: set[str] = set()  # what a re-embedding drops: every source stored before it
        listed = "." not in {source for source, _ in problems}  # an unlistable root resets nothing
        if listed and (info.embedder != self.embedder.name or info.dim != dim):
            dropped = set(await self.store.manifest(options.collection))
            await self.store.reset_collection(options.collection, dim, self.embedder.name)
            report.reembedded = True
        manifest = await self.store.manifest(options.collection)
        if root.is_file():
            wanted = {known_as(path, manifest): path for path in files}
        else:
            wanted = {source_name(root, path): path for path in files}
        await self._write_all(wanted, manifest, report, progress)
        unread = {source for source, _ in problems}
        # one file named alone updates that file only; a root that cannot be listed deletes nothing
        if options.prune and not root.is_file() and "." not in unread:
            # what could not be read is not gone: a folder's files stay until it can be listed again
            under = tuple(source + "/" for source in unread)
            present = set(wanted) | {
                source for source in manifest if source in unread or source.startswith(under)
            }
            await self._prune(present, manifest, report)
        # a re-embedding keeps only what this run wrote: a source kept by --no-prune or outside a
        # file named alone is gone too, and the report says so (it said "deleted: 0")
        if dropped:  # what is stored now is what this run wrote: a file that failed is gone too
            report.files[FileStatus.deleted] += len(
                dropped - set(await self.store.manifest(options.collection))
            )
        report.seconds = time.perf_counter() - started
        return report

    def _dim(self) -> int:
        if not self.embedder.dim:  # a model whose size is only known once loaded
            self.embedder.embed(["dimension probe"])
        return self.embedder.dim

    async def _write_all(
        self,
        wanted: dict[str, Path],
        manifest: dict[str, FileRecord],
        report: Report,
        progress: Progress,
    ) -> None:
        items: queue.Queue[Prepared | None] = queue.Queue(maxsize=256)
        stop = threading.Event()
        producer = threading.Thread(
            target=self._produce, args=(wanted, manifest, items, stop), name="ingest-parse", daemon=True
        )
        producer.start()
        writing: asyncio.Task[None] | None = None
        try:
            async for batch in self._batches(items, report, progress):
                texts = [passage_text(chunk) for prepared in batch for chunk in prepared.chunks]
                vectors = await embed_async(self.embedder, texts) if texts else None
                if writing is not None:
                    await writing
                writing = asyncio.create_task(self._write(batch, vectors, report, progress))
            if writing is not None:
                await writing
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    items.get_nowait()
                except queue.Empty:
                    producer.join(0.05)

    def _produce(
        self,
        wanted: dict[str, Path],
        manifest: dict[str, FileRecord],
        items: queue.Queue[Prepared | None],
        stop: threading.Event,
    ) -> None:
        try:
            for source, path in wanted.items():
                if stop.is_set():
                    return
                items.put(self._prepare(source, path, manifest.get(source)))
        finally:
            items.put(None)

    def _prepare(self, source: str, path: Path, previous: FileRecord | None) -> Prepared:
        options = self.options
        try:
            if path.stat().st_size > options.max_file_bytes:
                limit = options.max_file_bytes / 2**20
                return Prepared(
                    source, FileStatus.failed, error=f"file over the {limit:g} MB limit (--max-file-mb)"
                )
            data = path.read_bytes()
        except OSError as error:
            return Prepared(source, FileStatus.failed, error=f"cannot read: {error.strerror or error}")
        file_hash = content_hash(data)
        if (
            previous is not None
            and previous.file_hash == file_hash
            and previous.embedder == self.embedder.name
            and previous.chunker == options.chunker
        ):
            return Prepared(source, FileStatus.unchanged, file_hash)
        try:
            document = parse_bytes(data, path.suffix, path.name, encoding=options.encoding)
            pieces = chunk_document(
                document, self.embedder.count_tokens, max_tokens=options.max_tokens, overlap=options.overlap
            )
        except ParseError as error:
            return Prepared(source, FileStatus.failed, file_hash, error=str(error))
        except Exception as error:  # a parser bug must cost one file, not the run
            return Prepared(source, FileStatus.failed, file_hash, error=f"{type(error).__name__}: {error}")
        chunks: list[Chunk] = []
        seen: set[tuple[tuple[str, ...], int | None, str]] = set()
        for piece in pieces:
            text_hash = content_hash(piece.text)
            # a log's repeated lines: one copy retrieves them (thousands of equal vectors cut the
            # HNSW graph, and a dense search missed the best chunk of the rest); the same text under
            # other headings is other content ("Yes." under two questions of an FAQ)
            if (piece.headings, piece.page, text_hash) in seen:
                continue
            seen.add((piece.headings, piece.page, text_hash))
            position = len(chunks)
            chunks.append(
                Chunk(
                    id=chunk_id(options.collection, source, position, text_hash),
                    source=source,
                    text=piece.text,
                    title=document.title,
                    headings=piece.headings,
                    page=piece.page,
                    position=position,
                    content_hash=text_hash,
                    tags=options.tags,
                )
            )
        status = FileStatus.new if previous is None else FileStatus.changed
        return Prepared(source, status, file_hash, chunks)

    async def _batches(
        self, items: queue.Queue[Prepared | None], report: Report, progress: Progress
    ) -> AsyncIterator[list[Prepared]]:
        """Files to write, grouped until a batch holds `batch_chunks` chunks; the rest is counted.
        Waiting for the parser happens off the event loop, so the previous batch's write goes on."""
        batch: list[Prepared] = []
        size = 0
        while (prepared := await asyncio.to_thread(items.get)) is not None:
            if prepared.status in (FileStatus.unchanged, FileStatus.failed):
                report.files[prepared.status] += 1
                if prepared.error is not None:
                    report.failures.append((prepared.source, prepared.error))
                    progress.failed(prepared.source, prepared.error)
                progress.advanced(report.done, report.chunks)
                continue
            batch.append(prepared)
            size += len(prepared.chunks)
            if size >= self.options.batch_chunks:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    async def _write(
        self, batch: list[Prepared], vectors: object, report: Report, progress: Progress
    ) -> None:
        import numpy as np

        matrix = np.asarray(vectors) if vectors is not None else np.zeros((0, self._dim()), np.float32)
        offset = 0
        for prepared in batch:
            count = len(prepared.chunks)
            record = FileRecord(
                prepared.source, prepared.file_hash, self.embedder.name, self.options.chunker, count
            )
            await self.store.replace_source(
                self.options.collection, record, prepared.chunks, matrix[offset : offset + count]
            )
            offset += count
            report.files[prepared.status] += 1
            report.chunks += count
            progress.advanced(report.done, report.chunks)

    async def _prune(self, present: set[str], manifest: dict[str, FileRecord], report: Report) -> None:
        """Delete what belongs to files that are gone, including chunks an interrupted run left
        without a manifest entry."""
        stored = set(manifest) | await self.store.sources(self.options.collection)
        for source in sorted(stored - present):
            await self.store.delete_source(self.options.collection, source)
            if source in manifest:
                report.files[FileStatus.deleted] += 1
