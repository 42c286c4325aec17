"""OpenAI's chat-completions request, typed with bounds, so a bad parameter is the gateway's 400.

Every field of OpenAI's current Chat Completions reference is accepted, and vLLM's own fields
(router.chat_types.VLLMParams) too, as are the fields a policy's backends declare
(`extra_params`); any other top-level field is refused (as OpenAI itself does), and every error
names the field to fix. Which backend takes which field is router.backends.params' business.
Types are strict, as OpenAI's are: `"stream": "yes"` or `"n": "2"` is a 400, not coerced; numbers
are finite and integers fit in 64 bits wherever they are, free-form JSON (tool parameter schemas,
`json_schema`, unknown keys of open objects) included, so that every body accepted can be sent on.
This module must never talk to a backend: it only turns bytes into a `ChatRequest` or an
`InvalidRequest`.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from rag.stores import name_problem
from router.chat_types import (
    INT64,
    MAX_TOKENS,
    VLLM_FIELDS,
    AudioOutput,
    FunctionDef,
    LegacyFunctionChoice,
    Message,
    Moderation,
    Prediction,
    PromptCacheOptions,
    ResponseFormat,
    StreamOptions,
    Tool,
    ToolChoice,
    VLLMParams,
    WebSearchOptions,
    _Model,
    check_json,
    no_nul,
)
from router.http.errors import InvalidRequest
from router.policy.model import SearchMode

# OpenAI's metadata: at most 16 pairs, keys up to 64 characters, values up to 512 (chat, batches)
Metadata = Annotated[
    dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]], Field(max_length=16)
]


class _Filtered(_Model):
    """Retrieval options: a collection name both stores accept, filters Postgres can hold."""

    collection: str | None = None
    path_prefix: Annotated[str, Field(max_length=1024)] | None = None
    tags: (
        Annotated[list[Annotated[str, Field(min_length=1, max_length=256)]], Field(max_length=32)] | None
    ) = None

    @field_validator("collection")
    @classmethod
    def _collection_name(cls, value: str | None) -> str | None:
        problem = None if value is None else name_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return None if value is None else no_nul(value, "path_prefix")

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [no_nul(tag, "tags") for tag in value]


class TurnoutOptions(_Filtered):
    """turnout's own extension of the request body (`"turnout": {...}`); never sent upstream."""

    rag: bool | None = None  # true: retrieve even if the route does not; false: never
    private: bool | None = None  # true: private backends only, as if the request were sensitive
    top_k: Annotated[int, Field(ge=1, le=50)] | None = None


# an option of a chat request and the switch it needs
_NEEDS = {"stream_options": "stream", "top_logprobs": "logprobs"}


