"""Sentence recall of the sensitivity detectors on fresh sentences: Presidio's own templates, filled
with identities that the Presidio synthetic set never uses.

Run as `python -m evals.pii_fresh [--half even|odd|all] [--templates held-out|development|all]
[--per-template 8] [--json]`. The Presidio
synthetic set (evals.pii_eval) was drawn from presidio-evaluator's templates and fake identities;
the detectors' rules were refined by reading its misses, so its recall is a development figure. This
eval fills the same templates with the identities of presidio-evaluator's FakeNameGenerator file
whose given name and surname appear nowhere in that set (split by identity number: odd ones may be
read while developing, even ones are the held-out half), plus generated card numbers (Luhn), IBANs
(mod 97), SSNs and public IP addresses. A tenth of the sentences is lowercased, as in the set.
Templates are split too, by a seeded hash of their line number (the `template_id` the synthetic
set records): the development half may be read while writing rules, the held-out half may not. The
headline is the sentences of held-out templates filled with held-out identities: neither the
sentence shape nor the name was seen. (Rules written before the split, on 2026-12-04, were written
reading the whole synthetic set, so that figure still owes them something; README says so.)
Data comes through evals.datasets (PyPI's presidio-evaluator wheel) and is never copied into the
repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.datasets import resolve
from router.policy.model import load_policy
from router.signals.sensitivity.checksums import luhn_valid
from router.signals.sensitivity.detector import SensitivityDetector

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = re.compile(r"{{(\w+)}}")
# The Presidio entity type each template placeholder stands for, where it is one the gate is for.
ENTITY = {
    **dict.fromkeys(
        [
            "person",
            "name",
            "name_male",
            "name_female",
            "first_name",
            "first_name_male",
            "first_name_female",
            "first_name_nonbinary",
            "last_name",
            "last_name_male",
            "last_name_female",
        ],
        "PERSON",
    ),
    **dict.fromkeys(["address", "street_name", "building_number", "secondary_address"], "STREET_ADDRESS"),
    "credit_card_number": "CREDIT_CARD",
    "phone_number": "PHONE_NUMBER",
    "email": "EMAIL_ADDRESS",
    "iban": "IBAN_CODE",
    "ssn": "US_SSN",
    "ip_address": "IP_ADDRESS",
    "us_driver_license": "US_DRIVER_LICENSE",
}
TEMPLATE_SPLIT_SEED = "turnout-pii-templates-1"
HALVES = ("held-out", "development", "all")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
LOWERCASE_SHARE = 0.1


def card_number(rng: random.Random) -> str:
    """A 16-digit Visa-shaped number with a valid Luhn check digit."""
    body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    return body + check


def iban(rng: random.Random) -> str:
    """A German IBAN (DE, 18-digit BBAN) with valid mod-97 check digits."""
    bban = "".join(rng.choice("0123456789") for _ in range(18))
    check = 98 - int(bban + "131400") % 97  # D=13, E=14, then "00"
    return f"DE{check:02d}{bban}"


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def public_ip(rng: random.Random) -> str:
    first = rng.choice([n for n in range(11, 224) if n not in (10, 100, 127, 169, 172, 192, 198, 203)])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _street(identity: dict[str, str]) -> tuple[str, str]:
    """(street name, building number) of the identity's street address, either order."""
    address = identity["StreetAddress"]
    number = re.search(r"\d+[A-Za-z]?", address)
    name = re.sub(r"\s*\d+[A-Za-z]?\s*", " ", address).strip(" ,") or address
    return name, number.group(0) if number else "1"


def fill(placeholder: str, identity: dict[str, str], rng: random.Random) -> str:
    full = f"{identity['GivenName']} {identity['Surname']}"
    street, number = _street(identity)
    values = {
        "person": full,
        "name": full,
        "name_male": full,
        "name_female": full,
        "first_name": identity["GivenName"],
        "first_name_male": identity["GivenName"],
        "first_name_female": identity["GivenName"],
        "first_name_nonbinary": identity["GivenName"],
        "last_name": identity["Surname"],
        "last_name_male": identity["Surname"],
        "last_name_female": identity["Surname"],
        "prefix": identity["Title"],
        "prefix_male": identity["Title"],
        "prefix_female": identity["Title"],
        "address": f"{identity['StreetAddress']}, {identity['City']} {identity['ZipCode']}",
        "street_name": street,
        "building_number": number,
        "secondary_address": f"Apt. {rng.randint(1, 99)}",
        "city": identity["City"],
        "country": identity["CountryFull"],
        "postcode": identity["ZipCode"],
        "zipcode": identity["ZipCode"],
        "state_abbr": identity["State"],
        "credit_card_number": card_number(rng),
        "phone_number": identity["TelephoneNumber"],
        "email": identity["EmailAddress"],
        "iban": iban(rng),
        "ssn": ssn(rng),
        "ip_address": public_ip(rng),
        "us_driver_license": f"{rng.choice('ABCDEFGHJKLMNPRSTWY')}{rng.randint(10**6, 10**7 - 1)}",
        "organization": identity["Company"],
        "job": identity["Occupation"],
        "age": identity["Age"],
        "date_of_birth": identity["Birthday"],
        "date_time": identity["Birthday"],
        "year": str(rng.randint(1950, 2020)),
        "url": identity["Domain"],
        "nationality": identity["NameSet"],
        "nation_woman": f"{identity['NameSet']} woman",
        "nation_plural": f"{identity['NameSet']}s",
        "day_of_week": rng.choice(DAYS),
    }
    return values.get(placeholder, "")


