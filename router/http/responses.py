"""POST /v1/responses, GET and DELETE /v1/responses/{id}: OpenAI's Responses API, for clients that
use it (pydantic-ai's OpenAI models, LangChain's `use_responses_api`, the openai SDK's
`client.responses`). The request is translated to a chat request (router.pipeline.responses_in) and
answered by the same pipeline as chat completions, by any backend. A response is stored in
Postgres unless the request says `store: false`, with its conversation, so that
`previous_response_id` continues it; a key reads and deletes only its own stored responses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from router.accounts.auth import Principal
from router.backends.base import ChunkStream
from router.db import Pool
from router.http.app import Dialect, RelayResponse, answer
from router.http.errors import InvalidRequest, ResponseNotFound
from router.http.messages import Translated
from router.http.services import read_json, services_of
from router.pipeline.exchange import Exchange
from router.pipeline.responses_in import ChunksToEvents, Envelope, from_chat, new_id, output_messages, to_chat
from router.schema import ChatRequest, RequestOptions, parse_chat_request

log = logging.getLogger("turnout.responses")
_pending: set[asyncio.Task[None]] = set()  # stores of streamed responses, finished off the relay


class ResponseStore:
    """Stored responses in Postgres (turnout_responses): the Response object and the conversation
    (chat messages, instructions excluded) that a later `previous_response_id` continues."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def save(
        self,
        principal: Principal,
        response: dict[str, Any],
        conversation: list[dict[str, Any]],
        kept_inside: str | None = None,
    ) -> None:
        from psycopg.types.json import Jsonb

        async with self.pool.connection() as connection:
            await connection.execute(
                "INSERT INTO turnout_responses (id, key_id, response, conversation, kept_inside) "
                "VALUES (%s, %s, %s, %s, %s)",
                (response["id"], principal.key_id, Jsonb(response), Jsonb(conversation), kept_inside),
            )

    async def load(self, principal: Principal, response_id: str) -> dict[str, Any]:
        """The row: `response`, `conversation` (its messages) and `kept_inside` (why the request
        that made it stayed on private backends, or None)."""
        row = await self.pool.fetch_one(
            "SELECT response, conversation, kept_inside FROM turnout_responses "
            "WHERE id = %s AND (key_id = %s OR %s)",
            (response_id, principal.key_id, principal.admin),
        )
        if row is None:
            raise ResponseNotFound(f"No response found with id '{response_id}'.", param="response_id")
        return row

    async def delete(self, principal: Principal, response_id: str) -> None:
        async with self.pool.connection() as connection:
            cursor = await connection.execute(
                "DELETE FROM turnout_responses WHERE id = %s AND (key_id = %s OR %s)",
                (response_id, principal.key_id, principal.admin),
            )
            if cursor.rowcount == 0:
                raise ResponseNotFound(f"No response found with id '{response_id}'.", param="response_id")


class ResponsesRelay(RelayResponse):
    def __init__(self, *args: Any, translator: ChunksToEvents) -> None:
        super().__init__(*args)
        self.translator = translator

    def is_last(self, block: bytes) -> bool:
        return self.translator.final is not None

    def error_event(self, message: str, kind: str) -> bytes:
        error = {"type": "error", "code": kind, "message": message, "param": None}
        return (
            b"event: error\ndata: "
            + orjson.dumps({**error, "sequence_number": self.translator.sequence})
            + b"\n\n"
        )


class Stored(Translated):
    """The translated stream; once the Response is whole, it is stored (off the relay's path)."""

    def __init__(self, inner: ChunkStream, translator: ChunksToEvents, dialect: Responses) -> None:
        super().__init__(inner, translator)
        self.dialect = dialect

    async def __anext__(self) -> bytes:
        out = await super().__anext__()
        self.dialect.stored_when_whole()
        return out


