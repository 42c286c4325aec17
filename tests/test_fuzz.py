"""Property-based fuzzing of the running gateway: chat completions, retrieve, usage and explain.

Bodies are generated around each endpoint's schema (right shapes, wrong types, values out of
range, unknown keys, NUL and lone surrogates, integers beyond 64 bits, NaN), sent over HTTP on
loopback. Whatever comes: never a 5xx, every 4xx in OpenAI's error shape, and afterwards the usage
ledger still records a good request. Bounded in count (TURNOUT_FUZZ_EXAMPLES per endpoint, 60 by
default) and in time (each request times out; hypothesis' own deadline is off, the gateway's is
what is tested). README gives the figures of a long run made by hand.
"""

from __future__ import annotations

import json
import os
import string
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY, RunningGateway, wait_for_rows

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("TURNOUT_FUZZ_EXAMPLES", "60"))
REPORT = os.environ.get("TURNOUT_FUZZ_REPORT")  # a file for the statuses seen, per endpoint (long runs)
SEEN: Counter[str] = Counter()
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SHARP = [
    "",
    "\x00",
    "a\x00b",
    "\ud800",
    "\U0001d518\U0001d52b\u00e9\u4e2d",
    "x" * 300,
    "../../etc/passwd",
    "'; DROP TABLE x; --",
]
MODELS = ["auto", "gpt-4", "claude", "haiku", "llama", "mistral", "refused", "tiny"]

# Strategies are built from named functions, never lambdas: to describe a lambda, hypothesis reads
# its source and walks sys.modules, which the gateway's lazy imports in another thread can change
# under it ("dictionary changed size during iteration", seen once in a full run).
# What a client may well send: plain text, JSON that any encoder takes.
plain = st.text(max_size=40)
sharp = st.one_of(plain, st.sampled_from(SHARP))


def _nested_in_plain_keys(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(plain, inner, max_size=3)


def _nested_in_sharp_keys(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=3) | st.dictionaries(sharp, inner, max_size=3)


def _metadata_key(text: str) -> str:
    return text[:64]


safe_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | plain,
    _nested_in_plain_keys,
    max_leaves=6,
)
# What a careless or hostile one sends: NUL, lone surrogates, integers past 64 bits, NaN, any type.
junk = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | sharp,
    _nested_in_sharp_keys,
    max_leaves=6,
)

parts = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": plain}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.fixed_dictionaries({"url": st.just("https://x.test/a.png")}),
        }
    ),
)
calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": plain,
            "type": st.just("function"),
            "function": st.fixed_dictionaries({"name": plain, "arguments": st.just("{}")}),
        }
    ),
    min_size=1,
    max_size=2,
)
messages = st.one_of(
    st.fixed_dictionaries(
        {
            "role": st.sampled_from(["system", "developer", "user"]),
            "content": plain | st.lists(parts, min_size=1, max_size=2),
        },
        optional={"name": plain},
    ),
    st.fixed_dictionaries(
        {"role": st.just("assistant"), "content": plain | st.none()},
        optional={"tool_calls": calls, "refusal": plain},
    ),
    st.fixed_dictionaries({"role": st.just("tool"), "tool_call_id": plain, "content": plain}),
)
tools = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": st.from_regex(r"[a-z_]{1,10}", fullmatch=True)},
                optional={"description": plain, "parameters": st.dictionaries(plain, safe_json, max_size=3)},
            ),
        }
    ),
    min_size=1,
    max_size=2,
)
turnout_options = st.fixed_dictionaries(
    {},
    optional={
        "rag": st.booleans(),
        "private": st.booleans(),
        "collection": st.sampled_from(["docs", "nope", "hr-private"]),
        "top_k": st.integers(1, 50),
        "path_prefix": plain,
        "tags": st.lists(plain, max_size=2),
    },
)
OPTIONAL = {
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "n": st.integers(1, 2),
    "max_tokens": st.integers(1, 2000),
    "max_completion_tokens": st.integers(1, 50),
    "stop": plain | st.lists(plain.filter(bool), max_size=4),
    "seed": st.integers(-(2**63), 2**63 - 1),
    "user": plain,
    "tools": tools,
    "tool_choice": st.sampled_from(["none", "auto", "required"]),
    "parallel_tool_calls": st.booleans(),
    "response_format": st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "json_object"])}),
        st.fixed_dictionaries(
            {"type": st.just("json_schema"), "json_schema": st.dictionaries(plain, safe_json, max_size=3)}
        ),
    ),
    "presence_penalty": st.floats(-2, 2),
    "logit_bias": st.dictionaries(st.sampled_from(["1", "50256"]), st.floats(-100, 100), max_size=2),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
    "metadata": st.dictionaries(plain.map(_metadata_key), plain, max_size=3),
    "service_tier": st.sampled_from(["auto", "default"]),
    "reasoning_effort": st.sampled_from(["low", "high"]),
    "turnout": turnout_options,
}
valid_chat = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS), "messages": st.lists(messages, min_size=1, max_size=3)},
    optional=OPTIONAL,
)


