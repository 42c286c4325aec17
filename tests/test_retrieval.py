"""Retrieval: the BM25 index, fusion, de-duplication, context assembly and the `Retriever` over a
real store (Qdrant local mode in memory) with the hash embedder. No model is loaded; the context
budget tests count tokens with the real word-piece tokenizer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np
import pytest

from rag.embed import MicroBatcher, wordpiece_tokenizer
from rag.keyword import BM25Index, stem, tokenize
from rag.retrieve import (
    Fusion,
    Retriever,
    SearchMode,
    context_block,
    convex,
    dedupe,
    passage_text,
    rrf,
)
from rag.testing import HashEmbedder
from rag.types import Chunk, CollectionInfo, FileRecord, Filter, Hit, VectorStore, chunk_id, content_hash
from tests.conftest import run


def chunk(text: str, source: str = "docs/a.md", position: int = 0, **fields: object) -> Chunk:
    digest = content_hash(text)
    return Chunk(
        id=chunk_id("test", source, position, digest),
        source=source,
        text=text,
        position=position,
        content_hash=digest,
        **fields,  # type: ignore[arg-type]
    )


def texts(hits: Sequence[Hit]) -> list[str]:
    return [hit.chunk.text for hit in hits]


def plain(chunks: Sequence[Chunk], **options: float) -> BM25Index:
    return BM25Index(chunks, text=lambda c: c.text, **options)


# --- tokenizer and stemmer ----------------------------------------------------------------------------


def test_porter_stemmer_matches_reference_outputs() -> None:
    expected = {
        "caresses": "caress",
        "ponies": "poni",
        "agreed": "agre",
        "hopping": "hop",
        "filing": "file",
        "relational": "relat",
        "hopefulness": "hope",
        "evaluation": "evalu",
        "evaluating": "evalu",
        "adjustment": "adjust",
        "controll": "control",
        "embeddings": "embed",
    }
    assert {word: stem(word) for word in expected} == expected


def test_tokenize_drops_stopwords_stems_and_splits_identifiers() -> None:
    assert tokenize("How do I set the max_tokens of HTTPServer?") == [
        "set",
        "max_tokens",
        "max",
        "token",
        "httpserver",
        "http",
        "server",
    ]
    assert tokenize("messagesCreate") == ["messagescreate", "messag", "creat"]
    assert tokenize("Café crème, 日本語") == ["café", "crème", "日本語"]
    assert tokenize("what is the") == []


# --- BM25 -------------------------------------------------------------------------------------------


def test_bm25_ranks_by_term_rarity_and_frequency() -> None:
    docs = [
        chunk("the weather today is sunny and warm", position=0),
        chunk("rate limits apply to every request; rate limits reset each minute", position=1),
        chunk("each request carries a header", position=2),
        chunk("limits on the size of a request body", position=3),
    ]
    hits = plain(docs).search("rate limits for a request", k=3)
    assert texts(hits)[0] == docs[1].text
    assert len(hits) == 3 and docs[0].text not in texts(hits)
    assert hits[0].score > hits[1].score >= hits[2].score > 0


def test_bm25_matches_inflected_forms() -> None:
    docs = [chunk("Evaluating prompts with test cases", position=0), chunk("Pricing per token", position=1)]
    assert texts(plain(docs).search("evaluation of a prompt", k=5)) == [docs[0].text]


def test_bm25_identifiers_match_whole_and_split() -> None:
    docs = [
        chunk("Set max_tokens to bound the reply.", position=0),
        chunk("The max number of tokens a reply may use.", position=1),
        chunk("Streaming sends events.", position=2),
    ]
    index = plain(docs)
    assert texts(index.search("max_tokens", k=3)) == [docs[0].text, docs[1].text]
    assert texts(index.search("maxTokens", k=1)) == [docs[0].text]  # camelCase splits the same way
    assert docs[0].text in texts(index.search("max tokens", k=2))


def test_bm25_pairs_favour_adjacent_words() -> None:
    docs = [
        chunk("text alpha completions beta text", position=0),  # both words, twice "text", apart
        chunk("gamma Text Completions delta epsilon", position=1),  # both words, once, adjacent
    ]
    assert texts(plain(docs).search("text completions", k=2))[0] == docs[1].text
    assert texts(plain(docs, pair_weight=0.0).search("text completions", k=2))[0] == docs[0].text


def test_bm25_filters_by_path_prefix_and_tags() -> None:
    docs = [
        chunk("deploy with docker", "ops/deploy.md", 0, tags=("ops",)),
        chunk("deploy to kubernetes", "guides/k8s.md", 0, tags=("guide",)),
        chunk("deploy on bare metal", "guides/metal.md", 0),
    ]
    index = plain(docs)
    assert len(index.search("deploy", k=5)) == 3
    assert texts(index.search("deploy", k=5, where=Filter(path_prefix="guides/"))) == [
        docs[1].text,
        docs[2].text,
    ]
    assert texts(index.search("deploy", k=5, where=Filter(tags=("ops",)))) == [docs[0].text]
    assert index.search("deploy", k=5, where=Filter(path_prefix="nowhere/")) == []


def test_bm25_empty_queries_and_empty_index() -> None:
    index = plain([chunk("some text about streaming")])
    assert index.search("", k=5) == []
    assert index.search("the of and", k=5) == []  # stopwords only
    assert index.search("unknownword", k=5) == []
    assert index.search("streaming", k=0) == []
    assert plain([]).search("streaming", k=5) == []
    empty = plain([])
    empty.build()  # the retriever builds before anything is asked: an empty collection must not fail
    assert empty.scores("streaming").shape == (0,)
    stopwords_only = plain([chunk("the and of", position=0), chunk("streaming", position=1)])
    assert texts(stopwords_only.search("streaming", k=5)) == ["streaming"]


def test_bm25_add_after_search_rebuilds() -> None:
    index = plain([chunk("alpha beta", position=0)])
    assert index.search("gamma", k=3) == []
    index.add([chunk("gamma delta", position=1)])
    assert texts(index.search("gamma", k=3)) == ["gamma delta"]
    assert len(index) == 2


def test_bm25_scores_match_the_okapi_formula() -> None:
    docs = [
        chunk("apple banana apple", position=0),
        chunk("banana cherry", position=1),
        chunk("date", position=2),
    ]
    index = plain(docs, k1=1.2, b=0.75, pair_weight=0.0)
    avg = (3 + 2 + 1) / 3

    def term(tf: float, df: int, length: int) -> float:
        idf = np.log1p((3 - df + 0.5) / (df + 0.5))
        return float(idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avg)))

    scores = index.scores("apple banana")
    assert scores[0] == pytest.approx(term(2, 1, 3) + term(1, 2, 3), rel=1e-5)
    assert scores[1] == pytest.approx(term(1, 2, 2), rel=1e-5)
    assert scores[2] == 0


def test_bm25_pair_renumbering_gives_the_same_scores() -> None:
    docs = [chunk(f"word{i % 7} text completions api number{i}", position=i) for i in range(20)]
    wide = plain(docs)
    narrow = plain(docs)
    narrow.max_key = 1 << 12  # forces the path a huge vocabulary takes
    for query in ("text completions api", "word3 number4", "api text"):
        assert np.allclose(wide.scores(query), narrow.scores(query))
    assert narrow._pair_table is not None and wide._pair_table is None


# --- passage text, fusion, de-duplication -----------------------------------------------------------


def test_passage_text_heads_the_text_with_its_place() -> None:
    c = chunk("Body.", "guides/prompt_engineering/chain-of-thought.md", title="Chain of thought")
    c2 = Chunk(c.id, c.source, c.text, title="Chain of thought", headings=("Chain of thought", "Why"))
    assert (
        passage_text(c2) == "guides / prompt engineering / chain of thought › Chain of thought › Why\nBody."
    )
    url = chunk("Body.", "https://docs.example.com/en/api/errors#http-errors", headings=("HTTP errors",))
    assert passage_text(url) == "en / api / errors › HTTP errors\nBody."


def hit(text: str, score: float, source: str = "a.md") -> Hit:
    return Hit(chunk(text, source), score)


def test_rrf_sums_reciprocal_ranks() -> None:
    a, b, c = hit("a", 0.9), hit("b", 0.8), hit("c", 0.7)
    fused = rrf([[a, b], [b, c]], k=60)
    assert texts(fused) == ["b", "a", "c"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)
    weighted = rrf([[a, b], [c]], k=60, weights=[1.0, 3.0])
    assert texts(weighted) == ["c", "a", "b"]
    assert weighted[0].score == pytest.approx(3 / 61)
    with pytest.raises(ValueError):
        rrf([[a]], weights=[1.0, 2.0])


def test_convex_normalises_each_ranking() -> None:
    a, b, c = hit("a", 0.9), hit("b", 0.5), hit("c", 0.1)
    fused = convex([[a, b, c], [Hit(c.chunk, 12.0), Hit(b.chunk, 2.0)]], [0.5, 0.5])
    scores = {h.chunk.text: h.score for h in fused}
    assert scores == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5})
    assert texts(fused) == ["a", "c", "b"]  # ties keep first-seen order
    assert convex([[Hit(a.chunk, 3.0), Hit(b.chunk, 3.0)], []])[0].score == 1.0


def test_dedupe_drops_copies_and_near_copies() -> None:
    base = "Rate limits are measured in requests per minute and tokens per minute for each model tier."
    hits = [
        hit(base, 0.9, "a.md"),
        hit(base, 0.8, "b.md"),  # same content hash
        hit(base.replace("each", "every"), 0.7, "c.md"),  # one word changed
        hit("Streaming sends server-sent events as the reply is written.", 0.6, "d.md"),
        hit("Errors come back as JSON with a type and a message.", 0.5, "e.md"),
    ]
    kept = dedupe(hits)
    assert [h.chunk.source for h in kept] == ["a.md", "d.md", "e.md"]
    assert [h.chunk.source for h in dedupe(hits, limit=2)] == ["a.md", "d.md"]
    assert len(dedupe(hits, threshold=1.01)) == 4  # only the exact copy goes


# --- context block ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def count_tokens() -> Callable[[str], int]:
    tokenizer = wordpiece_tokenizer()
    if tokenizer is None:
        pytest.skip("the packaged model's tokenizer.json is not installed")
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def passages() -> list[Hit]:
    sentence = "The gateway retries a failed request on the next backend of the route. "
    return [
        Hit(chunk(sentence * 3, "guides/retries.md", 0, headings=("Resilience", "Retries")), 0.9),
        Hit(chunk(sentence * 2, "manual.pdf", 1, title="Manual", page=3), 0.8),
        Hit(chunk(sentence * 6, "notes.txt", 2), 0.7),
    ]


def test_context_block_numbers_passages_and_reports_sources(count_tokens: Callable[[str], int]) -> None:
    hits = passages()
    context, sources = context_block(hits, 10_000, count_tokens)
    assert context.startswith("[1] guides/retries.md › Resilience › Retries\nThe gateway")
    assert "\n\n[2] manual.pdf, p. 3 › Manual\n" in context
    assert "\n\n[3] notes.txt\n" in context
    assert [s.n for s in sources] == [1, 2, 3]
    assert sources[1].chunk_id == hits[1].chunk.id and sources[1].page == 3 and sources[1].score == 0.8
    assert sources[0].headings == ("Resilience", "Retries")


def test_context_block_respects_every_budget(count_tokens: Callable[[str], int]) -> None:
    hits = passages()
    whole = [count_tokens(f"[{i + 1}] x\n{h.chunk.text}") for i, h in enumerate(hits)]
    for budget in range(0, sum(whole) + 60, 7):
        context, sources = context_block(hits, budget, count_tokens)
        assert count_tokens(context) <= budget
        assert len(sources) == context.count("\n\n[") + (1 if context else 0)


def test_context_block_truncates_only_the_last_passage(count_tokens: Callable[[str], int]) -> None:
    hits = passages()
    first = count_tokens(f"[1] guides/retries.md › Resilience › Retries\n{hits[0].chunk.text.strip()}")
    context, sources = context_block(hits, first + 40, count_tokens, min_tokens=16)
    assert [s.n for s in sources] == [1, 2]
    assert context.endswith(" …") and hits[0].chunk.text.strip() in context
    assert count_tokens(context) <= first + 40
    # too little room left for something useful: the second passage is left out, not cut to a stub
    context, sources = context_block(hits, first + 12, count_tokens, min_tokens=16)
    assert [s.n for s in sources] == [1] and not context.endswith("…")
    assert context_block(hits, 3, count_tokens) == ("", [])


# --- the retriever over a real store ----------------------------------------------------------------

DOCS = {
    "guides/limits.md": ["Rate limits: requests per minute and tokens per minute for each key."],
    "guides/streaming.md": ["Streaming sends server-sent events; each content_block_delta carries text."],
    "api/errors.md": ["Errors are JSON objects with a type and a message; 429 means rate limited."],
    "copy/limits.md": ["Rate limits: requests per minute and tokens per minute for each key."],
}


async def write(
    store: VectorStore, embedder: HashEmbedder, source: str, lines: list[str], tags: tuple[str, ...] = ()
) -> None:
    chunks = [chunk(text, source, i, tags=tags) for i, text in enumerate(lines)]
    record = FileRecord(source, content_hash("".join(lines)), embedder.name, "test", len(chunks))
    vectors = embedder.embed([passage_text(c) for c in chunks])
    await store.replace_source("docs", record, chunks, vectors)


def test_retriever_over_qdrant_local() -> None:
    from rag.stores import open_store

    async def main() -> None:
        embedder = HashEmbedder(64, "hash-64")
        store = await open_store("qdrant+local://:memory:")
        try:
            await store.open_collection("docs", embedder.dim, embedder.name)
            for source, lines in DOCS.items():
                await write(store, embedder, source, lines, ("api",) if source.startswith("api/") else ())
            calls = 0
            info = store.info

            async def counted(name: str) -> CollectionInfo | None:
                nonlocal calls
                calls += 1
                return await info(name)

            store.info = counted  # type: ignore[method-assign]
            retriever = Retriever(store, embedder, batcher=MicroBatcher(embedder), revision_check_s=60)
            hits = await retriever.search("docs", "content_block_delta streaming events", k=3)
            assert hits[0].chunk.source == "guides/streaming.md"
            limits = [h.chunk.source for h in await retriever.search("docs", "rate limits per minute", k=4)]
            assert len({"copy/limits.md", "guides/limits.md"} & set(limits)) == 1  # the copy is dropped
            assert len(limits) == 3
            for mode in SearchMode:
                found = await retriever.search("docs", "429 rate limited errors", k=1, mode=mode)
                assert [h.chunk.source for h in found] == ["api/errors.md"], mode
            only = await retriever.search("docs", "rate limits", k=5, where=Filter(path_prefix="api/"))
            assert {h.chunk.source for h in only} == {"api/errors.md"}
            tagged = await retriever.search("docs", "streaming", k=5, where=Filter(tags=("api",)))
            assert {h.chunk.source for h in tagged} <= {"api/errors.md"}
            assert await retriever.search("docs", "   ", k=3) == []
            assert calls == 1  # one revision check for all those searches

            # a write moves the revision: the keyword index follows once the check is due
            await write(
                store, embedder, "guides/batches.md", ["Message batches run asynchronously overnight."]
            )
            assert await retriever.search("docs", "overnight batches", k=1, mode=SearchMode.KEYWORD) == []
            retriever.expire("docs")
            found = await retriever.search("docs", "overnight batches", k=1, mode=SearchMode.KEYWORD)
            assert [h.chunk.source for h in found] == ["guides/batches.md"]
            assert calls == 2

            rrf_retriever = Retriever(store, embedder, fusion=Fusion.RRF)
            fused = await rrf_retriever.search("docs", "server-sent events streaming", k=2)
            assert fused[0].chunk.source == "guides/streaming.md"
            with pytest.raises(ValueError):
                Retriever(store, embedder, dense_weight=1.5)
        finally:
            await store.close()

    run(asyncio.wait_for(main(), 30))


def test_retriever_over_pgvector_takes_ids_then_chunks_from_the_index(pg_url: str) -> None:
    """Dense hits come back as ids and are filled from the keyword index; a chunk newer than the
    index is fetched whole from the store instead of being dropped."""
    import uuid

    from rag.stores import open_store

    async def main() -> None:
        embedder = HashEmbedder(64, "hash-64")
        store = await open_store(pg_url)
        collection = f"ids_{uuid.uuid4().hex[:8]}"
        try:
            await store.open_collection(collection, embedder.dim, embedder.name)
            for source, lines in DOCS.items():
                chunks = [chunk(text, source, i) for i, text in enumerate(lines)]
                record = FileRecord(source, content_hash("".join(lines)), embedder.name, "test", len(chunks))
                vectors = embedder.embed([passage_text(c) for c in chunks])
                await store.replace_source(collection, record, chunks, vectors)
            retriever = Retriever(store, embedder, revision_check_s=60)
            dense = await retriever.search(
                collection, "content_block_delta streaming", k=2, mode=SearchMode.DENSE
            )
            hybrid = await retriever.search(collection, "content_block_delta streaming", k=2)
            assert hybrid[0].chunk == dense[0].chunk and hybrid[0].chunk.text.startswith("Streaming sends")
            fresh = chunk("Overnight batches are billed at half price.", "guides/batches.md")
            record = FileRecord(fresh.source, "h", embedder.name, "test", 1)
            await store.replace_source(collection, record, [fresh], embedder.embed([passage_text(fresh)]))
            found = await retriever.search(collection, "overnight batches billed half price", k=1)
            assert found[0].chunk == fresh  # not yet in the keyword index, still found densely
        finally:
            await store.close()

    run(asyncio.wait_for(main(), 30))


def test_readiness_starts_undecided_and_turns_idle_when_nothing_will_retrieve(tmp_path):
    """/readyz is 503 while start-up has not decided whether retrieval is needed ("starting"); with
    no route that retrieves and an empty store, the decision is "idle" (ready) without loading."""
    import asyncio

    from router.pipeline.retrieval import RagService, Readiness
    from router.policy.model import parse_policy
    from router.settings import Settings

    policy = parse_policy(
        "version: 1\ndefaults: {route: chat}\n"
        "backends:\n  b: {provider: openai_compatible, model: m, base_url: 'http://b.test/v1', data: external}\n"
        "routes:\n  - {name: chat, backends: [b]}\n",
        tmp_path / "policy.yaml",
    )
    rag = RagService(Settings(home=tmp_path, store_url=f"qdrant+local://{tmp_path / 'qdrant'}"))
    assert rag.state is Readiness.starting

    async def warm() -> None:
        try:
            await rag.warm(policy)
        finally:
            await rag.close()

    asyncio.run(warm())
    assert rag.state is Readiness.idle and rag._retriever is None  # decided, and nothing was loaded