class Responses(Dialect):
    """One Responses request's dialect: it writes Response objects and events, and stores them."""

    api = "responses"

    def __init__(
        self,
        envelope: Envelope,
        conversation: list[dict[str, Any]],
        store: ResponseStore | None,
        principal: Principal,
    ) -> None:
        self.envelope = envelope
        self.conversation = conversation
        self.store = store
        self.principal = principal
        self.final: dict[str, Any] | None = None
        self.translator: ChunksToEvents | None = None
        self.saved = False
        self.kept_inside: str | None = None  # why this request stayed inside: its continuations do too
        self.inherited: str | None = None  # why the response it continues did (the first turn's reason)

    def planned(self, exchange: Exchange) -> None:
        own = exchange.signals.kept_inside if exchange.signals is not None else None
        self.kept_inside = self.inherited or own  # the first reason, not "continues ... (continues ...)"

    def body(self, answer: bytes, chat: ChatRequest) -> bytes:
        self.final = from_chat(answer, self.envelope)
        return orjson.dumps(self.final)

    def relay(
        self, exchange: Exchange, stream: ChunkStream, first: bytes, headers: dict[str, str], overhead: float
    ) -> RelayResponse:
        translator = self.translator = ChunksToEvents(self.envelope)
        relay = ResponsesRelay(
            exchange,
            Stored(stream, translator, self),
            translator.feed(first),
            headers,
            overhead,
            translator=translator,
        )
        self.stored_when_whole()
        return relay

    def stored_when_whole(self) -> None:
        if self.translator is not None and self.translator.final is not None and not self.saved:
            self.final = self.translator.final
            task = asyncio.get_running_loop().create_task(self.persist())
            _pending.add(task)
            task.add_done_callback(_pending.discard)

    async def persist(self) -> None:
        """Store the response; a failure is logged (the answer went out, and is ledgered, already)."""
        if self.saved or self.final is None or self.store is None:
            return
        self.saved = True
        conversation = [*self.conversation, *output_messages(self.final["output"])]
        try:
            # a response kept inside (a header, an instruction, a private collection's passages, a
            # key) keeps its continuations inside: the conversation alone does not always say so
            await self.store.save(self.principal, self.final, conversation, self.kept_inside)
        except Exception as error:
            log.warning("response %s was answered but not stored: %s", self.final["id"], error)


async def create_response(request: Request) -> Response:
    started = time.perf_counter()
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    body = await read_json(request, services.settings)
    store = ResponseStore(services.pool)
    history: list[dict[str, Any]] = []
    inherited: str | None = None
    options = RequestOptions.from_headers(request.headers)
    if isinstance(body, dict) and body.get("previous_response_id"):
        previous = body["previous_response_id"]
        if not isinstance(previous, str):
            raise InvalidRequest("'previous_response_id' must be a string.", param="previous_response_id")
        loaded = await store.load(principal, previous)
        history, inherited = loaded["conversation"], loaded["kept_inside"]
        if inherited and not options.private:
            because = f"it continues response {previous}, which stayed inside ({inherited})"
            options = replace(options, private=True, private_because=because)
    chat_body, conversation = to_chat(body, history)
    chat = parse_chat_request(orjson.dumps(chat_body), services.gateway.runtime.loaded.policy.declared_params)
    keep = body.get("store", True) is not False
    dialect = Responses(
        Envelope(body, new_id("resp"), chat.model), conversation, store if keep else None, principal
    )
    dialect.inherited = inherited
    response = await answer(request, services, principal, chat, started, dialect, options)
    if not chat.stream and response.status_code == 200:
        await dialect.persist()
    return response


async def get_response(request: Request) -> Response:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    row = await ResponseStore(services.pool).load(principal, request.path_params["response_id"])
    return Response(orjson.dumps(row["response"]), media_type="application/json")


async def delete_response(request: Request) -> Response:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    response_id = request.path_params["response_id"]
    await ResponseStore(services.pool).delete(principal, response_id)
    body = {"id": response_id, "object": "response.deleted", "deleted": True}
    return Response(orjson.dumps(body), media_type="application/json")
