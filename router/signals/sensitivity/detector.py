"""Offline sensitive-data detection for the gateway's hard privacy gate.

`SensitivityDetector.scan(text)` returns the personal data, identifiers and secrets in a prompt as
character spans, so the gateway can keep such prompts on local models. Every detector is offline:
regexes confirmed by check digits where a format has one (Luhn, mod-97, Verhoeff, national check
letters), the ipaddress module, cue words, and a person-name gazetteer built from Faker's name
lists (Faker, MIT license; see evals.training.build_names). A scan must stay well under a
millisecond on a chat prompt: cheap prefilters decide which detectors run, every pattern is
compiled once, and nothing here may touch the network, a model, or the matched text beyond
returning offsets.
"""

from __future__ import annotations

import bisect
import re
import string
from collections.abc import Collection, Iterator, Sequence
from functools import partial

from router.signals.sensitivity.addresses import find_addresses
from router.signals.sensitivity.findings import DEFAULT_TYPES, FINDING_TYPES, Finding
from router.signals.sensitivity.gazetteer import gazetteer
from router.signals.sensitivity.gitleaks import load_rules
from router.signals.sensitivity.identifiers import find_national_ids
from router.signals.sensitivity.names import find_people
from router.signals.sensitivity.numbers import find_cards, find_ibans, find_ips, find_phones
from router.signals.sensitivity.public_names import public_names
from router.signals.sensitivity.secrets import find_secrets

__all__ = ["FINDING_TYPES", "Finding", "SensitivityDetector"]

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b"
)
_LOCAL_CHARS = frozenset(string.ascii_letters + string.digits + "._%+-")  # of _EMAIL before its @
# RFC 2606/6761 names and the stock placeholders of documentation and code samples: addresses of nobody.
# A stock local part ("john.doe", "test", "user") counts only at such a domain: at a real one
# (john.doe@gmail.com, test@hospital.org) it is someone's mailbox, and "My email is ..." says so.
# git@ is an SSH remote's user, "your.email@..." an instruction to fill in.
_PLACEHOLDER_EMAIL = re.compile(
    r"(?i)^(?:your[._-]?(?:e-?mail|name|address|user(?:name)?|id|login|account)?@"  # not youri.tielemans@
    r"|git@|.*@(?:[\w-]+\.)*(?:example|test|invalid|localhost|local)$|.*@(?:[\w-]+\.)*(?:example|company"
    # email.com, host.de and server.de are real mail domains: not among these
    r"|corporate|corp|domain|yourdomain|mydomain|yourcompany|mycompany|acme)\.\w+$)"
)
# Role mailboxes name a function, not a person: still reported, below the default threshold.
_ROLE_EMAIL = re.compile(
    r"(?i)^(?:support|info|team|contact|sales|admin|noreply|no-reply|hello|help|office|it|hr|billing|press"
    r"|webmaster|postmaster|abuse|security|privacy|marketing|jobs|careers|service|enquiries|feedback)@"
)
# When two findings of different types overlap, the more specific one wins a tie in confidence.
_PRIORITY = {
    "secret": 9,
    "credit_card": 8,
    "iban": 8,
    "national_id": 7,
    "email": 6,
    "ip_address": 5,
    "internal_ip": 5,
    "phone": 4,
    "street_address": 3,
    "term": 2,
    "person": 1,
}

_DIGIT = re.compile(r"\d")


def _email_matches(text: str) -> Iterator[re.Match[str]]:
    """_EMAIL.finditer(text), tried only just before each @ instead of at every letter: a match's
    local part (1-64 characters, none of them @) ends at the first @ after where it starts, so from
    where the search resumes, a match starts in the run of local-part characters before the next @."""
    position = 0
    while (at := text.find("@", position)) >= 0:
        start, floor = at, max(position, at - 64)
        while start > floor and text[start - 1] in _LOCAL_CHARS:
            start -= 1
        found = next(filter(None, map(partial(_EMAIL.match, text), range(start, at))), None)
        if found is None:
            position = at + 1
        else:
            yield found
            position = found.end()


# Past this many @ (a pasted mailing list, a log), the walk back from each @ in Python costs more
# than the plain search; both find the same matches.
_MANY_ATS = 32


def find_emails(text: str) -> Iterator[Finding]:
    if "@" not in text:
        return
    matches = _EMAIL.finditer(text) if text.count("@") > _MANY_ATS else _email_matches(text)
    for match in matches:
        address = match.group(0)
        confidence = (
            0.3 if _PLACEHOLDER_EMAIL.match(address) else 0.45 if _ROLE_EMAIL.match(address) else 0.95
        )
        yield Finding("email", match.start(), match.end(), confidence)


def _digit_detectors(text: str) -> Iterator[Finding]:
    yield from find_cards(text)
    yield from find_ibans(text)
    yield from find_national_ids(text)
    yield from find_phones(text)
    yield from find_ips(text)
    yield from find_addresses(text)


_DIGIT_TYPES = frozenset(
    ("phone", "credit_card", "iban", "national_id", "ip_address", "internal_ip", "street_address")
)


def _compile_terms(terms: Sequence[str]) -> re.Pattern[str] | None:
    words = sorted({term.strip() for term in terms if term.strip()}, key=len, reverse=True)
    if not words:
        return None
    alternation = "|".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


