"""Anthropic Messages I/O: one POST to /v1/messages, translated by router.backends.anthropic_wire.

This class only moves bytes; every mapping decision lives in the pure wire module.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from router.backends import anthropic_wire as wire
from router.backends.base import SSE_DONE, Completion, Deadline, SSEReader, Usage, sse_data, sse_event
from router.backends.http import HttpClient, post, read_body
from router.http.errors import UpstreamError
from router.policy.model import BackendSpec, Timeouts
from router.schema import ChatRequest

log = logging.getLogger("turnout.backends")


class AnthropicStream:
    def __init__(
        self,
        backend: str,
        response: Any,
        deadline: Deadline,
        include_usage: bool,
        counter: list[float],
        native: bool = False,
    ):
        self._native = native  # relay Anthropic's own events (a Messages request passed through)
        self._backend = backend
        self._response = response
        self._reader = SSEReader(response, deadline, backend, counter)
        self._counter = counter
        self._translator = wire.StreamTranslator(include_usage)
        self._closed = False
        self._sent_done = False
        self.usage = Usage()

    @property
    def upstream_s(self) -> float:
        return self._counter[0]

    def __aiter__(self) -> AnthropicStream:
        return self

    async def __anext__(self) -> bytes:
        while True:
            if self._translator.finished:
                if self._sent_done:
                    raise StopAsyncIteration
                self._sent_done = True
                await self.aclose()
                return SSE_DONE
            block = await self._reader.next_block()
            if not block:
                await self.aclose()
                raise UpstreamError(
                    f"{self._backend} ended its stream before message_stop", backend=self._backend
                )
            out = self._translate(block)
            if out:
                return out

    def _translate(self, block: bytes) -> bytes:
        out: list[bytes] = []
        for event in block.split(b"\n\n"):
            data = sse_data(event)
            if data is None:
                continue
            payload = orjson.loads(data)
            kind = payload.get("type", "")
            if kind == "error":
                self._closed = True
                self._response.release()
                message = (payload.get("error") or {}).get("message", "error event")
                raise UpstreamError(f"{self._backend} failed mid-stream: {message}", backend=self._backend)
            chunks = self._translator.feed(kind, payload)  # the usage and the end, in either case
            if self._native:
                out.append(event + b"\n\n")
            else:
                out.extend(sse_event(chunk) for chunk in chunks)
            if self._translator.finished:
                if not self._native:
                    out.append(SSE_DONE)
                self._sent_done = True
                break
        usage = self._translator.usage
        self.usage = Usage(usage["prompt_tokens"], usage["completion_tokens"])
        return b"".join(out)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._response.release()


class AnthropicBackend:
    def __init__(self, name: str, spec: BackendSpec, base_url: str, api_key: str | None, http: HttpClient):
        self.name = name
        self.spec = spec
        base = base_url.rstrip("/")
        self.url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        http.target(self.url)  # a bad address is a start-up report, not a 500 per request
        self.headers = {
            "content-type": "application/json",
            "anthropic-version": wire.API_VERSION,
            "accept-encoding": "identity",
        }
        if api_key:
            self.headers["x-api-key"] = api_key
        self._http = http

    def _headers(self, request: ChatRequest) -> dict[str, str]:
        """A Messages request sent as it came carries its caller's anthropic-beta header too (prompt
        caching, 1M context, ...: what its body asks for may need it)."""
        beta = request.native_beta()
        return {**self.headers, "anthropic-beta": beta} if beta else self.headers

    def _payload(self, request: ChatRequest, stream: bool) -> bytes:
        native = request.native_body()
        if native is not None:  # a Messages request, unchanged since it came in: sent as it came
            dropped = {"stream", *self.spec.drop_params} - {"model", "messages", "max_tokens"}
            body = {name: value for name, value in native.items() if name not in dropped}
            body["model"] = self.spec.model
            if stream:
                body["stream"] = True
            return orjson.dumps(body)
        unset = {
            name: None for name in self.spec.drop_params if name in wire.TRANSLATED - {"model", "messages"}
        }
        if unset:  # the policy's drop_params (stream's options go with it: alone they are refused)
            if "stream" in unset:
                unset["stream_options"] = None
            request = request.model_copy(update=unset)
        dropped = request.model_fields_set - wire.TRANSLATED
        if dropped:
            log.debug("%s does not take %s: dropped", self.name, ", ".join(sorted(dropped)))
        body = wire.to_wire(
            request, self.spec.model, stream=stream, max_output_tokens=self.spec.max_output_tokens
        )
        return orjson.dumps(body)

    async def complete(self, request: ChatRequest, timeouts: Timeouts) -> Completion:
        counter = [0.0]
        payload = self._payload(request, stream=False)
        response, deadline = await post(
            self._http, self.name, self.url, payload, self._headers(request), timeouts, counter
        )
        raw = await read_body(response, deadline, self.name, counter)
        if request.native_body() is not None:  # the Message itself goes back
            try:
                usage_of = wire.usage_from_wire(orjson.loads(raw).get("usage") or {})
            except (orjson.JSONDecodeError, AttributeError):
                raise UpstreamError(
                    f"{self.name} answered with a body that is not a Message", backend=self.name
                ) from None
            usage = Usage(usage_of["prompt_tokens"], usage_of["completion_tokens"])
            return Completion(body=raw, usage=usage, upstream_s=counter[0])
        try:
            result = wire.from_wire(orjson.loads(raw))
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            raise UpstreamError(
                f"{self.name} answered with a body that is not a Message", backend=self.name
            ) from None
        usage = Usage(result["usage"]["prompt_tokens"], result["usage"]["completion_tokens"])
        return Completion(body=orjson.dumps(result), usage=usage, upstream_s=counter[0])

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> AnthropicStream:
        counter = [0.0]
        payload = self._payload(request, stream=True)
        response, deadline = await post(
            self._http, self.name, self.url, payload, self._headers(request), timeouts, counter
        )
        native = request.native_body() is not None
        return AnthropicStream(self.name, response, deadline, request.wants_usage_chunk, counter, native)
