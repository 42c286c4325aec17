"""Metrics in Prometheus' format and traces over OTLP, read as Prometheus and a collector read them.

The metrics tests scrape the running gateway and parse the exposition with prometheus_client's own
parser; the tracing test starts an OTLP/HTTP collector on loopback, points a gateway at it with
OTEL_EXPORTER_OTLP_ENDPOINT and decodes the spans it receives with OpenTelemetry's protobufs.
(Workers: tests/test_limits_gateway.py scrapes 2-worker gateways, whose counts must add up.)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import (
    ADMIN_KEY,
    Emulators,
    own_gateway,
    wait_for_rows,
)
from tests.conftest import (
    ROOT as ROOT_DIR,
)
from tests.conftest import (
    test_policy as make_test_policy,
)

HELLO = [{"role": "user", "content": "hello there"}]


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    response = httpx.get(base_url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[Any, float], name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include these."""
    return sum(
        value
        for (sample, pairs), value in samples.items()
        if sample == name and all((k, v) in pairs for k, v in labels.items())
    )


def test_metrics_follow_requests_streams_errors_and_signals(gateway, emulators) -> None:
    before = scrape(gateway.base_url)
    client = gateway.client()
    client.chat.completions.create(model="gpt-4", messages=HELLO)
    stream = client.chat.completions.create(model="claude", messages=HELLO, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Mail jane.roe@fastmail.com the summary"}]
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=HELLO)
    with pytest.raises(openai.AuthenticationError):  # refused before any Exchange: counted too
        gateway.client(key="tnt_" + "x" * 43).chat.completions.create(model="gpt-4", messages=HELLO)
    after = scrape(gateway.base_url)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("turnout_requests_total", api="chat", backend="gpt-4", status="200") == 1
    assert delta("turnout_requests_total", api="chat", status="404") == 1
    assert delta("turnout_request_errors_total", api="chat", error_type="model_not_found") == 1
    assert delta("turnout_requests_total", api="chat", status="401") == 1
    assert delta("turnout_request_errors_total", api="chat", error_type="invalid_api_key") == 1
    claude = {"backend": "claude", "gen_ai_provider_name": "anthropic"}
    assert delta("gen_ai_server_time_to_first_token_seconds_count", **claude) == 1
    assert delta("gen_ai_server_time_per_output_token_seconds_count", **claude) == 1
    assert delta("gen_ai_server_request_duration_seconds_count", backend="gpt-4") == 1
    assert delta("gen_ai_client_operation_duration_seconds_count", backend="gpt-4", error_type="") == 1
    assert delta("turnout_upstream_attempts_total", backend="gpt-4", outcome="ok") == 1
    assert delta("gen_ai_client_token_usage_sum", backend="gpt-4", gen_ai_token_type="input") > 0
    assert delta("turnout_cost_usd_total", backend="gpt-4") > 0
    assert delta("turnout_gateway_overhead_seconds_count") == 4
    # the e-mail: a finding of its type, kept on a private backend, and the decision's reason
    assert delta("turnout_sensitivity_findings_total", type="email") == 1
    assert delta("turnout_sensitivity_requests_total", action="reroute") == 1
    assert delta("turnout_routing_decisions_total", reason="private") == 1
    assert delta("turnout_routing_decisions_total", reason="named") == 2
    assert after[("turnout_inflight_requests", ())] == 0
    # seconds, not milliseconds: an emulated answer takes well under one
    duration = delta("gen_ai_server_request_duration_seconds_sum", backend="gpt-4")
    assert 0 < duration < 1


def test_upstream_failures_are_counted_per_backend(gateway, emulators) -> None:
    before = scrape(gateway.base_url)
    answer = gateway.client().chat.completions.create(model="refused", messages=HELLO)
    assert answer.choices[0].message.content  # the fallback answered
    after = scrape(gateway.base_url)
    refused = total(after, "turnout_upstream_attempts_total", backend="refused", outcome="error")
    assert refused - total(before, "turnout_upstream_attempts_total", backend="refused", outcome="error") >= 1
    ok = total(after, "turnout_upstream_attempts_total", backend="llama", outcome="ok")
    assert ok - total(before, "turnout_upstream_attempts_total", backend="llama", outcome="ok") == 1