class ChatRequest(_Model):
    """A chat-completions body. Top-level fields turnout does not type (vLLM's, a backend's declared
    `extra_params`) are kept as sent; `parse_chat_request` decides which are allowed."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[Message], Field(min_length=1)]
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[int, Field(ge=1, le=128)] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_TOKENS)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: Annotated[int, Field(ge=INT64[0], le=INT64[1])] | None = None
    user: str | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: (
        dict[Annotated[str, Field(pattern=r"^\d{1,10}$")], Annotated[float, Field(ge=-100, le=100)]] | None
    ) = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    metadata: Metadata | None = None
    store: bool | None = None
    service_tier: Literal["auto", "default", "flex", "scale", "priority", "fast"] | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    modalities: list[Literal["text", "audio"]] | None = None
    audio: AudioOutput | None = None
    prediction: Prediction | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: Literal["in_memory", "in-memory", "24h"] | None = None
    prompt_cache_options: PromptCacheOptions | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    web_search_options: WebSearchOptions | None = None
    moderation: Moderation | None = None
    functions: Annotated[list[FunctionDef], Field(min_length=1, max_length=128)] | None = None
    function_call: Literal["none", "auto"] | LegacyFunctionChoice | None = None
    turnout: TurnoutOptions | None = None

    def native_body(self) -> dict[str, Any] | None:
        """The Messages request this was translated from, if an Anthropic backend may be sent it as
        it came (NativeChatRequest); a plain chat request has none."""
        return None

    def native_beta(self) -> str | None:
        return None

    @field_validator("stop")
    @classmethod
    def _stop_nonempty(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not all(value):
            raise ValueError("stop sequences must be non-empty strings")
        return value

    @field_validator("messages")
    @classmethod
    def _tool_results_answer_calls(cls, messages: list[Message]) -> list[Message]:
        """A tool message answers a call of the assistant message before it (other tool messages
        between), as OpenAI requires; one with no such call was merged into the user's text."""
        # the ids of the last assistant message's calls, while tool messages follow it
        calls: set[str] | None = None
        for index, message in enumerate(messages):
            if message.role == "tool":
                if calls is None:
                    raise ValueError(
                        f"messages[{index}] has role 'tool' but answers no call: it must follow an "
                        "assistant message with 'tool_calls'"
                    )
                if message.tool_call_id not in calls:
                    raise ValueError(
                        f"messages[{index}].tool_call_id {message.tool_call_id!r} is not among the "
                        "'tool_calls' of the assistant message before it"
                    )
            elif message.role == "assistant" and message.tool_calls:
                calls = {call.id for call in message.tool_calls}
            else:
                calls = None
        return messages

    @field_validator(*_NEEDS)
    @classmethod
    def _options_need_their_switch(cls, value: Any, info: ValidationInfo) -> Any:
        """As OpenAI: stream_options without "stream": true, top_logprobs without "logprobs": true
        is a 400, not ignored (each switch is a field declared before its option)."""
        switch = _NEEDS[str(info.field_name)]
        if value is not None and not info.data.get(switch):
            raise ValueError(f"it is only allowed when '{switch}' is true")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _chosen_tool_is_given(cls, value: ToolChoice | None, info: ValidationInfo) -> ToolChoice | None:
        """A tool_choice that names a tool (or lists allowed ones) needs tools to choose from, as
        OpenAI says; "none", "auto" and "required" alone are left to the backend."""
        if value is not None and not isinstance(value, str) and not info.data.get("tools"):
            raise ValueError("it names a tool, but the request has no 'tools'")
        return value

    @property
    def output_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def query(self, *, user_only: bool = False) -> str:
        """What the caller is asking now: the last user message with text (more than whitespace);
        failing that (unless `user_only`, as retrieval asks) the last message with text. The
        routing signals classify it and retrieval searches for it."""
        for message in reversed(self.messages):
            if message.role == "user" and (text := message.text()).strip():
                return text
        if user_only:
            return ""
        return next((text for m in reversed(self.messages) if (text := m.text()).strip()), "")


class NativeChatRequest(ChatRequest):
    """A chat request translated from a Messages request (router.http.messages), which keeps that
    request as it came for Anthropic backends to send natively while nothing changed it: a copy
    with other `messages` (redacted, or with retrieved context) is translated instead. A subclass,
    so that plain chat requests pay nothing for it (private attributes cost every instance)."""

    _native: dict[str, Any] | None = PrivateAttr(default=None)
    _native_messages: list[Message] | None = PrivateAttr(default=None)
    _native_beta: str | None = PrivateAttr(default=None)

    def keep_native(self, body: dict[str, Any], beta: str | None = None) -> None:
        """`beta`: the caller's anthropic-beta header, which the beta features the body asks for need."""
        self._native, self._native_messages, self._native_beta = body, self.messages, beta

    def native_body(self) -> dict[str, Any] | None:
        return self._native if self._native is not None and self.messages is self._native_messages else None

    def native_beta(self) -> str | None:
        """The anthropic-beta header to send with native_body() (None when that is None)."""
        return self._native_beta if self.native_body() is not None else None


LATENCY_HEADER = "x-turnout-latency-budget-ms"
PRIVATE_HEADER = "x-turnout-private"
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What a caller says about a request outside its body, parsed once at the edge: below it,
    nothing reads a raw header."""

    latency_budget_ms: float | None = None  # None: the policy's default budget
    private: bool = False  # keep it on private backends, whatever the detectors find
    private_because: str | None = None  # how the caller said so, for explanations

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RequestOptions:
        """x-turnout-latency-budget-ms and x-turnout-private; a bad value is the caller's 400."""
        budget, private = headers.get(LATENCY_HEADER), headers.get(PRIVATE_HEADER)
        options = cls()
        if budget is not None:
            try:
                value = float(budget)
            except ValueError:
                raise InvalidRequest(
                    f"{LATENCY_HEADER} must be a number of milliseconds, not {budget!r}."
                ) from None
            if not math.isfinite(value) or value <= 0:
                raise InvalidRequest(
                    f"{LATENCY_HEADER} must be a positive, finite number of milliseconds, not {budget!r}."
                )
            options = replace(options, latency_budget_ms=value)
        if private is not None:
            said = private.strip().lower()
            if said not in _TRUE and said not in _FALSE:
                raise InvalidRequest(f"{PRIVATE_HEADER} must be true or false, not {private!r}.")
            if said in _TRUE:
                reason = f"the caller sent {PRIVATE_HEADER}: {private.strip()}"
                options = replace(options, private=True, private_because=reason)
        return options


