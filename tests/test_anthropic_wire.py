"""The OpenAI ↔ Anthropic Messages translation, with plain data."""

from __future__ import annotations

import json

import pytest

from router.backends import anthropic_wire as wire
from router.http.errors import InvalidRequest
from router.schema import ChatRequest


def request(**fields):
    return ChatRequest.model_validate({"model": "claude", **fields})


def test_system_messages_are_hoisted_and_turns_merged():
    body = wire.to_wire(
        request(
            messages=[
                {"role": "system", "content": "One."},
                {"role": "user", "content": "a"},
                {"role": "developer", "content": "Two."},
                {"role": "user", "content": "b"},
            ]
        ),
        "claude-x",
        stream=False,
        max_output_tokens=None,
    )
    assert body["system"] == "One.\n\nTwo."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]
    assert body["max_tokens"] == wire.DEFAULT_MAX_TOKENS and "stream" not in body


def test_tool_calls_and_results_become_tool_use_and_tool_result():
    tool = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "string"}}}},
    }
    body = wire.to_wire(
        request(
            messages=[
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"x": "1"}'}}
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "done"},
            ],
            tools=[tool],
            tool_choice="required",
            parallel_tool_calls=False,
        ),
        "m",
        stream=True,
        max_output_tokens=100,
    )
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"x": "1"}}],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "done"}],
    }
    assert body["tools"][0]["input_schema"]["properties"] == {"x": {"type": "string"}}
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["max_tokens"] == 100 and body["stream"] is True


def test_images_become_image_blocks():
    body = wire.to_wire(
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                        {"type": "text", "text": "what?"},
                    ],
                }
            ]
        ),
        "m",
        stream=False,
        max_output_tokens=None,
    )
    assert body["messages"][0]["content"][0] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
    }


def test_unsupported_requests_are_refused_in_the_callers_terms():
    with pytest.raises(InvalidRequest, match="n > 1"):
        wire.to_wire(
            request(messages=[{"role": "user", "content": "x"}], n=3),
            "m",
            stream=False,
            max_output_tokens=None,
        )
    with pytest.raises(InvalidRequest, match="at least one user"):
        wire.to_wire(
            request(messages=[{"role": "system", "content": "x"}]), "m", stream=False, max_output_tokens=None
        )
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        bad_call = {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
        wire.to_wire(
            request(
                messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [bad_call]}]
            ),
            "m",
            stream=False,
            max_output_tokens=None,
        )


@pytest.mark.parametrize(
    "stop,finish",
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
    ],
)
def test_from_wire_maps_stop_reasons_and_usage(stop, finish):
    result = wire.from_wire(
        {
            "id": "msg_1",
            "model": "claude-x",
            "content": [
                {"type": "text", "text": "hi"},
                {"type": "tool_use", "id": "tu", "name": "f", "input": {"a": 1}},
            ],
            "stop_reason": stop,
            "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 5},
        }
    )
    choice = result["choices"][0]
    assert choice["finish_reason"] == finish and choice["message"]["content"] == "hi"
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": 1}
    assert result["usage"] == {"prompt_tokens": 15, "completion_tokens": 3, "total_tokens": 18}
    assert result["id"] == "chatcmpl-1"


def test_stream_translator_turns_events_into_chunks():
    translator = wire.StreamTranslator(include_usage=True)
    events = [
        (
            "message_start",
            {"message": {"id": "msg_9", "model": "c", "usage": {"input_tokens": 7, "output_tokens": 1}}},
        ),
        ("ping", {}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
        ("content_block_stop", {"index": 0}),
        (
            "content_block_start",
            {"index": 1, "content_block": {"type": "tool_use", "id": "tu1", "name": "f", "input": {}}},
        ),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": " 2}"}}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
        ("message_stop", {}),
    ]
    chunks = [chunk for name, data in events for chunk in translator.feed(name, data)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("content", "") for d in deltas) == "Hello"
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls[0]["id"] == "tu1" and calls[0]["index"] == 0
    assert "".join(call["function"]["arguments"] for call in calls) == '{"a": 2}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 7,
        "completion_tokens": 12,
        "total_tokens": 19,
    }
    assert translator.finished and all(c["id"] == "chatcmpl-9" for c in chunks)
