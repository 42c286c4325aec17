"""Detects national identity numbers in prompt text, each confirmed by its format's own rules.

US SSN (area/group/serial rules), UK National Insurance number, Canadian SIN (Luhn), Spanish DNI/NIE
(check letter), Italian codice fiscale (check letter), French INSEE/NIR (mod-97 key), Indian PAN and
Aadhaar (Verhoeff). Formats that are just digits (a bare SSN, SIN, Aadhaar, and US driver licence or
passport numbers, which have no checksum) are reported only next to a cue word naming them, so
order numbers and quantities are never taken for identities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from router.signals.sensitivity.checksums import (
    aadhaar_valid,
    codice_fiscale_shape,
    codice_fiscale_valid,
    digits_only,
    luhn_valid,
    nir_valid,
    spanish_id_valid,
    ssn_valid,
)
from router.signals.sensitivity.findings import Finding

_SSN = re.compile(r"(?<![\w-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w-])")
_SSN_CUE = re.compile(r"(?i)\b(?:ssn|ss#|social\s+security|soc\.?\s*sec|taxpayer|tin)\b[^\n]{0,30}$")
_NINO = re.compile(
    r"\b(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_SIN = re.compile(r"(?<![\w-])\d{3}([- ]?)\d{3}\1\d{3}(?![\w-])")
_SIN_CUE = re.compile(r"(?i)\b(?:sin|social\s+insurance)\b[^\n]{0,30}$")
_DNI = re.compile(r"\b(?:\d{8}|[XYZxyz]\d{7})-?[A-Za-z]\b")
_CODICE_FISCALE = re.compile(
    r"\b[A-Za-z]{6}[0-9LMNPQRSTUV]{2}[A-Za-z][0-9LMNPQRSTUV]{2}[A-Za-z][0-9LMNPQRSTUV]{3}[A-Za-z]\b"
)
_NIR = re.compile(r"\b[12] ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}\b")
_PAN = re.compile(r"\b[A-Z]{3}[ABCFGHLJPT][A-Z]\d{4}[A-Z]\b")
_AADHAAR = re.compile(r"(?<![\w-])[2-9]\d{3}([ -]?)\d{4}\1\d{4}(?![\w-])")
_AADHAAR_CUE = re.compile(r"(?i)\b(?:aadhaar|aadhar|uidai|uid)\b[^\n]{0,30}$")
_LICENCE = re.compile(
    r"(?i)\b(?:driver'?s?|driving)\s*licen[cs]e(?:\s*(?:number|no\.?|#|id))?|\bDL\s*(?:number|no\.?|#)|"
    r"\bpassport(?:\s*(?:number|no\.?|#|id))?"
)
_LICENCE_VALUE = re.compile(r"[\s:#.\-is]{1,12}([A-Za-z]{0,2}\d[\dA-Za-z\-]{4,17})\b")


def _cued(pattern: re.Pattern[str], text: str, start: int) -> bool:
    return bool(pattern.search(text[max(0, start - 40) : start]))


def _ssns(text: str) -> Iterator[Finding]:
    for match in _SSN.finditer(text):
        area, separator, group, serial = match.groups()
        if not ssn_valid(area, group, serial):
            continue
        if separator == "-" or _cued(_SSN_CUE, text, match.start()):
            yield Finding("national_id", match.start(), match.end(), 0.85, "us_ssn")


def _sins(text: str) -> Iterator[Finding]:
    for match in _SIN.finditer(text):
        if luhn_valid(digits_only(match.group(0))) and _cued(_SIN_CUE, text, match.start()):
            yield Finding("national_id", match.start(), match.end(), 0.85, "ca_sin")


def _aadhaars(text: str) -> Iterator[Finding]:
    for match in _AADHAAR.finditer(text):
        if aadhaar_valid(digits_only(match.group(0))) and _cued(_AADHAAR_CUE, text, match.start()):
            yield Finding("national_id", match.start(), match.end(), 0.9, "in_aadhaar")


def _licences(text: str) -> Iterator[Finding]:
    for cue in _LICENCE.finditer(text):
        value = _LICENCE_VALUE.match(text, cue.end())
        if value and sum(char.isdigit() for char in value.group(1)) >= 5:
            detail = "passport" if cue.group(0).lower().startswith("passport") else "us_driver_license"
            yield Finding("national_id", value.start(1), value.end(1), 0.8, detail)


_Checked = tuple[tuple[re.Pattern[str], Callable[[str], bool], str, float], ...]
_NUMERIC: _Checked = ((_DNI, spanish_id_valid, "es_dni", 0.85), (_NIR, nir_valid, "fr_nir", 0.85))
_ALPHANUMERIC: _Checked = (
    (_NINO, lambda value: True, "uk_nino", 0.8),
    (
        _CODICE_FISCALE,
        lambda v: codice_fiscale_shape(v) and codice_fiscale_valid(v),
        "it_codice_fiscale",
        0.9,
    ),
    (_PAN, lambda value: True, "in_pan", 0.75),
)
# Gates, one cheap scan each: every numeric format holds a run of 7+ digits (separators allowed),
# every alphanumeric one a letter right before two digits.
_LONG_NUMBER = re.compile(r"\d[\d \-]{5,}\d")
_LETTER_DIGITS = re.compile(r"[A-Za-z] ?\d\d")
_LICENCE_HINTS = ("licen", "passport", "dl")


def _checked(text: str, formats: _Checked) -> Iterator[Finding]:
    for pattern, valid, detail, confidence in formats:
        for match in pattern.finditer(text):
            if valid(match.group(0)):
                yield Finding("national_id", match.start(), match.end(), confidence, detail)


def find_national_ids(text: str) -> Iterator[Finding]:
    if _LONG_NUMBER.search(text):
        yield from _ssns(text)
        yield from _sins(text)
        yield from _aadhaars(text)
        yield from _checked(text, _NUMERIC)
    if _LETTER_DIGITS.search(text):
        yield from _checked(text, _ALPHANUMERIC)
    lowered = text.lower()
    if any(hint in lowered for hint in _LICENCE_HINTS):
        yield from _licences(text)
