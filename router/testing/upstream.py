"""Upstreams in the same process: scripted HTTP answers behind the HTTP client's seam, no socket.

`Upstreams({"a.test": handler, ...}).connect` is an `HttpClient(connect=...)`: every connection the
client opens to a named host gets an in-process transport whose peer is `handler`, called with each
request (`UpstreamRequest`: path, headers, body) and returning an `Answer` (status, headers, body or
chunks, delays, a connection dropped mid-body). The bytes still go through the client's real
HTTP/1.1 parser and the adapters' real translation, so routing, fallback, redaction and relay can be
tested without sockets; the loopback emulators (router.testing.emulators) remain what proves the
wire against real servers. Tooling: nothing in the product imports it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

REASONS = {
    200: "OK",
    400: "Bad Request",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Unavailable",
}


@dataclass(frozen=True)
class UpstreamRequest:
    host: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] | None = None  # sent chunked, one write each (an SSE stream), instead of body
    delay_s: float = 0.0  # before the head
    chunk_delay_s: float = 0.0  # between chunks
    drop_after: int | None = None  # close the connection after this many chunks, mid-body


Handler = Callable[[UpstreamRequest], Answer | Awaitable[Answer]]


def openai_json(
    text: str, model: str = "scripted", prompt_tokens: int = 5, completion_tokens: int = 3
) -> Answer:
    body = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    return Answer(headers={"content-type": "application/json"}, body=json.dumps(body).encode())


def openai_sse(pieces: list[str], model: str = "scripted", usage: bool = True) -> Answer:
    """A streamed chat completion: a role chunk, one chunk per piece, a finish chunk, usage, [DONE]."""

    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": piece}) for piece in pieces]
    events.append(event({}, "stop"))
    if usage:
        tail = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": len(pieces),
                                         "total_tokens": 5 + len(pieces)}}  # fmt: skip
        events.append(b"data: " + json.dumps(tail).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return Answer(headers={"content-type": "text/event-stream"}, chunks=events)


def openai_error(status: int, message: str = "scripted failure") -> Answer:
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return Answer(status=status, headers={"content-type": "application/json"}, body=json.dumps(body).encode())


class _Transport(asyncio.Transport):
    """The client's end of an in-process connection: what it writes is parsed as HTTP requests
    and answered by the handler, the answer fed back to the protocol as a socket would."""

    def __init__(self, host: str, protocol: asyncio.Protocol, handler: Handler, log: list[UpstreamRequest]):
        super().__init__()
        self._host = host
        self._protocol = protocol
        self._handler = handler
        self._log = log
        self._buffer = b""
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += bytes(data)
        head, found, rest = self._buffer.partition(b"\r\n\r\n")
        if not found:
            return
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            return
        self._buffer = rest[length:]
        request = UpstreamRequest(self._host, lines[0].split(" ")[1], headers, rest[:length])
        self._log.append(request)
        self._task = asyncio.get_running_loop().create_task(self._answer(request))

    async def _answer(self, request: UpstreamRequest) -> None:
        answer = self._handler(request)
        if not isinstance(answer, Answer):
            answer = await answer
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        reason = REASONS.get(answer.status, "Status")
        head = [f"HTTP/1.1 {answer.status} {reason}", *(f"{k}: {v}" for k, v in answer.headers.items())]
        if answer.chunks is None:
            head.append(f"content-length: {len(answer.body)}")
            self._feed(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + answer.body)
            return
        head.append("transfer-encoding: chunked")
        self._feed(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        for sent, chunk in enumerate(answer.chunks):
            if answer.drop_after is not None and sent >= answer.drop_after:
                self.close()
                return
            if answer.chunk_delay_s:
                await asyncio.sleep(answer.chunk_delay_s)
            self._feed(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self._feed(b"0\r\n\r\n")

    def _feed(self, data: bytes) -> None:
        if not self._closing:
            self._protocol.data_received(data)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def is_closing(self) -> bool:
        return self._closing

    def pause_reading(self) -> None:
        pass  # the handler's answer is small and already in memory

    def resume_reading(self) -> None:
        pass

    def abort(self) -> None:
        self.close()


class Upstreams:
    """Scripted upstreams by host name, and every request they received (`requests`)."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.requests: list[UpstreamRequest] = []

    async def connect(
        self, host: str, port: int, tls: bool, factory: Callable[[], asyncio.Protocol]
    ) -> asyncio.Protocol:
        handler = self.handlers.get(host)
        if handler is None:
            raise ConnectionRefusedError(f"no scripted upstream for {host}:{port}")
        protocol = factory()
        protocol.connection_made(_Transport(host, protocol, handler, self.requests))
        return protocol
