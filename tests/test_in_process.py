"""Routing, fallback, redaction and relay with upstreams in the same process (router.testing.upstream):
the client's HTTP/1.1 parser and the adapters' translation run as ever, and no socket is opened."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from router.accounts.auth import Principal
from router.backends.http import HttpClient
from router.http.errors import UpstreamError
from router.pipeline.gateway import Gateway
from router.schema import parse_chat_request
from router.settings import Settings
from router.testing.upstream import (
    Answer,
    UpstreamRequest,
    Upstreams,
    openai_error,
    openai_json,
    openai_sse,
)

ADMIN = Principal("admin", "admin", admin=True)
POLICY = """
version: 1
defaults:
  route: chat
  retries: {attempts: 2, backoff_s: 0.0, max_backoff_s: 0.0}
sensitivity: {action: ACTION}
backends:
  first:  {provider: openai_compatible, model: m1, base_url: "http://first.test/v1", data: external}
  second: {provider: openai_compatible, model: m2, base_url: "http://second.test/v1", data: external}
routes:
  - {name: chat, backends: [first, second]}
"""


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any socket these tests open is a failure: the point is that none is needed."""

    async def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refused)
    yield


def _gateway(tmp_path: Path, upstreams: Upstreams, action: str = "reroute") -> Gateway:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.replace("ACTION", action))
    return Gateway(Settings(policy=policy, home=tmp_path), HttpClient(connect=upstreams.connect))


def _chat(text: str, stream: bool = False) -> bytes:
    return json.dumps(
        {"model": "auto", "stream": stream, "messages": [{"role": "user", "content": text}]}
    ).encode()


def test_a_failing_backend_falls_back_to_the_next_in_process(tmp_path: Path) -> None:
    upstreams = Upstreams(
        {"first.test": lambda r: openai_error(500), "second.test": lambda r: openai_json("hi")}
    )
    gateway = _gateway(tmp_path, upstreams)

    async def run() -> tuple[str, int, str]:
        plan = await gateway.plan(parse_chat_request(_chat("Say hi")), ADMIN)
        outcome = await gateway.complete(plan)
        answer = json.loads(outcome.result.body)["choices"][0]["message"]["content"]
        return outcome.backend.name, len(outcome.attempts), answer

    backend, failed, answer = asyncio.run(run())
    assert (backend, answer) == ("second", "hi")
    assert failed == 3  # the first backend tried once and retried twice (attempts: 2), then the second
    assert [r.host for r in upstreams.requests] == ["first.test"] * 3 + ["second.test"]
    sent = upstreams.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.json()["model"] == "m2"


def test_redacted_placeholders_come_back_in_a_stream_split_across_events(tmp_path: Path) -> None:
    seen: list[UpstreamRequest] = []

    def echo(request: UpstreamRequest) -> Answer:
        seen.append(request)
        text = request.json()["messages"][-1]["content"]
        start = text.index("[EMAIL_")
        placeholder = text[start : text.index("]", start) + 1]
        # the placeholder cut in two across events, as a tokenizer would
        return openai_sse(["Write to ", placeholder[:4], placeholder[4:], " today."])

    upstreams = Upstreams({"first.test": echo, "second.test": echo})
    gateway = _gateway(tmp_path, upstreams, action="redact")

    async def run() -> str:
        plan = await gateway.plan(parse_chat_request(_chat("Email ann.lee@fastmail.fm please", True)), ADMIN)
        outcome = await gateway.open_stream(plan)
        stream, first = outcome.result
        received = [first]
        async for block in stream:
            received.append(block)
        await stream.aclose()
        text = ""
        for block in received:
            for line in block.decode().split("\n"):
                if line.startswith("data: {"):
                    for choice in json.loads(line[6:]).get("choices", []):
                        text += choice["delta"].get("content") or ""
        return text

    assert asyncio.run(run()) == "Write to ann.lee@fastmail.fm today."
    assert seen and "fastmail" not in seen[0].body.decode()


def test_a_stream_dropped_mid_body_is_an_upstream_error(tmp_path: Path) -> None:
    def dropping(request: UpstreamRequest) -> Answer:
        answer = openai_sse(["one", "two", "three"])
        answer.drop_after = 2
        return answer

    gateway = _gateway(tmp_path, Upstreams({"first.test": dropping, "second.test": dropping}))

    async def run() -> tuple[bytes, list[bytes], BaseException | None]:
        plan = await gateway.plan(parse_chat_request(_chat("Count", True)), ADMIN)
        stream, first = (await gateway.open_stream(plan)).result  # opened: the head and one event came
        blocks: list[bytes] = []
        try:
            async for block in stream:
                blocks.append(block)
        except UpstreamError as error:
            return first, blocks, error
        finally:
            await stream.aclose()
        return first, blocks, None

    first, blocks, error = asyncio.run(run())
    assert b'"role": "assistant"' in first  # the stream did open and relay its first event
    assert isinstance(error, UpstreamError)  # then the drop mid-body is an upstream error, not an end
    assert not any(b"[DONE]" in block for block in blocks)
