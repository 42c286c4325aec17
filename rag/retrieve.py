"""Hybrid retrieval: dense candidates from the store, keyword candidates from BM25, fused, de-duplicated,
and assembled into a numbered context block under a token budget.

The store stays the source of truth: the keyword index is an in-memory view of `store.chunks()`,
rebuilt when the collection's revision moves (checked at most once a second). Fusion is a convex
combination of min-max normalised scores (Bruch et al., "An Analysis of Fusion Functions for Hybrid
Retrieval", 2023): unlike reciprocal rank it keeps how far ahead a candidate is, and it has one knob,
the dense weight. `rrf` is kept for callers that want rank-only fusion. This module never writes to a
store and never calls a generative model.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from rag.embed import Embedder, MicroBatcher, embed_async
from rag.keyword import BM25Index, tokenize
from rag.types import Chunk, CollectionInfo, Filter, Hit, StoreError, VectorStore

_URL_ROOT = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]*", re.IGNORECASE)
_SEPARATORS = re.compile(r"[-_\s]+")
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_DEDUPE_CHARS = 4096


class SearchMode(StrEnum):
    HYBRID = "hybrid"
    DENSE = "dense"
    KEYWORD = "keyword"


class Fusion(StrEnum):
    CONVEX = "convex"  # weighted sum of min-max normalised scores
    RRF = "rrf"  # reciprocal rank fusion


# --- what gets embedded and indexed -----------------------------------------------------------------


def _path_words(source: str) -> str:
    """A source as words: `https://host/a/b-c#frag` → `a / b c`, `docs/x_y.md` → `docs / x y`."""
    path = _URL_ROOT.sub("", source).split("#", 1)[0].split("?", 1)[0]
    parts = [_SEPARATORS.sub(" ", _SUFFIX.sub("", part)).strip() for part in path.split("/")]
    return " / ".join(part for part in parts if part)


def passage_text(chunk: Chunk) -> str:
    """The text ingest embeds and the keyword index reads: a header line with where the passage sits
    (source path, document title, heading path; repeats dropped), then the passage.

    Measured on the Anthropic docs set (evals/rag_eval.py, hybrid): recall@3 / MRR@3 0.757 / 0.917
    for the text alone, 0.772 / 0.912 with the heading, 0.752 / 0.947 with path and heading: a
    question names a topic with the words of its path. Dense retrieval alone loses by it (MRR@3
    0.732 → 0.703), so this is tuned for the hybrid default.
    """
    header: list[str] = []
    for part in (_path_words(chunk.source), chunk.title, *chunk.headings):
        part = " ".join(part.split())
        if part and part.casefold() not in (seen.casefold() for seen in header):
            header.append(part)
    return f"{' › '.join(header)}\n{chunk.text}" if header else chunk.text


# --- fusion and de-duplication ----------------------------------------------------------------------


def _weights(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None) -> Sequence[float]:
    if weights is None:
        return [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    return weights


def _ordered(scores: dict[str, float], chunks: dict[str, Chunk]) -> list[Hit]:
    # ties keep first-seen order (dict order), so fusion is deterministic
    order = sorted(scores, key=scores.__getitem__, reverse=True)
    return [Hit(chunks[key], scores[key]) for key in order]


def rrf(rankings: Sequence[Sequence[Hit]], k: int = 60, weights: Sequence[float] | None = None) -> list[Hit]:
    """Reciprocal rank fusion (Cormack et al., 2009): score = Σ weight / (k + rank), rank from 1."""
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    for ranking, weight in zip(rankings, _weights(rankings, weights), strict=True):
        for rank, hit in enumerate(ranking, start=1):
            chunks.setdefault(hit.chunk.id, hit.chunk)
            scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + weight / (k + rank)
    return _ordered(scores, chunks)


def convex(rankings: Sequence[Sequence[Hit]], weights: Sequence[float] | None = None) -> list[Hit]:
    """Σ weight × (score − min) / (max − min) per ranking, over the candidates each ranking returned.

    A chunk missing from a ranking scores 0 there: it ranked below that list's last candidate, whose
    normalised score is 0. A ranking whose scores are all equal gives each of its chunks 1.
    """
    scores: dict[str, float] = {}
    chunks: dict[str, Chunk] = {}
    for ranking, weight in zip(rankings, _weights(rankings, weights), strict=True):
        if not ranking:
            continue
        raw = np.array([hit.score for hit in ranking], dtype=np.float64)
        low, high = float(raw.min()), float(raw.max())
        normalised = (raw - low) / (high - low) if high > low else np.ones_like(raw)
        for hit, value in zip(ranking, normalised, strict=True):
            chunks.setdefault(hit.chunk.id, hit.chunk)
            scores[hit.chunk.id] = scores.get(hit.chunk.id, 0.0) + weight * float(value)
    return _ordered(scores, chunks)


def dedupe(hits: Sequence[Hit], *, threshold: float = 0.9, limit: int | None = None) -> list[Hit]:
    """Hits in order without near-duplicates of a better one: same content hash, same text, or word
    sets with Jaccard similarity ≥ `threshold` (the same passage copied into two files, say).

    Stops once `limit` hits are kept, so only the texts it returns (and the ones it drops) are read,
    and reads at most the first 4,096 characters of each (a copy starts the way its original does).
    """
    kept: list[Hit] = []
    seen_hashes: set[str] = set()
    kept_words: list[frozenset[str]] = []
    for hit in hits:
        if limit is not None and len(kept) >= limit:
            break
        digest = hit.chunk.content_hash or hit.chunk.text
        if digest in seen_hashes:
            continue
        words = frozenset(tokenize(hit.chunk.text[:_DEDUPE_CHARS]))
        if any(_jaccard(words, other) >= threshold for other in kept_words):
            continue
        seen_hashes.add(digest)
        kept_words.append(words)
        kept.append(hit)
    return kept


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


# --- context assembly -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """One numbered passage of a context block, as the response's `turnout.sources` reports it."""

    n: int
    chunk_id: str
    source: str
    title: str
    headings: tuple[str, ...]
    page: int | None
    score: float


