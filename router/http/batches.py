"""OpenAI's Files and Batch APIs (router.pipeline.batches keeps and runs the jobs): what the openai
SDK's `client.files` and `client.batches` call. A key sees only its own files and batches (an admin
key sees all). Each line of a batch runs as the key that created it, through the same pipeline as a
live request: routing, limits, the sensitivity gate, retrieval and the ledger.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from router.accounts.auth import KeyStore, Principal
from router.http.errors import InvalidRequest, RateLimited, TurnoutError
from router.http.services import Services, read_body, services_of
from router.pipeline.batches import (
    BATCH_COLUMNS,
    BatchError,
    RunLine,
    batch_object,
    file_object,
    new_id,
    nudge,
    parse_lines,
)
from router.pipeline.exchange import Exchange
from router.schema import Metadata, RequestOptions, parse_chat_request, parse_embedding_request, parse_model


class BatchCreate(BaseModel):
    """Body of POST /v1/batches."""

    model_config = ConfigDict(extra="forbid", strict=True)

    input_file_id: Annotated[str, Field(min_length=1, max_length=200)]
    endpoint: Literal["/v1/chat/completions", "/v1/embeddings"]
    completion_window: Literal["24h"]
    metadata: Metadata | None = None


class NotFound(TurnoutError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _mine(principal: Principal) -> tuple[str, tuple[Any, ...]]:
    return "(key_id = %s OR %s)", (principal.key_id, principal.admin)


async def upload_file(request: Request) -> Response:
    """POST /v1/files: multipart `file` and `purpose` (`batch`)."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    limit = services.settings.max_file_bytes
    raw = await read_body(request, services.settings, limit)  # counted as it arrives, chunked or not
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_part_size=limit)
    except Exception as error:  # not multipart, or malformed
        raise InvalidRequest(
            f"The upload must be multipart/form-data with 'file' and 'purpose': {error}"
        ) from None
    upload, purpose = form.get("file"), form.get("purpose")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("Missing required parameter: 'file'.", param="file")
    if purpose != "batch":
        raise InvalidRequest(
            "'purpose' must be 'batch' (the only purpose this gateway keeps files for).", param="purpose"
        )
    content = await upload.read()
    file_id = new_id("file-")
    async with services.pool.connection() as connection:
        cursor = await connection.execute(
            "INSERT INTO turnout_files (id, key_id, purpose, filename, bytes, content) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id, purpose, filename, bytes, created_at",
            (file_id, principal.key_id, purpose, upload.filename or "upload.jsonl", len(content), content),
        )
        row = await cursor.fetchone()
    assert row is not None
    return _json(file_object(row))


async def _file_row(
    services: Services, principal: Principal, file_id: str, content: bool = False
) -> dict[str, Any]:
    mine, params = _mine(principal)
    columns = "id, purpose, filename, bytes, created_at" + (", content" if content else "")
    row = await services.pool.fetch_one(
        f"SELECT {columns} FROM turnout_files WHERE id = %s AND {mine}", (file_id, *params)
    )
    if row is None:
        raise NotFound(f"No file found with id '{file_id}'.", param="file_id")
    return row


