"""Secret detection by gitleaks' maintained rule set (MIT): provider token formats, checked as
gitleaks checks them (keywords first, then the rule's regular expression, the secret's entropy and
the rule's and the global allowlists), with one difference: a prompt has no file path, so rules that
need one are skipped.

The rules file (`config/gitleaks.toml` of gitleaks/gitleaks at a pinned commit) is never copied
into this repository: `load_rules` reads it from where the dataset registry keeps it (a mirror
folder named by TURNOUT_DATA_DIR, or the cache filled by `python -m evals.datasets fetch
gitleaks-rules`), checks its sha256, and gives None when it is not there, so that the gateway keeps
its own patterns (router.signals.sensitivity.secrets) and says so once. Go's regular expressions are translated
to Python's (`(?i)` in mid-pattern, `\\z`, a literal `[` in a class); a rule that still does not
compile is skipped and counted.
This module only reads text; it never logs a secret.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from router import datafiles
from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.scanning import Prefiltered
from router.signals.sensitivity.secret_values import frame_without_key, shannon_entropy, shown_not_secret

log = logging.getLogger("turnout.secrets")

RULES_PATH = "secrets/gitleaks.toml"
RULES_SHA256 = "e163e53b9e7e8a8511e77271e2b323ed057759542a6d988258afe3a1fa329caf"  # gitleaks @ b58d3f10
CONFIDENCE = 0.9


# RE2, which gitleaks runs, takes linear time whatever the pattern; Python's backtracking `re` takes
# quadratic time on a `.*` that fails from many starts ("curl " 8,000 times: 12 s for curl's rules),
# so a run of any characters is bounded: `.*` reads at most this many (a `.` stops at a line end),
# which is most command lines and keeps a text of nothing but "curl " near 5 us a character.
DOT_RUN = 300


def go_to_python(pattern: str) -> str:
    """A Go (RE2) regular expression as Python's `re` reads it: `\\z` is `\\Z`, a flag group such
    as `(?i)` after the start, which Go applies to the rest of its enclosing group (every branch of
    it), becomes a scoped `(?i:...)` closed before each `|` and at the group's end, and `.*` and `.+`
    read at most DOT_RUN characters."""
    pattern = pattern.replace(r"\z", r"\Z")
    out: list[str] = []
    open_flags: list[list[str]] = [[]]  # per group depth: the scoped flag groups opened in it
    in_class = False
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append("\\[" if char == "[" else char)  # a literal [ in a class, as Go reads it
            i += 1
            continue
        flags = re.match(r"\(\?([a-zA-Z]+)\)", pattern[i:])
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            for literal in ("^", "]"):  # "[]...]" and "[^]...]" hold a literal ]
                if pattern.startswith(literal, i):
                    out.append(literal)
                    i += 1
        elif flags is not None and i > 0:
            out.append(f"(?{flags.group(1)}:")
            open_flags[-1].append(flags.group(1))
            i += flags.end()
        elif char == "(":
            open_flags.append([])
            out.append(char)
            i += 1
        elif char == ")":
            out.append(")" * len(open_flags.pop()) + ")")
            i += 1
        elif char == "|" and open_flags[-1]:
            out.append(")" * len(open_flags[-1]) + "|" + "".join(f"(?{f}:" for f in open_flags[-1]))
            i += 1
        elif char == "." and pattern[i + 1 : i + 2] in ("*", "+"):
            out.append(f".{{{0 if pattern[i + 1] == '*' else 1},{DOT_RUN}}}")
            i += 2
        else:
            out.append(char)
            i += 1
    out.append(")" * len(open_flags.pop()))
    return "".join(out)


# What gitleaks' generator puts before the identifier of its "key = value" rules, only to widen the
# reported match: optional and lazy, so dropping it changes no secret found, and on a long prompt
# it costs a backtracking search at every position (24 ms for one Arena-Hard prompt here).
_LEADING_WIDENER = r"[\w.-]{0,50}?"
EXCLUDED = {
    # turnout's own assignment rules (router.signals.sensitivity.secrets) cover "key = value" with placeholder and
    # type-annotation checks; this rule alone was 2.3 of the 3.5 ms p99 of a scan on Arena-Hard
    "generic-api-key": "covered by turnout's own assignment rules",
}


def lean(pattern: str) -> str:
    """The pattern without the leading match-widening prefixes (see _LEADING_WIDENER)."""
    head, tail = pattern[:40], pattern[40:]
    return head.replace(_LEADING_WIDENER, "") + tail


@dataclass(frozen=True)
class Allowlist:
    regexes: tuple[re.Pattern[str], ...]
    stopwords: tuple[str, ...]
    target: str  # "secret" (default), "match" or "line"
    all_of: bool  # condition AND: every kind given must allow it

    def allows(self, secret: str, match: str, line: str) -> bool:
        subject = {"match": match, "line": line}.get(self.target, secret)
        checks = []
        if self.regexes:
            checks.append(any(rx.search(subject) for rx in self.regexes))
        if self.stopwords:
            lowered = secret.lower()
            checks.append(any(word in lowered for word in self.stopwords))
        if not checks:
            return False
        return all(checks) if self.all_of else any(checks)


@dataclass(frozen=True)
class Rule:
    id: str
    regex: re.Pattern[str]
    keywords: tuple[str, ...]
    entropy: float
    secret_group: int
    allowlists: tuple[Allowlist, ...]
    finder: Prefiltered | None = None  # `regex` tried only where it can match, for a \b-led regex

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        return (self.finder or self.regex).finditer(text)

    def secret_span(self, match: re.Match[str]) -> tuple[int, int]:
        if self.secret_group:
            return match.span(self.secret_group)
        for group in range(1, (match.re.groups or 0) + 1):  # the first group that took part
            if match.group(group):
                return match.span(group)
        return match.span()


def _allowlist(raw: dict[str, Any]) -> Allowlist | None:
    regexes = []
    for pattern in raw.get("regexes", []) or []:
        try:
            regexes.append(re.compile(go_to_python(str(pattern))))
        except re.error:
            continue
    stopwords = tuple(str(word).lower() for word in raw.get("stopwords", []) or [])
    if not regexes and not stopwords:
        return None  # paths only: a prompt has no path
    target = str(raw.get("regexTarget", "secret"))
    return Allowlist(tuple(regexes), stopwords, target, str(raw.get("condition", "OR")).upper() == "AND")


class GitleaksRules:
    """The compiled rule set; `scan(text)` yields a `secret` Finding per leak, the secret's span only."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.rules: list[Rule] = []
        self.skipped: list[str] = []
        for raw in config.get("rules", []):
            if "regex" not in raw or "path" in raw or raw["id"] in EXCLUDED:
                self.skipped.append(raw["id"])  # needs a file path, has no regex, or is excluded
                continue
            try:
                regex = re.compile(go_to_python(lean(raw["regex"])))
            except re.error:
                self.skipped.append(raw["id"])
                continue
            lists = tuple(a for a in (_allowlist(x) for x in raw.get("allowlists", [])) if a is not None)
            self.rules.append(
                Rule(
                    raw["id"],
                    regex,
                    tuple(k.lower() for k in raw.get("keywords", [])),
                    float(raw.get("entropy", 0.0)),
                    int(raw.get("secretGroup", 0)),
                    lists,
                    _finder(regex),
                )
            )
        glob = config.get("allowlist") or {}
        self.global_list = _allowlist(glob) if isinstance(glob, dict) else None
        self._by_keyword: dict[str, list[Rule]] = {}
        for rule in self.rules:
            for keyword in rule.keywords:
                self._by_keyword.setdefault(keyword, []).append(rule)
        # gitleaks' prefilter: a rule runs on a text holding one of its keywords (all found in one read)
        self._keywords = Gate(self._by_keyword)
        self._always = [rule for rule in self.rules if not rule.keywords]
        self._order = {id(rule): index for index, rule in enumerate(self.rules)}

    def candidates(self, text: str) -> list[Rule]:
        """The rules one of whose keywords the text holds (gitleaks' prefilter), in file order."""
        chosen = {id(rule): rule for rule in self._always}
        for keyword in self._keywords.found(text.lower()):
            chosen.update((id(rule), rule) for rule in self._by_keyword[keyword])
        return sorted(chosen.values(), key=lambda rule: self._order[id(rule)])

    def scan(self, text: str) -> Iterator[Finding]:
        for rule in self.candidates(text):
            for match in rule.finditer(text):
                start, end = rule.secret_span(match)
                secret = text[start:end]
                if not secret or (rule.entropy and shannon_entropy(secret) < rule.entropy):
                    continue
                if "PRIVATE KEY" in secret:
                    if frame_without_key(text, start, end, complete=True):
                        continue  # a private key's frame around "..." or "<paste your key here>"
                elif shown_not_secret(secret):
                    continue  # curl --header "x-api-key: YOUR_API_KEY": documentation, not a secret
                line_start = text.rfind("\n", 0, start) + 1
                line_end = text.find("\n", end)
                line = text[line_start : line_end if line_end >= 0 else len(text)]
                lists = [*rule.allowlists, *([self.global_list] if self.global_list else [])]
                if any(a.allows(secret, match.group(0), line) for a in lists):
                    continue
                yield Finding("secret", start, end, CONFIDENCE, rule.id)


