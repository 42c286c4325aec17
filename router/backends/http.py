"""The one pooled HTTP client that native adapters share, and the translation of its errors.

HTTP/1.1 keep-alive connections per origin, on asyncio transports with httptools' response parser
(the llhttp parser uvicorn uses), TLS for https. A lean client rather than aiohttp's: the upstream
call is on every request's path, and at 16 concurrent clients on this 2-core machine aiohttp's
ClientSession cost about 0.13 ms of CPU per call more (`turnout bench gateway`, CPU ms/req).
What it does not do, because no provider API needs it: redirects, proxies, cookies, HTTP/2.
This module must never log a request body or a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import zlib
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httptools

from router.backends.base import Deadline, upstream_status
from router.http.errors import UpstreamError, UpstreamTimeout
from router.policy.model import Timeouts

MAX_ERROR_BODY = 64 * 1024
PAUSE_BYTES = 1 << 20  # stop reading a socket whose unread body passes this; resume once it is read
MAX_IDLE = 128  # idle connections kept per origin; older ones are closed
USER_AGENT = "turnout"


# The seam under the client: how a connection to an origin is opened. Given the host, the port,
# whether it is TLS and the protocol factory, it returns the connected protocol (connection_made
# called). The default opens a socket; router.testing.upstream opens an in-process one whose peer
# is a Python function, so the wire format is parsed as ever but no socket exists.
Connect = Callable[[str, int, bool, Callable[[], asyncio.Protocol]], Awaitable[asyncio.Protocol]]


class ConnectionBroken(Exception):
    """The upstream closed the connection, or sent what is not HTTP, before the response was whole."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection; the response being read lives here, fed by httptools' callbacks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.active = False  # a request is out on it; bytes that arrive otherwise close it
        self.tainted = False  # the upstream sent more than one answer: the connection is not reused
        self.waiter: asyncio.Future[None] | None = None
        self.begin()

    def begin(self) -> None:
        """Ready for the next response on this connection."""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.informational = False
        self.complete = False
        self.keep_alive = False
        self.until_eof = False  # a body without length or chunking ends when the connection does
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.error: Exception | None = None
        self.decoder: Any = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        if not self.active:  # nothing was asked: the connection cannot be trusted for the next answer
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ConnectionBroken(f"the answer is not valid HTTP ({error})"))

    def eof_received(self) -> bool | None:
        return None  # close our side as well; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and self.until_eof and not self.complete:
            self._finish_body()
        elif not self.complete and self.error is None:
            reason = f": {exc}" if exc else ""
            self.error = ConnectionBroken(f"the connection closed before the answer was complete{reason}")
        self._wake()

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self.complete:  # a second answer to one request: ignored, and the connection retired
            self.tainted = True

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.tainted:
            self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        if self.tainted:
            return
        status = self.parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: the answer follows
            self.headers = {}
            self.informational = True
            return
        self.status = status
        self.headers_done = True
        headers = self.headers
        self.until_eof = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and status not in (204, 304)
        )
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip"):
            self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.decoder = zlib.decompressobj()
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.tainted:
            return
        if self.decoder is not None:
            try:
                body = self.decoder.decompress(body)
            except zlib.error:
                self._fail(ConnectionBroken("the answer's compressed body is corrupt"))
                return
        if body:
            self._push(body)

    def on_message_complete(self) -> None:
        if self.tainted:
            return
        if self.informational:
            self.informational = False
            return
        self.keep_alive = self.parser.should_keep_alive()
        self._finish_body()

    # helpers
    def _finish_body(self) -> None:
        if self.decoder is not None:
            rest = self.decoder.flush()
            if rest:
                self._push(rest)
        self.complete = True
        self._wake()

    def _push(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_BYTES and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def _fail(self, error: Exception) -> None:
        self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> bytes:
        """Everything buffered, at once."""
        data = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return data

    async def wait(self, timeout: float | None) -> None:
        """Until the parser reports progress; TimeoutError after `timeout` seconds of nothing."""
        waiter = self.waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    @property
    def reusable(self) -> bool:
        return (
            not self.closed
            and not self.tainted
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class UpstreamResponse:
    """An upstream's answer once its headers are in; the body is read with `readany` or `read`.
    `release()` hands the connection back for reuse when the body was read whole, else closes it."""

    __slots__ = ("_client", "_conn", "_origin", "headers", "status")

    def __init__(self, client: HttpClient, origin: _Origin, conn: _Connection) -> None:
        self._client = client
        self._origin = origin
        self._conn: _Connection | None = conn
        self.status = conn.status
        self.headers = conn.headers

    async def readany(self, idle_s: float | None = None) -> bytes:
        """What has arrived of the body, waiting up to `idle_s` for more; b"" at its end."""
        conn = self._conn
        if conn is None:
            return b""
        while True:
            if conn.chunks:
                return conn.take()
            if conn.error is not None:
                raise conn.error
            if conn.complete:
                return b""
            await conn.wait(idle_s)

    async def read(self, deadline: Deadline | None = None, limit: int | None = None) -> bytes:
        """The whole body (or its first `limit` bytes), each wait bounded by the deadline."""
        parts: list[bytes] = []
        size = 0
        while limit is None or size < limit:
            data = await self.readany(deadline.next_wait() if deadline is not None else None)
            if not data:
                break
            parts.append(data)
            size += len(data)
        body = b"".join(parts)
        return body if limit is None else body[:limit]

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.active = False
        if conn.complete and conn.keep_alive and not conn.chunks and conn.reusable:
            self._client.put_back(self._origin, conn)
        else:
            conn.close()
        self._client.slots.release()

    def __del__(self) -> None:  # a response dropped unreleased must not hold its slot for ever
        if self._conn is not None:
            self._conn.close()
            with contextlib.suppress(Exception):  # at interpreter exit the loop may be gone
                self._client.slots.release()


class _Origin:
    """One scheme://host:port and its idle connections (most recently used last)."""

    __slots__ = ("host", "idle", "port", "tls")

    def __init__(self, tls: bool, host: str, port: int) -> None:
        self.tls = tls
        self.host = host
        self.port = port
        self.idle: list[_Connection] = []


class HttpClient:
    """Keep-alive connections per origin, at most `max_connections` in use at once; made lazily
    inside the running event loop."""

    def __init__(
        self, max_connections: int = 1000, tls: ssl.SSLContext | None = None, connect: Connect | None = None
    ) -> None:
        self._max_connections = max_connections
        self._connect = connect
        self._slots: asyncio.Semaphore | None = None
        self._origins: dict[tuple[bool, str, int], _Origin] = {}
        self._targets: dict[str, tuple[_Origin, bytes]] = {}
        self._tls = tls  # the system's trusted CAs unless given

    @property
    def slots(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._max_connections)
        return self._slots

    def target(self, url: str) -> tuple[_Origin, bytes]:
        """The URL's origin and request head, parsed once; ValueError for what is not http(s)."""
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url}")
            tls = parts.scheme == "https"
            port = parts.port or (443 if tls else 80)
            key = (tls, parts.hostname, port)
            origin = self._origins.get(key)
            if origin is None:
                origin = self._origins[key] = _Origin(tls, parts.hostname, port)
            host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
            if ":" in parts.hostname:  # IPv6 literal
                host = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\nuser-agent: {USER_AGENT}\r\n"
            target = self._targets[url] = (origin, head.encode("latin-1"))
        return target

    async def post(
        self, url: str, payload: bytes, headers: dict[str, str], connect_s: float, deadline: Deadline
    ) -> UpstreamResponse:
        """Send the request and wait for the response's headers, within the deadline: the connect
        at most `connect_s`, each wait for the upstream at most the deadline's idle time. Nothing is
        sent twice: a failure is the caller's to retry (router.pipeline.resilience).
        """
        origin, head = self.target(url)
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if "accept-encoding" not in headers:
            extra += "accept-encoding: identity\r\n"
        message = head + f"{extra}content-length: {len(payload)}\r\n\r\n".encode("latin-1") + payload
        await self.slots.acquire()
        try:
            conn = await self._connection(origin, min(connect_s, deadline.next_wait()))
            conn.begin()
            conn.active = True
            assert conn.transport is not None
            conn.transport.write(message)
            try:
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(deadline.next_wait())
            except BaseException:
                conn.close()
                raise
            return UpstreamResponse(self, origin, conn)
        except BaseException:
            self.slots.release()
            raise

    async def _connection(self, origin: _Origin, connect_s: float) -> _Connection:
        """An idle connection the upstream has not closed, else a new one."""
        while origin.idle:
            conn = origin.idle.pop()
            if conn.reusable:
                return conn
        loop = asyncio.get_running_loop()
        if self._connect is not None:
            async with asyncio.timeout(connect_s):
                protocol = await self._connect(
                    origin.host, origin.port, origin.tls, lambda: _Connection(loop)
                )
            assert isinstance(protocol, _Connection)
            return protocol
        tls = None
        if origin.tls:
            if self._tls is None:
                self._tls = ssl.create_default_context()
            tls = self._tls
        async with asyncio.timeout(connect_s):
            _, conn = await loop.create_connection(
                lambda: _Connection(loop),
                origin.host,
                origin.port,
                ssl=tls,
                server_hostname=origin.host if tls else None,
            )
        return conn

    def put_back(self, origin: _Origin, conn: _Connection) -> None:
        idle = origin.idle
        if len(idle) >= MAX_IDLE:  # after a burst: drop the ones the upstream closed, then the oldest
            idle[:] = [c for c in idle if c.reusable]
            while len(idle) >= MAX_IDLE:
                idle.pop(0).close()
        idle.append(conn)

    async def aclose(self) -> None:
        for origin in self._origins.values():
            for conn in origin.idle:
                conn.close()
            origin.idle.clear()


async def post(
    client: HttpClient,
    backend: str,
    url: str,
    payload: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
    counter: list[float],
) -> tuple[UpstreamResponse, Deadline]:
    """POST and wait for the response headers; raise UpstreamError on 4xx/5xx.

    `connect_s` bounds the TCP (and TLS) connect, `first_byte_s` any silence from the upstream once
    the request is sent (before the headers and between body reads), `total_s` the whole exchange.

    Returns the open response (the caller releases it) and the exchange's deadline.
    """
    deadline = Deadline(timeouts.total_s, timeouts.first_byte_s)
    started = time.perf_counter()
    try:
        response = await client.post(url, payload, headers, timeouts.connect_s, deadline)
        if response.status >= 400:
            body = await response.read(deadline, MAX_ERROR_BODY)
            response.release()
            raise upstream_status(backend, response.status, response.headers, body)
    except TimeoutError:
        raise UpstreamTimeout(f"{backend} did not answer in time", backend=backend) from None
    except (OSError, ConnectionBroken) as error:
        raise UpstreamError(f"{backend} is unreachable: {_describe(error)}", backend=backend) from None
    finally:
        counter[0] += time.perf_counter() - started
    return response, deadline


async def read_body(
    response: UpstreamResponse, deadline: Deadline, backend: str, counter: list[float]
) -> bytes:
    started = time.perf_counter()
    try:
        return await response.read(deadline)
    except TimeoutError:
        raise UpstreamTimeout(f"{backend} did not finish its answer in time", backend=backend) from None
    except (OSError, ConnectionBroken) as error:
        raise UpstreamError(f"{backend} broke off its answer: {_describe(error)}", backend=backend) from None
    finally:
        response.release()
        counter[0] += time.perf_counter() - started


def _describe(error: Any) -> str:
    return str(error) or type(error).__name__
