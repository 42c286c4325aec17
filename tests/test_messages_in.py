"""Anthropic's Messages API in: the official anthropic SDK talks to the gateway unchanged, whole and
streamed, with tools, errors in Anthropic's shape, token counting, and the same routing, gate and
ledger as chat completions, to every wire (OpenAI's, vLLM's and Anthropic's own)."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import Emulators, RunningGateway, fetch, wait_for_rows

pytestmark = pytest.mark.integration

WEATHER = {
    "name": "weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _client(gateway: RunningGateway, key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=gateway.base_url, api_key=key or gateway.admin_key, max_retries=0, timeout=20
    )


@pytest.mark.parametrize("model", ["gpt-4", "llama", "claude", "auto"])
def test_a_message_is_answered_by_any_backend(
    gateway: RunningGateway, emulators: Emulators, model: str
) -> None:
    raw = _client(gateway).messages.with_raw_response.create(
        model=model,
        max_tokens=64,
        system="Answer in one sentence.",
        messages=[{"role": "user", "content": "Say hello to the team."}],
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    backend = raw.headers["x-turnout-backend"]
    assert model == "auto" or backend == model
    received = {"gpt-4": emulators.openai, "llama": emulators.vllm, "claude": emulators.anthropic}
    body = received[backend].received[-1] if backend in received else None
    if body is not None and backend != "claude":  # the OpenAI wire: the system prompt is a message
        assert body["messages"][0] == {"role": "system", "content": "Answer in one sentence."}
        assert body["max_tokens"] == 64


@pytest.mark.parametrize("model", ["gpt-4", "claude"])
def test_a_streamed_message_has_anthropics_event_sequence(gateway: RunningGateway, model: str) -> None:
    with _client(gateway).messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "Tell me a short story."}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/messages",
        json={
            "model": model,
            "max_tokens": 32,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
        headers={"x-api-key": gateway.admin_key, "anthropic-version": "2023-06-01"},
        timeout=20,
    ) as response:
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    names = [name for name in names if name != "ping"]  # Claude's own stream (relayed as it came) has pings
    assert names[0] == "message_start" and names[1] == "content_block_start"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize("model", ["gpt-4", "llama", "claude"])
@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip(gateway: RunningGateway, emulators: Emulators, model: str, stream: bool) -> None:
    client = _client(gateway)
    asked: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    options: dict[str, Any] = {
        "model": model,
        "max_tokens": 64,
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "weather"},
    }
    if stream:
        with client.messages.stream(messages=asked, **options) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(messages=asked, **options)
    use = next(block for block in message.content if block.type == "tool_use")
    assert use.name == "weather" and isinstance(use.input, dict) and "city" in use.input  # type: ignore[union-attr]
    assert message.stop_reason == "tool_use"
    follow_up = [
        *asked,
        {"role": "assistant", "content": [block.model_dump() for block in message.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"}],
        },  # type: ignore[union-attr]
    ]
    answer = client.messages.create(model=model, max_tokens=64, tools=[WEATHER], messages=follow_up)  # type: ignore[arg-type]
    assert answer.content[0].type == "text"
    if model != "claude":
        body = (emulators.openai if model == "gpt-4" else emulators.vllm).received[-1]
        tool_message = body["messages"][-1]
        assert tool_message == {"role": "tool", "tool_call_id": use.id, "content": "sunny, 21 C"}  # type: ignore[union-attr]
        assert body["messages"][-2]["tool_calls"][0]["id"] == use.id  # type: ignore[union-attr]


def test_errors_are_in_anthropics_shape(gateway: RunningGateway) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        _client(gateway, key="tnt_" + "x" * 43).messages.create(
            model="auto", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.NotFoundError):
        _client(gateway).messages.create(
            model="no-such-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    response = httpx.post(
        gateway.base_url + "/v1/messages",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gateway.admin_key},
    )
    assert response.status_code == 400
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
    }
    not_a_list = httpx.post(
        gateway.base_url + "/v1/messages",
        json={"model": "auto", "max_tokens": 8, "messages": "hi"},
        headers={"x-api-key": gateway.admin_key},
    )  # it said "at least one message is required"
    assert not_a_list.status_code == 400
    assert not_a_list.json()["error"]["message"] == "messages: Input should be a valid list"
    response = httpx.post(
        gateway.base_url + "/v1/messages",
        json={
            "model": "auto",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": [{"type": "video"}]}],
        },
        headers={"x-api-key": gateway.admin_key},
    )
    assert response.status_code == 400 and "'video'" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", 5),  # a 500 before (a third trial, 2026-12-08), and "tools": true too
        ("tools", True),
        ("tools", "x"),  # was read character by character: "tools.0: only client tools ..."
        ("tools", {}),
        ("stop_sequences", "x"),
        ("system", {}),
        ("metadata", 1.5),
        ("metadata", {"user_id": {}}),
        ("tool_choice", "auto"),
    ],
)
def test_mistyped_fields_are_400s_in_anthropics_shape(
    gateway: RunningGateway, field: str, value: Any
) -> None:
    response = httpx.post(
        gateway.base_url + "/v1/messages",
        json={
            "model": "gpt-4",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
            field: value,
        },
        headers={"x-api-key": gateway.admin_key},
    )
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert error["error"]["message"].startswith(f"{field}: Input should be")


def test_count_tokens(gateway: RunningGateway) -> None:
    client = _client(gateway)
    short = client.messages.count_tokens(model="auto", messages=[{"role": "user", "content": "hi"}])
    longer = client.messages.count_tokens(
        model="auto",
        system="Be brief.",
        messages=[{"role": "user", "content": "hi " * 50}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert 0 < short.input_tokens < longer.input_tokens
    with pytest.raises(anthropic.NotFoundError):  # it counted for any model, "nosuch" included
        client.messages.count_tokens(model="nosuch", messages=[{"role": "user", "content": "hi"}])


def test_personal_data_in_a_message_stays_inside(gateway: RunningGateway, emulators: Emulators) -> None:
    raw = _client(gateway).messages.with_raw_response.create(
        model="claude",
        max_tokens=32,
        messages=[{"role": "user", "content": "Write to maria.kowalska@gmail.com about the invoice."}],
    )
    assert raw.headers["x-turnout-sensitive"] == "reroute" and raw.headers["x-turnout-backend"] == "llama"
    assert emulators.anthropic.script.requests == 0 and emulators.openai.script.requests == 0


def test_a_message_is_a_ledger_row(gateway: RunningGateway) -> None:
    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    message = _client(gateway).messages.create(
        model="gpt-4", max_tokens=32, messages=[{"role": "user", "content": "Ledger me, please."}]
    )
    sql = (
        "SELECT backend, prompt_tokens, completion_tokens FROM turnout_usage "
        f"WHERE status = 200 AND backend = 'gpt-4' AND id > {before['id']}"
    )
    rows = wait_for_rows(url, sql, lambda r: any(x["prompt_tokens"] == message.usage.input_tokens for x in r))
    assert any(row["completion_tokens"] == message.usage.output_tokens for row in rows)


def test_a_stream_broken_mid_way_ends_with_an_error_event(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    emulators.openai.fault("drop_mid_stream", after_chunks=3)
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/messages",
        json={
            "model": "gpt-4",
            "max_tokens": 64,
            "stream": True,
            "messages": [{"role": "user", "content": "Tell me a long story about the sea."}],
        },
        headers={"x-api-key": gateway.admin_key},
        timeout=20,
    ) as response:
        assert response.status_code == 200
        names = [line[7:] for line in response.iter_lines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names


def test_a_claude_backend_gets_the_messages_request_as_it_came(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    options: dict[str, Any] = {
        "model": "claude",
        "max_tokens": 64,
        "system": system,
        "extra_body": {"top_k": 5},  # this SDK has no top_k parameter of its own
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}],
            }
        ],
    }
    beta = "prompt-caching-2024-07-31"  # a beta feature's header goes with the body that needs it
    message = _client(gateway).messages.create(**options, extra_headers={"anthropic-beta": beta})
    assert emulators.anthropic.script.headers["anthropic-beta"] == beta
    sent = emulators.anthropic.received[-1]
    assert sent["system"] == system and sent["thinking"] == options["thinking"] and sent["top_k"] == 5
    assert sent["messages"] == options["messages"] and sent["model"] != "claude"  # the backend's model name
    assert message.id.startswith("msg_") and message.model == sent["model"]  # the Message as Claude wrote it
    with _client(gateway).messages.stream(**options) as stream:
        final = stream.get_final_message()
    assert "anthropic-beta" not in emulators.anthropic.script.headers  # none asked, none sent
    assert emulators.anthropic.received[-1]["stream"] is True and final.content[0].text  # type: ignore[union-attr]
    llama = _client(gateway).messages.create(**{**options, "model": "llama"})  # other wires: translated
    assert "thinking" not in emulators.vllm.received[-1] and llama.content[0].text  # type: ignore[union-attr]


def test_a_changed_request_is_not_sent_natively() -> None:
    from router.schema import ChatRequest, NativeChatRequest

    chat = NativeChatRequest.model_validate(
        {"model": "claude", "messages": [{"role": "user", "content": "hi"}]}
    )
    chat.keep_native({"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.native_body() is not None
    assert chat.model_copy(update={"temperature": 0.5}).native_body() is not None  # same messages
    with_context = chat.model_copy(update={"messages": [*chat.messages]})  # retrieval, redaction
    assert with_context.native_body() is None
    assert ChatRequest.model_validate(chat.model_dump()).native_body() is None


def test_mcp_servers_are_refused(gateway: RunningGateway) -> None:
    body = {
        "model": "claude",
        "max_tokens": 8,
        "messages": [{"role": "user", "content": "hi"}],
        "mcp_servers": [],
    }
    response = httpx.post(
        gateway.base_url + "/v1/messages", json=body, headers={"x-api-key": gateway.admin_key}
    )
    assert response.status_code == 400 and response.json()["error"]["message"].startswith("'mcp_servers'")


def test_text_the_gate_did_not_read_is_never_sent_natively(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    thinking = {"type": "thinking", "thinking": "the key is sk-live-secret", "signature": "sig"}
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [thinking, {"type": "text", "text": "Hello."}]},
        {"role": "user", "content": "Go on."},
    ]
    _client(gateway).messages.create(model="claude", max_tokens=32, messages=messages)  # type: ignore[arg-type]
    sent = emulators.anthropic.received[-1]
    assert "sk-live-secret" not in str(sent)  # translated: the earlier turn's thinking is dropped
    assert [block["type"] for block in sent["messages"][1]["content"]] == ["text"]


def test_turnouts_own_options_are_taken_as_on_chat(gateway: RunningGateway, emulators: Emulators) -> None:
    """`turnout` in the body was an unrecognised argument on /v1/messages (a trial): a caller could
    not ask to stay inside or to retrieve there."""
    raw = _client(gateway).messages.with_raw_response.create(
        model="claude",
        max_tokens=16,
        messages=[{"role": "user", "content": "Summarise the salary bands."}],
        extra_body={"turnout": {"private": True}},
    )
    assert raw.headers["x-turnout-backend"] == "llama" and emulators.anthropic.received == []
    assert "turnout" not in emulators.vllm.received[-1]  # the gateway's own options never go upstream