def _finder(regex: re.Pattern[str]) -> Prefiltered | None:
    """For a regex that starts with \\b (47 of gitleaks' rules, "\\b(ey..." for JWTs), which `re`
    would try at every position of the text: the same regex tried only where a gate matches that
    begins with a literal or a class that `re` skips ahead to. The gate is the literal the regex
    begins with where there is one of two characters or more (a gate that reads on, as "ey" then
    any number of letters, would read to the end of a long run of letters from each "ey" in it:
    quadratic time); else the regex without its \\b."""
    if not regex.pattern.startswith("\\b"):
        return None
    head = _literal_head(regex.pattern)
    try:
        gate = re.compile(re.escape(head) if head else regex.pattern[2:], regex.flags)
    except re.error:
        return None
    return Prefiltered(regex, gate)


def _literal_head(pattern: str) -> str:
    """The letters, digits, "_" and "-" a \\b-led pattern begins with after its opening "(" and
    "(?:" groups, when they are two or more, no quantifier applies to them and no alternative stands
    beside them (a "|" in a group that holds them, or at the top level); else ""."""
    rest, enclosing = pattern[2:], 0
    while rest.startswith(("(?:", "(")) and not rest.startswith(("(?i", "(?P", "(?=", "(?!", "(?<")):
        rest = rest[3:] if rest.startswith("(?:") else rest[1:]
        enclosing += 1
    head = re.match(r"[A-Za-z0-9_-]+", rest)
    if head is None:
        return ""
    word = head.group()
    if rest[head.end() : head.end() + 1] in ("*", "+", "?", "{"):
        word = word[:-1]  # the quantifier applies to the last character only
    stack = [True] * enclosing  # per open group: whether it holds the head
    index = head.end()
    while index < len(rest):
        char = rest[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            index = rest.find("]", index + 2) + 1 or len(rest)  # "[]" and "[^]" hold a literal ]
            continue
        if char == "(":
            stack.append(False)
        elif char == ")" and stack:
            if stack.pop() and rest[index + 1 : index + 2] in ("?", "*", "{"):
                return ""  # a group that holds the head may be absent: (?:ab)?cd matches "cd"
        elif char == "|" and (not stack or stack[-1]):
            return ""
        index += 1
    return word if len(word) >= 2 else ""


def rules_file() -> Path | None:
    """Where the registry keeps gitleaks' rules (a mirror folder, else the cache), or None."""
    return datafiles.find(RULES_PATH)


@lru_cache(maxsize=1)
def load_rules() -> GitleaksRules | None:
    """gitleaks' rules, compiled once per process; None (logged once) when the file is absent or
    is not the pinned version."""
    path = rules_file()
    if path is None:
        log.warning(
            "gitleaks' rules are not installed (python -m evals.datasets fetch gitleaks-rules); "
            "secrets are found by turnout's own patterns only"
        )
        return None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != RULES_SHA256:
        log.warning(
            "%s is not the pinned gitleaks rule set; secrets are found by turnout's own patterns only", path
        )
        return None
    rules = GitleaksRules(tomllib.loads(data.decode("utf-8")))
    log.info(
        "gitleaks rules: %d in use, %d skipped (need a file path or do not compile)",
        len(rules.rules),
        len(rules.skipped),
    )
    return rules
