"""The emulators' streamed answers, event by event, on OpenAI's wire and on Anthropic's
(router.testing.emulators plays them, with faults and timing)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from router.testing.replies import prompt_tokens


def openai_events(
    next_id: Callable[[], str],
    body: dict[str, Any],
    model: str,
    words: list[str],
    tool: dict[str, Any] | None,
    finish: str,
) -> list[bytes]:
    ident, created = "chatcmpl-" + next_id(), int(time.time())
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def chunk(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> bytes:
        payload: dict[str, Any] = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            payload["usage"] = None
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    events = [chunk({"role": "assistant", "content": ""})]
    if tool is not None and tool["kind"] != "function":
        if tool["kind"] == "custom":
            custom = {"name": tool["name"], "input": tool["input"]}
            call = {"index": 0, "id": "call_" + next_id(), "type": "custom", "custom": custom}
            events += [chunk({"tool_calls": [call]}), chunk({}, "tool_calls")]
        else:
            called = {"name": tool["name"], "arguments": orjson.dumps(tool["input"]).decode()}
            events += [chunk({"function_call": called}), chunk({}, "function_call")]
        completion = 8
    elif tool is not None:
        arguments = orjson.dumps(tool["input"]).decode()
        half = len(arguments) // 2
        call = {
            "index": 0,
            "id": "call_" + next_id(),
            "type": "function",
            "function": {"name": tool["name"], "arguments": ""},
        }
        events.append(chunk({"tool_calls": [call]}))
        for piece in (arguments[:half], arguments[half:]):
            events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        events.append(chunk({}, "tool_calls"))
        completion = 8
    else:
        n = int(body.get("n") or 1)  # each choice's deltas in turn, as OpenAI may interleave them
        for index in range(n):
            if index:
                events.append(chunk({"role": "assistant", "content": ""}, index=index))
            events += [chunk({"content": (" " if i else "") + w}, index=index) for i, w in enumerate(words)]
            events.append(chunk({}, finish, index))  # "length" when max_tokens cut it, as unstreamed
        completion = len(words) * n
    if include_usage:
        usage = {
            "prompt_tokens": prompt_tokens(body),
            "completion_tokens": completion,
            "total_tokens": prompt_tokens(body) + completion,
        }
        final = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": usage,
        }
        events.append(b"data: " + orjson.dumps(final) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def anthropic_events(
    next_id: Callable[[], str],
    body: dict[str, Any],
    model: str,
    words: list[str],
    tool: dict[str, Any] | None,
    ended: tuple[str, str | None],
) -> list[bytes]:
    def event(name: str, data: dict[str, Any]) -> bytes:
        return f"event: {name}\n".encode() + b"data: " + orjson.dumps({"type": name, **data}) + b"\n\n"

    message: dict[str, Any] = {
        "id": "msg_" + next_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt_tokens(body), "output_tokens": 1},
    }
    events = [event("message_start", {"message": message}), event("ping", {})]
    if tool is not None:
        block = {"type": "tool_use", "id": "toolu_" + next_id(), "name": tool["name"], "input": {}}
        events.append(event("content_block_start", {"index": 0, "content_block": block}))
        arguments = orjson.dumps(tool["input"]).decode()
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            events.append(
                event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}},
                )
            )
        stop, output = "tool_use", 8
    else:
        events.append(
            event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        )
        for i, word in enumerate(words):
            events.append(
                event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": (" " if i else "") + word}},
                )
            )
        stop, output = stop_reason(ended), len(words)
    events.append(event("content_block_stop", {"index": 0}))
    events.append(
        event(
            "message_delta",
            {
                "delta": {"stop_reason": stop, "stop_sequence": ended[1] if tool is None else None},
                "usage": {"output_tokens": output},
            },
        )
    )
    events.append(event("message_stop", {}))
    return events


def stop_reason(ended: tuple[str, str | None]) -> str:
    """Anthropic's stop_reason for how a text reply ended (replies.shaped)."""
    finish, sequence = ended
    return "stop_sequence" if sequence is not None else "max_tokens" if finish == "length" else "end_turn"
