"""OpenAI's Files and Batch APIs with the official openai SDK: upload, create, poll, download the
output and error files; lines routed, gated and ledgered like live requests; invalid input files;
cancel; the gateway's workers yield to interactive traffic; a `turnout worker` killed mid-batch is
replaced and the batch resumes without redoing finished lines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    ADMIN_KEY,
    Emulators,
    RunningGateway,
    fetch,
    free_port,
    provider_settings,
    serve_in_thread,
    stream_chat,
)

pytestmark = pytest.mark.integration


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def _line(custom_id: str, model: str, text: str, **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": messages, "max_tokens": 20, **body},
    }


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=ADMIN_KEY, max_retries=0, timeout=30)


def _wait(client: openai.OpenAI, batch_id: str, until: tuple[str, ...], timeout_s: float = 60) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in until or time.monotonic() > deadline:
            return batch
        time.sleep(0.2)


def _submit(client: openai.OpenAI, lines: list[dict[str, Any]]) -> Any:
    uploaded = client.files.create(file=("nightly.jsonl", _jsonl(lines)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"job": "nightly"},
    )


@pytest.fixture
def working(pg_url: str, gateway: RunningGateway, emulators: Emulators) -> Iterator[str]:
    """A second gateway on the same database whose batch workers run (the session's do not)."""
    from router.http.app import create_app
    from router.settings import Settings

    settings = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=gateway.settings.policy,
        home=gateway.settings.home,
        usage_flush_seconds=0.1,
        embedder="hash-64",
        batch_concurrency=3,
        batch_yield_at=1,
        limits_window_s=2,
        **provider_settings(emulators),
    )
    server, thread = serve_in_thread(create_app(settings), port := free_port())
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(15)