async def list_files(request: Request) -> Response:
    """GET /v1/files?purpose=batch&limit=100&order=desc&after=file-...: as OpenAI's (limit 1-10,000,
    newest first unless order=asc; a trial's limit=2 got every file and purpose was ignored)."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    query = request.query_params
    limit = _limit(query.get("limit", "10000"), 10_000)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("'order' must be 'asc' or 'desc'.", param="order")
    mine, params = _mine(principal)
    where, args = [mine], list(params)
    if purpose := query.get("purpose"):
        where.append("purpose = %s")
        args.append(purpose)
    if after := query.get("after"):  # by (created_at, id): a batch's output and error files share a time
        where.append(
            f"(created_at, id) {'>' if order == 'asc' else '<'} "
            "(SELECT created_at, id FROM turnout_files WHERE id = %s)"
        )
        args.append(after)
    rows = await services.pool.fetch_all(
        f"SELECT id, purpose, filename, bytes, created_at FROM turnout_files WHERE {' AND '.join(where)} "
        f"ORDER BY created_at {order.upper()}, id {order.upper()} LIMIT %s",
        (*args, limit + 1),
    )
    return _json(_page([file_object(row) for row in rows], limit))


def _page(objects: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A list page of at most `limit` objects, from `limit + 1` rows: more when there were more."""
    data = objects[:limit]
    page = {"object": "list", "data": data, "has_more": len(objects) > limit}
    page.update(first_id=data[0]["id"] if data else None, last_id=data[-1]["id"] if data else None)
    return page


def _limit(text: str, most: int) -> int:
    try:
        limit = int(text)
    except ValueError:
        raise InvalidRequest("'limit' must be an integer.", param="limit") from None
    if not 1 <= limit <= most:
        raise InvalidRequest(f"'limit' must be between 1 and {most}.", param="limit")
    return limit


async def get_file(request: Request) -> Response:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    return _json(file_object(await _file_row(services, principal, request.path_params["file_id"])))


async def file_content(request: Request) -> Response:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    row = await _file_row(services, principal, request.path_params["file_id"], content=True)
    return Response(bytes(row["content"]), media_type="application/octet-stream")


async def delete_file(request: Request) -> Response:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    file_id = request.path_params["file_id"]
    await _file_row(services, principal, file_id)
    async with services.pool.connection() as connection:
        await connection.execute("DELETE FROM turnout_files WHERE id = %s", (file_id,))
    return _json({"id": file_id, "object": "file", "deleted": True})


async def create_batch(request: Request) -> Response:
    """POST /v1/batches: validate the input file and queue its lines (or fail the batch, with each
    line's problem in `errors`)."""
    from psycopg.types.json import Jsonb

    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    asked = parse_model(BatchCreate, await read_body(request, services.settings))
    endpoint, metadata = asked.endpoint, asked.metadata
    source = await _file_row(services, principal, asked.input_file_id, content=True)
    if source["purpose"] != "batch":  # a batch's output or error file: a failed batch, before
        raise InvalidRequest(
            f"File '{source['id']}' has purpose '{source['purpose']}'; a batch reads a file uploaded "
            "with purpose 'batch'.",
            param="input_file_id",
        )
    batch_id = new_id("batch_")
    try:
        lines = parse_lines(bytes(source["content"]), endpoint, services.settings.batch_max_lines)
        status, errors = "in_progress", None
    except BatchError as error:
        lines, status, errors = [], "failed", error.problems
    async with services.pool.connection() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO turnout_batches (id, key_id, input_file_id, endpoint, completion_window, status, "
            "metadata, errors, in_progress_at, failed_at, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
            "CASE WHEN %s THEN now() END, CASE WHEN %s THEN now() END, now() + interval '24 hours')",
            (
                batch_id,
                principal.key_id,
                source["id"],
                endpoint,
                "24h",
                status,
                Jsonb(metadata) if metadata is not None else None,
                Jsonb(errors) if errors else None,
                status == "in_progress",
                status == "failed",
            ),
        )
        if lines:
            async with connection.cursor().copy(
                "COPY turnout_batch_lines (batch_id, line, custom_id, body) FROM STDIN"
            ) as copy:
                for number, custom_id, line_body in lines:
                    await copy.write_row((batch_id, number, custom_id, orjson.dumps(line_body).decode()))
    nudge()
    return _json(batch_object(await _batch_row(services, principal, batch_id)))


async def _batch_row(services: Services, principal: Principal, batch_id: str) -> dict[str, Any]:
    mine, params = _mine(principal)
    row = await services.pool.fetch_one(
        f"SELECT {BATCH_COLUMNS} WHERE b.id = %s AND {mine}", (batch_id, *params)
    )
    if row is None:
        raise NotFound(f"No batch found with id '{batch_id}'.", param="batch_id")
    return row


