"""Secret detection measured on credentials the detectors' rules were not written from.

Run as `python -m evals.secrets_eval [--fill generated|leaked] [--json] [--show-misses N]`. Three
generated sets (evals.secrets_sets), each value drawn at random from its provider's documented shape
(prefix, alphabet, length) by generators written from the providers' token documentation and not
from any detector's regular expression, then put in a sentence, a shell line, an env file, JSON or
code:

- provider tokens, one family a row of FAMILIES (GitHub, GitLab, Slack, Stripe, AWS, Google, OpenAI,
  Anthropic, Hugging Face, PyPI, npm, Grafana, Notion, Mapbox, 1Password, Sourcegraph, Vault, ...);
- plaintext credentials in prose, command-line flags, env and compose files, JDBC/ODBC and service
  URLs, a `.pgpass` line, an AWS secret access key in a config;
- look-alikes that are not secrets: placeholders (`ghp_xxxx...`, `YOUR_API_KEY`, `<token>`,
  `${SECRET}`, `changeme`), documented example keys, empty values, order numbers.

Reported: recall per family and per plaintext kind, and the share of look-alikes flagged. The
plaintext templates and the look-alikes are split in two like Presidio's (a seeded hash): rules may
be written reading the development half only; the held-out half is the figure to quote.

Other authors' sets, each written by a helper who saw neither the detectors nor any other template
set (`SECOND_AUTHORS`): `labels/secrets_fresh.json` (2026-12-05: 60 plaintext templates of prose,
command lines, config files, code, URLs and SQL, and 30 look-alikes), `labels/secrets_fresh_b.json`
and `labels/secrets_fresh_c.json` (2026-12-06: 90 templates, 15 of each kind, and 40 look-alikes
each), `labels/secrets_fresh_d.json` to `labels/secrets_fresh_p.json` (2026-12-06: 40 of prose and 16 of
each other kind, 40 look-alikes each; the fifth author was also told to vary tools, formats,
phrasings and lengths, the sixth to sixteenth to write the long tail), and `labels/secrets_fresh_q.json`
(2026-12-07, the same shape, written from a brief alone for the thirty-fifth session's rule). A set is spent the day rules
are written reading its misses (the first ten and the twelfth were, on 2026-12-06): then it is
a regression guard whose misses print like the templates' above. Of an unread set only its recall
per kind and its look-alikes' flag rate are ever printed, never a miss, so that it stays unread by
whoever writes rules: it is held out by author. Write the next set before reading the last unread
one's misses. An unread set may still have been used to choose rules (kept only where they raise
its recall), as the fifth was for the fourth round: then the next one is the clean figure.

The other authors' templates are filled with the generator's random passwords (`secrets_sets.generated_password`: three
letters, three digits, a symbol, five more) unless `--fill leaked` draws each from the commonest
passwords of leaked sets (zxcvbn's list, 8+ characters: "baseball1", "trustno1"), the weak words
people choose, which a rule reading a value's shape cannot see: the figure to expect from people.

Two helpers' sets read while rules were written (regression guards, not held-out figures):
`labels/secrets_lookalikes_review.jsonl` (look-alikes) and `labels/secrets_kinds_review.jsonl` (240
look-alikes of six kinds, masked, encrypted, hashed, public by design, documentation's and other, and
120 secrets placed beside them). And a held-out set of pastes, `labels/secrets_pastes_heldout.jsonl`:
its look-alikes' flag rate and its secrets' recall only, never a text.

Where its file is fetched, also recall on credentials another project chose: CredSweeper's test
findings (evals.secrets_external).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals import secrets_external
from evals.secrets_sets import (
    HOSTS,
    LOOKALIKES,
    USERS,
    generated_password,
    generic_token,
    plaintext_rows,
    provider_rows,
    template_half,
)
from router.signals.sensitivity.detector import SensitivityDetector

LABELS = Path(__file__).resolve().parent / "labels"
# (report key, file, the day its misses were first read, or None: unread, its misses never printed)
SECOND_AUTHORS: tuple[tuple[str, Path, str | None], ...] = (
    ("fresh", LABELS / "secrets_fresh.json", "2026-12-06"),
    ("fresh_b", LABELS / "secrets_fresh_b.json", "2026-12-06"),
    ("fresh_c", LABELS / "secrets_fresh_c.json", "2026-12-06"),
    ("fresh_d", LABELS / "secrets_fresh_d.json", "2026-12-06"),
    ("fresh_e", LABELS / "secrets_fresh_e.json", "2026-12-06"),
    ("fresh_f", LABELS / "secrets_fresh_f.json", "2026-12-06"),
    ("fresh_g", LABELS / "secrets_fresh_g.json", "2026-12-06"),
    ("fresh_h", LABELS / "secrets_fresh_h.json", "2026-12-06"),
    ("fresh_i", LABELS / "secrets_fresh_i.json", "2026-12-06"),
    ("fresh_j", LABELS / "secrets_fresh_j.json", "2026-12-06"),
    ("fresh_k", LABELS / "secrets_fresh_k.json", None),
    ("fresh_l", LABELS / "secrets_fresh_l.json", "2026-12-06"),
    ("fresh_m", LABELS / "secrets_fresh_m.json", None),
    ("fresh_n", LABELS / "secrets_fresh_n.json", None),
    ("fresh_o", LABELS / "secrets_fresh_o.json", None),
    ("fresh_p", LABELS / "secrets_fresh_p.json", None),
    ("fresh_q", LABELS / "secrets_fresh_q.json", None),
)

# Sets of generic credentials (API keys, tokens, client secrets with no vendor prefix, named in
# words, assignments, headers and logs; templates with {token}, filled by secrets_sets.generic_token),
# each written by a helper from a brief alone, with look-alikes (45 prose, 25 config, 20 code, 15
# command-line and 15 log templates, 60 look-alikes). Same states as above: tokens_a (2026-12-07)
# judged the labelled rule's first two rounds and was read for its third; tokens_b (2026-12-08,
# written from a brief of its own before that round was scored) judged the third and was read for
# the fourth; tokens_c (2026-12-08, a third helper's) judges the fourth.
TOKEN_AUTHORS: tuple[tuple[str, Path, str | None], ...] = (
    ("tokens_a", LABELS / "secrets_tokens_a.json", "2026-12-08"),
    ("tokens_b", LABELS / "secrets_tokens_b.json", "2026-12-08"),
    ("tokens_c", LABELS / "secrets_tokens_c.json", None),
)

# Passwords people chose: zxcvbn's list of the 30,000 most common passwords of leaked sets (Xato's
# corpus, lower-cased as zxcvbn ships it; MIT), the entries of at least LEAKED_MIN_LENGTH characters
# (the common minimum of password policies; 11,611): what a weak real password looks like ("baseball1",
# "trustno1", "q1w2e3r4"), where the generated ones are random mixes of letters, digits and a symbol.
LEAKED_MIN_LENGTH = 8
FILLS = ("generated", "leaked")
REVIEW_LOOKALIKES = LABELS / "secrets_lookalikes_review.jsonl"
# a helper's texts of six kinds (masked, encrypted, hash, public, docs, other), 40 look-alikes and 20
# secrets of each, written for the thirty-second session and read while its look-alike rules were
# written: a regression guard, not a held-out figure
KINDS_REVIEW = LABELS / "secrets_kinds_review.jsonl"
PASTES_HELDOUT = LABELS / "secrets_pastes_heldout.jsonl"


@functools.cache
def leaked_passwords() -> tuple[str, ...]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return tuple(word for word in FREQUENCY_LISTS["passwords"] if len(word) >= LEAKED_MIN_LENGTH)


def _leaked(rng: random.Random) -> str:
    return rng.choice(leaked_passwords())


def fresh_rows(
    templates: list[dict[str, str]],
    rng: random.Random,
    per_template: int,
    draw: Callable[[random.Random], str] = generated_password,
) -> list[tuple[str, str, str]]:
    """The second author's templates, each filled `per_template` times like plaintext_rows', the
    password drawn by `draw` (generated, or `_leaked`)."""
    rows = []
    for entry in templates:
        for _ in range(per_template):
            secret = draw(rng)
            text = entry["template"].format(
                pw=secret,
                user=rng.choice(USERS),
                host=rng.choice(HOSTS),
            )
            rows.append((entry["kind"], secret, text))
    return rows


def _found(detector: SensitivityDetector, secret: str, text: str) -> bool:
    """Whether a `secret` finding covers the secret's characters (at least half of them)."""
    start = text.find(secret)
    return secrets_external.covered(detector, text, [(start, start + len(secret))])


