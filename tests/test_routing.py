"""The routing decision, pure: signals and a policy in, a route and ordered backends out."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from router.http.errors import InvalidRequest, NoBackendAvailable, SensitiveDataBlocked, UnsupportedContent
from router.pipeline.routing import decide, evaluate, explain, holds
from router.policy.model import load_policy, parse_policy
from router.schema import RequestOptions
from router.signals.capability.classifier import Capability
from router.signals.collect import Located, Needs, Signals, Unit
from router.signals.latency import LatencyTracker
from router.signals.sensitivity.detector import Finding

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = load_policy(ROOT / "policies" / "default.yaml").policy


def signals(
    category="other", difficulty=0.3, findings=(), budget=30000.0, tools=False, prompt_tokens=50, frontier=0.1
):
    capability = Capability(category, 0.9, difficulty, {category: 0.9}, frontier)
    located = [Located(Unit(0, "content", "x"), Finding(kind, 0, 1, 0.9)) for kind in findings]
    return Signals(located, capability, prompt_tokens, 300, budget, Needs(tools, False, False))


@pytest.mark.parametrize(
    "case,route,first",
    [
        (signals(findings=["email"]), "sensitive", "llama"),
        (signals("code", 0.8), "hard", "gpt-4"),
        (signals("math", 0.55), "hard", "gpt-4"),
        (signals("reasoning", 0.3, frontier=0.8), "hard", "gpt-4"),  # people would call it hard
        (signals("writing", 0.3, frontier=0.95), "general", "llama"),  # but not code, math or reasoning
        (signals("simple_chat", 0.5), "fast", "haiku"),
        (signals("writing", 0.1), "fast", "haiku"),
        (signals("writing", 0.5, budget=1500), "fast", "haiku"),
        (signals("code", 0.3), "general", "haiku"),  # the cheapest backend that declares `code`
        (signals("other", 0.3), "general", "llama"),
    ],
)
def test_default_policy_routes(case, route, first):
    decision = decide(DEFAULT, case, "auto", LatencyTracker())
    assert decision.route == route and decision.backends[0] == first


def test_cheapest_orders_by_estimated_cost_among_fitting_backends():
    decision = decide(DEFAULT, signals("writing", 0.5), "auto", LatencyTracker())
    assert decision.route == "general"
    costs = [c.cost_usd for c in decision.candidates]
    assert costs == sorted(costs) and decision.backends[0] == "llama"


def test_sensitive_requests_never_get_an_external_backend_even_when_named():
    for model in ("gpt-4", "claude", "haiku", "auto"):
        decision = decide(DEFAULT, signals("code", 0.9, findings=["secret"]), model, LatencyTracker())
        assert all(DEFAULT.backends[name].data == "private" for name in decision.backends), model
        assert decision.action == "reroute"
    explicit = decide(DEFAULT, signals(findings=["person"]), "gpt-4", LatencyTracker())
    assert explicit.backends == ["llama"] and "gpt-4" in explicit.excluded and explicit.notes


def test_block_and_no_private_backend():
    text = (ROOT / "policies" / "default.yaml").read_text()
    blocking = parse_policy(text.replace("action: reroute", "action: block"), Path("p.yaml"))
    with pytest.raises(SensitiveDataBlocked):
        decide(blocking, signals(findings=["iban"]), "auto", LatencyTracker())
    no_private = parse_policy(text.replace("data: private", "data: external"), Path("p.yaml"))
    with pytest.raises(NoBackendAvailable, match="sensitive"):
        decide(no_private, signals(findings=["iban"]), "auto", LatencyTracker())


def test_required_capabilities_exclude_backends():
    text = (
        (ROOT / "policies" / "default.yaml")
        .read_text()
        .replace("capabilities: [chat, tools, json, writing]", "capabilities: [chat]")
    )
    policy = parse_policy(text, Path("p.yaml"))
    decision = decide(policy, signals("other", 0.5, tools=True), "auto", LatencyTracker())
    assert "llama" not in decision.backends and "tools" in decision.excluded["llama"]


def test_latency_budget_moves_slow_backends_last():
    tracker = LatencyTracker()
    decision = decide(DEFAULT, signals("other", 0.3, budget=20000), "auto", tracker)
    assert decision.backends[0] == "llama" and not decision.notes
    slow = tracker.estimate("llama", DEFAULT.backends["llama"].latency)
    slow.ttft_ms = 60000
    again = decide(DEFAULT, signals("other", 0.3, budget=20000), "auto", tracker)
    assert again.backends[-1] == "llama" and any("latency" in note for note in again.notes)


def test_latency_tracker_moves_toward_observations():
    tracker = LatencyTracker()
    prior = DEFAULT.backends["haiku"].latency
    for _ in range(30):
        tracker.observe("haiku", prior, ttft_ms=100.0, total_ms=1100.0, output_tokens=100)
    estimate = tracker.estimate("haiku", prior)
    assert abs(estimate.ttft_ms - 100) < 5 and abs(estimate.ms_per_token - 10) < 1


def test_condition_reasons_and_explain_json():
    matched, reasons = evaluate(DEFAULT.route("hard").when, signals("code", 0.8))
    assert matched and any("difficulty 0.800 >= 0.5" in reason for reason in reasons)
    report = explain(
        decide(DEFAULT, signals("code", 0.8, findings=["email"]), "auto", LatencyTracker()), "v1"
    )
    assert report["route"] == "sensitive" and report["backends"] == ["llama"]
    assert report["signals"]["sensitivity"]["flagged"] is True
    assert report["signals"]["sensitivity"]["findings"][0] == {
        "type": "email",
        "start": 0,
        "end": 1,
        "confidence": 0.9,
        "detail": "",
        "message": 0,
        "part": "content",
    }
    assert (
        report["signals"]["capability"]["category"] == "code"
        and report["signals"]["cost"]["prompt_tokens"] == 50
    )
    assert [t["route"] for t in report["routes_tried"]] == ["sensitive"]


def test_gpu_cost_is_derived_per_token():
    price = DEFAULT.backends["llama"].unit_price
    assert price.output_per_mtok == pytest.approx(2.50 / 2_500_000 * 1e6)
    assert price.input_per_mtok == pytest.approx(2.50 / 25_000_000 * 1e6)


def test_policy_errors_for_unreachable_routes_and_bad_patterns():
    from router.http.errors import PolicyError

    text = (ROOT / "policies" / "default.yaml").read_text()
    with pytest.raises(
        PolicyError, match=r"routes.3.name: route 'general' is unreachable after catch-all route 'fast'"
    ):
        parse_policy(_unreachable(text), Path("p.yaml"))
    with pytest.raises(PolicyError, match=r"sensitivity.patterns.0: not a valid regular expression"):
        parse_policy(text.replace("patterns: []", "patterns: ['(unclosed']"), Path("p.yaml"))
    with pytest.raises(PolicyError, match=r"routes.1.when.category.0"):
        parse_policy(text.replace("category: [code, math, reasoning]", "category: [poetry]"), Path("p.yaml"))
    with pytest.raises(PolicyError, match=r"give either price or gpu"):
        parse_policy(
            text.replace(
                "    gpu: {cost_per_hour", "    price: {input_per_mtok: 1}\n    gpu: {cost_per_hour"
            ),
            Path("p.yaml"),
        )


def _unreachable(text: str) -> str:
    """The default policy with the `fast` route's conditions removed: `general` becomes unreachable."""
    start = text.index("  - name: fast")
    end = text.index("  - name: general")
    return text[:start] + "  - name: fast\n    backends: [haiku, llama]\n\n" + text[end:]


