"""The parts of an OpenAI chat-completions request (messages, content parts, tools, options), typed
strictly, and vLLM's own request fields. router.schema assembles them into `ChatRequest`.

Objects OpenAI extends often are open (`_Open`): keys turnout does not know are kept, checked to be
JSON that can be sent on, and sent. Everything else is closed, so a misspelt key is a 400.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
INT64 = (-(2**63), 2**63 - 1)
UINT64_MAX = 2**64 - 1
MAX_TOKENS = 2**31 - 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


class _Open(BaseModel):
    """Nested objects whose shape OpenAI extends often: keep what we don't know (checked to be
    JSON that can be sent on)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)

    @model_validator(mode="after")
    def _sendable_extras(self) -> _Open:
        for name, value in (self.__pydantic_extra__ or {}).items():
            check_json(value, name)
        return self


def check_json(value: Any, where: str) -> None:
    """Refuse free-form JSON that no upstream could be sent: integers beyond 64 bits (which the
    JSON encoder cannot write) and NaN or infinities (which JSON has no words for)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not INT64[0] <= value <= UINT64_MAX:
            raise ValueError(f"{where or 'value'}: integer {value} is out of the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where or 'value'}: numbers must be finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]")


def _sendable(value: dict[str, Any]) -> dict[str, Any]:
    check_json(value, "")
    return value


# A free-form JSON object passed on to the backend (tool parameter schemas, `json_schema`).
SendableObject = Annotated[dict[str, Any], AfterValidator(_sendable)]
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")]


def no_nul(value: str, what: str) -> str:
    if "\x00" in value:
        raise ValueError(f"{what} must not contain NUL characters")
    return value


class ImageURL(_Open):
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(_Open):
    type: Literal["text", "image_url", "input_audio", "file", "refusal"]
    text: str | None = None
    image_url: ImageURL | None = None
    refusal: str | None = None

    @model_validator(mode="after")
    def _has_its_payload(self) -> ContentPart:
        needed = {"text": self.text, "image_url": self.image_url, "refusal": self.refusal}
        if self.type in needed and needed[self.type] is None:
            kind = "a string" if self.type != "image_url" else "an object with a 'url'"
            raise ValueError(f"a content part of type '{self.type}' needs '{self.type}' ({kind})")
        if self.type in ("input_audio", "file") and not isinstance(getattr(self, self.type, None), dict):
            raise ValueError(f"a content part of type '{self.type}' needs '{self.type}' (an object)")
        return self


class FunctionCall(_Open):
    name: str
    arguments: str = ""


class CustomCall(_Open):
    """A call of a custom (free-form input) tool, as an assistant message carries it."""

    name: str
    input: str = ""


class ToolCall(_Open):
    id: str
    type: Literal["function", "custom"] = "function"
    function: FunctionCall | None = None
    custom: CustomCall | None = None

    @model_validator(mode="after")
    def _has_its_call(self) -> ToolCall:
        if getattr(self, self.type) is None:
            raise ValueError(f"a tool call of type '{self.type}' needs '{self.type}' (an object)")
        return self


class Message(_Open):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _what_its_role_needs(self) -> Message:
        """What OpenAI refuses a message without: a user's, system's, developer's or tool's content,
        and a tool result's tool_call_id (an assistant's content may be null beside its calls)."""
        if self.content is None and self.role in ("system", "developer", "user", "tool"):
            raise ValueError(f"a {self.role} message needs 'content' (a string or content parts), not null")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id': the id of the call it answers")
        return self

    def text(self) -> str:
        """The message's text, content parts joined; images and audio contribute nothing."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class FunctionDef(_Open):
    name: Identifier
    description: str | None = None
    parameters: SendableObject | None = None
    strict: bool | None = None


class CustomToolDef(_Open):
    """A custom tool: the model writes free-form input, optionally in a grammar (`format`)."""

    name: Identifier
    description: str | None = None
    format: SendableObject | None = None


class Tool(_Model):
    type: Literal["function", "custom"] = "function"
    function: FunctionDef | None = None
    custom: CustomToolDef | None = None

    @model_validator(mode="after")
    def _has_its_definition(self) -> Tool:
        if getattr(self, self.type) is None:
            raise ValueError(f"a tool of type '{self.type}' needs '{self.type}' (an object)")
        return self

    @property
    def name(self) -> str:
        defined = self.function if self.type == "function" else self.custom
        return defined.name if defined is not None else ""