def _drawer(fill: str) -> Callable[[random.Random], str]:
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, not {fill!r}")
    return _leaked if fill == "leaked" else generated_password


def _authors(sets: Sequence[tuple[str, Path, str | None]] = SECOND_AUTHORS) -> dict[str, Any]:
    return {name: json.loads(path.read_text(encoding="utf-8")) for name, path, _ in sets}


def token_rows(
    templates: list[dict[str, str]], rng: random.Random, per_template: int
) -> list[tuple[str, str, str]]:
    """A token set's templates, each filled `per_template` times with secrets_sets.generic_token."""
    rows = []
    for entry in templates:
        for _ in range(per_template):
            secret = generic_token(rng)
            text = entry["template"].format(token=secret, user=rng.choice(USERS), host=rng.choice(HOSTS))
            rows.append((entry["kind"], secret, text))
    return rows


def _score(
    rows: list[tuple[str, str, str]], detector: SensitivityDetector, misses: list[str] | None
) -> dict[str, Any]:
    """Recall over the rows, and per kind; each missed text goes into `misses` when it is given."""
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for kind, secret, text in rows:
        hit = _found(detector, secret, text)
        tally[kind][0] += 1
        tally[kind][1] += hit
        if not hit and misses is not None:
            misses.append(text)
    total = sum(n for n, _ in tally.values())
    return {
        "n": total,
        "recall": round(sum(h for _, h in tally.values()) / total, 4) if total else None,
        "by_kind": {k: round(h / n, 3) for k, (n, h) in sorted(tally.items())},
    }


