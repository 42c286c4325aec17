"""`turnout explain` and `turnout policy check`: an operator's view of routing policies.

`explain` asks the gateway for its decision on a query, exactly as a request would get it, and
prints every signal (with the capability signal's evidence), each route tried and why, and the
backends in order; `policy check` validates policy files and names every error by line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from typing import Any

from router.http.errors import InvalidRequest, PolicyError
from router.settings import from_command_line


def cmd_explain(args: argparse.Namespace) -> int:
    from router.backends.http import HttpClient
    from router.pipeline.gateway import Gateway
    from router.pipeline.routing import explain
    from router.schema import LATENCY_HEADER, PRIVATE_HEADER, RequestOptions, parse_chat_request

    settings = from_command_line(vars(args))
    logging.getLogger("turnout.gateway").setLevel(logging.ERROR)  # unavailable backends are in the report
    for name in ("turnout.sensitivity", "turnout.secrets"):  # what the lists loaded: a server's start-up log
        logging.getLogger(name).setLevel(logging.WARNING)
    gateway = Gateway(settings, HttpClient())
    body = {"model": args.model, "messages": [{"role": "user", "content": args.query}]}
    request = parse_chat_request(json.dumps(body).encode())
    try:  # the same checks as the headers' (--latency-budget-ms 0 is refused alike), in the flags' words
        options = RequestOptions.from_headers(
            {
                **(
                    {LATENCY_HEADER: str(args.latency_budget_ms)}
                    if args.latency_budget_ms is not None
                    else {}
                ),
                **({PRIVATE_HEADER: "true"} if args.private else {}),
            }
        )
    except InvalidRequest as error:
        error.message = error.message.replace(LATENCY_HEADER, "--latency-budget-ms")
        raise
    if args.private:
        options = replace(options, private_because="asked with --private")
    decision = gateway.decide(request, options)
    runtime = gateway.runtime
    report = explain(decision, runtime.loaded.version, runtime.backends.unavailable, gateway.classifier)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_explanation(report, str(runtime.loaded.path), args.query))
    return 0


def _evidence_lines(evidence: dict[str, Any] | None) -> list[str]:
    if not evidence:
        return []

    def line(what: str, parts: dict[str, float], words: list[str]) -> str:
        pushed = f"; words that pushed it up: {', '.join(words)}" if words else ""
        return (
            f"    {what:<11} logit = meaning {parts['meaning']:+.2f} + surface {parts['surface']:+.2f}"
            f" + prior {parts['prior']:+.2f}{pushed}"
        )

    head = evidence.get("first_sentence")  # None: the prompt is one sentence, its own ask
    read_apart = [f"    first sentence (its meaning read apart for the category): {head!r}"] if head else []
    return [
        line("category", evidence["category_from"], evidence["category_words"]),
        line("difficulty", evidence["difficulty_from"], evidence["difficulty_words"]),
        line("frontier", evidence["frontier_from"], evidence["frontier_words"]),
        *read_apart,
    ]


def render_explanation(report: dict[str, Any], policy_path: str, query: str) -> str:
    signals = report["signals"]
    sensitivity, capability, cost = signals["sensitivity"], signals["capability"], signals["cost"]
    findings = ", ".join(
        [
            f"{f['type']}{'/' + f['detail'] if f['detail'] else ''} [{f['start']}:{f['end']}] {f['confidence']:.2f}"
            for f in sensitivity["findings"]
        ]
        + ([f"kept inside: {sensitivity['kept_inside']}"] if sensitivity["kept_inside"] else [])
    )
    lines = [
        f"query:        {query[:100]!r}{'...' if len(query) > 100 else ''}",
        f"policy:       {policy_path} (version {report['policy_version']})",
        "signals:",
        f"  sensitivity: {'FLAGGED (' + report['sensitive_action'] + '): ' + findings if sensitivity['flagged'] else 'nothing found'}",
        f"  capability:  category {capability['category']} ({capability['confidence']}), difficulty {capability['difficulty']}, frontier {capability['frontier']}",
        *_evidence_lines(capability.get("evidence")),
        f"  cost:        {cost['prompt_tokens']} prompt tokens, ~{cost['expected_output_tokens']} output tokens expected",
        f"  latency:     budget {signals['latency']['budget_ms']:g} ms; needs: {', '.join(signals['needs']) or 'nothing special'}",
        "routes tried:" if report["routes_tried"] else "routes tried: none (a model named, not auto)",
    ]
    for trial in report["routes_tried"]:
        lines.append(
            f"  {trial['route']}: {'MATCHED' if trial['matched'] else 'no'} ({'; '.join(trial['reasons'])})"
        )
    lines.append(f"route:        {report['route']}")
    if report["refused"]:
        refused = report["refused"]
        lines.append(f"refused:      {refused['status']} {refused['code']}: {refused['message']}")
    lines.append("backends, in the order they would be tried:")
    for i, candidate in enumerate(report["candidates"], 1):
        note = "" if candidate["available"] else f"  [unavailable: {candidate['unavailable_because']}]"
        lines.append(
            f"  {i}. {candidate['backend']:<10} ~${candidate['estimated_cost_usd']:.6f}  ~{candidate['expected_latency_ms']:.0f} ms{note}"
        )
    lines += [f"  excluded {name}: {why}" for name, why in report["excluded"].items()]
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def cmd_policy(args: argparse.Namespace) -> int:
    from router.policy.model import load_policy

    failed = 0
    for path in args.paths:
        try:
            loaded = load_policy(path)
        except PolicyError as error:
            failed += 1
            print(error.message, file=sys.stderr)
            continue
        policy = loaded.policy
        print(
            f"{path}: ok (version {loaded.version}; {len(policy.backends)} backends, {len(policy.routes)} routes)"
        )
        for warning in policy_warnings(policy):
            print(f"{path}: warning: {warning}", file=sys.stderr)
    return 1 if failed else 0


def policy_warnings(policy: Any) -> list[str]:
    """What is valid but cannot work as meant: said, without failing the check."""
    warnings = []
    if not any(spec.data == "private" for spec in policy.backends.values()):
        warnings.append(
            "no backend has `data: private`, so every request that must stay inside (sensitive data "
            "under `reroute`, or what `redact` cannot mask; one asked to stay inside; a private "
            "collection's passages) gets 503 no_backend_available"
        )
    for name, spec in policy.backends.items():
        if spec.max_output_tokens is not None and spec.max_output_tokens > spec.context_window:
            warnings.append(
                f"backends.{name}: max_output_tokens {spec.max_output_tokens} is more than the "
                f"context_window {spec.context_window} that holds them"
            )
    return warnings
