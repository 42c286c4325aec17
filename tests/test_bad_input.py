"""Bad input over HTTP: a 4xx in OpenAI's error shape that says what to fix, and no backend call."""

from __future__ import annotations

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
        ({"model": "tiny", "messages": [{"role": "user", "content": "word " * 100}]}, 400, "context window"),
        ({"model": "tiny", "messages": HI, "max_tokens": 100}, 400, "max_tokens"),
        ({"model": "claude", "messages": HI, "n": 2}, 400, "n > 1"),
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


def test_context_window_filters_backends_before_failing(gateway, emulators):
    long = "word " * 100  # over `tiny`'s 64-token window, well within llama's
    response = post(gateway, {"model": "auto", "messages": [{"role": "user", "content": long}]})
    assert response.status_code == 200


def test_a_bug_on_the_chat_path_is_a_500_in_openai_shape(gateway, monkeypatch):
    def broken(body: bytes) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("router.app.parse_chat_request", broken)  # chat is dispatched past Starlette
    response = post(gateway, {"model": "auto", "messages": HI})
    assert response.status_code == 500
    error = response.json()["error"]
    assert "failed unexpectedly" in error["message"] and "a bug" not in error["message"]
