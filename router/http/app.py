"""The HTTP edge: the ASGI app, its endpoints, and the one mapping of errors to OpenAI's JSON.

`create_app(settings)` wires every part from one Settings object; nothing here reads global
state. Handlers authenticate first and parse second, so an unauthenticated caller learns nothing
about the request's validity, and no request reaches a backend before both pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from importlib.metadata import version
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from router.accounts.auth import Principal
from router.backends.base import SSE_DONE, ChunkStream
from router.http.errors import InvalidRequest, TurnoutError, UpstreamError
from router.http.lifecycle import (
    freeze_heap,
    start_batch_worker,
    start_gauges,
    startservices_of,
    stopservices_of,
)
from router.http.services import Services, error_response, read_body, services_of
from router.metrics import worker_stopped
from router.pipeline.exchange import Exchange
from router.schema import ChatRequest, RequestOptions, parse_chat_request
from router.settings import Settings
from router.tracing import Tracing, failed

log = logging.getLogger("turnout.app")


async def chat_completions(request: Request) -> Response:
    """Authenticate, parse, hand the request to its Exchange (router.pipeline), write the answer."""
    started = time.perf_counter()
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    body = await read_body(request, services.settings)
    chat = parse_chat_request(body, services.gateway.runtime.loaded.policy.declared_params)
    return await answer(request, services, principal, chat, started, OPENAI)


class Dialect:
    """How answers are written for one inbound API: chat completions as they come (this one), or
    translated (router.http.messages writes Anthropic's Messages)."""

    api = "chat"  # the `api` label of the request's metrics

    def error(self, error: TurnoutError, headers: dict[str, str]) -> Response:
        return error_response(error, headers)

    def body(self, answer: bytes, chat: ChatRequest) -> bytes:
        return answer

    def relay(
        self, exchange: Exchange, stream: ChunkStream, first: bytes, headers: dict[str, str], overhead: float
    ) -> RelayResponse:
        return RelayResponse(exchange, stream, first, headers, overhead)

    def planned(self, exchange: Exchange) -> None:
        """The request is planned (its signals known) and about to be sent."""


OPENAI = Dialect()


async def answer(
    request: Request,
    services: Services,
    principal: Principal,
    chat: ChatRequest,
    started: float,
    dialect: Dialect,
    options: RequestOptions | None = None,
) -> Response:
    """Run a parsed request through its Exchange and write the answer in the caller's dialect; the
    ledger and the limiter hear of every outcome, errors and disconnects included. `options`: the
    request's, when more than its headers say."""
    exchange = Exchange(
        services.gateway, services.admissions, services.usage, services.metrics, principal, chat, started
    )
    exchange.api = dialect.api
    try:
        plan = await exchange.plan(options or RequestOptions.from_headers(request.headers))
        dialect.planned(exchange)
        if chat.stream:
            stream, first, headers, overhead = await exchange.open_stream(plan)
            try:
                return dialect.relay(exchange, stream, first, headers, overhead)
            except BaseException:  # never relayed: closed here, its attempt counted, settled below
                await exchange.stream_abandoned(stream)
                raise
        body, headers = await exchange.complete(plan)
    except TurnoutError as error:
        exchange.backend = getattr(error, "backend", None)
        overhead = (time.perf_counter() - started) * 1000
        exchange.settle(error.status_code, 0, 0, overhead, error.message, error.code or error.type)
        return dialect.error(error, {"x-turnout-route": exchange.route or "", **exchange.rate_headers})
    except BaseException as error:  # cancelled, or a bug: the ledger and the limiter still hear of it
        status = 499 if isinstance(error, asyncio.CancelledError) else 500
        exchange.settle(status, 0, 0, (time.perf_counter() - started) * 1000, type(error).__name__)
        raise
    return Response(dialect.body(body, chat), media_type="application/json", headers=headers)


class RelayResponse(Response):
    """Streams SSE events as the upstream sends them; stops reading upstream when the client leaves.
    A Response (so that a framework's route passes it through), whose own ASGI call relays.

    A failure after the first event cannot change the status any more: it becomes an OpenAI error
    event and the stream ends without [DONE], so no client mistakes a broken answer for a whole one.
    """

    END = SSE_DONE  # the last event of a whole answer

    def __init__(
        self, exchange: Exchange, stream: ChunkStream, first: bytes, headers: dict[str, str], overhead: float
    ):
        self.exchange = exchange
        self.stream = stream
        self.first = first
        self.overhead = overhead
        self.events = 0
        self.ended = False  # the body's last byte is sent: [DONE] went out with more_body False
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        relay = asyncio.ensure_future(self._relay(send))
        watcher = asyncio.ensure_future(_wait_disconnect(receive))
        done, _ = await asyncio.wait({relay, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if relay not in done:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        watcher.cancel()
        if relay.done() and not relay.cancelled() and relay.exception() is None and not self.ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _relay(self, send: Send) -> None:
        status: int = 499
        error_text: str | None = "client disconnected"
        first_s = self.stream.upstream_s
        try:
            await self._send(send, self.first)
            async for event in self.stream:
                if not self.ended:  # nothing follows [DONE]; the stream is read to its end for usage
                    await self._send(send, event)
            status, error_text = 200, None
        except UpstreamError as error:
            status, error_text = 502, error.message
            await self._send_error(send, error.message, error.type)
        except Exception as error:  # a fault of turnout's own after the first event: said, logged, ledgered
            log.exception("stream relay from %s failed", self.exchange.backend)
            status, error_text = 500, f"relay failed: {type(error).__name__}"
            await self._send_error(send, "The gateway failed while relaying the stream.", "api_error")
        finally:
            await self.stream.aclose()
            self.exchange.stream_ended(self.stream, first_s, self.events, status, self.overhead, error_text)

    async def _send_error(self, send: Send, message: str, kind: str) -> None:
        """The stream's last event: an error in OpenAI's shape, and no [DONE] after it."""
        if self.ended:
            return  # [DONE] went out already: the answer was whole
        with contextlib.suppress(OSError):
            await send(
                {"type": "http.response.body", "body": self.error_event(message, kind), "more_body": True}
            )

    def is_last(self, block: bytes) -> bool:
        """Whether this block ends a whole answer (nothing but the end of the body follows it)."""
        return block.endswith(self.END)

    def error_event(self, message: str, kind: str) -> bytes:
        payload = {"error": {"message": message, "type": kind, "param": None, "code": "stream_interrupted"}}
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    async def _send(self, send: Send, block: bytes) -> None:
        """One block of events; the one ending in [DONE] also ends the body (one write, not two)."""
        self.ended = self.is_last(block)
        await send({"type": "http.response.body", "body": block, "more_body": not self.ended})
        self.events += _events(block)


def _events(block: bytes) -> int:
    return block.count(b"\ndata: ") + block.startswith(b"data: ") - block.count(b"[DONE]")


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _turnout_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, TurnoutError)
    api = API_OF_PATH.get(request.url.path)
    if api is not None:
        count_refused(request, api, error)
    return error_response(error)


# where a request refused before its Exchange (which counts the rest) comes out as a raised error
API_OF_PATH = {"/v1/responses": "responses", "/responses": "responses"}


def count_refused(request: Request, api: str, error: TurnoutError) -> None:
    services = getattr(request.app.state, "services", None)
    if services is not None:
        services.metrics.refused(api, error.status_code, error.code or error.type)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    wrapped = InvalidRequest(f"{request.method} {request.url.path}: {error.detail}")
    wrapped.status_code = error.status_code
    headers = dict(error.headers or {})  # a 405's Allow among them
    if "GET" in headers.get("Allow", "").split(", "):
        headers["Allow"] += ", HEAD"
    return error_response(wrapped, headers)


async def _unexpected(request: Request, error: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path)
    return error_response(TurnoutError("The gateway failed unexpectedly; the error is in its log."))


CHAT_PATHS = frozenset(("/v1/chat/completions", "/chat/completions"))
UNTRACED = frozenset(("/metrics", "/healthz", "/readyz"))  # scrapes and probes, every few seconds


def _nul_in_url(scope: Scope) -> InvalidRequest:
    """The 400 for a URL with a NUL, naming the query parameter that holds it (None: the path)."""
    pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    # a parameter is named only when its value holds the NUL: a name holding one is not echoed
    param = next((name for name, value in pairs if "\x00" in value and name and "\x00" not in name), None)
    where = f"'{param}'" if param else "The request URL"
    return InvalidRequest(
        f"{where} contains a NUL character (%00), which no parameter may hold.", param=param
    )


class TurnoutApp(FastAPI):
    """FastAPI, with chat completions dispatched straight from the ASGI call: every request and
    every streamed event otherwise passes the router and three exception-handling layers, about 4%
    of the gateway's CPU per request (measured with py-spy under `turnout bench gateway`). Errors
    map to OpenAI's JSON here exactly as the exception handlers map them for other endpoints."""

    tracing = Tracing()  # the running services' once started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.tracing.on and scope["path"] not in UNTRACED:
            await self._traced(scope, receive, send)
        else:
            await self._dispatch(scope, receive, send)

    async def _traced(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request in its own span, which ends with the response's last byte."""
        with self.tracing.request(scope["method"], scope["path"], scope["headers"]) as span:

            async def sending(message: Any) -> None:
                if message["type"] == "http.response.start" and span is not None:
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        failed(span, str(message["status"]))
                await send(message)

            await self._dispatch(scope, receive, sending)
            if span is not None:  # OpenTelemetry's HTTP convention: method and route template
                route = (
                    scope["path"]
                    if scope["path"] in CHAT_PATHS
                    else getattr(scope.get("route"), "path", None)
                )
                if route is not None:
                    span.update_name(f"{scope['method']} {route}")
                    span.set_attribute("http.route", route)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            # no id, name or cursor holds a NUL, and Postgres refuses one in text: a clear 400, never a 500
            await error_response(_nul_in_url(scope))(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in CHAT_PATHS:
            scope["app"] = self
            request = Request(scope, receive, send)
            try:
                response = await chat_completions(request)
            except TurnoutError as error:  # before an Exchange counted it: a bad key, an unreadable body
                count_refused(request, "chat", error)
                response = error_response(error)
            except Exception as error:
                response = await _unexpected(request, error)
            await response(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "HEAD":  # as GET, the server sends no body
            scope = {**scope, "method": "GET"}
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await startservices_of(settings)
        app.state.services = services
        if isinstance(app, TurnoutApp):
            app.tracing = services.gateway.tracing
        freeze_heap()
        watcher = asyncio.get_running_loop().create_task(services.gateway.watch_policy())
        batches = start_batch_worker(services, settings.batch_concurrency, yield_at=settings.batch_yield_at)
        gauges = start_gauges(services)
        try:
            yield
        finally:
            worker_stopped()
            watcher.cancel()
            if gauges is not None:
                gauges.cancel()
            if batches is not None:
                await batches.aclose()
            await stopservices_of(services)

    from router.http.openapi import describe
    from router.http.routes import register

    handlers = {TurnoutError: _turnout_error, HTTPException: _http_error, Exception: _unexpected}
    app = TurnoutApp(
        title="turnout",
        version=version("turnout"),
        description="An OpenAI-compatible LLM gateway that routes each query (README: Endpoints).",
        lifespan=lifespan,
        exception_handlers=handlers,  # type: ignore[arg-type]
        redoc_url=None,
    )
    register(app, chat_completions)
    app.openapi = describe(app)  # type: ignore[method-assign]
    app.state.settings = settings  # what the server needs before start-up (router.http.protocol's bounds)
    return app