def authors_recall(
    fill: str, per_template: int = 10, seed: int = 3, detector: SensitivityDetector | None = None
) -> dict[str, dict[str, Any]]:
    """Each other author's set's recall with its templates filled by `fill` (no misses: what the
    pii suite reports for the leaked fill beside run()'s)."""
    draw, detector = _drawer(fill), detector or SensitivityDetector()
    return {
        name: _score(fresh_rows(data["templates"], random.Random(seed), per_template, draw), detector, None)
        for name, data in _authors().items()
    }


def run(
    per_family: int = 10,
    per_template: int = 10,
    half: str = "held-out",
    seed: int = 3,
    detector: SensitivityDetector | None = None,
    fill: str = "generated",
) -> dict[str, Any]:
    """`fill`: how the other authors' templates get their passwords, generated (the default) or
    `leaked` (common real passwords); the provider tokens and the built-in templates are the same."""
    draw = _drawer(fill)
    detector = detector or SensitivityDetector()
    rng = random.Random(seed)
    authors = _authors()
    unread = {name for name, _, spent in SECOND_AUTHORS if spent is None}
    report: dict[str, Any] = {"half": half, "fill": fill}
    misses: list[str] = []
    for name, rows in (
        ("providers", provider_rows(rng, per_family)),
        ("plaintext", plaintext_rows(rng, per_template, half)),
        # each its own generator, so that adding templates above never changes how they are filled
        *(
            (name, fresh_rows(data["templates"], random.Random(seed), per_template, draw))
            for name, data in authors.items()
        ),
    ):
        # an unread set's misses stay unread
        report[name] = _score(rows, detector, None if name in unread else misses)
    lookalikes = [text for text in LOOKALIKES if half == "all" or template_half(text) == half]
    flagged = [text for text in lookalikes if any(f.type == "secret" for f in detector.scan(text))]
    report["lookalikes"] = {
        "n": len(lookalikes),
        "flag_rate": round(len(flagged) / len(lookalikes), 4),
        "flagged": flagged,
    }
    for name, data in authors.items():
        texts = data["lookalikes"]
        flagged_fresh = [text for text in texts if any(f.type == "secret" for f in detector.scan(text))]
        report[f"{name}_lookalikes"] = {
            "n": len(texts),
            "flag_rate": round(len(flagged_fresh) / len(texts), 4),
        }
        if name not in unread:  # spent: which were flagged may be read
            report[f"{name}_lookalikes"]["flagged"] = flagged_fresh
    # look-alikes a helper wrote for the twenty-eighth session (documentation's placeholders, masked
    # logs, frames with no key, digests, variables): read while the rules that clear them were written
    review = [json.loads(line) for line in REVIEW_LOOKALIKES.read_text(encoding="utf-8").splitlines() if line]
    flagged_review = [
        row["text"] for row in review if any(f.type == "secret" for f in detector.scan(row["text"]))
    ]
    report["review_lookalikes"] = {
        "n": len(review),
        "flag_rate": round(len(flagged_review) / len(review), 4),
        "flagged": flagged_review,
    }
    for name, path, spent in TOKEN_AUTHORS:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = token_rows(data["templates"], random.Random(seed), per_template)
        report[name] = _score(rows, detector, misses if spent else None)
        flagged_tokens = [
            text for text in data["lookalikes"] if any(f.type == "secret" for f in detector.scan(text))
        ]
        report[f"{name}_lookalikes"] = {
            "n": len(data["lookalikes"]),
            "flag_rate": round(len(flagged_tokens) / len(data["lookalikes"]), 4),
        }
        if spent:
            report[f"{name}_lookalikes"]["flagged"] = flagged_tokens
    report.update(_kinds_review(detector))
    report["pastes_heldout"] = _pastes(detector)
    report["misses"] = misses
    external = secrets_external.load()
    report["credsweeper"] = secrets_external.recall(detector, external) if external else None
    return report


