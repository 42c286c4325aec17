"""The person-name gazetteer and English vocabulary behind router.signals.sensitivity.names, loaded once.

data/names.txt.gz holds the first and last names of Faker's Latin-script locales (Faker, MIT
license; Cyrillic names transliterated), Faker's frequent English words and a full English word
list (SCOWL via Debian wamerican), built by `python -m evals.training.build_names`. Loading is lazy
and cached for the life of the process; nothing here may import faker or re-read the file per scan.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import cache
from pathlib import Path

GAZETTEER = Path(__file__).resolve().parents[1] / "data" / "names.txt.gz"


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words, in order: keeps long word lists readable in source."""
    return tuple(text.split())


# English words that Faker also lists as names, plus function words: never a name without a cue.
_EXTRA_COMMON = _words("""
a an and are as at be but by can could did do does for from had has have he her here him his how i
if in into is it its me my no not of on or our she so than that the their them then there these they
this those to up us was we were what when where which who why will with would you your yes ok okay
please thanks hi hello hey dear mr mrs ms dr prof sir madam miss god lord king queen prince princess
saint st santa january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday spring summer autumn winter christmas
easter north south east west north-east new old big little young long short grand great high low
mark bill will sue pat max rich frank jack guy art rose grace hope faith joy ruby amber jade crystal
page case wood stone hill field brook lake river bay green brown black white gray grey gold silver
penny sunny honey candy cherry daisy lily iris ivy holly olive hazel violet dawn eve star sky rain
storm chase hunter cash price sterling royal major general doctor nurse judge pilot baker cook
california carolina virginia georgia florida dakota washington lincoln jackson madison austin dallas
houston denver phoenix china india paris london berlin sydney victoria florence jordan israel
america europe asia africa australia canada england france germany italy spain japan russia english
french german spanish italian chinese japanese russian christian muslim jewish catholic python java
ruby rust swift julia go perl scala kotlin dart haskell lisp ada apple amazon google microsoft
oracle tesla ford dell mercedes jaguar mustang harley hermes nike apollo mars venus jupiter saturn
neptune mercury pluto luna sol aurora nova orion atlas titan echo delta alpha beta gamma sigma omega
kappa theta zeta san santa santo sao são los las el la le les de del della di da do dos das du van
von der den ter ten saint fort port mount lake glen
""")
_ENGLISH_SUFFIXES = (
    "tion",
    "sion",
    "ment",
    "ness",
    "ity",
    "ous",
    "ive",
    "able",
    "ible",
    "ful",
    "less",
    "ism",
    "ance",
    "ence",
    "ical",
    "ize",
    "ise",
    "ing",
    "ings",
    "ed",
    "ly",
    "ship",
    "ware",
    "ology",
    "ers",
    "ies",
)


@dataclass(frozen=True, slots=True)
class Gazetteer:
    first: frozenset[str]
    last: frozenset[str]
    common: frozenset[str]  # frequent words: veto a first-name reading
    english: frozenset[str]  # any dictionary word: no evidence of a surname

    def is_first(self, word: str) -> bool:
        key = _key(word)
        return key in self.first and key not in self.common

    def in_first(self, word: str) -> bool:
        """Listed as a first name, even if also an everyday word (Mark, Rose): for strong cues."""
        return _key(word) in self.first

    def in_last(self, word: str) -> bool:
        return _key(word) in self.last

    def is_common(self, word: str) -> bool:
        """An English word rather than a name; listed surnames win, so Young and Baker stay names."""
        key = _key(word)
        if key in self.last:
            return False
        return key in self.common or key in self.english or key.endswith(_ENGLISH_SUFFIXES)

    def is_known(self, word: str) -> bool:
        """A listed first name, or a listed surname that is not also an everyday word."""
        key = _key(word)
        if key in self.common:
            return False
        return key in self.first or (key in self.last and key not in self.english)

    def is_english(self, lower_word: str) -> bool:
        """Cheap membership test for an already lowercased word."""
        return lower_word in self.english or lower_word in self.common

    def reads_english(self, lower_word: str) -> bool:
        """A dictionary word, a frequent one, or one ending like an English word (hashed, nullable):
        a listed surname that is also a word (Strong, Young) still reads as English here."""
        return self.is_english(lower_word) or lower_word.endswith(_ENGLISH_SUFFIXES)

    def near_english(self, lower_word: str) -> bool:
        """A dictionary word mistyped: one letter added, dropped, changed or two swapped
        ("incorect", "mandatroy", "temporay") from a word of five letters or more, or one with its
        repeated letters run together ("wronggg"). A word of more than 24 letters is not read (its
        edits would cost milliseconds; a mistyped word is shorter)."""
        if len(lower_word) > 24:
            return False
        collapsed = "".join(c for i, c in enumerate(lower_word) if i == 0 or c != lower_word[i - 1])
        if collapsed != lower_word and (self.is_english(collapsed) or self._one_edit(collapsed)):
            return True
        return self._one_edit(lower_word)

    def _one_edit(self, word: str) -> bool:
        letters = "abcdefghijklmnopqrstuvwxyz"
        splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
        edits = {a + b[1:] for a, b in splits if b}
        edits |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        edits |= {a + c + b[1:] for a, b in splits if b for c in letters}
        edits |= {a + c + b for a, b in splits for c in letters}
        return any(len(edit) >= 5 and edit in self.english for edit in edits if edit != word)

    def is_foreign(self, word: str) -> bool:
        """Not an English word at all: in English text, a capitalised one is most likely a name."""
        key = _key(word)
        if len(key) < 3 or "'" in key or key in self.common or key in self.english:
            return False
        if "-" in key:
            return all(self.is_foreign(part) for part in key.split("-"))
        return not key.endswith(_ENGLISH_SUFFIXES) and not _camel_case(word)


def _key(word: str) -> str:
    """Casefolded, without a possessive 's: Region's is looked up as region."""
    key = word.casefold().replace("\u2019", "'")
    return key[:-2] if key.endswith("'s") else key


def _camel_case(word: str) -> bool:
    """AdminRights, ForegroundColor: identifiers. McDonald, DeVito, LeBlanc: names."""
    inner = [index for index, char in enumerate(word) if index > 0 and char.isupper()]
    return any(word[index - 1].islower() and word[:index] not in _NAME_PREFIXES for index in inner)


_NAME_PREFIXES = frozenset(("Mc", "Mac", "De", "Di", "Da", "La", "Le", "Van", "Von", "Du", "St", "Fitz"))


@cache
def gazetteer() -> Gazetteer:
    sections: dict[str, set[str]] = {"first": set(), "last": set(), "common": set(), "english": set()}
    current = sections["first"]
    with gzip.open(GAZETTEER, "rt", encoding="utf-8") as lines:
        for line in lines:
            word = line.strip()
            if word.startswith("# "):
                continue  # a notice, not a section
            if word.startswith("#"):
                current = sections[word[1:]]
            elif word:
                current.add(word)
    common = frozenset(sections["common"] | set(_EXTRA_COMMON))
    return Gazetteer(
        frozenset(sections["first"]), frozenset(sections["last"]), common, frozenset(sections["english"])
    )
