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
from router.http.errors import SensitiveDataBlocked
from router.metrics import PROVIDER, Metrics
from router.pipeline.gateway import Gateway, Plan, Runtime
from router.pipeline.resilience import Outcome
from router.pipeline.routing import Decision
from router.policy.model import BackendSpec, SensitiveAction
from router.schema import ChatRequest, RequestOptions
from router.signals.collect import Signals
from router.tracing import current_span, failed

SOURCES_HEADER = "x-turnout-sources"
BUDGETS = (LimitKind.budget_day, LimitKind.budget_month)
# what an error's metric label says when the code that ended the request gave no type of its own
ERROR_TYPES = {499: "client_disconnected", 500: "api_error", 502: "upstream_error"}


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
    api: str = "chat"  # the inbound API, for metrics: chat, messages, responses, batch
    decision: Decision | None = None
    signals: Signals | None = None  # the decision's, or a blocked request's
    first_token_s: float | None = None  # from arrival to the first streamed event
    span: Any = None  # the HTTP request's span while tracing is on

    def __post_init__(self) -> None:
        if self.gateway.tracing.on:
            self.span = current_span()
            if self.span is not None and self.gateway.tracing.prompts:  # only when a setting says so
                messages = [message.model_dump(exclude_none=True) for message in self.request.messages]
                self.span.set_attribute("gen_ai.input.messages", orjson.dumps(messages).decode())

    async def plan(self, options: RequestOptions) -> Plan:
        """The gateway's plan, then admission (limits, budgets, the downgrade)."""
        if self.interactive and not self.counted:
            self.counted = True
            self.metrics.request_started()
        try:
            plan = await self.gateway.plan(self.request, self.principal, options)
        except SensitiveDataBlocked as blocked:  # counted and ledgered as what it was: sensitive
            self.signals, self.sensitive = blocked.signals, SensitiveAction.block.value
            raise
        self.decision = plan.decision
        self.signals = plan.decision.signals
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
        with self.gateway.tracing.span("limits"):
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
        return body, self.headers(overhead, outcome.sent)

    async def open_stream(self, plan: Plan) -> tuple[ChunkStream, bytes, dict[str, str], float]:
        """The opened stream (placeholders restored as it is read), its first event, the response
        headers and the overhead so far; `stream_ended` settles it."""
        outcome = await self.gateway.open_stream(plan)
        stream, first = outcome.result
        self.backend = outcome.backend.name
        now = time.perf_counter()
        self.first_token_s = now - self.started
        overhead = (now - self.started - outcome.failed_s - stream.upstream_s) * 1000
        return stream, first, self.headers(overhead, outcome.sent), overhead

    async def stream_abandoned(self, stream: ChunkStream) -> None:
        """A stream opened but never relayed (turnout failed before its first write): closed, and
        its attempt counted as its backend's ok (the fault was not the backend's); the caller
        settles the request."""
        await stream.aclose()
        if self.backend:
            self.metrics.stream_outcome(self.backend, broken=False)

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
        if self.backend:
            self.metrics.stream_outcome(self.backend, broken=status == 502)
        if status == 200:
            self.gateway.observe_latency(
                self.backend or "", first_s, stream.upstream_s, usage.completion_tokens
            )
            spec = self._spec()
            if spec is not None and self.first_token_s is not None:
                self.metrics.observe_stream(
                    spec.provider,
                    spec.model,
                    self.backend or "",
                    self.first_token_s,
                    stream.upstream_s - first_s,
                    usage.completion_tokens,
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

    def _spec(self) -> BackendSpec | None:
        runtime = self.runtime or self.gateway.runtime  # a reload mid-request changes nothing here
        return runtime.loaded.policy.backends.get(self.backend or "")

    def settle(
        self,
        status: int,
        prompt: int,
        completion: int,
        overhead_ms: float,
        error: str | None = None,
        error_type: str | None = None,
    ) -> None:
        """The limiter's reservation with the real usage, the metrics and the ledger row, once."""
        if self.settled:
            return
        self.settled = True
        if self.counted:
            self.metrics.request_ended()
        cost = 0.0
        spec = self._spec()
        if spec is not None:
            cost = spec.unit_price.cost(prompt, completion)
        self.admissions.settle(self.reservation, prompt + completion, cost)
        self.reservation = None
        latency_s = time.perf_counter() - self.started
        if status >= 400:
            error_type = error_type or ERROR_TYPES.get(status, str(status))
        route, backend = self.route or "", self.backend or ""
        provider, model = (PROVIDER.get(spec.provider, spec.provider), spec.model) if spec else ("", "")
        self.metrics.observe(
            self.api, route, backend, provider, model, status, latency_s, overhead_ms / 1000,
            prompt, completion, cost, error_type,
        )  # fmt: skip
        decision, signals = self.decision, self.signals
        capability = signals.capability if signals is not None else None
        types = sorted(signals.finding_types) if signals is not None else []
        passages = len(self.sources) if self.sources is not None else None
        if decision is not None:
            self.metrics.decisions.labels(route, decision.reason).inc()
        if signals is not None:
            self.metrics.sensitivity(self.sensitive, types)
        if self.gateway.tracing.on:
            self._trace(status, provider, model, prompt, completion, error_type)
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
                    latency_ms=latency_s * 1000,
                    overhead_ms=overhead_ms,
                    error=error,
                    category=capability.category if capability is not None else None,
                    difficulty=capability.difficulty if capability is not None else None,
                    sensitive=signals.sensitive if signals is not None else None,
                    finding_types=",".join(types) or None,
                    passages=passages,
                )
            )

    def _trace(
        self, status: int, provider: str, model: str, prompt: int, completion: int, error_type: str | None
    ) -> None:
        """The request's own span (the HTTP edge's) hears what was decided and what came back."""
        span = self.span
        if span is None:
            return
        span.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": self.request.model,
                "gen_ai.provider.name": provider,
                "gen_ai.response.model": model,
                "gen_ai.usage.input_tokens": prompt,
                "gen_ai.usage.output_tokens": completion,
                "turnout.status": status,  # a stream's own end (499, 502) after its 200 went out
                "turnout.api": self.api,
                "turnout.route": self.route or "",
                "turnout.backend": self.backend or "",
                "turnout.sensitive": self.sensitive,
            }
        )
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            if status >= 500:
                failed(span, error_type)
