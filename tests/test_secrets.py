"""Secrets: gitleaks' rule set as turnout runs it (Go patterns translated, keywords, entropy,
allowlists), the gates that keep its rules and turnout's cheap, and the evaluation sets (CredSweeper's
findings, other authors' templates). turnout's own rules: tests/test_secrets_plaintext.py. Every
sentence here was written for this file."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.gitleaks import (
    RULES_PATH,
    RULES_SHA256,
    GitleaksRules,
    go_to_python,
    load_rules,
    rules_file,
)

TINY = {
    "allowlist": {"regexes": ["^\\$\\{[A-Z_]+}$"], "stopwords": ["notreal"]},
    "rules": [
        {
            "id": "acme-token",
            "regex": "\\b(acme_(?i)[a-z0-9]{20})\\b",
            "keywords": ["acme_"],
            "entropy": 3.0,
            "allowlists": [{"regexes": ["^acme_0{20}$"]}],
        },
        {"id": "widget-key", "regex": "widget[ =:]+([A-Z0-9]{12})", "keywords": ["widget"], "secretGroup": 1},
        {"id": "needs-a-file", "regex": "x", "keywords": ["x"], "path": "\\.env$"},
    ],
}


def test_go_patterns_become_python_ones() -> None:
    assert go_to_python("a(?i)b|c") == "a(?i:b)|(?i:c)"  # Go's flag holds for every later branch
    assert go_to_python("x(y(?i)z|w)v") == "x(y(?i:z)|(?i:w))v"
    assert go_to_python("(?i)abc") == "(?i)abc"  # at the start Python reads it as Go does
    assert go_to_python(r"[[a]\z") == r"[\[a]\Z"
    # a run of any characters is bounded, lazy or not; an escaped dot and a dot in a class are not runs
    assert go_to_python(r"a.*?b.+c\.*[.*]") == r"a.{0,300}?b.{1,300}c\.*[.*]"


def test_the_gateway_pins_the_rules_the_registry_names() -> None:
    """One file, one hash: the gateway's pin and the registry's entry must not drift apart."""
    from evals.datasets import REGISTRY

    assert (REGISTRY["gitleaks-rules"].local_path, REGISTRY["gitleaks-rules"].sha256) == (
        RULES_PATH,
        RULES_SHA256,
    )


def test_rules_run_as_gitleaks_runs_them() -> None:
    rules = GitleaksRules(TINY)
    assert [rule.id for rule in rules.rules] == ["acme-token", "widget-key"] and rules.skipped == [
        "needs-a-file"
    ]
    text = "token acme_Q2w9E8r7T6y5U4i3O2p1 and widget: ABC123DEF456"
    found = [(f.detail, text[f.start : f.end]) for f in rules.scan(text)]
    assert found == [("acme-token", "acme_Q2w9E8r7T6y5U4i3O2p1"), ("widget-key", "ABC123DEF456")]
    assert list(rules.scan("acme_aaaaaaaaaaaaaaaaaaaa")) == []  # below the rule's entropy
    assert list(rules.scan("acme_00000000000000000000")) == []  # the rule's allowlist
    assert list(rules.scan("widget = NOTREAL12345X")) == []  # the global stopword
    assert list(rules.scan("nothing to see")) == [] and rules.candidates("nothing to see") == []


def _the_rules() -> GitleaksRules:
    rules = load_rules()
    if rules is None:
        if os.environ.get("CI"):
            pytest.fail(f"gitleaks' rules are missing (looked for {rules_file()})")
        pytest.skip("gitleaks' rules are not installed")
    return rules


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("grafana: glsa_9Fq2LmX7pR4tV8wZ1cB6nJ3kH5sD0gYe_4f9a1c2e", "grafana-service-account-token"),
        ("HF_TOKEN=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", "huggingface-access-token"),
        ("sourcegraph sgp_0123456789abcdef_" + "a9f3c4e2b1d0" * 3 + "a9f3", "sourcegraph-access-token"),
    ],
)
def test_provider_formats_from_the_maintained_rule_set(text: str, rule: str) -> None:
    _the_rules()
    details = {f.detail for f in SensitivityDetector().scan(text) if f.type == "secret"}
    assert rule in details


def test_a_placeholder_in_a_rule_sets_place_is_no_secret() -> None:
    _the_rules()
    text = 'curl https://api.anthropic.com/v1/messages --header "x-api-key: YOUR_API_KEY"'
    assert [f for f in SensitivityDetector().scan(text) if f.type == "secret"] == []
    real = text.replace("YOUR_API_KEY", "Qm4xZ8pLw2Rt7Kd9Vb")
    assert [f.detail for f in SensitivityDetector().scan(real) if f.type == "secret"]


@pytest.mark.parametrize(
    ("text", "published", "real"),
    [
        (
            'stripe.api_key = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"',
            "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
            "sk_test_9fQ2mWx7LpR4vT8zKc3nYb6h",
        ),
        (
            '{"ok": true, "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"}',
            "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "xoxb-52819377140-83306152977-Wq8rTz3LmN5vXc2KpB7yHd4s",
        ),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiJ9"
            ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
            ".q7Hc2WmZp9LxR4tVb8NkYd3Fs6Ge1Jo5Ua0Ei_Tw-Qr",
        ),
    ],
)
def test_a_key_documentation_prints_is_no_secret_and_one_like_it_is(
    text: str, published: str, real: str
) -> None:
    _the_rules()
    assert [f for f in SensitivityDetector().scan(text) if f.type == "secret"] == []
    assert [f for f in SensitivityDetector().scan(text.replace(published, real)) if f.type == "secret"]


@pytest.mark.parametrize(
    "text",
    [
        'DB_PASSWORD="Zq8!pk_test_TYooMQauvdEDq54NiTphI7jx"',  # a published key inside a longer value
        "GITHUB_TOKEN=ghp_16C7e42F292c6912E7710c838347Ae178B4aXYZ9",
    ],
)
def test_a_value_that_only_holds_a_published_key_is_still_a_secret(text: str) -> None:
    _the_rules()
    assert [f for f in SensitivityDetector().scan(text) if f.type == "secret"]


def test_a_token_no_key_signed_is_no_secret() -> None:
    _the_rules()
    unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJyb290IiwiYWRtaW4iOnRydWV9."
    text = f"Does the server still accept {unsigned} after the upgrade?"
    assert [f for f in SensitivityDetector().scan(text) if f.type == "secret"] == []
    signed = unsigned + "Xk3vB9qLm2Rt7Wd5Np8Zc4Hy6Fs1Ja0Ge"
    assert [f for f in SensitivityDetector().scan(text.replace(unsigned, signed)) if f.type == "secret"]
    for assigned in (f'auth_token = "{unsigned}"', f"export AUTH_TOKEN={unsigned}"):
        assert [f for f in SensitivityDetector().scan(assigned) if f.type == "secret"] == []
        signed_too = assigned.replace(unsigned, signed)
        assert [f for f in SensitivityDetector().scan(signed_too) if f.type == "secret"]


def test_the_rule_set_is_loaded_lean_and_without_its_generic_rule() -> None:
    rules = _the_rules()
    assert len(rules.rules) > 200 and "generic-api-key" in rules.skipped


def test_the_image_installs_the_rules_it_pins() -> None:
    """README promises that the Docker image fetches the rule set at build time."""
    from pathlib import Path

    dockerfile = (Path(__file__).resolve().parents[1] / "router" / "deploy" / "Dockerfile").read_text()
    assert "python -m evals.datasets fetch gitleaks-rules" in dockerfile


def _finding(rule: str, path: str, line_num: int, line: str, value: str) -> dict[str, object]:
    start = line.index(value)
    data = {
        "path": path,
        "line_num": line_num,
        "line": line,
        "value_start": start,
        "value_end": start + len(value),
    }
    return {"rule": rule, "line_data_list": [data]}


def test_credsweeper_findings_become_one_sample_per_text() -> None:
    from evals import secrets_external

    line = 'db_password = "Qm7#kT2vLx9w"'
    token = "t=ghp_" + "k" * 36
    findings = [
        _finding("Password", "tests/samples/a.py", 3, line, "Qm7#kT2vLx9w"),
        _finding("Secret", "tests/samples/a.py", 3, line, "Qm7#kT2vLx9w"),  # the same line, another rule
        _finding("Password", "tests/samples/c.py", 9, line, "Qm7#kT2vLx9w"),  # the same text elsewhere
        _finding("IPv4", "tests/samples/b.txt", 1, "host 10.1.2.3", "10.1.2.3"),  # not a credential
        _finding("Github Classic Token", "tests/samples/c", 1, token, "ghp_" + "k" * 36),
    ]
    samples = secrets_external.samples(findings)
    assert [(s.path, s.line, s.rules, s.kind) for s in samples] == [
        ("tests/samples/a.py", line, ("Password", "Secret"), "keyword"),
        ("tests/samples/c", token, ("Github Classic Token",), "provider"),
    ]
    assert samples[0].spans == ((15, 27),)
    # a text found in two files is counted once, in the half of the first (a.py's, not c.py's)
    half = {
        p: secrets_external.Sample(p, "", (), ()).half for p in ("tests/samples/a.py", "tests/samples/c.py")
    }
    assert half == {"tests/samples/a.py": "development", "tests/samples/c.py": "held-out"}
    assert samples[0].half == "development"


def test_a_local_dataset_is_verified_and_an_absent_one_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import hashlib

    from evals import datasets

    body = b'{"probe": true}\n'
    probe = dataclasses.replace(
        datasets.REGISTRY["credsweeper-output"],
        name="local-probe",
        local_path="probe/local_probe.json",
        sha256=hashlib.sha256(body).hexdigest(),
    )
    monkeypatch.setitem(datasets.REGISTRY, "local-probe", probe)
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(tmp_path))
    assert datasets.local("local-probe") is None  # never downloaded
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "local_probe.json").write_bytes(body)
    assert datasets.local("local-probe") == tmp_path / "probe" / "local_probe.json"
    (tmp_path / "probe" / "local_probe.json").write_bytes(body + b" ")
    with pytest.raises(datasets.DatasetError, match="sha256"):
        datasets.local("local-probe")  # there but not the registered file: an error, not absent


def test_a_credsweeper_finding_over_consecutive_lines_is_one_sample() -> None:
    from evals import secrets_external

    head, body, tail = (
        'key = "-----BEGIN RSA PRIVATE KEY-----" +',
        '  "MIIEow' + "Ab3" * 20 + '" +',
        '  "-----END RSA PRIVATE KEY-----"',
    )
    lines = [
        {"path": "k.py", "line_num": 7, "line": head, "value_start": 7, "value_end": 38},
        {"path": "k.py", "line_num": 8, "line": body, "value_start": 3, "value_end": len(body) - 3},
        {"path": "k.py", "line_num": 9, "line": tail, "value_start": 3, "value_end": len(tail) - 1},
        {
            "path": "k.py",
            "line_num": 12,
            "line": 'id = "AKIAIOSFODNN7ABCDEFG"',
            "value_start": 6,
            "value_end": 26,
        },
    ]
    samples = secrets_external.samples([{"rule": "PEM Private Key", "line_data_list": lines}])
    block = f"{head}\n{body}\n{tail}"
    assert [s.line for s in samples] == [lines[3]["line"], block]  # sorted by text
    joined = next(s for s in samples if s.line == block)
    assert [block[a:b] for a, b in joined.spans] == [head[7:38], body[3:-3], tail[3:-1]]


def test_a_credsweeper_line_counts_only_when_its_value_is_found() -> None:
    from evals import secrets_external

    detector = SensitivityDetector()
    line = "export API_TOKEN=Vd8#qL2mXw7z && echo done"
    hit = secrets_external.Sample("p", line, ("Token",), ((17, 29),))
    elsewhere = secrets_external.Sample("p", line, ("Token",), ((30, 34),))  # "echo": not what was found
    assert secrets_external.found(detector, hit)
    assert not secrets_external.found(detector, elsewhere)
    report = secrets_external.recall(detector, [hit, elsewhere])
    assert report["all"] == {"n": 2, "recall": 0.5} and len(report["misses"]) == 1


def test_credsweeper_corpus_as_registered() -> None:
    from evals import secrets_external

    samples = secrets_external.load()
    if samples is None:
        pytest.skip(f"not fetched here: python -m evals.datasets fetch {secrets_external.DATASET}")
    kinds = [s.kind for s in samples]
    assert (len(samples), kinds.count("provider"), kinds.count("keyword")) == (206, 64, 142)
    assert len({s.line for s in samples}) == len(samples)
    assert all(s.line[a:b] for s in samples for a, b in s.spans)


def test_other_authors_sets_are_well_formed_and_the_unread_ones_misses_are_never_kept() -> None:
    """An unread set stays unread: its texts fill their templates, and a miss of it, or which of its
    look-alikes was flagged, is never reported; a spent set's are, like the project's own templates'."""
    from evals import secrets_eval

    kinds = ("cli", "code", "config", "prose", "sql", "url")
    # per set: templates of prose, of each other kind, and look-alikes
    sizes = {
        "fresh": (10, 10, 30),
        "fresh_b": (15, 15, 40),
        "fresh_c": (15, 15, 40),
        "fresh_d": (40, 16, 40),
        "fresh_e": (40, 16, 40),
        "fresh_f": (40, 16, 40),
        "fresh_g": (40, 16, 40),
        "fresh_h": (40, 16, 40),
        "fresh_i": (40, 16, 40),
        "fresh_j": (40, 16, 40),
        "fresh_k": (40, 16, 40),
        "fresh_l": (40, 16, 40),
        "fresh_m": (40, 16, 40),
        "fresh_n": (40, 16, 40),
        "fresh_o": (40, 16, 40),
        "fresh_p": (40, 16, 40),
        "fresh_q": (40, 16, 40),
    }
    assert [name for name, _, spent in secrets_eval.SECOND_AUTHORS if spent is None] == [
        "fresh_k",
        "fresh_m",
        "fresh_n",
        "fresh_o",
        "fresh_p",
        "fresh_q",
    ]
    for name, path, _ in secrets_eval.SECOND_AUTHORS:
        prose, per_kind, lookalikes = sizes[name]
        data = json.loads(path.read_text(encoding="utf-8"))
        counts = Counter(entry["kind"] for entry in data["templates"])
        assert counts == {kind: prose if kind == "prose" else per_kind for kind in kinds}
        assert len(set(data["lookalikes"])) == lookalikes
        for entry in data["templates"]:
            assert entry["template"].count("{pw}") >= 1  # a `git remote -v` lists one URL twice
            assert "Zq3!u8Rk2x" in entry["template"].format(pw="Zq3!u8Rk2x", user="u", host="h")
    # a real detector that looks for e-mail addresses only finds no secret: every row is a miss
    report = secrets_eval.run(per_family=1, per_template=1, detector=SensitivityDetector(types=["email"]))
    for name, (prose, per_kind, _) in sizes.items():
        assert report[name] == {
            "n": prose + 5 * per_kind,
            "recall": 0.0,
            "by_kind": dict.fromkeys(kinds, 0.0),
        }
    assert [name for name, _, spent in secrets_eval.TOKEN_AUTHORS if spent is None] == ["tokens_c"]
    for name, path, spent in secrets_eval.TOKEN_AUTHORS:
        tokens = json.loads(path.read_text(encoding="utf-8"))
        token_kinds = Counter(entry["kind"] for entry in tokens["templates"])
        assert token_kinds == {"prose": 45, "config": 25, "code": 20, "cli": 15, "log": 15}
        assert len(set(tokens["lookalikes"])) == 60
        assert all(entry["template"].count("{token}") == 1 for entry in tokens["templates"])
        assert report[name] == {"n": 120, "recall": 0.0, "by_kind": {k: 0.0 for k in sorted(token_kinds)}}
        listed = {} if spent is None else {"flagged": []}  # unread: no list of what was flagged
        assert report[f"{name}_lookalikes"] == {"n": 60, "flag_rate": 0.0, **listed}
    unread_sets = ("fresh_k", "fresh_m", "fresh_n", "fresh_o", "fresh_p")
    for unread in unread_sets:  # no list of which look-alikes were flagged
        assert report[f"{unread}_lookalikes"] == {"n": 40, "flag_rate": 0.0}
    for spent in ("fresh_d", "fresh_e", "fresh_f", "fresh_g", "fresh_h", "fresh_i", "fresh_j", "fresh_l"):
        assert report[f"{spent}_lookalikes"] == {"n": 40, "flag_rate": 0.0, "flagged": []}
    spent_sets = (
        "fresh",
        "fresh_b",
        "fresh_c",
        "fresh_d",
        "fresh_e",
        "fresh_f",
        "fresh_g",
        "fresh_h",
        "fresh_i",
        "fresh_j",
        "fresh_l",
        "tokens_a",  # read while the labelled rule's third and fourth rounds were written
        "tokens_b",
    )
    kept = sum(report[name]["n"] for name in ("providers", "plaintext", *spent_sets))
    assert len(report["misses"]) == kept