def _citation(n: int, chunk: Chunk) -> str:
    where = f"{chunk.source}, p. {chunk.page}" if chunk.page is not None else chunk.source
    path = chunk.headings or ((chunk.title,) if chunk.title else ())
    return " › ".join((f"[{n}] {where}", *path))


def _truncate(text: str, budget: int, count_tokens: Callable[[str], int]) -> str:
    """The longest prefix of `text`, cut at a word and marked with "…", within `budget` tokens."""
    words = text.split(" ")
    low, high = 0, len(words)  # invariant: words[:low] fits
    while low < high:
        middle = (low + high + 1) // 2
        if count_tokens(" ".join(words[:middle]) + " …") <= budget:
            low = middle
        else:
            high = middle - 1
    return " ".join(words[:low]).rstrip() + " …" if low else ""


def context_block(
    hits: Sequence[Hit],
    budget_tokens: int,
    count_tokens: Callable[[str], int],
    *,
    min_tokens: int = 32,
) -> tuple[str, list[Source]]:
    """Numbered passages ("[1] path › heading" then the text), best first, within `budget_tokens`.

    Passages go in whole while they fit; the first that does not is cut to the remaining budget if at
    least `min_tokens` of its text fit, and nothing follows it. The returned text's
    `count_tokens` never exceeds the budget.
    """
    blocks: list[str] = []
    sources: list[Source] = []
    for hit in hits:
        n = len(blocks) + 1
        head = _citation(n, hit.chunk)
        block = f"{head}\n{hit.chunk.text.strip()}"
        candidate = "\n\n".join((*blocks, block))
        if count_tokens(candidate) > budget_tokens:
            used = count_tokens("\n\n".join((*blocks, head))) if blocks else count_tokens(head)
            room = budget_tokens - used
            text = _truncate(hit.chunk.text.strip(), room, count_tokens) if room >= min_tokens else ""
            block = f"{head}\n{text}"
            if not text or count_tokens(candidate := "\n\n".join((*blocks, block))) > budget_tokens:
                break
            truncated = True
        else:
            truncated = False
        blocks.append(block)
        chunk = hit.chunk
        sources.append(Source(n, chunk.id, chunk.source, chunk.title, chunk.headings, chunk.page, hit.score))
        if truncated:
            break
    return "\n\n".join(blocks), sources


