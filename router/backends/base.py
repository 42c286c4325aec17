"""The `Backend` seam: one object per policy backend that turns a ChatRequest into OpenAI-format bytes.

Contract, for every implementation:
- `complete` returns the whole chat.completion as OpenAI JSON bytes, with usage.
- `stream` returns once the upstream accepted the request (headers read); iterating it yields
  OpenAI SSE events (`data: {...}\\n\\n`), the last being `data: [DONE]\\n\\n`. An upstream that
  ends without finishing raises `UpstreamError` from the iterator, never a silent stop.
- Every failure is an `UpstreamError` subclass (router.http.errors); no httpx/aiohttp/litellm
  exception escapes. Time spent waiting on the upstream is added to `upstream_s`.
- A backend never retries or falls back itself: that is router.pipeline.resilience's job.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from router.http.errors import UpstreamError, UpstreamStatus, UpstreamTimeout
from router.policy.model import BackendSpec, Timeouts
from router.schema import ChatRequest


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: dict[str, Any] | None) -> Usage:
        if not usage:
            return cls()
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


@dataclass(slots=True)
class Completion:
    body: bytes
    usage: Usage
    upstream_s: float


class ChunkStream(Protocol):
    @property
    def usage(self) -> Usage: ...

    @property
    def upstream_s(self) -> float: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None: ...


class WrappedStream:
    """A stream read through another (placeholders restored, events translated): usage, upstream
    time and closing are the inner stream's; subclasses write `__anext__`."""

    def __init__(self, inner: ChunkStream) -> None:
        self._inner = inner

    @property
    def usage(self) -> Usage:
        return self._inner.usage

    @property
    def upstream_s(self) -> float:
        return self._inner.upstream_s

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._inner.aclose()


class Backend(Protocol):
    name: str
    spec: BackendSpec

    async def complete(self, request: ChatRequest, timeouts: Timeouts) -> Completion: ...

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> ChunkStream: ...


def retry_after_seconds(headers: Any) -> float | None:
    """Retry-After as seconds: `retry-after-ms`, delta-seconds, or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_fields(body: bytes) -> tuple[str, str | None, str | None, str | None]:
    """The message, type, param and code of an OpenAI- or Anthropic-shaped error body (or the raw
    text, and no type, param or code)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip() or "no body", None, None, None
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        param, code = error.get("param"), error.get("code")
        return (
            str(error.get("message") or error),
            error.get("type"),
            param if isinstance(param, str) else None,
            code if isinstance(code, str) else None,
        )
    return str(payload)[:300], None, None, None


def upstream_status(backend: str, status: int, headers: Any, body: bytes) -> UpstreamStatus:
    message, kind, param, code = error_fields(body)
    return UpstreamStatus(
        backend,
        status,
        message,
        retry_after=retry_after_seconds(headers),
        error_type=kind,
        param=param,
        code=code,
    )


def sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


class Deadline:
    """The total time budget of one upstream exchange; each read waits at most `idle_s` more."""

    __slots__ = ("at", "idle_s")

    def __init__(self, total_s: float, idle_s: float) -> None:
        self.at = time.monotonic() + total_s
        self.idle_s = idle_s

    def next_wait(self) -> float:
        return max(0.0, min(self.idle_s, self.at - time.monotonic()))


class SSEReader:
    """Whole SSE events from an upstream response (router.backends.http), as many as have arrived, within the deadline.

    Reading what is buffered rather than line by line lets one upstream packet of several events
    cost one pass and one send to the client. Time spent waiting is added to counter[0].
    """

    __slots__ = ("_backend", "_buffer", "_counter", "_deadline", "_reader")

    def __init__(self, response: Any, deadline: Deadline, backend: str, counter: list[float]) -> None:
        self._reader = response
        self._deadline = deadline
        self._backend = backend
        self._counter = counter
        self._buffer = b""

    async def next_block(self) -> bytes:
        """The next run of complete events (each ending in a blank line); b"" at end of stream."""
        while True:
            data = await self._read()
            if not data:
                return b""
            if b"\r" in data:
                data = data.replace(b"\r\n", b"\n")
            self._buffer += data
            cut = self._buffer.rfind(b"\n\n")
            if cut >= 0:
                block, self._buffer = self._buffer[: cut + 2], self._buffer[cut + 2 :]
                return block

    async def _read(self) -> bytes:
        started = time.perf_counter()
        try:
            data: bytes = await self._reader.readany(self._deadline.next_wait())
            return data
        except TimeoutError:
            raise UpstreamTimeout(
                f"{self._backend} stopped sending (stream timed out)", backend=self._backend
            ) from None
        except Exception as error:  # a broken connection or bad HTTP, translated here only
            raise UpstreamError(f"{self._backend} stream broke: {error}", backend=self._backend) from None
        finally:
            self._counter[0] += time.perf_counter() - started


def sse_data(event: bytes) -> bytes | None:
    """The data of one SSE event (its `data:` lines joined), or None for comments and blanks."""
    if event.startswith(b"data: ") and b"\n" not in event:  # the usual event: one data line
        return event[6:].strip()
    lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None