def fresh_identities(half: str) -> list[dict[str, str]]:
    """Identities whose given name and surname are words the Presidio synthetic set never uses."""
    rows = json.loads(resolve("presidio-synth-v2").read_text())
    used = {word for row in rows for word in re.findall(r"\w+", row["full_text"].lower())}
    with resolve("presidio-identities").open(encoding="utf-8-sig", newline="") as handle:
        identities = list(csv.DictReader(handle))
    unseen = [
        p
        for p in identities
        if not ({w.lower() for w in re.findall(r"\w+", p["GivenName"] + " " + p["Surname"])} & used)
    ]
    if half == "all":
        return unseen
    return [p for p in unseen if int(p["Number"]) % 2 == (1 if half == "odd" else 0)]


def seeded_half(key: str, seed: str) -> str:
    """`held-out` or `development`: a stable half of a set of templates, by a seeded hash of a key."""
    return "held-out" if zlib.crc32(f"{seed}:{key}".encode()) % 2 else "development"


def template_half(template_id: int) -> str:
    """Which half of presidio-evaluator's templates a line (its `template_id`) is in."""
    return seeded_half(str(template_id), TEMPLATE_SPLIT_SEED)


def templates(half: str = "all") -> list[str]:
    """presidio-evaluator's templates (of one half) that hold an entity the gate is for, with real
    line breaks. A template's id is its line number, as the synthetic set's `template_id`."""
    text = resolve("presidio-templates").read_text(encoding="utf-8", errors="replace")
    lines = [line.rstrip("\n").replace("\\n", "\n") for line in text.splitlines()]
    return [
        line
        for number, line in enumerate(lines)
        if line.strip()
        and any(p in ENTITY for p in PLACEHOLDER.findall(line))
        and (half == "all" or template_half(number) == half)
    ]


def sentences(
    identities: list[dict[str, str]], per_template: int, seed: int, half: str = "all"
) -> list[tuple[str, str, set[str]]]:
    """(template, sentence, entity types) for per_template fills of every template of a half."""
    rng = random.Random(seed)
    out = []
    for template in templates(half):
        entities = {ENTITY[p] for p in PLACEHOLDER.findall(template) if p in ENTITY}
        for _ in range(per_template):
            identity = rng.choice(identities)

            def filled(match: re.Match[str], person: dict[str, str] = identity) -> str:
                return fill(match.group(1), person, rng)

            sentence = PLACEHOLDER.sub(filled, template)
            if rng.random() < LOWERCASE_SHARE:
                sentence = sentence.lower()
            out.append((template, sentence, entities))
    return out


def run(
    half: str = "even", per_template: int = 8, seed: int = 11, template_half: str = "held-out"
) -> dict[str, Any]:
    rule = load_policy(ROOT / "policies" / "default.yaml").policy.sensitivity
    detector = SensitivityDetector(
        terms=rule.terms, patterns=rule.patterns, types=rule.types, min_confidence=rule.min_confidence
    )
    identities = fresh_identities(half)
    rows = sentences(identities, per_template, seed, template_half)
    missed = [(template, sentence) for template, sentence, _ in rows if not detector.scan(sentence)]
    missed_sentences = {sentence for _, sentence in missed}
    by_type: dict[str, dict[str, int]] = {}
    for _, sentence, entities in rows:
        for entity in entities:
            tally = by_type.setdefault(entity, {"sentences": 0, "flagged": 0})
            tally["sentences"] += 1
            tally["flagged"] += sentence not in missed_sentences
    return {
        "half": half,
        "template_half": template_half,
        "identities": len(identities),
        "templates": len({template for template, _, _ in rows}),
        "sentences": len(rows),
        "recall": round(1 - len(missed) / len(rows), 4) if rows else 0.0,
        "by_type": {k: round(v["flagged"] / v["sentences"], 4) for k, v in sorted(by_type.items())},
        "missed_templates": Counter(template for template, _ in missed).most_common(),
        "missed_examples": [sentence for _, sentence in missed],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("even", "odd", "all"), default="even", help="even: held-out")
    parser.add_argument(
        "--templates", choices=HALVES, default="held-out", help="which half of the templates (held-out)"
    )
    parser.add_argument("--per-template", type=int, default=8, help="sentences per template (8)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--show-misses", type=int, default=0, metavar="N", help="print N missed sentences")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.per_template < 1:
        parser.error("--per-template must be at least 1")
    report = run(args.half, args.per_template, args.seed, args.templates)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if not k.startswith("missed")}, indent=2))
        return 0
    print(
        f"Fresh Presidio sentences ({report['half']} identities: {report['identities']}; "
        f"{report['templates']} {report['template_half']} templates x {args.per_template})"
    )
    print(f"  sentence recall: {report['recall']:.3f}  ({report['sentences']} sentences)")
    for entity, recall in report["by_type"].items():
        print(f"    {entity:<18} {recall:.3f}")
    for sentence in report["missed_examples"][: args.show_misses]:
        print("  missed:", json.dumps(sentence, ensure_ascii=False)[:160])
    return 0


if __name__ == "__main__":
    sys.exit(main())
