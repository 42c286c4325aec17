"""Where a text cites published work: the authors' names there are a publication's, not personal data.

"As Vaswani et al. (2017) showed", "according to Kahneman (2011)", "(Kingma and Ba, 2015; He et
al., 2016)": surnames with "et al." and a year or a verb of argument ("Vaswani et al. showed"; not
"Kowalczyk et al. said"), surnames (one, a pair, a list) with a year inside the brackets
of a reference, or in the sentence with a year in brackets where "according to", "in", "the model
of" or the like comes before them or a verb of argument after ("Devlin and Chang (2019) argue"; not
"Kowalczyk and Brzezinski (2019) were fired") name the authors of published work. A name after a
given name ("John Reed (1987)"), or with one among the surnames that is no surname too ("(Maria
Lopez, 1990)", "Lopez, Maria (1990)"; "Reed, James (1987)" is read as two surnames), is not read as
a citation: a record's name and birth year look like that, and authors are cited by surname; nor
is a year that something other than a bracket, a comma or a semicolon follows ("(2019 hire)",
"(1987-03-12)": a date).
"""

from __future__ import annotations

import re
from bisect import bisect_right

from router.signals.sensitivity.gazetteer import Gazetteer
from router.signals.sensitivity.letters import UPPER
from router.signals.sensitivity.name_tokens import NAME_START

_SURNAME = rf"{UPPER}[\w'\u2019\-]*+"  # with a possessive: "Kahneman's (2011) account"
# more surnames: "Kingma and Ba", "Smith, Jones, & Lee"
_NEXT = rf"(?:,\s+(?:and\s+|&\s+)?|\s+(?:and|&)\s+){_SURNAME}"
_AUTHORS = rf"{_SURNAME}(?:{_NEXT}){{0,5}}"
# the same, starting where a name may (`re` skips ahead to capitals; "'Kahneman (2011) ...'" too)
_LED_AUTHORS = NAME_START + rf"[\w'\u2019\-]*+(?:{_NEXT}){{0,5}}"
_YEAR = r"(?:1[5-9]|20)\d\d[a-z]?(?=\s*[),;])"
_ARGUES = r"(?:argue|show|found|suggest|propose|claim|define|demonstrate|conclude|contend|posit|hypothesi)"
# "et al." with a verb of argument after it ("Vaswani et al. showed"; with a year, _NARRATIVE reads it)
_ET_AL = re.compile(
    rf"({_LED_AUTHORS})\s+et\s+al\b\.?,?\s*(?i:(?:(?:also|further|first|famously)\s+)?{_ARGUES})"
)
# in the sentence: surnames, perhaps "et al.", then "(2011" or "(2011, p. 20)"
_NARRATIVE = re.compile(rf"({_LED_AUTHORS})(?:\s+et\s+al\.?)?\s*\(\s*{_YEAR}")
_BRACKETS = re.compile(r"\(([^()]{1,300})\)")
_SEMICOLON_PARTS = re.compile(r"[^;]+")
# a reference inside brackets, at the start of a part between semicolons: "see Kingma and Ba, 2015"
# (matched up to the part's end: the year ends it or a comma follows, "2016, p. 3")
_REFERENCE = re.compile(
    rf"\s*(?:(?:see|cf\.|e\.g\.,?|i\.e\.,?)\s+(?:also\s+)?)?({_AUTHORS})(?:\s+et\s+al\.?)?,?\s+"
    r"(?:1[5-9]|20)\d\d[a-z]?(?=\s*(?:,|$))"
)
_WORD_BEFORE = re.compile(rf"({_SURNAME})\s+$")
_NAME_WORD = re.compile(_SURNAME)
# what makes a name with a year in a sentence an author's: "according to", "in", "the theory of"
# and the like before it, or a verb of argument after its bracket ("Devlin and Chang (2019)
# argue", "as Kahneman (2011) showed"; not one of doing: "reported the theft", "called the police")
_ACCORDING = re.compile(
    r"(?i)\b(?:according\s+to|in|see|cf\.|(?:argument|model|theory|theories|study|studies|work|paper|view"
    r"|views|account|findings|framework|approach|definition|analysis|critique|review|experiments?|research"
    r"|method|book|article)\s+(?:of|by))\s+$"
)
_REPORTING = re.compile(
    rf"[^()]{{0,40}}\)\s*,?\s*(?:(?:also|further|first|famously)\s+)?{_ARGUES}", re.IGNORECASE
)


class Cited:
    """The spans of a text's cited authors, merged and sorted: whether a name lies in one is a
    binary search, not a walk over all of them (a long text can hold thousands)."""

    def __init__(self, spans: list[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [start for start, _ in merged]
        self.ends = [end for _, end in merged]

    def covers(self, start: int, end: int) -> bool:
        index = bisect_right(self.starts, start) - 1
        return index >= 0 and end <= self.ends[index]


def cited(text: str, names: Gazetteer) -> Cited:
    """The authors' names in the text's citations (most texts have none: the gates are "et al" and
    a bracket), but for a list that holds a given name that is no surname ("Lopez, Maria")."""
    spans = [match.span(1) for match in _ET_AL.finditer(text)] if "et al" in text else []
    if "(" in text:
        for match in _NARRATIVE.finditer(text):
            before = _WORD_BEFORE.search(text, max(0, match.start() - 40), match.start())
            if before is not None and names.is_first(before.group(1)):
                continue  # "John Reed (1987)"
            if _ACCORDING.search(text, max(0, match.start() - 30), match.start()) or _REPORTING.match(
                text, match.end()
            ):
                spans.append(match.span(1))
        for brackets in _BRACKETS.finditer(text):
            inside, offset = brackets.group(1), brackets.start(1)
            for part in _SEMICOLON_PARTS.finditer(inside):
                reference = _REFERENCE.match(inside, part.start(), part.end())
                if reference is not None:
                    spans.append((offset + reference.start(1), offset + reference.end(1)))
    return Cited([span for span in spans if not _given_name_in(text[span[0] : span[1]], names)])


def _given_name_in(authors: str, names: Gazetteer) -> bool:
    return any(names.is_first(word) and not names.in_last(word) for word in _NAME_WORD.findall(authors))