async def get_batch(request: Request) -> Response:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    return _json(batch_object(await _batch_row(services, principal, request.path_params["batch_id"])))


async def list_batches(request: Request) -> Response:
    """GET /v1/batches?limit=20&after=batch_...: newest first."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    limit = _limit(request.query_params.get("limit", "20"), 100)
    mine, params = _mine(principal)
    after = request.query_params.get("after")
    since = "AND b.created_at < (SELECT created_at FROM turnout_batches WHERE id = %s)" if after else ""
    rows = await services.pool.fetch_all(
        f"SELECT {BATCH_COLUMNS} WHERE {mine} {since} ORDER BY b.created_at DESC LIMIT %s",
        (*params, *((after,) if after else ()), limit + 1),
    )
    return _json(_page([batch_object(row) for row in rows], limit))


async def cancel_batch(request: Request) -> Response:
    """POST /v1/batches/{id}/cancel: no new line starts; the running ones finish; then `cancelled`."""
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    batch_id = request.path_params["batch_id"]
    row = await _batch_row(services, principal, batch_id)
    if row["status"] == "in_progress":
        async with services.pool.connection() as connection, connection.transaction():
            await connection.execute(
                "UPDATE turnout_batches SET status = 'cancelling', cancelling_at = now() "
                "WHERE id = %s AND status = 'in_progress'",
                (batch_id,),
            )
            await connection.execute(
                "UPDATE turnout_batch_lines SET state = 'cancelled' WHERE batch_id = %s AND state = 'pending'",
                (batch_id,),
            )
        nudge()
    return _json(batch_object(await _batch_row(services, principal, batch_id)))


def line_runner(services: Services) -> RunLine:
    """How a worker runs one line: as its key, through the pipeline, never streamed."""
    keys = KeyStore(services.pool)

    async def run(
        key_id: str, endpoint: str, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any], float | None]:
        principal = (
            Principal("admin", "admin", admin=True) if key_id == "admin" else await keys.find_id(key_id)
        )
        if principal is None:
            error = {
                "message": "The API key that created this batch was revoked.",
                "type": "authentication_error",
            }
            return 401, {"error": {**error, "param": None, "code": "invalid_api_key"}}, None
        try:
            if endpoint == "/v1/embeddings":
                embedder = services.embeddings()
                asked = parse_embedding_request(orjson.dumps(body))
                return 200, await embedder.answer(principal, asked), None
            return await _chat_line(services, principal, body)
        except RateLimited as limited:
            return 429, limited.to_openai(), limited.retry_after if limited.retry_after is not None else 60.0
        except TurnoutError as error:
            return error.status_code, error.to_openai(), None

    return run


async def _chat_line(
    services: Services, principal: Principal, body: dict[str, Any]
) -> tuple[int, dict[str, Any], float | None]:
    started = time.perf_counter()
    chat = parse_chat_request(orjson.dumps(body), services.gateway.runtime.loaded.policy.declared_params)
    exchange = Exchange(
        services.gateway,
        services.admissions,
        services.usage,
        services.metrics,
        principal,
        chat,
        started,
        interactive=False,
        api="batch",
    )
    try:
        plan = await exchange.plan(RequestOptions())
        answer, _ = await exchange.complete(plan)
    except TurnoutError as error:
        exchange.backend = getattr(error, "backend", None)
        overhead = (time.perf_counter() - started) * 1000
        exchange.settle(error.status_code, 0, 0, overhead, error.message, error.code or error.type)
        raise
    except BaseException as error:  # stopped, or a fault: the limiter's reservation is still settled
        exchange.settle(500, 0, 0, (time.perf_counter() - started) * 1000, type(error).__name__)
        raise
    return 200, orjson.loads(answer), None