def _kinds_review(detector: SensitivityDetector) -> dict[str, Any]:
    """KINDS_REVIEW's look-alikes flagged and secrets found (a finding over half the secret)."""
    rows = [json.loads(line) for line in KINDS_REVIEW.read_text(encoding="utf-8").splitlines() if line]
    lookalikes = [row["text"] for row in rows if row["label"] == "lookalike"]
    flagged = [text for text in lookalikes if any(f.type == "secret" for f in detector.scan(text))]
    secrets = [row for row in rows if row["label"] == "secret"]
    missed = [row["text"] for row in secrets if not _found(detector, row["secret"], row["text"])]
    return {
        "kinds_lookalikes": {
            "n": len(lookalikes),
            "flag_rate": round(len(flagged) / len(lookalikes), 4),
            "flagged": flagged,
        },
        "kinds_secrets": {
            "n": len(secrets),
            "recall": round(1 - len(missed) / len(secrets), 4),
            "missed": missed,
        },
    }


def _pastes(detector: SensitivityDetector) -> dict[str, Any]:
    """A helper's pastes written for the twenty-eighth session without reading turnout's code or
    data, and scored, never read (no text of it is ever printed): look-alikes' flag rate, and the
    share of the real-looking secrets a finding covers at least half of."""
    rows = [json.loads(line) for line in PASTES_HELDOUT.read_text(encoding="utf-8").splitlines() if line]
    alike = [row["text"] for row in rows if row["label"] == "lookalike"]
    real = [row for row in rows if row["label"] == "secret"]
    flagged = sum(any(f.type == "secret" for f in detector.scan(text)) for text in alike)
    found = sum(_found(detector, row["secret"], row["text"]) for row in real)
    return {
        "lookalikes": {"n": len(alike), "flag_rate": round(flagged / len(alike), 4)},
        "secrets": {"n": len(real), "recall": round(found / len(real), 4)},
    }


