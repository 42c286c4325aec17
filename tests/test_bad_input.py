"""Bad input over HTTP: a 4xx in OpenAI's error shape that says what to fix, and no backend call."""

from __future__ import annotations

import time

import httpx
import pytest

pytestmark = pytest.mark.integration

HI = [{"role": "user", "content": "hi"}]


def post(gateway, body, **headers):
    return httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=body if isinstance(body, bytes) else None,
        json=None if isinstance(body, bytes) else body,
        headers={"authorization": f"Bearer {gateway.admin_key}", **headers},
        timeout=20,
    )


@pytest.mark.parametrize(
    "body,status,needle",
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        ({"messages": HI}, 400, "Missing required parameter: 'model'"),
        ({"model": "auto"}, 400, "'messages'"),
        ({"model": "auto", "messages": []}, 400, "at least one message"),
        ({"model": "auto", "messages": HI, "temperature": "hot"}, 400, "temperature"),
        ({"model": "auto", "messages": HI, "max_tokens": 0}, 400, "max_tokens"),
        ({"model": "auto", "messages": HI, "n": "two"}, 400, "'n'"),
        ({"model": "auto", "messages": [{"role": "wizard", "content": "x"}]}, 400, "role"),
        ({"model": "auto", "messages": HI, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
        (
            {"model": "auto", "messages": HI, "frobnicate": True},
            400,
            "Unrecognized request argument supplied: frobnicate",
        ),
        ({"model": "auto", "messages": HI, "tool_choice": "sometimes"}, 400, "tool_choice"),
        ({"model": "gpt-5", "messages": HI}, 404, "does not exist"),
        # no max_tokens: nothing about "up to 0 more"
        (
            {"model": "tiny", "messages": [{"role": "user", "content": "word " * 100}]},
            400,
            "prompt tokens, over the context window",
        ),
        ({"model": "tiny", "messages": HI, "max_tokens": 100}, 400, "max_tokens"),
        ({"model": "claude", "messages": HI, "n": 2}, 400, "n > 1"),
        # strict types, as OpenAI's: no coercion of strings to booleans or numbers
        ({"model": "auto", "messages": HI, "stream": "yes"}, 400, "'stream'"),
        ({"model": "auto", "messages": HI, "stream": 1}, 400, "'stream'"),
        ({"model": "auto", "messages": HI, "max_tokens": "5"}, 400, "'max_tokens'"),
        ({"model": "auto", "messages": HI, "turnout": {"rag": True, "top_k": "5"}}, 400, "'turnout.top_k'"),
        ({"model": "auto", "messages": HI, "turnout": {"private": "yes"}}, 400, "'turnout.private'"),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
            400,
            "finite",
        ),
        # integers beyond 64 bits anywhere in a forwarded body
        ({"model": "gpt-4", "messages": HI, "seed": 2**70}, 400, "'seed'"),
        ({"model": "gpt-4", "messages": HI, "max_tokens": 2**40}, 400, "'max_tokens'"),
        (
            {
                "model": "gpt-4",
                "messages": HI,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"maximum": 2**70}}}],
            },
            400,
            "64-bit",
        ),
        (
            {
                "model": "gpt-4",
                "messages": HI,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"minimum": -(2**65)}},
                },
            },
            400,
            "64-bit",
        ),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi", "weight": 2**64}]}, 400, "64-bit"),
        (
            b'{"model": "gpt-4", "messages": [{"role": "user", "content": "hi", "x": [1, Infinity]}]}',
            400,
            "finite",
        ),
        # malformed image parts, for every backend
        (
            {
                "model": "claude",
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": "https://x.test/a.png"}]}
                ],
            },
            400,
            "image_url",
        ),
        (
            {
                "model": "claude",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": 5}}]}],
            },
            400,
            "image_url.url",
        ),
        (
            {"model": "gpt-4", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            400,
            "needs 'text'",
        ),
        # an image for a backend that cannot see: what to fix, not a server fault
        (
            {
                "model": "llama",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
                    }
                ],
            },
            400,
            "vision",
        ),
        # retrieval options that name no possible collection, or that Postgres cannot hold
        (
            {"model": "auto", "messages": HI, "turnout": {"rag": True, "collection": "../../etc/passwd"}},
            400,
            "collection",
        ),
        (
            {"model": "auto", "messages": HI, "turnout": {"rag": True, "collection": "docs; DROP TABLE x"}},
            400,
            "collection",
        ),
        (
            {"model": "auto", "messages": HI, "turnout": {"rag": True, "collection": "d\u043ecs"}},
            400,
            "collection",
        ),
        ({"model": "auto", "messages": HI, "turnout": {"rag": True, "path_prefix": "a\u0000b"}}, 400, "NUL"),
        ({"model": "auto", "messages": HI, "turnout": {"rag": True, "tags": ["hr\u0000"]}}, 400, "NUL"),
        ({"model": "auto", "messages": HI, "service_tier": "fastest"}, 400, "service_tier"),
        ({"model": "auto", "messages": HI, "logit_bias": {"hello": 5}}, 400, "logit_bias"),
        # what OpenAI refuses and a new user's trial saw sent upstream (2026-12-07)
        ({"model": "auto", "messages": [{"role": "user", "content": None}]}, 400, "needs 'content'"),
        (
            {"model": "auto", "messages": [*HI, {"role": "tool", "content": "42"}]},
            400,
            "needs 'tool_call_id'",
        ),
        (
            {"model": "auto", "messages": HI, "tool_choice": {"type": "function", "function": {"name": "f"}}},
            400,
            "no 'tools'",
        ),
        # a tool result with no call before it went on merged into the user's text (a trial, the
        # thirty-sixth session); OpenAI refuses it, and a result for a call that was not made
        (
            {
                "model": "claude",
                "messages": [*HI, {"role": "tool", "tool_call_id": "c1", "content": "sunny"}],
            },
            400,
            "answers no call",
        ),
        (
            {
                "model": "auto",
                "messages": [
                    *HI,
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                        ],
                    },
                    {"role": "tool", "tool_call_id": "c2", "content": "sunny"},
                ],
            },
            400,
            "'c2' is not among the 'tool_calls'",
        ),
        # what OpenAI refuses and a third trial saw taken (2026-12-08): options of a stream that is
        # not one, logprobs' count without logprobs
        (
            {"model": "auto", "messages": HI, "stream_options": {"include_usage": True}},
            400,
            "only allowed when 'stream' is true",
        ),
        ({"model": "auto", "messages": HI, "top_logprobs": 3}, 400, "only allowed when 'logprobs' is true"),
    ],
)
def test_bad_requests(gateway, emulators, body, status, needle):
    response = post(gateway, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert needle in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert sum(e.script.requests for e in (emulators.openai, emulators.anthropic, emulators.vllm)) == 0


def test_body_over_the_limit_is_413(gateway, emulators):
    big = {
        "model": "auto",
        "messages": [{"role": "user", "content": "x" * (gateway.settings.max_body_bytes + 10)}],
    }
    response = post(gateway, big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert emulators.anthropic.script.requests == 0


def test_unknown_path_and_method_are_openai_errors(gateway):
    missing = httpx.get(gateway.base_url + "/v1/nope")
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = httpx.get(gateway.base_url + "/v1/chat/completions")
    assert wrong.status_code == 405 and "error" in wrong.json()
    assert wrong.headers["allow"] == "POST"  # RFC 9110: a 405 says which methods the resource takes
    posted = httpx.post(
        gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {gateway.admin_key}"}
    )
    assert posted.status_code == 405 and set(posted.headers["allow"].split(", ")) == {"GET", "HEAD"}
    head = httpx.head(
        gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {gateway.admin_key}"}
    )
    assert head.status_code == 200 and head.content == b""  # as GET, without the body


def test_context_window_filters_backends_before_failing(gateway, emulators):
    long = "word " * 100  # over `tiny`'s 64-token window, well within llama's
    response = post(gateway, {"model": "auto", "messages": [{"role": "user", "content": long}]})
    assert response.status_code == 200


def test_a_bug_on_the_chat_path_is_a_500_in_openai_shape(gateway, monkeypatch):
    def broken(body: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("router.http.app.parse_chat_request", broken)  # chat is dispatched past Starlette
    response = post(gateway, {"model": "auto", "messages": HI})
    assert response.status_code == 500
    error = response.json()["error"]
    assert "failed unexpectedly" in error["message"] and "a bug" not in error["message"]


@pytest.mark.parametrize("value", ["NaN", "inf", "-5", "1e999", "soon"])
def test_latency_budget_must_be_a_positive_finite_number(gateway, emulators, value):
    response = post(gateway, {"model": "auto", "messages": HI}, **{"x-turnout-latency-budget-ms": value})
    assert (
        response.status_code == 400 and "x-turnout-latency-budget-ms" in response.json()["error"]["message"]
    )
    assert sum(e.script.requests for e in (emulators.openai, emulators.anthropic, emulators.vllm)) == 0


@pytest.mark.parametrize(
    "body,needle",
    [
        ({"query": "x", "collection": "../../etc/passwd"}, "collection"),
        ({"query": "x", "collection": "x' OR '1'='1"}, "collection"),
        ({"query": "x", "collection": "d\u043ecs"}, "collection"),
        ({"query": "x", "path_prefix": "a\u0000"}, "NUL"),
        ({"query": "x", "tags": ["\u0000"]}, "NUL"),
        ({"query": "x", "top_k": "5"}, "top_k"),
    ],
)
def test_retrieve_refuses_what_no_store_could_take_with_a_400(gateway, body, needle):
    response = httpx.post(
        gateway.base_url + "/v1/retrieve",
        json=body,
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        timeout=20,
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "query,param",
    [
        ("since=1000000d", "since"),
        ("since=0d", "since"),  # an empty window, as 0s was (a fourth trial: 0d answered 200)
        ("since=9999-12-31T23:59:59-14:00", "since"),
        ("since=0001-01-01T00:00:00%2B01:00", "since"),
        ("key=a%00b", "key"),
        ("team=a%00b", "team"),
        ("by=colour", "by"),
    ],
)
def test_usage_query_mistakes_are_400s(gateway, query, param):
    response = httpx.get(
        gateway.base_url + "/v1/usage?" + query,
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        timeout=20,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_a_request_the_ledger_cannot_store_as_sent_does_not_stop_the_ledger(gateway, emulators):
    """A NUL in `model` once made every later ledger batch fail (Postgres text takes no NUL)."""
    from tests.conftest import wait_for_rows

    marker = f"ledger-{time.time_ns()}"
    bad = post(gateway, {"model": f"auto\u0000{marker}", "messages": HI})
    assert bad.status_code == 404
    good = post(gateway, {"model": "llama", "messages": HI, "user": marker})
    assert good.status_code == 200
    url = gateway.settings.database_url.get_secret_value()
    rows = wait_for_rows(
        url,
        f"SELECT model, status FROM turnout_usage WHERE model LIKE '%{marker}' OR "
        f"(model = 'llama' AND ts > now() - interval '1 minute') ORDER BY id",
        lambda found: (
            any(row["status"] == 404 for row in found) and any(row["status"] == 200 for row in found)
        ),
    )
    statuses = {row["status"] for row in rows}
    assert {404, 200} <= statuses
    assert any(row["model"] == f"auto\ufffd{marker}" for row in rows)
