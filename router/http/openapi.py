"""The gateway's routes, registered on FastAPI with their OpenAPI description (/openapi.json, /docs).

Every handler reads and validates its own body (so errors keep OpenAI's or Anthropic's shape); what
this module adds is the description: the request body's schema (the same pydantic model the handler
parses with), path and query parameters, each answer's schema and the error shape. Chat completions
are dispatched ahead of the framework (router.http.app.TurnoutApp) and are described here all the
same. Answers relayed from backends (a chat completion, a Message, a Response) are described as
objects with their fixed fields; the rest of their shape is the provider's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import models_json_schema

from router.http.admin import KeyCreate, KeyUpdate, TeamPut
from router.schema import ChatRequest, EmbeddingRequest, RetrieveRequest


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorDetail(_Out):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class Error(_Out):
    """OpenAI's error shape, which every endpoint but /v1/messages answers in."""

    error: ErrorDetail


class AnthropicErrorDetail(_Out):
    type: str
    message: str


class AnthropicError(_Out):
    type: Literal["error"]
    error: AnthropicErrorDetail


class ModelObject(_Out):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(_Out):
    object: Literal["list"]
    data: list[ModelObject]


class ChatCompletion(_Out):
    id: str
    object: Literal["chat.completion"]
    model: str
    choices: list[dict[str, Any]]


class Embedding(_Out):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingList(_Out):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: dict[str, int]


class Passage(_Out):
    object: Literal["retrieval.passage"]
    rank: int
    chunk_id: str
    score: float
    source: str
    title: str
    headings: list[str]
    page: int | None
    position: int
    text: str


class Passages(_Out):
    object: Literal["list"]
    collection: str
    data: list[Passage]
    took_ms: float


class MessagesRequest(_Out):
    """Anthropic's Messages request (router.pipeline.messages_in says what is carried)."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    stream: bool = False


class CountTokensRequest(_Out):
    model: str
    messages: list[dict[str, Any]]


class Message(_Out):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    content: list[dict[str, Any]]
    model: str
    stop_reason: str | None
    usage: dict[str, int]


class InputTokens(_Out):
    input_tokens: int


class ResponsesRequest(_Out):
    """OpenAI's Responses request (router.pipeline.responses_in says what is carried)."""

    model: str
    input: str | list[dict[str, Any]]
    stream: bool = False


class ResponseObject(_Out):
    id: str
    object: Literal["response"]
    status: str
    model: str
    output: list[dict[str, Any]]


class Deleted(_Out):
    id: str
    object: str
    deleted: bool


class FileObject(_Out):
    id: str
    object: Literal["file"]
    bytes: int
    created_at: int
    filename: str
    purpose: str


class FileList(_Out):
    object: Literal["list"]
    data: list[FileObject]
    has_more: bool


class FileUpload(_Out):
    file: bytes
    purpose: Literal["batch"]


class Batch(_Out):
    id: str
    object: Literal["batch"]
    endpoint: str
    input_file_id: str
    completion_window: str
    status: Literal[
        "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
    ]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    request_counts: dict[str, int]


class BatchList(_Out):
    object: Literal["list"]
    data: list[Batch]
    has_more: bool


class KeyObject(_Out):
    id: str
    object: Literal["key"]
    name: str
    prefix: str
    models: list[str] | None
    team: str | None
    limits: dict[str, float]
    on_budget: str
    private: bool
    created_at: int
    revoked_at: int | None


class CreatedKey(KeyObject):
    key: str


class KeyList(_Out):
    object: Literal["list"]
    data: list[KeyObject]


class Revoked(_Out):
    id: str
    object: Literal["key"]
    revoked: bool


class Team(_Out):
    name: str
    object: Literal["team"]
    limits: dict[str, float]
    keys: int


class TeamList(_Out):
    object: Literal["list"]
    data: list[Team]


class UsagePoint(_Out):
    """One bucket of one route or backend (the other name is absent)."""

    bucket: str
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    tokens: int
    cost_usd: float


