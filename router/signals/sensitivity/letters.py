"""Character classes for "starts with a capital" in any script, for the `re` module (no \\p{Lu}).

[^\\W\\d_a-z] takes every lowercase letter outside ASCII (ž, ł, ő, д) and every letter of a script
without case (中) for a capital; the detectors that look for capitalised names and street names
need the letters Python itself calls upper or title case, in every script it knows.
"""

from __future__ import annotations

import re


def _ranges(chars: list[int]) -> str:
    """A character-class body for sorted code points, runs written as ranges."""
    parts: list[str] = []
    start = previous = chars[0]
    for code in [*chars[1:], -1]:
        if code == previous + 1:
            previous = code
            continue
        parts.append(chr(start) if start == previous else f"{chr(start)}-{chr(previous)}")
        start = previous = code
    return "".join(parts)


# Code points up to U+FFFF cover every cased script in prompts (Latin, Greek, Cyrillic, Armenian,
# Georgian, Cherokee, Glagolitic, Coptic); the class has a few hundred entries and compiles to a
# bitmap lookup, as fast as [A-Z].
_CAPITALS = [code for code in range(0x10000) if chr(code).isupper() or chr(code).istitle()]
UPPER = f"[{_ranges(_CAPITALS)}]"
"""A regex character class of the letters that begin a capitalised word."""


# [^\W\d_] (a letter, to `re`: a word character that is neither a digit nor _) tests a character's
# Unicode categories, about 1.7 times slower to scan with than a class of ranges, which `re` reads as
# a bitmap. The same letters below U+10000, written as ranges, found by `re` itself; above U+FFFF a
# class of ranges is a list that `re` reads range by range, so texts with such characters (emoji)
# keep [^\W\d_].
_BMP = "".join(map(chr, range(0x10000)))
BMP_LETTER = "[" + "".join(_ranges([m.start() for m in re.finditer(r"[^\W\d_]", _BMP)])) + "]"
"""A regex character class matching what [^\\W\\d_] matches below U+10000."""
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def bmp_only(text: str) -> bool:
    """Whether every character of `text` is below U+10000, where BMP_LETTER is [^\\W\\d_]."""
    return _ASTRAL.search(text) is None
