"""The gateway's Prometheus metrics, kept by prometheus_client and rendered at /metrics.

Names follow OpenTelemetry's GenAI semantic conventions where one exists (request duration, time
to first token, time per output token, token usage: `gen_ai_*`, in seconds and tokens) and are
`turnout_*` otherwise. Labels are APIs, routes, backends, upstream model names, statuses and types,
never a key, a team or any text of a request.

One process: each Metrics has its own registry (tests run several gateways in one process).
Several workers (`turnout serve --workers N`): the CLI points PROMETHEUS_MULTIPROC_DIR at a fresh
directory before the workers start, every value lives in a memory-mapped file there, and /metrics
sums the workers' files (prometheus_client's multiprocess mode), so a scrape of any worker sees them
all. Gauges say how they combine: in-flight requests add up over live workers (a worker's live
gauges leave with it: at its shutdown, or when a later worker finds its process gone), the last
drift figure wins.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

disable_created_metrics()  # a *_created series per label set doubles the exposition for nothing

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Overhead is sub-millisecond when healthy; requests run from milliseconds to minutes.
OVERHEAD_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
PASSAGE_BUCKETS = (0, 1, 2, 3, 4, 5, 8, 12, 20)

PROVIDER = {"openai": "openai", "anthropic": "anthropic", "vllm": "vllm", "local": "turnout"}


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def sweep_dead_workers() -> None:
    """Drop the live gauges of workers that died without saying so (uvicorn restarts a crashed or
    hung worker): their files would otherwise hold an in-flight count and a store state forever."""
    import re

    from prometheus_client.multiprocess import mark_process_dead

    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or not os.path.isdir(folder):
        return
    for name in os.listdir(folder):
        match = re.fullmatch(r"gauge_live\w*_(\d+)\.db", name)
        if match and not _alive(int(match[1])):
            with contextlib.suppress(FileNotFoundError):  # another worker swept it first
                mark_process_dead(int(match[1]), folder)


def worker_stopped() -> None:
    """This worker's live gauges leave the sum (the app's shutdown)."""
    if multiprocess():
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(os.getpid())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Metrics:
    """Every metric the gateway keeps, with the few calls the pipeline makes on them."""

    def __init__(self) -> None:
        shared = multiprocess()
        if shared:
            sweep_dead_workers()
        self.registry = None if shared else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "turnout_requests",
            "Requests answered, by inbound API, route, backend, upstream model and HTTP status.",
            ["api", "route", "backend", "model", "status"],
            registry=r,
        )
        self.errors = Counter(
            "turnout_request_errors",
            "Requests that ended in an error, by inbound API, route, backend and error type.",
            ["api", "route", "backend", "error_type"],
            registry=r,
        )
        genai = ["gen_ai_provider_name", "gen_ai_request_model", "backend"]
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "Time from a request's arrival to its last byte (GenAI semantic conventions).",
            ["gen_ai_operation_name", *genai, "route"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from a streamed request's arrival to its first token.",
            genai,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "Streams: time per output token after the first, per request.",
            genai,
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.attempts = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Each upstream attempt, to its answer (streams: to their first event); a retry or a fallback is an attempt of its own.",
            [*genai, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.attempt_outcomes = Counter(
            "turnout_upstream_attempts",
            "Upstream attempts by backend and outcome (ok, or the error's type).",
            ["backend", "outcome"],
            registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per request by backend and type (input, output).",
            [*genai, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "turnout_gateway_overhead_seconds",
            "Time spent in turnout per request, upstream time excluded.",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.cost = Counter("turnout_cost_usd", "Spend in USD by backend.", ["backend"], registry=r)
        self.decisions = Counter(
            "turnout_routing_decisions",
            "Routing decisions by route and reason (rule, default, named, downgrade, private).",
            ["route", "reason"],
            registry=r,
        )
        self.sensitive_requests = Counter(
            "turnout_sensitivity_requests",
            "Requests by what the sensitive-data rule did (none, reroute, redact, block).",
            ["action"],
            registry=r,
        )
        self.findings = Counter(
            "turnout_sensitivity_findings",
            "Requests with at least one finding of each type (never the text).",
            ["type"],
            registry=r,
        )
        self.retrieval_duration = Histogram(
            "turnout_retrieval_duration_seconds",
            "Time to retrieve passages for a request.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.retrievals = Counter(
            "turnout_retrieval_requests",
            "Retrievals by outcome: hit (passages found), miss (none), error.",
            ["outcome"],
            registry=r,
        )
        self.passages = Histogram(
            "turnout_retrieval_passages",
            "Passages put in a request's context.",
            buckets=PASSAGE_BUCKETS,
            registry=r,
        )
        self.limiter_up = Gauge(
            "turnout_limiter_store_up",
            "Whether the limiter's shared store answered last time.",
            ["limiter"],
            multiprocess_mode="livemin",
            registry=r,
        )
        self.limiter_errors = Counter(
            "turnout_limiter_store_errors",
            "Calls to the limiter's store that failed.",
            ["limiter"],
            registry=r,
        )
        self.limiter_degraded = Counter(
            "turnout_limiter_degraded",
            "Admissions decided without the store (fail open or closed).",
            ["limiter"],
            registry=r,
        )
        self.limiter_refused = Counter(
            "turnout_limiter_refused",
            "Requests refused, by the limit that refused them.",
            ["limiter", "reason"],
            registry=r,
        )
        self.inflight_gauge = Gauge(
            "turnout_inflight_requests",
            "Interactive requests being answered now (the HPA's and the batch worker's signal).",
            multiprocess_mode="livesum",
            registry=r,
        )
        self.batch_lines = Gauge(
            "turnout_batch_lines",
            "Batch lines waiting (queued) and claimed by a worker (running).",
            ["state"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.drift = Gauge(
            "turnout_drift_psi",
            "Population stability index of each routing signal, current window against reference.",
            ["signal"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.inflight = 0  # this process's count, read by its batch worker (the gauge is for scrapes)
        self._children: dict[tuple[str, ...], tuple[object, ...]] = {}

    def request_started(self) -> None:
        self.inflight += 1
        self.inflight_gauge.inc()

    def request_ended(self) -> None:
        self.inflight -= 1
        self.inflight_gauge.dec()

    def observe(
        self,
        api: str,
        route: str,
        backend: str,
        provider: str,
        model: str,
        status: int,
        duration_s: float,
        overhead_s: float,
        prompt: int,
        completion: int,
        cost: float,
        error_type: str | None = None,
        operation: str = "chat",
    ) -> None:
        """One settled request (`operation` as GenAI names it: chat, embeddings)."""
        self.requests.labels(api, route, backend, model, str(status)).inc()
        self.overhead.observe(overhead_s)
        if error_type is not None:
            self.errors.labels(api, route, backend, error_type).inc()
        if not backend:
            return
        key = (operation, route, backend, provider, model)
        children = self._children.get(key)
        if children is None:  # labels() locks and builds a tuple; a request only looks them up once
            genai = (provider, model, backend)
            children = self._children[key] = (
                self.duration.labels(operation, *genai, route),
                self.tokens.labels(*genai, "input"),
                self.tokens.labels(*genai, "output"),
                self.cost.labels(backend),
            )
        duration, tokens_in, tokens_out, spend = children
        duration.observe(duration_s)  # type: ignore[attr-defined]
        tokens_in.observe(prompt)  # type: ignore[attr-defined]
        tokens_out.observe(completion)  # type: ignore[attr-defined]
        if cost:
            spend.inc(cost)  # type: ignore[attr-defined]

    def refused(self, api: str, status: int, error_type: str) -> None:
        """A request turned away before it was routed (a bad key, an unreadable body)."""
        self.requests.labels(api, "", "", "", str(status)).inc()
        self.errors.labels(api, "", "", error_type).inc()

    def observe_stream(
        self, provider: str, model: str, backend: str, ttft_s: float, generation_s: float, completion: int
    ) -> None:
        """A whole stream: time to its first token, and per output token after it."""
        self.ttft.labels(provider, model, backend).observe(ttft_s)
        if completion > 1:
            self.tpot.labels(provider, model, backend).observe(generation_s / (completion - 1))

    def attempt(
        self,
        provider: str,
        model: str,
        backend: str,
        seconds: float,
        error_type: str | None,
        *,
        settled: bool = True,
    ) -> None:
        """`settled` false: a stream that opened, whose outcome `stream_outcome` counts at its end."""
        self.attempts.labels(provider, model, backend, error_type or "").observe(seconds)
        if settled:
            self.attempt_outcomes.labels(backend, error_type or "ok").inc()

    def stream_outcome(self, backend: str, broken: bool) -> None:
        """A stream's attempt, counted when it ends: a break after its first event is an error of
        the backend's (stream_interrupted), not an ok."""
        self.attempt_outcomes.labels(backend, "stream_interrupted" if broken else "ok").inc()

    def sensitivity(self, action: str, finding_types: Iterable[str]) -> None:
        """What the sensitive-data rule did with a request whose signals were computed."""
        self.sensitive_requests.labels(action).inc()
        for kind in finding_types:
            self.findings.labels(kind).inc()

    def retrieval(self, seconds: float, passages: int | None) -> None:
        """One retrieval: None passages means it failed."""
        self.retrieval_duration.observe(seconds)
        if passages is None:
            self.retrievals.labels("error").inc()
            return
        self.retrievals.labels("hit" if passages else "miss").inc()
        self.passages.observe(passages)

    def served(self) -> CollectorRegistry:
        """What /metrics renders: this process's registry, or every worker's files summed."""
        if self.registry is not None:
            return self.registry
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry

    def render(self) -> bytes:
        return generate_latest(self.served())