def _compile_patterns(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as error:
            raise ValueError(f"invalid sensitivity pattern {pattern!r}: {error}") from None
    return compiled


def _merge(findings: list[Finding]) -> list[Finding]:
    """Non-overlapping findings sorted by start: same-type overlaps unite, others yield to the stronger."""
    return _strongest(_united(findings))


def _united(findings: list[Finding]) -> list[Finding]:
    """Overlapping findings of one type as one, of the higher confidence (and its detail)."""
    united: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.type, f.start, -f.end)):
        previous = united[-1] if united else None
        if previous and previous.type == finding.type and finding.start < previous.end:
            confidence = max(previous.confidence, finding.confidence)
            detail = previous.detail if previous.confidence >= finding.confidence else finding.detail
            united[-1] = Finding(
                previous.type, previous.start, max(previous.end, finding.end), confidence, detail
            )
        else:
            united.append(finding)
    return united


def _strongest(findings: list[Finding]) -> list[Finding]:
    """The strongest first, each kept unless it overlaps one kept before it, in start order. The
    kept spans never overlap, so in start order only the neighbours of the new one's place can
    overlap it: a bisection, not a look at every kept span (thousands of findings made that
    quadratic)."""
    order = sorted(findings, key=lambda f: (-f.confidence, -_PRIORITY[f.type], f.start - f.end))
    if any(finding.start == finding.end for finding in findings):  # none found so far makes one
        chosen: list[Finding] = []
        for finding in order:
            if all(finding.end <= kept.start or finding.start >= kept.end for kept in chosen):
                chosen.append(finding)
        return sorted(chosen, key=lambda f: f.start)
    starts: list[int] = []
    kept: list[Finding] = []
    for finding in order:
        index = bisect.bisect_left(starts, finding.start)
        if index and kept[index - 1].end > finding.start:
            continue
        if index < len(kept) and kept[index].start < finding.end:
            continue
        starts.insert(index, finding.start)
        kept.insert(index, finding)
    return kept


class SensitivityDetector:
    """Scans prompt text for personal data, identifiers, secrets and operator-defined terms."""

    def __init__(
        self,
        *,
        terms: Sequence[str] = (),
        patterns: Sequence[str] = (),
        types: Collection[str] | None = None,
        min_confidence: float = 0.5,
        labelled_secrets: bool = False,
    ) -> None:
        """`labelled_secrets`: also report a random value that words name as a key, token or secret
        ("my api key is ..."), which the default leaves out (README: `sensitivity.labelled_secrets`)."""
        self.labelled_secrets = labelled_secrets
        enabled = set(DEFAULT_TYPES if types is None else types)
        unknown = enabled - set(FINDING_TYPES)
        if unknown:
            raise ValueError(f"unknown finding types: {', '.join(sorted(unknown))}")
        self.types = frozenset(enabled)
        self.min_confidence = min_confidence
        self._terms = _compile_terms(terms)
        self._patterns = _compile_patterns(patterns)
        if not self.types.isdisjoint(("person", "secret")):
            gazetteer()  # load once here rather than inside the first request's scan (the password
            # rules read its English words too)
        if "person" in self.types:
            public_names()
        # gitleaks' maintained rules for provider token formats, beside turnout's own secret patterns
        self._gitleaks = load_rules() if "secret" in self.types else None

    def _raw(
        self, text: str, discount_public: bool = True, discounted: list[Finding] | None = None
    ) -> Iterator[Finding]:
        types = self.types
        # other findings so far: a listed public figure's name beside any of them is not discounted
        beside = not discount_public
        for finding in self._others(text):
            beside = beside or finding.confidence >= self.min_confidence
            yield finding
        if "person" in types:
            yield from find_people(text, alone=not beside, discounted=discounted)

    def _others(self, text: str) -> Iterator[Finding]:
        types = self.types
        if "secret" in types:
            yield from find_secrets(text, self.labelled_secrets)
            if self._gitleaks is not None:
                yield from self._gitleaks.scan(text)
        if "email" in types:
            yield from find_emails(text)
        if _DIGIT.search(text) is not None and not types.isdisjoint(_DIGIT_TYPES):
            yield from (finding for finding in _digit_detectors(text) if finding.type in types)
        if "term" in types:
            yield from self._term_findings(text)

    def _term_findings(self, text: str) -> Iterator[Finding]:
        if self._terms is not None:
            for match in self._terms.finditer(text):
                yield Finding("term", match.start(), match.end(), 1.0, "term")
        for pattern in self._patterns:
            for match in pattern.finditer(text):
                if match.end() > match.start():
                    yield Finding("term", match.start(), match.end(), 1.0, "pattern")

    def scan(
        self, text: str, discount_public: bool = True, discounted: list[Finding] | None = None
    ) -> list[Finding]:
        """Findings at or above min_confidence, sorted by start and non-overlapping. With
        `discount_public` false, a listed public figure's name counts like any other (the request
        holds other personal data, or ties people to the writer, in another of its strings); the
        names discounted as public figures' go into `discounted` when given."""
        threshold = self.min_confidence
        found = [f for f in self._raw(text, discount_public, discounted) if f.confidence >= threshold]
        return _merge(found) if len(found) > 1 else found