class RetrieveRequest(_Filtered):
    """Body of POST /v1/retrieve."""

    query: Annotated[str, Field(min_length=1, max_length=8192)]
    top_k: Annotated[int, Field(ge=1, le=50)] | None = None
    mode: SearchMode | None = None


_BASIC_TAGS = frozenset(("str", "int", "float", "bool", "dict", "list", "none"))


def _is_union_tag(part: str | int) -> bool:
    """A location step pydantic adds for a member of a union ('str', 'list[...]', a model's name),
    not a key of the caller's JSON."""
    return isinstance(part, str) and (
        "[" in part or part in _BASIC_TAGS or (part[:1].isupper() and part.isidentifier())
    )


def _describe(error: ValidationError) -> tuple[str, str | None]:
    """One message for the caller: the most specific error (the deepest location, since a union
    reports one error per member), with its JSON path as `param`."""
    errors = error.errors(include_url=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return f"The request body is not valid JSON: {first['msg']}.", None
    if kind == "model_type" and not first["loc"]:
        return "The request body must be a JSON object.", None
    located = [([p for p in e["loc"] if not _is_union_tag(p)], e) for e in errors]
    deepest = max(len(loc) for loc, _ in located)
    chosen = [(loc, e) for loc, e in located if len(loc) == deepest]
    loc, first = chosen[0]
    kind = first["type"]
    param = ".".join(str(part) for part in loc)
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}.", param
    if kind == "missing":
        return f"Missing required parameter: '{param}'.", param
    if kind == "too_short" and param == "messages":
        return "'messages' must contain at least one message.", param
    reasons = list(dict.fromkeys(e["msg"].removeprefix("Value error, ") for same, e in chosen if same == loc))
    return f"Invalid value for '{param}': {' or '.join(reasons)}.", param


MAX_EMBEDDING_INPUTS = 2048  # OpenAI's bound on one request's inputs
_M = TypeVar("_M", bound=BaseModel)


class EmbeddingRequest(_Model):
    """POST /v1/embeddings (router.pipeline.embeddings serves it)."""

    model: Annotated[str, Field(min_length=1)]
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None

    def texts(self) -> list[str]:
        """The texts to embed, or an InvalidRequest for what the local embedder cannot take."""
        items = [self.input] if isinstance(self.input, str) else list(self.input)
        if not items:
            raise InvalidRequest("'input' must not be empty.", param="input")
        if not all(isinstance(item, str) for item in items):
            raise InvalidRequest(
                "'input' as token ids is not supported by the local embedder (they are another "
                "tokenizer's ids); send the text.",
                param="input",
            )
        if len(items) > MAX_EMBEDDING_INPUTS:
            raise InvalidRequest(
                f"'input' takes at most {MAX_EMBEDDING_INPUTS} texts, not {len(items)}.", param="input"
            )
        texts = [str(item) for item in items]
        if any(not text.strip() for text in texts):
            raise InvalidRequest("'input' must not contain an empty string.", param="input")
        return texts


def parse_model(model: type[_M], body: bytes) -> _M:
    """Bytes → `model`, or an InvalidRequest that names the field and what to fix."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        message, param = _describe(error)
        raise InvalidRequest(message, param=param) from None


def parse_retrieve_request(body: bytes) -> RetrieveRequest:
    return parse_model(RetrieveRequest, body)


def parse_chat_request(body: bytes, declared: Collection[str] = ()) -> ChatRequest:
    """A chat request, or an InvalidRequest. Top-level fields beyond OpenAI's are allowed when
    vLLM defines them (and typed by its rules) or a backend of the policy declares them."""
    request = parse_model(ChatRequest, body)
    extra = request.__pydantic_extra__
    if extra:
        unknown = [name for name in extra if name not in VLLM_FIELDS and name not in declared]
        if unknown:
            s = "s" if len(unknown) > 1 else ""
            raise InvalidRequest(
                f"Unrecognized request argument{s} supplied: {', '.join(unknown)}.", param=unknown[0]
            )
        try:
            VLLMParams.model_validate({name: value for name, value in extra.items() if name in VLLM_FIELDS})
        except ValidationError as error:
            message, param = _describe(error)
            raise InvalidRequest(message, param=param) from None
        for name, value in extra.items():
            if name not in VLLM_FIELDS:
                try:
                    check_json(value, name)
                except ValueError as error:
                    raise InvalidRequest(f"Invalid value for '{name}': {error}.", param=name) from None
    return request


def parse_embedding_request(body: bytes) -> EmbeddingRequest:
    return parse_model(EmbeddingRequest, body)
