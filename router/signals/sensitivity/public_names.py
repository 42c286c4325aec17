"""Names of well-known people and fictional characters: a question about them is not personal data.

"When was Angela Merkel born?" and "What is Harry Potter's criminal history?" name a public figure
and a character; a name alone cannot say so, so turnout looks the name up in lists built by others
from public sources, read at start-up through the dataset folders (router.datafiles) like
gitleaks' rules: Wikidata's most widely covered people (politicians, scientists, writers, artists:
each with more than 30 Wikipedia language links) and Wikidata's fictional characters, both as
collected by geru-scotland/lore-nexus (MIT; Wikidata is CC0), and fivethirtyeight's public figures
and comic characters (CC-BY-4.0). Without them (`python -m evals.datasets fetch wikidata-people
wikidata-fictional`), every name is treated as possibly private.

Only names of two words or more count, compared case-insensitively without accents and dots
("Robert Downey Jr" is "Robert Downey Jr."), and a name made only of very common first and last
names ("John Smith") is not taken from a list: too many private people share it.
"""

from __future__ import annotations

import gzip
import logging
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from router import datafiles

log = logging.getLogger("turnout.sensitivity")

# (local path in a mirror folder or the cache, whether it is the fivethirtyeight table)
SOURCES = (
    ("pii/wikidata_people_names.txt", False),
    ("pii/wikidata_fictional_names.txt", False),
    ("pii/public_figures.txt.gz", True),
)
_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")
MAX_WORDS = 5
_APOSTROPHE = "\u2019"  # a typographic apostrophe, read as '


def normalise(name: str) -> tuple[str, ...]:
    """The words of a name, lower case, without accents: the key names are compared by."""
    plain = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c)).replace(_APOSTROPHE, "'")
    return tuple(_WORD.findall(plain))


class PublicNames:
    def __init__(self, names: Iterable[str]) -> None:
        self._keys = frozenset(
            key for key in map(normalise, names) if 2 <= len(key) <= MAX_WORDS and not _generic(key)
        )

    def __len__(self) -> int:
        return len(self._keys)

    def known(self, text: str) -> bool:
        """Whether `text` (a found name, perhaps with a possessive or a following word) starts with
        a listed name of two words or more."""
        words = normalise(text)
        if words and words[-1] in ("s",):  # "Harry Potter's" splits as ... "potter", "s"
            words = words[:-1]
        words = tuple(w.removesuffix("'s") for w in words)
        return any(words[:size] in self._keys for size in range(2, min(len(words), MAX_WORDS) + 1))


# Given names and surnames so common that a list entry made only of them names many private
# people too (the most frequent US first names and surnames of the 2010 census).
_COMMON_FIRST = frozenset(
    [
        "james",
        "john",
        "robert",
        "michael",
        "william",
        "david",
        "richard",
        "joseph",
        "thomas",
        "charles",
        "christopher",
        "daniel",
        "matthew",
        "anthony",
        "mark",
        "donald",
        "steven",
        "paul",
        "andrew",
        "joshua",
        "mary",
        "patricia",
        "jennifer",
        "linda",
        "elizabeth",
        "barbara",
        "susan",
        "jessica",
        "sarah",
        "karen",
        "nancy",
        "lisa",
        "betty",
        "margaret",
        "sandra",
        "ashley",
        "dorothy",
        "kimberly",
        "emily",
        "donna",
        "michelle",
    ]
)
_COMMON_LAST = frozenset(
    [
        "smith",
        "johnson",
        "williams",
        "brown",
        "jones",
        "garcia",
        "miller",
        "davis",
        "rodriguez",
        "martinez",
        "hernandez",
        "lopez",
        "gonzalez",
        "wilson",
        "anderson",
        "thomas",
        "taylor",
        "moore",
        "jackson",
        "martin",
        "lee",
        "perez",
        "thompson",
        "white",
        "harris",
        "sanchez",
        "clark",
        "ramirez",
        "lewis",
        "robinson",
        "walker",
        "young",
        "allen",
        "king",
        "wright",
        "scott",
        "torres",
        "nguyen",
        "hill",
        "flores",
        "green",
        "adams",
    ]
)


def _generic(key: tuple[str, ...]) -> bool:
    return len(key) == 2 and key[0] in _COMMON_FIRST and key[1] in _COMMON_LAST


def _read(path: Path, table: bool) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if table:  # fivethirtyeight's table: name, kind, category, source, with a header
        return [line.split("\t")[0] for line in lines[1:]]
    return lines


@lru_cache(maxsize=1)
def public_names() -> PublicNames:
    """Every list found, merged; empty (logged once) when none is installed."""
    names: list[str] = []
    found = []
    for local_path, table in SOURCES:
        path = datafiles.find(local_path)
        if path is not None:
            names += _read(path, table)
            found.append(local_path)
    known = PublicNames(names)
    if found:
        log.info("public and fictional names: %d from %s", len(known), ", ".join(found))
    else:
        log.warning(
            "no list of public figures is installed (python -m evals.datasets fetch wikidata-people "
            "wikidata-fictional); names of well-known people count as personal data"
        )
    return known
