"""The shapes that ingest, the stores and retrieval share, and the `VectorStore` protocol.

A store holds named collections. Each collection has chunks (text, metadata, one dense vector each)
and a manifest: one `FileRecord` per source file, which is how a rerun of ingest knows what changed.
Chunk ids are deterministic (see `chunk_id`), so writing the same file twice never duplicates it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

_ID_NAMESPACE = uuid.UUID("5f1c3e0a-7d7e-4b8e-9f57-0d7a4c1b2e11")


def content_hash(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def chunk_id(collection: str, source: str, position: int, text_hash: str) -> str:
    """A UUID (Qdrant wants UUIDs or integers) that only depends on what the chunk is and where."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{collection}\x00{source}\x00{position}\x00{text_hash}"))


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str
    source: str  # path relative to the ingest root, POSIX separators
    text: str
    title: str = ""
    headings: tuple[str, ...] = ()  # heading path, outermost first
    page: int | None = None  # 1-based PDF page
    position: int = 0  # index of the chunk within its source
    content_hash: str = ""  # sha256 of text
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FileRecord:
    """A manifest entry: what ingest last wrote for one source file."""

    source: str
    file_hash: str
    embedder: str
    chunker: str
    chunks: int


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float


@dataclass(frozen=True, slots=True)
class Filter:
    """Metadata filters: a source path prefix, and tags of which a chunk must carry at least one."""

    path_prefix: str | None = None
    tags: tuple[str, ...] = ()

    def admits(self, chunk: Chunk) -> bool:
        if self.path_prefix and not chunk.source.startswith(self.path_prefix):
            return False
        return not self.tags or any(tag in chunk.tags for tag in self.tags)


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    name: str
    dim: int
    embedder: str  # the embedder the stored vectors came from
    revision: int  # bumped by every write; retrieval rebuilds its keyword index when it moves
    chunks: int = 0


@dataclass(slots=True)
class StoreError(Exception):
    message: str
    details: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


class VectorStore(Protocol):
    """One contract, two engines (pgvector, Qdrant); tests/test_store_contract.py runs against both.

    Every method but `info` raises StoreError for a collection that does not exist (`info` returns
    None). A collection's revision never decreases, resets included. Writes are checked before
    anything is stored: the vectors' shape and dimension, chunks belonging to the record's source,
    unique ids. `url` is for display: passwords and API keys in it are replaced by `***`.
    """

    url: str

    async def open_collection(self, name: str, dim: int, embedder: str) -> CollectionInfo:
        """Create the collection if it is missing; return what is stored (the embedder may differ)."""
        ...

    async def reset_collection(self, name: str, dim: int, embedder: str) -> CollectionInfo:
        """Drop every chunk and manifest entry, and record the new dimension and embedder."""
        ...

    async def info(self, name: str) -> CollectionInfo | None: ...

    async def collections(self) -> list[CollectionInfo]: ...

    async def manifest(self, name: str) -> dict[str, FileRecord]: ...

    async def replace_source(
        self, name: str, record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        """Make the source's chunks exactly `chunks`, then record `record` in the manifest.

        Killed at any point, a rerun of the same call leaves no duplicate and no stale chunk: either
        it is one transaction, or the chunks are upserted by id, the stale ones deleted, and the
        manifest written last (so an interrupted file has no manifest entry and is redone).
        """
        ...

    async def delete_source(self, name: str, source: str) -> None:
        """Remove a source's chunks, then its manifest entry."""
        ...

    async def sources(self, name: str) -> set[str]:
        """Every source that has chunks (including ones an interrupted run left without a manifest)."""
        ...

    async def search(self, name: str, vector: np.ndarray, k: int, where: Filter | None = None) -> list[Hit]:
        """Nearest chunks by cosine similarity (score: higher is closer), best first."""
        ...

    async def search_ids(
        self, name: str, vector: np.ndarray, k: int, where: Filter | None = None
    ) -> list[tuple[str, float]]:
        """`search` without the payload: (chunk id, score) pairs, for a caller that holds the chunks."""
        ...

    async def chunks(self, name: str, where: Filter | None = None) -> list[Chunk]:
        """Every chunk of the collection (for the keyword index and for checks)."""
        ...

    async def close(self) -> None: ...