@st.composite
def spoiled(draw: st.DrawFn, bodies: st.SearchStrategy[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    """A valid body with one thing wrong: a field (or a key nobody defines) set to junk, or junk
    put in one message."""
    body = dict(draw(bodies))
    where = draw(st.sampled_from([*keys, "unknown key", "in a message"]))
    if where == "unknown key":
        body[draw(sharp)] = draw(junk)
    elif where == "in a message" and isinstance(body.get("messages"), list):
        index = draw(st.integers(0, len(body["messages"]) - 1))
        message = dict(body["messages"][index])
        message[draw(st.sampled_from(["role", "content", "name", "tool_calls", "tool_call_id", "extra"]))] = (
            draw(junk)
        )
        body["messages"] = [*body["messages"][:index], message, *body["messages"][index + 1 :]]
    else:
        body[where] = draw(junk)
    return body


chat_bodies = st.one_of(valid_chat, spoiled(valid_chat, ["model", "messages", *OPTIONAL]))
headers = st.fixed_dictionaries(
    {},
    optional={
        "x-turnout-latency-budget-ms": st.sampled_from(
            ["100", "0", "-1", "NaN", "inf", "1e999", "soon", "2000"]
        ),
        "x-turnout-private": st.sampled_from(["true", "false", "maybe", "1", ""]),
    },
)


def _send(
    gateway: RunningGateway, method: str, path: str, body: Any = None, extra: dict[str, str] | None = None
) -> httpx.Response:
    content = None
    if body is not None:
        content = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return httpx.request(
        method,
        gateway.base_url + path,
        content=content,
        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json", **(extra or {})},
        timeout=30,
    )


def _check(response: httpx.Response, sent: Any) -> None:
    SEEN[f"{response.request.method} {response.request.url.path} {response.status_code}"] += 1
    assert response.status_code < 500, f"{response.status_code} for {sent!r}: {response.text[:300]}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}, response.text
        assert isinstance(error["message"], str) and error["message"]


@FUZZ
@given(body=chat_bodies, sent_headers=headers)
def test_fuzz_chat_completions(
    gateway: RunningGateway, body: dict[str, Any], sent_headers: dict[str, str]
) -> None:
    _check(_send(gateway, "POST", "/v1/chat/completions", body, sent_headers), body)


@FUZZ
@given(
    body=st.one_of(
        chat_bodies,
        st.fixed_dictionaries({"query": sharp}, optional={"model": st.sampled_from(MODELS)}),
        junk,
    ),
    sent_headers=headers,
)
def test_fuzz_route_explain(
    gateway: RunningGateway, body: dict[str, Any], sent_headers: dict[str, str]
) -> None:
    _check(_send(gateway, "POST", "/v1/route/explain", body, sent_headers), body)


valid_retrieve = st.fixed_dictionaries(
    {"query": plain.filter(str.strip)},
    optional={
        "collection": st.sampled_from(["docs", "nope", "hr-private"]),
        "top_k": st.integers(1, 50),
        "mode": st.sampled_from(["hybrid", "dense", "keyword"]),
        "path_prefix": plain,
        "tags": st.lists(plain, max_size=2),
    },
)
retrieve_bodies = st.one_of(
    valid_retrieve, spoiled(valid_retrieve, ["query", "collection", "top_k", "mode", "path_prefix", "tags"])
)


@FUZZ
@given(body=st.one_of(retrieve_bodies, junk))
def test_fuzz_retrieve(gateway: RunningGateway, body: Any) -> None:
    _check(_send(gateway, "POST", "/v1/retrieve", body), body)


query_values = st.one_of(
    sharp,
    st.sampled_from(
        ["7d", "30m", "1000000d", "1e308d", "2026-01-01", "9999-12-31T23:59:59-14:00", "0001-01-01", "-5d"]
    ),
)


@FUZZ
@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "since": query_values,
            "by": st.sampled_from(["route", "backend", "key", "team", "model", "colour"]),
            "key": query_values,
            "team": query_values,
            "baseline": st.sampled_from(["gpt-4", "claude", "nope"]),
        },
    )
)
def test_fuzz_usage(gateway: RunningGateway, params: dict[str, Any]) -> None:
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    query = urllib.parse.urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in text.items()})
    _check(_send(gateway, "GET", "/v1/usage?" + query), params)


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(alphabet=string.printable, max_size=200).map(str.encode))
def test_fuzz_raw_bytes_on_every_endpoint(gateway: RunningGateway, raw: bytes) -> None:
    for path in ("/v1/chat/completions", "/v1/retrieve", "/v1/route/explain"):
        _check(_send(gateway, "POST", path, raw), raw)


