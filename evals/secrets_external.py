"""Secret detection on credentials written by another project: CredSweeper's test corpus.

Samsung/CredSweeper (MIT) is a credential scanner; `tests/data/output.json` is what its test
suite expects it to report on the sample files of its repository (after its own ML filter): each
finding names a rule ("Password", "Github Classic Token", ...) and holds the whole line it was
found on, with the value's span. Recall on them says how the detector does on credentials other
people chose to test a scanner with: plaintext passwords and keys in code, configs and
documentation ("ID/PW:master/...", "id:master pw:..."), and provider tokens in formats turnout's
own generators (evals.secrets_eval) may not draw.

Each distinct text is scored once, scanned alone: a line, or a block of consecutive lines that one
finding spans (a private key split over string literals); a text found in several sample files
counts once, in the half of the first. A hit is a `secret` finding that covers at least half of
one of its credential values. Texts are grouped by the kind of rule that found them: a keyword and
a value, or a provider's format (a text found by both counts as a provider's); the rules below
that find something other than a credential (addresses, a public identifier, salts) are left out.
Both groupings were decided from the rule names, before any line was scanned. The texts are split
in two by a seeded hash of their sample file: rules may be written reading the development half
(only `PW` as a password key has been, 2026-12-05), and the held-out half is the figure to quote.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from evals.datasets import local
from evals.pii_fresh import seeded_half
from router.signals.sensitivity.detector import SensitivityDetector

DATASET = "credsweeper-output"
SPLIT_SEED = "turnout-credsweeper-1"
# Rules that find no credential: network addresses, a public identifier and domains, and values
# that are not secret by design (a salt, a nonce, a certificate). ("Square Client ID" stays: what it
# finds is an sq0atp- access token.)
NOT_CREDENTIALS = frozenset(
    {
        "IPv4",
        "IPv6",
        "Firebase Domain",
        "AWS S3 Bucket",
        "Bitbucket Client ID",
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


def _blocks(lines: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A finding's lines in runs of consecutive lines of one file: a private key split over string
    literals is one credential, an id two lines above its secret is two."""
    blocks: list[list[dict[str, Any]]] = []
    for line in lines:
        last = blocks[-1][-1] if blocks else None
        if last is not None and last["path"] == line["path"] and last["line_num"] + 1 == line["line_num"]:
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def samples(findings: list[dict[str, Any]]) -> list[Sample]:
    """Each distinct text (a line, or a block of consecutive lines one finding spans) with a
    credential finding, with every rule and value span found in it; a text found in several files
    (CredSweeper tests some lines under several encodings) counts once, in the half of the first."""
    rules: dict[str, set[str]] = defaultdict(set)
    spans: dict[str, set[tuple[int, int]]] = defaultdict(set)
    paths: dict[str, set[str]] = defaultdict(set)
    for finding in findings:
        if finding["rule"] in NOT_CREDENTIALS:
            continue
        for block in _blocks(finding["line_data_list"]):
            text = "\n".join(line["line"] for line in block)
            offset = 0
            for line in block:
                if 0 <= line["value_start"] < line["value_end"]:
                    spans[text].add((offset + line["value_start"], offset + line["value_end"]))
                offset += len(line["line"]) + 1
            rules[text].add(finding["rule"])
            paths[text].add(block[0]["path"])
    return [
        Sample(min(paths[text]), text, tuple(sorted(rules[text])), tuple(sorted(spans[text])))
        for text in sorted(rules)
        if spans[text]
    ]


def load() -> list[Sample] | None:
    """The samples, or None where the file is in neither a mirror folder nor the cache (a file that
    is there but not the registered one is an error, evals.datasets.DatasetError)."""
    path = local(DATASET)
    return None if path is None else samples(json.loads(path.read_text(encoding="utf-8")))


def covered(detector: SensitivityDetector, text: str, spans: Iterable[tuple[int, int]]) -> bool:
    """Whether a `secret` finding in `text` covers at least half of one of the [start, end) spans."""
    findings = [f for f in detector.scan(text) if f.type == "secret"]
    return any(
        min(f.end, end) - max(f.start, start) >= (end - start) / 2 for f in findings for start, end in spans
    )


def found(detector: SensitivityDetector, sample: Sample) -> bool:
    return covered(detector, sample.line, sample.spans)


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
