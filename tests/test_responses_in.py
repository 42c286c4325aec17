"""OpenAI's Responses API in: the openai SDK's `client.responses` talks to the gateway unchanged,
whole and streamed, with function tools, structured output, stored responses continued by
`previous_response_id`, `store: false`, and GET/DELETE of a key's own responses."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.conftest import Emulators, RunningGateway
from tests.test_limits_gateway import key_with

pytestmark = pytest.mark.integration

WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
RECEIVED = {"gpt-4": "openai", "llama": "vllm", "claude": "anthropic"}


@pytest.mark.parametrize("model", ["gpt-4", "llama", "claude", "auto"])
def test_a_response_from_any_backend(gateway: RunningGateway, emulators: Emulators, model: str) -> None:
    raw = gateway.client().responses.with_raw_response.create(
        model=model, instructions="Answer briefly.", input="Say hello to the team."
    )
    response = raw.parse()
    assert response.object == "response" and response.status == "completed"
    assert response.output_text and response.output[0].type == "message"
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    backend = raw.headers["x-turnout-backend"]
    if backend in ("gpt-4", "llama"):
        body = getattr(emulators, RECEIVED[backend]).received[-1]
        assert body["messages"] == [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Say hello to the team."},
        ]


@pytest.mark.parametrize("model", ["gpt-4", "claude"])
def test_a_streamed_response(gateway: RunningGateway, model: str) -> None:
    client = gateway.client()
    with client.responses.stream(model=model, input="Tell me a short story.") as stream:
        deltas = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas and final.output_text == deltas and final.status == "completed"
    kinds = [event.type for event in client.responses.create(model=model, input="Hi there", stream=True)]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    stored = _wait_stored(client, final.id)
    assert stored.output_text == deltas


def _wait_stored(client: openai.OpenAI, response_id: str) -> Any:
    deadline = time.monotonic() + 5
    while True:
        try:
            return client.responses.retrieve(response_id)
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("model", ["gpt-4", "llama", "claude"])
@pytest.mark.parametrize("stream", [False, True])
def test_function_tools_and_previous_response_id(
    gateway: RunningGateway, emulators: Emulators, model: str, stream: bool
) -> None:
    client = gateway.client()
    options: dict[str, Any] = {
        "model": model,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "weather"},
    }
    if stream:
        with client.responses.stream(input="Weather in Paris?", **options) as events:
            first = events.get_final_response()
        _wait_stored(client, first.id)
    else:
        first = client.responses.create(input="Weather in Paris?", **options)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "weather" and "city" in call.arguments
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER],  # type: ignore[list-item]
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}],
    )
    assert second.output_text and second.previous_response_id == first.id
    if model != "claude":
        sent = getattr(emulators, RECEIVED[model]).received[-1]["messages"]
        assert sent[0] == {"role": "user", "content": "Weather in Paris?"}
        assert sent[1]["tool_calls"][0]["id"] == call.call_id
        assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21 C"}


@pytest.mark.parametrize("stream", [False, True])
def test_a_continuation_of_a_response_kept_inside_stays_inside(
    gateway: RunningGateway, emulators: Emulators, stream: bool
) -> None:
    """A trial: the first turn asked to stay inside by header (or in `instructions`, which the
    stored conversation leaves out) went to llama; its continuation naming gpt-4 carried the first
    turn and llama's answer to the external backend."""
    client = gateway.client()
    private = {"x-turnout-private": "true"}
    if stream:
        with client.responses.stream(
            model="auto", input="Extract the salary band.", extra_headers=private
        ) as events:
            first = events.get_final_response()
        _wait_stored(client, first.id)
    else:
        first = client.responses.create(model="auto", input="Extract the salary band.", extra_headers=private)
    told = client.responses.create(
        model="auto", instructions="This data must not leave our data center.", input="Summarise the band."
    )
    for previous in (first.id, told.id):
        raw = client.responses.with_raw_response.create(
            model="gpt-4", input="Now write a haiku about it.", previous_response_id=previous
        )
        assert raw.headers["x-turnout-backend"] == "llama" and raw.headers["x-turnout-sensitive"] == "reroute"
    assert emulators.openai.received == []
    plain = client.responses.create(model="gpt-4", input="Say hello.")  # a response not kept inside
    after = client.responses.with_raw_response.create(
        model="gpt-4", input="Again.", previous_response_id=plain.id
    )
    assert after.headers["x-turnout-backend"] == "gpt-4"


