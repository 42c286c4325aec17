"""The upstream HTTP client (router.backends.http) against a scripted server on loopback that
writes exact bytes: keep-alive, chunked and gzip bodies, bodies that end at close, broken and
silent upstreams. Every case runs on asyncio's loop and on uvloop (what `turnout serve` uses)."""

from __future__ import annotations

import asyncio
import gzip
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trustme
import uvloop

from router.backends import http
from router.backends.http import HttpClient, post, read_body
from router.http.errors import UpstreamError, UpstreamStatus, UpstreamTimeout
from router.policy.model import Timeouts

FAST = Timeouts(connect_s=1.0, first_byte_s=0.5, total_s=5.0)
Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # True: keep the connection open


class Scripted:
    """Reads each request whole, then lets `reply` write the answer; counts connections."""

    def __init__(self, reply: Reply, tls: Any = None) -> None:
        self.reply = reply
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/v1/chat/completions"

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                if not await self.reply(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def fixed(*answers: bytes, keep: bool = True) -> Reply:
    """Write the answers in turn, one per request."""
    queue = list(answers)

    async def reply(request: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(queue.pop(0))
        await writer.drain()
        return keep

    return reply


def ok(body: bytes, *headers: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 200 OK\r\n{head}content-length: {len(body)}\r\n\r\n".encode() + body


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Callable[[Awaitable[Any]], Any]:
    if request.param == "uvloop":
        return lambda coro: uvloop.run(coro)  # type: ignore[arg-type]
    return asyncio.run  # type: ignore[return-value]


async def call(client: HttpClient, url: str, timeouts: Timeouts = FAST) -> tuple[int, bytes, Any]:
    counter = [0.0]
    response, deadline = await post(client, "up", url, b'{"q":1}', {"x-k": "v"}, timeouts, counter)
    body = await read_body(response, deadline, "up", counter)
    return response.status, body, response.headers


def test_keep_alive_sends_both_requests_on_one_connection(run):
    async def go() -> None:
        server = Scripted(fixed(ok(b'{"a":1}'), ok(b'{"a":2}', "x-extra: yes")))
        async with server as url:
            client = HttpClient()
            assert (await call(client, url))[:2] == (200, b'{"a":1}')
            status, body, headers = await call(client, url)
            assert (status, body, headers["x-extra"]) == (200, b'{"a":2}', "yes")
            await client.aclose()
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert b"\r\nhost: 127.0.0.1:" in first and b"\r\nx-k: v\r\n" in first
        assert b"\r\ncontent-length: 7\r\n" in first and first.endswith(b'\r\n\r\n{"q":1}')

    run(go())


def test_chunked_and_gzip_bodies_arrive_decoded(run):
    text = b'{"answer": [' + b",".join(b"%d" % (i * 7919 % 10007) for i in range(2000)) + b"]}"
    packed = gzip.compress(text)
    assert len(packed) > 200
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (packed[:100], packed[100:]))
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-encoding: gzip\r\n\r\n"

    async def go() -> None:
        async with Scripted(fixed(answer + chunked + b"0\r\n\r\n", ok(b"{}"))) as url:
            client = HttpClient()
            status, body, _ = await call(client, url)
            assert status == 200 and body == text
            assert (await call(client, url))[1] == b"{}"  # the chunked answer ended cleanly

    run(go())


def test_a_body_without_length_ends_with_the_connection_and_is_not_reused(run):
    async def go() -> None:
        server = Scripted(fixed(b'HTTP/1.1 200 OK\r\n\r\n{"until": "close"}', ok(b"{}"), keep=False))
        async with server as url:
            client = HttpClient()
            assert (await call(client, url))[1] == b'{"until": "close"}'
            assert (await call(client, url))[1] == b"{}"
        assert server.connections == 2

    run(go())


def test_a_connection_the_upstream_closed_while_idle_is_replaced(run):
    async def go() -> None:
        server = Scripted(fixed(ok(b"{}"), ok(b"{}"), keep=False))  # closes after each answer
        async with server as url:
            client = HttpClient()
            await call(client, url)
            await asyncio.sleep(0.05)  # the close arrives while the connection is idle
            assert (await call(client, url))[0] == 200
        assert server.connections == 2

    run(go())


def test_informational_answers_are_skipped(run):
    async def go() -> None:
        async with Scripted(fixed(b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b'{"real": 1}'))) as url:
            assert (await call(HttpClient(), url))[:2] == (200, b'{"real": 1}')

    run(go())


def test_an_error_status_carries_its_message_and_retry_after(run):
    error = b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'
    answer = b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\ncontent-length: %d\r\n\r\n%s"

    async def go() -> None:
        async with Scripted(fixed(answer % (len(error), error), ok(b"{}"))) as url:
            client = HttpClient()
            with pytest.raises(UpstreamStatus) as caught:
                await call(client, url)
            assert caught.value.upstream_status == 429 and caught.value.retry_after == 2.0
            assert "slow down" in caught.value.message
            assert (await call(client, url))[1] == b"{}"
            assert client.slots._value == 1000  # every slot given back

    run(go())


def test_a_body_cut_short_is_an_upstream_error_and_frees_its_slot(run):
    async def go() -> None:
        async with Scripted(
            fixed(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"part', keep=False)
        ) as url:
            client = HttpClient()
            with pytest.raises(UpstreamError, match="broke off"):
                await call(client, url)
            assert client.slots._value == 1000

    run(go())


def test_not_http_is_an_upstream_error(run):
    async def go() -> None:
        async with Scripted(fixed(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", keep=False)) as url:
            with pytest.raises(UpstreamError):
                await call(HttpClient(), url)

    run(go())


def test_a_silent_upstream_times_out_at_first_byte(run):
    async def silent(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    async def go() -> None:
        async with Scripted(silent) as url:
            client = HttpClient()
            started = time.monotonic()
            with pytest.raises(UpstreamTimeout):
                await call(client, url, Timeouts(connect_s=1.0, first_byte_s=0.3, total_s=5.0))
            assert time.monotonic() - started < 2
            assert client.slots._value == 1000

    run(go())


def test_nothing_listening_is_an_upstream_error(run):
    async def go() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        with pytest.raises(UpstreamError, match="unreachable"):
            await call(HttpClient(), f"http://127.0.0.1:{port}/v1/chat/completions")

    run(go())


def test_https_checks_the_certificate_and_keeps_the_connection(run):
    authority = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_tls)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)

    async def go() -> None:
        server = Scripted(fixed(ok(b'{"tls": 1}'), ok(b'{"tls": 2}')), tls=server_tls)
        async with server as url:
            client = HttpClient(tls=trusting)
            assert (await call(client, url))[1] == b'{"tls": 1}'
            assert (await call(client, url))[1] == b'{"tls": 2}'
            with pytest.raises(UpstreamError, match="unreachable"):  # the system CAs do not know it
                await call(HttpClient(), url)
        assert (
            server.connections == 1
        )  # both requests on one TLS connection (a refused handshake is no connection)

    run(go())


def test_bytes_nobody_asked_for_retire_the_connection(run):
    async def go() -> None:
        server = Scripted(fixed(ok(b"{}") + b"HTTP/1.1 200 OK\r\n", ok(b'{"fresh": 1}')))
        async with server as url:
            client = HttpClient()
            await call(client, url)
            await asyncio.sleep(0.05)
            assert (await call(client, url))[1] == b'{"fresh": 1}'
        assert server.connections == 2

    run(go())


def test_idle_connections_are_capped_per_origin(run, monkeypatch):
    monkeypatch.setattr(http, "MAX_IDLE", 2)

    async def slow(request: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        writer.write(ok(b"{}"))
        await writer.drain()
        return True

    async def go() -> None:
        async with Scripted(slow) as url:
            client = HttpClient()
            await asyncio.gather(*(call(client, url) for _ in range(5)))
            (origin,) = client._origins.values()
            assert len(origin.idle) == 2 and all(conn.reusable for conn in origin.idle)

    run(go())
