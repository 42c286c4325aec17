"""Traces with the OpenTelemetry SDK, exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

One span per HTTP request (kind SERVER, opened at the ASGI edge so that it covers a stream to its
last byte; a child of the caller's trace when a W3C `traceparent` header names one), with children
for auth, limits, classify, retrieval and each upstream attempt (kind CLIENT, "chat <upstream
model>" as GenAI's conventions name them). GenAI attributes: `gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.usage.input_tokens|output_tokens`; turnout's own under `turnout.*`. Prompts are recorded
(`gen_ai.input.messages`) only when TURNOUT_TRACE_PROMPTS is true; exceptions never are (an
upstream's error message may quote the request): a failed span has status ERROR and `error.type`.

While a request runs, its spans are plain records (a name, two clock readings, attributes); when
it has sent its last byte, a sampled request's records cross a bounded queue (in batches every
50 ms) to an exporter process,
where they become the SDK's ReadableSpans for its BatchSpanProcessor and OTLP exporter. The SDK's
live spans cost ~45 µs each on this CPU (locks, context attach, ids) and would sit on the request
path five times over; a record costs ~1 µs. Encoding and posting them from a thread of the gateway
took a third of its CPU at saturation, under the same GIL as the event loop.

Off (no endpoint), no SDK is imported and every `span()` is one shared null context.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import random
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_OFF = contextlib.nullcontext()
log = logging.getLogger("turnout.tracing")
SERVER, CLIENT, INTERNAL = "server", "client", "internal"


class Record:
    """One span while its request runs: what the SDK's span would hold, nothing it would do."""

    __slots__ = ("attributes", "end", "error", "kind", "name", "start")

    def __init__(self, name: str, kind: str, attributes: dict[str, Any] | None) -> None:
        self.name = name
        self.kind = kind
        self.start = time.time_ns()
        self.end = 0
        self.attributes = dict(attributes) if attributes else {}
        self.error: str | None = None  # the error type when the span failed

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self.attributes.update(attributes)

    def update_name(self, name: str) -> None:
        self.name = name


class RequestTrace:
    """The records of one request: its own span first, its children after."""

    __slots__ = ("children", "parent", "root")

    def __init__(self, root: Record, parent: Any) -> None:
        self.root = root
        self.children: list[Record] = []
        self.parent = parent  # the caller's SpanContext, if it sent one


_current: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar("turnout_trace", default=None)


class _Child:
    """A child span of the current request's, as a context manager."""

    __slots__ = ("record", "trace")

    def __init__(self, trace: RequestTrace, name: str, kind: str, attributes: dict[str, Any] | None) -> None:
        self.trace = trace
        self.record = Record(name, kind, attributes)

    def __enter__(self) -> Record:
        return self.record

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        self.record.end = time.time_ns()
        if error is not None and self.record.error is None:
            self.record.error = type(error).__name__
        self.trace.children.append(self.record)