def test_structured_output_goes_as_response_format(gateway: RunningGateway, emulators: Emulators) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    text: Any = {"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}}
    gateway.client().responses.create(model="gpt-4", input="Where is the Louvre?", text=text)
    sent = emulators.openai.received[-1]["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}}


def test_store_false_retrieve_delete_and_other_keys(gateway: RunningGateway) -> None:
    client = gateway.client()
    unstored = client.responses.create(model="llama", input="Not kept.", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="llama", input="Go on.", previous_response_id=unstored.id)
    _, other_key = key_with(gateway, "responses-other")
    kept = gateway.client(key=other_key).responses.create(model="llama", input="Kept for me.")
    assert client.responses.retrieve(kept.id).id == kept.id  # the admin key reads any
    stranger = gateway.client(key=key_with(gateway, "responses-stranger")[1])
    with pytest.raises(openai.NotFoundError):
        stranger.responses.retrieve(kept.id)
    with pytest.raises(openai.NotFoundError):
        stranger.responses.create(model="llama", input="Steal.", previous_response_id=kept.id)
    mine = gateway.client(key=other_key)
    assert mine.responses.retrieve(kept.id).output_text == kept.output_text
    mine.responses.delete(kept.id)
    with pytest.raises(openai.NotFoundError):
        mine.responses.retrieve(kept.id)


def test_refused_inputs_are_400s(gateway: RunningGateway) -> None:
    def post(body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            gateway.base_url + "/v1/responses",
            json=body,
            headers={"authorization": f"Bearer {gateway.admin_key}"},
            timeout=20,
        )

    assert post({"model": "auto", "input": "hi", "bogus": 1}).json()["error"]["param"] == "bogus"
    refused = post({"model": "auto", "input": "hi", "tools": [{"type": "web_search"}]})
    assert refused.status_code == 400 and "web_search" in refused.json()["error"]["message"]
    assert post({"model": "auto", "input": "hi", "background": True}).status_code == 400
    assert post({"model": "auto"}).json()["error"]["param"] == "input"
    # mistyped fields (a third trial, 2026-12-08): "tools": true was a 500, the others were ignored
    for field, value in [
        ("tools", True),
        ("tools", 5),
        ("text", {"format": "x"}),
        ("text", -1),
        ("instructions", {}),
        ("instructions", [None]),
        ("metadata", {"a": 2**70}),
        ("metadata", {"a": {}}),
        ("store", "yes"),
    ]:
        mistyped = post({"model": "gpt-4", "input": "hi", field: value})
        assert mistyped.status_code == 400, (field, value, mistyped.text)
        assert (
            mistyped.json()["error"]["param"] == field
            and "Invalid type" in mistyped.json()["error"]["message"]
        )
    # a Response's own instructions, input items, echoed back: taken as before
    listed = post(
        {"model": "gpt-4", "input": "hi", "instructions": [{"type": "input_text", "text": "Be brief."}]}
    )
    assert listed.status_code == 200, listed.text


def test_stream_events_number_items_in_output_order() -> None:
    """A function call then text: each event's output_index is its item's place in the output."""
    from router.pipeline.responses_in import ChunksToEvents, Envelope

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return b"data: " + orjson.dumps(body) + b"\n\n"

    call = {"index": 0, "id": "call_1", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}}
    translator = ChunksToEvents(Envelope({"model": "m", "input": "hi"}, "resp_1", "m"))
    raw = translator.feed(
        chunk({"tool_calls": [call]}) + chunk({"content": "Sunny."}, "stop") + b"data: [DONE]\n\n"
    )
    events = [orjson.loads(line[6:]) for line in raw.split(b"\n") if line.startswith(b"data: ")]
    added = {
        e["item"]["type"]: e["output_index"] for e in events if e["type"] == "response.output_item.added"
    }
    assert added == {"function_call": 0, "message": 1}
    text_events = [
        e for e in events if e["type"].startswith(("response.output_text", "response.content_part"))
    ]
    assert text_events and {e["output_index"] for e in text_events} == {1}
    final = translator.final
    assert final is not None and [item["type"] for item in final["output"]] == ["function_call", "message"]


def test_turnouts_own_options_are_taken_as_on_chat(gateway: RunningGateway, emulators: Emulators) -> None:
    """`turnout` in the body was an unrecognised argument on /v1/responses (a trial)."""
    raw = gateway.client().responses.with_raw_response.create(
        model="gpt-4", input="Summarise the salary bands.", extra_body={"turnout": {"private": True}}
    )
    assert raw.headers["x-turnout-backend"] == "llama" and emulators.openai.received == []
    assert "turnout" not in emulators.vllm.received[-1]
