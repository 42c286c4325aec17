"""The processes a benchmark starts beside itself on loopback (emulators, the gateway, LiteLLM's
proxy) and what it reads of them: a free port, readiness over HTTP, CPU seconds and RSS of a process
with its children (`serve --workers N` is a supervisor with N workers; the trace exporter is one).

A process's stderr goes to a temporary file, never to an unread pipe: a gateway logging more than a
pipe holds (64 KiB) would block on its next write in the middle of a measurement."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:

    total = 0.0
    for proc in _family(pid):
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def _family(pid: int) -> list[Any]:
    """The process and its children: `serve --workers N` is a supervisor with N worker processes."""
    import psutil

    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
        proc.log = log  # type: ignore[attr-defined]  # what wait_http shows when the process dies
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _tail(proc: subprocess.Popen[bytes]) -> str:
    log = getattr(proc, "log", None)
    if log is None:
        return proc.stderr.read().decode()[-2000:] if proc.stderr else ""
    log.seek(0)
    return log.read().decode(errors="replace")[-2000:]


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited: {_tail(proc)}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout_s} s")


def rss_mb(pid: int) -> float:

    return float(sum(proc.memory_info().rss for proc in _family(pid))) / 2**20