def test_a_batch_runs_end_to_end_with_the_sdk(working: str, gateway: RunningGateway) -> None:
    client = _client(working)
    models = ["auto", "llama", "gpt-4", "claude"]
    lines = [_line(f"req-{i}", models[i % 4], f"Question {i}: what is {i} plus {i}?") for i in range(24)]
    lines.insert(5, _line("bad", "auto", "An unknown field.", bogus=1))
    lines.append(_line("private", "gpt-4", "Mail maria.kowalska@gmail.com the invoice."))
    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    batch = _wait(client, _submit(client, lines).id, ("completed", "failed", "cancelled"))
    assert batch.status == "completed", batch
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (
        26,
        25,
        1,
    )
    assert batch.metadata == {"job": "nightly"} and batch.completed_at and batch.output_file_id
    output = [orjson.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    assert [entry["custom_id"] for entry in output] == [
        line["custom_id"] for line in lines if line["custom_id"] != "bad"
    ]
    assert all(entry["response"]["status_code"] == 200 for entry in output)
    assert all(entry["response"]["body"]["choices"][0]["message"]["content"] for entry in output)
    errors = [orjson.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert [entry["custom_id"] for entry in errors] == ["bad"]
    assert (
        errors[0]["response"]["status_code"] == 400
        and errors[0]["response"]["body"]["error"]["param"] == "bogus"
    )
    private = next(entry for entry in output if entry["custom_id"] == "private")
    assert private["response"]["body"]["model"] == "meta-llama/Llama-3.1-8B-Instruct"  # the gate applied
    # the batch's usage is its answered lines' tokens (a fourth trial: it was always null)
    usages = [entry["response"]["body"]["usage"] for entry in output]
    assert batch.usage is not None and batch.usage.input_tokens == sum(u["prompt_tokens"] for u in usages)
    assert batch.usage.output_tokens == sum(u["completion_tokens"] for u in usages) > 0
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens
    deadline = time.monotonic() + 10
    rows: list[Any] = []
    while time.monotonic() < deadline and len(rows) < 26:
        rows = fetch(url, f"SELECT status FROM turnout_usage WHERE id > {before['id']}")
        time.sleep(0.1)
    assert sum(row["status"] == 200 for row in rows) >= 25  # every line is a ledger row
    assert batch.id in [item.id for item in client.batches.list(limit=100)]


def test_files_are_listed_read_and_deleted(gateway: RunningGateway) -> None:
    client = _client(gateway.base_url)
    uploaded = client.files.create(file=("a.jsonl", _jsonl([_line("x", "auto", "hi")])), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    assert uploaded.id in [item.id for item in client.files.list()]
    assert client.files.retrieve(uploaded.id).filename == "a.jsonl"
    assert orjson.loads(client.files.content(uploaded.id).text.splitlines()[0])["custom_id"] == "x"
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.BadRequestError):
        client.files.create(file=("a.jsonl", b"{}"), purpose="fine-tune")


def test_files_are_listed_by_page_and_purpose(working: str, gateway: RunningGateway) -> None:
    """A trial's `?limit=2` got every file with has_more false, `?purpose=batch_output` the inputs
    too, and a batch's output file taken as a batch's input made a failed batch, not a 400."""
    client = _client(working)
    ids = [
        client.files.create(file=(f"{n}.jsonl", _jsonl([_line(n, "llama", "hi")])), purpose="batch").id
        for n in ("p1", "p2", "p3")
    ]
    first = client.files.list(limit=2)
    assert [item.id for item in first.data] == ids[:0:-1] and first.has_more
    rest = client.files.list(limit=2, after=first.data[-1].id)
    assert rest.data[0].id == ids[0]
    oldest_first = client.files.list(limit=3, order="asc", after=ids[0])
    assert [item.id for item in oldest_first.data][:2] == ids[1:]
    both = [_line("o", "llama", "hi"), _line("e", "llama", "hi", bogus=1)]  # an output and an error file
    done = _wait(client, _submit(client, both).id, ("completed",))
    outputs = client.files.list(purpose="batch_output").data
    assert outputs and {item.purpose for item in outputs} == {"batch_output"}
    assert done.output_file_id in [item.id for item in outputs]
    # written in one transaction, the two files share a time: paging one by one still reaches both
    newest = client.files.list(limit=1)
    after = client.files.list(limit=1, after=newest.data[0].id)
    assert {newest.data[0].id, after.data[0].id} == {done.output_file_id, done.error_file_id}
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(
            input_file_id=done.output_file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert "purpose 'batch_output'" in refused.value.message
    with pytest.raises(openai.BadRequestError):
        client.files.list(limit=0)


def test_an_invalid_input_file_fails_the_batch_with_each_lines_problem(gateway: RunningGateway) -> None:
    client = _client(gateway.base_url)
    content = b'{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}}\nnot json\n'
    content += orjson.dumps(_line("a", "auto", "twice")) + b"\n"
    content += orjson.dumps({**_line("c", "auto", "hi"), "url": "/v1/embeddings"}) + b"\n"
    uploaded = client.files.create(file=("bad.jsonl", content), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.failed_at and batch.errors is not None
    assert [(error.line, error.code) for error in batch.errors.data] == [
        (2, "invalid_json_line"),
        (3, "invalid_request"),
        (4, "invalid_request"),
    ]
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_cancel_stops_new_lines_and_keeps_finished_ones(working: str, emulators: Emulators) -> None:
    client = _client(working)
    emulators.vllm.script.think_ms = 150
    try:
        batch = _submit(client, [_line(f"slow-{i}", "llama", f"Slow question {i}") for i in range(40)])
        assert _wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed > 0, 15)
        cancelling = client.batches.cancel(batch.id)
        assert cancelling.status in ("cancelling", "cancelled")
        done = _wait(client, batch.id, ("cancelled",), timeout_s=20)
    finally:
        emulators.vllm.script.think_ms = 0
    assert done.status == "cancelled" and done.cancelled_at
    assert 0 < done.request_counts.completed < 40
    assert len(client.files.content(done.output_file_id).text.splitlines()) == done.request_counts.completed


def test_the_gateways_workers_yield_to_interactive_requests(
    working: str, gateway: RunningGateway, emulators: Emulators
) -> None:
    client = _client(working)
    emulators.vllm.script.think_ms = 1000  # one interactive request held in flight on the worker's gateway
    emulators.vllm.script.token_ms = 150
    holder = threading.Thread(target=stream_chat, args=(working, ADMIN_KEY, "llama", "Hold on.", 30))
    holder.start()
    try:
        time.sleep(0.5)
        batch = _submit(client, [_line(f"q-{i}", "gpt-4", f"Quick question {i}") for i in range(4)])
        time.sleep(1.0)
        assert client.batches.retrieve(batch.id).request_counts.completed == 0  # yields while it is in flight
    finally:
        holder.join(30)
        emulators.vllm.script.think_ms = emulators.vllm.script.token_ms = 0
    assert _wait(client, batch.id, ("completed",), timeout_s=20).request_counts.completed == 4


def test_a_killed_worker_is_replaced_and_finished_lines_are_not_redone(
    gateway: RunningGateway, emulators: Emulators
) -> None:
    client = _client(gateway.base_url)
    settings = gateway.settings
    env = {
        **os.environ,
        "TURNOUT_DATABASE_URL": settings.database_url.get_secret_value(),
        "TURNOUT_POLICY": str(settings.policy),
        "TURNOUT_HOME": str(settings.home),
        "TURNOUT_EMBEDDER": "hash-64",
        "TURNOUT_BATCH_LEASE_S": "2",
        "OPENAI_API_KEY": "sk-openai-test",
        "OPENAI_BASE_URL": emulators.openai.base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "ANTHROPIC_BASE_URL": emulators.anthropic.base_url,
        "VLLM_BASE_URL": emulators.vllm.base_url,
    }
    emulators.vllm.script.think_ms = 100
    batch = _submit(client, [_line(f"r-{i}", "llama", f"Resumable question {i}") for i in range(30)])

    def worker(*more: str) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "router.cli", "worker", "--concurrency", "2", *more]
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = worker()
    try:
        progress = _wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed >= 6, 60)
        assert progress, "the first worker finished no line"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        url = settings.database_url.get_secret_value()
        finished = {
            row["custom_id"]
            for row in fetch(
                url,
                f"SELECT custom_id FROM turnout_batch_lines WHERE batch_id = '{batch.id}' AND state = 'done'",
            )
        }
        metrics_port = free_port()
        second = worker("--metrics-port", str(metrics_port))
        try:
            done = _wait(client, batch.id, ("completed",), timeout_s=60)
            exposition = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
    finally:
        if first.poll() is None:
            first.kill()
        emulators.vllm.script.think_ms = 0
    assert done.status == "completed" and done.request_counts.completed == 30
    ran = sum(  # the worker's own /metrics counts the lines it ran, as batch requests
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "turnout_requests_total" and sample.labels["api"] == "batch"
    )
    assert ran >= 30 - len(finished) > 0
    output = [
        orjson.loads(line)["custom_id"]
        for line in client.files.content(done.output_file_id).text.splitlines()
    ]
    assert output == [f"r-{i}" for i in range(30)]
    asked = [body["messages"][-1]["content"] for body in emulators.vllm.received]
    for custom_id in finished:  # a line finished before the kill was asked once, never again
        assert asked.count(f"Resumable question {custom_id[2:]}") == 1, custom_id


def _wait_for(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_batches_need_a_key_and_see_only_their_own(gateway: RunningGateway) -> None:
    from tests.test_limits_gateway import key_with

    admin = _client(gateway.base_url)
    batch = _submit(admin, [_line("only", "auto", "mine")])
    _, key = key_with(gateway, "batch-stranger")
    stranger = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        stranger.files.content(batch.input_file_id)
    assert httpx.get(gateway.base_url + "/v1/batches").status_code == 401


def test_a_nul_in_a_url_is_a_400_not_a_500(gateway: RunningGateway) -> None:
    """Postgres refuses a NUL in text, so an id or cursor holding one (a fuzzer's `after=%00`, found
    by the OpenAPI test) is refused in OpenAI's error JSON before any query, wherever it is."""
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    for path, param in (
        ("/v1/batches?limit=2&after=batch_%00x", "after"),
        ("/v1/batches/batch_%00x", None),
        ("/v1/files/file-%00", None),
        ("/v1/models/%00", None),
    ):
        reply = httpx.get(gateway.base_url + path, headers=headers)
        assert reply.status_code == 400, path
        error = reply.json()["error"]
        assert (
            error["type"] == "invalid_request_error" and "NUL" in error["message"] and error["param"] == param
        )
    assert httpx.get(gateway.base_url + "/v1/batches?after=%00").status_code == 400  # before the key
    host, port = gateway.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:  # a NUL not percent-encoded
        raw.sendall(b"GET /v1/batches?after=a\x00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert raw.recv(64).startswith(b"HTTP/1.1 400")
    team = httpx.put(gateway.base_url + "/v1/admin/teams/a%00b", headers=headers, json={"limits": {}})
    assert team.status_code == 400 and team.json()["error"]["param"] is None
    blank = httpx.put(gateway.base_url + "/v1/admin/teams/%20", headers=headers, json={"limits": {}})
    assert blank.status_code == 404 and blank.json()["error"]["param"] == "name"  # a team " " was made
    chat = httpx.post(gateway.base_url + "/v1/chat/completions?x=%00", headers=headers, json={})
    assert chat.status_code == 400 and chat.json()["error"]["param"] == "x"
    for query in ("%00=1", "a%00b=1", "=%00"):  # a name holding the NUL is not echoed back
        error = httpx.get(gateway.base_url + "/v1/batches?" + query, headers=headers).json()["error"]
        assert error["param"] is None and "\x00" not in error["message"], query
    assert httpx.get(gateway.base_url + "/v1/batches?after=batch_%2500x", headers=headers).status_code == 200


def test_lines_refused_by_the_keys_limits_wait_and_then_run(working: str, gateway: RunningGateway) -> None:
    from tests.test_limits_gateway import key_with

    _, key = key_with(gateway, "batch-limited", limits={"rpm": 2})
    client = openai.OpenAI(base_url=working + "/v1", api_key=key, max_retries=0, timeout=30)
    batch = _submit(client, [_line(f"lim-{i}", "llama", f"Limited question {i}") for i in range(5)])
    done = _wait(client, batch.id, ("completed",), timeout_s=40)
    assert done.status == "completed" and done.request_counts.completed == 5 and done.error_file_id is None


def test_a_line_alone_over_the_keys_token_limit_fails_at_once(working: str, gateway: RunningGateway) -> None:
    """A trial's line asking for more tokens than the key's tpm was requeued until the batch
    expired (24 h), holding the key's other lines back; it fails now, and the others run."""
    from tests.test_limits_gateway import key_with

    _, key = key_with(gateway, "batch-tpm", limits={"tpm": 100})
    client = openai.OpenAI(base_url=working + "/v1", api_key=key, max_retries=0, timeout=30)
    lines = [
        _line("small-1", "llama", "Hi"),
        _line("huge", "llama", "Hi", max_tokens=200),
        _line("small-2", "llama", "Yo"),
    ]
    batch = _submit(client, lines)
    done = _wait(client, batch.id, ("completed",), timeout_s=40)
    assert done.request_counts.completed == 2 and done.request_counts.failed == 1
    errors = [orjson.loads(line) for line in client.files.content(done.error_file_id).text.splitlines()]
    assert [e["custom_id"] for e in errors] == ["huge"]
    assert errors[0]["response"]["status_code"] == 400
    assert errors[0]["response"]["body"]["error"]["code"] == "tokens_over_limit"


def test_an_upload_over_the_limit_is_a_413_even_when_chunked(
    pg_url: str, gateway: RunningGateway, emulators: Emulators
) -> None:
    from router.http.app import create_app
    from router.settings import Settings

    settings = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=gateway.settings.policy,
        home=gateway.settings.home,
        embedder="hash-64",
        batch_concurrency=0,
        max_file_bytes=4096,
        **provider_settings(emulators),
    )
    server, thread = serve_in_thread(create_app(settings), port := free_port())
    try:
        boundary = "b0undary"
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        head += f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jsonl"\r\n\r\n'

        def chunks() -> Iterator[bytes]:
            yield head.encode()
            for _ in range(10):
                yield b"x" * 1024
            yield f"\r\n--{boundary}--\r\n".encode()

        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/files",
            content=chunks(),  # no Content-Length: sent chunked
            headers={
                "authorization": f"Bearer {ADMIN_KEY}",
                "content-type": f"multipart/form-data; boundary={boundary}",
            },
            timeout=30,
        )
        assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    finally:
        server.should_exit = True
        thread.join(15)


def test_a_revoked_keys_waiting_lines_fail_at_once(
    working: str, gateway: RunningGateway, emulators: Emulators
) -> None:
    """A fourth trial (2026-12-08): after a key was revoked its batch's remaining lines failed one
    by one, each through the whole request path (4 a second: hours for a large batch). The first
    401 now fails the key's other waiting lines with it."""
    from router.pipeline.batches import _workers
    from tests.test_limits_gateway import key_with

    key_id, key = key_with(gateway, "batch-revoked")
    client = openai.OpenAI(base_url=working + "/v1", api_key=key, max_retries=0, timeout=30)
    emulators.vllm.script.think_ms = 150
    try:
        batch = _submit(client, [_line(f"rev-{i}", "llama", f"Question {i}") for i in range(60)])
        assert _wait_for(lambda: client.batches.retrieve(batch.id).request_counts.completed > 0, 15)
        ran_before = sum(worker.lines_done for worker in _workers)
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        assert httpx.delete(working + f"/v1/admin/keys/{key_id}", headers=admin).status_code == 200
        url = gateway.settings.database_url.get_secret_value()
        still = f"SELECT 1 FROM turnout_batch_lines WHERE batch_id = '{batch.id}' AND state IN ('pending', 'running')"
        assert _wait_for(lambda: not fetch(url, still), 60)
    finally:
        emulators.vllm.script.think_ms = 0
    rows = fetch(url, f"SELECT state, result FROM turnout_batch_lines WHERE batch_id = '{batch.id}'")
    failed = [row for row in rows if row["state"] == "failed"]
    assert failed and all(row["result"]["status_code"] == 401 for row in failed)
    assert len({row["result"]["request_id"] for row in failed}) == len(failed)  # each line its own id
    ran_after = sum(worker.lines_done for worker in _workers)
    assert ran_after - ran_before < len(failed)  # most failed without being run one by one
