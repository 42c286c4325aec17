"""Every detector's gate words, found in a text in one read.

A detector runs its costly patterns only on a text that holds one of its words ("pass" before the
password rules, gitleaks' keywords before its rules, "passport" before the licence numbers). Each
such test, `word in lowered`, reads the whole text when the word is not there, as it mostly is not:
about 5 us for 8,000 characters, and the detectors hold about 400 words between them, 1.2 ms
together on the longest benchmark prompts. An Aho-Corasick automaton of every registered word
(pyahocorasick, which is what gitleaks' own keyword prefilter is) finds all of those a text holds in
one read, 0.11 ms there; the words found in the last text are kept, so every detector asks of the
same text for the price of that one read.

A `Gate` is a detector's set of words, registered when it is made (at import, or when gitleaks'
rules load): `gate.found(lowered)` is the gate's words that `lowered` holds, substrings as `in`
finds them, and `gate.open(lowered)` whether it holds any.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import ahocorasick

_lock = threading.Lock()  # registering words, and building the automaton from them
_words: set[str] = set()
_version = 0  # counts registrations: an automaton or a kept result of an older one is not used
_automaton: tuple[int, ahocorasick.Automaton] | None = None
# the last text read and the registered words it holds (one tuple, replaced whole: a reader in
# another thread sees the old one or the new one, never half of each)
_last: tuple[int, str, frozenset[str]] | None = None


class Gate:
    """A detector's gate words (lowercase), found by the one shared read of a text."""

    __slots__ = ("words",)

    def __init__(self, words: Iterable[str]) -> None:
        global _version
        self.words = frozenset(words)
        if "" in self.words or any(word != word.lower() for word in self.words):
            raise ValueError("gate words are lowercase and not empty")
        with _lock:
            if not self.words <= _words:
                _words.update(self.words)
                _version += 1

    def found(self, lowered: str) -> frozenset[str]:
        """The gate's words that `lowered` (a lowercased text) holds."""
        return self.words & _present(lowered)

    def open(self, lowered: str) -> bool:
        """Whether `lowered` holds any of the gate's words."""
        return not self.words.isdisjoint(_present(lowered))


def _present(lowered: str) -> frozenset[str]:
    global _automaton, _last
    last, version = _last, _version
    if last is not None and last[0] == version and (last[1] is lowered or last[1] == lowered):
        return last[2]
    if not _words:
        return frozenset()  # an automaton of no words cannot be read
    built = _automaton
    if built is None or built[0] != version:
        with _lock:
            automaton = ahocorasick.Automaton()
            for word in _words:
                automaton.add_word(word, word)
            automaton.make_automaton()
            built = _automaton = (_version, automaton)
    found = frozenset(word for _, word in built[1].iter(lowered))
    _last = (built[0], lowered, found)
    return found
