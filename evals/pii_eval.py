"""Evaluates router.signals.sensitivity.detector against public PII and benign-prompt datasets.

Run as `python -m evals.pii_eval [--json] [--min-confidence 0.5]`. Recall comes from the Presidio synthetic set, false
positives from benign prompts (MT-Bench, Arena-Hard v2, GSM8K) and XSTest, latency from scanning
all of them. Span recall per entity type counts a gold span found when any finding overlaps it;
span precision per entity type counts a finding of the matching type (`GOLD_TYPE`) correct when it
overlaps a gold span of that same type, while the overall span precision accepts any gate entity. Data is read only through evals.datasets.resolve and is never copied into the
repository; the detector is measured as shipped, with no knowledge of these sentences.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.datasets import read_jsonl, resolve
from evals.pii_fresh import template_half
from router.signals.sensitivity.detector import Finding, SensitivityDetector
from router.signals.sensitivity.directives import find_directive

GATE_TYPES = frozenset(
    {
        "PERSON",
        "STREET_ADDRESS",
        "CREDIT_CARD",
        "PHONE_NUMBER",
        "EMAIL_ADDRESS",
        "IBAN_CODE",
        "US_SSN",
        "IP_ADDRESS",
        "US_DRIVER_LICENSE",
    }
)
QUASI_TYPES = frozenset(
    {"GPE", "ORGANIZATION", "DATE_TIME", "AGE", "NRP", "TITLE", "DOMAIN_NAME", "ZIP_CODE"}
)
LOOKALIKE_TYPES = ("privacy_public", "privacy_fictional")
# The Presidio entity type a finding claims to be, by (type, detail); "" stands for any detail.
GOLD_TYPE = {
    ("person", ""): "PERSON",
    ("street_address", ""): "STREET_ADDRESS",
    ("credit_card", ""): "CREDIT_CARD",
    ("phone", ""): "PHONE_NUMBER",
    ("email", ""): "EMAIL_ADDRESS",
    ("iban", ""): "IBAN_CODE",
    ("ip_address", ""): "IP_ADDRESS",
    ("national_id", "us_ssn"): "US_SSN",
    ("national_id", "us_driver_license"): "US_DRIVER_LICENSE",
}


def gold_type(finding: Finding) -> str | None:
    return GOLD_TYPE.get((finding.type, finding.detail)) or GOLD_TYPE.get((finding.type, ""))


@dataclass
class Spans:
    """Span-level tallies for one entity type (or all of them)."""

    gold: int = 0
    found: int = 0
    predicted: int = 0
    correct: int = 0

    def recall(self) -> float:
        return self.found / self.gold if self.gold else 0.0

    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    def f2(self) -> float:
        p, r = self.precision(), self.recall()
        return 5 * p * r / (4 * p + r) if p + r else 0.0


@dataclass
class PresidioResult:
    positives: int = 0
    positives_flagged: int = 0
    quasi: int = 0
    quasi_flagged: int = 0
    empty: int = 0
    empty_flagged: int = 0
    per_type: dict[str, Spans] = field(default_factory=dict)
    overall: Spans = field(default_factory=Spans)
    # positives and flagged positives per half of the templates (evals.pii_fresh.template_half)
    by_half: dict[str, list[int]] = field(default_factory=lambda: {"held-out": [0, 0], "development": [0, 0]})


def _overlaps(finding: Finding, start: int, end: int) -> bool:
    return finding.start < end and start < finding.end


def _score_spans(result: PresidioResult, spans: list[dict[str, Any]], findings: list[Finding]) -> None:
    gate_spans = [s for s in spans if s["entity_type"] in GATE_TYPES]
    for span in gate_spans:
        tally = result.per_type.setdefault(span["entity_type"], Spans())
        hit = any(_overlaps(f, span["start_position"], span["end_position"]) for f in findings)
        tally.gold += 1
        tally.found += hit
        result.overall.gold += 1
        result.overall.found += hit
    for finding in findings:
        result.overall.predicted += 1
        result.overall.correct += any(
            _overlaps(finding, s["start_position"], s["end_position"]) for s in gate_spans
        )
        claimed = gold_type(finding)
        if claimed is not None:
            tally = result.per_type.setdefault(claimed, Spans())
            tally.predicted += 1
            tally.correct += any(
                _overlaps(finding, s["start_position"], s["end_position"])
                for s in gate_spans
                if s["entity_type"] == claimed
            )


def evaluate_presidio(
    detector: SensitivityDetector, latencies: list[float], limit: int | None = None
) -> PresidioResult:
    with open(resolve("presidio-synth-v2"), encoding="utf-8") as handle:
        records = json.load(handle)[:limit]
    result = PresidioResult()
    for record in records:
        findings, directive = _timed_scan(detector, record["full_text"], latencies)
        types = {span["entity_type"] for span in record["spans"]}
        flagged = bool(findings) or directive
        if types & GATE_TYPES:
            result.positives += 1
            result.positives_flagged += flagged
            tally = result.by_half[template_half(int(record["template_id"]))]
            tally[0] += 1
            tally[1] += flagged
        elif types:
            result.quasi += 1
            result.quasi_flagged += flagged
        else:
            result.empty += 1
            result.empty_flagged += flagged
        _score_spans(result, record["spans"], findings)
    return result


def _timed_scan(
    detector: SensitivityDetector, text: str, latencies: list[float]
) -> tuple[list[Finding], bool]:
    """The findings in the text, and whether it asks to stay inside (which keeps it in the building
    too, but is no span of personal data: span scores never see it)."""
    started = time.perf_counter()
    findings = detector.scan(text)
    directive = find_directive(text) is not None
    latencies.append((time.perf_counter() - started) * 1e6)
    return findings, directive


def benign_sets(limit: int | None = None) -> dict[str, list[str]]:
    """Prompts without personal data, by set; `limit` keeps the first prompts of each set."""
    with open(resolve("xstest"), encoding="utf-8", newline="") as handle:
        xstest = list(csv.DictReader(handle))
    sets = {
        "mt-bench": [turn for row in read_jsonl("mt-bench") for turn in row["turns"]],
        "arena-hard-v2": [row["prompt"] for row in read_jsonl("arena-hard-v2")],
        "gsm8k-test": [row["question"] for row in read_jsonl("gsm8k-test")],
        "xstest-lookalike": [row["prompt"] for row in xstest if row["type"] in LOOKALIKE_TYPES],
        "xstest-rest": [row["prompt"] for row in xstest if row["type"] not in LOOKALIKE_TYPES],
    }
    sets.update(mmlu_sets())
    return {name: texts[:limit] for name, texts in sets.items()}


def mmlu_side(subject: str) -> str:
    """Which half an MMLU subject is in: `mmlu-read` (the first hex digit of its name's sha1 even:
    the citation rule, and an exam-item rule tried and taken out, were written reading these) or
    `mmlu-heldout` (odd: figures only). By subject, so the held-out half's questions are on
    subjects never read."""
    return "mmlu-read" if int(hashlib.sha1(subject.encode()).hexdigest()[0], 16) % 2 == 0 else "mmlu-heldout"


def mmlu_sets() -> dict[str, list[str]]:
    """MMLU's questions as RouteLLM's replay files hold them (prompt with options), each once, by
    half (mmlu_side): a knowledge benchmark's items, none with personal data."""
    from evals.training.corpus import mmlu_names, mmlu_subject, read_csv

    sets: dict[str, list[str]] = {"mmlu-read": [], "mmlu-heldout": []}
    seen: set[str] = set()
    for name in mmlu_names():
        side = sets[mmlu_side(mmlu_subject(name))]
        for row in read_csv(resolve(name)):
            if row["prompt"] not in seen:
                seen.add(row["prompt"])
                side.append(row["prompt"])
    return sets


