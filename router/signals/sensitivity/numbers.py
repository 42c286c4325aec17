"""Detects contact and financial numbers in prompt text: phones, payment cards, IBANs, IP addresses.

Regex candidates are confirmed by structure or check digits (Luhn, mod-97, the ipaddress module)
and phone-shaped numbers are told apart from dates, times, versions, prices and plain quantities.
Callers run these only when the text holds a digit. Nothing here may allocate per-call tables or
reach the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator

from router.signals.sensitivity.checksums import digits_only, iban_valid, luhn_valid
from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.iban_registry import iban_length
from router.signals.sensitivity.scanning import DigitLed, Prefiltered, lead

# Every pattern that runs over the whole text begins with its first character's class, a \b or a
# lookbehind written after that character (scanning.lead), so that `re` skips ahead to candidates.
# A phone number starts with +, ( or a digit: "+", then "(" or not, then a digit; "(" then a digit;
# or a digit (the lookbehinds after the first character say which one it was). The first character
# stands before the atomic group, which it need not be in (one character, read one way): `re` skips
# ahead only to a pattern's leading class, and cannot see one inside an atomic group (on the
# longest benchmark prompts, 0.16 ms with it inside, 0.10 without).
_PHONE = re.compile(
    r"[+(\d](?<![\w.+/\-=#$€£¥:(][+(\d])(?>(?:(?<=\+)\(?\d|(?<=\()\d|(?<=\d))[\d ().\-]*\d)"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w/]|-\d|[.,]\d|:\d)"
)
# Its first digit follows no digit, at its start or after its "+", "(" or "+(" (scanning.DigitLed).
_PHONES = DigitLed(_PHONE, (2, 1, 0))
# Words that name a phone outright: enough even for a six-digit number.
_PHONE_WORDS = r"phone|tel\b|telephone|mobile|cell|call|fax|text\b|whatsapp|sms|dial|registered|landline|hotline|messages?"
_CUE_END = r"[\w\s.:#'\u2019]{0,25}$"
_STRONG_PHONE_CUE = re.compile(rf"(?i)(?:{_PHONE_WORDS}){_CUE_END}")
_PHONE_CUE = re.compile(rf"(?i)(?:{_PHONE_WORDS}|contact|reach|number|ring|answer|\bat\b|\bon\b){_CUE_END}")
# "number" cues a phone unless a word before it names another kind of number: an order's, a
# ticket's, a part's (none of these identifies a person; an account's, a patient's or a policy's may,
# and stays a cue).
_OTHER_NUMBER = re.compile(
    r"(?i)\b(?:order|tracking|invoice|ticket|case|reference|ref|confirmation|booking|reservation|"
    r"transaction|shipment|parcel|package|serial|part|model|sku|item|product|batch|lot|build|version|"
    r"issue|bug|job|request|receipt|purchase\s+order|po)\s*(?:number|no\.|no\b|num\b|#)[^\d\n]{0,12}$"
)
_DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./](?:\d{4}|\d{2}))$")
_CURRENCY_BEFORE = re.compile(r"(?:[$€£¥₹]|\b(?:usd|eur|gbp|rs|inr|chf|sek|nok|dkk)\.?)\s?$", re.IGNORECASE)
_UNIT_AFTER = re.compile(
    r"^\s?(?:%|percent|years?|yrs|months?|days?|hours?|minutes?|seconds?|times|people|units|items|kg|km|"
    r"m\b|cm|mm|miles?|meters?|feet|ft|lbs?|pounds|dollars|euros|cents|tokens|words|rows|bytes|[kmg]b\b)",
    re.IGNORECASE,
)
_CARD = re.compile(lead(r"\d", r"[\d\-.,]") + r"(?:[ \-]?\d){11,18}(?![\d\-]|[.,]\d)")
_CARDS = DigitLed(_CARD)  # no digit before its first: tried where a number begins
_CARD_PREFIX = re.compile(
    r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|35|6011|64[4-9]|65|62|50|5[6-8]|6[37]|2131|1800)"
)
_CARD_CUE = re.compile(
    r"(?i)(?:card|visa|mastercard|amex|discover|maestro|cc|credit|debit|payment)[^\n\d]{0,30}$"
)
_ID_BEFORE = re.compile(r"(?i)(?:\bid|_id|number_?id|uuid|hash|timestamp)\W{0,4}$")
# Separated card numbers come in fixed groupings: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4.
_CARD_GROUPS = re.compile(r"^\d{4}(?:[ \-]\d{4}){2,3}(?:[ \-]\d{1,3})?$|^\d{4}[ \-]\d{6}[ \-]\d{4,5}$")
# Where an IBAN can begin: a country's letters and two check digits; find_ibans reads on from there.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?=[ \-\u00a0]?[A-Za-z0-9])")
# Tried only at the two letters before a number (scanning.DigitLed), or where numbers are dense before
# two digits (a word's every letter would be a candidate).
_IBAN_GAPS = " -\u00a0"
_IBANS = DigitLed(_IBAN, (2,), Prefiltered(_IBAN, re.compile(r"\d(?<=[A-Za-z]{2}\d)\d"), back=2))
_IPV4 = re.compile(lead(r"\d", r"[\w.]") + r"\d{0,2}\.(?:\d{1,3}\.){2}\d{1,3}(?![\w]|\.\d)")
_IPV4S = DigitLed(_IPV4)
# (?:[0-9A-Fa-f]{0,4}:){2,7}...: the first group is a colon alone, or hex digits and a colon
_IPV6 = re.compile(
    lead("[0-9A-Fa-f:]", r"[\w:.]")
    + r"(?:(?<=:)|(?<=[0-9A-Fa-f])[0-9A-Fa-f]{0,3}:)(?:[0-9A-Fa-f]{0,4}:){1,6}[0-9A-Fa-f]{0,4}(?![\w:])"
)


_PHONE_LABEL_AFTER = re.compile(r"(?i)\s?-?\s?(?:office|fax|mobile|cell|home|work|desk|tel|phone)\b")


_PHONE_SEPARATORS = re.compile(r"[ .\-()x]+|ext\.?")
_NANP = re.compile(r"\d{3}-\d{3}-\d{4}")  # 555-123-4567


def _phone_groups(candidate: str) -> list[str]:
    # "(0)" is the trunk prefix dropped when dialling from abroad: not a group of its own.
    trimmed = candidate.lstrip("+").replace("(0)", " ")
    return [group for group in _PHONE_SEPARATORS.split(trimmed) if group]


def _phone_shape_ok(candidate: str, groups: list[str]) -> bool:
    digits = sum(len(group) for group in groups)
    # six digits in pairs are a whole number in Greenland or the Faroes (a cue is still needed)
    short = digits == 6 and len(groups) == 3 and " " in candidate
    if not (7 <= digits <= 15 or short) or _DATE.match(candidate):
        return False
    if "  " in candidate or candidate.count("(") != candidate.count(")") or candidate.count("(") > 2:
        return False
    if "." in candidate and (len(groups) < 3 or (len(groups) == 4 and all(len(g) <= 3 for g in groups))):
        return False  # a decimal, an IPv4 address or a version string
    if set(candidate) <= set("01 -"):
        return False  # binary digits
    # Single digits past the first group read as counting (1 2 3 4), not as a phone number.
    return all(len(group) >= 2 for group in groups[1:])


def _phone_confidence(text: str, start: int, end: int, candidate: str, groups: list[str]) -> float:
    before = text[max(0, start - 40) : start]
    if _CURRENCY_BEFORE.search(before) or _UNIT_AFTER.match(text[end : end + 12]):
        return 0.0
    if (
        not candidate.startswith("+")
        and _OTHER_NUMBER.search(before)
        and not _STRONG_PHONE_CUE.search(before)
    ):
        return 0.0  # "order number 4829173650": the text says what the number is
    international = candidate.startswith("+") or candidate.startswith("00") or "(" in candidate
    cue = bool(_PHONE_CUE.search(before) or _PHONE_LABEL_AFTER.match(text, end))
    if sum(map(len, groups)) == 6:
        return 0.7 if _STRONG_PHONE_CUE.search(before) else 0.0
    if len(groups) == 1:
        return 0.8 if international or (cue and len(candidate) >= 9) else 0.0
    if international or "x" in candidate or "ext" in candidate:
        return 0.9
    if _NANP.fullmatch(candidate):
        return 0.85
    if cue:
        return 0.8
    # Without a cue: two groups read as ranges or pairs (1495-1505), 1 000 000 as a quantity.
    trunk = candidate.startswith("0") and sum(map(len, groups)) >= 9
    thousands = all(len(group) == 3 for group in groups[1:]) and " " in candidate
    if len(groups) == 2 or thousands:
        return 0.45
    return 0.75 if trunk else 0.6


def find_phones(text: str) -> Iterator[Finding]:
    for match in _PHONES.finditer(text):
        candidate = match.group(0).rstrip(" .-")
        if len(candidate) < 6:
            continue  # fewer than the six digits _phone_shape_ok asks for at least (most: "7-0", "12")
        groups = _phone_groups(candidate)
        if not _phone_shape_ok(candidate, groups):
            continue
        end = match.start() + len(candidate)
        confidence = _phone_confidence(text, match.start(), end, candidate, groups)
        if confidence:
            yield Finding("phone", match.start(), end, confidence)


def _card_confidence(text: str, start: int, candidate: str, number: str) -> float:
    if candidate != number and not _CARD_GROUPS.match(candidate):
        return 0.0
    before = text[max(0, start - 40) : start]
    cue = bool(_CARD_CUE.search(before))
    if _ID_BEFORE.search(before) or not (13 <= len(number) <= 19 or (len(number) == 12 and cue)):
        return 0.0
    if len(number) in (17, 18) and not cue:
        return 0.0  # no card network issues these lengths; long ids often pass Luhn by chance
    if _CARD_PREFIX.match(number):
        return 0.9
    return 0.8 if cue else 0.45


def find_cards(text: str) -> Iterator[Finding]:
    for match in _CARDS.finditer(text):
        number = digits_only(match.group(0))
        if luhn_valid(number) and len(set(number)) > 1:
            confidence = _card_confidence(text, match.start(), match.group(0), number)
            if confidence:
                yield Finding("credit_card", match.start(), match.end(), confidence)


def find_ibans(text: str) -> Iterator[Finding]:
    """IBANs in any grouping ("FR76 30006 00001 12345678901 89" as a French RIB is written, as well
    as in fours or unbroken): the characters after the country code are read, one space or hyphen
    allowed between them, until the country's IBAN length; it must end there."""
    after = 0
    for match in _IBANS.finditer(text):
        start = match.start()
        if start < after:
            continue
        end = _iban_end(text, start, iban_length(text[start : start + 2].upper()))
        if end and iban_valid("".join(char for char in text[start:end] if char.isalnum())):
            after = end
            yield Finding("iban", start, end, 0.95)


