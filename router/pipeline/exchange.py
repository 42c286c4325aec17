"""One chat request from its parsed body to its settled ledger row, whatever the edge writes.

`Exchange.plan` computes the signals, the decision and retrieval (the gateway's plan) and admits
the request against its key's limits, downgrading to a cheaper backend for a key over budget that
may; `complete` and `open_stream` call the backends with fallback; `complete` and `stream_ended`
settle (`settle`, once per request whatever fails after it): the limiter's reservation with the
real usage, live latency, metrics and the usage ledger.
The HTTP edge (router.http.app) only parses, authenticates and writes bytes: it never decides,
charges or restores anything itself.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from router.accounts.admission import Admissions, Estimate
from router.accounts.auth import OnBudget, Principal
from router.accounts.limits import LimitKind, Reservation
from router.accounts.usage import UsageRecord, UsageRecorder
from router.backends.base import ChunkStream, Completion, Usage
from router.metrics import Metrics
from router.pipeline.gateway import Gateway, Plan, Runtime
from router.pipeline.resilience import Outcome
from router.schema import ChatRequest, RequestOptions

SOURCES_HEADER = "x-turnout-sources"
BUDGETS = (LimitKind.budget_day, LimitKind.budget_month)


def sources_header(sources: list[dict[str, Any]]) -> str:
    """The passages in citation order as compact ASCII JSON: [{"n", "source", "chunk_id"}, ...]."""
    brief = [{"n": s["n"], "source": s["source"], "chunk_id": s["chunk_id"]} for s in sources]
    return json.dumps(brief, ensure_ascii=True, separators=(",", ":"))


def with_sources(body: bytes, sources: list[dict[str, Any]]) -> bytes:
    """The upstream's completion with turnout's `turnout.sources` field added."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(payload, dict):
        payload["turnout"] = {"sources": sources}
        return orjson.dumps(payload)
    return body


