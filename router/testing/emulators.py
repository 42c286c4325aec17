"""Loopback emulators of OpenAI chat completions and Anthropic Messages, for tests, demos and benchmarks.

They speak the real wire protocols (the official SDKs talk to them unchanged), answer
deterministically, count usage, and play scripted faults: an HTTP status with Retry-After, a hang,
a connection dropped before the answer or in the middle of a stream. They bind loopback only and
must never forward anything anywhere.

Control over HTTP (for emulators in another process): POST /_emulator/faults with a JSON list of
faults, POST /_emulator/config with think_ms/token_ms, GET and DELETE /_emulator/received.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
import struct
import threading
import time
from typing import Any

import orjson
from aiohttp import web

from router.testing.faults import Fault, FaultKind, Script
from router.testing.replies import (
    OPENAI_REQUEST_FIELDS,
    Server,
    WireProtocol,
    chosen_tool,
    embedding_of,
    prompt_tokens,
    reply_words,
    shaped,
)
from router.testing.streams import anthropic_events, openai_events, stop_reason


class Emulator:
    """One provider emulator on 127.0.0.1; `await start()` in a loop, or `start_in_thread()`."""

    def __init__(
        self,
        wire: Server,
        api_key: str | None = None,
        think_ms: float = 0.0,
        token_ms: float = 0.0,
        jitter_ms: float = 0.0,
    ):
        self.wire: WireProtocol = "anthropic" if wire == "anthropic" else "openai"
        self.strict_fields = wire == "openai"  # OpenAI refuses unknown fields; vLLM ignores them
        self.api_key = api_key
        self.script = Script(think_ms=think_ms, token_ms=token_ms, jitter_ms=jitter_ms)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.port = 0

    # ---- scripting -------------------------------------------------------------------------
    def fault(self, kind: FaultKind, **options: Any) -> None:
        self.script.faults.append(Fault(kind, **options))

    def fail_always(self, kind: FaultKind, **options: Any) -> None:
        self.script.always = Fault(kind, **options)

    def clear(self) -> None:
        self.script.always = None
        self.script.faults.clear()
        self.script.received.clear()
        self.script.requests = 0

    @property
    def received(self) -> list[dict[str, Any]]:
        return list(self.script.received)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/v1" if self.wire == "openai" else "")

    # ---- serving ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        path = "/v1/chat/completions" if self.wire == "openai" else "/v1/messages"
        app.router.add_post(path, self._handle)
        app.router.add_get("/v1/models", self._models)
        if self.wire == "openai":
            app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/_emulator/faults", self._set_faults)
        app.router.add_post("/_emulator/config", self._set_config)
        app.router.add_get("/_emulator/received", self._get_received)
        app.router.add_delete("/_emulator/received", self._clear_received)
        return app

    async def start(self, port: int = 0) -> str:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.base_url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start_in_thread(self, port: int = 0) -> str:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start(port))
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name=f"{self.wire}-emulator", daemon=True).start()
        if not ready.wait(10):
            raise RuntimeError("emulator did not start")
        return self.base_url

    def stop_thread(self) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self.stop(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)

    # ---- control endpoints -----------------------------------------------------------------
    async def _set_faults(self, request: web.Request) -> web.Response:
        for item in await request.json():
            self.script.faults.append(Fault(**item))
        return web.json_response({"queued": len(self.script.faults)})

    async def _set_config(self, request: web.Request) -> web.Response:
        config = await request.json()
        self.script.think_ms = float(config.get("think_ms", self.script.think_ms))
        self.script.token_ms = float(config.get("token_ms", self.script.token_ms))
        return web.json_response({"think_ms": self.script.think_ms, "token_ms": self.script.token_ms})

    async def _get_received(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.script.requests, "received": list(self.script.received)})

    async def _clear_received(self, request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"cleared": True})

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": "emulated", "object": "model", "owned_by": "emulator"}]}
        )

    # ---- the protocol ----------------------------------------------------------------------
    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        """OpenAI's embeddings: a deterministic unit vector per text (`dimensions` long, default 8),
        as floats or base64 float32; faults and the received log as for chat."""
        self.script.requests += 1
        if not self._authorized(request):
            return self._error(401, "Incorrect API key provided.", "authentication_error")
        body = orjson.loads(await request.read())
        self.script.received.append(body)
        fault = self.script.faults.popleft() if self.script.faults else self.script.always
        if fault is not None:
            return await self._play(fault, request)
        texts = [body["input"]] if isinstance(body.get("input"), str) else list(body.get("input") or [])
        data = []
        for index, text in enumerate(texts):
            vector = embedding_of(str(text), int(body.get("dimensions") or 8))
            if body.get("encoding_format") == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        used = sum(len(str(text).split()) for text in texts)
        usage = {"prompt_tokens": used, "total_tokens": used}
        payload = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    def _error(
        self,
        status: int,
        message: str,
        kind: str,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> web.Response:
        if self.wire == "openai":
            body: dict[str, Any] = {"error": {"message": message, "type": kind, "param": param, "code": code}}
        else:
            body = {"type": "error", "error": {"type": kind, "message": message}}
        headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
        return web.Response(
            body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
        )

    def _authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        # Anthropic takes x-api-key, and (its SDK 2.x sends this) a Bearer token
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return True
        return self.wire == "anthropic" and request.headers.get("x-api-key") == self.api_key

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.script.requests += 1
        if not self._authorized(request):
            return self._error(401, "Incorrect API key provided.", "authentication_error")
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return self._error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        self.script.received.append(body)
        self.script.headers = {name.lower(): value for name, value in request.headers.items()}
        problem = self._invalid(request, body)
        if problem:
            return self._error(400, problem, "invalid_request_error")
        fault = self.script.faults.popleft() if self.script.faults else self.script.always
        if fault is not None and fault.kind != "drop_mid_stream":
            return await self._play(fault, request)
        jitter = (
            random.uniform(-self.script.jitter_ms, self.script.jitter_ms) if self.script.jitter_ms else 0.0
        )
        await asyncio.sleep(max(0.0, self.script.think_ms + jitter) / 1000)
        model = str(body.get("model", "emulated"))
        words, finish, stop = shaped(body, reply_words(body, model), self.wire)
        tool = chosen_tool(body, self.wire)
        drop_after = fault.after_chunks if fault is not None else None
        ended = (finish, stop)
        if body.get("stream"):
            return await self._stream(request, body, model, words, tool, drop_after, ended)
        payload = (
            self._openai_body(body, model, words, tool, finish)
            if self.wire == "openai"
            else self._anthropic_body(body, model, words, tool, ended)
        )
        return web.Response(body=orjson.dumps(payload), content_type="application/json")

    def _invalid(self, request: web.Request, body: dict[str, Any]) -> str | None:
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages: at least one message is required"
        if self.wire == "openai":
            unknown = [name for name in body if name not in OPENAI_REQUEST_FIELDS]
            if self.strict_fields and unknown:
                return f"Unrecognized request argument supplied: {unknown[0]}"
            return None
        if not request.headers.get("anthropic-version"):
            return "anthropic-version: header is required"
        if not isinstance(body.get("max_tokens"), int):
            return "max_tokens: Field required"
        roles = [message.get("role") for message in body["messages"]]
        if any(role not in ("user", "assistant") for role in roles):
            return "messages: roles must be 'user' or 'assistant' (system goes in the top-level system field)"
        if any(a == b for a, b in itertools.pairwise(roles)):
            return "messages: roles must alternate between 'user' and 'assistant'"
        return None

    async def _play(self, fault: Fault, request: web.Request) -> web.StreamResponse:
        if fault.kind == "status":
            kinds = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
            kind = kinds.get(fault.status, "api_error" if fault.status >= 500 else "invalid_request_error")
            return self._error(
                fault.status, f"emulated {fault.status}", kind, fault.retry_after, fault.param, fault.code
            )
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return self._error(500, "emulated hang ended", "api_error")
        # drop_before: close the connection without answering
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("emulated connection drop")

    def _next_id(self) -> str:
        return f"{next(self._ids):08d}"

    def _openai_body(
        self, body: dict[str, Any], model: str, words: list[str], tool: dict[str, Any] | None, finish: str
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": " ".join(words), "refusal": None}
        if tool is not None:
            message["content"] = None
            finish = "tool_calls"
            if tool["kind"] == "function_call":
                message["function_call"] = {
                    "name": tool["name"],
                    "arguments": orjson.dumps(tool["input"]).decode(),
                }
                finish = "function_call"
            elif tool["kind"] == "custom":
                custom = {"name": tool["name"], "input": tool["input"]}
                message["tool_calls"] = [
                    {"id": "call_" + self._next_id(), "type": "custom", "custom": custom}
                ]
            else:
                arguments = orjson.dumps(tool["input"]).decode()
                function = {"name": tool["name"], "arguments": arguments}
                message["tool_calls"] = [
                    {"id": "call_" + self._next_id(), "type": "function", "function": function}
                ]
        n = int(body.get("n") or 1)  # n choices, as OpenAI answers them (the same text here)
        completion = (8 if tool is not None else len(words)) * n
        choice = {"message": message, "logprobs": None, "finish_reason": finish}
        return {
            "id": "chatcmpl-" + self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": i, **choice} for i in range(n)],
            "usage": {
                "prompt_tokens": prompt_tokens(body),
                "completion_tokens": completion,
                "total_tokens": prompt_tokens(body) + completion,
            },
        }

    def _anthropic_body(
        self,
        body: dict[str, Any],
        model: str,
        words: list[str],
        tool: dict[str, Any] | None,
        ended: tuple[str, str | None],
    ) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": " ".join(words)}]
        stop = stop_reason(ended)
        if tool is not None:
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_" + self._next_id(),
                    "name": tool["name"],
                    "input": tool["input"],
                }
            ]
            stop = "tool_use"
        return {
            "id": "msg_" + self._next_id(),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": ended[1] if tool is None else None,
            "usage": {"input_tokens": prompt_tokens(body), "output_tokens": 8 if tool else len(words)},
        }

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        model: str,
        words: list[str],
        tool: dict[str, Any] | None,
        drop_after: int | None,
        ended: tuple[str, str | None],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        events = (
            openai_events(self._next_id, body, model, words, tool, ended[0])
            if self.wire == "openai"
            else anthropic_events(self._next_id, body, model, words, tool, ended)
        )
        for sent, event in enumerate(events):
            if drop_after is not None and sent >= drop_after:
                if request.transport is not None:
                    request.transport.abort()
                return response
            if sent and self.script.token_ms:
                await asyncio.sleep(self.script.token_ms / 1000)
            await response.write(event)
        await response.write_eof()
        return response