@pytest.mark.parametrize(
    "when,case,expected",
    [
        ({"finding_types": ["iban"]}, signals(findings=["iban"]), True),
        ({"finding_types": ["iban"]}, signals(findings=["email"]), False),
        ({"prompt_tokens": {"gte": 100}}, signals(prompt_tokens=150), True),
        ({"prompt_tokens": {"gte": 100}}, signals(prompt_tokens=50), False),
        ({"has_tools": True}, signals(tools=True), True),
        ({"has_tools": True}, signals(), False),
        ({"has_images": False}, signals(), True),
        ({"category": ["math"], "difficulty": {"gt": 0.2, "lte": 0.4}}, signals("math", 0.3), True),
        ({"category": ["math"], "difficulty": {"gt": 0.2, "lte": 0.4}}, signals("math", 0.5), False),
        ({"frontier": {"gte": 0.7}}, signals(frontier=0.75), True),
        ({"frontier": {"gte": 0.7}}, signals(frontier=0.65), False),
        (
            {"any": [{"category": ["code"]}, {"latency_budget_ms": {"lt": 100}}]},
            signals("writing", budget=50),
            True,
        ),
        ({"any": [{"category": ["code"]}, {"latency_budget_ms": {"lt": 100}}]}, signals("writing"), False),
    ],
)
def test_every_condition_key(when, case, expected):
    from router.policy.model import Condition

    condition = Condition.model_validate(when)
    matched, reasons = evaluate(condition, case)
    assert matched is expected and reasons
    assert holds(condition, case) is expected  # the reasonless form routing uses


