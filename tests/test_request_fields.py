"""Personal data in every field a client can send: every string that leaves is scanned or not sent.

For each field of a chat request that reaches an upstream (OpenAI's and turnout's lists, the keys
and values of open objects, unknown keys OpenAI may add), an e-mail address there must make the
request sensitive: under `reroute` it never reaches an external emulator, under `redact` it reaches
one only as a placeholder (or stays inside where no placeholder may stand: identifiers upstreams
check). The emulators record every body they receive.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ADMIN_KEY, Emulators, RunningGateway, free_port, provider_settings, serve_in_thread
from tests.conftest import test_policy as make_test_policy

pytestmark = pytest.mark.integration

EMAIL = "maria.kowalska@gmail.com"
TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}},
}
ASKED = {"role": "user", "content": "Please help with this."}


def _tool(**function: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "lookup", **function}}


def _call(call_id: str) -> list[dict[str, Any]]:
    return [
        ASKED,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "done"},
    ]


# field -> the body that carries the address there (model and stream are set by the test)
PROBES: dict[str, Callable[[], dict[str, Any]]] = {
    "user": lambda: {"messages": [ASKED], "user": EMAIL},
    "metadata value": lambda: {"messages": [ASKED], "metadata": {"owner": EMAIL}},
    "metadata key": lambda: {"messages": [ASKED], "metadata": {EMAIL: "owner"}},
    "stop": lambda: {"messages": [ASKED], "stop": ["END", f"write to {EMAIL}"]},
    "message name": lambda: {"messages": [{**ASKED, "name": EMAIL}]},
    "message extra key's value": lambda: {"messages": [{**ASKED, "annotations": [{"note": EMAIL}]}]},
    "message extra key": lambda: {"messages": [{**ASKED, EMAIL: True}]},
    "assistant refusal": lambda: {
        "messages": [ASKED, {"role": "assistant", "content": "no", "refusal": f"not for {EMAIL}"}, ASKED]
    },
    "refusal part": lambda: {
        "messages": [
            ASKED,
            {"role": "assistant", "content": [{"type": "refusal", "refusal": f"not for {EMAIL}"}]},
            ASKED,
        ]
    },
    "content part extra": lambda: {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello", "cache_hint": EMAIL}]}]
    },
    "tool description": lambda: {"messages": [ASKED], "tools": [_tool(description=f"Mail {EMAIL}")]},
    "tool parameter schema": lambda: {
        "messages": [ASKED],
        "tools": [
            _tool(
                parameters={
                    "type": "object",
                    "properties": {"to": {"type": "string", "enum": [EMAIL, "nobody"]}},
                }
            )
        ],
    },
    "tool parameter name": lambda: {
        "messages": [ASKED],
        "tools": [_tool(parameters={"type": "object", "properties": {EMAIL: {"type": "string"}}})],
    },
    "json_schema": lambda: {
        "messages": [ASKED],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "reply", "schema": {"type": "object", "description": f"for {EMAIL}"}},
        },
    },
    "tool-call id": lambda: {"messages": _call(f"call_{EMAIL}"), "tools": [TOOL]},
    "tool-call extra": lambda: {
        "messages": [
            ASKED,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": "{}", "note": EMAIL},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ],
        "tools": [TOOL],
    },
    "stream_options extra": lambda: {
        "messages": [ASKED],
        "tools": [TOOL],
        "parallel_tool_calls": True,
        "stream": True,
        "stream_options": {"include_usage": True, "owner": EMAIL},
    },
    "prediction": lambda: {"messages": [ASKED], "prediction": {"type": "content", "content": f"To: {EMAIL}"}},
    "safety_identifier": lambda: {"messages": [ASKED], "safety_identifier": EMAIL},
    "prompt_cache_key": lambda: {"messages": [ASKED], "prompt_cache_key": f"cache-{EMAIL}"},
    "web search location": lambda: {
        "messages": [ASKED],
        "web_search_options": {"user_location": {"type": "approximate", "approximate": {"city": EMAIL}}},
    },
    "legacy function description": lambda: {
        "messages": [ASKED],
        "functions": [{"name": "lookup", "description": f"Mail {EMAIL}"}],
    },
    "custom tool input": lambda: {
        "messages": [
            ASKED,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "custom", "custom": {"name": "mail", "input": f"to {EMAIL}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sent"},
            ASKED,
        ],
        "tools": [{"type": "custom", "custom": {"name": "mail"}}],
    },
    "vLLM documents": lambda: {
        "messages": [ASKED],
        "documents": [{"title": "memo", "text": f"from {EMAIL}"}],
    },
}
# fields no backend of the Messages wire, OpenAI's or vLLM's takes: each drops them (the first
# because translation has no place for them, the others by router.backends.params)
NOT_ON_THE_VLLM_WIRE = {"metadata value", "metadata key", "prediction", "safety_identifier"}
NOT_ON_THE_VLLM_WIRE |= {"prompt_cache_key", "web search location"}
NOT_ON_THE_OPENAI_WIRE = {"vLLM documents"}
ANTHROPIC_REFUSES = {"custom tool input"}  # a 400: Messages has no free-form tools
NOT_ON_THE_MESSAGES_WIRE = {
    "prediction",
    "prompt_cache_key",
    "web search location",
    "vLLM documents",
    "metadata value",
    "metadata key",
    "message extra key's value",
    "message extra key",
    "assistant refusal",
    "content part extra",
    "tool-call extra",
    "stream_options extra",
}
# identifiers that upstreams check against ^[a-zA-Z0-9_-]+$: under `redact` they stay inside instead
UNMASKABLE = {"message name", "tool-call id"}


def _post(base_url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        base_url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=20,
    )


def _external_bodies(emulators: Emulators) -> str:
    return json.dumps(emulators.openai.received + emulators.anthropic.received)


@pytest.mark.parametrize("field", list(PROBES))
@pytest.mark.parametrize("model", ["gpt-4", "claude", "auto"])
def test_personal_data_in_any_field_never_leaves_under_reroute(
    gateway: RunningGateway, emulators: Emulators, field: str, model: str
) -> None:
    response = _post(gateway.base_url, {**PROBES[field](), "model": model})
    assert response.status_code == 200, response.text
    assert response.headers["x-turnout-sensitive"] == "reroute"
    assert response.headers["x-turnout-backend"] == "llama"
    assert emulators.openai.script.requests == emulators.anthropic.script.requests == 0
    if field not in NOT_ON_THE_VLLM_WIRE:
        assert EMAIL in json.dumps(emulators.vllm.received)  # it did reach the private backend


@pytest.fixture(scope="module")
def redacting(
    pg_url: str, emulators_session: Emulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    from router.http.app import create_app
    from router.settings import Settings

    home = tmp_path_factory.mktemp("redact")
    path = make_test_policy(emulators_session, home / "policy.yaml")
    policy = yaml.safe_load(path.read_text())
    policy["sensitivity"]["action"] = "redact"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    settings = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=path,
        home=home,
        usage_flush_seconds=0.1,
        embedder="hash-64",  # retrieval is not what this gateway is for: no model to warm
        **provider_settings(emulators_session),
    )
    server, thread = serve_in_thread(create_app(settings), port := free_port())
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


@pytest.mark.parametrize("field", list(PROBES))
@pytest.mark.parametrize("model", ["gpt-4", "claude"])
def test_personal_data_in_any_field_leaves_only_masked_under_redact(
    redacting: str, emulators: Emulators, field: str, model: str
) -> None:
    response = _post(redacting, {**PROBES[field](), "model": model})
    sent = _external_bodies(emulators)
    if model == "claude" and field in ANTHROPIC_REFUSES:
        assert response.status_code == 400 and EMAIL not in sent
        return
    assert response.status_code == 200, response.text
    assert EMAIL not in sent
    if field in UNMASKABLE:
        assert response.headers["x-turnout-sensitive"] == "reroute"
        assert response.headers["x-turnout-backend"] == "llama" and sent == "[]"
        return
    assert response.headers["x-turnout-sensitive"] == "redact"
    dropped = NOT_ON_THE_MESSAGES_WIRE if model == "claude" else NOT_ON_THE_OPENAI_WIRE
    if field in dropped:
        assert "[EMAIL_" not in sent  # the backend does not take the field: it is not sent
        return
    assert "[EMAIL_1]" in sent, f"{field}: the placeholder reaches the backend in its place"


def test_fields_scanned_are_listed_in_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for field in ("`user`", "`metadata`", "`stop`", "`name`", "tool-call ids", "`json_schema`", "refusal"):
        assert field in readme.split("**What is scanned.**")[1].split("\n\n")[0], field


@pytest.mark.parametrize("name", ["colours", "green", "Taylor", "rose"])
def test_a_schema_name_is_an_identifier_not_a_person(
    gateway: RunningGateway, emulators: Emulators, name: str
) -> None:
    """A third trial (2026-12-08): response_format's json_schema named "colours" or "green" was read
    as "name: Green", a form's person, and the request naming gpt-4 went to llama. The SDK's parse
    helpers name the schema after a class, so every structured-output call could meet it."""
    schema = {"name": name, "schema": {"type": "object", "properties": {"green": {"type": "string"}}}}
    body = {
        "model": "gpt-4",
        "messages": [{"role": "user", "content": "List three colours."}],
        "response_format": {"type": "json_schema", "json_schema": schema},
    }
    response = _post(gateway.base_url, body)
    assert response.status_code == 200, response.text
    assert response.headers["x-turnout-sensitive"] == "none"
    assert response.headers["x-turnout-backend"] == "gpt-4"
    named = {**body, "metadata": {"name": "Maria Lopez"}}  # a name under "name" elsewhere is a person's
    assert _post(gateway.base_url, named).headers["x-turnout-backend"] == "llama"
