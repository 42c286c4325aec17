"""The routing decision: signals + policy → a route and its backends in order, with every reason.

`decide` is pure (no I/O, no clock): the same policy, signals and latency estimates always give
the same `Decision`, which is what `turnout explain` prints and the gateway executes. The
sensitive-data rule is applied here, after the route is chosen and to every backend the request
could reach (fallbacks included), so no later step can send sensitive text outside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from router.http.errors import NoBackendAvailable, SensitiveDataBlocked, TurnoutError, UnsupportedContent
from router.policy.model import Condition, Order, Policy, SensitiveAction
from router.signals.capability.classifier import CapabilityClassifier
from router.signals.collect import Signals
from router.signals.latency import LatencyTracker

AUTO = "auto"
EXPLICIT_ROUTE = "explicit"


def _capable_hint(policy: Policy, signals: Signals, reroute: bool) -> str:
    """The backends that could take the request as it is, if there are any."""
    needed = signals.needs.capabilities()
    capable = [
        name
        for name, spec in policy.backends.items()
        if (not spec.capabilities or all(cap in spec.capabilities for cap in needed))
        and not (reroute and spec.data == "external")
    ]
    return f" ({', '.join(capable)})" if capable else ""


@dataclass
class Trial:
    """One route tried: whether its `when` held; why, one line per condition, is written only
    when asked for (`turnout explain`), not on every request."""

    route: str
    matched: bool
    when: Condition | None
    signals: Signals
    passed_over: str | None = None  # why a route whose `when` held was not taken

    @property
    def reasons(self) -> list[str]:
        reasons = evaluate(self.when, self.signals)[1]
        return [*reasons, self.passed_over] if self.passed_over else reasons


@dataclass
class Candidate:
    name: str
    cost_usd: float
    expected_ms: float


@dataclass
class Decision:
    route: str
    candidates: list[Candidate]
    excluded: dict[str, str]
    trials: list[Trial]
    signals: Signals
    action: SensitiveAction | None  # the policy's sensitive action that applied, if any
    notes: list[str] = field(default_factory=list)
    # what the gateway would answer instead of routing (explaining only: a request gets the error)
    refusal: TurnoutError | None = None

    @property
    def action_name(self) -> str:
        """What the x-turnout-sensitive header and the explanation say: the action, or "none"."""
        return self.action.value if self.action is not None else "none"

    @property
    def backends(self) -> list[str]:
        return [candidate.name for candidate in self.candidates]

    @property
    def reason(self) -> str:
        """Why the route, in one word for metrics: private (kept on private backends), named (the
        caller named a model), rule (a route's `when` held) or default (none did)."""
        if self.action is SensitiveAction.reroute:
            return "private"
        if self.route == EXPLICIT_ROUTE:
            return "named"
        return "rule" if self.trials and self.trials[-1].matched else "default"


def _check(ok: bool, text: str) -> tuple[bool, str]:
    return ok, f"{text}: {'yes' if ok else 'no'}"


def evaluate(condition: Condition | None, signals: Signals) -> tuple[bool, list[str]]:
    """Whether a route's `when` holds, and one line per condition saying why."""
    if condition is None:
        return True, ["no conditions (catch-all)"]
    checks: list[tuple[bool, str]] = []
    capability = signals.capability
    if condition.finding_types is not None:
        found = sorted(signals.finding_types & set(condition.finding_types))
        checks.append(_check(bool(found), f"findings of type {condition.finding_types} ({found or 'none'})"))
    if condition.category is not None:
        category = capability.category if capability else None
        checks.append(
            _check(
                category in condition.category,
                f"category {category} in {[str(c) for c in condition.category]}",
            )
        )
    difficulty = capability.difficulty if capability else 0.0
    frontier = capability.frontier if capability else 0.0
    ranges = (
        # three places: 0.498 shown as "0.50 >= 0.5: no" read as a wrong comparison
        ("difficulty", condition.difficulty, difficulty, f"{difficulty:.3f}"),
        ("frontier", condition.frontier, frontier, f"{frontier:.3f}"),
        ("prompt_tokens", condition.prompt_tokens, signals.prompt_tokens, str(signals.prompt_tokens)),
        (
            "latency_budget_ms",
            condition.latency_budget_ms,
            signals.latency_budget_ms,
            f"{signals.latency_budget_ms:g}",
        ),
    )
    for name, bounds, value, shown in ranges:
        if bounds is not None:
            checks.append(_check(bounds.holds(value), f"{name} {shown} {bounds.describe()}"))
    flags = (
        ("sensitive", condition.sensitive, signals.sensitive),
        ("has_tools", condition.has_tools, signals.needs.tools),
        ("has_images", condition.has_images, signals.needs.vision),
    )
    for name, wanted, actual in flags:
        if wanted is not None:
            checks.append(_check(actual == wanted, f"{name} is {wanted}"))
    if condition.any is not None:
        branches = [evaluate(branch, signals) for branch in condition.any]
        detail = " | ".join("; ".join(reasons) for _, reasons in branches)
        checks.append(
            (
                any(ok for ok, _ in branches),
                f"any of [{detail}]: {'yes' if any(ok for ok, _ in branches) else 'no'}",
            )
        )
    return all(ok for ok, _ in checks), [text for _, text in checks]


def holds(condition: Condition | None, signals: Signals) -> bool:
    """`evaluate`'s verdict without its reasons, stopping at the first condition that fails and
    reading only the signals a condition names: what routing a request needs (tests hold the two to
    the same answer)."""
    if condition is None:
        return True
    if condition.finding_types is not None and signals.finding_types.isdisjoint(condition.finding_types):
        return False
    capability = signals.capability
    if (
        condition.category is not None
        and (capability.category if capability else None) not in condition.category
    ):
        return False
    difficulty = condition.difficulty
    if difficulty is not None and not difficulty.holds(capability.difficulty if capability else 0.0):
        return False
    frontier = condition.frontier
    if frontier is not None and not frontier.holds(capability.frontier if capability else 0.0):
        return False
    tokens, budget = condition.prompt_tokens, condition.latency_budget_ms
    if tokens is not None and not tokens.holds(signals.prompt_tokens):
        return False
    if budget is not None and not budget.holds(signals.latency_budget_ms):
        return False
    if condition.sensitive is not None and signals.sensitive != condition.sensitive:
        return False
    if condition.has_tools is not None and signals.needs.tools != condition.has_tools:
        return False
    if condition.has_images is not None and signals.needs.vision != condition.has_images:
        return False
    return condition.any is None or any(holds(branch, signals) for branch in condition.any)


def choose_route(
    policy: Policy, signals: Signals, usable: Callable[[str], bool] | None = None
) -> tuple[str, list[Trial]]:
    """The first route whose `when` holds and that lists a backend the caller may use (`usable`:
    an API key limited to some models routes among those), else the default route."""
    trials = []
    for route in policy.routes:
        matched = holds(route.when, signals)
        if matched and usable is not None and not any(map(usable, route.backends)):
            trials.append(Trial(route.name, False, route.when, signals, "no backend this API key may use"))
            continue
        trials.append(Trial(route.name, matched, route.when, signals))
        if matched:
            return route.name, trials
    return policy.defaults.route, trials


def _candidate(policy: Policy, name: str, signals: Signals, latency: LatencyTracker) -> Candidate:
    spec = policy.backends[name]
    cost = spec.unit_price.cost(signals.prompt_tokens, signals.expected_output_tokens)
    expected = latency.estimate(name, spec.latency).expected_ms(signals.expected_output_tokens)
    return Candidate(name, cost, expected)


def _fits_category(policy: Policy, names: list[str], signals: Signals) -> list[str]:
    """For `order: cheapest`: keep the backends that declare the query's category, if any does."""
    category = signals.capability.category if signals.capability else None
    if category not in ("code", "math", "reasoning", "writing"):
        return names
    fitting = [name for name in names if category in policy.backends[name].capabilities]
    return fitting or names


def reachable(
    policy: Policy,
    names: list[str],
    signals: Signals,
    reroute: bool,
    excluded: dict[str, str] | None = None,
    lacking: set[str] | None = None,
) -> list[str]:
    """The backends the request may reach (the hard constraints: no external backend for a
    rerouted sensitive request, every capability it needs); the others go into `excluded` with
    why, and into `lacking` too when what they lack is a capability the request needs. The
    routing decision and the budget downgrade both filter with it."""
    excluded = {} if excluded is None else excluded
    lacking = set() if lacking is None else lacking
    kept = []
    needed = signals.needs.capabilities()
    for name in names:
        spec = policy.backends[name]
        missing = [cap for cap in needed if spec.capabilities and cap not in spec.capabilities]
        if reroute and spec.data == "external":
            excluded[name] = "external backend, and the request carries sensitive data"
        elif missing:
            excluded[name] = f"lacks capability {', '.join(missing)}"
            lacking.add(name)
        else:
            kept.append(name)
    return kept


def _private_route(policy: Policy, signals: Signals) -> list[str]:
    """Where sensitive text may go when the chosen backends are all external: the private backends
    of the first route that asks for sensitive requests, else every private backend."""
    for route in policy.routes:
        if route.when is not None and route.when.sensitive:
            private = [name for name in route.backends if policy.backends[name].data == "private"]
            if private:
                return private
    return [name for name, spec in policy.backends.items() if spec.data == "private"]


def decide(
    policy: Policy,
    signals: Signals,
    model: str,
    latency: LatencyTracker,
    usable: Callable[[str], bool] | None = None,
    explaining: bool = False,
) -> Decision:
    """Choose the route and order its backends; raise when the policy forbids the request (or,
    `explaining`, return the decision so far with the error as its `refusal`). With `usable`
    (what the caller's key may use), `auto` routes among those backends."""
    notes: list[str] = []
    if model == AUTO:
        route_name, trials = choose_route(policy, signals, usable)
        route = policy.route(route_name)
        allowed = [name for name in route.backends if usable is None or usable(name)]
        names, order = allowed or list(route.backends), route.order  # none: the caller hears a 403
    else:
        route_name, trials, order = EXPLICIT_ROUTE, [], Order.listed
        names = [model, *policy.backends[model].fallbacks]
    action: SensitiveAction | None = None
    if signals.kept_inside is not None:  # private passages, or the caller's own request: in the building
        action = SensitiveAction.reroute
        notes.append(f"kept on private backends: {signals.kept_inside}")
    elif signals.sensitive:
        action = policy.sensitivity.action
        if action is SensitiveAction.block:
            kinds = ", ".join(sorted(signals.finding_types))
            blocked = SensitiveDataBlocked(
                f"The request carries sensitive data ({kinds}) and this gateway's policy blocks it."
            )
            blocked.signals = signals
            if explaining:
                return Decision(route_name, [], {}, trials, signals, action, notes, blocked)
            raise blocked
        if action is SensitiveAction.redact and signals.unmaskable:
            action = SensitiveAction.reroute
            notes.append("sensitive data in a function name cannot be masked: kept on private backends")
    reroute = action is SensitiveAction.reroute
    excluded: dict[str, str] = {}
    if order is Order.cheapest:
        names = _fits_category(policy, names, signals)
    lacking: set[str] = set()
    kept = reachable(policy, names, signals, reroute, excluded, lacking)
    if not kept and signals.sensitive and reroute:
        rerouted = [name for name in _private_route(policy, signals) if name not in excluded]
        kept = reachable(policy, rerouted, signals, reroute, excluded, lacking)
        notes.append(f"rerouted to private backends {kept} because the request carries sensitive data")
    if not kept:
        refusal = _refusal(policy, signals, model, reroute, excluded, lacking)
        if explaining:
            return Decision(route_name, [], excluded, trials, signals, action, notes, refusal)
        raise refusal
    candidates = [_candidate(policy, name, signals, latency) for name in kept]
    if order is Order.cheapest:
        candidates.sort(key=lambda c: c.cost_usd)
    elif order is Order.fastest:
        candidates.sort(key=lambda c: c.expected_ms)
    within = [c for c in candidates if c.expected_ms <= signals.latency_budget_ms]
    if within and len(within) < len(candidates):
        notes.append("backends expected to exceed the latency budget moved last")
        candidates = within + [c for c in candidates if c.expected_ms > signals.latency_budget_ms]
    return Decision(route_name, candidates, excluded, trials, signals, action, notes)


def _refusal(
    policy: Policy, signals: Signals, model: str, reroute: bool, excluded: dict[str, str], lacking: set[str]
) -> TurnoutError:
    """The error for a request no backend may take."""
    reasons = "; ".join(f"{name}: {why}" for name, why in excluded.items())
    if lacking:  # the request can change; waiting, which a 503 invites, cannot
        return UnsupportedContent(
            f"No backend this request may use accepts what it contains ({reasons}). Remove the "
            f"{'/'.join(signals.needs.capabilities())} content or name a model that supports it"
            f"{_capable_hint(policy, signals, reroute)}.",
            param="model" if model != AUTO else "messages",
        )
    return NoBackendAvailable(f"No backend may take this request ({reasons}).")


def explain(
    decision: Decision,
    policy_version: str,
    unavailable: dict[str, str] | None = None,
    classifier: CapabilityClassifier | None = None,
) -> dict[str, Any]:
    """The decision as JSON: what `turnout explain --json` prints and /v1/route/explain returns.
    With the classifier, the capability signal carries its evidence (meaning against surface, and
    the words that pushed the category and the difficulty up)."""
    signals = decision.signals
    capability = signals.capability
    evidence = classifier.evidence(signals.query) if classifier and capability else None
    return {
        "route": decision.route,
        "backends": decision.backends,
        "candidates": [
            {
                "backend": c.name,
                "estimated_cost_usd": round(c.cost_usd, 8),
                "expected_latency_ms": round(c.expected_ms, 1),
                "available": not (unavailable and c.name in unavailable),
                **(
                    {"unavailable_because": unavailable[c.name]}
                    if unavailable and c.name in unavailable
                    else {}
                ),
            }
            for c in decision.candidates
        ],
        "excluded": decision.excluded,
        "sensitive_action": decision.action_name,
        "routes_tried": [
            {"route": t.route, "matched": t.matched, "reasons": t.reasons} for t in decision.trials
        ],
        "notes": decision.notes,
        # what the gateway would answer instead (no backend may take it, or the policy blocks it)
        "refused": (
            {
                "status": decision.refusal.status_code,
                "code": decision.refusal.code,
                "message": decision.refusal.message,
            }
            if decision.refusal is not None
            else None
        ),
        "policy_version": policy_version,
        "signals": {
            "sensitivity": {
                "flagged": signals.sensitive,
                "kept_inside": signals.kept_inside,
                "findings": [
                    {
                        "type": f.finding.type,
                        "start": f.finding.start,
                        "end": f.finding.end,
                        "confidence": round(f.finding.confidence, 3),
                        "detail": f.finding.detail,
                        "message": f.unit.message,
                        "part": f.unit.part,
                    }
                    for f in signals.findings
                ],
            },
            "capability": {
                "category": capability.category if capability else None,
                "confidence": round(capability.confidence, 3) if capability else None,
                "difficulty": round(capability.difficulty, 3) if capability else None,
                "frontier": round(capability.frontier, 3) if capability else None,
                "scores": {k: round(v, 3) for k, v in capability.scores.items()} if capability else None,
                **({"evidence": evidence} if evidence else {}),
            },
            "cost": {
                "prompt_tokens": signals.prompt_tokens,
                "expected_output_tokens": signals.expected_output_tokens,
            },
            "latency": {"budget_ms": signals.latency_budget_ms},
            "needs": signals.needs.capabilities(),
        },
    }
