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
from typing import Protocol

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
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.scanning import DigitLed, Prefiltered, case_aligned, lead, word_start

# The patterns that run over the whole text begin with a character class, a \b or lookbehind written
# after the first character (scanning.lead, scanning.word_start), so that `re` skips ahead to
# candidates; those whose first characters are frequent letters are tried through gates (below).
_FREE_DIGIT = lead(r"\d", r"[\w-]")  # a digit with no word character or hyphen before it
_SSN = re.compile(rf"({_FREE_DIGIT}\d{{2}})([- ]?)(\d{{2}})\2(\d{{4}})(?![\w-])")
_SSN_CUE = re.compile(r"(?i)\b(?:ssn|ss#|social\s+security|soc\.?\s*sec|taxpayer|tin)\b[^\n]{0,30}$")
# the two letters are not BG, GB, KN, NK, NT, TN or ZZ
_NINO = re.compile(
    word_start("[A-CEGHJ-PR-TW-Z]")
    + r"[A-CEGHJ-NPR-TW-Z](?<!BG|GB|KN|NK|NT|TN|ZZ) ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"
)
_SIN = re.compile(rf"{_FREE_DIGIT}\d{{2}}([- ]?)\d{{3}}\1\d{{3}}(?![\w-])")
_SIN_CUE = re.compile(r"(?i)\b(?:sin|social\s+insurance)\b[^\n]{0,30}$")
_DNI = re.compile(r"\b(?:\d{8}|[XYZxyz]\d{7})-?[A-Za-z]\b")
_CODICE_FISCALE = re.compile(
    r"\b[A-Za-z]{6}[0-9LMNPQRSTUV]{2}[A-Za-z][0-9LMNPQRSTUV]{2}[A-Za-z][0-9LMNPQRSTUV]{3}[A-Za-z]\b"
)
_NIR = re.compile(
    word_start("[12]") + r" ?\d{2} ?(?:0[1-9]|1[0-2]|[2-9]\d) ?(?:\d{2}|2[ABab]) ?\d{3} ?\d{3} ?\d{2}\b"
)
_PAN = re.compile(r"\b[A-Z]{3}[ABCFGHLJPT][A-Z]\d{4}[A-Z]\b")
_AADHAAR = re.compile(lead("[2-9]", r"[\w-]") + r"\d{3}([ -]?)\d{4}\1\d{4}(?![\w-])")
_AADHAAR_CUE = re.compile(r"(?i)\b(?:aadhaar|aadhar|uidai|uid)\b[^\n]{0,30}$")
# Cues of a driver's licence or passport number: the first word of each and the rest of its pattern.
_LICENCE_CUES = (
    ("driv", r"(?:er'?s?|ing)\s*licen[cs]e(?:\s*(?:number|no\.?|#|id))?"),  # driver's, drivers, driving
    ("dl", r"\s*(?:number|no\.?|#)"),
    ("passport", r"(?:\s*(?:number|no\.?|#|id))?"),
)
_LICENCE = re.compile("(?i)" + "|".join(rf"\b{word}{rest}" for word, rest in _LICENCE_CUES))
# The same in lowercase text (scanning.case_aligned), each cue with its \b written after its word.
_LOWER_LICENCE = re.compile("|".join(word_start(word) + rest for word, rest in _LICENCE_CUES))
# The patterns led by a digit that no digit precedes, tried where a number begins (scanning.DigitLed).
_SSNS, _SINS, _AADHAARS, _NIRS = map(DigitLed, (_SSN, _SIN, _AADHAAR, _NIR))
_LICENCE_VALUE = re.compile(r"[\s:#.\-is]{1,12}([A-Za-z]{0,2}\d[\dA-Za-z\-]{4,17})\b")


def _cued(pattern: re.Pattern[str], text: str, start: int) -> bool:
    return bool(pattern.search(text[max(0, start - 40) : start]))


def _ssns(text: str) -> Iterator[Finding]:
    for match in _SSNS.finditer(text):
        area, separator, group, serial = match.groups()
        if not ssn_valid(area, group, serial):
            continue
        if separator == "-" or _cued(_SSN_CUE, text, match.start()):
            yield Finding("national_id", match.start(), match.end(), 0.85, "us_ssn")


def _sins(text: str) -> Iterator[Finding]:
    for match in _SINS.finditer(text):
        if luhn_valid(digits_only(match.group(0))) and _cued(_SIN_CUE, text, match.start()):
            yield Finding("national_id", match.start(), match.end(), 0.85, "ca_sin")


