"""The running gateway driven by the official openai SDK, each backend through its emulator."""

from __future__ import annotations

import gc
import json

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration

FAST = {"x-turnout-latency-budget-ms": "1000"}  # the default policy's `fast` route: haiku, then llama

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest.mark.parametrize("model", ["gpt-4", "claude", "haiku", "llama", "auto"])
def test_non_streaming_answer_from_each_backend(gateway, emulators, model):
    raw = gateway.client().chat.completions.with_raw_response.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello from the test"},
        ],
        max_tokens=50,
        temperature=0.3,
        extra_headers=FAST,
    )
    completion = raw.parse()
    assert completion.choices[0].message.content.endswith("hello from the test")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == len(completion.choices[0].message.content.split())
    expected = {"auto": "haiku"}.get(model, model)
    assert raw.headers["x-turnout-backend"] == expected
    assert raw.headers["x-turnout-route"] == ("fast" if model == "auto" else "explicit")
    assert raw.headers["x-turnout-sensitive"] == "none"
    assert float(raw.headers["x-turnout-overhead-ms"]) >= 0


def test_start_up_objects_are_frozen_out_of_the_collector(gateway):
    # classifier, gazetteer and policy: a full collection walking them stalled every request ~34 ms
    assert gc.get_freeze_count() > 20_000


@pytest.mark.parametrize("model", ["gpt-4", "claude", "haiku", "llama"])
def test_streaming_answer_from_each_backend_with_usage(gateway, emulators, model):
    stream = gateway.client().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "stream me something"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.endswith("stream me something")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(text.split())


def test_stream_without_include_usage_has_no_usage_chunk(gateway, emulators):
    chunks = list(
        gateway.client().chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks)
    # the gateway still asked upstream for usage, for the ledger
    assert emulators.openai.received[-1]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("model", ["gpt-4", "claude"])
def test_tool_call_round_trip(gateway, emulators, model):
    client = gateway.client()
    messages = [{"role": "user", "content": "weather in Paris?"}]
    first = client.chat.completions.create(
        model=model, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "emulated", "days": 1}
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL])
    assert second.choices[0].message.content.endswith("sunny, 21C")


@pytest.mark.parametrize("model", ["gpt-4", "claude"])
def test_streamed_tool_call_arguments_reassemble(gateway, emulators, model):
    stream = gateway.client().chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream=True,
    )
    name, arguments, finish = "", "", None
    for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            assert call.index == 0
            name += call.function.name or ""
            arguments += call.function.arguments or ""
        finish = chunk.choices[0].finish_reason or finish
    assert name == "get_weather" and json.loads(arguments)["city"] == "emulated" and finish == "tool_calls"


def test_anthropic_translation_reaches_upstream(gateway, emulators):
    gateway.client().chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": [{"type": "text", "text": "Bonjour"}]},
        ],
        stop=["END"],
        temperature=1.7,
        user="u-42",
        response_format={"type": "json_object"},
    )
    sent = emulators.anthropic.received[-1]
    assert sent["model"] == "claude-sonnet-4-5"
    assert sent["system"].startswith("Answer in French.") and "JSON" in sent["system"]
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Bonjour"}]}]
    assert sent["stop_sequences"] == ["END"] and sent["temperature"] == 1.0
    assert sent["metadata"] == {"user_id": "u-42"} and sent["max_tokens"] == 8192


