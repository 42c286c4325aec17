"""Secret detection on credentials written by another project: CredSweeper's test corpus.

Samsung/CredSweeper (MIT) is a credential scanner; `tests/data/output.json` is what its test
suite expects it to report on the sample files of its repository (after its own ML filter): each
finding names a rule ("Password", "Github Classic Token", ...) and holds the whole line it was
found on, with the value's span. None of those lines was read while turnout's rules were written,
so recall on them says how the detector does on credentials other people chose to test a scanner
with: plaintext passwords and keys in code, configs and documentation (many written as Korean
internal docs write them, "ID/PW:master/..."), and provider tokens in formats turnout's own
generators (evals.secrets_eval) may not draw.

Each distinct line is scored once, scanned alone: a hit is a `secret` finding that covers at least
half of one of the line's credential values. Lines are grouped by the kind of rule that found them
(a provider's format, or a keyword and a value); the rules below that find something other than a
credential (addresses, public identifiers, salts) are left out. Both groupings were decided from
the rule names, before any line was scanned. The lines are split in two by a seeded hash of their
sample file, so that a later change may be developed on one half and measured on the other; until
then both halves are unread and the figure is the whole set's.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from evals.datasets import DatasetError, resolve
from evals.pii_fresh import seeded_half
from router.signals.sensitivity.detector import SensitivityDetector

DATASET = "credsweeper-output"
SPLIT_SEED = "turnout-credsweeper-1"
# Rules that find no credential: network addresses, public identifiers and domains, and values
# that are not secret by design (a salt, a nonce, a certificate).
NOT_CREDENTIALS = frozenset(
    {
        "IPv4",
        "IPv6",
        "Firebase Domain",
        "AWS S3 Bucket",
        "Bitbucket Client ID",
        "Square Client ID",
        "Salt",
        "Nonce",
        "Certificate",
    }
)
# Rules that find a credential by a keyword beside a value rather than by a provider's format.
KEYWORD_RULES = frozenset(
    {"Password", "Secret", "Token", "Key", "Credential", "Auth", "API", "URL Credentials"}
)


@dataclass(frozen=True)
class Sample:
    path: str
    line: str
    rules: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]  # each credential value's [start, end) in the line

    @property
    def kind(self) -> str:
        return "keyword" if set(self.rules) <= KEYWORD_RULES else "provider"

    @property
    def half(self) -> str:
        return seeded_half(self.path, SPLIT_SEED)


def samples(findings: list[dict[str, Any]]) -> list[Sample]:
    """Each distinct line with a credential finding, with every rule and value span found on it."""
    rules: dict[tuple[str, int, str], set[str]] = defaultdict(set)
    spans: dict[tuple[str, int, str], set[tuple[int, int]]] = defaultdict(set)
    for finding in findings:
        if finding["rule"] in NOT_CREDENTIALS:
            continue
        for line in finding["line_data_list"]:
            key = (line["path"], line["line_num"], line["line"])
            rules[key].add(finding["rule"])
            if 0 <= line["value_start"] < line["value_end"]:
                spans[key].add((line["value_start"], line["value_end"]))
    result = []
    for key in sorted(rules):
        if spans[key]:
            path, _, text = key
            result.append(Sample(path, text, tuple(sorted(rules[key])), tuple(sorted(spans[key]))))
    return result


def load() -> list[Sample] | None:
    """The samples, or None where the file is in neither a mirror folder nor the cache."""
    try:
        path = resolve(DATASET, download=False)
    except DatasetError:
        return None
    return samples(json.loads(path.read_text(encoding="utf-8")))


def found(detector: SensitivityDetector, sample: Sample) -> bool:
    findings = [f for f in detector.scan(sample.line) if f.type == "secret"]
    return any(
        min(f.end, end) - max(f.start, start) >= (end - start) / 2
        for f in findings
        for start, end in sample.spans
    )


def recall(detector: SensitivityDetector, lines: list[Sample]) -> dict[str, Any]:
    """Recall overall, by kind of rule and by half, and the lines missed."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses = []
    for sample in lines:
        hit = found(detector, sample)
        for group in ("all", sample.kind, sample.half):
            tally[group][0] += 1
            tally[group][1] += hit
        if not hit:
            misses.append(f"{sample.path}:{','.join(sample.rules)}: {sample.line}")
    return {group: {"n": n, "recall": round(hits / n, 4)} for group, (n, hits) in sorted(tally.items())} | {
        "misses": misses
    }