RICH = {
    "model": "gpt-4",
    "messages": [
        {"role": "system", "content": "be brief", "name": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "hello"}], "name": "ann"},
        {
            "role": "assistant",
            "content": "calling",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        {"role": "user", "content": "and now?"},
    ],
    "user": "u-1",
    "metadata": {"team": "core"},
    "stop": ["END"],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "look",
                "description": "look it up",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
            },
        }
    ],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": {"type": "object"}},
    },
    "service_tier": "auto",
    "reasoning_effort": "low",
    "turnout": {"rag": False, "collection": "docs", "path_prefix": "a/", "tags": ["x"]},
}


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _string_paths(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _string_paths(item, (*path, index))]
    return []


def _with_nul(body: Any, path: tuple[Any, ...]) -> Any:
    copy = json.loads(json.dumps(body))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = parent[path[-1]][:1] + "\x00" + parent[path[-1]][1:]
    return copy


@pytest.mark.parametrize("path", _string_paths(RICH), ids=lambda p: ".".join(map(str, p)))
def test_nul_in_every_string_field_is_answered_or_refused_never_a_500(
    gateway: RunningGateway, path: tuple[Any, ...]
) -> None:
    body = _with_nul(RICH, path)
    for model in ("gpt-4", "claude"):
        response = _send(
            gateway, "POST", "/v1/chat/completions", {**body, "model": model} if path != ("model",) else body
        )
        _check(response, body)
    retrieve = _send(
        gateway, "POST", "/v1/retrieve", {"query": "x", "path_prefix": "a\x00", "tags": ["\x00"]}
    )
    assert retrieve.status_code == 400


def test_after_the_fuzzing_the_ledger_still_records_a_good_request(gateway: RunningGateway) -> None:
    marker = f"after-fuzz-{time.time_ns()}"
    answer = _send(
        gateway,
        "POST",
        "/v1/chat/completions",
        {"model": f"nope-{marker}", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert answer.status_code == 404
    good = _send(
        gateway,
        "POST",
        "/v1/chat/completions",
        {"model": "llama", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert good.status_code == 200
    since = time.time()
    rows = wait_for_rows(
        gateway.settings.database_url.get_secret_value(),
        f"SELECT status, model FROM turnout_usage WHERE model = 'nope-{marker}' "
        f"OR (model = 'llama' AND status = 200 AND ts >= to_timestamp({since - 5}))",
        lambda found: {row["status"] for row in found} >= {404, 200},
    )
    assert {row["status"] for row in rows} >= {404, 200}
    if REPORT:
        Path(REPORT).write_text(json.dumps(dict(sorted(SEEN.items())), indent=1))
