"""How an ingest run reports as it goes: a progress bar on a terminal, plain log lines otherwise.

Kept apart from the pipeline so that `turnout --help` and the CLI's argument parsing import nothing
heavy.
"""

from __future__ import annotations

import time
from typing import Any, TextIO


class Progress:
    """What a run tells its user as it goes; the CLI draws a bar or log lines from it."""

    def started(self, files: int) -> None: ...

    def advanced(self, files_done: int, chunks: int) -> None: ...

    def failed(self, source: str, reason: str) -> None: ...


class BarProgress(Progress):
    """tqdm on a terminal: files, chunks, chunks/s and the ETA."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.bar: Any = None
        self.chunks = 0

    def started(self, files: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=files, unit="file", file=self.out, dynamic_ncols=True, desc="ingest")

    def advanced(self, files_done: int, chunks: int) -> None:
        if self.bar is not None:
            self.bar.update(files_done - self.bar.n)
            rate = chunks / max(self.bar.format_dict["elapsed"], 1e-6)
            self.bar.set_postfix_str(f"{chunks} chunks, {rate:.1f} chunks/s", refresh=False)

    def failed(self, source: str, reason: str) -> None:
        line = f"ingest: skipped {source}: {reason}"
        (self.bar.write(line, file=self.out) if self.bar is not None else print(line, file=self.out))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class LineProgress(Progress):
    """Plain log lines, at most one every `every_s` seconds, for logs and CI."""

    def __init__(self, out: TextIO, every_s: float = 5.0) -> None:
        self.out = out
        self.every_s = every_s
        self.total = 0
        self.begun = time.monotonic()
        self.last = self.begun

    def started(self, files: int) -> None:
        self.total = files
        self.begun = self.last = time.monotonic()
        print(f"ingest: {files} files to check", file=self.out, flush=True)

    def advanced(self, files_done: int, chunks: int) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s and files_done < self.total:
            return
        self.last = now
        elapsed = now - self.begun
        rate = chunks / elapsed if elapsed else 0.0
        eta = elapsed / files_done * (self.total - files_done) if files_done else 0.0
        print(
            f"ingest: {files_done}/{self.total} files, {chunks} chunks, {rate:.1f} chunks/s, ETA {eta:.0f} s",
            file=self.out,
            flush=True,
        )

    def failed(self, source: str, reason: str) -> None:
        print(f"ingest: skipped {source}: {reason}", file=self.out, flush=True)

    def close(self) -> None:
        return None
