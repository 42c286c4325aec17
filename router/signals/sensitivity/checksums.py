"""Check-digit validators for the identifiers router.signals.sensitivity.detector looks for.

Pure functions over strings of digits and letters: Luhn (payment cards, Canadian SIN), ISO 13616
mod-97 (IBAN), Verhoeff (Aadhaar), and the national check letters and keys of Spain, Italy and
France, plus the US SSN's structural rules. They must stay free of I/O and regexes so the detector
can call them on every candidate without cost; a validator never raises on malformed input, it
answers False.
"""

from __future__ import annotations

from router.signals.sensitivity.iban_registry import bban_fits

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_CF_ODD = (1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23)
# Codice fiscale "omocodia": digits replaced by these letters when two people would collide.
_CF_OMOCODE = "LMNPQRSTUV"


def digits_only(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or len(number) < 2:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """An IBAN of a country that issues them, its BBAN of that country's structure, mod 97 == 1
    (spaces ignored)."""
    iban = candidate.replace(" ", "").upper()
    if not iban[2:4].isdigit() or not bban_fits(iban[:2], iban[4:]):
        return False
    rearranged = iban[4:] + iban[:4]
    numeric = "".join(str(int(char, 36)) for char in rearranged)
    return int(numeric) % 97 == 1


def verhoeff_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    check = 0
    for index, char in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][ord(char) - 48]]
    return check == 0


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """US SSN structure: no 000/666/9xx area, no 00 group, no 0000 serial (SSA rules since 2011)."""
    if area in ("000", "666") or area.startswith("9") or group == "00" or serial == "0000":
        return False
    # Numbers the SSA publicised or retired as examples (advertising cards, test ranges).
    return f"{area}{group}{serial}" not in ("078051120", "219099999", "123456789")


def spanish_id_valid(candidate: str) -> bool:
    """DNI (8 digits + letter) or NIE (X/Y/Z + 7 digits + letter)."""
    value = candidate.replace("-", "").replace(" ", "").upper()
    if len(value) != 9:
        return False
    head, letter = value[:8], value[8]
    if head[0] in "XYZ":
        head = str("XYZ".index(head[0])) + head[1:]
    return head.isdigit() and _DNI_LETTERS[int(head) % 23] == letter


def _cf_value(char: str, odd: bool) -> int:
    index = ord(char) - 65 if char.isalpha() else ord(char) - 48
    return _CF_ODD[index] if odd else index


def codice_fiscale_valid(candidate: str) -> bool:
    value = candidate.upper()
    if len(value) != 16 or not value.isalnum():
        return False
    total = sum(_cf_value(char, position % 2 == 0) for position, char in enumerate(value[:15]))
    return chr(65 + total % 26) == value[15]


def codice_fiscale_shape(candidate: str) -> bool:
    """Letters and digits where the format puts them, allowing the omocodia substitutions."""
    value = candidate.upper()
    digit_positions = (6, 7, 9, 10, 12, 13, 14)
    for position, char in enumerate(value):
        if position in digit_positions:
            if not (char.isdigit() or char in _CF_OMOCODE):
                return False
        elif not char.isalpha():
            return False
    return len(value) == 16


def nir_valid(candidate: str) -> bool:
    """French INSEE/NIR: 13 characters then a 2-digit key, 97 - (number mod 97); Corsica 2A/2B."""
    value = candidate.replace(" ", "").upper()
    if len(value) != 15:
        return False
    body, key = value[:13], value[13:]
    body = body.replace("2A", "19", 1) if body[5:7] == "2A" else body
    body = body.replace("2B", "18", 1) if body[5:7] == "2B" else body
    if not body.isdigit() or not key.isdigit():
        return False
    return 97 - int(body) % 97 == int(key)


def aadhaar_valid(number: str) -> bool:
    return len(number) == 12 and number[0] not in "01" and verhoeff_valid(number)
