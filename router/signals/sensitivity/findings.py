"""The value type every sensitivity detector returns, kept apart so detector modules share it.

A Finding is a span of the scanned text with a kind and a confidence; it never holds the matched
text itself, so logging a finding cannot leak what it found.
"""

from __future__ import annotations

from dataclasses import dataclass

FINDING_TYPES = (
    "email",
    "phone",
    "credit_card",
    "iban",
    "national_id",
    "ip_address",
    "street_address",
    "person",
    "secret",
    "term",
    "internal_ip",
)
# Reported only where a policy lists them in `sensitivity.types`: an internal address (RFC 1918,
# RFC 4193) names a machine on a private network, not a person; whether the layout of one's own
# network is confidential is the operator's call, not a default that reroutes every infra question.
OPT_IN_TYPES = frozenset(("internal_ip",))
DEFAULT_TYPES = tuple(kind for kind in FINDING_TYPES if kind not in OPT_IN_TYPES)


@dataclass(frozen=True, slots=True)
class Finding:
    type: str  # one of FINDING_TYPES
    start: int  # character offsets into the scanned text: text[start:end] is the finding
    end: int
    confidence: float  # 0..1
    detail: str = ""  # sub-kind, e.g. "us_ssn", "aws_access_key", "jwt", "password"