def test_the_leaked_fill_puts_common_passwords_of_eight_or_more_characters_in_the_same_templates() -> None:
    """`fill="leaked"` fills the other authors' templates with passwords from zxcvbn's common-password
    list (8+ characters), seeded, and leaves the provider tokens and the built-in templates alone."""
    import random

    from evals import secrets_eval

    words = secrets_eval.leaked_passwords()
    assert len(words) > 10_000 and min(map(len, words)) == secrets_eval.LEAKED_MIN_LENGTH
    assert {"baseball", "trustno1", "football"} <= set(words) and "123456" not in words
    templates = json.loads(secrets_eval.SECOND_AUTHORS[0][1].read_text(encoding="utf-8"))["templates"]
    rows = secrets_eval.fresh_rows(templates, random.Random(3), 2, secrets_eval._leaked)
    assert all(secret in words and secret in text for _, secret, text in rows)
    assert rows == secrets_eval.fresh_rows(templates, random.Random(3), 2, secrets_eval._leaked)
    leaked = secrets_eval.run(per_family=2, per_template=2, fill="leaked")
    generated = secrets_eval.run(per_family=2, per_template=2)
    assert leaked["fill"] == "leaked" and generated["fill"] == "generated"
    assert leaked["providers"] == generated["providers"] and leaked["plaintext"] == generated["plaintext"]
    # what the pii suite reports for the leaked fill is the same sets' recall, without the rest
    alone = secrets_eval.authors_recall("leaked", per_template=2)
    assert set(alone) == {name for name, _, _ in secrets_eval.SECOND_AUTHORS}
    assert all(alone[name] == leaked[name] for name in alone)
    # people's passwords are found less often than made-up ones, by this detector as shipped
    assert leaked["fresh_l"]["recall"] < generated["fresh_l"]["recall"]
    with pytest.raises(ValueError, match="fill must be one of"):
        secrets_eval.run(fill="dictionary")


