"""Faults played by the emulators over real HTTP: retries, Retry-After, fallback, timeouts, breaker,
and streams that break before or after their first byte."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

pytestmark = pytest.mark.integration

HELLO = [{"role": "user", "content": "hello"}]
FAST = {"x-turnout-latency-budget-ms": "1000"}  # the default policy's `fast` route: haiku, then llama


def test_429_with_retry_after_is_retried_on_the_same_backend(gateway, emulators):
    emulators.anthropic.fault("status", status=429, retry_after=0.4)
    started = time.monotonic()
    raw = gateway.client().chat.completions.with_raw_response.create(model="haiku", messages=HELLO)
    assert time.monotonic() - started >= 0.4
    assert raw.headers["x-turnout-backend"] == "haiku" and raw.headers["x-turnout-attempts"] == "2"
    assert emulators.anthropic.script.requests == 2


def test_retry_after_beyond_the_cap_goes_to_the_client_as_429(gateway, emulators):
    emulators.openai.fault("status", status=429, retry_after=30)
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client().chat.completions.create(model="gpt-4", messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "30"
    assert emulators.openai.script.requests == 1


def test_5xx_on_every_attempt_falls_back_to_the_next_backend(gateway, emulators):
    emulators.anthropic.fault("status", status=500)
    emulators.anthropic.fault("status", status=529)
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, extra_headers=FAST
    )
    assert raw.headers["x-turnout-backend"] == "llama" and raw.headers["x-turnout-route"] == "fast"
    assert raw.headers["x-turnout-attempts"] == "3"
    assert emulators.anthropic.script.requests == 2 and emulators.vllm.script.requests == 1


def test_connection_dropped_before_answer_falls_back(gateway, emulators):
    emulators.openai.fault("drop_before")
    emulators.openai.fault("drop_before")
    raw = gateway.client().chat.completions.with_raw_response.create(model="gpt-4-ha", messages=HELLO)
    assert raw.headers["x-turnout-backend"] == "llama"


def test_first_byte_timeout_falls_back(gateway, emulators):
    emulators.anthropic.fault("hang", seconds=3)
    emulators.anthropic.fault("hang", seconds=3)
    started = time.monotonic()
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, extra_headers=FAST
    )
    assert raw.headers["x-turnout-backend"] == "llama"
    assert time.monotonic() - started < 4.5  # two 1.5 s first-byte timeouts, not two 3 s hangs


def test_every_backend_failing_is_a_502_in_openai_shape(gateway, emulators):
    for _ in range(2):
        emulators.anthropic.fault("status", status=500)
        emulators.vllm.fault("status", status=503)
    response = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {gateway.admin_key}", **FAST},
        json={"model": "auto", "messages": HELLO},
        timeout=20,
    )
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["type"] == "upstream_error" and "haiku" in error["message"] and "llama" in error["message"]


def test_upstream_timeout_with_nothing_left_is_504(gateway, emulators):
    emulators.openai.fault("hang", seconds=3)
    emulators.openai.fault("hang", seconds=3)
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client().chat.completions.create(model="gpt-4", messages=HELLO)
    assert caught.value.status_code == 504


def test_upstream_caller_error_is_returned_without_fallback(gateway, emulators):
    emulators.openai.fault("status", status=400, param="messages", code="context_length_exceeded")
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client().chat.completions.create(model="gpt-4-ha", messages=HELLO)
    assert emulators.vllm.script.requests == 0
    # the field and the code the backend named reach the caller (a third trial: both were null)
    assert (refused.value.param, refused.value.code) == ("messages", "context_length_exceeded")


def test_a_backend_that_cannot_take_the_request_is_passed_over_for_the_next(gateway, emulators):
    """An Anthropic backend refuses a conversation with no user turn before sending it; under `auto`
    the route's next backend takes it (a new user's empty message got a 400 naming Anthropic), and a
    named Anthropic backend with nothing after it still answers 400."""
    client = gateway.client()
    empty = [{"role": "user", "content": ""}]
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=empty)
    assert raw.headers["x-turnout-backend"] != "haiku" and raw.http_response.status_code == 200
    assert raw.headers["x-turnout-attempts"] == "1"  # haiku refused it unsent: no attempt
    with pytest.raises(openai.BadRequestError, match="at least one user or assistant message"):
        client.chat.completions.create(model="haiku", messages=empty)


def test_circuit_opens_skips_the_backend_then_probes_after_cooldown(gateway, emulators):
    client = gateway.client()
    for _ in range(3):  # one retry each: the second request's first failure is the third, and opens it
        emulators.openai.fault("status", status=500)
    for _ in range(2):
        assert (
            client.chat.completions.with_raw_response.create(model="gpt-4-ha", messages=HELLO).headers[
                "x-turnout-backend"
            ]
            == "llama"
        )
    failed_calls = emulators.openai.script.requests
    assert failed_calls == 3
    raw = client.chat.completions.with_raw_response.create(model="gpt-4-ha", messages=HELLO)
    assert raw.headers["x-turnout-backend"] == "llama" and emulators.openai.script.requests == failed_calls
    assert raw.headers["x-turnout-attempts"] == "1"  # the open circuit's backend was not called (it said 2)
    ready = httpx.get(gateway.base_url + "/readyz").json()
    assert ready["backends"]["gpt-4-ha"]["circuit"] == "open"
    time.sleep(1.1)  # the test policy's cooldown
    raw = client.chat.completions.with_raw_response.create(model="gpt-4-ha", messages=HELLO)
    assert raw.headers["x-turnout-backend"] == "gpt-4-ha"
    assert httpx.get(gateway.base_url + "/readyz").json()["backends"]["gpt-4-ha"]["circuit"] == "closed"


def test_stream_failing_before_first_byte_falls_back(gateway, emulators):
    emulators.anthropic.fault("status", status=500)
    emulators.anthropic.fault("drop_before")
    with gateway.client().chat.completions.with_streaming_response.create(
        model="auto", messages=HELLO, stream=True, extra_headers=FAST
    ) as response:
        assert response.headers["x-turnout-backend"] == "llama"
        text = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert text.endswith("hello")


@pytest.mark.parametrize("model,emulator", [("gpt-4", "openai"), ("claude", "anthropic")])
def test_stream_broken_mid_way_ends_with_an_error_event(gateway, emulators, model, emulator):
    getattr(emulators, emulator).fault("drop_mid_stream", after_chunks=4)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in gateway.client().chat.completions.create(model=model, messages=HELLO, stream=True):
            received.append(chunk)
    assert received, "the first chunks were relayed before the break"
    assert "stream" in str(caught.value.message)


def test_mid_stream_break_never_ends_with_done(gateway, emulators):
    emulators.vllm.fault("drop_mid_stream", after_chunks=3)
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        json={"model": "llama", "messages": HELLO, "stream": True},
        timeout=20,
    ) as response:
        body = response.read().decode()
    assert response.status_code == 200
    assert "[DONE]" not in body and '"code":"stream_interrupted"' in body


def test_connection_refused_falls_back(gateway, emulators):
    raw = gateway.client().chat.completions.with_raw_response.create(model="refused", messages=HELLO)
    assert raw.headers["x-turnout-backend"] == "llama" and raw.headers["x-turnout-attempts"] == "3"


@pytest.mark.parametrize(
    ("model", "variable", "wire"),
    [
        ("keyless", "TURNOUT_TEST_UNSET_KEY", "openai"),
        # vLLM needs no key, but a variable the policy names must be set (a trial's went out keyless)
        ("keyless-local", "TURNOUT_TEST_UNSET_LOCAL_KEY", "vllm"),
    ],
)
def test_backend_without_its_key_is_a_503(gateway, emulators, model, variable, wire):
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client().chat.completions.create(model=model, messages=HELLO)
    assert caught.value.status_code == 503 and variable in caught.value.message
    assert httpx.get(gateway.base_url + "/readyz").json()["backends"][model]["ready"] is False
    assert getattr(emulators, wire).script.requests == 0


def test_client_leaving_mid_stream_is_recorded_as_499(gateway, emulators):
    from tests.conftest import fetch, wait_for_rows

    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    emulators.vllm.script.token_ms = 200  # a slow stream the client abandons
    try:
        with httpx.stream(
            "POST",
            gateway.base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {gateway.admin_key}"},
            json={
                "model": "llama",
                "messages": [{"role": "user", "content": "leave early please"}],
                "stream": True,
                "user": "leaver",
            },
            timeout=20,
        ) as response:
            next(response.iter_bytes())
        # rows since the request began (another test's late stream may land beside it): one is ours.
        # The stream stays slow until then: sped up at once, it could end whole before the gateway
        # has seen the client leave (a race a loaded machine loses).
        sql = f"SELECT status, error FROM turnout_usage WHERE backend = 'llama' AND stream AND id > {before['id']}"
        rows = wait_for_rows(url, sql, lambda r: any(x["status"] == 499 for x in r))
    finally:
        emulators.vllm.script.token_ms = 0
    assert [(row["status"], row["error"]) for row in rows if row["status"] == 499] == [
        (499, "client disconnected")
    ]


def test_a_fault_of_the_gateway_mid_stream_is_an_error_event_a_log_line_and_a_500_row(
    gateway, emulators, monkeypatch, caplog
):
    """Not an upstream error and not the client leaving: said to the client, logged, and ledgered
    as 500 (it used to be recorded as 499 'client disconnected', with no log line)."""
    import logging

    import router.http.app
    from tests.conftest import stream_chat, wait_for_rows
    from tests.test_limits_gateway import key_with

    key_id, key = key_with(gateway, "relay-fault")
    real = router.http.app._events
    calls = {"n": 0}

    def failing(block: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("a bug in the relay")
        return real(block)

    monkeypatch.setattr(router.http.app, "_events", failing)
    caplog.set_level(logging.ERROR, logger="turnout.app")
    emulators.vllm.script.token_ms = 5
    try:
        _, body = stream_chat(gateway.base_url, key, "llama", "a b c d e f g")
    finally:
        emulators.vllm.script.token_ms = 0
    assert '"code":"stream_interrupted"' in body and "[DONE]" not in body
    assert any("stream relay" in record.getMessage() and record.exc_info for record in caplog.records)
    rows = wait_for_rows(
        gateway.settings.database_url.get_secret_value(),
        f"SELECT status, error FROM turnout_usage WHERE key_id = '{key_id}'",
    )
    assert rows[0]["status"] == 500 and "RuntimeError" in rows[0]["error"]
