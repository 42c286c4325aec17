"""The endpoints besides chat completions: explain, retrieve, usage, models, health, readiness and
metrics. Each authenticates first where it needs a key, and answers errors in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from rag.types import Filter
from router.http.errors import InvalidRequest, ModelNotFound, admin_only
from router.http.services import read_body, read_json, services_of
from router.pipeline.embeddings import local_model_id
from router.pipeline.retrieval import Readiness
from router.pipeline.routing import explain
from router.schema import RequestOptions, parse_chat_request, parse_embedding_request, parse_retrieve_request


async def route_explain(request: Request) -> Response:
    """Admin only: why a request would go where it goes. Body: a chat request, or {"query": "..."}."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    if not principal.admin:
        raise admin_only("ask for routing explanations")
    payload = await read_json(request, services.settings)
    if isinstance(payload, dict) and "messages" not in payload:
        payload = _short_form(payload)
    gateway = services.gateway
    chat = parse_chat_request(orjson.dumps(payload), gateway.runtime.loaded.policy.declared_params)
    decision = gateway.decide(chat, RequestOptions.from_headers(request.headers))
    runtime = gateway.runtime
    body = explain(decision, runtime.loaded.version, runtime.backends.unavailable, gateway.classifier)
    return Response(orjson.dumps(body), media_type="application/json")


def _short_form(payload: dict[str, Any]) -> dict[str, Any]:
    """{"query": "...", "model": "..."} as the chat request it stands for; what is wrong with it
    said in its own words ({"query": 5}, {}, {"query": ""}, a field it does not take)."""
    query = payload.get("query")
    if not isinstance(query, str):
        raise InvalidRequest(
            'Send a chat request or {"query": "..."}: \'query\' must be a string.', param="query"
        )
    if not query.strip():
        raise InvalidRequest("'query' must not be empty.", param="query")
    unknown = sorted(set(payload) - {"query", "model"})
    if unknown:
        s = "s" if len(unknown) > 1 else ""
        raise InvalidRequest(
            f"Unrecognized request argument{s} supplied: {', '.join(unknown)}.", param=unknown[0]
        )
    return {"model": payload.get("model", "auto"), "messages": [{"role": "user", "content": query}]}


async def retrieve(request: Request) -> Response:
    """Passages for a query, without a chat completion: what `turnout search` shows."""
    services = services_of(request)
    await services.auth.authenticate(request.headers)
    asked = parse_retrieve_request(await read_body(request, services.settings))
    defaults = services.gateway.runtime.loaded.policy.retrieval
    collection = asked.collection or defaults.collection
    where = Filter(asked.path_prefix, tuple(asked.tags or ())) if asked.path_prefix or asked.tags else None
    started = time.perf_counter()
    hits = await services.gateway.rag.search(
        collection, asked.query, asked.top_k or defaults.top_k, where, (asked.mode or defaults.mode).value
    )
    data = [
        {
            "object": "retrieval.passage",
            "rank": rank,
            "chunk_id": hit.chunk.id,
            "score": round(float(hit.score), 6),
            "source": hit.chunk.source,
            "title": hit.chunk.title,
            "headings": list(hit.chunk.headings),
            "page": hit.chunk.page,
            "position": hit.chunk.position,
            "text": hit.chunk.text,
        }
        for rank, hit in enumerate(hits, start=1)
    ]
    took_ms = (time.perf_counter() - started) * 1000
    body = {"object": "list", "collection": collection, "data": data, "took_ms": round(took_ms, 3)}
    return Response(orjson.dumps(body), media_type="application/json")