def test_a_stream_broken_mid_way_is_its_backends_error(gateway, emulators) -> None:
    """A third trial (2026-12-08): a backend that broke every stream after its first event showed
    no error at all, each counted ok when it opened. A whole stream is one ok."""
    before = scrape(gateway.base_url)
    emulators.vllm.fault("drop_mid_stream", after_chunks=3)
    with pytest.raises(openai.APIError):
        for _ in gateway.client().chat.completions.create(model="llama", messages=HELLO, stream=True):
            pass
    for _ in gateway.client().chat.completions.create(model="llama", messages=HELLO, stream=True):
        pass
    after = scrape(gateway.base_url)

    def delta(outcome: str) -> float:
        name = "turnout_upstream_attempts_total"
        return total(after, name, backend="llama", outcome=outcome) - total(
            before, name, backend="llama", outcome=outcome
        )

    assert delta("stream_interrupted") == 1 and delta("ok") == 1


# --- traces -----------------------------------------------------------------------------------


class Collector:
    """An OTLP/HTTP trace receiver on loopback: it keeps every span it is sent."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        spans: list[Any] = []
        self.spans = spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    for resource in request.resource_spans:
                        service = {a.key: a.value.string_value for a in resource.resource.attributes}
                        for scope in resource.scope_spans:
                            spans.extend((service, span) for span in scope.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, ready: Any, timeout_s: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready(self.spans):
                return self.spans
            time.sleep(0.1)
        raise AssertionError(f"spans never arrived; got {[s.name for _, s in self.spans]}")


def attributes(span: Any) -> dict[str, Any]:
    values = {}
    for attribute in span.attributes:
        value = attribute.value
        values[attribute.key] = getattr(value, value.WhichOneof("value"))
    return values


@pytest.fixture
def traced_gateway(
    pg_url: str, emulators: Emulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Collector]]:
    collector = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "turnout-test")
    try:
        with own_gateway(pg_url, emulators, tmp_path) as base_url:
            yield base_url, collector
    finally:
        collector.server.shutdown()


def test_one_trace_per_request_with_its_steps_and_genai_attributes(traced_gateway) -> None:
    base_url, collector = traced_gateway
    secret = "Please summarise the plan for Zanzibar-7 by Friday"
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    assert httpx.get(base_url + "/metrics").status_code == 200  # scrapes and probes are not traced
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    answer = httpx.post(
        base_url + "/v1/chat/completions",
        headers={**headers, "traceparent": f"00-{caller_trace}-{caller_span}-01"},
        json={"model": "auto", "messages": [{"role": "user", "content": secret}]},
    )
    assert answer.status_code == 200
    streamed = httpx.post(
        base_url + "/v1/chat/completions",
        headers=headers,
        json={"model": "refused", "messages": HELLO, "stream": True},
    )
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    missing = httpx.post(
        base_url + "/v1/chat/completions",
        headers=headers,
        json={"model": "gpt-4", "messages": HELLO, "turnout": {"rag": True, "collection": "never-ingested"}},
    )
    assert missing.status_code == 404

    model = httpx.get(base_url + "/v1/models/gpt-4", headers=headers)
    assert model.status_code == 200

    def roots(spans: list[Any]) -> list[Any]:  # the request spans: the first is the caller's child
        return [span for _, span in spans if span.kind == span.SPAN_KIND_SERVER]

    spans = collector.wait(lambda spans: len(roots(spans)) >= 4)
    assert {service.get("service.name") for service, _ in spans} == {"turnout-test"}
    assert not [span for _, span in spans if span.name == "GET /metrics"]
    by_trace: dict[bytes, list[Any]] = {}
    for _, span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    first, second, third, fourth = sorted(roots(spans), key=lambda span: span.start_time_unix_nano)
    # the caller's trace goes on: the request's span is a child of the caller's span
    assert (first.trace_id.hex(), first.parent_span_id.hex()) == (caller_trace, caller_span)
    # named by the route's template, never by a raw path with an id in it
    assert fourth.name == "GET /v1/models/{model}" and attributes(fourth)["url.path"] == "/v1/models/gpt-4"

    # the routed request: its steps are children of its own span, timed inside it
    children = {span.name: span for span in by_trace[first.trace_id] if span.parent_span_id == first.span_id}
    assert first.name == "POST /v1/chat/completions" and first.kind == first.SPAN_KIND_SERVER
    assert {"auth", "classify", "limits"} <= set(children)
    upstream = [span for name, span in children.items() if name.startswith("chat ")]
    assert len(upstream) == 1 and upstream[0].kind == upstream[0].SPAN_KIND_CLIENT
    for child in children.values():
        assert first.start_time_unix_nano <= child.start_time_unix_nano
        assert child.end_time_unix_nano <= first.end_time_unix_nano
    root = attributes(first)
    assert root["gen_ai.operation.name"] == "chat" and root["gen_ai.request.model"] == "auto"
    assert root["gen_ai.usage.input_tokens"] > 0 and root["gen_ai.usage.output_tokens"] > 0
    assert root["turnout.backend"] and root["gen_ai.response.model"]
    assert root["http.response.status_code"] == 200
    call = attributes(upstream[0])
    assert call["gen_ai.request.model"] == root["gen_ai.response.model"]
    assert call["gen_ai.usage.output_tokens"] == root["gen_ai.usage.output_tokens"]
    # no prompt text anywhere, attributes or events, unless a setting asks for it
    everything = [str(v) for _, span in spans for v in attributes(span).values()]
    everything += [str(event) for _, span in spans for event in span.events]
    assert not any("Zanzibar" in value for value in everything)

    # the stream: failed attempts (connection refused, retried once), then the fallback, in one trace
    attempts = sorted(
        (s for s in by_trace[second.trace_id] if s.name.startswith("chat ")),
        key=lambda span: span.start_time_unix_nano,
    )
    backends = [attributes(s)["turnout.backend"] for s in attempts]
    assert backends == ["refused", "refused", "llama"]
    assert [s.status.code for s in attempts] == [2, 2, 0]  # ERROR, ERROR, UNSET
    assert [attributes(s).get("error.type") for s in attempts] == ["error", "error", None]
    assert not [event for s in attempts for event in s.events]  # no exception (nor its message) recorded
    assert attributes(second)["turnout.backend"] == "llama"

    # retrieval from a collection never ingested: its span, and the request's 404
    steps = {s.name: s for s in by_trace[third.trace_id]}
    assert "retrieval" in steps and attributes(third)["http.response.status_code"] == 404
    assert attributes(third)["error.type"] == "collection_not_found"


def test_prompts_are_recorded_only_when_asked(
    pg_url: str, emulators: Emulators, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collector = Collector()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    try:
        with own_gateway(pg_url, emulators, tmp_path, trace_prompts=True) as base_url:
            answer = httpx.post(
                base_url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
                json={"model": "llama", "messages": [{"role": "user", "content": "Zanzibar-7"}]},
            )
            assert answer.status_code == 200
            spans = collector.wait(lambda spans: any(not s.parent_span_id for _, s in spans))
    finally:
        collector.server.shutdown()
    root = next(span for _, span in spans if not span.parent_span_id)
    assert "Zanzibar-7" in attributes(root)["gen_ai.input.messages"]


def test_a_blocked_request_is_counted_and_ledgered_as_sensitive(
    pg_url: str, emulators: Emulators, tmp_path: Path
) -> None:
    import yaml

    policy = make_test_policy(emulators, tmp_path / "policy.yaml")
    document = yaml.safe_load(policy.read_text())
    document["sensitivity"]["action"] = "block"
    policy.write_text(yaml.safe_dump(document, sort_keys=False))
    with own_gateway(pg_url, emulators, tmp_path, policy, usage_flush_seconds=0.1) as base_url:
        refused = httpx.post(
            base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            json={
                "model": "auto",
                "messages": [{"role": "user", "content": "Mail it to ann.lee@fastmail.com"}],
            },
        )
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "sensitive_data"
        samples = scrape(base_url)
    assert total(samples, "turnout_sensitivity_requests_total", action="block") == 1
    assert total(samples, "turnout_sensitivity_findings_total", type="email") == 1
    assert total(samples, "turnout_request_errors_total", error_type="sensitive_data") == 1
    rows = wait_for_rows(
        pg_url,
        "SELECT sensitive, finding_types, category FROM turnout_usage "
        "WHERE status = 400 AND error LIKE '%%policy blocks it%%' AND ts > now() - interval '1 minute'",
    )
    assert rows[-1]["sensitive"] is True and rows[-1]["finding_types"] == "email" and rows[-1]["category"]


SAMPLED, UNSAMPLED = (
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
)


@pytest.mark.parametrize(
    ("sampler", "traceparent", "exported"),
    [
        ("always_on", None, 2),
        ("always_off", None, 0),
        ("parentbased_always_on", UNSAMPLED, 0),  # the caller decided not to
        ("parentbased_always_off", SAMPLED, 2),  # the caller decided to
        ("always_off", SAMPLED, 0),  # a sampler that ignores parents ignores the caller's
    ],
)
def test_the_sampler_decides_before_any_span_is_built(
    sampler: str, traceparent: str | None, exported: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from router.tracing import Tracing

    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    memory = InMemorySpanExporter()
    processor = SimpleSpanProcessor(memory)
    provider = TracerProvider()  # reads OTEL_TRACES_SAMPLER, as Tracing.from_env's does
    provider.add_span_processor(processor)
    tracing = Tracing(provider, processor)
    headers = [(b"traceparent", traceparent.encode())] if traceparent else []
    with tracing.request("POST", "/v1/chat/completions", headers) as root:
        with tracing.span("classify"):
            pass
        assert root is not None
    spans = memory.get_finished_spans()
    assert len(spans) == exported
    if exported:
        parent, child = sorted(spans, key=lambda span: span.kind != span.kind.SERVER)
        assert child.parent is not None and child.parent.span_id == parent.context.span_id
        assert parent.start_time <= child.start_time <= child.end_time <= parent.end_time


def test_the_exporter_process_leaves_with_its_gateway_and_a_dead_one_stops_tracing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import subprocess
    import sys

    from router.tracing import ExportProcess

    # a gateway killed with SIGKILL sends no end marker: its exporter still exits
    script = (
        "import os, time\n"
        "os.environ['OTEL_EXPORTER_OTLP_ENDPOINT'] = 'http://127.0.0.1:9'\n"
        "from router.tracing import Tracing\n"
        "if __name__ == '__main__':\n"
        "    tracing = Tracing.from_env()\n"
        "    print(tracing.sink.process.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    (tmp_path / "gateway.py").write_text(script)
    gateway = subprocess.Popen(
        [sys.executable, str(tmp_path / "gateway.py")], stdout=subprocess.PIPE, text=True, cwd=ROOT_DIR
    )
    try:
        assert gateway.stdout is not None
        exporter = int(gateway.stdout.readline())
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(exporter):
            time.sleep(0.1)
        assert not _alive(exporter)
    finally:
        gateway.kill()

    # an exporter that cannot start (a batch larger than its queue): said once, nothing raised
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "100000")
    sink = ExportProcess("turnout-test")
    sink.process.join(20)
    assert not sink.process.is_alive()
    sink.put(1, [])
    sink.flush()
    assert sink.dead
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 5


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent to be reaped counts as gone
        return "Z" not in open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
    except OSError:
        return False


def test_a_dead_workers_live_gauges_leave_the_sum(tmp_path: Path) -> None:
    """Multiprocess mode: a worker that died mid-request (no shutdown) still held an in-flight
    request and a down store in its files; the next worker to start sweeps them out."""
    import subprocess
    import sys

    folder = tmp_path / "metrics"
    folder.mkdir()
    dying = (
        "import os\n"
        "from router.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.request_started()\n"
        "m.limiter_up.labels('redis').set(0)\n"
        "os._exit(0)\n"
    )
    reading = (
        "from router.metrics import Metrics\n"
        "m = Metrics()\n"
        "m.limiter_up.labels('redis').set(1)\n"
        "print(m.render().decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    died = subprocess.run([sys.executable, "-c", dying], env=env, cwd=ROOT_DIR, timeout=60)
    assert died.returncode == 0 and list(folder.glob("gauge_livesum_*.db"))
    text = subprocess.run(
        [sys.executable, "-c", reading], env=env, cwd=ROOT_DIR, timeout=60, capture_output=True, text=True
    ).stdout
    assert "turnout_inflight_requests 0.0" in text
    assert 'turnout_limiter_store_up{limiter="redis"} 1.0' in text  # the dead worker's 0 is gone
