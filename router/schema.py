"""OpenAI's chat-completions request, typed with bounds, so a bad parameter is the gateway's 400.

Unknown top-level parameters are refused (as OpenAI itself does), and every error names the field
to fix. This module must never talk to a backend: it only turns bytes into a `ChatRequest` or an
`InvalidRequest`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from router.errors import InvalidRequest
from router.policy import SearchMode

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Nested objects whose shape OpenAI extends often: keep what we don't know."""

    model_config = ConfigDict(extra="allow")


class ContentPart(_Open):
    type: Literal["text", "image_url", "input_audio", "file", "refusal"]
    text: str | None = None


class FunctionCall(_Open):
    name: str
    arguments: str = ""


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Open):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text, content parts joined; images and audio contribute nothing."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class FunctionDef(_Open):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Model):
    type: Literal["function"] = "function"
    function: FunctionDef


class NamedFunction(_Model):
    name: str


class NamedToolChoice(_Model):
    type: Literal["function"] = "function"
    function: NamedFunction


class StreamOptions(_Open):
    include_usage: bool = False


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class TurnoutOptions(_Model):
    """turnout's own extension of the request body (`"turnout": {...}`); never sent upstream."""

    rag: StrictBool | None = None  # true: retrieve even if the route does not; false: never
    private: StrictBool | None = None  # true: private backends only, as if the request were sensitive
    collection: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    top_k: Annotated[int, Field(ge=1, le=50)] | None = None
    path_prefix: str | None = None
    tags: list[str] | None = None


class ChatRequest(_Model):
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    user: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    turnout: TurnoutOptions | None = None

    @field_validator("stop")
    @classmethod
    def _stop_nonempty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not all(value):
            raise ValueError("stop sequences must be non-empty strings")
        return value

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class RetrieveRequest(_Model):
    """Body of POST /v1/retrieve."""

    query: Annotated[str, Field(min_length=1, max_length=8192)]
    collection: Annotated[str, Field(min_length=1, max_length=63)] | None = None
    top_k: Annotated[int, Field(ge=1, le=50)] | None = None
    mode: SearchMode | None = None
    path_prefix: str | None = None
    tags: list[str] | None = None


def _describe(error: ValidationError) -> tuple[str, str | None]:
    first = error.errors(include_url=False)[0]
    kind = first["type"]
    if kind == "json_invalid":
        return f"The request body is not valid JSON: {first['msg']}.", None
    if kind == "model_type" and not first["loc"]:
        return "The request body must be a JSON object.", None
    param = ".".join(str(part) for part in first["loc"])
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}.", param
    if kind == "missing":
        return f"Missing required parameter: '{param}'.", param
    if kind == "too_short" and param == "messages":
        return "'messages' must contain at least one message.", param
    return f"Invalid value for '{param}': {first['msg']}.", param


def parse_retrieve_request(body: bytes) -> RetrieveRequest:
    try:
        return RetrieveRequest.model_validate_json(body)
    except ValidationError as error:
        message, param = _describe(error)
        raise InvalidRequest(message, param=param) from None


def parse_chat_request(body: bytes) -> ChatRequest:
    """Bytes → ChatRequest, or an InvalidRequest that names the field and what to fix."""
    try:
        return ChatRequest.model_validate_json(body)
    except ValidationError as error:
        message, param = _describe(error)
        raise InvalidRequest(message, param=param) from None