class UsageSeries(_Out):
    object: Literal["usage.series"]
    since: str
    until: str
    bucket_seconds: int
    buckets: list[str]
    by_route: list[UsagePoint]
    by_backend: list[UsagePoint]


class PolicyFile(_Out):
    object: Literal["policy"]
    version: str
    path: str
    text: str | None
    file_version: str | None
    live: bool
    error: str | None
    error_at: str | None
    read_error: str | None


class DriftSignal(_Out):
    signal: str
    psi: float | None
    status: str
    reference_rows: int
    current_rows: int
    bins: list[str]
    reference: list[float]
    current: list[float]


class Drift(_Out):
    """router.ops.drift's report: each routing signal's PSI, current window against reference."""

    reference_start: str
    reference_end: str
    current_start: str
    current_end: str
    reference_rows: int
    current_rows: int
    signals: list[DriftSignal]


class Health(_Out):
    status: str


class Free(_Out):
    """A JSON object whose fields the endpoint's documentation in README lists."""


Body = type[BaseModel] | None
MODELS: list[type[BaseModel]] = [
    ChatRequest, EmbeddingRequest, RetrieveRequest, KeyCreate, KeyUpdate, TeamPut, MessagesRequest,
    CountTokensRequest, ResponsesRequest, Error, AnthropicError, ModelObject, ModelList, ChatCompletion,
    EmbeddingList, Passages, Message, InputTokens, ResponseObject, Deleted, FileObject, FileList, Batch,
    BatchList, KeyObject, CreatedKey, KeyList, Revoked, Team, TeamList, Health, Free,
    UsageSeries, PolicyFile, Drift,
]  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _content(model: type[BaseModel] | None, media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": _ref(model) if model is not None else {"type": "string"}}}


class Routes:
    """Registers handlers on the app with their description."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def add(
        self,
        method: str,
        path: str,
        handler: Callable[..., Any],
        *,
        summary: str,
        tag: str,
        body: Body = None,
        ok: Body = Free,
        stream: bool = False,
        error: type[BaseModel] = Error,
        params: tuple[str, ...] = (),
        query: tuple[tuple[str, str], ...] = (),
        public: bool = False,
        aliases: tuple[str, ...] = (),
        media: str = "application/json",
        form: bool = False,
    ) -> None:
        responses: dict[str, Any] = {
            "200": {
                "description": "OK",
                "content": _content(ok, media) if media == "application/json" else _content(None, media),
            },
            "default": {"description": "An error", "content": _content(error)},
        }
        if stream:
            responses["200"]["content"]["text/event-stream"] = {"schema": {"type": "string"}}
        extra: dict[str, Any] = {"responses": responses}
        if body is not None:
            content_type = "multipart/form-data" if form else "application/json"
            extra["requestBody"] = {"required": True, "content": {content_type: {"schema": _ref(body)}}}
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
            for name in params
        ]
        parameters += [
            {"name": name, "in": "query", "required": False, "schema": {"type": kind}} for name, kind in query
        ]
        if parameters:
            extra["parameters"] = parameters
        if public:
            extra["security"] = []
        for index, route_path in enumerate((path, *aliases)):
            self.app.add_api_route(
                route_path,
                handler,
                methods=[method],  # HEAD is answered as GET (router.http.app.TurnoutApp)
                summary=summary,
                tags=[tag],
                openapi_extra=extra,
                include_in_schema=index == 0,
                response_model=None,
            )


def describe(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's OpenAPI document: FastAPI's paths, our models' schemas as components, and auth."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        _, schemas = models_json_schema(
            [(model, "validation") for model in MODELS], ref_template="#/components/schemas/{model}"
        )
        components = document.setdefault("components", {})
        components.setdefault("schemas", {}).update(schemas.get("$defs", {}))
        components["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a turnout key or the admin key"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        }
        document["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = document
        return document

    return openapi