def test_holds_agrees_with_evaluate_on_random_conditions():
    """Routing decides with `holds`, explain shows `evaluate`: they must never disagree."""
    import random

    from router.policy.model import Condition

    rng = random.Random(7)
    categories = ["code", "math", "reasoning", "writing", "simple_chat", "extraction", "other"]

    def bounds():
        low = round(
            0.01 + 0.98 * rng.random(), 2
        )  # a range some score in [0, 1] holds (policies refuse others)
        return rng.choice([{"gte": low}, {"lt": low}, {"gt": low, "lte": min(1.0, low + 0.3)}])

    def condition(depth=0):  # up to three levels of `any`, empty lists included
        keys = {
            "sensitive": lambda: rng.choice([True, False]),
            "finding_types": lambda: rng.sample(["email", "iban", "person", "secret"], rng.randint(0, 2)),
            "category": lambda: rng.sample(categories, rng.randint(0, 3)),
            "difficulty": bounds,
            "frontier": bounds,
            "prompt_tokens": lambda: {"gte": rng.choice([10, 100, 1000])},
            "latency_budget_ms": lambda: {"lte": rng.choice([500, 2000, 60000])},
            "has_tools": lambda: rng.choice([True, False]),
            "has_images": lambda: rng.choice([True, False]),
        }
        when = {key: keys[key]() for key in rng.sample(sorted(keys), rng.randint(0, 3))}
        if depth < 3 and rng.random() < 0.4:
            when["any"] = [condition(depth + 1) for _ in range(rng.randint(0, 3))]
        return when

    outcomes = set()
    for _ in range(2000):
        when = Condition.model_validate(condition())
        case = signals(
            rng.choice(categories),
            rng.random(),
            findings=rng.sample(["email", "iban", "person"], rng.randint(0, 1)),
            budget=rng.choice([300.0, 1500.0, 30000.0]),
            tools=rng.random() < 0.3,
            prompt_tokens=rng.choice([5, 50, 500, 5000]),
            frontier=rng.random(),
        )
        if rng.random() < 0.2:  # a request routed without the capability signal
            case = replace(case, capability=None)
        if rng.random() < 0.3:
            case = replace(case, needs=Needs(case.needs.tools, False, True))
        expected = evaluate(when, case)[0]
        assert holds(when, case) is expected, when
        outcomes.add(expected)
    assert outcomes == {True, False}


def test_order_fastest_follows_live_latency():
    text = (ROOT / "policies" / "default.yaml").read_text().replace("order: cheapest", "order: fastest")
    policy = parse_policy(text, Path("p.yaml"))
    tracker = LatencyTracker()
    first = decide(policy, signals("other", 0.3), "auto", tracker).backends
    expected = sorted(
        first, key=lambda name: tracker.estimate(name, policy.backends[name].latency).expected_ms(300)
    )
    assert first == expected
    tracker.estimate(first[0], policy.backends[first[0]].latency).ttft_ms = 50_000
    assert decide(policy, signals("other", 0.3), "auto", tracker).backends[-1] == first[0]


def test_redact_policy_plans_a_redacted_request(tmp_path):
    from router.accounts.auth import Principal
    from router.schema import parse_chat_request

    gateway = _gateway(tmp_path, (ROOT / "policies" / "privacy-first.yaml").read_text())
    body = b'{"model": "claude", "messages": [{"role": "user", "content": "Email jonas.berg@fastmail.fm about ACME-123456"}]}'
    plan = asyncio.run(gateway.plan(parse_chat_request(body), Principal("admin", "admin", admin=True)))
    assert plan.decision.action == "redact" and [b.name for b in plan.backends] == ["claude"]
    sent = plan.request.messages[0].text()
    assert (
        "jonas.berg" not in sent and "ACME-123456" not in sent and "[EMAIL_1]" in sent and "[TERM_1]" in sent
    )
    assert plan.redactor is not None and plan.redactor.restore(sent).endswith("about ACME-123456")


def _gateway(tmp_path, policy_text):
    from router.backends.http import HttpClient
    from router.pipeline.gateway import Gateway
    from router.settings import Settings

    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text)
    settings = Settings(
        policy=policy,
        home=tmp_path,
        openai_api_key="k",
        anthropic_api_key="k",
        vllm_base_url="http://127.0.0.1:9/v1",
    )
    return Gateway(settings, HttpClient())


def _chat(model, *messages, turnout=None):
    from router.schema import ChatRequest

    body = {"model": model, "messages": [{"role": r, "content": c} for r, c in messages]}
    if turnout is not None:
        body["turnout"] = turnout
    return ChatRequest.model_validate(body)


