"""Anthropic's Messages API in front of the chat pipeline: a Messages request becomes a chat request
(then routed, limited, gated, retrieved and ledgered like any other, to any backend), and the
chat answer, whole or streamed, becomes a Message again. Pure translation, no I/O.

Mapping (README "Anthropic Messages in"): `system` (string or text blocks) → a system message; text
and image blocks → content parts; `tool_use` blocks → tool calls (input as JSON arguments);
`tool_result` blocks → `tool` messages; `stop_sequences` → `stop`; `metadata.user_id` → `user`;
tools → function tools; `tool_choice` `any` → `required`, `tool` → named,
`disable_parallel_tool_use` → `parallel_tool_calls: false`; `top_k` → vLLM's `top_k` (sent to vLLM
backends only). An Anthropic backend is sent the request as it came while nothing changed it
(router.backends.anthropic), so thinking and caching reach it; other wires do not carry them.
Server tools, MCP servers, containers and document, search-result or other blocks are refused with
a 400.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.backends.base import sse_data
from router.http.errors import InvalidRequest, TurnoutError
from router.pipeline.field_types import MESSAGES as FIELD_TYPES
from router.pipeline.field_types import mistyped

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
    503: "overloaded_error",
}
# Sent only when the request goes to an Anthropic backend as it came (router.backends.anthropic);
# not carried to other wires.
NOT_CARRIED = frozenset(("thinking", "service_tier", "context_management"))
REFUSED = frozenset(("container", "mcp_servers"))  # they would carry what the gate cannot read
TAKEN = frozenset(
    [
        "model",
        "messages",
        "max_tokens",
        "system",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "tools",
        "tool_choice",
        "turnout",  # the gateway's own options (retrieval, a collection, private), as on chat
    ]
)


# What a block may hold for the request to go to an Anthropic backend as it came: every text in it
# is one the translation carries, so the sensitivity gate has read it. Anything else (thinking
# blocks, citations, keys the translation does not know) and the request is translated instead.
NATIVE_KEYS = {
    "text": {"type", "text", "cache_control"},
    "image": {"type", "source", "cache_control"},
    "tool_use": {"type", "id", "name", "input", "cache_control"},
    "tool_result": {"type", "tool_use_id", "content", "is_error", "cache_control"},
}


def native_safe(body: dict[str, Any]) -> bool:
    """Whether the Messages body carries no text the translation leaves out."""
    blocks: list[Any] = []
    for message in body.get("messages") or []:
        if set(message) - {"role", "content"}:
            return False
        if isinstance(message.get("content"), list):
            blocks += message["content"]
    if isinstance(body.get("system"), list):
        blocks += body["system"]
    for block in blocks:
        allowed = NATIVE_KEYS.get(str(block.get("type"))) if isinstance(block, dict) else None
        if allowed is None or set(block) - allowed:
            return False
        parts = block.get("content") if block["type"] == "tool_result" else None
        if isinstance(parts, list) and any(
            isinstance(p, dict) and set(p) - NATIVE_KEYS["text"] for p in parts
        ):
            return False
    return True


def error_body(error: TurnoutError) -> bytes:
    """An error in Anthropic's shape."""
    kind = ERROR_TYPES.get(
        error.status_code, "api_error" if error.status_code >= 500 else "invalid_request_error"
    )
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": error.message}})


def _refuse(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _text_of(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for block in content:
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                raise _refuse(f"{where}: only text blocks are supported here.", where)
            texts.append(block["text"])
        return "\n\n".join(texts)
    raise _refuse(f"{where} must be a string or a list of text blocks.", where)


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        url = f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _refuse(f"{where}: an image needs a base64 or url source.", where)
    return {"type": "image_url", "image_url": {"url": url}}


def _message(message: Any, index: int) -> list[dict[str, Any]]:
    """One Messages turn as chat messages: tool results first (as `tool` messages), then the rest."""
    where = f"messages.{index}"
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise _refuse(f"{where}: each message needs a role of 'user' or 'assistant'.", where)
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise _refuse(f"{where}.content must be a string or a list of content blocks.", where)
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for k, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        at = f"{where}.content.{k}"
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and role == "user":
            parts.append(_image_part(block, at))
        elif kind == "tool_use" and role == "assistant":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": arguments},
                }
            )
        elif kind == "tool_result" and role == "user":
            result = block.get("content", "")
            text = _text_of(result, f"{at}.content") if result else ""
            if block.get("is_error"):
                text = f"Error: {text}"
            tools.append({"role": "tool", "tool_call_id": block.get("tool_use_id", ""), "content": text})
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # a model's earlier reasoning is not carried to other backends
        else:
            raise _refuse(f"{at}: content blocks of type '{kind}' are not supported in a {role} turn.", at)
    out = list(tools)
    if role == "assistant" and (parts or calls):
        turn: dict[str, Any] = {"role": "assistant", "content": "".join(p["text"] for p in parts) or None}
        if calls:
            turn["tool_calls"] = calls
        out.append(turn)
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_choice(choice: Any) -> tuple[Any, bool | None]:
    if choice is None:
        return None, None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise _refuse("tool_choice must be {type: auto|any|tool|none}.", "tool_choice")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    kind = choice["type"]
    if kind == "tool":
        return {"type": "function", "function": {"name": str(choice.get("name", ""))}}, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[kind], parallel


