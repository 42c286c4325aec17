"""`turnout serve --emulators` (what `make demo` runs): a fresh state folder, a bootstrap key printed
once, answers through the emulators, and a clean stop that also stops the embedded Postgres."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router.db import embedded_data_dir
from router.settings import Settings
from tests.conftest import free_port

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def test_demo_serves_with_a_bootstrap_key_and_stops_cleanly(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("TURNOUT_ADMIN_KEY", "TURNOUT_DATABASE_URL")}
    env.update(TURNOUT_HOME=str(tmp_path / "home"), TURNOUT_PORT=str(port), TURNOUT_LOG_LEVEL="info")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "serve", "--emulators"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.3)
        keys = re.findall(r"tnt_[A-Za-z0-9_-]{43}", log.read_text())
        assert len(keys) == 1, "exactly one bootstrap key is printed"
        assert "the admin endpoints take the key set as TURNOUT_ADMIN_KEY" in log.read_text()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            headers={"authorization": f"Bearer {keys[0]}"},
            json={"model": "gpt-4", "messages": [{"role": "user", "content": "demo works"}]},
            timeout=20,
        )
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"].endswith(
            "demo works"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    pid_file = embedded_data_dir(Settings(home=Path(env["TURNOUT_HOME"]))) / "postmaster.pid"
    # uvicorn re-raises SIGTERM once its graceful shutdown is done, so atexit never runs: the lifespan
    # shutdown must have stopped the embedded Postgres itself
    assert proc.returncode in (0, -signal.SIGTERM)
    assert not pid_file.exists(), "the embedded Postgres stops with the gateway"
