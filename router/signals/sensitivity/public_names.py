"""Names of well-known people and fictional characters: a question about them is not personal data.

"When was Angela Merkel born?" and "What is Harry Potter's criminal history?" name a public figure
and a character; a name alone cannot say so, so turnout looks the name up in lists built by others
from public sources. It ships the keys (below) of about 12,000 widely known people (heads of state,
politicians, scientists, philosophers, writers, artists) and about 26,000 distinct fictional
characters' names, both collected from Wikidata by geru-scotland/lore-nexus (MIT; Wikidata is CC0),
built into data/public_names.txt.gz by `python -m evals.training.build_public_names`, with the names
of Pantheon 1.0's 11,341 people (MIT Media Lab: everyone with a Wikipedia biography in more than 25
languages, founders, athletes, musicians and actors among them; CC0) in
data/public_names_pantheon.txt.gz, but for those a country's people commonly carry ("tom jones");
and it reads
fivethirtyeight's US public figures and comic characters (CC-BY-4.0) at start-up from a mirror
folder where there is one (router.datafiles), checked against its pinned sha256 like gitleaks' rules.

Only names of two words or more count, compared case-insensitively without accents, dots, hyphens
and possessives ("Robert Downey Jr" is "Robert Downey Jr."), and a name made only of very common
first and last names ("John Smith") is not taken from a list. The name detector (names.py) uses the
lists for a plain full name only, and only in a text that says nothing of people the writer deals
with (a possessive such as "my" or "our", or a role: name_cues.PERSONAL_WORDS) and holds no other
personal data, anywhere in the request (router.signals.collect): a private person who shares a
listed name is still found where the request ties them to the writer or says more about them.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from router import datafiles

log = logging.getLogger("turnout.sensitivity")

# the shipped keys, one per line, words joined by a space ("#" lines name the sources)
PACKAGED = Path(__file__).resolve().parents[1] / "data" / "public_names.txt.gz"
PACKAGED_PANTHEON = PACKAGED.with_name("public_names_pantheon.txt.gz")  # built from another source
# lists read from a mirror folder or the cache: (local path, its pinned sha256 (evals/datasets.json),
# whether it is the fivethirtyeight table); a file that is not the pinned version is not read
SOURCES = (
    ("pii/public_figures.txt.gz", "83a9443cded8325b194de9b5efb2fa5b80ed325ae51dafca1f50156ca1470428", True),
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")  # hyphens split: "Jean-Paul" is "jean", "paul"
MAX_WORDS = 5
_APOSTROPHE = "\u2019"  # a typographic apostrophe, read as '


def normalise(name: str) -> tuple[str, ...]:
    """The words of a name, lower case, without accents or a possessive: the key names are compared by."""
    plain = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c)).replace(_APOSTROPHE, "'")
    return tuple(word.removesuffix("'s") for word in _WORD.findall(plain))


def full_name_keys(names: Iterable[str]) -> Iterator[tuple[str, ...]]:
    """The key of each listed name that can be a full name: two words or more apart from hyphens
    ("Anne-Marie" or "Chun-Li" alone is a first name, never a public figure's full name), at most
    MAX_WORDS, and not made only of very common first and last names."""
    for name in names:
        if len(name.split()) >= 2 and _full(key := normalise(name)):
            yield key


def _full(key: tuple[str, ...]) -> bool:
    return 2 <= len(key) <= MAX_WORDS and not _generic(key)


class PublicNames:
    def __init__(self, names: Iterable[str], keys: Iterable[tuple[str, ...]] = ()) -> None:
        """`names` as listed; `keys` already normalised (the shipped list), filtered the same way."""
        self._keys = frozenset(full_name_keys(names)) | frozenset(filter(_full, keys))

    def __len__(self) -> int:
        return len(self._keys)

    def known(self, text: str) -> bool:
        """Whether `text` (a found name, perhaps with a possessive) is a listed name, word for word:
        "Robert Grant-Hughes" is not "Robert Grant"."""
        return normalise(text) in self._keys


# Given names and surnames so common that a list entry made only of them names many private
# people too (among the most frequent US given names and census surnames).
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


def _read(path: Path, sha256: str, table: bool) -> list[str]:
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("not the pinned version")
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    lines = data.decode("utf-8").splitlines()
    if table:  # fivethirtyeight's table: name, kind, category, source, with a header
        return [line.split("\t")[0] for line in lines[1:]]
    return lines


def read_keys(path: Path) -> list[tuple[str, ...]]:
    """The keys of a shipped file (gzipped, one per line, words joined by a space, "#" lines a header)."""
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return [tuple(line.split(" ")) for line in lines if line and not line.startswith("#")]


@lru_cache(maxsize=1)
def public_names() -> PublicNames:
    """The shipped keys and every list found, merged, read once per process (the detector reads them
    at start-up); empty (logged once) when there are none. A file that cannot be read or is not the
    pinned version is left out with a warning."""
    keys: list[tuple[str, ...]] = []
    names: list[str] = []
    found = []
    for packaged in (PACKAGED, PACKAGED_PANTHEON):
        try:
            keys += read_keys(packaged)
            found.append(packaged.name)
        except (OSError, ValueError, EOFError) as error:  # gzip and UTF-8 errors are ValueErrors
            log.warning("the shipped public figures (%s) are left out: %s", packaged, error)
    for local_path, sha256, table in SOURCES:
        path = datafiles.find(local_path)
        if path is None:
            continue
        try:
            names += _read(path, sha256, table)
        except (OSError, ValueError, EOFError) as error:
            log.warning("%s is left out of the public figures: %s", path, error)
            continue
        found.append(local_path)
    known = PublicNames(names, keys)
    if found:
        log.info("public and fictional names: %d from %s", len(known), ", ".join(found))
    else:
        log.warning("no list of public figures is found; names of well-known people count as personal data")
    return known
