"""Request fields: every field of OpenAI's Chat Completions reference is accepted, vLLM's own
fields (sent with `extra_body`) too, and a backend's declared `extra_params`; each reaches the
backends that take it and is dropped for the others; a field nobody defines is a 400 naming it.

The OpenAI emulator refuses unknown top-level fields as OpenAI does, so a field sent to it that
OpenAI does not define fails the request; the vLLM emulator, like vLLM, takes anything.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from router.backends.params import OPENAI_FIELDS
from router.testing.replies import OPENAI_REQUEST_FIELDS
from tests.conftest import Emulators, RunningGateway

pytestmark = pytest.mark.integration

ASK = [{"role": "user", "content": "Say hello."}]
# a value for every OpenAI field the gateway accepted with a 400 before (issue 15)
OPENAI_NEWER = {
    "prompt_cache_key": "tenant-42",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"mode": "implicit", "ttl": "30m"},
    "safety_identifier": "user-hash-7f3a",
    "verbosity": "low",
    "modalities": ["text"],
    "prediction": {"type": "content", "content": "Hello there."},
    "web_search_options": {"search_context_size": "low"},
    "reasoning_effort": "none",
    "service_tier": "flex",
}
VLLM_OWN = {
    "top_k": 20,
    "min_p": 0.05,
    "repetition_penalty": 1.1,
    "chat_template_kwargs": {"enable_thinking": False},
    "structured_outputs": {"choice": ["yes", "no"]},
    "guided_json": {"type": "object"},
}


def _sdk_fields() -> set[str]:
    from openai.types.chat import completion_create_params as params

    return set(params.CompletionCreateParamsBase.__annotations__) | {"stream"}


def test_every_field_of_the_openai_reference_is_accepted_and_the_emulator_knows_the_same() -> None:
    assert _sdk_fields() == set(OPENAI_FIELDS)
    assert _sdk_fields() == set(OPENAI_REQUEST_FIELDS)


def test_newer_openai_fields_reach_openai(gateway: RunningGateway, emulators: Emulators) -> None:
    answer = gateway.client().chat.completions.create(model="gpt-4", messages=ASK, **OPENAI_NEWER)  # type: ignore[call-overload]
    assert answer.choices[0].message.content
    sent = emulators.openai.received[-1]
    assert {name: sent[name] for name in OPENAI_NEWER} == OPENAI_NEWER


def test_newer_openai_fields_are_dropped_for_vllm_and_anthropic(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    client = gateway.client()
    for model, emulator in (("llama", emulators.vllm), ("claude", emulators.anthropic)):
        answer = client.chat.completions.create(model=model, messages=ASK, **OPENAI_NEWER)  # type: ignore[call-overload]
        assert answer.choices[0].message.content
        kept = {"reasoning_effort"} if model == "llama" else set()  # vLLM defines reasoning_effort
        assert set(OPENAI_NEWER) & set(emulator.received[-1]) == kept, model
    assert emulators.anthropic.received[-1]["metadata"] == {"user_id": "user-hash-7f3a"}


@pytest.mark.parametrize("stream", [False, True])
def test_vllm_fields_reach_vllm_and_nobody_else(
    gateway: RunningGateway, emulators: Emulators, stream: bool
) -> None:
    client = gateway.client()
    for model in ("llama", "gpt-4", "claude", "auto"):
        response = client.chat.completions.create(
            model=model, messages=ASK, stream=stream, extra_body=VLLM_OWN
        )
        if stream:
            assert "".join(c.choices[0].delta.content or "" for c in response if c.choices)  # type: ignore[union-attr]
        else:
            assert response.choices[0].message.content  # type: ignore[union-attr]
    sent_vllm = emulators.vllm.received[0]
    assert {name: sent_vllm[name] for name in VLLM_OWN} == VLLM_OWN
    for body in emulators.openai.received + emulators.anthropic.received:
        assert not set(VLLM_OWN) & set(body)


def test_a_field_nobody_defines_is_a_400_naming_it(gateway: RunningGateway, emulators: Emulators) -> None:
    client = gateway.client()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="llama", messages=ASK, extra_body={"top_kk": 3})
    assert caught.value.body["param"] == "top_kk"  # type: ignore[index]
    assert "Unrecognized request argument supplied: top_kk" in caught.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="llama", messages=ASK, extra_body={"top_k": "twenty"})
    assert caught.value.body["param"] == "top_k"  # type: ignore[index]
    assert emulators.vllm.script.requests == 0


def test_declared_extra_params_reach_their_backend_only_and_drop_params_never(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    client = gateway.client()
    extra: dict[str, Any] = {"safe_prompt": True}  # declared by the test policy's `compat` backend
    client.chat.completions.create(model="compat", messages=ASK, seed=7, extra_body=extra)
    assert emulators.vllm.received[-1]["safe_prompt"] is True
    assert "seed" not in emulators.vllm.received[-1]  # the backend's drop_params
    client.chat.completions.create(model="llama", messages=ASK, extra_body=extra)
    assert "safe_prompt" not in emulators.vllm.received[-1]  # vLLM does not define it
    client.chat.completions.create(model="gpt-4", messages=ASK, extra_body=extra)
    assert "safe_prompt" not in emulators.openai.received[-1]


LEGACY: dict[str, Any] = {
    "messages": [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "function_call": {"name": "weather", "arguments": "{}"}},
        {"role": "function", "name": "weather", "content": "sunny"},
        {"role": "user", "content": "And tomorrow?"},
    ],
    "functions": [{"name": "weather", "parameters": {"type": "object", "properties": {}}}],
    "function_call": {"name": "weather"},
}


def test_legacy_functions_go_as_they_are_to_openai_and_as_tools_elsewhere(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    client = gateway.client()
    for model in ("gpt-4", "llama", "claude"):
        client.chat.completions.create(model=model, **LEGACY)
    to_openai = emulators.openai.received[-1]
    assert to_openai["functions"] == LEGACY["functions"] and to_openai["function_call"] == {"name": "weather"}
    to_vllm = emulators.vllm.received[-1]
    assert "functions" not in to_vllm and "function_call" not in to_vllm
    assert to_vllm["tools"] == [{"type": "function", "function": LEGACY["functions"][0]}]
    assert to_vllm["tool_choice"] == {"type": "function", "function": {"name": "weather"}}
    call_id = to_vllm["messages"][1]["tool_calls"][0]["id"]
    assert to_vllm["messages"][2] == {"role": "tool", "content": "sunny", "tool_call_id": call_id}
    to_claude = emulators.anthropic.received[-1]
    assert [tool["name"] for tool in to_claude["tools"]] == ["weather"]
    assert to_claude["tool_choice"] == {"type": "tool", "name": "weather"}
    results = [b for m in to_claude["messages"] for b in m["content"] if b["type"] == "tool_result"]
    uses = [b for m in to_claude["messages"] for b in m["content"] if b["type"] == "tool_use"]
    assert results[0]["tool_use_id"] == uses[0]["id"]


def test_custom_tools_and_allowed_tools(gateway: RunningGateway, emulators: Emulators) -> None:
    client = gateway.client()
    weather = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    clock = {"type": "function", "function": {"name": "clock", "parameters": {"type": "object"}}}
    allowed = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "clock"}}]},
    }
    client.chat.completions.create(model="claude", messages=ASK, tools=[weather, clock], tool_choice=allowed)  # type: ignore[arg-type,list-item]
    sent = emulators.anthropic.received[-1]
    assert [tool["name"] for tool in sent["tools"]] == ["clock"] and sent["tool_choice"] == {"type": "any"}
    custom = {"type": "custom", "custom": {"name": "sql", "description": "a SQL query"}}
    client.chat.completions.create(model="gpt-4", messages=ASK, tools=[custom])  # type: ignore[list-item]
    assert emulators.openai.received[-1]["tools"] == [custom]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="claude", messages=ASK, tools=[custom])  # type: ignore[list-item]
    assert "Custom tools are not supported by Anthropic backends" in caught.value.body["message"]  # type: ignore[index]
