"""The admin page (GET /admin) and the JSON it reads besides keys, teams, usage and explain: usage
over time (GET /v1/admin/usage/series), the live policy (GET /v1/admin/policy) and drift
(GET /v1/admin/drift).

The page is three static files (router/http/static/admin/) served as they are, no build step; it
holds the admin key the user types in sessionStorage and sends it as a Bearer header, so the page
itself is public and carries no data. Every JSON endpoint here is admin only. A strict
Content-Security-Policy keeps the page to its own script and style: no inline code, no other origin.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from router.db import Pool
from router.http.admin import NotFound
from router.http.errors import InvalidRequest, admin_only
from router.http.services import Services, services_of

if TYPE_CHECKING:
    from router.pipeline.gateway import Gateway

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
PAGE_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
MAX_BUCKETS = 1000  # points of one series: a week by the hour is 168
MAX_WINDOW = timedelta(days=400)
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday at midnight UTC: week buckets start on Mondays
_DURATION = re.compile(r"^([0-9]{1,6}(?:\.[0-9]{1,3})?)([mhdw])$")
_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _asset(name: str) -> bytes:
    return resources.files("router.http").joinpath("static", "admin", name).read_bytes()


async def page(request: Request) -> Response:
    """GET /admin: the page; GET /admin/{asset}: its script and style sheet."""
    name = request.path_params.get("asset", "index.html")
    if name not in ASSETS:
        raise NotFound(f"The admin page has no file '{name}'.", param="asset")
    body = await asyncio.to_thread(_asset, name)
    return Response(body, media_type=ASSETS[name], headers=PAGE_HEADERS)


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body, default=str), media_type="application/json")


async def _admin(request: Request, what: str) -> Services:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    if not principal.admin:
        raise admin_only(f"read {what}")
    return services


def parse_duration(text: str, param: str) -> timedelta:
    """'30m', '1h', '7d', '2w' (up to 400 days), or a 400 that names the parameter."""
    match = _DURATION.match(text.strip())
    seconds = float(match[1]) * _SECONDS[match[2]] if match else 0.0
    if not match or seconds < 60 or seconds > MAX_WINDOW.total_seconds():
        raise InvalidRequest(
            f"Invalid value for '{param}': use a duration such as 30m, 1h, 7d or 2w "
            "(at least a minute, at most 400 days).",
            param=param,
        )
    return timedelta(seconds=seconds)


def bucket_start(moment: datetime, bucket: timedelta) -> datetime:
    """The start of the bucket `moment` falls in: what Postgres' date_bin(bucket, moment, ORIGIN) says."""
    return ORIGIN + bucket * ((moment - ORIGIN) // bucket)


SERIES_SQL = """
SELECT bucket, GROUPING(route) = 1 AS by_backend, route, backend,
       count(*) AS requests,
       count(*) FILTER (WHERE status >= 400) AS errors,
       coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(completion_tokens), 0) AS completion_tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd
FROM (
    SELECT date_bin(%(bucket)s, ts, %(origin)s) AS bucket, route, backend, status,
           prompt_tokens, completion_tokens, cost_usd
    FROM turnout_usage WHERE ts >= %(since)s AND ts < %(until)s
) AS binned
GROUP BY GROUPING SETS ((bucket, route), (bucket, backend))
ORDER BY bucket, route, backend
"""


async def usage_series(pool: Pool, since: datetime, until: datetime, bucket: timedelta) -> dict[str, Any]:
    """Requests, tokens and cost per time bucket, once by route and once by backend (one scan of the
    ledger, grouped in Postgres). `buckets` lists every bucket of the window, empty ones included,
    so that a chart's time axis has no gaps; groups are listed only where there were requests."""
    rows = await pool.fetch_all(
        SERIES_SQL, {"bucket": bucket, "origin": ORIGIN, "since": since, "until": until}
    )
    series: dict[str, list[dict[str, Any]]] = {"route": [], "backend": []}
    for row in rows:
        dimension = "backend" if row["by_backend"] else "route"
        series[dimension].append(
            {
                "bucket": row["bucket"].astimezone(UTC).isoformat(),
                dimension: row[dimension],
                "requests": row["requests"],
                "errors": row["errors"],
                "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"],
                "tokens": row["prompt_tokens"] + row["completion_tokens"],
                "cost_usd": round(float(row["cost_usd"]), 6),
            }
        )
    first = bucket_start(since, bucket)
    buckets = [(first + bucket * index).isoformat() for index in range((until - first) // bucket + 1)]
    return {
        "object": "usage.series",
        "since": since.isoformat(),
        "until": until.isoformat(),
        "bucket_seconds": int(bucket.total_seconds()),
        "buckets": buckets,
        "by_route": series["route"],
        "by_backend": series["backend"],
    }


async def get_usage_series(request: Request) -> Response:
    """GET /v1/admin/usage/series?since=7d&bucket=1h."""
    services = await _admin(request, "the usage ledger")
    params = request.query_params
    window = parse_duration(params.get("since", "7d"), "since")
    bucket = parse_duration(params.get("bucket", "1h"), "bucket")
    if window / bucket > MAX_BUCKETS:
        raise InvalidRequest(
            f"'since' / 'bucket' makes {int(window / bucket)} buckets; at most {MAX_BUCKETS}: "
            "use a larger bucket or a shorter window.",
            param="bucket",
        )
    if services.usage is not None:
        await services.usage.flush()  # what this replica has queued counts too
    until = datetime.now(UTC)
    return _json(await usage_series(services.pool, until - window, until, bucket))


def _policy_file(gateway: Gateway) -> dict[str, Any]:
    """The policy file as it is on disk, which is the running policy unless its last edit was
    rejected (then `live` is false and the file's modification time is when that edit was made)."""
    loaded = gateway.runtime.loaded
    path = Path(loaded.path)
    body: dict[str, Any] = {
        "object": "policy",
        "version": loaded.version,
        "path": str(path),
        "error": gateway.policy_error,
        "error_at": None,
        "text": None,
        "file_version": None,
        "live": False,
        "read_error": None,
    }
    try:
        raw = path.read_bytes()
        modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat()
    except OSError as error:
        body["read_error"] = f"cannot read {path}: {error.strerror}"
        return body
    body["text"] = raw.decode("utf-8", errors="replace")
    body["file_version"] = hashlib.sha256(raw).hexdigest()[:12]
    body["live"] = body["file_version"] == loaded.version
    if gateway.policy_error is not None:
        body["error_at"] = modified
    return body


async def get_policy(request: Request) -> Response:
    """GET /v1/admin/policy: the live policy's version, path and text, and the last rejected edit."""
    services = await _admin(request, "the policy")
    return _json(await asyncio.to_thread(_policy_file, services.gateway))


async def get_drift(request: Request) -> Response:
    """GET /v1/admin/drift?reference=7d&current=1d: how this window's routing signals moved from the
    reference window's (router.ops.drift)."""
    from router.ops.drift import compute_drift

    services = await _admin(request, "drift")
    params = request.query_params
    reference = parse_duration(params.get("reference", "7d"), "reference")
    current = parse_duration(params.get("current", "1d"), "current")
    if services.usage is not None:
        await services.usage.flush()
    report = await compute_drift(services.pool, reference, current)
    return _json(report.to_json())
