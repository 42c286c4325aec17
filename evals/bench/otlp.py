"""What the gateway benchmark runs beside the gateway to price observability: an OTLP/HTTP trace sink
on loopback (it counts the spans it is sent and drops them, as a collector would forward them) and a
Prometheus-like scraper of /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextlib.contextmanager
def otlp_sink() -> Iterator[tuple[str, list[int]]]:
    """An OTLP/HTTP endpoint on loopback; yields its URL and a one-item list: the bytes received."""
    received = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received[0] += len(self.rfile.read(int(self.headers.get("content-length") or 0)))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


@contextlib.asynccontextmanager
async def scraping(url: str, every_s: float) -> AsyncIterator[list[int]]:
    """GET `url` every `every_s` seconds while the block runs (0: never); yields [scrapes, bytes, failed scrapes]."""
    import aiohttp

    counts = [0, 0, 0]

    async def scrape() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                await asyncio.sleep(every_s)
                try:
                    async with session.get(url) as response:
                        counts[0] += 1
                        counts[1] += len(await response.read())
                except aiohttp.ClientError:  # a missed scrape is Prometheus' problem too, not the bench's
                    counts[2] += 1

    task = asyncio.get_running_loop().create_task(scrape()) if every_s > 0 else None
    try:
        yield counts
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