def _print_reviews(report: dict[str, Any], show: int) -> None:
    """The helpers' sets read while mending: what is flagged, and what is missed."""
    review = report["review_lookalikes"]
    print(
        f"{REVIEW_LOOKALIKES.name} (a helper's, read while mending): {review['flag_rate']:.3f} of {review['n']}"
    )
    for text in review["flagged"]:
        print("  flagged:", json.dumps(text)[:100])
    kinds, kinds_secrets = report["kinds_lookalikes"], report["kinds_secrets"]
    print(
        f"{KINDS_REVIEW.name} (a helper's, read while mending): look-alikes flagged"
        f" {kinds['flag_rate']:.3f} of {kinds['n']}, secrets found {kinds_secrets['recall']:.3f} of {kinds_secrets['n']}"
    )
    for text in kinds["flagged"][:show]:
        print("  flagged:", json.dumps(text)[:100])
    for text in kinds_secrets["missed"][:show]:
        print("  missed:", json.dumps(text)[:100])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.secrets_eval", description=__doc__.splitlines()[0])
    parser.add_argument("--half", choices=("held-out", "development", "all"), default="held-out")
    parser.add_argument("--show-misses", type=int, default=0, metavar="N")
    parser.add_argument(
        "--fill",
        choices=FILLS,
        default="generated",
        help="the other authors' passwords: generated random mixes, or common leaked passwords",
    )
    parser.add_argument(
        "--labelled-secrets",
        action="store_true",
        help="with the policy option sensitivity.labelled_secrets: values words name as a key or token",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    detector = SensitivityDetector(labelled_secrets=args.labelled_secrets)
    report = run(half=args.half, fill=args.fill, detector=detector)
    if args.json:
        external = report["credsweeper"]
        shown = {k: v for k, v in report.items() if k not in ("misses", "credsweeper")}
        shown["credsweeper"] = {k: v for k, v in external.items() if k != "misses"} if external else None
        print(json.dumps(shown, indent=2))
        return 0

    def _label(name: str, path: Path, spent: str | None) -> str:
        state = f"spent {spent}: a regression guard" if spent else "never read: the figure to quote"
        return f"other author's plaintext, {path.name} ({state})"

    if args.fill == "leaked":
        print(f"other authors' templates filled with leaked passwords of {LEAKED_MIN_LENGTH}+ characters")
    labels = [("providers", "providers"), ("plaintext", "plaintext")]
    labels += [(name, _label(name, path, spent)) for name, path, spent in SECOND_AUTHORS]
    for name, label in labels:
        part = report[name]
        print(f"{label}: recall {part['recall']:.3f} on {part['n']}")
        for kind, recall in part["by_kind"].items():
            print(f"  {kind:<28} {recall:.3f}")
    look = report["lookalikes"]
    print(f"look-alikes flagged: {look['flag_rate']:.3f} of {look['n']}")
    for text in look["flagged"]:
        print("  flagged:", json.dumps(text)[:100])
    for name, path, spent in TOKEN_AUTHORS:
        part, other = report[name], report[f"{name}_lookalikes"]
        print(
            f"generic tokens, {path.name} ({'spent ' + spent if spent else 'never read'}): recall {part['recall']:.3f} on {part['n']}"
        )
        for kind, recall in part["by_kind"].items():
            print(f"  {kind:<28} {recall:.3f}")
        print(f"  look-alikes flagged: {other['flag_rate']:.3f} of {other['n']}")
    for name, path, _ in SECOND_AUTHORS:
        other = report[f"{name}_lookalikes"]
        print(f"{path.name} look-alikes flagged: {other['flag_rate']:.3f} of {other['n']}")
        for text in other.get("flagged", ()):
            print("  flagged:", json.dumps(text)[:100])
    _print_reviews(report, args.show_misses)
    pastes = report["pastes_heldout"]
    print(
        f"{PASTES_HELDOUT.name} (held out, never read): look-alikes flagged"
        f" {pastes['lookalikes']['flag_rate']:.3f} of {pastes['lookalikes']['n']},"
        f" secrets found {pastes['secrets']['recall']:.3f} of {pastes['secrets']['n']}"
    )
    for text in report["misses"][: args.show_misses]:
        print("  missed:", json.dumps(text)[:140])
    external = report["credsweeper"]
    if external is None:
        print(
            f"CredSweeper's test lines: not here (python -m evals.datasets fetch {secrets_external.DATASET})"
        )
        return 0
    print("CredSweeper's test lines (another project's; rules may read the development half only):")
    for group in ("all", "provider", "keyword", "development", "held-out"):
        print(f"  {group:<28} {external[group]['recall']:.3f}  (n={external[group]['n']})")
    for line in external["misses"][: args.show_misses]:
        print("  missed:", json.dumps(line)[:140])
    return 0


if __name__ == "__main__":
    sys.exit(main())