def test_a_gate_is_the_literal_a_rule_begins_with_where_nothing_stands_beside_it() -> None:
    """A \\b-led rule is tried where its leading literal is; a gate that reads on ("ey" and then any
    number of letters) would read to the end of a long run of letters from every "ey" in it."""
    from router.signals.sensitivity.gitleaks import _literal_head

    assert _literal_head(r"\b(ey[a-zA-Z0-9]{17,}\.ey)") == "ey"
    assert _literal_head(r"\bcurl\b(?:.{0,9}?|x)[ \t]") == "curl"  # an alternative inside a later group
    assert _literal_head(r"\b(abc)(?:x|y)") == "abc"
    assert _literal_head(r"\b(abc[0-9]|def)") == ""  # the pattern may begin with def
    assert _literal_head(r"\b(?:sc|ext)_") == ""
    assert _literal_head(r"\babc|def") == ""
    assert _literal_head(r"\bab*c") == ""  # b* may be no b: only "a" is sure, and one letter is too few
    assert _literal_head(r"\b[a-z]{6}_mmk") == ""
    assert _literal_head(r"\b(?:ab)?cd") == ""  # the group that holds it may be absent
    assert _literal_head(r"\b(ab)*cd") == ""
    assert _literal_head(r"\b(?:(?:abc)?def)") == ""


def _sure_prefix(pattern: str) -> str:
    """The literal every match of `pattern` begins with, read from Python's own parse of it."""
    from re import _parser  # type: ignore[attr-defined]

    items, prefix = list(_parser.parse(pattern)), ""
    while items:
        kind, value = items.pop(0)
        if str(kind) == "AT":  # \b
            continue
        if str(kind) == "LITERAL":
            prefix += chr(value)
        elif str(kind) == "SUBPATTERN":
            items = list(value[-1]) + items
        else:
            break
    return prefix


def test_every_gate_of_the_rule_set_is_a_literal_each_match_begins_with() -> None:
    """Over the loaded gitleaks rules: a rule tried only where its gate literal is must begin with it."""
    from router.signals.sensitivity.gitleaks import _literal_head

    rules = _the_rules()
    checked = 0
    for rule in rules.rules:
        head = _literal_head(rule.regex.pattern) if rule.regex.pattern.startswith("\\b") else ""
        if head:
            checked += 1
            assert _sure_prefix(rule.regex.pattern).startswith(head), rule.id
    assert checked > 30