# --- the retriever ----------------------------------------------------------------------------------


@dataclass
class _KeywordState:
    index: BM25Index | None = None
    revision: int = -1
    next_check: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Retriever:
    """Dense + BM25 retrieval over one `VectorStore`.

    `n_candidates` is how many hits each retriever contributes before fusion; `dense_weight` is the
    weight of the dense scores in the convex fusion (the keyword scores get 1 − it). 0.3 is what a
    held-out fit chooses on the Anthropic docs set with all-MiniLM-L6-v2 (in 176 of 200 random half
    splits; evals/rag_eval.py prints the check): a small general-purpose embedder is the weaker ranker
    on technical text. Give a stronger embedder more weight.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        batcher: MicroBatcher | None = None,
        n_candidates: int = 50,
        fusion: Fusion = Fusion.CONVEX,
        dense_weight: float = 0.3,
        rrf_k: int = 60,
        dedupe_threshold: float = 0.9,
        revision_check_s: float = 1.0,
        k1: float = 1.2,
        b: float = 0.75,
    ) -> None:
        if not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be within [0, 1], not {dense_weight}")
        self.store = store
        self.embedder = embedder
        self.batcher = batcher
        self.n_candidates = n_candidates
        self.fusion = Fusion(fusion)
        self.dense_weight = dense_weight
        self.rrf_k = rrf_k
        self.dedupe_threshold = dedupe_threshold
        self.revision_check_s = revision_check_s
        self.k1, self.b = k1, b
        self._keyword: dict[str, _KeywordState] = {}
        self._infos: dict[str, tuple[float, CollectionInfo | None]] = {}  # when read, and what

    async def search(
        self,
        collection: str,
        query: str,
        *,
        k: int = 5,
        where: Filter | None = None,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> list[Hit]:
        """The k best chunks for `query`, best first, near-duplicates removed."""
        mode = SearchMode(mode)
        if k <= 0 or not query.strip():
            return []
        n = max(self.n_candidates, 2 * k)  # room for what dedupe drops
        dense, keyword = await self.candidates(collection, query, n=n, where=where, mode=mode)
        if mode is SearchMode.DENSE:
            ranked = dense
        elif mode is SearchMode.KEYWORD:
            ranked = keyword
        elif self.fusion is Fusion.RRF:
            ranked = rrf([dense, keyword], self.rrf_k)
        else:
            ranked = convex([dense, keyword], [self.dense_weight, 1.0 - self.dense_weight])
        return dedupe(ranked, threshold=self.dedupe_threshold, limit=k)

    async def candidates(
        self,
        collection: str,
        query: str,
        *,
        n: int,
        where: Filter | None = None,
        mode: SearchMode = SearchMode.HYBRID,
    ) -> tuple[list[Hit], list[Hit]]:
        """The dense and the keyword candidates before fusion (the one `mode` leaves out is empty)."""
        embedding = asyncio.ensure_future(self._embed(query)) if mode is not SearchMode.KEYWORD else None
        try:
            keyword: list[Hit] = []
            index = None
            if mode is not SearchMode.DENSE:
                index = await self.keyword_index(collection)
                # in a thread: scored beside the query embedding (on the loop, scoring would run
                # before the embedding task even started) and without stalling other requests
                keyword = await asyncio.to_thread(index.search, query, n, where)
            dense: list[Hit] = []
            if embedding is not None:
                dense = await self._dense(collection, await embedding, n, where, index)
        finally:
            if embedding is not None and not embedding.done():
                embedding.cancel()
        return dense, keyword

    async def _dense(
        self, collection: str, vector: np.ndarray, n: int, where: Filter | None, index: BM25Index | None
    ) -> list[Hit]:
        """Nearest chunks; with the keyword index at hand, only ids come from the store and the
        chunks from the index (unless one is newer than the index: then the store's rows)."""
        await self._check_embedder(collection, vector)
        if index is None:
            return await self.store.search(collection, vector, n, where)
        pairs = await self.store.search_ids(collection, vector, n, where)
        hits = [
            Hit(chunk, score) for chunk_id, score in pairs if (chunk := index.chunk(chunk_id)) is not None
        ]
        if len(hits) < len(pairs):
            return await self.store.search(collection, vector, n, where)
        return hits

    async def _info(self, collection: str) -> CollectionInfo | None:
        """What the store holds of a collection, read at most once per `revision_check_s` (the
        keyword index's revision check and the embedder check share it)."""
        now = time.monotonic()
        known = self._infos.get(collection)
        if known is None or now - known[0] > self.revision_check_s:
            known = self._infos[collection] = (now, await self.store.info(collection))
        return known[1]

    async def _check_embedder(self, collection: str, vector: np.ndarray) -> None:
        """A query embedded by another model than the collection's is a StoreError that says so
        (Qdrant answered "shapes (11,64) and (384,) not aligned")."""
        info = await self._info(collection)
        if info is None:
            return  # the store's own search says the collection does not exist
        # another model, even of the same size (bge-small against MiniLM), puts its vectors in
        # another space (the name stays with precision and runtime: rag.embed)
        if info.dim != len(vector) or info.embedder != self.embedder.name:
            raise StoreError(
                f"collection '{collection}' holds {info.dim}-d vectors of the embedder '{info.embedder}', "
                f"but this search embeds with '{self.embedder.name}' ({len(vector)}-d): search with "
                f"--embedder {info.embedder} (TURNOUT_EMBEDDER), or ingest the collection again"
            )

    async def _embed(self, query: str) -> np.ndarray:
        if self.batcher is not None:
            return await self.batcher.embed_one(query)
        vectors = await embed_async(self.embedder, [query])
        return vectors[0]

    async def keyword_index(self, collection: str) -> BM25Index:
        """The collection's BM25 index, rebuilt when the store's revision has moved.

        The revision is read at most once per `revision_check_s`. While one caller rebuilds, the others
        keep using the previous index rather than wait (only the very first build is waited for).
        """
        state = self._keyword.get(collection)
        if state is None:
            state = self._keyword[collection] = _KeywordState()
        if state.index is not None and (time.monotonic() < state.next_check or state.lock.locked()):
            return state.index
        async with state.lock:
            if state.index is not None and time.monotonic() < state.next_check:
                return state.index  # refreshed while this caller waited
            info = await self._info(collection)
            revision = info.revision if info is not None else -1
            if state.index is None or revision != state.revision:
                chunks = await self.store.chunks(collection) if info is not None else []
                state.index = await asyncio.to_thread(self._build, chunks)
                state.revision = revision
            state.next_check = time.monotonic() + self.revision_check_s
            return state.index

    def expire(self, collection: str | None = None) -> None:
        """Make the next search check the revision now (ingest in this process calls it after a write)."""
        for name, state in self._keyword.items():
            if collection is None or name == collection:
                state.next_check = 0.0
        for name in list(self._infos):
            if collection is None or name == collection:
                del self._infos[name]

    def _build(self, chunks: Sequence[Chunk]) -> BM25Index:
        index = BM25Index(chunks, k1=self.k1, b=self.b)
        index.build()
        return index