def flag_rates(
    detector: SensitivityDetector, sets: dict[str, list[str]], latencies: list[float]
) -> dict[str, dict[str, Any]]:
    rates: dict[str, dict[str, Any]] = {}
    for name, texts in sets.items():
        kinds: Counter[str] = Counter()
        flagged = 0
        for text in texts:
            findings, directive = _timed_scan(detector, text, latencies)
            flagged += bool(findings) or directive
            kinds.update({finding.type for finding in findings} | ({"directive"} if directive else set()))
        rates[name] = {
            "prompts": len(texts),
            "flagged": flagged,
            "rate": _share(flagged, len(texts)),
            "by_type": dict(kinds),
        }
    return rates


# Requests for fiction, role-play and made-up examples, written for turnout by helpers: invented
# people only ("made_up"), or a creative request carrying a real private person's data ("personal").
# Two helpers read none of turnout's code or data: the development set was read while the rule for
# made-up people (router.signals.sensitivity.made_up) was written; the held-out set was written
# apart and scored, never read. A third helper read the rule's first version and kept only what it
# got wrong ("review"): its rates say how many of those mistakes are mended, not how often they occur.
# A fourth, written after the rule and scored once, narrates writing and names real people ("the
# ballad she composed for ...": "narration", real people only), where the rule must not read a request.
_LABELS = Path(__file__).resolve().parent / "labels"
FICTION_SETS = {
    "development": _LABELS / "pii_fiction_development.jsonl",
    "held-out": _LABELS / "pii_fiction_heldout.jsonl",
    "review": _LABELS / "pii_fiction_review.jsonl",
    "narration": _LABELS / "pii_narration_heldout.jsonl",
}


