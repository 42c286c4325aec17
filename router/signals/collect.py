"""Signals, computed once per request: sensitivity, capability, cost inputs, latency budget, needs.

`SignalEngine` holds what is costly to build (the detectors with the policy's terms, the trained
classifier) and computes a `Signals` for each request. It reads the request only; it must never
call a backend, and it never logs what it found (findings are prompt text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from router import tokens
from router.policy.model import Policy
from router.schema import ChatRequest, RequestOptions
from router.signals.sensitivity.detector import Finding, SensitivityDetector
from router.signals.sensitivity.directives import find_directive
from router.signals.sensitivity.name_cues import personal
from router.signals.sensitivity.units import Unit, field_units, scan_joined, text_units

WORDS = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")  # words, for name_cues.personal

if TYPE_CHECKING:
    from router.signals.capability.classifier import Capability, CapabilityClassifier


# What a typical answer costs in output tokens, by category, when the caller sets no max_tokens.
OUTPUT_PRIOR = {
    "code": 600,
    "math": 400,
    "reasoning": 500,
    "writing": 700,
    "extraction": 200,
    "simple_chat": 80,
    "other": 400,
}


@dataclass(frozen=True, slots=True)
class Located:
    unit: Unit
    finding: Finding


@dataclass(frozen=True)
class Needs:
    tools: bool
    json: bool
    vision: bool

    def capabilities(self) -> list[str]:
        return [
            name
            for name, needed in (("tools", self.tools), ("json", self.json), ("vision", self.vision))
            if needed
        ]


@dataclass
class Signals:
    findings: list[Located]
    capability: Capability | None
    prompt_tokens: int
    expected_output_tokens: int
    latency_budget_ms: float
    needs: Needs
    query: str = ""
    notes: list[str] = field(default_factory=list)
    private_context: str | None = None  # a private collection whose passages the request now carries
    private_request: str | None = None  # why the caller's request itself asks to stay inside
    # a collection not marked private whose retrieved passages hold sensitive data, and its kinds
    sensitive_context: tuple[str, tuple[str, ...]] | None = None

    @property
    def kept_inside(self) -> str | None:
        """Why the request goes to private backends whatever the sensitive-data rule says, or None."""
        if self.private_context is not None:
            return f"carries passages of private collection '{self.private_context}'"
        if self.sensitive_context is not None:
            collection, kinds = self.sensitive_context
            return (
                f"carries passages of collection '{collection}' that hold sensitive data ({', '.join(kinds)})"
            )
        return self.private_request

    @property
    def unmaskable(self) -> bool:
        """A finding sits where no placeholder may stand (a function name): `redact` cannot apply."""
        return any(not located.unit.maskable for located in self.findings)

    @property
    def sensitive(self) -> bool:
        return bool(self.findings) or self.kept_inside is not None

    @property
    def finding_types(self) -> set[str]:
        return {located.finding.type for located in self.findings}


def private_request(request: ChatRequest, options: RequestOptions, directives: bool) -> str | None:
    """Why the caller asks to keep this request inside: the x-turnout-private header (in
    `options`), `turnout.private`, or an instruction in a user, system or developer message
    ("process this locally"); else None. Nothing a caller sends can take a request the detectors
    flagged outside."""
    if options.private:
        return options.private_because or "the caller asked for it"
    if request.turnout is not None and request.turnout.private:
        return "the request body asks for it (turnout.private)"
    if directives:
        for index, message in enumerate(request.messages):
            if message.role in ("user", "system", "developer") and (text := message.text()):
                span = find_directive(text)
                if span is not None:
                    return f"message {index} asks to stay inside (characters {span[0]}-{span[1]})"
    return None


def needs_of(request: ChatRequest) -> Needs:
    vision = any(
        part.type == "image_url"
        for m in request.messages
        if isinstance(m.content, list)
        for part in m.content
    )
    json_mode = request.response_format is not None and request.response_format.type != "text"
    return Needs(tools=bool(request.tools or request.functions), json=json_mode, vision=vision)


NO_OPTIONS = RequestOptions()


class SignalEngine:
    def __init__(self, policy: Policy, classifier: CapabilityClassifier) -> None:
        rule = policy.sensitivity
        self.policy = policy
        self.detector = SensitivityDetector(
            terms=rule.terms,
            patterns=rule.patterns,
            types=rule.types,
            min_confidence=rule.min_confidence,
            labelled_secrets=rule.labelled_secrets,
        )
        self.classifier = classifier

    def _findings(
        self, request: ChatRequest, discount_public: bool, discounted: list[Finding] | None
    ) -> list[Located]:
        def scan(text: str) -> list[Finding]:
            return self.detector.scan(text, discount_public, discounted)

        findings = [Located(unit, f) for unit in text_units(request) for f in scan(unit.text)]
        fields = field_units(request)
        if fields:
            findings += [Located(unit, f) for unit, f in scan_joined(scan, fields)]
        return findings

    def compute(
        self, request: ChatRequest, options: RequestOptions = NO_OPTIONS, *, capability: bool = True
    ) -> Signals:
        discounted: list[Finding] = []
        findings = self._findings(request, True, discounted)
        if discounted and (
            any(f.finding.type != "person" for f in findings)
            or any(personal(WORDS.findall(unit.text.lower())) for unit in text_units(request))
        ):
            # a public figure's name is discounted only in a request that says nothing more about
            # anyone: here another string holds personal data or ties people to the writer
            findings = self._findings(request, False, None)
        query = request.query()
        classified = self.classifier.classify(query) if capability else None
        category = classified.category if classified is not None else "other"
        prior = self.policy.defaults.expected_output_tokens or OUTPUT_PRIOR.get(category, 400)
        limit = request.output_limit
        return Signals(
            findings=findings,
            capability=classified,
            prompt_tokens=tokens.count(request),
            expected_output_tokens=min(prior, limit) if limit else prior,
            latency_budget_ms=options.latency_budget_ms or self.policy.defaults.latency_budget_ms,
            needs=needs_of(request),
            query=query,
            private_request=private_request(request, options, self.policy.sensitivity.directives),
        )
