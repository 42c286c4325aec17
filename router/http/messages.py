"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, for the Anthropic SDK
and the tools built on it. The request is translated to a chat request (router.pipeline.messages_in)
and answered by the same pipeline as chat completions: routing, limits, the sensitivity gate,
retrieval and the ledger, to any backend. Errors are in Anthropic's shape.
"""

from __future__ import annotations

import time
from typing import Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from router import tokens
from router.accounts.auth import Principal
from router.backends.base import ChunkStream, WrappedStream
from router.http.app import Dialect, RelayResponse, answer, count_refused
from router.http.errors import TurnoutError
from router.http.services import read_json, services_of
from router.pipeline.exchange import Exchange
from router.pipeline.messages_in import (
    MESSAGE_STOP,
    ChunksToEvents,
    error_body,
    from_chat,
    native_safe,
    sse,
    to_chat,
)
from router.schema import ChatRequest, NativeChatRequest, parse_chat_request


class Feeder(Protocol):
    def feed(self, block: bytes) -> bytes: ...


class Translated(WrappedStream):
    """A chat stream read in another API's events (a ChunkStream, so the relay and the ledger work
    alike): each block of chat events goes through the translator's `feed`."""

    def __init__(self, inner: ChunkStream, translator: Feeder) -> None:
        super().__init__(inner)
        self._translator = translator

    async def __anext__(self) -> bytes:
        while True:
            out = self._translator.feed(await self._inner.__anext__())
            if out:
                return out


class MessagesRelay(RelayResponse):
    END = MESSAGE_STOP

    def is_last(self, block: bytes) -> bool:
        """Ours or an Anthropic backend's own message_stop (its bytes may differ from ours)."""
        return block.endswith(MESSAGE_STOP) or block.rstrip().rsplit(b"\n\n", 1)[-1].startswith(
            b"event: message_stop"
        )

    def error_event(self, message: str, kind: str) -> bytes:
        """A failure after the first event: Anthropic's `error` event, and no message_stop after it."""
        return sse("error", {"type": "error", "error": {"type": "api_error", "message": message}})


class Messages(Dialect):
    api = "messages"

    def error(self, error: TurnoutError, headers: dict[str, str]) -> Response:
        return anthropic_error(error, headers)

    def body(self, answer: bytes, chat: ChatRequest) -> bytes:
        return from_chat(answer, chat.model)

    def relay(
        self, exchange: Exchange, stream: ChunkStream, first: bytes, headers: dict[str, str], overhead: float
    ) -> RelayResponse:
        translator = ChunksToEvents(exchange.request.model)
        return MessagesRelay(
            exchange, Translated(stream, translator), translator.feed(first), headers, overhead
        )


MESSAGES = Messages()


def anthropic_error(error: TurnoutError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        error_body(error),
        status_code=error.status_code,
        headers={**error.headers(), **(headers or {})},
        media_type="application/json",
    )


async def _chat_of(request: Request, *, counting: bool = False) -> tuple[ChatRequest, Principal]:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    body = await read_json(request, services.settings)
    if counting and isinstance(body, dict):
        body = {"max_tokens": 1, **body}  # count_tokens takes no max_tokens
    translated = orjson.dumps(to_chat(body))
    chat = parse_chat_request(translated, services.gateway.runtime.loaded.policy.declared_params)
    if native_safe(body):
        chat = NativeChatRequest.model_validate(chat.model_dump(exclude_unset=True))
        native = {name: value for name, value in body.items() if name != "turnout"}  # turnout's own
        chat.keep_native(native, request.headers.get("anthropic-beta"))
    return chat, principal


async def messages(request: Request) -> Response:
    started = time.perf_counter()
    try:
        chat, principal = await _chat_of(request)
    except TurnoutError as error:
        count_refused(request, "messages", error)
        return anthropic_error(error)
    return await answer(request, services_of(request), principal, chat, started, MESSAGES)


async def count_tokens(request: Request) -> Response:
    """The prompt's size in tokens, as the gateway counts it for limits (tiktoken's cl100k)."""
    try:
        chat, _ = await _chat_of(request, counting=True)
        services_of(request).gateway.check_model(chat)  # a model the policy lacks is a 404, as on messages
    except TurnoutError as error:
        return anthropic_error(error)
    return Response(orjson.dumps({"input_tokens": tokens.count(chat)}), media_type="application/json")