class Tracing:
    """The app's tracing, or nothing. `span(name)` is a context manager either way.

    A finished request's spans go to `processor` in this process when one is given (tests), else
    to an exporter process (`ExportProcess`): encoding spans into protobuf and posting them took a
    third of the gateway's CPU at saturation when a thread of its own process did it, sharing the
    GIL with the event loop."""

    def __init__(
        self,
        provider: TracerProvider | None = None,
        processor: SpanProcessor | None = None,
        prompts: bool = False,
        sink: ExportProcess | None = None,
    ) -> None:
        self.provider = provider  # its sampler and resource; its own processors export nothing here
        self.processor = processor
        self.prompts = prompts
        self.sink = sink

    @classmethod
    def from_env(cls, service: str = "turnout", prompts: bool = False) -> Tracing:
        """On when OTEL_EXPORTER_OTLP_ENDPOINT (or its traces-only variant) is set; the exporter
        reads the rest of the OTEL_* variables itself (headers, timeout, batch delay), the sampler
        OTEL_TRACES_SAMPLER."""
        if not (os.environ.get(ENDPOINT_ENV) or os.environ.get(TRACES_ENDPOINT_ENV)):
            return cls()
        from opentelemetry.sdk.trace import TracerProvider

        service = os.environ.get("OTEL_SERVICE_NAME", service)
        int(os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE", "65536"))  # a bad value fails here, at start-up
        return cls(TracerProvider(resource=_resource(service)), None, prompts, ExportProcess(service))

    @property
    def on(self) -> bool:
        return self.provider is not None

    def span(self, name: str, attributes: dict[str, Any] | None = None, client: bool = False) -> Any:
        """A child of the current request's span; a null context when off or outside a request."""
        trace = _current.get() if self.provider is not None else None
        if trace is None:
            return _OFF
        return _Child(trace, name, CLIENT if client else INTERNAL, attributes)

    @contextlib.contextmanager
    def request(self, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Iterator[Record | None]:
        """The span of one HTTP request, current for everything that answers it. Named by its
        method until the edge knows the route's template (raw paths carry ids)."""
        if self.provider is None:
            yield None
            return
        from opentelemetry.propagate import extract
        from opentelemetry.trace import get_current_span

        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
        parent = get_current_span(extract(carrier)).get_span_context()
        root = Record(method, SERVER, {"http.request.method": method, "url.path": path})
        trace = RequestTrace(root, parent if parent.is_valid else None)
        token = _current.set(trace)
        try:
            yield root
        except BaseException as error:
            root.error = root.error or type(error).__name__
            raise
        finally:
            _current.reset(token)
            root.end = time.time_ns()
            self._export(trace)

    def _export(self, trace: RequestTrace) -> None:
        """A sampled request's records, as plain tuples, to the exporter."""
        from opentelemetry.trace import SpanKind

        assert self.provider is not None
        parent = trace.parent
        trace_id = parent.trace_id if parent is not None else _id(128)
        root = trace.root
        context = None
        if parent is not None:  # the sampler decides with the caller's span as parent (parentbased_*)
            from opentelemetry.trace import NonRecordingSpan, set_span_in_context

            context = set_span_in_context(NonRecordingSpan(parent))
        decision = self.provider.sampler.should_sample(
            context, trace_id, root.name, SpanKind.SERVER, root.attributes
        )
        if not decision.decision.is_sampled():
            return
        root_id = _id(64)
        remote = (parent.span_id, True) if parent is not None else None
        spans: list[Flat] = [
            (root.name, root.kind, root.start, root.end, root.attributes, root.error, root_id, remote)
        ]
        for child in trace.children:
            spans.append(
                (child.name, child.kind, child.start, child.end or root.end, child.attributes, child.error,
                 _id(64), (root_id, False))
            )  # fmt: skip
        if self.processor is not None:
            for span in readable_spans(self.provider.resource, trace_id, spans):
                self.processor.on_end(span)
        elif self.sink is not None:
            self.sink.put(trace_id, spans)

    def shutdown(self) -> None:
        """Export what is left, then stop (the app's shutdown)."""
        if self.sink is not None:
            self.sink.close()
        if self.processor is not None:
            self.processor.shutdown()


# one span as it crosses to the exporter: name, kind, start and end (ns), attributes, error type,
# span id, and its parent's (span id, whether it is the caller's) or None
Flat = tuple[str, str, int, int, dict[str, Any], "str | None", int, "tuple[int, bool] | None"]


def _resource(service: str) -> Any:
    from opentelemetry.sdk.resources import Resource

    return Resource.create({"service.name": service})


def readable_spans(resource: Any, trace_id: int, spans: list[Flat]) -> Iterator[Any]:
    """The SDK's spans of one trace, from their flat form."""
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    scope = InstrumentationScope("turnout")
    flags = TraceFlags(TraceFlags.SAMPLED)
    kinds = {SERVER: SpanKind.SERVER, CLIENT: SpanKind.CLIENT, INTERNAL: SpanKind.INTERNAL}
    for name, kind, start, end, attributes, error, span_id, parent in spans:
        status = Status(StatusCode.UNSET)
        if error is not None:
            attributes = {**attributes, "error.type": error}
            status = Status(StatusCode.ERROR)
        parent_context = SpanContext(trace_id, parent[0], parent[1], flags) if parent is not None else None
        yield ReadableSpan(
            name,
            SpanContext(trace_id, span_id, False, flags),
            parent_context,
            resource,
            attributes,
            kind=kinds[kind],
            status=status,
            start_time=start,
            end_time=end,
            instrumentation_scope=scope,
        )


class ExportProcess:
    """The SDK's batch processor and OTLP exporter in a process of their own, fed finished traces
    through a bounded queue, a batch every FLUSH_S (one pickle and one pipe write for many
    requests, not a feeder-thread wake-up for each); when the queue is full (the collector is away
    or slow), batches are dropped and counted, never waited for."""

    FLUSH_S = 0.05
    BATCH = 256

    def __init__(self, service: str, max_batches: int = 2_000) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no event loop, no locks
        self.queue: Any = context.Queue(max_batches)
        self.process = context.Process(
            target=_export_loop, args=(self.queue, service), name="turnout-otlp", daemon=True
        )
        self.process.start()
        self.pending: list[tuple[int, list[Flat]]] = []
        self.dropped = 0  # traces
        self.closed = False
        self.dead = False  # the exporter process ended on its own (a bad OTEL_BSP_* value, OOM)

    def put(self, trace_id: int, spans: list[Flat]) -> None:
        """Called on the event loop, when a request has sent its last byte."""
        import asyncio

        if self.closed or self.dead:
            return
        self.pending.append((trace_id, spans))
        if len(self.pending) >= self.BATCH:
            self.flush()
        elif len(self.pending) == 1:
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
            except RuntimeError:  # no loop (a caller outside the server): no waiting either
                self.flush()

    def flush(self) -> None:
        import queue

        batch, self.pending = self.pending, []
        if not batch or self.closed or self.dead:
            return
        if not self.process.is_alive():
            self.dead = True
            log.error(
                "the trace exporter process ended (exit code %s); traces are no longer sent",
                self.process.exitcode,
            )
            return
        try:
            self.queue.put_nowait(batch)
        except queue.Full:
            self.dropped += len(batch)
            log.warning("trace exporter behind: %d traces dropped so far", self.dropped)

    def close(self, timeout_s: float = 10.0) -> None:
        """The exporter sends what it holds and stops; a hung one is stopped after `timeout_s`."""
        import contextlib as _contextlib

        self.flush()
        self.closed = True
        with _contextlib.suppress(Exception):
            self.queue.put(None, timeout=1.0)
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.terminate()
        self.queue.cancel_join_thread()  # what a dead exporter never read must not hold our exit
        self.queue.close()


def _export_loop(queue: Any, service: str) -> None:
    """The exporter process: traces in, the SDK's BatchSpanProcessor and OTLPSpanExporter out."""
    import multiprocessing
    import queue as queues
    import signal

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway's Ctrl-C is for the gateway: it says when
    # a queue that holds a few seconds of a busy gateway's spans while a batch is posted; the SDK
    # logs every span it drops past it, one line each: not here, where it would flood the log
    logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)
    resource = _resource(service)
    queue_size = int(os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE", "65536"))
    processor = BatchSpanProcessor(OTLPSpanExporter(), max_queue_size=queue_size)
    gateway = multiprocessing.parent_process()
    while gateway is None or gateway.is_alive():  # a gateway killed with SIGKILL sends no end marker
        try:
            batch = queue.get(timeout=1.0)
        except queues.Empty:
            continue
        if batch is None:
            break
        for trace_id, spans in batch:
            for span in readable_spans(resource, trace_id, spans):
                processor.on_end(span)
    processor.shutdown()


def _id(bits: int) -> int:
    """A random trace or span id; zero is invalid in W3C trace context."""
    return random.getrandbits(bits) or 1


def failed(span: Record | None, error_type: str) -> None:
    """Mark a span failed with the error's type only (its message may quote the request); the
    first cause named stays (a 502 written after the upstream's failure does not replace it)."""
    if span is not None and span.error is None:
        span.error = error_type


def current_span() -> Record | None:
    """The span of the request being answered, if tracing is on."""
    trace = _current.get()
    return trace.root if trace is not None else None
