"""What every endpoint shares: the wired `Services`, the one error-to-response mapping, and reading a
request body under the size limit. Nothing here decides how a request is routed or answered.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from router.accounts.admission import Admissions
from router.accounts.auth import Authenticator
from router.accounts.usage import UsageRecorder
from router.db import Database, Listener, Pool
from router.http.errors import ClientClosed, InvalidRequest, PayloadTooLarge, RequestTimeout, TurnoutError
from router.metrics import Metrics
from router.pipeline.embeddings import Embeddings
from router.pipeline.gateway import Gateway
from router.settings import Settings

log = logging.getLogger("turnout.http")


@dataclass
class Services:
    settings: Settings
    gateway: Gateway
    auth: Authenticator
    usage: UsageRecorder | None
    metrics: Metrics
    pool: Pool
    admissions: Admissions
    listener: Listener | None = None  # hears key changes made by other processes
    database: Database | None = None

    def embeddings(self) -> Embeddings:
        """What an embeddings request (POST /v1/embeddings, a batch line) is answered by."""
        return Embeddings(self.gateway.rag, self.admissions, self.usage, self.settings.embedder, self.gateway)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def error_response(error: TurnoutError, extra_headers: dict[str, str] | None = None) -> Response:
    headers = {**error.headers(), **(extra_headers or {})}
    return Response(
        error.to_openai_body(), status_code=error.status_code, headers=headers, media_type="application/json"
    )


async def read_body(request: Request, settings: Settings, limit: int | None = None) -> bytes:
    """The body, within the size limit (`TURNOUT_MAX_BODY_BYTES` unless given) and the time limit
    (a client that sends less than its Content-Length gets 408, not a connection held open)."""
    limit = limit or settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is over the gateway's limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The request body is over the gateway's limit of {limit} bytes.")
                chunks.append(chunk)
    except TimeoutError:
        client = f"{request.client.host}:{request.client.port}" if request.client else "unknown client"
        log.warning(
            "refused %s: 408 body incomplete after %g s (%d bytes)", client, settings.body_timeout_s, size
        )
        raise RequestTimeout(
            f"The request body did not arrive within {settings.body_timeout_s:g} s ({size} bytes received)."
        ) from None
    except ClientDisconnect:
        log.info("client closed the connection while sending its request body (%d bytes received)", size)
        raise ClientClosed("The client closed the connection before its request was read.") from None
    return b"".join(chunks)


async def read_json(request: Request, settings: Settings) -> Any:
    """The body as JSON (any value: the caller checks its shape), or the caller's 400."""
    try:
        return orjson.loads(await read_body(request, settings))
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
