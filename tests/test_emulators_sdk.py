"""The emulators speak the real protocols: the official SDKs use them unchanged."""

from __future__ import annotations

from typing import Literal

import anthropic
import openai
import pydantic
import pytest

pytestmark = pytest.mark.integration

TOOL = {
    "name": "lookup",
    "description": "look up",
    "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
}


def test_anthropic_sdk_messages(emulators):
    client = anthropic.Anthropic(base_url=emulators.anthropic.base_url, api_key="sk-ant-test", max_retries=0)
    message = client.messages.create(
        model="claude-x", max_tokens=50, system="s", messages=[{"role": "user", "content": "ping pong"}]
    )
    assert message.content[0].text.endswith("ping pong") and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == len(message.content[0].text.split())


def test_anthropic_sdk_streaming_and_tool_use(emulators):
    client = anthropic.Anthropic(base_url=emulators.anthropic.base_url, api_key="sk-ant-test", max_retries=0)
    with client.messages.stream(
        model="claude-x", max_tokens=50, messages=[{"role": "user", "content": "streamed words"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.endswith("streamed words") and final.stop_reason == "end_turn"
    with client.messages.stream(
        model="claude-x", max_tokens=50, tools=[TOOL], messages=[{"role": "user", "content": "find"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"q": "emulated"}


def test_anthropic_sdk_sees_errors_as_its_own_classes(emulators):
    client = anthropic.Anthropic(base_url=emulators.anthropic.base_url, api_key="sk-ant-test", max_retries=0)
    emulators.anthropic.fault("status", status=429, retry_after=1)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert caught.value.response.headers["retry-after"] == "1"
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(
            base_url=emulators.anthropic.base_url, api_key="wrong", max_retries=0
        ).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError, match="alternate"):
        client.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}, {"role": "user", "content": "y"}],
        )
    emulators.anthropic.fault("drop_mid_stream", after_chunks=3)
    # the SDK surfaces a connection cut mid-body as its transport's protocol error
    with (
        pytest.raises(Exception, match=r"incomplete|closed|onnection"),
        client.messages.stream(
            model="m", max_tokens=20, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        list(stream.text_stream)


def test_openai_sdk_against_the_emulator_directly(emulators):
    client = openai.OpenAI(base_url=emulators.openai.base_url, api_key="sk-openai-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "direct"}])
    assert answer.choices[0].message.content.endswith("direct")
    emulators.openai.fault("status", status=500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "x"}])


class Colour(pydantic.BaseModel):
    name: str
    shade: Literal["light", "dark"]


class Palette(pydantic.BaseModel):
    colours: list[Colour]
    count: int


def test_the_openai_emulator_answers_n_stop_length_and_structured_output_as_openai_does(emulators):
    """A third trial (2026-12-08): n: 3 gave one choice, stop was ignored, a stream cut by
    max_tokens ended "stop" (unstreamed: "length"), and json_schema got plain text, so the SDK's
    parse helpers failed in `make demo`."""
    client = openai.OpenAI(base_url=emulators.openai.base_url, api_key="sk-openai-test", max_retries=0)
    hello = [{"role": "user", "content": "one two three four"}]
    many = client.chat.completions.create(model="gpt-x", messages=hello, n=3)
    assert [c.index for c in many.choices] == [0, 1, 2] and many.choices[2].message.content
    stopped = client.chat.completions.create(model="gpt-x", messages=hello, stop=["three"])
    assert stopped.choices[0].message.content.endswith("two") and stopped.choices[0].finish_reason == "stop"
    chunks = list(client.chat.completions.create(model="gpt-x", messages=hello, max_tokens=2, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    whole = client.chat.completions.create(model="gpt-x", messages=hello, max_tokens=2)
    assert whole.choices[0].finish_reason == "length"
    streamed = client.chat.completions.create(model="gpt-x", messages=hello, n=2, stream=True)
    assert {c.choices[0].index for c in streamed if c.choices} == {0, 1}
    parsed = client.chat.completions.parse(model="gpt-x", messages=hello, response_format=Palette)
    palette = parsed.choices[0].message.parsed
    assert isinstance(palette, Palette) and palette.colours[0].shade == "light"


def test_the_anthropic_emulator_stops_at_a_stop_sequence(emulators):
    client = anthropic.Anthropic(base_url=emulators.anthropic.base_url, api_key="sk-ant-test", max_retries=0)
    hello = [{"role": "user", "content": "one two three four"}]
    message = client.messages.create(
        model="claude-x", max_tokens=50, messages=hello, stop_sequences=["three"]
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "three"
    assert message.content[0].text.endswith("two")  # type: ignore[union-attr]
    with client.messages.stream(model="claude-x", max_tokens=2, messages=hello) as stream:
        assert stream.get_final_message().stop_reason == "max_tokens"
