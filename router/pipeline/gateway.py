"""The gateway's request path below HTTP: plan (which backends may answer) and execute (call them).

`Gateway` holds the live policy and the backends built from it, swapped whole on reload; a bad
edit keeps the last good pair and is reported in `policy_error`. This module knows nothing of
HTTP framing: router.http.app turns its results and errors into responses.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from router import tokens
from router.accounts.auth import Principal
from router.backends import BuiltBackends, build_backends
from router.backends.base import Backend, ChunkStream, Completion
from router.backends.http import HttpClient
from router.http.errors import (
    ContextWindowExceeded,
    ModelNotFound,
    NoBackendAvailable,
    PermissionDenied,
    PolicyError,
    TurnoutError,
    UpstreamError,
    UpstreamStatus,
    UpstreamTimeout,
)
from router.metrics import PROVIDER, Metrics
from router.pipeline.redaction import Redactor, RestoringStream, redact_request, restore_completion
from router.pipeline.resilience import Breakers, Outcome, call_with_fallback
from router.pipeline.retrieval import RagService, Retrieved, wanted, with_context
from router.pipeline.routing import AUTO, Decision, decide, reachable
from router.policy.model import LoadedPolicy, Policy, SensitiveAction, load_policy
from router.schema import ChatRequest, RequestOptions
from router.settings import Settings
from router.signals.capability.classifier import CapabilityClassifier
from router.signals.collect import NO_OPTIONS, SignalEngine
from router.signals.latency import LatencyTracker
from router.tracing import Tracing, failed

log = logging.getLogger("turnout.gateway")
SETTLE_S = 0.2  # a policy file modified more recently than this is left for the watcher's next look


@dataclass(frozen=True)
class Runtime:
    loaded: LoadedPolicy
    backends: BuiltBackends
    engine: SignalEngine


@dataclass(frozen=True)
class Plan:
    runtime: Runtime
    route: str
    backends: list[Backend]
    decision: Decision
    request: ChatRequest  # as it leaves: redacted under the `redact` rule, with retrieved context
    redactor: Redactor | None = None
    sources: list[dict[str, Any]] | None = None  # passages in the context, numbered; None: no retrieval
    prompt_tokens: int = 0  # as sent, retrieved context included
    output_tokens: int = 0  # max_tokens, else the expected output

    def cost(self, backend: Backend) -> float:
        return backend.spec.unit_price.cost(self.prompt_tokens, self.output_tokens)


class Gateway:
    def __init__(self, settings: Settings, http: HttpClient) -> None:
        self.settings = settings
        self.http = http
        self.breakers = Breakers()
        self.latency = LatencyTracker()
        self.metrics = Metrics()
        self.tracing = Tracing()  # off until the app turns it on (router.http.app)
        self.classifier = CapabilityClassifier.load()
        tokens.warm()
        self.policy_error: str | None = None
        self.rag = RagService(settings)
        self.runtime = self._build(load_policy(settings.policy))
        self._stamp = self._file_stamp()

    def _build(self, loaded: LoadedPolicy) -> Runtime:
        backends = build_backends(loaded.policy, self.settings, self.http)
        for name, reason in backends.unavailable.items():
            log.warning("backend %s is unavailable and will be skipped: %s", name, reason)
        return Runtime(loaded, backends, SignalEngine(loaded.policy, self.classifier))

    def _file_stamp(self) -> tuple[float, int] | None:
        try:
            stat = self.settings.policy.stat()
        except OSError:
            return None
        return stat.st_mtime, stat.st_size

    def reload_if_changed(self) -> bool:
        """Load the policy file again if it changed; on error keep the running policy. True if swapped."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        if stamp is not None and time.time() - stamp[0] < SETTLE_S:
            return False  # perhaps still being written (truncated, half full): the next look decides
        self._stamp = stamp
        try:
            loaded = load_policy(Path(self.settings.policy))
        except PolicyError as error:
            self.policy_error = error.message
            log.error(
                "policy edit rejected, still running version %s:\n%s",
                self.runtime.loaded.version,
                error.message,
            )
            return False
        self.policy_error = None
        if loaded.version != self.runtime.loaded.version:
            self.runtime = self._build(loaded)
            log.info("policy reloaded: version %s", loaded.version)
            return True
        return False

    async def watch_policy(self) -> None:
        while True:
            await asyncio.sleep(self.settings.policy_reload_seconds)
            try:
                if await asyncio.to_thread(self.reload_if_changed):
                    await self.rag.warm(self.runtime.loaded.policy)  # a route may retrieve now
            except Exception:  # a watcher that dies would freeze the policy silently
                log.exception("policy watcher failed; will try again")

    def models_for(self, principal: Principal) -> list[tuple[str, str]]:
        """(model id, owner) pairs this caller may name: 'auto' and each ready backend it may use."""
        runtime = self.runtime
        usable = [
            (name, backend.spec.provider)
            for name, backend in runtime.backends.ready.items()
            if principal.may_use(name)
        ]
        return ([(AUTO, "turnout")] if usable else []) + usable

    def check_model(self, request: ChatRequest) -> None:
        """A named model must be one of the policy's backends (or auto): else a 404."""
        backends = self.runtime.loaded.policy.backends
        if request.model != AUTO and request.model not in backends:
            known = ", ".join([AUTO, *backends])
            raise ModelNotFound(
                f"The model '{request.model}' does not exist. Use one of: {known}.", param="model"
            )

    def decide(self, request: ChatRequest, options: RequestOptions = NO_OPTIONS) -> Decision:
        """The policy's decision for a request, without executing it (what explain shows): when
        the request would be refused, the decision so far with the error as its `refusal`."""
        policy = self.runtime.loaded.policy
        self.check_model(request)
        signals = self.runtime.engine.compute(request, options)
        return decide(policy, signals, request.model, self.latency, explaining=True)

    def observe_latency(self, backend: str, ttft_s: float | None, total_s: float, output_tokens: int) -> None:
        spec = self.runtime.loaded.policy.backends.get(backend)
        if spec is not None:
            ttft_ms = ttft_s * 1000 if ttft_s is not None else None
            self.latency.observe(
                backend, spec.latency, ttft_ms=ttft_ms, total_ms=total_s * 1000, output_tokens=output_tokens
            )

    async def plan(
        self,
        request: ChatRequest,
        principal: Principal,
        options: RequestOptions = NO_OPTIONS,
    ) -> Plan:
        """Signals, the policy's decision, retrieval when the route or the request asks for it (and
        the decision again if it brought private passages), then what this key may use."""
        runtime = self.runtime
        policy = runtime.loaded.policy
        self.check_model(request)
        if request.model != AUTO and not principal.may_use(request.model):
            raise PermissionDenied(f"This API key may not use model '{request.model}'.", param="model")
        with self.tracing.span("classify"):
            signals = runtime.engine.compute(request, options, capability=request.model == AUTO)
        if principal.private and signals.private_request is None:
            signals = replace(signals, private_request=f"API key {principal.key_id} is private")
        decision = decide(policy, signals, request.model, self.latency, principal.may_use)
        tried, retrieved = await self._retrieve(request, decision, policy)
        if retrieved is not None:
            # passages leave with the request: ones holding sensitive data keep it inside, as a
            # private collection's do (every string sent upstream is scanned)
            carried = () if retrieved.private else runtime.engine.detector.scan(retrieved.context)
            signals = replace(
                signals,
                prompt_tokens=signals.prompt_tokens + retrieved.tokens,
                private_context=retrieved.collection if retrieved.private else None,
                sensitive_context=(
                    (retrieved.collection, tuple(sorted({f.type for f in carried}))) if carried else None
                ),
            )
            if retrieved.private or carried:
                decision = decide(policy, signals, request.model, self.latency, principal.may_use)
        names = [name for name in decision.backends if principal.may_use(name)]
        if not names:
            raise PermissionDenied("This API key may not use any backend this request may go to.")
        backends = [runtime.backends.ready[name] for name in names if name in runtime.backends.ready]
        if not backends:
            reasons = "; ".join(
                f"{name}: {runtime.backends.unavailable.get(name, 'not ready')}" for name in names
            )
            raise NoBackendAvailable(f"No backend is configured for this request ({reasons}).")
        redactor = None
        if decision.action is SensitiveAction.redact:  # findings point into the caller's messages
            request, redactor = redact_request(request, signals.findings)
        if retrieved is not None:  # so the context goes in after redaction
            request = with_context(request, retrieved.context)
        fitting = fit_context(signals.prompt_tokens, request.output_limit or 0, backends)
        output = request.output_limit or signals.expected_output_tokens
        sources = retrieved.sources if retrieved is not None else ([] if tried else None)
        return Plan(
            runtime,
            decision.route,
            fitting,
            decision,
            request,
            redactor,
            sources,
            signals.prompt_tokens,
            output,
        )

    async def _retrieve(
        self, request: ChatRequest, decision: Decision, policy: Policy
    ) -> tuple[bool, Retrieved | None]:
        """Whether retrieval was asked for (by the chosen route for `auto`, or the request's
        `turnout.rag`), and the passages it found."""
        route = next((r for r in policy.routes if r.name == decision.route), None)
        want = wanted(request, route if request.model == AUTO else None, policy)
        if want is None:
            return False, None
        started = time.perf_counter()
        retrieved: Retrieved | None = None
        try:
            with self.tracing.span("retrieval", {"turnout.collection": want.collection or ""}):
                retrieved = await self.rag.retrieve(
                    want, request.query(user_only=True).strip(), policy, tokens.count_text
                )
        except TurnoutError:
            self.metrics.retrieval(time.perf_counter() - started, None)
            raise
        passages = len(retrieved.sources) if retrieved is not None else 0
        self.metrics.retrieval(time.perf_counter() - started, passages)
        return True, retrieved

    async def _attempt(self, backend: Backend, call: Any) -> Any:
        """One upstream attempt, timed into the metrics and traced as a GenAI client span."""
        spec = backend.spec
        provider = PROVIDER.get(spec.provider, spec.provider)
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": spec.model,
            "turnout.backend": backend.name,
        }
        started = time.perf_counter()
        with self.tracing.span(f"chat {spec.model}", attributes, client=True) as span:
            try:
                result = await call(backend)
            except UpstreamError as error:
                kind = _kind(error)
                self.metrics.attempt(provider, spec.model, backend.name, time.perf_counter() - started, kind)
                failed(span, kind)
                raise
            except BaseException as error:
                failed(span, type(error).__name__)
                raise
            opened = not isinstance(result, Completion)  # a stream: its outcome is counted at its end
            self.metrics.attempt(
                provider, spec.model, backend.name, time.perf_counter() - started, None, settled=not opened
            )
            if span is not None and isinstance(result, Completion):
                span.set_attributes(
                    {
                        "gen_ai.response.model": spec.model,
                        "gen_ai.usage.input_tokens": result.usage.prompt_tokens,
                        "gen_ai.usage.output_tokens": result.usage.completion_tokens,
                    }
                )
            return result

    def downgrade(self, plan: Plan, principal: Principal) -> Plan | None:
        """The plan on the cheapest ready backend of the policy's routes that this request may use,
        if that is cheaper than the plan's first backend (a key over its budget with
        `on_budget: downgrade`)."""
        policy = plan.runtime.loaded.policy
        ready = plan.runtime.backends.ready
        routed = {name for route in policy.routes for name in route.backends}
        allowed = [n for n in ready if n in routed and n in policy.backends and principal.may_use(n)]
        keep_private = plan.decision.action is SensitiveAction.reroute
        fits = plan.prompt_tokens + (plan.request.output_limit or 0)
        candidates = [
            ready[name]
            for name in reachable(policy, allowed, plan.decision.signals, keep_private)
            if fits <= policy.backends[name].context_window
        ]
        if not candidates:
            return None
        cheapest = min(candidates, key=plan.cost)
        if plan.cost(cheapest) >= plan.cost(plan.backends[0]):
            return None
        return replace(plan, route=f"{plan.route}+downgraded", backends=[cheapest])

    async def complete(self, plan: Plan) -> Outcome[Completion]:
        policy = plan.runtime.loaded.policy
        request = plan.request

        async def call(backend: Backend) -> Completion:
            return await backend.complete(request, policy.timeouts(backend.name))

        async def attempt(backend: Backend) -> Completion:
            result: Completion = await self._attempt(backend, call)
            return result

        outcome = await call_with_fallback(plan.backends, attempt, policy, self.breakers)
        if plan.redactor is not None:  # the caller's own text back where placeholders stood
            outcome.result.body = restore_completion(outcome.result.body, plan.redactor)
        return outcome

    async def open_stream(self, plan: Plan) -> Outcome[tuple[ChunkStream, bytes]]:
        """Open a stream and read its first event; a failure before that falls back like any other."""
        policy = plan.runtime.loaded.policy
        request = plan.request

        async def call(backend: Backend) -> tuple[ChunkStream, bytes]:
            timeouts = policy.timeouts(backend.name)
            stream: ChunkStream = await backend.stream(request, timeouts)
            if plan.redactor is not None:
                stream = RestoringStream(stream, plan.redactor)
            try:
                async with asyncio.timeout(timeouts.first_byte_s):
                    first = await stream.__anext__()
            except TimeoutError:
                await stream.aclose()
                raise UpstreamTimeout(
                    f"{backend.name} sent no first token in time", backend=backend.name
                ) from None
            except StopAsyncIteration:
                await stream.aclose()
                raise UpstreamError(f"{backend.name} sent an empty stream", backend=backend.name) from None
            except BaseException:
                await stream.aclose()
                raise
            return stream, first

        async def attempt(backend: Backend) -> tuple[ChunkStream, bytes]:
            result: tuple[ChunkStream, bytes] = await self._attempt(backend, call)
            return result

        return await call_with_fallback(plan.backends, attempt, policy, self.breakers)


def _kind(error: UpstreamError) -> str:
    """An upstream failure in one word for a metric label: its status, timeout, or error."""
    if isinstance(error, UpstreamStatus):
        return str(error.upstream_status)
    if isinstance(error, UpstreamTimeout):
        return "timeout"
    return "error"


def fit_context(prompt_tokens: int, output_limit: int, backends: list[Backend]) -> list[Backend]:
    """Keep the backends whose context window holds the prompt plus the requested output."""
    fitting = [backend for backend in backends if prompt_tokens + output_limit <= backend.spec.context_window]
    if not fitting:
        largest = max(backend.spec.context_window for backend in backends)
        asked = f" and asks for up to {output_limit} more" if output_limit else ""
        lower = " or lower max_tokens" if output_limit else ""
        raise ContextWindowExceeded(
            f"This request has {prompt_tokens} prompt tokens{asked}, over the context window of every "
            f"backend it may use (largest: {largest} tokens). Shorten the messages{lower}.",
            param="messages",
        )
    return fitting