def fiction_rates(detector: SensitivityDetector) -> dict[str, dict[str, Any]]:
    """Per set: the share of made-up people's requests flagged, and of real people's found."""
    report: dict[str, dict[str, Any]] = {}
    for name, path in FICTION_SETS.items():
        with path.open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        flagged = {"made_up": 0, "personal": 0}
        counts = Counter(row["label"] for row in rows)
        for row in rows:
            flagged[row["label"]] += bool(detector.scan(row["text"]))
        report[name] = {
            "personal": {
                "prompts": counts["personal"],
                "recall": _share(flagged["personal"], counts["personal"]),
            }
        }
        if counts["made_up"]:
            report[name]["made_up"] = {
                "prompts": counts["made_up"],
                "flag_rate": _share(flagged["made_up"], counts["made_up"]),
            }
    return report


# Written for turnout's thirty-fourth session by helpers who saw neither the detector nor any list
# of names or places, and held out: only these rates are ever printed, never a text.
# - figures: requests naming well-known real people and characters (240) or private people (160:
#   coworkers, clients, relatives, with invented names of many origins);
# - places: travel, geography and news requests naming countries and cities (200), and requests
#   naming a private person beside places (60).
# - namesakes: requests about private people who share a famous person's name (a warehouse worker
#   "Michael Jordan"), everyday and private matters (160), the price of every list of public figures.
# No public figure, character or place should be flagged as a person; each private name should be found.
# A third helper wrote figures' development set to the first brief: read while the rules were written.
FIGURES_HELDOUT = _LABELS / "pii_figures_heldout.jsonl"
PLACES_HELDOUT = _LABELS / "pii_places_heldout.jsonl"
NAMESAKES_HELDOUT = _LABELS / "pii_namesakes_heldout.jsonl"
FIGURES_DEVELOPMENT = _LABELS / "pii_figures_development.jsonl"


def figures_rates(detector: SensitivityDetector) -> dict[str, dict[str, Any]]:
    """Per kind: the share of requests about public figures, characters or places with a person
    found, and the share of private people's names a person finding covers (at least half of it)."""
    report: dict[str, dict[str, Any]] = {}
    for path, kinds, private_key in (
        (FIGURES_HELDOUT, ("public", "fictional"), "private"),
        (PLACES_HELDOUT, ("places",), "places_private"),
        (FIGURES_DEVELOPMENT, ("public", "fictional"), "development_private"),
    ):
        with path.open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in handle if line.strip()]
        prefix = "development_" if path == FIGURES_DEVELOPMENT else ""
        for kind in kinds:
            texts = [row["text"] for row in rows if row["kind"] == kind]
            flagged = sum(any(f.type == "person" for f in detector.scan(text)) for text in texts)
            report[prefix + kind] = {"prompts": len(texts), "flag_rate": _share(flagged, len(texts))}
        private = [row for row in rows if row["kind"] == "private"]
        named, found = _names_found(detector, private)
        report[private_key] = {"prompts": len(private), "names": named, "recall": _share(found, named)}
    with NAMESAKES_HELDOUT.open(encoding="utf-8") as handle:
        namesakes = [json.loads(line) for line in handle if line.strip()]
    named, found = _names_found(detector, namesakes)
    report["namesakes"] = {"prompts": len(namesakes), "names": named, "recall": _share(found, named)}
    return report


