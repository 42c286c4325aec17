"""Where a text cites published work: the authors' names there are a publication's, not personal data.

"As Vaswani et al. (2017) showed", "according to Kahneman (2011)", "(Kingma and Ba, 2015; He et
al., 2016)": surnames with "et al.", or surnames (one, a pair, a list) with a year in brackets,
either in the sentence ("Devlin and Chang (2019)") or inside the brackets of a reference, name the
authors of published work. A name with a given name before the year ("John Reed (1987)", "(Maria
Lopez, 1990)") is not read as a citation: a record's name and birth year look like that, and
authors are cited by surname.
"""

from __future__ import annotations

import re

from router.signals.sensitivity.gazetteer import Gazetteer
from router.signals.sensitivity.letters import UPPER
from router.signals.sensitivity.scanning import lead

_SURNAME = rf"{UPPER}[\w'\u2019\-]*+"  # with a possessive: "Kahneman's (2011) account"
# more surnames: "Kingma and Ba", "Smith, Jones, & Lee"
_NEXT = rf"(?:,\s+(?:and\s+|&\s+)?|\s+(?:and|&)\s+){_SURNAME}"
_AUTHORS = rf"{_SURNAME}(?:{_NEXT}){{0,5}}"
# the same, led by a capital that no letter precedes (`re` skips ahead to capitals)
_LED_AUTHORS = lead(UPPER, r"[\w'\u2019\-]") + rf"[\w'\u2019\-]*+(?:{_NEXT}){{0,5}}"
_YEAR = r"(?:1[5-9]|20)\d\d[a-z]?\b"
_ET_AL = re.compile(rf"{_LED_AUTHORS}\s+et\s+al\b")
# in the sentence: surnames, perhaps "et al.", then "(2011" or "(2011, p. 20)"
_NARRATIVE = re.compile(rf"({_LED_AUTHORS})(?:\s+et\s+al\.?)?\s*\(\s*{_YEAR}")
_BRACKETS = re.compile(r"\(([^()]{1,300})\)")
_SEMICOLON_PARTS = re.compile(r"[^;]+")
# a reference inside brackets, at the start of a part between semicolons: "see Kingma and Ba, 2015"
_REFERENCE = re.compile(
    rf"\s*(?:(?:see|cf\.|e\.g\.,?|i\.e\.,?)\s+(?:also\s+)?)?({_AUTHORS})(?:\s+et\s+al\.?)?,?\s+{_YEAR}"
)
_WORD_BEFORE = re.compile(rf"({_SURNAME})\s+$")


def cited(text: str, names: Gazetteer) -> list[tuple[int, int]]:
    """The spans of the authors' names in the text's citations (most texts have none: the gates
    are "et al" and a bracket)."""
    spans = [match.span() for match in _ET_AL.finditer(text)] if "et al" in text else []
    if "(" not in text:
        return spans
    for match in _NARRATIVE.finditer(text):
        before = _WORD_BEFORE.search(text, max(0, match.start() - 40), match.start())
        if before is None or not names.is_first(before.group(1)):  # not "John Reed (1987)"
            spans.append(match.span(1))
    for brackets in _BRACKETS.finditer(text):
        inside, offset = brackets.group(1), brackets.start(1)
        for part in _SEMICOLON_PARTS.finditer(inside):
            reference = _REFERENCE.match(inside, part.start(), part.end())
            if reference is not None:
                spans.append((offset + reference.start(1), offset + reference.end(1)))
    return spans


def within(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(low <= start and end <= high for low, high in spans)
