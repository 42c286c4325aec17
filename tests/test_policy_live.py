"""Operators' view of policies: check, explain, live reload without dropping requests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import stream_chat

ROOT = Path(__file__).resolve().parents[1]


def turnout(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router.cli", *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_policy_check_accepts_the_shipped_policies_and_names_errors(tmp_path):
    ok = turnout("policy", "check", *sorted(str(p) for p in (ROOT / "policies").glob("*.yaml")))
    assert ok.returncode == 0 and ok.stdout.count(": ok (version") == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (ROOT / "policies" / "default.yaml")
        .read_text()
        .replace("    when: {sensitive: true}", "    when: {sensitiv: true}")
    )
    result = turnout("policy", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:" in result.stderr and "routes.0.when.sensitiv: unknown key" in result.stderr


def test_policy_check_refuses_what_would_fail_only_at_request_time(tmp_path):
    """A misspelt provider, a collection name no store takes and bytes that are not YAML: each one
    line `file:line: key: why` and exit 1 (the first two passed, then failed every request)."""
    shipped = (ROOT / "policies" / "default.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(shipped.replace("provider: openai", "provider: opneai"))
    collection = tmp_path / "collection.yaml"
    collection.write_text(shipped.replace("\n  collection: docs", "\n  collection: 'bad name!'", 1))
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    for path, expected in (
        (typo, "backends.gpt-4.provider: unknown provider 'opneai'"),
        (collection, "retrieval.collection: bad collection name 'bad name!'"),
        (binary, "not valid YAML"),
    ):
        result = turnout("policy", "check", str(path))
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{path}:") and expected in lines[0], result.stderr


def test_policy_check_refuses_conditions_that_never_hold_and_warns_of_no_private_backend(tmp_path):
    """A trial's edits passed the check: difficulty {gte: 5} (a 0-10 scale) and {lt: 0.2, gt: 0.5}
    (errors now); max_output_tokens over the context window and every backend external (warnings:
    then every request with personal data got a 503, and explain printed only the error)."""
    shipped = (ROOT / "policies" / "default.yaml").read_text()
    for name, edit, expected in (
        ("scale", ("difficulty: {gte: 0.5}", "difficulty: {gte: 5}"), "difficulty >= 5 never holds"),
        ("empty", ("difficulty: {lt: 0.2}", "difficulty: {lt: 0.2, gt: 0.5}"), "no value is > 0.5 and < 0.2"),
    ):  # fmt: skip
        assert edit[0] in shipped, edit
        path = tmp_path / f"{name}.yaml"
        path.write_text(shipped.replace(edit[0], edit[1], 1))
        result = turnout("policy", "check", str(path))
        assert result.returncode == 1 and expected in result.stderr, result.stderr
    window = tmp_path / "window.yaml"  # a warning: a reload with it must not stop a running gateway
    window.write_text(shipped.replace("max_output_tokens: 4096", "max_output_tokens: 9999999"))
    checked = turnout("policy", "check", str(window))
    assert checked.returncode == 0
    assert (
        "warning: backends.llama: max_output_tokens 9999999 is more than the context_window 131072"
        in checked.stderr
    )
    external = tmp_path / "external.yaml"
    external.write_text(shipped.replace("data: private", "data: external"))
    checked = turnout("policy", "check", str(external))
    assert checked.returncode == 0 and "warning: no backend has `data: private`" in checked.stderr
    explained = turnout(
        "explain", "--policy", str(external), "--json", "Email bob.smith@acme-corp.com the invoice"
    )
    assert explained.returncode == 0, explained.stderr
    report = json.loads(explained.stdout)
    assert report["route"] == "sensitive" and report["backends"] == []
    assert report["refused"]["status"] == 503 and report["refused"]["code"] == "no_backend_available"
    assert "llama" in report["excluded"]
    text = turnout("explain", "--policy", str(external), "Email bob.smith@acme-corp.com the invoice")
    assert "refused:      503 no_backend_available: No backend may take this request" in text.stdout


def test_explain_cli_json_has_the_documented_fields():
    result = turnout("explain", "My email is ann.lee@fastmail.fm, please fix my Python function", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["route"] == "sensitive" and report["backends"] == ["llama"]
    finding = report["signals"]["sensitivity"]["findings"][0]
    assert report["signals"]["sensitivity"]["flagged"] is True and finding["type"] == "email"
    assert {"type", "start", "end"} <= set(finding)
    assert report["signals"]["capability"]["category"] in (
        "code",
        "math",
        "reasoning",
        "writing",
        "extraction",
        "simple_chat",
        "other",
    )
    assert 0 <= report["signals"]["capability"]["difficulty"] <= 1
    assert report["signals"]["cost"]["prompt_tokens"] > 5
    evidence = report["signals"]["capability"]["evidence"]
    assert evidence["category"] == report["signals"]["capability"]["category"]
    assert set(evidence["difficulty_from"]) == {"meaning", "surface", "prior"}
    assert 0 <= report["signals"]["capability"]["frontier"] <= 1
    assert set(evidence["frontier_from"]) == {"meaning", "surface", "prior"}
    assert evidence["first_sentence"] is None  # one sentence: its own ask
    query_words = set(
        re.findall(r"[a-z0-9_']+", "my email is ann.lee@fastmail.fm, please fix my python function")
    )
    assert evidence["category_words"] and set(evidence["category_words"]) <= query_words


def test_explain_cli_text_shows_the_evidence_for_category_and_difficulty():
    result = turnout("explain", "Write a Python function that merges two sorted lists")
    assert result.returncode == 0, result.stderr
    assert "category code" in result.stdout
    lines = [line.strip() for line in result.stdout.splitlines()]
    category = next(line for line in lines if line.startswith("category    logit = meaning"))
    assert "python" in category.split("pushed it up:")[1]
    assert any(line.startswith("difficulty  logit = meaning") for line in lines)
    assert any(line.startswith("frontier    logit = meaning") for line in lines)
    pasted = turnout("explain", "Summarize this paragraph: Sales rose 4% in May. Costs fell.")
    assert pasted.returncode == 0, pasted.stderr
    assert (
        "first sentence (its meaning read apart for the category): 'Summarize this paragraph:'"
        in pasted.stdout
    )


def test_explain_cli_text_lists_every_route_tried():
    result = turnout("explain", "write a haiku about trains", "--latency-budget-ms", "900")
    assert result.returncode == 0, result.stderr
    assert "routes tried:" in result.stdout and "sensitive: no" in result.stdout
    assert "route:        fast" in result.stdout and "1. haiku" in result.stdout


def test_explain_cli_shows_a_request_kept_inside():
    result = turnout("explain", "write a haiku about trains", "--model", "gpt-4", "--private")
    assert result.returncode == 0, result.stderr
    assert "kept inside: asked with --private" in result.stdout
    assert "1. llama" in result.stdout and "excluded gpt-4" in result.stdout
    asked = turnout("explain", "Process this locally: a haiku about trains", "--json")
    report = json.loads(asked.stdout)
    assert (
        report["backends"] == ["llama"]
        and "asks to stay inside" in report["signals"]["sensitivity"]["kept_inside"]
    )


def test_explain_endpoint_is_admin_only(gateway, pg_url):
    body = {"query": "Card 4111 1111 1111 1111 was charged twice"}
    admin = httpx.post(
        gateway.base_url + "/v1/route/explain",
        json=body,
        headers={"authorization": f"Bearer {gateway.admin_key}"},
    )
    assert admin.status_code == 200
    report = admin.json()
    assert (
        report["route"] == "sensitive"
        and report["signals"]["sensitivity"]["findings"][0]["type"] == "credit_card"
    )
    private = httpx.post(
        gateway.base_url + "/v1/route/explain",
        json={"model": "gpt-4", "query": "write a haiku about trains"},
        headers={"authorization": f"Bearer {gateway.admin_key}", "x-turnout-private": "true"},
    ).json()
    assert (
        private["backends"] == ["llama"]
        and "x-turnout-private" in private["signals"]["sensitivity"]["kept_inside"]
    )
    from tests.test_keys import turnout as keys_cli

    key = json.loads(keys_cli(pg_url, "keys", "create", "--name", "not-admin", "--json").stdout)["key"]
    denied = httpx.post(
        gateway.base_url + "/v1/route/explain", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "admin_only"
    assert "TURNOUT_ADMIN_KEY" in denied.json()["error"]["message"]  # which key is the admin's
    for bad in ({"query": 5}, {}):  # neither form: the short form's words, not a chat request's
        refused = httpx.post(
            gateway.base_url + "/v1/route/explain",
            json=bad,
            headers={"authorization": f"Bearer {gateway.admin_key}"},
        )
        error = refused.json()["error"]
        assert (
            refused.status_code == 400
            and error["param"] == "query"
            and "'query' must be a string" in error["message"]
        )
    for bad, param, words in (
        ({"query": " "}, "query", "'query' must not be empty"),
        ({"query": "hi", "foo": 1}, "foo", "Unrecognized request argument supplied: foo"),
    ):
        refused = httpx.post(
            gateway.base_url + "/v1/route/explain",
            json=bad,
            headers={"authorization": f"Bearer {gateway.admin_key}"},
        )
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["param"] == param and words in error["message"]


def _wait_version(
    gateway, differs_from: str | None = None, error: bool | None = None, timeout: float = 5.0
) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        policy = httpx.get(gateway.base_url + "/readyz").json()["policy"]
        if (differs_from is None or policy["version"] != differs_from) and (
            error is None or bool(policy["error"]) == error
        ):
            return policy
        time.sleep(0.1)
    pytest.fail(f"policy state not reached within {timeout} s: {policy}")


def test_live_reload_keeps_requests_in_flight_and_survives_a_bad_edit(gateway, emulators):
    path = Path(gateway.settings.policy)
    original = path.read_text()
    before = httpx.get(gateway.base_url + "/readyz").json()["policy"]["version"]
    emulators.vllm.script.token_ms = 100
    results: dict[str, object] = {}

    def slow_stream() -> None:
        results["status"], results["body"] = stream_chat(
            gateway.base_url, gateway.admin_key, "llama", "one two three four five six"
        )

    worker = threading.Thread(target=slow_stream)
    try:
        worker.start()
        time.sleep(0.2)
        path.write_text(original.replace("description: everything else", "description: Everything else"))
        started = time.monotonic()
        changed = _wait_version(gateway, differs_from=before, error=False)
        assert time.monotonic() - started < 2.0
        worker.join(30)
        assert results["status"] == 200 and str(results["body"]).rstrip().endswith("data: [DONE]")

        path.write_text(original.replace("routes:", "routez:"))
        broken = _wait_version(gateway, error=True)
        assert broken["version"] == changed["version"] and "routez: unknown key" in broken["error"]
        answer = httpx.post(
            gateway.base_url + "/v1/chat/completions",
            headers={"authorization": f"Bearer {gateway.admin_key}"},
            json={"model": "llama", "messages": [{"role": "user", "content": "still serving?"}]},
        )
        assert answer.status_code == 200
    finally:
        emulators.vllm.script.token_ms = 0
        path.write_text(original)
        _wait_version(gateway, error=False)


def test_a_request_is_charged_at_the_prices_it_was_planned_under(gateway, emulators):
    """A reload that changes a price mid-request must not reprice the request in flight."""
    from tests.conftest import wait_for_rows
    from tests.test_limits_gateway import key_with

    path = Path(gateway.settings.policy)
    original = path.read_text()
    before = httpx.get(gateway.base_url + "/readyz").json()["policy"]["version"]
    key_id, key = key_with(gateway, "priced-at-plan")
    emulators.openai.script.token_ms = 300
    results: dict[str, object] = {}

    def slow() -> None:
        results["status"], results["body"] = stream_chat(
            gateway.base_url, key, "gpt-4", "one two three four five six"
        )

    worker = threading.Thread(target=slow)
    try:
        worker.start()
        time.sleep(0.2)
        repriced = yaml.safe_load(original)
        repriced["backends"]["gpt-4"]["price"] = {"input_per_mtok": 2500, "output_per_mtok": 10000}
        path.write_text(yaml.safe_dump(repriced, sort_keys=False))
        _wait_version(gateway, differs_from=before, error=False)
        assert worker.is_alive(), "the request must still be in flight when the new prices are live"
        worker.join(30)
        assert results["status"] == 200 and str(results["body"]).rstrip().endswith("[DONE]")
    finally:
        emulators.openai.script.token_ms = 0
        path.write_text(original)
        _wait_version(gateway, error=False)
    rows = wait_for_rows(
        gateway.settings.database_url.get_secret_value(),
        f"SELECT prompt_tokens, completion_tokens, cost_usd FROM turnout_usage WHERE key_id = '{key_id}'",
    )
    row = rows[0]
    planned = (row["prompt_tokens"] * 2.5 + row["completion_tokens"] * 10.0) / 1e6
    assert row["cost_usd"] == pytest.approx(planned)


def test_outside_the_checkout_the_packaged_default_policy_stands_in(tmp_path):
    """Run where no policies/default.yaml is (an installed turnout, another folder): the policy installed
    with the package is used, not a 'cannot read policy' error; a policy named explicitly must exist."""
    from router.settings import PACKAGED_POLICY

    def turnout_in(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "router.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=folder,
        )

    result = turnout_in(tmp_path, "explain", "What is 15% of 80?", "--json")
    assert result.returncode == 0, result.stderr
    assert PACKAGED_POLICY.read_text() == (ROOT / "policies" / "default.yaml").read_text()
    missing = turnout_in(tmp_path, "explain", "hi", "--policy", "policies/mine.yaml")
    assert missing.returncode != 0 and "policies/mine.yaml" in missing.stderr


def test_the_evidence_names_a_first_sentence_only_when_the_prompt_has_more():
    from router.signals.capability.meaning import sentence_apart

    assert sentence_apart("Hi. Summarize this.") == "Hi."
    assert sentence_apart("  What is 2+2?  \n") is None
    assert sentence_apart("x" * 3000 + ". More") is None  # one sentence in the head the meaning vector reads
    result = turnout("explain", "What is the capital of Australia?")
    assert result.returncode == 0 and "first sentence" not in result.stdout


def test_work_people_would_give_a_frontier_model_goes_to_the_strong_tier_and_routine_work_does_not():
    """The default policy's hard route takes code, math and reasoning that the frontier score says
    people would judge to need a frontier model, where difficulty alone (benchmark outcomes) would
    not; routine requests of the same categories stay below both."""
    hard = "Write a Rust async runtime scheduler with work stealing, and prove it has no data races."
    routine = "Write a Python function that reverses a string."
    reports = [json.loads(turnout("explain", text, "--json").stdout) for text in (hard, routine)]
    capability = reports[0]["signals"]["capability"]
    assert (
        capability["category"] == "code" and capability["difficulty"] < 0.5 <= 0.7 <= capability["frontier"]
    )
    assert reports[0]["route"] == "hard"
    assert reports[1]["signals"]["capability"]["frontier"] < 0.7 and reports[1]["route"] != "hard"