def test_a_request_that_asks_to_stay_inside_is_kept_on_private_backends(tmp_path):

    # privacy-first redacts findings and sends them out: an instruction to stay inside wins over that
    gateway = _gateway(tmp_path, (ROOT / "policies" / "privacy-first.yaml").read_text())
    plain = _chat("claude", ("user", "Summarise the minutes of the board meeting."))
    assert gateway.decide(plain).backends == ["claude"]
    asked = [
        (_chat("claude", ("user", "Summarise the minutes. Keep this analysis on-prem.")), None),
        (_chat("claude", ("system", "All data must stay on our own servers."), ("user", "Summarise.")), None),
        (_chat("claude", ("user", "Summarise the minutes."), turnout={"private": True}), None),
        (plain, "true"),
        (plain, "1"),
    ]
    for request, header in asked:
        decision = gateway.decide(request, _said(header))
        assert decision.action == "reroute", request
        assert all(gateway.runtime.loaded.policy.backends[b].data == "private" for b in decision.backends)
        kept = explain(decision, "v")["signals"]["sensitivity"]
        assert kept["flagged"] and kept["kept_inside"], kept
        assert "claude" in decision.excluded
    for header in ("false", "0"):  # nothing a caller sends takes a request out
        assert gateway.decide(plain, _said(header)).backends == ["claude"]
    with pytest.raises(InvalidRequest, match="x-turnout-private"):
        gateway.decide(plain, _said("maybe"))
    # a question about running things locally is no instruction about this request
    question = _chat("claude", ("user", "How do I run Llama locally on a laptop?"))
    assert gateway.decide(question).backends == ["claude"]


def test_policy_can_turn_off_instructions_in_text_but_not_the_caller_flag(tmp_path):
    text = (ROOT / "policies" / "default.yaml").read_text()
    assert "  directives: true " in text
    gateway = _gateway(tmp_path, text.replace("  directives: true ", "  directives: false "))
    asked = _chat("gpt-4", ("user", "Process this locally: what is 2 + 2?"))
    assert gateway.decide(asked).backends == ["gpt-4"]
    flagged = _chat("gpt-4", ("user", "What is 2 + 2?"), turnout={"private": True})
    assert gateway.decide(flagged).backends == ["llama"]
    # and nothing a caller sends takes a request the detectors flagged outside
    mailed = _chat("gpt-4", ("user", "Write to ann.lee@fastmail.fm"), turnout={"private": False})
    assert gateway.decide(mailed, _said("false")).backends == ["llama"]


def test_asking_to_stay_inside_is_answered_inside_even_where_the_policy_blocks_sensitive_data(tmp_path):
    text = (ROOT / "policies" / "default.yaml").read_text()
    gateway = _gateway(tmp_path, text.replace("  action: reroute\n", "  action: block\n"))
    blocked = gateway.decide(
        _chat("gpt-4", ("user", "Write to ann.lee@fastmail.fm"))
    )  # explained, not raised
    assert isinstance(blocked.refusal, SensitiveDataBlocked) and blocked.backends == []
    decision = gateway.decide(_chat("gpt-4", ("user", "Summarise it.")), _said("yes"))
    assert decision.action == "reroute" and decision.backends == ["llama"]


def _said(private: str | None) -> RequestOptions:
    """The options the edge parses from an x-turnout-private header (None: not sent)."""
    return RequestOptions.from_headers({} if private is None else {"x-turnout-private": private})


def test_request_options_are_parsed_at_the_edge_with_the_callers_words():
    assert RequestOptions.from_headers({}) == RequestOptions()
    options = RequestOptions.from_headers(
        {"x-turnout-latency-budget-ms": "1500", "x-turnout-private": " Yes "}
    )
    assert options.latency_budget_ms == 1500.0 and options.private
    assert options.private_because == "the caller sent x-turnout-private: Yes"
    for bad in ("0", "-5", "nan", "inf", "soon"):
        with pytest.raises(InvalidRequest, match="x-turnout-latency-budget-ms"):
            RequestOptions.from_headers({"x-turnout-latency-budget-ms": bad})
    assert not RequestOptions.from_headers({"x-turnout-private": "no"}).private


def test_content_no_allowed_backend_can_take_is_the_callers_to_change():
    """An image for a backend without vision, also when sensitivity leaves only such backends:
    a 400 that says what to remove (retrying, which a 503 invites, never helps)."""
    with_image = signals()
    with_image.needs = Needs(False, False, True)
    with pytest.raises(UnsupportedContent) as named:
        decide(DEFAULT, with_image, "llama", LatencyTracker())
    assert named.value.status_code == 400 and "gpt-4" in named.value.message
    sensitive = signals(findings=["email"])
    sensitive.needs = Needs(False, False, True)
    with pytest.raises(UnsupportedContent) as kept_inside:
        decide(DEFAULT, sensitive, "auto", LatencyTracker())
    assert (
        "vision" in kept_inside.value.message and "gpt-4" not in kept_inside.value.message.split("Remove")[1]
    )


def test_sensitive_data_with_no_private_backend_at_all_is_a_503():
    policy = parse_policy(
        (ROOT / "policies" / "default.yaml").read_text().replace("data: private", "data: external"),
        Path("p.yaml"),
    )
    with pytest.raises(NoBackendAvailable):
        decide(policy, signals(findings=["email"]), "auto", LatencyTracker())
