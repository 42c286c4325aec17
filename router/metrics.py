"""Prometheus counters and a latency histogram, rendered in the text exposition format at /metrics.

Kept in-process and lock-free (one event loop per worker); labels are route, backend and status
only, never a key or a prompt.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.tokens: dict[tuple[str, str], int] = defaultdict(int)
        self.overhead_counts = [0] * (len(BUCKETS_MS) + 1)
        self.overhead_sum = 0.0
        self.inflight = 0  # interactive requests being answered now (batch lines wait for it to fall)

    def observe(
        self, route: str, backend: str, status: int, overhead_ms: float, prompt: int, completion: int
    ) -> None:
        self.requests[(route, backend, status)] += 1
        self.tokens[(backend, "prompt")] += prompt
        self.tokens[(backend, "completion")] += completion
        self.overhead_counts[bisect_left(BUCKETS_MS, overhead_ms)] += 1
        self.overhead_sum += overhead_ms

    def render(self) -> str:
        lines = [
            "# HELP turnout_requests_total Chat completion requests by route, backend and status.",
            "# TYPE turnout_requests_total counter",
        ]
        for (route, backend, status), value in sorted(self.requests.items()):
            lines.append(
                f'turnout_requests_total{{route="{route}",backend="{backend}",status="{status}"}} {value}'
            )
        lines += [
            "# HELP turnout_tokens_total Tokens by backend and kind.",
            "# TYPE turnout_tokens_total counter",
        ]
        for (backend, kind), value in sorted(self.tokens.items()):
            lines.append(f'turnout_tokens_total{{backend="{backend}",kind="{kind}"}} {value}')
        lines += [
            "# HELP turnout_overhead_ms Time spent in turnout per request, upstream excluded.",
            "# TYPE turnout_overhead_ms histogram",
        ]
        cumulative = 0
        for bound, count in zip((*BUCKETS_MS, "+Inf"), self.overhead_counts, strict=True):
            cumulative += count
            lines.append(f'turnout_overhead_ms_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f"turnout_overhead_ms_sum {self.overhead_sum:.3f}")
        lines.append(f"turnout_overhead_ms_count {cumulative}")
        lines += [
            "# HELP turnout_inflight_requests Interactive requests being answered now.",
            "# TYPE turnout_inflight_requests gauge",
            f"turnout_inflight_requests {self.inflight}",
        ]
        return "\n".join(lines) + "\n"