class NamedFunction(_Model):
    name: str


class NamedToolChoice(_Model):
    type: Literal["function"] = "function"
    function: NamedFunction


class NamedCustomChoice(_Model):
    type: Literal["custom"]
    custom: NamedFunction


class AllowedTools(_Model):
    mode: Literal["auto", "required"]
    tools: list[SendableObject]


class AllowedToolsChoice(_Model):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | NamedCustomChoice | AllowedToolsChoice


class StreamOptions(_Open):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: SendableObject | None = None


class VoiceId(_Model):
    id: Annotated[str, Field(min_length=1)]


class AudioOutput(_Model):
    """`audio`: the voice and format of a spoken answer (with `modalities: ["text", "audio"]`)."""

    format: Literal["wav", "aac", "mp3", "flac", "opus", "pcm16"]
    voice: Annotated[str, Field(min_length=1)] | VoiceId


class TextPart(_Open):
    type: Literal["text"]
    text: str


class Prediction(_Model):
    """`prediction`: predicted output (most of a file being rewritten), sent on to speed it up."""

    type: Literal["content"]
    content: str | list[TextPart]


class PromptCacheOptions(_Open):
    mode: Literal["implicit", "explicit"] | None = None
    ttl: Literal["30m"] | None = None


class UserLocation(_Open):
    type: Literal["approximate"]
    approximate: SendableObject


class WebSearchOptions(_Open):
    search_context_size: Literal["low", "medium", "high"] | None = None
    user_location: UserLocation | None = None


class Moderation(_Open):
    model: Annotated[str, Field(min_length=1)]
    policy: SendableObject | None = None


class LegacyFunctionChoice(_Model):
    name: str


class VLLMParams(_Model):
    """vLLM's own chat-completions fields (its sampling and structured-output extensions), which
    OpenAI SDK users send with `extra_body`. Checked here so that a bad value is a 400 from the
    gateway; sent only to `vllm` backends (and to others whose policy entry lists them)."""

    top_k: Annotated[int, Field(ge=-1)] | None = None
    min_p: Annotated[float, Field(ge=0, le=1)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0, le=2)] | None = None
    length_penalty: float | None = None
    use_beam_search: bool | None = None
    best_of: Annotated[int, Field(ge=1)] | None = None
    stop_token_ids: list[Annotated[int, Field(ge=0)]] | None = None
    include_stop_str_in_output: bool | None = None
    ignore_eos: bool | None = None
    min_tokens: Annotated[int, Field(ge=0)] | None = None
    skip_special_tokens: bool | None = None
    spaces_between_special_tokens: bool | None = None
    truncate_prompt_tokens: Annotated[int, Field(ge=-1)] | None = None
    prompt_logprobs: Annotated[int, Field(ge=-1)] | None = None
    allowed_token_ids: list[Annotated[int, Field(ge=0)]] | None = None
    bad_words: list[str] | None = None
    echo: bool | None = None
    add_generation_prompt: bool | None = None
    continue_final_message: bool | None = None
    add_special_tokens: bool | None = None
    documents: list[dict[str, str]] | None = None
    chat_template: str | None = None
    chat_template_kwargs: SendableObject | None = None
    mm_processor_kwargs: SendableObject | None = None
    structured_outputs: SendableObject | None = None
    guided_json: str | SendableObject | None = None
    guided_regex: str | None = None
    guided_choice: list[str] | None = None
    guided_grammar: str | None = None
    structural_tag: str | None = None
    guided_decoding_backend: str | None = None
    guided_whitespace_pattern: str | None = None
    include_reasoning: bool | None = None
    priority: Annotated[int, Field(ge=INT64[0], le=INT64[1])] | None = None
    request_id: str | None = None
    return_tokens_as_token_ids: bool | None = None
    return_token_ids: bool | None = None
    cache_salt: Annotated[str, Field(min_length=1)] | None = None
    kv_transfer_params: SendableObject | None = None
    vllm_xargs: SendableObject | None = None


VLLM_FIELDS = frozenset(VLLMParams.model_fields)
