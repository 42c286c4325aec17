"""What every endpoint shares: the wired `Services`, the one error-to-response mapping, and reading a
request body under the size limit. Nothing here decides how a request is routed or answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from router.admission import Admissions
from router.auth import Authenticator
from router.db import Database
from router.errors import PayloadTooLarge, TurnoutError
from router.gateway import Gateway
from router.metrics import Metrics
from router.settings import Settings
from router.usage import UsageRecorder


@dataclass
class Services:
    settings: Settings
    gateway: Gateway
    auth: Authenticator
    usage: UsageRecorder | None
    metrics: Metrics
    pool: Any
    admissions: Admissions
    listener: Any = None  # the connection that LISTENs for key changes
    database: Database | None = None


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def error_response(error: TurnoutError, extra_headers: dict[str, str] | None = None) -> Response:
    headers = {**error.headers(), **(extra_headers or {})}
    return Response(
        error.to_openai_body(), status_code=error.status_code, headers=headers, media_type="application/json"
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The request body is over the gateway's limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is over the gateway's limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)