def test_openai_parameters_pass_through(gateway, emulators):
    gateway.client().chat.completions.create(
        model="llama",
        messages=[{"role": "user", "content": "hi"}],
        seed=7,
        top_p=0.5,
        max_completion_tokens=9,
        response_format={"type": "json_object"},
        user="u-1",
    )
    sent = emulators.vllm.received[-1]
    assert sent["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert (sent["seed"], sent["top_p"], sent["max_completion_tokens"], sent["user"]) == (7, 0.5, 9, "u-1")
    assert sent["response_format"] == {"type": "json_object"} and "stream" not in sent


def test_models_lists_auto_and_ready_backends(gateway):
    ids = [model.id for model in gateway.client().models.list()]
    assert ids[0] == "auto" and {"gpt-4", "claude", "haiku", "llama", "mistral"} <= set(ids)


def test_models_retrieve_and_the_unversioned_alias(gateway):
    client = gateway.client()
    model = client.models.retrieve("llama")
    assert (model.id, model.object) == ("llama", "model")
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("no-such-model")
    assert caught.value.body["code"] == "model_not_found" and "llama" in caught.value.message
    headers = {"authorization": f"Bearer {gateway.admin_key}"}
    listed = httpx.get(gateway.base_url + "/models", headers=headers).json()
    assert listed["object"] == "list" and [m["id"] for m in listed["data"]] == [
        m.id for m in client.models.list()
    ]
    assert httpx.get(gateway.base_url + "/models/llama", headers=headers).json()["id"] == "llama"
    assert httpx.get(gateway.base_url + "/v1/models/llama").status_code == 401  # a key is still needed


def test_health_and_readiness(gateway):
    assert httpx.get(gateway.base_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.base_url + "/readyz").json()
    assert ready["status"] == "ready" and ready["database"] == "ok"
    assert len(ready["policy"]["version"]) == 12 and ready["backends"]["haiku"]["ready"] is True


def test_litellm_backend_answers_streamed_and_not(gateway, emulators):
    client = gateway.client()
    raw = client.chat.completions.with_raw_response.create(
        model="mistral", messages=[{"role": "user", "content": "via litellm"}]
    )
    assert raw.headers["x-turnout-backend"] == "mistral"
    assert raw.parse().choices[0].message.content.endswith("via litellm")
    assert emulators.openai.received[-1]["model"] == "mistral-small-latest"
    chunks = list(
        client.chat.completions.create(
            model="mistral", messages=[{"role": "user", "content": "streamed"}], stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).endswith("streamed")


def test_usage_is_recorded_per_key_in_postgres(gateway, emulators):
    from tests.conftest import fetch, wait_for_rows

    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    client = gateway.client()
    client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "count me please"}])
    # only rows written after this request: earlier tests left gpt-4 rows of their own
    sql = f"SELECT * FROM turnout_usage WHERE id > {before['id']} AND key_id = 'admin' AND backend = 'gpt-4'"
    found = wait_for_rows(url, sql)
    assert found, "usage was not written within 10 s"
    row = found[0]
    assert row["status"] == 200 and row["prompt_tokens"] == 7 and row["completion_tokens"] == 7
    assert row["cost_usd"] == pytest.approx((7 * 2.5 + 7 * 10.0) / 1e6)
    assert row["latency_ms"] > 0 and row["overhead_ms"] >= 0


def test_metrics_count_requests(gateway, emulators):
    gateway.client().chat.completions.create(model="llama", messages=[{"role": "user", "content": "x"}])
    text = httpx.get(gateway.base_url + "/metrics").text
    labels = (
        'api="chat",backend="llama",model="meta-llama/Llama-3.1-8B-Instruct",route="explicit",status="200"'
    )
    assert f"turnout_requests_total{{{labels}}}" in text


def test_sdk_error_classes(gateway, emulators):
    with pytest.raises(openai.AuthenticationError):
        gateway.client(key="tnt_" + "x" * 43).models.list()
    with pytest.raises(openai.NotFoundError):
        gateway.client().chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.BadRequestError):
        gateway.client().chat.completions.create(model="auto", messages=[])
    assert sum(e.script.requests for e in (emulators.openai, emulators.anthropic, emulators.vllm)) == 0


def test_chat_completions_without_the_v1_prefix(gateway, emulators):
    response = httpx.post(
        gateway.base_url + "/chat/completions",
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        json={"model": "llama", "messages": [{"role": "user", "content": "no prefix"}]},
    )
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"].endswith(
        "no prefix"
    )
