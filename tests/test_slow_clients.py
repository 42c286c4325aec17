"""Slow and oversized clients over raw sockets: a head over the limit is 431, a head or body that
does not arrive in time is 408, each in OpenAI's error shape on a closed connection, with one log
line; a client that leaves mid-body costs one line and no traceback."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, Emulators, free_port, provider_settings, serve_in_thread
from tests.conftest import test_policy as make_test_policy

pytestmark = pytest.mark.integration

HEAD_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def strict(
    pg_url: str, emulators_session: Emulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    from router.http.app import create_app
    from router.settings import Settings

    home: Path = tmp_path_factory.mktemp("strict")
    settings = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=make_test_policy(emulators_session, home / "policy.yaml"),
        home=home,
        max_header_bytes=16 * 1024,
        header_timeout_s=HEAD_TIMEOUT_S,
        body_timeout_s=BODY_TIMEOUT_S,
        embedder="hash-64",  # retrieval is not what this gateway is for: no model to warm
        **provider_settings(emulators_session),
    )
    server, thread = serve_in_thread(create_app(settings), port := free_port())
    yield port
    server.should_exit = True
    thread.join(15)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    return sock


def _read_all(sock: socket.socket, limit_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (bounded in time)."""
    sock.settimeout(limit_s)
    data = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not piece:
            break
        data += piece
    return data


def _read_response(sock: socket.socket, limit_s: float = 5.0) -> bytes:
    """One whole response on a kept-alive connection: its head, then Content-Length bytes of body
    (a response may arrive in more than one segment)."""
    sock.settimeout(limit_s)
    data = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        head, found, body = data.partition(b"\r\n\r\n")
        if found:
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if length and len(body) >= int(length.group(1)):
                return data
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _status_and_error(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)["error"]


def test_a_head_over_the_limit_is_431_and_the_connection_closes(strict: int) -> None:
    sock = _connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    try:  # 16 MB of one header, as the probe did; the server stops reading long before
        while sent < 16 * 1024 * 1024:
            sock.sendall(b"a" * 65536)
            sent += 65536
    except (BrokenPipeError, ConnectionResetError):
        pass
    raw = _read_all(sock)
    status, error = _status_and_error(raw)
    assert status == 431 and error["code"] == "request_header_too_large"
    assert b"connection: close" in raw.lower()
    assert sent < 16 * 1024 * 1024 or raw  # answered; what it read is bounded by the limit plus a read


def test_many_small_headers_over_the_limit_are_431(strict: int) -> None:
    headers = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 100) for i in range(200))  # ~21 KB, one write
    sock = _connect(strict)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + headers + b"\r\n")
    status, error = _status_and_error(_read_all(sock))
    assert status == 431 and "16384" in str(error["message"])


def test_a_head_under_the_limit_is_served_and_kept_alive(strict: int) -> None:
    sock = _connect(strict)
    request = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-fill: " + b"v" * 8000 + b"\r\n\r\n"
    sock.sendall(request)
    assert _read_response(sock).startswith(b"HTTP/1.1 200")
    time.sleep(HEAD_TIMEOUT_S * 1.5)  # idle between requests is keep-alive's business, not the head's
    sock.sendall(request)
    assert _read_response(sock).startswith(b"HTTP/1.1 200")
    sock.close()


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nhost: x\r\n"])
def test_a_head_that_does_not_arrive_in_time_is_408(
    strict: int, sent: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="turnout.http")
    sock = _connect(strict)
    sock.sendall(sent)
    started = time.monotonic()
    raw = _read_all(sock, limit_s=HEAD_TIMEOUT_S * 5)
    waited = time.monotonic() - started
    status, error = _status_and_error(raw)
    assert status == 408 and error["code"] == "request_timeout"
    assert waited < HEAD_TIMEOUT_S * 4
    assert sum("refused" in record.getMessage() for record in caplog.records) == 1


def test_a_body_shorter_than_its_content_length_is_408_not_a_held_connection(
    strict: int, emulators: Emulators, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sock = _connect(strict)
    body = b'{"model": "llama", "messages": [{"role": "user", "content": "hi"}]}'
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + b"authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
        + b"content-length: %d\r\n\r\n" % (len(body) + 100)
        + body
    )  # fmt: skip
    raw = _read_all(sock, limit_s=BODY_TIMEOUT_S * 5)
    status, error = _status_and_error(raw)
    assert status == 408 and "did not arrive" in str(error["message"])
    assert b"connection: close" in raw.lower()
    assert emulators.vllm.script.requests == 0
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


def test_a_client_that_leaves_mid_body_costs_one_line_and_no_traceback(
    strict: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    sock = _connect(strict)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        + b"authorization: Bearer " + ADMIN_KEY.encode() + b"\r\ncontent-length: 500\r\n\r\n{\"model\""
    )  # fmt: skip
    time.sleep(0.2)
    sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        "closed the connection" in r.getMessage() for r in caplog.records
    ):
        time.sleep(0.05)
    assert any("closed the connection" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info or "unexpected" in r.getMessage()]