def _names_found(detector: SensitivityDetector, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """How many of the rows' names stand in their texts, and how many a person finding covers."""
    named = found = 0
    for row in rows:
        people = [f for f in detector.scan(row["text"]) if f.type == "person"]
        for name in row["names"]:
            start = row["text"].find(name)
            if start < 0:
                continue
            named += 1
            end = start + len(name)
            covered = sum(max(0, min(end, f.end) - max(start, f.start)) for f in people)
            found += 2 * covered >= len(name)
    return named, found


def directive_rates() -> dict[str, Any]:
    """Instructions to stay inside: found in semantic-router's `locality_directive` exemplars, and
    (wrongly) in its 17 other privacy and task classes."""
    with open(resolve("semantic-router-privacy"), encoding="utf-8") as handle:
        labels = json.load(handle)["labels"]
    asked = labels["locality_directive"]["exemplars"]
    others = [
        text for name, label in labels.items() if name != "locality_directive" for text in label["exemplars"]
    ]
    found = sum(find_directive(text) is not None for text in asked)
    wrong = sum(find_directive(text) is not None for text in others)
    return {
        "exemplars": len(asked),
        "recall": _share(found, len(asked)),
        "others": len(others),
        "other_flag_rate": _share(wrong, len(others)),
    }


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def sentence_scores(presidio: PresidioResult) -> dict[str, float]:
    """Sentence level: a sentence with a gate entity is a positive; one with only quasi-identifiers
    or no entity is a negative; flagged means any finding."""
    flagged = presidio.positives_flagged + presidio.quasi_flagged + presidio.empty_flagged
    tally = Spans(gold=presidio.positives, found=presidio.positives_flagged, predicted=flagged)
    tally.correct = presidio.positives_flagged
    return {"recall": tally.recall(), "precision": tally.precision(), "f2": tally.f2()}


def run(limit: int | None = None, min_confidence: float = 0.5) -> dict[str, Any]:
    """The figures as a dict; `limit` scores only the first sentences of Presidio and of each benign set."""
    detector = SensitivityDetector(min_confidence=min_confidence)
    latencies: list[float] = []
    presidio = evaluate_presidio(detector, latencies, limit)
    rates = flag_rates(detector, benign_sets(limit), latencies)
    benign = [rates[name] for name in ("mt-bench", "arena-hard-v2", "gsm8k-test")]
    pooled = _share(sum(r["flagged"] for r in benign), sum(r["prompts"] for r in benign))
    sentences = sentence_scores(presidio)
    return {
        "presidio": {
            "sentence_recall": sentences["recall"],
            "sentence_precision": sentences["precision"],
            "sentence_f2": sentences["f2"],
            "positives": presidio.positives,
            "quasi_only_flag_rate": _share(presidio.quasi_flagged, presidio.quasi),
            "quasi_only": presidio.quasi,
            "no_entity_flag_rate": _share(presidio.empty_flagged, presidio.empty),
            "no_entity": presidio.empty,
            "per_type_recall": {
                k: round(v.recall(), 3) for k, v in sorted(presidio.per_type.items()) if v.gold
            },
            "per_type_precision": {
                k: round(v.precision(), 3) for k, v in sorted(presidio.per_type.items()) if v.predicted
            },
            "per_type_f2": {k: round(v.f2(), 3) for k, v in sorted(presidio.per_type.items()) if v.gold},
            "per_type_count": {k: v.gold for k, v in sorted(presidio.per_type.items()) if v.gold},
            "sentence_recall_by_template_half": {
                half: round(flagged / count, 4) if count else 0.0
                for half, (count, flagged) in presidio.by_half.items()
            },
            "span_recall": presidio.overall.recall(),
            "span_precision": presidio.overall.precision(),
            "span_f2": presidio.overall.f2(),
        },
        "directives": directive_rates(),
        "fiction": fiction_rates(detector),
        "figures": figures_rates(detector),
        "benign": rates,
        "benign_pooled_fpr": pooled,
        "latency_us": {
            "scans": len(latencies),
            "p50": statistics.median(latencies),
            "p99": _percentile(latencies, 0.99),
        },
    }


def _print_report(report: dict[str, Any]) -> None:
    presidio = report["presidio"]
    print("Presidio synthetic v2 (recall)")
    print(
        f"  sentence recall, gate entities : {presidio['sentence_recall']:.3f}  ({presidio['positives']} sentences; target >= 0.95)"
    )
    print(
        f"  flagged, quasi-identifiers only: {presidio['quasi_only_flag_rate']:.3f}  ({presidio['quasi_only']} sentences)"
    )
    print(
        f"  flagged, no entity             : {presidio['no_entity_flag_rate']:.3f}  ({presidio['no_entity']} sentences)"
    )
    print(
        f"  spans: recall {presidio['span_recall']:.3f}  precision {presidio['span_precision']:.3f}"
        f"  F2 {presidio['span_f2']:.3f}"
    )
    for entity, recall in presidio["per_type_recall"].items():
        precision = presidio["per_type_precision"].get(entity, 0.0)
        print(
            f"    {entity:<18} {recall:.3f}  precision {precision:.3f}  (n={presidio['per_type_count'][entity]})"
        )
    print("Benign prompts (share flagged)")
    for name, rate in report["benign"].items():
        print(f"  {name:<17} {rate['rate']:.3f}  ({rate['flagged']}/{rate['prompts']})  {rate['by_type']}")
    print(f"  pooled MT-Bench + Arena-Hard + GSM8K: {report['benign_pooled_fpr']:.3f}  (target <= 0.02)")
    print("Requests for fiction and made-up examples (turnout's own sets, written by helpers)")
    for name, part in report["fiction"].items():
        made_up, personal = part.get("made_up"), part["personal"]
        flagged = (
            f"made-up people flagged {made_up['flag_rate']:.3f} (of {made_up['prompts']}), "
            if made_up
            else ""
        )
        print(
            f"  {name:<12} {flagged}real people's data found {personal['recall']:.3f} (of {personal['prompts']})"
        )
    figures = report["figures"]
    print(
        "Requests about public figures, characters and places, and about private people (held out, written by helpers):"
        f" public flagged {figures['public']['flag_rate']:.3f} (of {figures['public']['prompts']}),"
        f" fictional {figures['fictional']['flag_rate']:.3f} (of {figures['fictional']['prompts']}),"
        f" private people's names found {figures['private']['recall']:.3f} (of {figures['private']['names']});"
        f" place requests flagged {figures['places']['flag_rate']:.3f} (of {figures['places']['prompts']}),"
        f" names beside places found {figures['places_private']['recall']:.3f} (of {figures['places_private']['names']});"
        f" private namesakes of famous people found {figures['namesakes']['recall']:.3f} (of {figures['namesakes']['names']})"
    )
    directives = report["directives"]
    print(
        f"Instructions to stay inside: {directives['recall']:.3f} of semantic-router's"
        f" {directives['exemplars']} locality_directive exemplars; {directives['other_flag_rate']:.3f}"
        f" of its {directives['others']} exemplars of other classes"
    )
    latency = report["latency_us"]
    print(
        f"Latency per scan: p50 {latency['p50']:.0f} us, p99 {latency['p99']:.0f} us over {latency['scans']} scans"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="the policy's sensitivity.min_confidence (default 0.5, as policies/default.yaml)",
    )
    args = parser.parse_args(argv)
    report = run(min_confidence=args.min_confidence)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
