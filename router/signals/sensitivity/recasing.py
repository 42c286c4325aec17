"""An all-lowercase text given capitals where its names are, so the name rules (names.py) can read it.

"send the draft to olga krylova" has no capital for a rule to start a name at; `recase` gives the
listed first names, the initials and surnames after them, and the words no dictionary knows after a
cue their capitals, keeping every offset, so a finding's span is the original text's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity import name_cues as cues
from router.signals.sensitivity.gazetteer import Gazetteer
from router.signals.sensitivity.name_tokens import TOKEN

_HONORIFICS = frozenset(cues.HONORIFICS)

_LOWER_WORDS = re.compile(r"([^\W\d_]+)(?: ([^\W\d_]+))?(?: ([^\W\d_]+))?")


def _after_cues(text: str, names: Gazetteer) -> Iterator[int]:
    """Starts of the words that no dictionary knows right after a cue: "add hatsuho yoneda as"."""
    for match in TOKEN.finditer(text):
        for _, pattern in cues.CUES_BY_WORD.get(match.group(), ()):
            cue = pattern.match(text, match.start())
            if cue is None:
                continue
            words = _LOWER_WORDS.match(text, cue.end())
            if words is None:
                continue
            for index in range(1, 4):
                word = words.group(index)
                if not word or not names.is_foreign(word) or (word == words.group(1) and index > 1):
                    break  # "with doo doo doo" is a tune, not a name
                yield words.start(index)
            break


def recase(text: str, names: Gazetteer) -> str | None:
    """An all-lowercase text with its names capitalised, offsets unchanged; None if none.

    "send the draft to olga krylova" is read as "send the draft to Olga Krylova": a listed first name or
    an honorific also capitalises an initial and a surname after it, and so do the words no
    dictionary knows after a cue or in a slot for a person, so the capitalised rules apply.
    """
    return "".join(chars) if (chars := _capitalise(text, _name_starts(text, names))) else None


def _capitalise(text: str, starts: Iterator[int]) -> list[str] | None:
    """text as characters with the letter at each start made a capital, or None if none changed."""
    chars = list(text)
    changed = False
    for start in starts:
        upper = text[start].upper()
        if len(upper) == 1:  # "ß" would become two letters and shift every offset after it
            chars[start] = upper
            changed = True
    return chars if changed else None


def _name_starts(text: str, names: Gazetteer) -> Iterator[int]:
    after_first = False
    for match in TOKEN.finditer(text):
        word = match.group()
        known = names.is_known(word)
        initial = after_first and len(word) == 1
        surname = after_first and (names.is_foreign(word) or names.in_last(word))
        if known or surname or initial:
            yield match.start()
        after_first = initial or (len(word) > 1 and (names.is_first(word) or word in _HONORIFICS))
    yield from _after_cues(text, names)
