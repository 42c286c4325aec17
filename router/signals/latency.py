"""Live latency per backend: moving averages of time to first token and time per output token.

Each backend starts from its policy prior and moves with real traffic (exponentially weighted, so a
backend that slows down is noticed within a few requests). In-process state, one per gateway
worker; it must never block the request path (plain arithmetic under no lock: one event loop).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from router.policy.model import LatencyPrior

ALPHA = 0.2  # weight of the newest observation


@dataclass
class Estimate:
    ttft_ms: float
    ms_per_token: float
    samples: int = 0

    def expected_ms(self, output_tokens: int) -> float:
        return self.ttft_ms + self.ms_per_token * output_tokens


@dataclass
class LatencyTracker:
    estimates: dict[str, Estimate] = field(default_factory=dict)

    def estimate(self, backend: str, prior: LatencyPrior) -> Estimate:
        found = self.estimates.get(backend)
        if found is None:
            found = self.estimates[backend] = Estimate(prior.ttft_ms, prior.ms_per_token)
        return found

    def observe(
        self, backend: str, prior: LatencyPrior, *, ttft_ms: float | None, total_ms: float, output_tokens: int
    ) -> None:
        """Fold one finished request in. Without a first-token time (non-streamed), the current
        time-to-first-token estimate is taken as given and only the per-token rate moves."""
        estimate = self.estimate(backend, prior)
        first = ttft_ms if ttft_ms is not None else estimate.ttft_ms
        if ttft_ms is not None:
            estimate.ttft_ms += ALPHA * (ttft_ms - estimate.ttft_ms)
        if output_tokens > 0:
            per_token = max(0.0, total_ms - first) / output_tokens
            estimate.ms_per_token += ALPHA * (per_token - estimate.ms_per_token)
        estimate.samples += 1