def _check_fields(body: Any) -> None:
    """The body's fields: none refused or unknown, the required ones there, each of its type."""
    if not isinstance(body, dict):
        raise _refuse("The request body must be a JSON object.")
    refused = [name for name in body if name in REFUSED]
    if refused:
        raise _refuse(f"'{refused[0]}' is not supported by this gateway.", refused[0])
    unknown = [name for name in body if name not in TAKEN and name not in NOT_CARRIED]
    if unknown:
        raise _refuse(f"{unknown[0]}: Extra inputs are not permitted", unknown[0])
    for required in ("model", "messages", "max_tokens"):
        if required not in body:
            raise _refuse(f"{required}: Field required", required)
    if wrong := mistyped(body, FIELD_TYPES):
        raise _refuse(f"{wrong[0]}: Input should be {wrong[1]}", wrong[0])
    if not isinstance(body["messages"], list):
        raise _refuse("messages: Input should be a valid list", "messages")
    if not body["messages"]:
        raise _refuse("messages: at least one message is required", "messages")


def to_chat(body: Any) -> dict[str, Any]:
    """A Messages request body → a chat-completions body (validated afterwards as any other)."""
    _check_fields(body)
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text_of(body["system"], "system")})
    for index, message in enumerate(body["messages"]):
        messages.extend(_message(message, index))
    chat: dict[str, Any] = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k", "turnout"):  # turnout: the gateway's own options
        if name in body:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if user:
        chat["user"] = user
    chat.update(_tools(body))
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    tools = body.get("tools") or []
    if not tools:
        return {}
    out: dict[str, Any] = {"tools": [_tool(tool, k) for k, tool in enumerate(tools)]}
    choice, parallel = _tool_choice(body.get("tool_choice"))
    if choice is not None:
        out["tool_choice"] = choice
    if parallel is not None:
        out["parallel_tool_calls"] = parallel
    return out


def _tool(tool: Any, index: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or tool.get("type", "custom") != "custom" or "input_schema" not in tool:
        raise _refuse(
            f"tools.{index}: only client tools with an input_schema are supported.", f"tools.{index}"
        )
    function = {"name": tool.get("name"), "parameters": tool["input_schema"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _usage(usage: dict[str, Any] | None) -> dict[str, int]:
    usage = usage or {}
    return {
        "input_tokens": int(usage.get("prompt_tokens") or 0),
        "output_tokens": int(usage.get("completion_tokens") or 0),
    }


def from_chat(answer: bytes, model: str) -> bytes:
    """A chat.completion → a Message (a Message from an Anthropic backend goes back as it came)."""
    payload = orjson.loads(answer)
    if payload.get("type") == "message":
        return answer
    choice = (payload.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = orjson.loads(function.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {"_raw": function.get("arguments")}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": arguments,
            }
        )
    result = {
        "id": "msg_" + str(payload.get("id", "")).removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": payload.get("model") or model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": _usage(payload.get("usage")),
    }
    return orjson.dumps(result)


def sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


MESSAGE_STOP = sse("message_stop", {"type": "message_stop"})


class ChunksToEvents:
    """chat.completion.chunk events in (SSE blocks), Messages stream events out. One per stream."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.block: tuple[str, Any] | None = None  # ("text", None) or ("tool", the chat call's index)
        self.index = -1  # the open content block's index
        self.stop_reason = "end_turn"
        self.usage = {"input_tokens": 0, "output_tokens": 0}

    def feed(self, block: bytes) -> bytes:
        if block.startswith(b"event: "):  # Anthropic's own events (a native Messages exchange)
            return block
        out: list[bytes] = []
        for event in block.split(b"\n\n"):
            data = sse_data(event)
            if data is None:
                continue
            if data == b"[DONE]":
                out.append(self._finish())
                continue
            self._chunk(orjson.loads(data), out)
        return b"".join(out)

    def _chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if not self.started:
            self.started = True
            message: dict[str, Any] = {
                "id": "msg_" + str(chunk.get("id", "")).removeprefix("chatcmpl-"),
                "type": "message",
                "role": "assistant",
                "model": chunk.get("model") or self.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": dict(self.usage),
            }
            out.append(sse("message_start", {"type": "message_start", "message": message}))
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.block != ("text", None):
                    self._open(("text", None), {"type": "text", "text": ""}, out)
                text_delta = {"type": "text_delta", "text": delta["content"]}
                out.append(
                    sse(
                        "content_block_delta",
                        {"type": "content_block_delta", "index": self.index, "delta": text_delta},
                    )
                )
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                key = ("tool", call.get("index", 0))
                if self.block != key:
                    start = {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": {},
                    }
                    self._open(key, start, out)
                if function.get("arguments"):
                    json_delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
                    out.append(
                        sse(
                            "content_block_delta",
                            {"type": "content_block_delta", "index": self.index, "delta": json_delta},
                        )
                    )
            if choice.get("finish_reason"):
                self.stop_reason = STOP_REASONS.get(choice["finish_reason"], "end_turn")

    def _open(self, key: tuple[str, Any], start: dict[str, Any], out: list[bytes]) -> None:
        self._close(out)
        self.block = key
        self.index += 1
        out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": start},
            )
        )

    def _close(self, out: list[bytes]) -> None:
        if self.block is not None:
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": self.index}))
            self.block = None

    def _finish(self) -> bytes:
        out: list[bytes] = []
        self._close(out)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
            "usage": self.usage,
        }
        out.append(sse("message_delta", delta))
        out.append(MESSAGE_STOP)
        return b"".join(out)