@dataclass
class Exchange:
    """One chat request's path and bookkeeping, from arrival to the usage ledger."""

    gateway: Gateway
    admissions: Admissions
    usage: UsageRecorder | None
    metrics: Metrics
    principal: Principal
    request: ChatRequest
    started: float
    route: str | None = None
    backend: str | None = None
    sensitive: str = "none"
    sources: list[dict[str, Any]] | None = None  # set when the request retrieved (or tried to)
    rate_headers: dict[str, str] = field(default_factory=dict)  # x-ratelimit-* of the key's limits
    reservation: Reservation | None = None  # the limiter's, settled with the real usage in settle()
    prompt_estimate: int = 0  # what a stream that ends without usage is charged for its prompt
    runtime: Runtime | None = None  # the policy the request was planned under: its prices are charged
    settled: bool = False  # a request is settled once, even if something fails after settling it
    interactive: bool = True  # a caller waits on it (batch lines are not): counted in metrics.inflight
    counted: bool = False

    async def plan(self, options: RequestOptions) -> Plan:
        """The gateway's plan, then admission (limits, budgets, the downgrade)."""
        if self.interactive and not self.counted:
            self.counted = True
            self.metrics.inflight += 1
        plan = await self.gateway.plan(self.request, self.principal, options)
        self.route = plan.route
        self.runtime = plan.runtime
        self.sensitive = plan.decision.action_name
        self.sources = plan.sources
        return await self._admit(plan)

    async def _admit(self, plan: Plan) -> Plan:
        """The key's limits and budgets; a key over budget that may downgrade tries the cheapest backend."""
        principal = self.principal
        self.prompt_estimate = plan.prompt_tokens
        estimate = Estimate(plan.prompt_tokens + plan.output_tokens, plan.cost(plan.backends[0]))
        admission = await self.admissions.admit(principal, estimate)
        if admission is None:
            return plan
        if (
            not admission.allowed
            and admission.reason in BUDGETS
            and principal.on_budget is OnBudget.downgrade
        ):
            cheaper = self.gateway.downgrade(plan, principal)
            if cheaper is not None:
                estimate = Estimate(estimate.tokens, cheaper.cost(cheaper.backends[0]))
                admission = await self.admissions.admit(principal, estimate)
                if admission is not None and admission.allowed:
                    plan = cheaper
                    self.route = plan.route
        if admission is None:
            return plan
        self.rate_headers = {k: v for k, v in admission.headers.items() if k.startswith("x-ratelimit-")}
        if not admission.allowed:
            raise admission.error()
        self.reservation = admission.reservation
        return plan

    async def complete(self, plan: Plan) -> tuple[bytes, dict[str, str]]:
        """The answer's body (placeholders restored by the gateway, sources added) and headers;
        the request is settled."""
        outcome: Outcome[Completion] = await self.gateway.complete(plan)
        completion = outcome.result
        self.backend = outcome.backend.name
        body = completion.body
        if self.sources is not None:
            body = with_sources(body, self.sources)
        overhead = (time.perf_counter() - self.started - outcome.failed_s - completion.upstream_s) * 1000
        usage = completion.usage
        self.gateway.observe_latency(self.backend, None, completion.upstream_s, usage.completion_tokens)
        self.settle(200, usage.prompt_tokens, usage.completion_tokens, overhead)
        return body, self.headers(overhead, len(outcome.attempts) + 1)

    async def open_stream(self, plan: Plan) -> tuple[ChunkStream, bytes, dict[str, str], float]:
        """The opened stream (placeholders restored as it is read), its first event, the response
        headers and the overhead so far; `stream_ended` settles it."""
        outcome = await self.gateway.open_stream(plan)
        stream, first = outcome.result
        self.backend = outcome.backend.name
        overhead = (time.perf_counter() - self.started - outcome.failed_s - stream.upstream_s) * 1000
        return stream, first, self.headers(overhead, len(outcome.attempts) + 1), overhead

    def stream_ended(
        self,
        stream: ChunkStream,
        first_s: float,
        events: int,
        status: int,
        overhead_ms: float,
        error: str | None,
    ) -> None:
        """A stream is over (whole, broken or left by its client): live latency for a whole one,
        then settled with the upstream's usage, or with what was relayed when it sent none."""
        usage: Usage = stream.usage
        if status == 200:
            self.gateway.observe_latency(
                self.backend or "", first_s, stream.upstream_s, usage.completion_tokens
            )
        prompt, completion = usage.prompt_tokens, usage.completion_tokens
        if not completion:  # ended before the upstream's usage: charge what was streamed
            prompt = prompt or self.prompt_estimate
            completion = max(0, events - 1)  # one token a delta; the first carries the role
        self.settle(status, prompt, completion, overhead_ms, error)

    def headers(self, overhead_ms: float, attempts: int) -> dict[str, str]:
        headers = {
            "x-turnout-backend": self.backend or "",
            "x-turnout-route": self.route or "",
            "x-turnout-sensitive": self.sensitive,
            "x-turnout-overhead-ms": f"{overhead_ms:.3f}",
            "x-turnout-attempts": str(attempts),
        }
        if self.sources is not None:
            headers[SOURCES_HEADER] = sources_header(self.sources)
        headers.update(self.rate_headers)
        return headers

    def settle(
        self, status: int, prompt: int, completion: int, overhead_ms: float, error: str | None = None
    ) -> None:
        """The limiter's reservation with the real usage, the metrics and the ledger row, once."""
        if self.settled:
            return
        self.settled = True
        if self.counted:
            self.metrics.inflight -= 1
        cost = 0.0
        runtime = self.runtime or self.gateway.runtime  # a reload mid-request changes nothing here
        spec = runtime.loaded.policy.backends.get(self.backend or "")
        if spec is not None:
            cost = spec.unit_price.cost(prompt, completion)
        self.admissions.settle(self.reservation, prompt + completion, cost)
        self.reservation = None
        self.metrics.observe(self.route or "", self.backend or "", status, overhead_ms, prompt, completion)
        if self.usage is not None:
            self.usage.record(
                UsageRecord(
                    ts=datetime.now(UTC),
                    key_id=self.principal.key_id,
                    team=self.principal.team,
                    route=self.route,
                    backend=self.backend,
                    model=self.request.model,
                    stream=bool(self.request.stream),
                    status=status,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost_usd=cost,
                    latency_ms=(time.perf_counter() - self.started) * 1000,
                    overhead_ms=overhead_ms,
                    error=error,
                )
            )
