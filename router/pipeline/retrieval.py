"""Retrieval in the gateway: which store, when a request retrieves, and how passages reach the model.

The store is opened and the embedder loaded (torch costs seconds and ~300 MB) at start-up, off the
event loop, when retrieval can happen: a route of the policy retrieves, or the store holds a
collection a request may name; `/readyz` says "not ready" until the embedder is warm and the
keyword index of each collection the policy names is built, so no first request pays for them. A
route that retrieves
from a collection that is empty, missing or unreachable still answers, without context, and says so
in the log and in `x-turnout-sources: []`; a request that asks for retrieval itself gets the error.
This module never puts a passage of a private collection in a request to an external backend: the
caller re-decides the route with `private_context` set before anything is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rag.types import Filter, StoreError, VectorStore
from router.chat_types import Message
from router.http.errors import CollectionNotFound, InvalidRequest, RetrievalUnavailable
from router.policy.model import Policy, Route, RouteRetrieval
from router.schema import ChatRequest
from router.settings import Settings

log = logging.getLogger("turnout.retrieval")

CONTEXT_PREAMBLE = (
    "Answer from the numbered sources below when they are relevant, and cite them as [n]. "
    "If they do not contain the answer, say so.\n\n"
)


@contextlib.asynccontextmanager
async def open_configured_store(
    settings: Settings, explicit: str | None = None, database_url: str | None = None
) -> AsyncIterator[VectorStore]:
    """The store named on the command line, else TURNOUT_STORE_URL, else the database (the one the
    caller already has open, else the embedded Postgres, started for as long as the block runs)."""
    from rag.stores import open_store
    from router.db import Database, open_database

    database: Database | None = None
    url = explicit or (settings.store_url.get_secret_value() if settings.store_url else None) or database_url
    if url is None:
        database = await asyncio.to_thread(open_database, settings)
        url = database.url
    store = await open_store(url)
    try:
        yield store
    finally:
        await store.close()
        if database is not None:
            database.release()


@dataclass(frozen=True)
class Wanted:
    """A retrieval the request will make, and whether the caller asked for it explicitly."""

    collection: str
    top_k: int
    budget_tokens: int
    where: Filter | None
    explicit: bool


def wanted(request: ChatRequest, route: Route | None, policy: Policy) -> Wanted | None:
    options = request.turnout
    if options is not None and options.rag is False:
        return None
    explicit = options is not None and options.rag is True
    by_route = route is not None and route.retrieval is not False
    if not explicit and not by_route:
        return None
    defaults = policy.retrieval
    per_route = route.retrieval if route is not None and isinstance(route.retrieval, RouteRetrieval) else None
    collection = (
        (options.collection if options else None)
        or (per_route.collection if per_route else None)
        or defaults.collection
    )
    top_k = (options.top_k if options else None) or (per_route.top_k if per_route else None) or defaults.top_k
    budget = (per_route.budget_tokens if per_route else None) or defaults.budget_tokens
    where = None
    if options is not None and (options.path_prefix or options.tags):
        where = Filter(path_prefix=options.path_prefix, tags=tuple(options.tags or ()))
    return Wanted(collection, top_k, budget, where, explicit)


def with_context(request: ChatRequest, context: str) -> ChatRequest:
    """The request with the context block as a system message ahead of the conversation."""
    system = Message.model_validate({"role": "system", "content": CONTEXT_PREAMBLE + context})
    return request.model_copy(update={"messages": [system, *request.messages]})


@dataclass(frozen=True)
class Retrieved:
    collection: str
    context: str
    sources: list[dict[str, Any]]
    tokens: int
    private: bool


class Readiness(StrEnum):
    starting = "starting"  # start-up has not yet decided whether retrieval will be needed
    idle = "idle"  # nothing asked for retrieval yet, and nothing at start-up could
    loading = "loading"  # the embedder is loading or warming: not ready to serve retrieval yet
    ready = "ready"
    unavailable = "unavailable"  # the store or the embedder failed; retried on the next use


class RagService:
    """The store, the embedder, the query micro-batcher and the retriever, built once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._retriever: Any = None
        self._batcher: Any = None
        self._embedder_lock = asyncio.Lock()
        self._store: contextlib.AbstractAsyncContextManager[VectorStore] | None = None
        self._opened: VectorStore | None = None
        self._lock = asyncio.Lock()
        self._store_lock = asyncio.Lock()
        self.database_url: str | None = None  # the gateway's own database, the default store
        self.state = Readiness.starting
        self.reason: str | None = None  # why retrieval is unavailable, or why it was warmed

    async def batcher(self) -> Any:
        """The embedder's micro-batcher, loading and warming the embedder on first use: retrieval's
        queries and /v1/embeddings share its forward passes."""
        if self._batcher is not None:
            return self._batcher
        async with self._embedder_lock:
            if self._batcher is None:
                from rag.embed import MicroBatcher, embed_async, make_embedder

                embedder = await asyncio.to_thread(
                    make_embedder,
                    self.settings.embedder,
                    self.settings.embed_precision,
                    self.settings.embed_runtime,
                )
                await embed_async(embedder, ["warm up"])  # loads the model on the embedder's own thread
                self._batcher = MicroBatcher(embedder)
        return self._batcher

    async def retriever(self) -> Any:
        if self._retriever is not None:
            return self._retriever
        async with self._lock:
            if self._retriever is None:
                store = await self._open_store()
                from rag.retrieve import Retriever

                batcher = await self.batcher()
                self._retriever = Retriever(store, batcher.embedder, batcher=batcher)
        return self._retriever

    async def _open_store(self) -> VectorStore:
        async with self._store_lock:
            if self._opened is None:
                manager = open_configured_store(self.settings, database_url=self.database_url)
                self._opened = await manager.__aenter__()
                self._store = manager
            return self._opened

    async def needed(self, policy: Policy) -> str | None:
        """Why retrieval can happen with this policy and store (a route retrieves, or a collection
        exists that a request may name), or None."""
        routes = [route.name for route in policy.routes if route.retrieval is not False]
        if routes:
            return f"route {routes[0]} retrieves"
        try:
            collections = await (await self._open_store()).collections()
        except Exception as error:
            log.warning("could not list the store's collections: %s", _first_line(error))
            return None
        return f"collection {collections[0].name} exists" if collections else None

    async def warm(self, policy: Policy) -> None:
        """At start-up (and after a policy reload): when retrieval can happen, load and warm the
        embedder and build the keyword index of each collection the policy names, so that
        `/readyz` turns ready only once no request to them would wait. (Other collections a request
        names build their index on first use.)"""
        if self.state is Readiness.ready:
            return
        why = await self.needed(policy)
        if why is None:
            if self.state is Readiness.starting:
                self.state = Readiness.idle
            return
        self.state, self.reason = Readiness.loading, why
        started = asyncio.get_running_loop().time()
        try:
            retriever = await self.retriever()
            existing = {info.name for info in await retriever.store.collections()}
            for name in named_collections(policy) & existing:
                await retriever.keyword_index(name)
        except Exception as error:
            self.state, self.reason = Readiness.unavailable, _first_line(error)
            log.warning("retrieval could not start: %s (requests that retrieve get 503)", self.reason)
            return
        self.state = Readiness.ready
        log.info(
            "retrieval ready in %.1f s (embedder %s; %s)",
            asyncio.get_running_loop().time() - started,
            self.settings.embedder,
            why,
        )

    async def search(
        self, collection: str, query: str, k: int, where: Filter | None = None, mode: str | None = None
    ) -> list[Any]:
        """Hits for a query; CollectionNotFound for a collection nobody ingested, RetrievalUnavailable when the
        store or the embedder cannot answer."""
        try:
            retriever = await self.retriever()
            info = await retriever.store.info(collection)
            if info is None:
                raise CollectionNotFound(
                    f"The collection '{collection}' does not exist. Run `ingest PATH --collection "
                    f"{collection}` first.",
                    param="collection",
                )
            kwargs: dict[str, Any] = {"k": k, "where": where}
            if mode is not None:
                from rag.retrieve import SearchMode

                kwargs["mode"] = SearchMode(mode)
            hits: list[Any] = await retriever.search(collection, query, **kwargs)
            if self.state in (Readiness.idle, Readiness.unavailable):  # not while start-up decides or warms
                self.state, self.reason = Readiness.ready, f"used for collection {collection}"
            return hits
        except (StoreError, OSError, ImportError) as error:
            self.state, self.reason = Readiness.unavailable, _first_line(error)
            raise RetrievalUnavailable(f"Retrieval is unavailable: {error}".splitlines()[0]) from None

    async def retrieve(
        self, wanted: Wanted, query: str, policy: Policy, count_tokens: Any
    ) -> Retrieved | None:
        """The context block for a chat request, or None when the route's retrieval found nothing
        (a request that asked for retrieval itself gets the error instead)."""
        if not query:
            if wanted.explicit:
                raise InvalidRequest("Retrieval needs a user message to search with.", param="messages")
            return None
        try:
            hits = await self.search(wanted.collection, query, wanted.top_k, wanted.where)
        except (CollectionNotFound, RetrievalUnavailable) as error:
            if wanted.explicit:
                raise
            log.warning("route retrieval skipped: %s", error.message)
            return None
        if not hits:
            return None
        from rag.retrieve import context_block

        context, sources = context_block(hits, wanted.budget_tokens, count_tokens)
        if not sources:
            return None
        return Retrieved(
            collection=wanted.collection,
            context=context,
            sources=[source_json(source) for source in sources],
            tokens=count_tokens(context),
            private=policy.retrieval.is_private(wanted.collection),
        )

    async def close(self) -> None:
        if self._store is not None:
            manager, self._store, self._opened = self._store, None, None
            await manager.__aexit__(None, None, None)


def named_collections(policy: Policy) -> set[str]:
    """The collections a policy names: its default, its routes' and those it marks private."""
    names = {policy.retrieval.collection, *policy.retrieval.collections}
    for route in policy.routes:
        if isinstance(route.retrieval, RouteRetrieval) and route.retrieval.collection:
            names.add(route.retrieval.collection)
    return names


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def source_json(source: Any) -> dict[str, Any]:
    return {
        "n": source.n,
        "chunk_id": source.chunk_id,
        "source": source.source,
        "title": source.title,
        "headings": list(source.headings),
        "page": source.page,
        "score": round(float(source.score), 6),
    }
