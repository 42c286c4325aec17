"""Where the shipped default policy sends requests as `model: "auto"`: its route and the backend it
would try first, decided by the gateway itself (evals.heldout's routing figures)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router.signals.capability.classifier import CapabilityClassifier

DEFAULT_POLICY = Path(__file__).resolve().parents[1] / "policies" / "default.yaml"


# the default policy's strong tier: its hard route's backends
STRONG_BACKENDS = frozenset(("gpt-4", "claude"))


@dataclass(frozen=True, slots=True)
class Routed:
    route: str  # the default policy's route (`hard`, `fast`, ...)
    backend: str | None  # the first backend it would try

    @property
    def strong(self) -> bool:
        return self.backend in STRONG_BACKENDS


def default_decisions(texts: list[str], classifier: CapabilityClassifier | None = None) -> list[Routed]:
    """The route the shipped default policy takes for each text as `model: "auto"` (its `hard`,
    `fast`, ... routes) and the backend it would try first, decided by the gateway itself with
    placeholder keys (nothing is sent), with `classifier` in place of the packaged one when given."""
    import tempfile

    from router.backends.http import HttpClient
    from router.pipeline.gateway import Gateway
    from router.schema import parse_chat_request
    from router.settings import Settings, make_offline

    make_offline()  # token counts read tiktoken's local files, never the network
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(
            policy=DEFAULT_POLICY,
            home=Path(home),
            openai_api_key="unused",
            anthropic_api_key="unused",
            vllm_base_url="http://127.0.0.1:9/v1",
        )
        gateway = Gateway(settings, HttpClient())
        if classifier is not None:
            gateway.runtime.engine.classifier = classifier
        decisions = [
            gateway.decide(
                parse_chat_request(
                    json.dumps({"model": "auto", "messages": [{"role": "user", "content": t}]}).encode()
                )
            )
            for t in texts
        ]
        return [Routed(d.route, d.backends[0] if d.backends else None) for d in decisions]


def routellm_policy(classifier: CapabilityClassifier) -> dict[str, dict[str, Any]]:
    """Where the default policy sends RouteLLM's held-out prompts of the classifier's split (GSM8K,
    MMLU, MT-Bench), by route and by first backend, and the quality that buys: GPT-4's recorded
    grade where the prompt goes strong, Mixtral's elsewhere (the replay's model of the cheap tier)."""
    from evals.training.corpus import DEFAULT_SEED, build_split
    from evals.training.outcomes import split_outcomes

    held_out = split_outcomes(build_split(int(classifier.meta.get("split_seed", DEFAULT_SEED))))[1]
    report = {}
    for benchmark, outcomes in held_out.items():
        routed = default_decisions([o.text for o in outcomes], classifier)
        pairs = list(zip(outcomes, routed, strict=True))
        report[benchmark] = {
            "n": len(outcomes),
            "to_hard_route": float(np.mean([r.route == "hard" for r in routed])),
            "to_strong_backend": float(np.mean([r.strong for r in routed])),
            "quality_by_route": float(np.mean([o.strong if r.route == "hard" else o.weak for o, r in pairs])),
            "quality_by_backend": float(np.mean([o.strong if r.strong else o.weak for o, r in pairs])),
            "quality_strong": float(np.mean([o.strong for o in outcomes])),
        }
    return report
