"""Small pure parts: request schema, policy validation, circuit breaker, Retry-After, backend registry."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from router.accounts.auth import Principal
from router.backends import build_backends
from router.backends.base import retry_after_seconds
from router.backends.http import HttpClient
from router.http.errors import InvalidRequest, NoBackendAvailable, PolicyError, UpstreamError
from router.pipeline.gateway import Gateway
from router.pipeline.resilience import CircuitBreaker, CircuitState
from router.policy.model import Circuit, load_policy, parse_policy
from router.schema import parse_chat_request
from router.settings import Settings, describe_invalid

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("path", sorted((ROOT / "policies").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_policy_loads(path):
    loaded = load_policy(path)
    assert loaded.policy.routes and len(loaded.version) == 12


def test_default_policy_declares_the_four_backends():
    policy = load_policy(ROOT / "policies" / "default.yaml").policy
    providers = {name: spec.provider for name, spec in policy.backends.items()}
    assert providers == {"gpt-4": "openai", "claude": "anthropic", "haiku": "anthropic", "llama": "vllm"}
    assert policy.backends["llama"].data == "private"


POLICY = """\
version: 1
defaults:
  route: main
backends:
  a:
    provider: openai
    model: m
    data: external
routes:
  - name: main
    backends: [a]
"""


def test_unknown_key_is_reported_with_file_and_line():
    text = POLICY.replace("    data: external\n", "    data: external\n    colour: blue\n")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, Path("p.yaml"))
    assert caught.value.message == "p.yaml:9: backends.a.colour: unknown key"


def test_a_key_written_twice_is_reported_not_silently_overridden():
    text = POLICY.replace("    data: external\n", "    data: external\n    data: private\n")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, Path("p.yaml"))
    assert caught.value.message == "p.yaml:9: backends.a.data: duplicate key (an earlier line sets it too)"
    doubled_route = POLICY + "  - name: main\n    backends: [a]\n    backends: [a]\n"
    with pytest.raises(PolicyError, match=r"p.yaml:14: routes.1.backends: duplicate key"):
        parse_policy(doubled_route, Path("p.yaml"))


def test_bad_type_and_dangling_reference_are_reported_with_lines():
    with pytest.raises(
        PolicyError, match=r"p.yaml:8: backends.a.data: Input should be 'external' or 'private'"
    ):
        parse_policy(POLICY.replace("data: external", "data: public"), Path("p.yaml"))
    with pytest.raises(
        PolicyError, match=r"p.yaml:11: routes.0.backends.0: route 'main' names unknown backend 'b'"
    ):
        parse_policy(POLICY.replace("backends: [a]", "backends: [b]"), Path("p.yaml"))
    with pytest.raises(PolicyError, match=r"p.yaml:3: defaults.route: default route 'other'"):
        parse_policy(POLICY.replace("route: main", "route: other"), Path("p.yaml"))
    with pytest.raises(PolicyError, match=r"p.yaml:\d+: not valid YAML"):
        parse_policy("backends: [a\n", Path("p.yaml"))


def test_an_error_inside_a_nested_any_names_its_own_line():
    nested = POLICY.replace(
        "  - name: main\n",
        "  - name: main\n    when:\n      any:\n        - category: [code]\n        - any:\n            sensitive: true\n",
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(nested, Path("p.yaml"))
    # line 14 is the inner `any:`; the outer one (line 12) shares its name and once took the blame
    assert caught.value.message.startswith("p.yaml:14: routes.0.when.any.1.any: Input should be a valid list")


def test_request_schema_names_the_field():
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_request(b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "top_p": 3}')
    assert caught.value.param == "top_p"
    request = parse_chat_request(
        b'{"model": "auto", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}], "max_tokens": 5}'
    )
    assert request.messages[0].text() == "ab" and request.output_limit == 5


def test_circuit_breaker_opens_probes_once_and_closes():
    now = [0.0]
    breaker = CircuitBreaker(Circuit(failures=2, cooldown_s=10), clock=lambda: now[0])
    breaker.failure()
    assert breaker.allow()
    breaker.failure()
    assert breaker.state is CircuitState.open and not breaker.allow()
    now[0] = 10.0
    assert breaker.allow() and not breaker.allow()  # exactly one probe
    breaker.failure()
    assert breaker.state is CircuitState.open and not breaker.allow()
    now[0] = 20.0
    assert breaker.allow()
    breaker.success()
    assert breaker.state is CircuitState.closed and breaker.allow()


def test_retry_after_forms():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after_seconds({}) is None


def test_backends_without_keys_are_left_out_and_routing_says_why(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(policy=ROOT / "policies" / "default.yaml", home=tmp_path)
    built = build_backends(load_policy(settings.policy).policy, settings, HttpClient())
    assert set(built.ready) == {"llama"}
    assert built.unavailable == {
        "gpt-4": "missing OPENAI_API_KEY",
        "claude": "missing ANTHROPIC_API_KEY",
        "haiku": "missing ANTHROPIC_API_KEY",
    }
    gateway = Gateway(settings, HttpClient())
    request = parse_chat_request(b'{"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}')
    with pytest.raises(NoBackendAvailable, match="gpt-4: missing OPENAI_API_KEY") as caught:
        asyncio.run(gateway.plan(request, Principal("k", "k")))
    assert caught.value.status_code == 503


def settled(path: Path, text: str) -> None:
    """Write a policy as an editor would, a second ago (the watcher leaves files written just now)."""
    path.write_text(text)
    then = time.time() - 1
    os.utime(path, (then, then))


def test_bad_policy_edit_keeps_the_last_good_policy(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("provider: openai", "provider: vllm"))
    gateway = Gateway(Settings(policy=path, home=tmp_path), HttpClient())
    version = gateway.runtime.loaded.version
    settled(path, POLICY.replace("routes:", "routez:"))
    assert gateway.reload_if_changed() is False
    assert gateway.runtime.loaded.version == version and "routez: unknown key" in (gateway.policy_error or "")
    settled(path, POLICY.replace("provider: openai", "provider: vllm").replace("model: m", "model: m2"))
    assert gateway.reload_if_changed() is True
    assert gateway.policy_error is None and gateway.runtime.loaded.policy.backends["a"].model == "m2"


def test_dataset_registry_resolves_and_verifies(tmp_path, monkeypatch):
    from evals.datasets import REGISTRY, DatasetError, resolve

    with pytest.raises(DatasetError, match="unknown dataset"):
        resolve("no-such-data")
    dataset = REGISTRY["mt-bench"]
    mirror = tmp_path / "mirror"
    (mirror / dataset.local_path).parent.mkdir(parents=True)
    (mirror / dataset.local_path).write_text("tampered\n")
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(mirror))
    with pytest.raises(DatasetError, match="does not match the registered sha256"):
        resolve("mt-bench", download=False)
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("router.datafiles.CHECKOUT", tmp_path / "nowhere" / "repo")
    with pytest.raises(DatasetError, match="not in"):
        resolve("mt-bench", download=False)
    assert all(len(d.sha256) == 64 and d.license for d in REGISTRY.values())


def test_a_bad_setting_is_one_line_under_its_variable_and_secrets_are_not_echoed() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as bad:
        Settings(port=70000, limits_on_failure="sometimes")
    line = describe_invalid(bad.value)
    assert "\n" not in line
    assert "TURNOUT_PORT: Input should be less than or equal to 65535 (got 70000)" in line
    assert "TURNOUT_LIMITS_ON_FAILURE: Input should be 'open' or 'closed' (got 'sometimes')" in line
    with pytest.raises(ValidationError) as secret:
        Settings(OPENAI_API_KEY=["sk-not-a-string"])
    assert describe_invalid(secret.value).startswith("OPENAI_API_KEY: ")
    assert "sk-not-a-string" not in describe_invalid(secret.value)


def test_a_policy_file_still_being_written_is_read_on_the_next_look(tmp_path, monkeypatch):
    policy = tmp_path / "policy.yaml"
    good = (ROOT / "policies" / "default.yaml").read_text()
    policy.write_text(good)
    gateway = Gateway(Settings(policy=policy, home=tmp_path), HttpClient())
    version = gateway.runtime.loaded.version
    policy.write_text("")  # an editor's truncate, caught before its write
    assert gateway.reload_if_changed() is False and gateway.policy_error is None
    policy.write_text(good.replace("description: everything else", "description: Everything else"))
    assert gateway.reload_if_changed() is False  # modified just now: not yet
    then = time.time() - 1
    os.utime(policy, (then, then))
    assert gateway.reload_if_changed() is True and gateway.policy_error is None
    assert gateway.runtime.loaded.version != version


def test_sse_data_reads_one_line_and_many_line_events():
    from router.backends.base import sse_data

    assert sse_data(b'data: {"a": 1}') == b'{"a": 1}'
    assert sse_data(b"event: ping\ndata: {}") == b"{}"
    assert sse_data(b"data: one\ndata:two") == b"one\ntwo"
    assert sse_data(b": a comment") is None and sse_data(b"") is None


def test_openai_stream_relays_deltas_as_sent_and_reads_usage_and_errors():
    from router.backends.base import Deadline
    from router.backends.openai import OpenAIStream

    class Released:
        released = 0

        def release(self) -> None:
            self.released += 1

    delta = b'data: {"choices":[{"delta":{"content":"say \\"usage\\""}}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n'
    response = Released()
    stream = OpenAIStream("up", response, Deadline(5, 5), keep_usage_chunk=False, counter=[0.0])
    out = stream._inspect(delta + usage + b"data: [DONE]\n\n")
    assert out == delta + b"data: [DONE]\n\n"  # the delta's bytes untouched; the usage chunk dropped
    assert (stream.usage.prompt_tokens, stream.usage.completion_tokens) == (3, 2) and response.released == 1
    failing = OpenAIStream("up", Released(), Deadline(5, 5), keep_usage_chunk=True, counter=[0.0])
    with pytest.raises(UpstreamError, match="failed mid-stream: overloaded"):
        failing._inspect(delta + b'data: {"error": {"message": "overloaded"}}\n\n')


def test_a_backend_address_that_is_not_http_is_reported_at_start_up(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    text = POLICY.replace(
        "    data: external\n", "    data: external\n    base_url: ftp://models.internal/v1\n"
    )
    settings = Settings(policy=tmp_path / "p.yaml", home=tmp_path)
    built = build_backends(parse_policy(text, Path("p.yaml")), settings, HttpClient())
    assert built.ready == {} and "not an http(s) URL" in built.unavailable["a"]
