"""OpenAI's Responses API in front of the chat pipeline: a Responses request becomes a chat request
(routed, limited, gated, retrieved and ledgered like any other, to any backend), and the chat
answer, whole or streamed, becomes a Response object or the Responses stream events. Pure
translation, no I/O; router.http.responses serves it and keeps stored responses.

Mapping (README "OpenAI Responses in"): `input` text → a user message; message items (roles user,
system, developer, assistant; `input_text`, `output_text`, `input_image` parts) → messages;
`function_call` items → an assistant's tool calls; `function_call_output` → `tool` messages;
`instructions` → a system message first; function `tools` and `tool_choice` → chat's;
`text.format` → `response_format`; `text.verbosity` → `verbosity`; `reasoning.effort` →
`reasoning_effort`; `max_output_tokens` → `max_completion_tokens`. Built-in tools, file inputs,
`background`, `conversation` and prompt templates are refused with a 400.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from router.backends.base import sse_data
from router.http.errors import InvalidRequest
from router.pipeline.field_types import RESPONSES as FIELD_TYPES
from router.pipeline.field_types import mistyped

TAKEN = frozenset(
    [
        "turnout",
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "temperature",
        "top_p",
        "max_output_tokens",
        "stream",
        "store",
        "previous_response_id",
        "metadata",
        "parallel_tool_calls",
        "user",
        "reasoning",
        "truncation",
        "include",
        "service_tier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "safety_identifier",
        "top_logprobs",
        "max_tool_calls",
        "stream_options",
    ]
)
REFUSED = frozenset(("background", "conversation", "prompt"))
PASSED = (
    "turnout",  # the gateway's own options (retrieval, a collection, private), as on chat
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "service_tier",
)


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _refuse(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    raise _refuse(f"{where} must be a string or a list of content parts.", where)


def _parts(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _refuse(f"{where} must be a string or a list of content parts.", where)
    parts: list[dict[str, Any]] = []
    for k, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "refusal"):
            parts.append({"type": "text", "text": str(part.get("text") or part.get("refusal") or "")})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"], **({"detail": part["detail"]} if part.get("detail") else {})}
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _refuse(f"{where}.{k}: content parts of type '{kind}' are not supported.", f"{where}.{k}")
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def input_messages(items: Any) -> list[dict[str, Any]]:
    """`input` (text or items) → chat messages."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise _refuse("'input' must be a string or a list of input items.", "input")
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"input.{index}"
        if not isinstance(item, dict):
            raise _refuse(f"{where} must be an object.", where)
        kind = item.get("type", "message")
        if kind == "message" and item.get("role") in ("user", "system", "developer", "assistant"):
            messages.append(
                {"role": item["role"], "content": _parts(item.get("content", ""), f"{where}.content")}
            )
        elif kind == "function_call":
            call: dict[str, Any] = {"id": str(item.get("call_id", "")), "type": "function"}
            call["function"] = {
                "name": str(item.get("name", "")),
                "arguments": str(item.get("arguments", "")),
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = _text(item.get("output", ""), f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id", "")), "content": output})
        elif kind == "reasoning":
            continue  # a model's earlier reasoning is not carried to other backends
        else:
            raise _refuse(f"{where}: input items of type '{kind}' are not supported.", where)
    return messages


def _tools(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = body.get("tools") or []
    if tools:
        chat_tools = []
        for k, tool in enumerate(tools):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                kind = tool.get("type") if isinstance(tool, dict) else None
                raise _refuse(
                    f"tools.{k}: tools of type '{kind}' are not supported; use function tools.", f"tools.{k}"
                )
            function = {
                name: tool[name]
                for name in ("name", "description", "parameters", "strict")
                if tool.get(name) is not None
            }
            chat_tools.append({"type": "function", "function": function})
        out["tools"] = chat_tools
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        out["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out["tool_choice"] = {"type": "function", "function": {"name": str(choice.get("name", ""))}}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = [
            {"type": "function", "function": {"name": t.get("name")}} for t in choice.get("tools") or []
        ]
        out["tool_choice"] = {
            "type": "allowed_tools",
            "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": allowed},
        }
    elif choice is not None:
        raise _refuse("tool_choice must be auto, none, required, a function or allowed_tools.", "tool_choice")
    return out


def _format(text: Any) -> dict[str, Any]:
    if not isinstance(text, dict):
        return {}
    out: dict[str, Any] = {}
    fmt = text.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {name: fmt[name] for name in ("name", "schema", "strict", "description") if name in fmt}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        out["response_format"] = {"type": "json_object"}
    if text.get("verbosity"):
        out["verbosity"] = text["verbosity"]
    return out


def to_chat(body: Any, history: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A Responses request (and the stored conversation it continues) → a chat body, and the
    conversation without instructions (what a stored response keeps)."""
    if not isinstance(body, dict):
        raise _refuse("The request body must be a JSON object.")
    for name in body:
        if name in REFUSED:
            raise _refuse(f"'{name}' is not supported by this gateway.", name)
        if name not in TAKEN:
            raise _refuse(f"Unrecognized request argument supplied: {name}.", name)
    if "model" not in body or "input" not in body:
        missing = "model" if "model" not in body else "input"
        raise _refuse(f"Missing required parameter: '{missing}'.", missing)
    if wrong := mistyped(body, FIELD_TYPES):
        raise _refuse(f"Invalid type for '{wrong[0]}': expected {wrong[1]}.", wrong[0])
    conversation = [*history, *input_messages(body["input"])]
    if not conversation:
        raise _refuse("'input' must not be empty.", "input")
    messages = list(conversation)
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": _text(body["instructions"], "instructions")})
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for name in PASSED:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    effort = (body.get("reasoning") or {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
    if effort:
        chat["reasoning_effort"] = effort
    chat.update(_tools(body))
    chat.update(_format(body.get("text")))
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat, conversation


def _usage(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


class Envelope:
    """The fields of a Response object that echo its request."""

    def __init__(self, body: dict[str, Any], response_id: str, model: str) -> None:
        self.id = response_id
        self.created_at = int(time.time())
        self.body = body
        self.model = model

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        finish: str | None = None,
    ) -> dict[str, Any]:
        body = self.body
        incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish or "")
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": "incomplete" if incomplete and status == "completed" else status,
            "error": None,
            "incomplete_details": {"reason": incomplete} if incomplete and status == "completed" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": output,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
            "store": body.get("store", True),
            "temperature": body.get("temperature"),
            "text": {"format": {"type": "text"}, **(text or {})},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p"),
            "truncation": body.get("truncation", "disabled"),
            "usage": usage,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }


def _message_item(text: str, status: str = "completed", item_id: str | None = None) -> dict[str, Any]:
    content = (
        [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else []
    )
    return {
        "type": "message",
        "id": item_id or new_id("msg"),
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call_item(
    call_id: str, name: str, arguments: str, status: str = "completed", item_id: str | None = None
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id or new_id("fc"),
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def from_chat(answer: bytes, envelope: Envelope) -> dict[str, Any]:
    """A chat.completion → a Response object."""
    payload = orjson.loads(answer)
    choice = (payload.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content"):
        output.append(_message_item(message["content"]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(_call_item(call.get("id", ""), function.get("name", ""), function.get("arguments", "")))
    envelope.model = payload.get("model") or envelope.model
    return envelope.response("completed", output, _usage(payload.get("usage")), choice.get("finish_reason"))


def output_messages(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A response's output as chat messages, for the conversation a later response continues."""
    text = "".join(
        part.get("text", "") for item in output if item["type"] == "message" for part in item["content"]
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item["type"] == "function_call"
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return [message] if text or calls else []


def sse(data: dict[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ChunksToEvents:
    """chat.completion.chunk events in, Responses stream events out; `final` is the whole Response
    once the stream has ended. One per stream."""

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the item being written
        self.open_key: Any = None  # "text", or the chat tool call's index
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None

    def _event(self, kind: str, out: list[bytes], **fields: Any) -> None:
        out.append(sse({"type": kind, "sequence_number": self.sequence, **fields}))
        self.sequence += 1

    def feed(self, block: bytes) -> bytes:
        out: list[bytes] = []
        for event in block.split(b"\n\n"):
            data = sse_data(event)
            if data is None:
                continue
            if data == b"[DONE]":
                self._done(out)
            else:
                self._chunk(orjson.loads(data), out)
        return b"".join(out)

    def _chunk(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if self.sequence == 0:
            self.envelope.model = chunk.get("model") or self.envelope.model
            started = self.envelope.response("in_progress", [], None)
            self._event("response.created", out, response=started)
            self._event("response.in_progress", out, response=started)
        if chunk.get("usage"):
            self.usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._text(delta["content"], out)
            for call in delta.get("tool_calls") or []:
                self._call(call, out)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]

    def _text(self, text: str, out: list[bytes]) -> None:
        if self.open is None or self.open_key != "text":
            item = self._open("text", _message_item("", "in_progress"), out)
            index = len(self.output)  # after _open, which closed (and counted) the item before
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            self._event(
                "response.content_part.added",
                out,
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        else:
            item, index = self.open, len(self.output)
        item["text"] = item.get("text", "") + text
        self._event(
            "response.output_text.delta",
            out,
            item_id=item["id"],
            output_index=index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _call(self, call: dict[str, Any], out: list[bytes]) -> None:
        function = call.get("function") or {}
        key = ("tool", call.get("index", 0))
        if self.open is None or self.open_key != key:
            item = self._open(
                key, _call_item(call.get("id", ""), function.get("name", ""), "", "in_progress"), out
            )
        else:
            item = self.open
        if function.get("arguments"):
            item["arguments"] += function["arguments"]
            self._event(
                "response.function_call_arguments.delta",
                out,
                item_id=item["id"],
                output_index=len(self.output),
                delta=function["arguments"],
            )

    def _open(self, key: Any, item: dict[str, Any], out: list[bytes]) -> dict[str, Any]:
        self._close(out)
        self.open, self.open_key = item, key
        self._event("response.output_item.added", out, output_index=len(self.output), item=item)
        return item

    def _close(self, out: list[bytes]) -> None:
        item, index = self.open, len(self.output)
        if item is None:
            return
        if item["type"] == "message":
            text = item.pop("text", "")
            done = _message_item(text, item_id=item["id"])
            part = done["content"][0]
            self._event(
                "response.output_text.done",
                out,
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            self._event(
                "response.content_part.done",
                out,
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=part,
            )
        else:
            done = {**item, "status": "completed"}
            self._event(
                "response.function_call_arguments.done",
                out,
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        self._event("response.output_item.done", out, output_index=index, item=done)
        self.output.append(done)
        self.open, self.open_key = None, None

    def _done(self, out: list[bytes]) -> None:
        self._close(out)
        self.final = self.envelope.response("completed", self.output, self.usage or _usage(None), self.finish)
        kind = "response.completed" if self.final["status"] == "completed" else "response.incomplete"
        self._event(kind, out, response=self.final)
