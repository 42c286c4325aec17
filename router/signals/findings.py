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
)


@dataclass(frozen=True, slots=True)
class Finding:
    type: str  # one of FINDING_TYPES
    start: int  # character offsets into the scanned text: text[start:end] is the finding
    end: int
    confidence: float  # 0..1
    detail: str = ""  # sub-kind, e.g. "us_ssn", "aws_access_key", "jwt", "password"
