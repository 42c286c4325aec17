"""The one pooled HTTP client that native adapters share, and the translation of its errors.

aiohttp rather than httpx: on this 2-core machine its client costs a fraction of httpx's per
request, and the hot path's budget is 2 ms. This module must never log a request body or a key.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from router.backends.base import Deadline, upstream_status
from router.errors import UpstreamError, UpstreamTimeout
from router.policy import Timeouts

MAX_ERROR_BODY = 64 * 1024


class HttpClient:
    """Owns the aiohttp session; created lazily inside the running event loop."""

    def __init__(self, max_connections: int = 1000) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def post(
    client: HttpClient,
    backend: str,
    url: str,
    payload: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
    counter: list[float],
) -> tuple[aiohttp.ClientResponse, Deadline]:
    """POST and wait for the response headers; raise UpstreamError on 4xx/5xx.

    `connect_s` bounds the TCP connect, `first_byte_s` any silence from the upstream once the
    request is sent (before the headers and between body reads), `total_s` the whole exchange.

    Returns the open response (the caller releases it) and the exchange's deadline.
    """
    deadline = Deadline(timeouts.total_s, timeouts.first_byte_s)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeouts.total_s):
            response = await client.session().post(
                url,
                data=payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeouts.connect_s, sock_read=timeouts.first_byte_s
                ),
            )
            if response.status >= 400:
                body = await response.content.read(MAX_ERROR_BODY)
                response.release()
                raise upstream_status(backend, response.status, response.headers, body)
    except TimeoutError:
        raise UpstreamTimeout(f"{backend} did not answer in time", backend=backend) from None
    except aiohttp.ClientError as error:
        raise UpstreamError(f"{backend} is unreachable: {_describe(error)}", backend=backend) from None
    finally:
        counter[0] += time.perf_counter() - started
    return response, deadline


async def read_body(
    response: aiohttp.ClientResponse, deadline: Deadline, backend: str, counter: list[float]
) -> bytes:
    started = time.perf_counter()
    try:
        async with asyncio.timeout(max(0.0, deadline.at - time.monotonic())):
            return await response.read()
    except TimeoutError:
        raise UpstreamTimeout(f"{backend} did not finish its answer in time", backend=backend) from None
    except aiohttp.ClientError as error:
        raise UpstreamError(f"{backend} broke off its answer: {_describe(error)}", backend=backend) from None
    finally:
        response.release()
        counter[0] += time.perf_counter() - started


def _describe(error: Any) -> str:
    return str(error) or type(error).__name__
