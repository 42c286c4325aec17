"""Pure translation between OpenAI chat completions and Anthropic's Messages API.

No I/O here: `to_wire` builds a Messages request, `from_wire` turns a Messages response into a
chat.completion, and `StreamTranslator` turns Messages stream events into chat.completion.chunk
dicts. What OpenAI has and Messages lacks is mapped as follows (README "Anthropic translation"):
system/developer messages are hoisted into `system`; temperature is clamped to Anthropic's [0, 1];
`response_format` becomes an instruction in the system prompt; `allowed_tools` sends only the
allowed tools; legacy `functions` become tools; `user` (or `safety_identifier`) becomes
`metadata.user_id`; `n > 1` and custom (free-form) tools are refused; every other field (seed,
penalties, logit_bias, logprobs, OpenAI's caching, audio, prediction and search options) is
dropped, as litellm's drop_params does (the backend logs which at debug: `TRANSLATED` lists the
fields that have a counterpart).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from router.backends.params import legacy_as_tools
from router.chat_types import AllowedToolsChoice, Message, NamedToolChoice, Tool
from router.http.errors import InvalidRequest
from router.schema import ChatRequest

API_VERSION = "2023-06-01"
TRANSLATED = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "user",
        "safety_identifier",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "stream",
        "stream_options",
        "n",
        "turnout",
        "functions",
        "function_call",
    ]
)
DEFAULT_MAX_TOKENS = 4096

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    url = (part.get("image_url") or {}).get("url", "")
    if url.startswith("data:") and ";base64," in url:
        media_type, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(message: Message) -> list[dict[str, Any]]:
    if message.content is None:
        return []
    if isinstance(message.content, str):
        return [{"type": "text", "text": message.content}] if message.content else []
    blocks: list[dict[str, Any]] = []
    for part in message.content:
        if part.type == "text" and part.text:
            blocks.append({"type": "text", "text": part.text})
        elif part.type == "image_url":
            blocks.append(_image_block(part.model_dump()))
        elif part.type == "refusal" and part.refusal:  # an assistant's earlier refusal, as its text
            blocks.append({"type": "text", "text": part.refusal})
        elif part.type not in ("text", "refusal"):
            raise InvalidRequest(
                f"Content parts of type '{part.type}' are not supported by Anthropic backends."
            )
    return blocks


def _tool_use_blocks(message: Message) -> list[dict[str, Any]]:
    blocks = []
    for call in message.tool_calls or []:
        if call.function is None:
            raise InvalidRequest(
                "Custom tool calls are not supported by Anthropic backends.", param="messages"
            )
        try:
            arguments = orjson.loads(call.function.arguments or "{}")
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                f"tool_calls[{call.id}].function.arguments is not valid JSON.", param="messages"
            ) from None
        blocks.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments})
    return blocks


def _turns(messages: list[Message]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            system.append(message.text())
            continue
        if message.role in ("tool", "function"):
            role = "user"
            blocks: list[dict[str, Any]] = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or message.name or "",
                    "content": message.text(),
                }
            ]
        elif message.role == "assistant":
            role = "assistant"
            blocks = _content_blocks(message) + _tool_use_blocks(message)
        else:
            role = "user"
            blocks = _content_blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:  # Messages wants alternating turns: merge neighbours
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return system, turns


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        mapped: dict[str, Any] | None = {"type": "auto"} if request.parallel_tool_calls is False else None
    elif isinstance(choice, str):
        mapped = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    elif isinstance(choice, AllowedToolsChoice):  # the tools sent are narrowed to the allowed ones
        mapped = {"type": {"auto": "auto", "required": "any"}[choice.allowed_tools.mode]}
    elif isinstance(choice, NamedToolChoice):
        mapped = {"type": "tool", "name": choice.function.name}
    else:
        raise InvalidRequest("Custom tools are not supported by Anthropic backends.", param="tool_choice")
    if mapped is not None and request.parallel_tool_calls is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    return mapped


def _format_instruction(request: ChatRequest) -> str | None:
    fmt = request.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_schema" and fmt.json_schema:
        schema = orjson.dumps(fmt.json_schema.get("schema", fmt.json_schema)).decode()
        return (
            f"Respond with a single JSON object that conforms to this JSON schema, and nothing else: {schema}"
        )
    return "Respond with a single valid JSON object, and nothing else."


def _tools(request: ChatRequest) -> list[dict[str, Any]]:
    tools: list[Tool] = request.tools or []
    if isinstance(request.tool_choice, AllowedToolsChoice):
        allowed = {
            str((tool.get("function") or tool.get("custom") or {}).get("name"))
            for tool in request.tool_choice.allowed_tools.tools
        }
        tools = [tool for tool in tools if tool.name in allowed]
    if any(tool.function is None for tool in tools):
        raise InvalidRequest("Custom tools are not supported by Anthropic backends.", param="tools")
    return [
        {
            "name": tool.function.name,
            "description": tool.function.description or "",
            "input_schema": tool.function.parameters or {"type": "object", "properties": {}},
        }
        for tool in tools
        if tool.function is not None
    ]


def to_wire(
    request: ChatRequest, model: str, *, stream: bool, max_output_tokens: int | None
) -> dict[str, Any]:
    if request.functions:
        request = ChatRequest.model_validate(legacy_as_tools(request.model_dump(exclude_unset=True)))
    if request.n is not None and request.n > 1:
        raise InvalidRequest("n > 1 is not supported by Anthropic backends.", param="n")
    system, turns = _turns(request.messages)
    if not turns:
        raise InvalidRequest(
            "Anthropic backends need at least one user or assistant message.", param="messages"
        )
    instruction = _format_instruction(request)
    if instruction:
        system.append(instruction)
    body: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": request.output_limit or max_output_tokens or DEFAULT_MAX_TOKENS,
    }
    if system:
        body["system"] = "\n\n".join(part for part in system if part)
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop is not None:
        body["stop_sequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    if request.user or request.safety_identifier:
        body["metadata"] = {"user_id": request.user or request.safety_identifier}
    tools = _tools(request)
    if tools:
        body["tools"] = tools
    choice = _tool_choice(request)
    if choice is not None and tools:
        body["tool_choice"] = choice
    if stream:
        body["stream"] = True
    return body


def usage_from_wire(usage: dict[str, Any]) -> dict[str, int]:
    prompt = (
        int(usage.get("input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
        + int(usage.get("cache_read_input_tokens") or 0)
    )
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _tool_call(block: dict[str, Any], index: int | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": block["id"],
        "type": "function",
        "function": {"name": block["name"], "arguments": orjson.dumps(block.get("input") or {}).decode()},
    }
    if index is not None:
        call["index"] = index
    return call


def from_wire(payload: dict[str, Any]) -> dict[str, Any]:
    blocks = payload.get("content") or []
    text = "".join(block.get("text", "") for block in blocks if block.get("type") == "text")
    calls = [_tool_call(block) for block in blocks if block.get("type") == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": "chatcmpl-" + str(payload.get("id", "")).removeprefix("msg_"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": payload.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": STOP_REASONS.get(payload.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": usage_from_wire(payload.get("usage") or {}),
    }


class StreamTranslator:
    """Messages stream events in, chat.completion.chunk dicts out. One instance per stream."""

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage
        self.id = "chatcmpl-"
        self.model = ""
        self.created = int(time.time())
        self.usage: dict[str, int] = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self.finished = False
        self._input: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        handler = getattr(self, "_on_" + event, None)
        return handler(data) if handler else []

    def _on_message_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        message = data.get("message") or {}
        self.id = "chatcmpl-" + str(message.get("id", "")).removeprefix("msg_")
        self.model = message.get("model", "")
        self._input = message.get("usage") or {}
        self.usage = usage_from_wire(self._input)
        return [self._chunk({"role": "assistant", "content": ""})]

    def _on_content_block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use":
            index = self._tool_index.setdefault(data.get("index", 0), len(self._tool_index))
            call = _tool_call({**block, "input": {}}, index)
            call["function"]["arguments"] = ""
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _on_content_block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta") or {}
        if delta.get("type") == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if delta.get("type") == "input_json_delta":
            index = self._tool_index.get(data.get("index", 0), 0)
            arguments = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
            return [self._chunk({"tool_calls": [arguments]})]
        return []  # thinking and signature deltas have no OpenAI counterpart

    def _on_message_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        usage = {**self._input, **(data.get("usage") or {})}
        self.usage = usage_from_wire(usage)
        reason = (data.get("delta") or {}).get("stop_reason")
        return [self._chunk({}, STOP_REASONS.get(reason or "", "stop"))]

    def _on_message_stop(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        self.finished = True
        if not self.include_usage:
            return []
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = self.usage
        return [chunk]
