"""What an emulator is scripted to do (router.testing.emulators): the faults it plays, in order or
on every request, its think and token times, and what it received."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["status", "hang", "drop_before", "drop_mid_stream"]


@dataclass
class Fault:
    kind: FaultKind
    status: int = 500
    retry_after: float | None = None
    seconds: float = 0.0
    after_chunks: int = 2
    param: str | None = None  # status: the error's param and code, as OpenAI names the field at fault
    code: str | None = None


@dataclass
class Script:
    think_ms: float = 0.0  # before the first byte of an answer
    jitter_ms: float = 0.0  # think time varies uniformly by up to this much either way
    token_ms: float = 0.0  # between streamed chunks
    faults: deque[Fault] = field(default_factory=deque)
    always: Fault | None = None  # played on every request once the queue is empty
    received: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    requests: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # the last chat request's, lower-cased names
