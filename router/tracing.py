"""Traces with the OpenTelemetry SDK, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

One span per HTTP request (kind SERVER, started at the ASGI edge so that it covers a stream to its
last byte), with children for auth, limits, classify, retrieval and each upstream attempt (kind
CLIENT, named "chat <upstream model>" as GenAI's conventions name them). GenAI attributes:
`gen_ai.operation.name`, `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.usage.input_tokens|output_tokens`; turnout's own under `turnout.*`. Prompts are recorded
(`gen_ai.input.messages`) only when TURNOUT_TRACE_PROMPTS is true.

Off (no endpoint), no SDK is imported and every `span()` is one shared null context: nothing to
measure. The provider is this app's own, not OpenTelemetry's global one, so that two gateways in
one process (the tests) each export their own spans.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_OFF = contextlib.nullcontext()
# perf_counter is what the pipeline times with; spans want epoch nanoseconds
_EPOCH_OFFSET_NS = time.time_ns() - time.perf_counter_ns()


def epoch_ns(perf_s: float) -> int:
    return _EPOCH_OFFSET_NS + int(perf_s * 1e9)


class Tracing:
    """The app's tracer, or nothing. `span(name)` is a context manager either way."""

    def __init__(self, provider: TracerProvider | None = None, prompts: bool = False) -> None:
        self.provider = provider
        self.tracer: Tracer | None = provider.get_tracer("turnout") if provider is not None else None
        self.prompts = prompts

    @classmethod
    def from_env(cls, service: str = "turnout", prompts: bool = False) -> Tracing:
        """On when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces-only variant) is set; the exporter reads
        the rest of the OTEL_* variables itself (headers, timeout, batch delay)."""
        if not (os.environ.get(ENDPOINT_ENV) or os.environ.get(TRACES_ENDPOINT_ENV)):
            return cls()
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)})
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider, prompts)

    @property
    def on(self) -> bool:
        return self.tracer is not None

    def span(self, name: str, attributes: dict[str, Any] | None = None, client: bool = False) -> Any:
        """A child of the current span, current inside the `with`; a null context when off."""
        if self.tracer is None:
            return _OFF
        from opentelemetry.trace import SpanKind

        kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
        return self.tracer.start_as_current_span(name, kind=kind, attributes=attributes)

    @contextlib.contextmanager
    def request(self, method: str, path: str) -> Iterator[Span | None]:
        """The span of one HTTP request, current for everything that answers it."""
        if self.tracer is None:
            yield None
            return
        from opentelemetry.trace import SpanKind

        attributes = {"http.request.method": method, "url.path": path}
        with self.tracer.start_as_current_span(
            f"{method} {path}", kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            yield span

    def shutdown(self) -> None:
        """Export what is left, then stop (the app's shutdown)."""
        if self.provider is not None:
            self.provider.shutdown()


def current_span() -> Span | None:
    """The span requests are being traced under, if tracing is on and one is current."""
    from opentelemetry import trace

    span = trace.get_current_span()
    return span if span.is_recording() else None
