"""A text's words as the name rules read them: each word with its start, end and the gap before it,
lowercased, by start, and the capitalised ones, split by C loops rather than a Python loop over
match objects (a 10,000-character prompt has some 1,700 words)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import accumulate, compress, count
from operator import itemgetter

from router.signals.sensitivity.gazetteer import Gazetteer
from router.signals.sensitivity.letters import BMP_LETTER, UPPER, bmp_only
from router.signals.sensitivity.scanning import lead

TOKEN = re.compile(r"[^\W\d_]+(?:['\u2019\-][^\W\d_]+)*")
# The same words, as the one group of a pattern, for re.split: in a text without characters above
# U+FFFF, the letters [^\W\d_] are BMP_LETTER, a class `re` tests faster ([A-Za-z] in ASCII text).
_SPLIT_TOKENS = re.compile(rf"({TOKEN.pattern})")
_SPLIT_BMP_TOKENS = re.compile(rf"((?:{BMP_LETTER})+(?:['\u2019\-](?:{BMP_LETTER})+)*)")
_SPLIT_ASCII_TOKENS = re.compile(r"([A-Za-z]+(?:['\u2019\-][A-Za-z]+)*)")
# Capitalised starts only (a lowercase first letter fails at once, which keeps these scans cheap).
# Possessive (*+): in every pattern that reads one (LIST here, names' speaker labels and vocatives),
# what follows a capitalised word cannot start with a word
# character, an apostrophe or a hyphen, so giving back its characters could never lead to a match;
# not trying to keeps these scans from re-reading each capitalised word from its end.
CAPITALISED = rf"{UPPER}[\w'\u2019\-]*+"
# Patterns begin with their first character's class or a lookbehind written after it (scanning),
# so that `re` skips ahead to candidates.
# "A, B and C": giving back a ", B" could only leave it to be read as ",?\s+(?:and|&)", and a
# capitalised word is neither, so that repetition is possessive too.
# Where a name may start: a capital that no word character precedes, nor a word's letters and a
# hyphen or apostrophe (not inside "A-B-C" or "O'Neil"; after a quote, "'Priya and Devon ...'", it may).
NAME_START = lead(UPPER, r"\w") + r"(?<!\w['\u2019\-].)"
# A list holds at most 200 names before its "and": otherwise a run of "Aa, Aa, ..." or "A-A-A-..."
# with no "and" was read again, whole, from each of its words (19 s and 50 s for 100 KB).
LIST = re.compile(
    NAME_START + rf"[\w'\u2019\-]*+(?:,\s+{CAPITALISED}){{0,200}}+,?\s+(?:and|&)\s+{CAPITALISED}"
)
_FIRST = itemgetter(0)


def capitalised(word: str) -> bool:
    """Initial capital and not an acronym (SEO, API): names are written Natalia, not NATALIA."""
    return word[:1].isupper() and (len(word) == 1 or not word.isupper())


@dataclass(slots=True)
class Tokens:
    text: str
    words: list[str]
    lower: list[str]
    starts: list[int]  # where each word starts
    ends: list[int]  # and ends
    gaps: list[str]  # the text before each word, and after the last: gaps[i + 1] follows words[i]
    by_start: dict[int, int]
    capitalised: list[int]  # the indices of the words that capitalised accepts, in order
    lists: list[re.Match[str]]  # the matches of LIST, which two rules read

    @classmethod
    def of(cls, text: str) -> Tokens:
        # The lists are built by C loops (re.split, map, accumulate, compress), not by a Python loop
        # over finditer's match objects: a 10,000-character prompt has some 1,700 words, and each
        # Python-level pass over them costs about 0.1 ms.
        if text.isascii():
            split = _SPLIT_ASCII_TOKENS
        else:
            split = _SPLIT_BMP_TOKENS if bmp_only(text) else _SPLIT_TOKENS
        parts = split.split(text)  # gap, word, gap, word, ..., gap
        words, gaps = parts[1::2], parts[0::2]
        offsets = list(accumulate(map(len, parts)))  # where each part ends
        starts, ends = offsets[0:-1:2], offsets[1::2]
        # capitalised, tested in Python only for the words whose first letter is a capital
        capitalised = [
            index
            for index in compress(count(), map(str.isupper, map(_FIRST, words)))
            if len(words[index]) == 1 or not words[index].isupper()
        ]
        by_start = dict(zip(starts, count()))
        lower = list(map(str.lower, words))
        return cls(text, words, lower, starts, ends, gaps, by_start, capitalised, list(LIST.finditer(text)))

    def glued(self, index: int) -> bool:
        """Token index+1 continues a name: one space, or '. ' after an initial."""
        gap = self.gaps[index + 1]
        return gap in (" ", "  ") or (gap in (". ", ".") and len(self.words[index]) == 1)

    def at(self, position: int) -> int | None:
        while position < len(self.text) and self.text[position] in " \t\"'“":
            position += 1
        return self.by_start.get(position)

    def english_share(self, names: Gazetteer) -> float:
        lower = [word for word in self.words[:80] if word.islower() and word.isalpha()]
        if len(lower) < 4:
            return 1.0  # a signature or an address block: too little running text to judge
        return sum(names.is_english(word) for word in lower) / len(lower)
