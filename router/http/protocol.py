"""The HTTP/1.1 connection: uvicorn's httptools protocol, with bounds on a request's head.

httptools keeps no limit of its own: a client could send megabytes of header, or trickle a head in
for ever, and hold memory and a connection doing it. Here the head (request line and headers) of
each request must arrive within `head_timeout_s` and be at most `max_head_bytes`; otherwise the
client gets 408 or 431 in OpenAI's error shape, the connection is closed, and one line is logged.
The body's own deadline is the app's (`read_body`). This module never reads a request's content.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from router.http.errors import HeadersTooLarge, RequestTimeout, TurnoutError

log = logging.getLogger("turnout.http")


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing a head that is over the bound."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self, *args: Any, max_head_bytes: int = 65536, head_timeout_s: float = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = max_head_bytes
        self.head_timeout_s = head_timeout_s
        self._head_bytes = 0
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: TurnoutError | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
            self._refuse(self._too_large(self._head_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the next request on a kept-alive connection: its head starts now
            self._start_head()

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_head_bytes:
            self._refusal = self._too_large(size)
            raise _HeadRefused  # the parser stops; data_received answers through send_400_response
        self._in_head = False
        self._stop_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self._refuse(self._refusal)
            return
        super().send_400_response(msg)

    def _too_large(self, size: int) -> TurnoutError:
        return HeadersTooLarge(
            f"The request's headers are over the gateway's limit of {self.max_head_bytes} bytes ({size} sent)."
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(
                RequestTimeout(f"The request's headers did not arrive within {self.head_timeout_s:g} s.")
            )

    def _refuse(self, error: TurnoutError) -> None:
        """Answer in OpenAI's shape and close: the rest of what the client sends is not read."""
        self._stop_head_timer()
        self._in_head = False
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown client"
        log.warning("refused %s: %d %s", client, error.status_code, error.message)
        body = error.to_openai_body()
        head = (
            f"HTTP/1.1 {error.status_code} {_REASONS[error.status_code]}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        ).encode("ascii")
        self.transport.write(head + body)
        self.transport.close()


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


def http_protocol(settings: Any) -> Any:
    """The protocol uvicorn builds for each connection, bounded by the settings (a picklable
    partial, so that `--workers N` can hand it to its worker processes)."""
    from functools import partial

    return partial(
        GuardedHttpToolsProtocol,
        max_head_bytes=settings.max_header_bytes,
        head_timeout_s=settings.header_timeout_s,
    )