def _iban_end(text: str, start: int, length: int) -> int:
    """Where an IBAN of `length` characters beginning at `start` ends, 0 if the text holds none."""
    count, i, stop = 0, start, len(text)
    while i < stop and count < length:
        char = text[i]
        if char.isascii() and char.isalnum():
            count += 1
        elif not (count >= 4 and char in _IBAN_GAPS and i + 1 < stop and text[i + 1].isalnum()):
            return 0
        i += 1
    ends = count == length and (i == stop or not text[i].isalnum())
    return i if ends else 0


# Gates, one cheap scan each (a literal first): a dotted quad holds ".1.2." (its second and third
# numbers between dots), an IPv6 address two colons with at most four hex digits between them.
_DOTTED = re.compile(r"\.\d{1,3}\.\d{1,3}\.")
_COLONS = re.compile(r":[0-9A-Fa-f]{0,4}:")

_INTERNAL_V4 = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_INTERNAL_V6 = ipaddress.IPv6Network("fc00::/7")  # unique local addresses (RFC 4193)


def _ipv4_kind(candidate: str) -> tuple[str, float]:
    """The finding type and confidence of a dotted quad: a public address is `ip_address`, one of
    a private network (RFC 1918) `internal_ip`; loopback, link-local and the like name no host."""
    try:
        address = ipaddress.IPv4Address(candidate)
    except ValueError:
        return "", 0.0
    octets = candidate.split(".")
    if all(len(octet) == 1 for octet in octets):
        return "ip_address", 0.3  # 1.2.3.4 is far more often a version number than a host
    if any(address in network for network in _INTERNAL_V4):
        return "internal_ip", 0.7
    if address.is_private or address.is_loopback or address.is_unspecified or address.is_reserved:
        return "ip_address", 0.4  # a documentation or special-purpose range: identifies no one
    if address.is_multicast or address.is_link_local:
        return "ip_address", 0.3
    return "ip_address", 0.85


def _ipv6_kind(candidate: str) -> tuple[str, float]:
    if candidate.count(":") < 3 or len(candidate) < 8:
        return "", 0.0
    try:
        address = ipaddress.IPv6Address(candidate)
    except ValueError:
        return "", 0.0
    if address in _INTERNAL_V6:
        return "internal_ip", 0.7
    if address.is_loopback or address.is_unspecified or address.is_link_local or address.is_private:
        return "ip_address", 0.4
    return "ip_address", 0.85


def find_ips(text: str) -> Iterator[Finding]:
    if text.count(".") >= 3 and _DOTTED.search(text):
        for match in _IPV4S.finditer(text):
            kind, confidence = _ipv4_kind(match.group(0))
            if confidence:
                yield Finding(kind, match.start(), match.end(), confidence, "ipv4")
    if text.count(":") >= 3 and _COLONS.search(text):
        for match in _IPV6.finditer(text):
            kind, confidence = _ipv6_kind(match.group(0))
            if confidence:
                yield Finding(kind, match.start(), match.end(), confidence, "ipv6")