async def usage_summary(request: Request) -> Response:
    """Admin only: the ledger summarised (GET /v1/usage?since=7d&by=route&key=...&team=...&baseline=...)."""
    from router.accounts.usage import GROUPS, baseline_price, parse_since, summarize

    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    if not principal.admin:
        raise admin_only("read the usage ledger")
    params = request.query_params
    by = params.get("by", "route")
    if by not in GROUPS:
        raise InvalidRequest(f"Invalid value for 'by': use one of {', '.join(GROUPS)}.", param="by")
    try:
        since = parse_since(params.get("since", "7d"))
    except ValueError as error:
        raise InvalidRequest(str(error).replace("--since", "since"), param="since") from None
    for name in ("key", "team"):
        value = params.get(name)
        if value is not None and len(value) > 256:  # a NUL never gets here (TurnoutApp._dispatch)
            raise InvalidRequest(f"Invalid value for '{name}': at most 256 characters.", param=name)
    if services.usage is not None:
        await services.usage.flush()  # what this replica has queued counts too
    try:
        baseline = baseline_price(services.gateway.runtime.loaded.policy, params.get("baseline"))
    except ValueError as error:
        raise InvalidRequest(str(error), param="baseline") from None
    summary = await summarize(
        services.pool,
        since=since,
        by=by,
        key=params.get("key"),
        team=params.get("team"),
        baseline=baseline[1] if baseline else None,
    )
    summary["baseline_backend"] = baseline[0] if baseline else None
    return Response(orjson.dumps(summary, default=str), media_type="application/json")


async def _models(request: Request) -> list[dict[str, object]]:
    """The model objects this key may name (OpenAI's shape): chat models, then the local embedder."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    models: list[dict[str, object]] = [
        {"id": name, "object": "model", "created": 0, "owned_by": owner}
        for name, owner in services.gateway.models_for(principal)
    ]
    embedders = [
        local_model_id(services.settings.embedder),
        *services.gateway.runtime.loaded.policy.embeddings,
    ]
    models += [
        {"id": name, "object": "model", "created": 0, "owned_by": "turnout"}
        for name in embedders
        if principal.may_use(name)
    ]
    return models


async def embeddings(request: Request) -> Response:
    """POST /v1/embeddings: the local embedder as a model (router.pipeline.embeddings)."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    asked = parse_embedding_request(await read_body(request, services.settings))
    embedder = services.embeddings()
    headers: dict[str, str] = {}
    body = await embedder.answer(principal, asked, RequestOptions.from_headers(request.headers), headers)
    return Response(orjson.dumps(body), media_type="application/json", headers=headers)


async def list_models(request: Request) -> Response:
    data = await _models(request)
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def retrieve_model(request: Request) -> Response:
    """GET /v1/models/{model}: one model object, or 404 model_not_found (as `client.models.retrieve`)."""
    wanted = request.path_params["model"]
    models = await _models(request)
    for model in models:
        if model["id"] == wanted:
            return Response(orjson.dumps(model), media_type="application/json")
    known = ", ".join(str(model["id"]) for model in models)
    raise ModelNotFound(f"The model '{wanted}' does not exist. Use one of: {known}.", param="model")


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    services = services_of(request)
    gateway = services.gateway
    runtime = gateway.runtime
    database = "ok"
    try:
        async with asyncio.timeout(2):
            await services.pool.fetch_one("SELECT 1")
    except Exception as error:
        database = f"unavailable: {type(error).__name__}"
    backends = {
        name: {
            "ready": name in runtime.backends.ready,
            "reason": runtime.backends.unavailable.get(name),
            "circuit": gateway.breakers.by_name[name].state.value
            if name in gateway.breakers.by_name
            else "closed",
        }
        for name in runtime.loaded.policy.backends
    }
    rag = gateway.rag
    ready = (
        database == "ok"
        and bool(runtime.backends.ready)
        and rag.state not in (Readiness.starting, Readiness.loading)
    )
    body = {
        "status": "ready" if ready else "not ready",
        "database": database,
        "retrieval": {"status": rag.state.value, "reason": rag.reason},
        "policy": {
            "path": str(runtime.loaded.path),
            "version": runtime.loaded.version,
            "error": gateway.policy_error,
        },
        "backends": backends,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    from router.metrics import CONTENT_TYPE

    body = await asyncio.to_thread(services_of(request).metrics.render)  # a large exposition is not free
    return Response(body, media_type=CONTENT_TYPE)