def _aadhaars(text: str) -> Iterator[Finding]:
    for match in _AADHAARS.finditer(text):
        if aadhaar_valid(digits_only(match.group(0))) and _cued(_AADHAAR_CUE, text, match.start()):
            yield Finding("national_id", match.start(), match.end(), 0.9, "in_aadhaar")


def _licences(text: str, lowered: str) -> Iterator[Finding]:
    cues = _LOWER_LICENCE.finditer(lowered) if case_aligned(text, lowered) else _LICENCE.finditer(text)
    for cue in cues:
        value = _LICENCE_VALUE.match(text, cue.end())
        if value and sum(char.isdigit() for char in value.group(1)) >= 5:
            detail = "passport" if cue.group(0).lower().startswith("passport") else "us_driver_license"
            yield Finding("national_id", value.start(1), value.end(1), 0.8, detail)


# Formats whose first characters are common letters are tried only where their rarer middle is:
# seven digits after a digit or X, Y, Z (a DNI's last seven); the digits or omocodia letters after
# six letters (a codice fiscale's); four digits after five capitals (a PAN's).
# Those with a number that no digit precedes at a fixed place are tried only there (scanning.DigitLed:
# at a DNI's start, or one after its X, Y or Z; five after a PAN's start; two or three after a
# NINO's), through those gates where numbers are dense.
_NINOS = DigitLed(_NINO, (3, 2))
_DNIS = DigitLed(_DNI, (1, 0), Prefiltered(_DNI, re.compile(r"\d(?<=[\dXYZxyz]\d)\d{6}"), back=1))
_CODICI_FISCALI = Prefiltered(
    _CODICE_FISCALE, re.compile(r"[0-9LMNPQRSTUV](?<=[A-Za-z]{6}[0-9LMNPQRSTUV])[0-9LMNPQRSTUV]"), back=6
)
_PANS = DigitLed(_PAN, (5,), Prefiltered(_PAN, re.compile(r"\d(?<=[A-Z]{5}\d)\d{3}"), back=5))


class _Finder(Protocol):
    def finditer(self, text: str) -> Iterator[re.Match[str]]: ...


_Checked = tuple[tuple[_Finder, Callable[[str], bool], str, float], ...]
_NUMERIC: _Checked = ((_DNIS, spanish_id_valid, "es_dni", 0.85), (_NIRS, nir_valid, "fr_nir", 0.85))
_ALPHANUMERIC: _Checked = (
    (_NINOS, lambda value: True, "uk_nino", 0.8),
    (
        _CODICI_FISCALI,
        lambda v: codice_fiscale_shape(v) and codice_fiscale_valid(v),
        "it_codice_fiscale",
        0.9,
    ),
    (_PANS, lambda value: True, "in_pan", 0.75),
)
# Gates, one cheap scan each: every numeric format holds a run of 7+ digits (separators allowed),
# every alphanumeric one a letter right before two digits ([A-Za-z] ?\d\d, found from its digits).
# The first is looked for where a number begins (scanning.DigitLed): one that starts inside a number
# has another from the number's first digit, and only whether there is one is asked.
_LONG_NUMBER = DigitLed(re.compile(r"\d(?<!\d\d)[\d \-]{5,}\d"))
# An SSN, SIN and Aadhaar number each start with nine digits (a separator allowed before each after
# the first) where no word character or hyphen precedes: one scan instead of three on most texts.
_NINE_DIGITS = DigitLed(re.compile(_FREE_DIGIT + r"(?:[- ]?\d){8}"))
_LETTER_DIGITS = DigitLed(re.compile(r"\d(?:(?<=[A-Za-z]\d)|(?<=[A-Za-z] \d))\d"))
_LICENCE_GATE = Gate(("licen", "passport", "dl"))


def _checked(text: str, formats: _Checked) -> Iterator[Finding]:
    for pattern, valid, detail, confidence in formats:
        for match in pattern.finditer(text):
            if valid(match.group(0)):
                yield Finding("national_id", match.start(), match.end(), confidence, detail)


def find_national_ids(text: str) -> Iterator[Finding]:
    if _LONG_NUMBER.search(text):
        if _NINE_DIGITS.search(text):
            yield from _ssns(text)
            yield from _sins(text)
            yield from _aadhaars(text)
        yield from _checked(text, _NUMERIC)
    if _LETTER_DIGITS.search(text):
        yield from _checked(text, _ALPHANUMERIC)
    lowered = text.lower()
    if _LICENCE_GATE.open(lowered):
        yield from _licences(text, lowered)
