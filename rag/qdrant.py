"""The Qdrant `VectorStore`: a server (`qdrant://`, `qdrants://`) or qdrant-client's local mode.

Qdrant has no transactions, so a write is ordered to survive being killed: chunks are upserted by
their deterministic ids, then the source's other chunks are deleted, then its manifest point is
written, then the revision is bumped. Each collection `<name>` has a companion `<name>__manifest`
holding one point per source plus a meta point (dim, embedder, revision). The sync client runs on
the store's own threads; local mode gets exactly one, because its SQLite storage is bound to the
thread that opened it. This module must never print the API key.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ApiException, UnexpectedResponse

from rag.stores import ACCEPTED, RESERVED_SUFFIX, check_batch, redact_url, validate_name
from rag.types import Chunk, CollectionInfo, FileRecord, Filter, Hit, StoreError

T = TypeVar("T")

_MANIFEST_NS = uuid.UUID("0b6f2a8e-3c4d-4e7a-9a51-6f1d2c3b4a59")
META_ID = str(uuid.uuid5(_MANIFEST_NS, "\x00meta"))  # no source path contains NUL
BATCH = 256  # points per upsert request
PAGE = 1024  # points per scroll request
OVERFETCH = 4  # growth factor of the limit while a client-side prefix filter drops hits


def client_options(url: str) -> dict[str, Any]:
    """QdrantClient keyword arguments for a `qdrant://`, `qdrants://` or `qdrant+local://` URL."""
    if url.startswith("qdrant+local://"):
        location = url.removeprefix("qdrant+local://")
        if not location:
            raise StoreError(f"qdrant+local:// needs a path or :memory:; accepted: {ACCEPTED}")
        return {"location": ":memory:"} if location == ":memory:" else {"path": location}
    try:
        parts = urlsplit(url)
        port = parts.port or 6333
    except ValueError as error:
        raise StoreError(f"bad Qdrant URL {redact_url(url)!r}: {error}; accepted: {ACCEPTED}") from None
    query = dict(parse_qsl(parts.query))
    api_key = query.pop("api_key", None) or os.environ.get("QDRANT_API_KEY") or None
    if not parts.hostname or query or parts.path not in ("", "/"):
        raise StoreError(
            f"bad Qdrant URL {redact_url(url)!r}: give host, port and at most ?api_key= (collections are "
            f"named per call, not in the URL); accepted: {ACCEPTED}"
        )
    https = parts.scheme == "qdrants"
    return {
        "host": parts.hostname,
        "port": port,
        "https": https,
        "api_key": api_key,
        "check_compatibility": False,
    }


def parent_dirs(source: str) -> list[str]:
    """Every folder prefix of a source, each ending in "/": "a/b/c.md" -> ["a/", "a/b/"]."""
    parts = source.split("/")[:-1]
    return ["/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def to_payload(chunk: Chunk) -> dict[str, Any]:
    return {
        "source": chunk.source,
        "dirs": parent_dirs(chunk.source),
        "position": chunk.position,
        "text": chunk.text,
        "title": chunk.title,
        "headings": list(chunk.headings),
        "page": chunk.page,
        "content_hash": chunk.content_hash,
        "tags": list(chunk.tags),
    }


def to_chunk(point_id: Any, payload: dict[str, Any] | None) -> Chunk:
    p = payload or {}
    return Chunk(
        id=str(point_id),
        source=p["source"],
        text=p["text"],
        title=p.get("title", ""),
        headings=tuple(p.get("headings", ())),
        page=p.get("page"),
        position=p.get("position", 0),
        content_hash=p.get("content_hash", ""),
        tags=tuple(p.get("tags", ())),
    )


def to_filter(where: Filter | None) -> tuple[models.Filter | None, str | None]:
    """The server-side filter, and the prefix the client must still check (None: nothing left).

    Keyword fields have no prefix match, so each chunk carries `dirs`, its folder prefixes. A prefix
    ending in "/" is then an exact match on `dirs`; any other prefix ("docs/gui") is narrowed on the
    server to its folder part ("docs/") and finished on the client, over-fetching as needed.
    """
    if where is None:
        return None, None
    must: list[models.Condition] = []
    residual = None
    if where.path_prefix:
        cut = where.path_prefix.rfind("/") + 1
        if cut:
            must.append(
                models.FieldCondition(key="dirs", match=models.MatchValue(value=where.path_prefix[:cut]))
            )
        if cut != len(where.path_prefix):
            residual = where.path_prefix
    if where.tags:
        must.append(models.FieldCondition(key="tags", match=models.MatchAny(any=list(where.tags))))
    return (models.Filter(must=must) if must else None), residual


def by_source(source: str) -> models.FieldCondition:
    return models.FieldCondition(key="source", match=models.MatchValue(value=source))


def manifest_id(source: str) -> str:
    return str(uuid.uuid5(_MANIFEST_NS, source))


class QdrantStore:
    """`VectorStore` on Qdrant through the sync client on the store's own threads. Build it with
    `connect`; every public method is async and runs one sync `_method` off the event loop."""

    def __init__(self, client: QdrantClient, executor: ThreadPoolExecutor, url: str, local: bool) -> None:
        self._client = client
        self._executor = executor
        self._local = local
        self.url = redact_url(url)

    @classmethod
    async def connect(cls, url: str) -> QdrantStore:
        options = client_options(url)
        local = "host" not in options
        executor = ThreadPoolExecutor(max_workers=1 if local else 4, thread_name_prefix="qdrant")
        try:
            client = await asyncio.get_running_loop().run_in_executor(
                executor, partial(QdrantClient, **options)
            )
            store = cls(client, executor, url, local)
            await store._run(client.get_collections)  # fail now, not on the first write
        except (ApiException, OSError, RuntimeError, ValueError) as error:
            executor.shutdown(wait=False)
            raise StoreError(f"cannot open Qdrant store {redact_url(url)}: {error}") from error
        return store

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, partial(function, *args))
        except (ApiException, OSError, ValueError) as error:  # local mode: ValueError("... not found")
            raise StoreError(f"qdrant: {error}") from error

    async def open_collection(self, name: str, dim: int, embedder: str) -> CollectionInfo:
        return await self._run(self._open_collection, validate_name(name), dim, embedder)

    async def reset_collection(self, name: str, dim: int, embedder: str) -> CollectionInfo:
        return await self._run(self._reset_collection, validate_name(name), dim, embedder)

    async def info(self, name: str) -> CollectionInfo | None:
        return await self._run(self._info, validate_name(name))

    async def collections(self) -> list[CollectionInfo]:
        return await self._run(self._collections)

    async def manifest(self, name: str) -> dict[str, FileRecord]:
        return await self._run(self._manifest, validate_name(name))

    async def replace_source(
        self, name: str, record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        await self._run(self._replace_source, validate_name(name), record, chunks, vectors)

    async def delete_source(self, name: str, source: str) -> None:
        await self._run(self._delete_source, validate_name(name), source)

    async def sources(self, name: str) -> set[str]:
        return await self._run(self._sources, validate_name(name))

    async def search(self, name: str, vector: np.ndarray, k: int, where: Filter | None = None) -> list[Hit]:
        query = np.asarray(vector, dtype=np.float32)
        if query.ndim != 1:
            raise StoreError(f"a query is one vector, got shape {tuple(query.shape)}")
        return await self._run(self._search, validate_name(name), query, k, where)

    async def search_ids(
        self, name: str, vector: np.ndarray, k: int, where: Filter | None = None
    ) -> list[tuple[str, float]]:
        # a path prefix is matched on the payload here, so the payload comes back anyway
        return [(hit.chunk.id, hit.score) for hit in await self.search(name, vector, k, where)]

    async def chunks(self, name: str, where: Filter | None = None) -> list[Chunk]:
        return await self._run(self._chunks, validate_name(name), where)

    async def close(self) -> None:
        try:
            await self._run(self._client.close)
        finally:
            self._executor.shutdown(wait=True)

    # The sync halves, each run on the store's threads.

    def _open_collection(self, name: str, dim: int, embedder: str) -> CollectionInfo:
        self._ensure_collection(name, dim)
        self._ensure_collection(name + RESERVED_SUFFIX, 1)
        if self._meta(name) is None:
            # an earlier open may have died before this point: trust the chunks' actual size
            size = self._vector_size(name)
            self._write_meta(name, {"dim": size, "embedder": embedder, "revision": 0})
        return self._opened(name)

    def _reset_collection(self, name: str, dim: int, embedder: str) -> CollectionInfo:
        old = self._meta(name)
        revision = int(old["revision"]) + 1 if old else 1  # keeps climbing through a reset
        # forget the manifest first: however far this gets, ingest then redoes every file
        if self._client.collection_exists(name + RESERVED_SUFFIX):
            files = models.Filter(must_not=[models.HasIdCondition(has_id=[META_ID])])
            self._client.delete(name + RESERVED_SUFFIX, models.FilterSelector(filter=files), wait=True)
        if self._client.collection_exists(name):
            self._client.delete_collection(name)
        self._ensure_collection(name, dim)
        self._ensure_collection(name + RESERVED_SUFFIX, 1)
        self._write_meta(name, {"dim": dim, "embedder": embedder, "revision": revision})
        return self._opened(name)

    def _info(self, name: str) -> CollectionInfo | None:
        meta = self._meta(name)
        if meta is None or not self._client.collection_exists(name):
            return None
        count = self._client.count(name, exact=True).count
        return CollectionInfo(name, int(meta["dim"]), str(meta["embedder"]), int(meta["revision"]), count)

    def _collections(self) -> list[CollectionInfo]:
        names = sorted(c.name for c in self._client.get_collections().collections)
        found = [self._info(n) for n in names if not n.endswith(RESERVED_SUFFIX)]
        return [info for info in found if info is not None]

    def _manifest(self, name: str) -> dict[str, FileRecord]:
        self._require(name)
        files = models.Filter(must_not=[models.HasIdCondition(has_id=[META_ID])])
        records = {}
        for point in self._scroll(name + RESERVED_SUFFIX, files, True):
            p = point.payload or {}
            records[p["source"]] = FileRecord(
                p["source"], p["file_hash"], p["embedder"], p["chunker"], int(p["chunks"])
            )
        return records

    def _replace_source(
        self, name: str, record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray
    ) -> None:
        array = check_batch(record, chunks, vectors, int(self._require(name)["dim"]))
        for start in range(0, len(chunks), BATCH):
            batch = [
                models.PointStruct(id=chunks[i].id, vector=array[i].tolist(), payload=to_payload(chunks[i]))
                for i in range(start, min(start + BATCH, len(chunks)))
            ]
            self._client.upsert(name, points=batch, wait=True)
        keep: list[models.Condition] = (
            [models.HasIdCondition(has_id=[c.id for c in chunks])] if chunks else []
        )
        stale = models.Filter(must=[by_source(record.source)], must_not=keep)
        self._client.delete(name, models.FilterSelector(filter=stale), wait=True)
        entry: dict[str, Any] = {"source": record.source, "file_hash": record.file_hash}
        entry |= {"embedder": record.embedder, "chunker": record.chunker, "chunks": record.chunks}
        point = models.PointStruct(id=manifest_id(record.source), vector=[1.0], payload=entry)
        self._client.upsert(name + RESERVED_SUFFIX, points=[point], wait=True)
        self._bump(name)

    def _delete_source(self, name: str, source: str) -> None:
        self._require(name)
        chunks = models.Filter(must=[by_source(source)])
        self._client.delete(name, models.FilterSelector(filter=chunks), wait=True)
        entry = models.PointIdsList(points=[manifest_id(source)])
        self._client.delete(name + RESERVED_SUFFIX, entry, wait=True)
        self._bump(name)

    def _sources(self, name: str) -> set[str]:
        self._require(name)
        return {(p.payload or {})["source"] for p in self._scroll(name, None, ["source"])}

    def _search(self, name: str, query: np.ndarray, k: int, where: Filter | None) -> list[Hit]:
        if k <= 0:
            return []
        server_filter, prefix = to_filter(where)
        limit = k if prefix is None else k * OVERFETCH
        while True:
            points = self._client.query_points(
                name, query=query.tolist(), limit=limit, query_filter=server_filter, with_payload=True
            ).points
            hits = [Hit(to_chunk(p.id, p.payload), p.score) for p in points]
            if prefix is not None:
                hits = [hit for hit in hits if hit.chunk.source.startswith(prefix)]
            if len(hits) >= k or len(points) < limit:
                return hits[:k]
            limit *= OVERFETCH

    def _chunks(self, name: str, where: Filter | None) -> list[Chunk]:
        self._require(name)
        server_filter, prefix = to_filter(where)
        found = [to_chunk(p.id, p.payload) for p in self._scroll(name, server_filter, True)]
        if prefix is not None:
            found = [chunk for chunk in found if chunk.source.startswith(prefix)]
        return sorted(found, key=lambda chunk: (chunk.source, chunk.position))

    # Helpers.

    def _ensure_collection(self, collection: str, size: int) -> None:
        if self._client.collection_exists(collection):
            return
        vectors = models.VectorParams(size=size, distance=models.Distance.COSINE)
        try:
            self._client.create_collection(collection, vectors_config=vectors)
        except UnexpectedResponse:  # another process created it first
            if not self._client.collection_exists(collection):
                raise
        if size > 1 and not self._local:  # local mode has no payload indexes
            for field in ("source", "dirs", "tags"):
                self._client.create_payload_index(collection, field, models.PayloadSchemaType.KEYWORD)

    def _vector_size(self, collection: str) -> int:
        vectors = self._client.get_collection(collection).config.params.vectors
        assert isinstance(vectors, models.VectorParams)
        return vectors.size

    def _meta(self, name: str) -> dict[str, Any] | None:
        if not self._client.collection_exists(name + RESERVED_SUFFIX):
            return None
        points = self._client.retrieve(name + RESERVED_SUFFIX, ids=[META_ID], with_payload=True)
        return dict(points[0].payload or {}) if points else None

    def _write_meta(self, name: str, meta: dict[str, Any]) -> None:
        point = models.PointStruct(id=META_ID, vector=[1.0], payload=meta)
        self._client.upsert(name + RESERVED_SUFFIX, points=[point], wait=True)

    def _require(self, name: str) -> dict[str, Any]:
        """The collection's meta payload (dim, embedder, revision); StoreError when it is missing."""
        meta = self._meta(name)
        if meta is None:
            raise StoreError(f"no collection {name!r}", {"collection": name})
        return meta

    def _opened(self, name: str) -> CollectionInfo:
        info = self._info(name)
        if info is None:  # a concurrent reset between writing and reading back
            raise StoreError(f"collection {name!r} vanished while being opened", {"collection": name})
        return info

    def _bump(self, name: str) -> None:
        """Read, add one, write: not atomic, so two processes writing at once may bump only once."""
        meta = self._meta(name) or {}
        self._write_meta(name, {**meta, "revision": int(meta.get("revision", 0)) + 1})

    def _scroll(self, collection: str, where: models.Filter | None, payload: bool | list[str]) -> list[Any]:
        points: list[Any] = []
        offset = None
        while True:
            page, offset = self._client.scroll(
                collection, scroll_filter=where, limit=PAGE, offset=offset, with_payload=payload
            )
            points.extend(page)
            if offset is None:
                return points
