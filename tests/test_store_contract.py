"""One contract suite for every `VectorStore`: pgvector on the session's Postgres, Qdrant local mode.

Each test opens a fresh store inside its own event loop (a psycopg pool belongs to one loop) and
works on a collection nobody else uses. Vectors come from the hash embedder, so every expectation
here is exact and nothing needs a model.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.stores import open_store, redact_url
from rag.testing import HashEmbedder
from rag.types import Chunk, FileRecord, Filter, StoreError, VectorStore, chunk_id, content_hash
from tests.conftest import run

EMBEDDER = HashEmbedder(64, "hash-64")
SMALL = HashEmbedder(32, "hash-32")


@pytest.fixture(params=["pgvector", "qdrant"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "pgvector":
        return str(request.getfixturevalue("pg_url"))
    return f"qdrant+local://{tmp_path / 'qdrant'}"


@pytest.fixture
def name() -> str:
    return f"contract_{uuid.uuid4().hex[:12]}"


def against(url: str, body: Callable[[VectorStore], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await open_store(url)
        try:
            await body(store)
        finally:
            await store.close()

    run(main())


def make_chunks(
    collection: str, source: str, texts: Sequence[str], tags: tuple[str, ...] = ()
) -> list[Chunk]:
    return [
        Chunk(
            id=chunk_id(collection, source, position, content_hash(text)),
            source=source,
            text=text,
            title=f"Title of {source}",
            headings=("Guide", f"Part {position}"),
            page=position + 1 if position % 2 else None,
            position=position,
            content_hash=content_hash(text),
            tags=tags,
        )
        for position, text in enumerate(texts)
    ]


def record_of(source: str, chunks: Sequence[Chunk], embedder: HashEmbedder = EMBEDDER) -> FileRecord:
    file_hash = content_hash("\n".join(chunk.text for chunk in chunks))
    return FileRecord(source, file_hash, embedder.name, "test-chunker", len(chunks))


def vectors_of(chunks: Sequence[Chunk], embedder: HashEmbedder = EMBEDDER) -> np.ndarray:
    return embedder.embed([chunk.text for chunk in chunks])


async def write(
    store: VectorStore,
    collection: str,
    source: str,
    texts: Sequence[str],
    tags: tuple[str, ...] = (),
    embedder: HashEmbedder = EMBEDDER,
) -> list[Chunk]:
    chunks = make_chunks(collection, source, texts, tags)
    await store.replace_source(
        collection, record_of(source, chunks, embedder), chunks, vectors_of(chunks, embedder)
    )
    return chunks


def ids(chunks: Sequence[Chunk]) -> list[str]:
    return sorted(chunk.id for chunk in chunks)


class Killed(Exception):
    """Stands in for the process dying in the middle of a write."""


class KilledOnSecondRead(Sequence[Chunk]):
    """Chunks that die the second time item `at` is read: a store checks a batch in one pass and
    writes it in another, so the kill lands in the middle of the write."""

    def __init__(self, chunks: list[Chunk], at: int) -> None:
        self.chunks, self.at, self.reads = chunks, at, 0

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, index: Any) -> Any:
        if index == self.at:
            self.reads += 1
            if self.reads >= 2:
                raise Killed
        return self.chunks[index]


DOCS = {
    "docs/guide/install.md": (
        ["install the gateway with pip", "configure the postgres database url"],
        ("howto",),
    ),
    "docs/api/routes.md": (
        ["the chat completions route streams tokens", "embeddings route batches"],
        ("api",),
    ),
    "docs-old/legacy.md": (["legacy proxy configuration notes"], ("legacy", "howto")),
    "a_b/under.md": (["underscore folder file"], ()),
    "axb/lookalike.md": (["lookalike folder file"], ()),
    "notes.md": (["random notes about lunch"], ()),
}


async def write_docs(store: VectorStore, collection: str) -> list[Chunk]:
    written: list[Chunk] = []
    for source, (texts, tags) in DOCS.items():
        written += await write(store, collection, source, texts, tags)
    return written


class TestStoreContract:
    def test_open_info_and_collections(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            assert await store.info(name) is None
            opened = await asyncio.gather(*(store.open_collection(name, 64, "hash-64") for _ in range(4)))
            assert {(i.name, i.dim, i.embedder, i.chunks) for i in opened} == {(name, 64, "hash-64", 0)}
            again = await store.open_collection(name, 32, "other")  # what is stored wins
            assert (again.dim, again.embedder) == (64, "hash-64")
            assert await store.info(name) == again
            listed = {info.name: info for info in await store.collections()}
            assert listed[name] == again
            await write(store, name, "one.md", ["first chunk", "second chunk"])
            info = await store.info(name)
            assert info is not None and info.chunks == 2 and info.revision > again.revision

        against(store_url, body)

    def test_search_returns_nearest_first(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            written = await write_docs(store, name)
            target = next(c for c in written if c.text.startswith("configure the postgres"))
            query = EMBEDDER.embed(["configure postgres database url please"])[0]
            hits = await store.search(name, query, 4)
            assert len(hits) == 4
            assert hits[0].chunk == target  # every field round-trips
            scores = [hit.score for hit in hits]
            assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
            exact = await store.search(name, EMBEDDER.embed([target.text])[0], 1)
            assert exact[0].chunk.id == target.id and exact[0].score == pytest.approx(1.0, abs=1e-4)
            assert await store.search(name, query, 0) == []
            assert len(await store.search(name, query, 100)) == len(written)
            pairs = await store.search_ids(name, query, 4)
            assert [chunk_id for chunk_id, _ in pairs] == [hit.chunk.id for hit in hits]
            assert [score for _, score in pairs] == pytest.approx(scores, abs=1e-5)
            tagged = await store.search_ids(name, query, 10, Filter(tags=("nope",)))
            assert tagged == []

        against(store_url, body)

    def test_fewer_chunks_remove_stale_ones(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            await write(store, name, "keep.md", ["a neighbour that stays"])
            await write(store, name, "doc.md", [f"old chunk number {i}" for i in range(5)])
            new = await write(store, name, "doc.md", ["old chunk number 0", "a brand new ending"])
            stored = await store.chunks(name, Filter(path_prefix="doc.md"))
            assert ids(stored) == ids(new) and len(set(ids(stored))) == len(stored) == 2
            assert len(await store.chunks(name)) == 3
            info = await store.info(name)
            assert info is not None and info.chunks == 3
            assert (await store.manifest(name))["doc.md"].chunks == 2
            hits = await store.search(name, EMBEDDER.embed(["old chunk number 3"])[0], 10)
            assert {hit.chunk.text for hit in hits} == {c.text for c in new} | {"a neighbour that stays"}

        against(store_url, body)

    def test_delete_source(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            await write(store, name, "gone.md", ["this file will be deleted", "and this chunk too"])
            kept = await write(store, name, "kept.md", ["this file stays"])
            await store.delete_source(name, "gone.md")
            assert await store.sources(name) == {"kept.md"}
            assert set(await store.manifest(name)) == {"kept.md"}
            assert ids(await store.chunks(name)) == ids(kept)
            hits = await store.search(name, EMBEDDER.embed(["this file will be deleted"])[0], 5)
            assert [hit.chunk.source for hit in hits] == ["kept.md"]
            await store.delete_source(name, "never-written.md")  # deleting nothing is fine
            assert await store.sources(name) == {"kept.md"}

        against(store_url, body)

    def test_manifest_round_trip_and_sources(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            assert await store.manifest(name) == {} and await store.sources(name) == set()
            chunks = make_chunks(name, "dir/file.md", ["alpha", "beta", "gamma"])
            record = FileRecord("dir/file.md", "f" * 64, "hash-64", "md-v1", 3)
            await store.replace_source(name, record, chunks, vectors_of(chunks))
            assert await store.manifest(name) == {"dir/file.md": record}
            newer = FileRecord("dir/file.md", "e" * 64, "hash-64", "md-v2", 3)
            await store.replace_source(name, newer, chunks, vectors_of(chunks))
            empty = FileRecord("empty.md", "0" * 64, "hash-64", "md-v2", 0)
            await store.replace_source(name, empty, [], np.zeros((0, 64), dtype=np.float32))
            assert await store.manifest(name) == {"dir/file.md": newer, "empty.md": empty}
            assert await store.sources(name) == {"dir/file.md"}  # only sources that have chunks

        against(store_url, body)

    def test_filters(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            written = await write_docs(store, name)
            query = EMBEDDER.embed(["configuration of the folder file"])[0]
            scores = {c.id: float(v @ query) for c, v in zip(written, vectors_of(written), strict=True)}
            filters = [
                Filter(path_prefix="docs/"),
                Filter(path_prefix="docs/guide/"),
                Filter(path_prefix="docs"),  # a plain string prefix: docs-old/ too
                Filter(path_prefix="docs/gu"),
                Filter(path_prefix="a_b"),  # "_" is literal, not a wildcard
                Filter(path_prefix="nowhere/"),
                Filter(tags=("howto",)),
                Filter(tags=("api", "legacy")),
                Filter(path_prefix="docs/", tags=("howto",)),
            ]
            for where in filters:
                admitted = [c for c in written if where.admits(c)]
                assert ids(await store.chunks(name, where)) == ids(admitted), where
                for k in (1, 2, 10):
                    hits = await store.search(name, query, k, where)
                    assert len(hits) == min(k, len(admitted)), where
                    assert all(where.admits(hit.chunk) for hit in hits), where
                    left = [scores[c.id] for c in admitted if c.id not in {h.chunk.id for h in hits}]
                    assert not left or hits[-1].score >= max(left) - 1e-4, where
            expected = {"docs/guide/install.md", "docs/api/routes.md", "docs-old/legacy.md"}
            assert {c.source for c in await store.chunks(name, Filter(path_prefix="docs"))} == expected

        against(store_url, body)

    def test_filtered_search_fills_k_when_matches_rank_last(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            await write(store, name, "zz/near.md", [f"gateway routing policy {i}" for i in range(60)])
            far = await write(
                store, name, "docs-old/far.md", ["lunch menu", "parking rules", "holiday dates"]
            )
            query = EMBEDDER.embed(["gateway routing policy"])[0]
            hits = await store.search(name, query, 3, Filter(path_prefix="docs-o"))
            assert sorted(hit.chunk.id for hit in hits) == ids(far)

        against(store_url, body)

    def test_revision_increases_on_every_write(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            revisions = [(await store.open_collection(name, 64, "hash-64")).revision]

            async def now() -> int:
                info = await store.info(name)
                assert info is not None
                return info.revision

            await write(store, name, "a.md", ["first"])
            revisions.append(await now())
            await write(store, name, "a.md", ["first"])  # the same content is still a write
            revisions.append(await now())
            await store.delete_source(name, "a.md")
            revisions.append(await now())
            revisions.append((await store.reset_collection(name, 64, "hash-64")).revision)
            await write(store, name, "b.md", ["after the reset"])
            revisions.append(await now())
            assert revisions == sorted(set(revisions)), revisions
            await store.search(name, EMBEDDER.embed(["first"])[0], 3)
            await store.open_collection(name, 64, "hash-64")
            assert await now() == revisions[-1]  # reads and re-opening are not writes

        against(store_url, body)

    def test_rerun_after_interruption_leaves_exactly_the_new_chunks(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            first = await write(store, name, "big.md", [f"version one chunk {i}" for i in range(6)])
            second = await write(store, name, "big.md", [f"version one chunk {i}" for i in range(3)] + ["v2"])
            assert ids(await store.chunks(name)) == ids(second) != ids(first)

            third = make_chunks(name, "big.md", [f"version three chunk {i}" for i in range(300)])
            dying = KilledOnSecondRead(third, at=280)
            with pytest.raises(Killed):
                await store.replace_source(name, record_of("big.md", third), dying, vectors_of(third))
            # the interrupted write recorded nothing: a rerun of ingest will redo this file
            assert (await store.manifest(name))["big.md"] == record_of("big.md", second)
            assert "big.md" in await store.sources(name)

            await store.replace_source(name, record_of("big.md", third), third, vectors_of(third))
            stored = await store.chunks(name)
            assert ids(stored) == ids(third) and len(set(ids(stored))) == 300
            assert stored == sorted(third, key=lambda c: c.position)
            assert (await store.manifest(name))["big.md"] == record_of("big.md", third)

        against(store_url, body)

    def test_reset_changes_embedder_and_dimension(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            await write(store, name, "a.md", ["sixty four dimensions"])
            stale = await store.open_collection(name, 32, "hash-32")
            assert (stale.dim, stale.embedder, stale.chunks) == (64, "hash-64", 1)
            reset = await store.reset_collection(name, 32, "hash-32")
            assert (reset.dim, reset.embedder, reset.chunks) == (32, "hash-32", 0)
            assert await store.manifest(name) == {} and await store.sources(name) == set()
            with pytest.raises(StoreError):
                await write(store, name, "a.md", ["still sixty four"])
            chunks = await write(store, name, "a.md", ["thirty two now", "and more"], embedder=SMALL)
            hits = await store.search(name, SMALL.embed(["thirty two now"])[0], 1)
            assert hits[0].chunk == chunks[0]
            info = await store.info(name)
            assert info is not None and (info.dim, info.embedder, info.chunks) == (32, "hash-32", 2)

        against(store_url, body)

    def test_bad_writes_change_nothing(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            before = await store.open_collection(name, 64, "hash-64")
            chunks = make_chunks(name, "a.md", ["one", "two"])
            bad = [
                (record_of("b.md", chunks), chunks, vectors_of(chunks)),  # chunks of another source
                (record_of("a.md", chunks), chunks, vectors_of(chunks)[:1]),  # one vector short
                (record_of("a.md", chunks), chunks, SMALL.embed(["one", "two"])),  # wrong dimension
                (record_of("a.md", chunks), chunks, np.full((2, 64), np.nan, dtype=np.float32)),
                (record_of("a.md", chunks), [chunks[0], chunks[0]], vectors_of(chunks)),  # duplicate id
            ]
            for record, batch, vectors in bad:
                with pytest.raises(StoreError):
                    await store.replace_source(name, record, batch, vectors)
            assert await store.info(name) == before
            with pytest.raises(StoreError):
                await store.replace_source(
                    "never_opened", record_of("a.md", chunks), chunks, vectors_of(chunks)
                )
            with pytest.raises(StoreError):
                await store.manifest("never_opened")
            with pytest.raises(StoreError):
                await store.search("never_opened", vectors_of(chunks)[0], 3)

        against(store_url, body)

    @pytest.mark.parametrize(
        "bad", ["", "has space", "x" * 64, "../up", "semi;colon", "a__manifest", ".hidden"]
    )
    def test_bad_collection_name(self, store_url: str, bad: str) -> None:
        async def body(store: VectorStore) -> None:
            with pytest.raises(StoreError, match="collection name"):
                await store.open_collection(bad, 64, "hash-64")
            with pytest.raises(StoreError):
                await store.info(bad)

        against(store_url, body)

    def test_two_thousand_chunks_round_trip(self, store_url: str, name: str) -> None:
        async def body(store: VectorStore) -> None:
            await store.open_collection(name, 64, "hash-64")
            written: list[Chunk] = []
            for part in range(4):
                texts = [f"w{part}x{i}a w{part}x{i}b w{part}x{i}c" for i in range(500)]
                written += await write(store, name, f"bulk/part{part}.md", texts, tags=(f"t{part}",))
            rare = await write(store, name, "rare.md", ["lunch menu", "parking rules"], tags=("rare",))
            info = await store.info(name)
            assert info is not None and info.chunks == 2002
            # the two tagged chunks rank last for this query: an index scan must keep looking for them
            hits = await store.search(name, vectors_of(written)[5], 2, Filter(tags=("rare",)))
            assert sorted(hit.chunk.id for hit in hits) == ids(rare)
            await store.delete_source(name, "rare.md")
            assert set(await store.chunks(name)) == set(written)
            assert len(await store.chunks(name, Filter(tags=("t2",)))) == 500
            matrix = vectors_of(written)
            for row in (0, 777, 1999):
                hits = await store.search(name, matrix[row], 5)
                best = float(np.max(matrix @ matrix[row]))
                assert hits[0].score == pytest.approx(best, abs=1e-4) and best == pytest.approx(1.0, abs=1e-4)

        against(store_url, body)


def test_pgvector_filtered_search_keeps_scanning_the_index(pg_url: str, name: str) -> None:
    """When the planner walks the HNSW index, a filter that rejects the nearest rows must not cut
    the result short (pgvector's iterative scan). Checks the plan first, so it tests what it says."""
    import psycopg

    from rag.pgvector import table_names

    async def body(store: VectorStore) -> None:
        await store.open_collection(name, 64, "hash-64")
        await write(store, name, "near.md", [f"gateway routing policy n{i}" for i in range(1000)])
        far = await write(store, name, "far.md", [f"lunch q{i} parking r{i}" for i in range(1000)], ("far",))
        query = EMBEDDER.embed(["gateway routing policy"])[0]
        table = table_names(name)["table"]
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as connection:
            await connection.execute(f"ANALYZE {table}")
            vector = "[" + ",".join(str(float(x)) for x in query) + "]"
            cursor = await connection.execute(
                f"EXPLAIN SELECT id FROM {table} WHERE tags && '{{far}}' "
                f"ORDER BY embedding <=> '{vector}' LIMIT 10"
            )
            plan = await cursor.fetchall()
        assert "Index Scan using rag_hnsw_" in "\n".join(row[0] for row in plan)
        hits = await store.search(name, query, 10, Filter(tags=("far",)))
        assert len(hits) == 10 and {hit.chunk.id for hit in hits} <= set(ids(far))

    against(pg_url, body)


def test_qdrant_in_memory_opens() -> None:
    async def body(store: VectorStore) -> None:
        assert store.url == "qdrant+local://:memory:"
        await store.open_collection("mem", 64, "hash-64")
        chunks = await write(store, "mem", "m.md", ["kept only in memory"])
        assert (await store.search("mem", vectors_of(chunks)[0], 1))[0].chunk == chunks[0]

    against("qdrant+local://:memory:", body)


def test_qdrant_local_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    async def body(store: VectorStore) -> None:
        await store.open_collection("rel", 64, "hash-64")

    against("qdrant+local://./store/here", body)
    assert (tmp_path / "store" / "here").is_dir()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/db",
        "no scheme at all",
        "qdrant+local://",
        "qdrant://",
        "qdrant://host:notaport",
        "qdrant://host:6333/my_collection",
        "qdrant://host:6333?colour=blue",
    ],
)
def test_open_store_rejects_bad_urls(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        run(open_store(url))
    assert "\n" not in str(caught.value) and "qdrant+local://:memory:" in str(caught.value)


def test_urls_print_without_secrets() -> None:
    assert "hunter2" not in redact_url("postgresql://app:hunter2@db.internal:5432/rag")
    assert "db.internal:5432/rag" in redact_url("postgresql://app:hunter2@db.internal:5432/rag")
    assert "k-123" not in redact_url("qdrants://q.example:6333?api_key=k-123")
