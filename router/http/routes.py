"""Every endpoint of the gateway, in one table, with its OpenAPI description (router.http.openapi)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from router.http import admin, admin_page, batches, endpoints
from router.http import openapi as doc
from router.http.messages import count_tokens, messages
from router.http.responses import create_response, delete_response, get_response
from router.schema import ChatRequest, EmbeddingRequest, RetrieveRequest


def register(app: FastAPI, chat_completions: Callable[..., Any]) -> None:
    routes = doc.Routes(app)
    add = routes.add
    add(
        "POST",
        "/v1/chat/completions",
        chat_completions,
        summary="OpenAI chat completions, streamed or not",
        tag="inference",
        body=ChatRequest,
        ok=doc.ChatCompletion,
        stream=True,
        aliases=("/chat/completions",),
    )
    add(
        "POST",
        "/v1/messages",
        messages,
        summary="Anthropic's Messages API",
        tag="inference",
        body=doc.MessagesRequest,
        ok=doc.Message,
        stream=True,
        error=doc.AnthropicError,
    )
    add(
        "POST",
        "/v1/messages/count_tokens",
        count_tokens,
        summary="Count a Messages request's input tokens",
        tag="inference",
        body=doc.CountTokensRequest,
        ok=doc.InputTokens,
        error=doc.AnthropicError,
    )
    add(
        "POST",
        "/v1/responses",
        create_response,
        summary="OpenAI's Responses API",
        tag="inference",
        body=doc.ResponsesRequest,
        ok=doc.ResponseObject,
        stream=True,
        aliases=("/responses",),
    )
    add(
        "GET",
        "/v1/responses/{response_id}",
        get_response,
        summary="A stored response",
        tag="inference",
        ok=doc.ResponseObject,
        params=("response_id",),
    )
    add(
        "DELETE",
        "/v1/responses/{response_id}",
        delete_response,
        summary="Delete a stored response",
        tag="inference",
        ok=doc.Deleted,
        params=("response_id",),
    )
    add(
        "POST",
        "/v1/embeddings",
        endpoints.embeddings,
        summary="Embeddings (local or a provider's)",
        tag="inference",
        body=EmbeddingRequest,
        ok=doc.EmbeddingList,
        aliases=("/embeddings",),
    )
    add(
        "GET",
        "/v1/models",
        endpoints.list_models,
        summary="The models this key may name",
        tag="models",
        ok=doc.ModelList,
        aliases=("/models",),
    )
    add(
        "GET",
        "/v1/models/{model}",
        endpoints.retrieve_model,
        summary="One model",
        tag="models",
        ok=doc.ModelObject,
        params=("model",),
        aliases=("/models/{model:path}", "/v1/models/{model:path}"),
    )
    add(
        "POST",
        "/v1/route/explain",
        endpoints.route_explain,
        summary="Why a request would go where it goes",
        tag="routing",
        body=ChatRequest,
    )
    add(
        "POST",
        "/v1/retrieve",
        endpoints.retrieve,
        summary="Passages for a query",
        tag="retrieval",
        body=RetrieveRequest,
        ok=doc.Passages,
    )
    add(
        "GET",
        "/v1/usage",
        endpoints.usage_summary,
        summary="The usage ledger summarised",
        tag="admin",
        query=(
            ("since", "string"),
            ("by", "string"),
            ("key", "string"),
            ("team", "string"),
            ("baseline", "string"),
        ),
    )
    add("GET", "/v1/admin/keys", admin.list_keys, summary="Keys", tag="admin", ok=doc.KeyList)
    add(
        "POST",
        "/v1/admin/keys",
        admin.create_key,
        summary="Create a key (shown once)",
        tag="admin",
        body=admin.KeyCreate,
        ok=doc.CreatedKey,
    )
    add(
        "PATCH",
        "/v1/admin/keys/{key_id}",
        admin.update_key,
        summary="Change a key",
        tag="admin",
        body=admin.KeyUpdate,
        ok=doc.KeyObject,
        params=("key_id",),
    )
    add(
        "DELETE",
        "/v1/admin/keys/{key_id}",
        admin.revoke_key,
        summary="Revoke a key",
        tag="admin",
        ok=doc.Revoked,
        params=("key_id",),
    )
    add("GET", "/v1/admin/teams", admin.list_teams, summary="Teams", tag="admin", ok=doc.TeamList)
    add(
        "GET",
        "/v1/admin/usage/series",
        admin_page.get_usage_series,
        summary="Usage over time by route and by backend",
        tag="admin",
        ok=doc.UsageSeries,
        query=(("since", "string"), ("bucket", "string")),
    )
    add(
        "GET",
        "/v1/admin/policy",
        admin_page.get_policy,
        summary="The live policy",
        tag="admin",
        ok=doc.PolicyFile,
    )
    add(
        "GET",
        "/v1/admin/drift",
        admin_page.get_drift,
        summary="Drift of the routing signals between two windows",
        tag="admin",
        ok=doc.Drift,
        query=(("reference", "string"), ("current", "string")),
    )
    add(
        "PUT",
        "/v1/admin/teams/{name}",
        admin.put_team,
        summary="Create a team or change its limits",
        tag="admin",
        body=admin.TeamPut,
        ok=doc.Team,
        params=("name",),
    )
    add(
        "POST",
        "/v1/files",
        batches.upload_file,
        summary="Upload a batch input file",
        tag="batches",
        body=doc.FileUpload,
        ok=doc.FileObject,
        form=True,
    )
    add("GET", "/v1/files", batches.list_files, summary="Files", tag="batches", ok=doc.FileList)
    add(
        "GET",
        "/v1/files/{file_id}",
        batches.get_file,
        summary="A file",
        tag="batches",
        ok=doc.FileObject,
        params=("file_id",),
    )
    add(
        "DELETE",
        "/v1/files/{file_id}",
        batches.delete_file,
        summary="Delete a file",
        tag="batches",
        ok=doc.Deleted,
        params=("file_id",),
    )
    add(
        "GET",
        "/v1/files/{file_id}/content",
        batches.file_content,
        summary="A file's bytes",
        tag="batches",
        params=("file_id",),
        media="application/octet-stream",
    )
    add(
        "POST",
        "/v1/batches",
        batches.create_batch,
        summary="Create a batch",
        tag="batches",
        body=batches.BatchCreate,
        ok=doc.Batch,
    )
    add(
        "GET",
        "/v1/batches",
        batches.list_batches,
        summary="Batches",
        tag="batches",
        ok=doc.BatchList,
        query=(("limit", "integer"), ("after", "string")),
    )
    add(
        "GET",
        "/v1/batches/{batch_id}",
        batches.get_batch,
        summary="A batch",
        tag="batches",
        ok=doc.Batch,
        params=("batch_id",),
    )
    add(
        "POST",
        "/v1/batches/{batch_id}/cancel",
        batches.cancel_batch,
        summary="Cancel a batch",
        tag="batches",
        ok=doc.Batch,
        params=("batch_id",),
    )
    # the admin page (router.http.admin_page): public, static, left out of the description like /docs
    for path in ("/admin", "/admin/{asset}"):
        app.add_api_route(path, admin_page.page, methods=["GET"], include_in_schema=False)
    add("GET", "/healthz", endpoints.healthz, summary="Liveness", tag="health", ok=doc.Health, public=True)
    add("GET", "/readyz", endpoints.readyz, summary="Readiness", tag="health", public=True)
    add(
        "GET",
        "/metrics",
        endpoints.metrics,
        summary="Prometheus metrics",
        tag="health",
        public=True,
        media="text/plain",
    )
