"""OpenAI chat-completions wire: OpenAI itself, vLLM, and every OpenAI-compatible server.

The hot path: the request is re-serialised once (the upstream model name replaces ours), the
answer is relayed as the upstream's own bytes. Streams are read line by line and passed through;
only chunks that carry usage are parsed. This adapter must never retry or fall back.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.backends.base import SSE_DONE, Completion, Deadline, SSEReader, Usage, sse_data
from router.backends.http import HttpClient, post, read_body
from router.backends.params import OPENAI_FIELDS, accepted, fit
from router.http.errors import UpstreamError
from router.policy.model import BackendSpec, Timeouts
from router.schema import ChatRequest


def to_wire(
    request: ChatRequest,
    model: str,
    *,
    stream: bool,
    takes: frozenset[str] = OPENAI_FIELDS,
    backend: str = "",
) -> dict[str, Any]:
    """The upstream body: the caller's parameters as sent, less those the backend does not take
    (router.backends.params), our backend name swapped for the model."""
    body = fit(request.model_dump(exclude_unset=True, exclude={"turnout"}), takes, backend)
    body["model"] = model
    if stream:
        body["stream"] = True
        # usage is always asked for, for the ledger; it is dropped again if the caller did not ask
        body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    else:
        body.pop("stream", None)
        body.pop("stream_options", None)
    return body


class OpenAIStream:
    """Relays an upstream SSE stream; ends with [DONE] or raises UpstreamError.

    A block of events that carries no usage, error or [DONE] is relayed as the upstream's bytes;
    only the rare block with one of those is taken apart event by event.
    """

    def __init__(
        self, backend: str, response: Any, deadline: Deadline, keep_usage_chunk: bool, counter: list[float]
    ):
        self._backend = backend
        self._response = response
        self._reader = SSEReader(response, deadline, backend, counter)
        self._keep_usage_chunk = keep_usage_chunk
        self._counter = counter
        self._done = False
        self.usage = Usage()

    @property
    def upstream_s(self) -> float:
        return self._counter[0]

    def __aiter__(self) -> OpenAIStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._done:
            block = await self._reader.next_block()
            if not block:
                await self.aclose()
                raise UpstreamError(
                    f"{self._backend} ended its stream before finishing", backend=self._backend
                )
            if b"[DONE]" not in block and b'"usage"' not in block and b'"error"' not in block:
                return block
            out = self._inspect(block)
            if out:
                return out
        raise StopAsyncIteration

    def _inspect(self, block: bytes) -> bytes:
        out: list[bytes] = []
        for event in block.split(b"\n\n"):
            data = sse_data(event)
            if data is None:
                continue
            if data == b"[DONE]":
                self._done = True
                self._response.release()
                out.append(SSE_DONE)
                break
            if b'"usage"' not in data and b'"error"' not in data:  # a plain delta: relayed unparsed
                out.append(b"data: " + data + b"\n\n")
                continue
            chunk = orjson.loads(data)
            error = chunk.get("error")
            if error:
                self._done = True
                self._response.release()
                message = error.get("message", "error event") if isinstance(error, dict) else error
                raise UpstreamError(f"{self._backend} failed mid-stream: {message}", backend=self._backend)
            if chunk.get("usage"):
                self.usage = Usage.from_openai(chunk["usage"])
                if not chunk.get("choices") and not self._keep_usage_chunk:
                    continue
            out.append(b"data: " + data + b"\n\n")
        return b"".join(out)

    async def aclose(self) -> None:
        if not self._done:
            self._done = True
            self._response.release()


class OpenAIBackend:
    def __init__(self, name: str, spec: BackendSpec, base_url: str, api_key: str | None, http: HttpClient):
        self.name = name
        self.spec = spec
        self.url = base_url.rstrip("/") + "/chat/completions"
        http.target(self.url)  # a bad address is a start-up report, not a 500 per request
        self.takes = accepted(spec)
        self.headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if api_key:
            self.headers["authorization"] = f"Bearer {api_key}"
        self._http = http

    async def complete(self, request: ChatRequest, timeouts: Timeouts) -> Completion:
        counter = [0.0]
        payload = orjson.dumps(
            to_wire(request, self.spec.model, stream=False, takes=self.takes, backend=self.name)
        )
        response, deadline = await post(
            self._http, self.name, self.url, payload, self.headers, timeouts, counter
        )
        body = await read_body(response, deadline, self.name, counter)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                f"{self.name} answered with a body that is not JSON", backend=self.name
            ) from None
        if not isinstance(parsed, dict) or "choices" not in parsed:
            raise UpstreamError(f"{self.name} answered without choices", backend=self.name)
        return Completion(body=body, usage=Usage.from_openai(parsed.get("usage")), upstream_s=counter[0])

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> OpenAIStream:
        counter = [0.0]
        payload = orjson.dumps(
            to_wire(request, self.spec.model, stream=True, takes=self.takes, backend=self.name)
        )
        response, deadline = await post(
            self._http, self.name, self.url, payload, self.headers, timeouts, counter
        )
        return OpenAIStream(self.name, response, deadline, request.wants_usage_chunk, counter)
