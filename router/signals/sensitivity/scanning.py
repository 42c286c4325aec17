"""Helpers that keep the detectors' regular expressions cheap on long prompts, each finding exactly
what the plain pattern would (tests/test_sensitivity_speed_patterns.py compares the two).

Python's `re` searches a pattern that begins with a literal or a character class by skipping
ahead, in C, to the next character that can start a match (to a literal fastest); a pattern that
begins with a lookbehind, `\\b`, `^`, a group it cannot see into or, under IGNORECASE, a letter is
instead tried in full at every position of the text, 0.1-0.4 ms per pattern on an 8,000-character
prompt. So:

- `lead` and `word_start` write a leading lookbehind or `\\b` after the first character, where it
  reads the same character;
- `case_aligned` says when a case-insensitive pattern may be matched, lowercased, in the lowercased
  text, where its alternatives can begin with literals;
- `Prefiltered` tries a pattern only where a cheaper gate matches;
- `LineStarts` looks for a `(?m)^` pattern from each line break;
- `WordLed` tries a pattern that begins with one of a few words only where they stand;
- `DigitLed` tries a pattern that begins with a number only where a number begins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Protocol

import ahocorasick


def lead(first: str, not_after: str) -> str:
    """One `first` character (a single-character class or literal) that no `not_after` character
    precedes: `(?<!not_after)first`, written first-character-first as `first(?<!not_after first)`.
    Both read the same one character before the match, so the two match the same spans."""
    return f"{first}(?<!{not_after}{first})"


def word_start(first: str) -> str:
    """`\\bfirst` for a `first` of word characters only (a class of letters, digits or _, or a
    word), where `\\b` means that no word character precedes: a word boundary written after."""
    return lead(first, r"\w")


_DOTLESS_I, _LONG_S = "\u0131", "\u017f"


def case_aligned(text: str, lowered: str) -> bool:
    """Whether a case-insensitive pattern whose letters are lowercase ASCII (its classes blind to
    case: \\s, \\w, punctuation) matches `text` exactly where the same pattern, case-sensitive,
    matches `lowered`, which is text.lower(): unless lowering changed the length (İ is two
    characters lowered), every character lowers to one in the same place, a letter to a letter,
    and `re` matches a character to an ASCII letter under IGNORECASE just when it lowers to it,
    except the dotless i and the long s (matched to i and s, lowered to themselves). Matching
    lowercase text lets a pattern begin with a literal, which `re` skips ahead to; under IGNORECASE
    it cannot."""
    return len(lowered) == len(text) and _DOTLESS_I not in text and _LONG_S not in text


class Prefiltered:
    """`pattern.finditer(text)`, trying `pattern` only where a cheaper `gate` matches.

    `gate` must match, `back` characters after it (0: at the same place), wherever `pattern`
    matches, and begin with a literal or a class so that `re` skips ahead to its candidates:
    `pattern` without a leading `\\b` or lookbehind is such a gate, since leaving a condition out
    can only widen what matches. From where `finditer` would resume, the first gate hit (less
    `back`) is the first place `pattern` can match, so the matches are exactly `finditer`'s. An
    empty match (after which `finditer` resumes at the same place, allowing only a longer match
    there) hands over to `finditer` itself. The gate may search another text of the same length
    instead, the text lowercased (see case_aligned), where its positions are the text's.
    """

    __slots__ = ("back", "gate", "pattern")

    def __init__(self, pattern: re.Pattern[str], gate: re.Pattern[str], back: int = 0) -> None:
        self.pattern = pattern
        self.gate = gate
        self.back = back

    def finditer(self, text: str, gate_text: str | None = None) -> Iterator[re.Match[str]]:
        match, search, back = self.pattern.match, self.gate.search, self.back
        searched = text if gate_text is None else gate_text
        position, end = 0, len(text)
        while position <= end and (hit := search(searched, position + back)) is not None:
            start = hit.start() - back
            if start < position:  # a search from past the end is one from the end
                return
            found = match(text, start)
            if found is None:
                position = start + 1
            elif found.end() == start:
                yield from self.pattern.finditer(text, position)
                return
            else:
                yield found
                position = found.end()


class LineStarts:
    """`pattern.finditer(text)` for a `(?m)^...` pattern none of whose matches crosses a line break.

    `re` tries ^ at every position of the text; this finds the match at the start of the text,
    then the pattern's matches after each line break, a literal that `re` skips ahead to. Each
    line holds one match at most, so these are all of them. A match after a break begins with the
    break: read its groups, not its span.
    """

    __slots__ = ("after_break", "pattern")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        if not pattern.pattern.startswith("(?m)^"):
            raise ValueError(f"not a (?m)^ pattern: {pattern.pattern!r}")
        self.pattern = pattern
        self.after_break = re.compile("\n" + pattern.pattern.removeprefix("(?m)^"), pattern.flags)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        first = self.pattern.match(text)
        if first is not None:
            yield first
        yield from self.after_break.finditer(text)


class WordLed:
    """`pattern.finditer(text)` for a pattern every match of which begins with one of `words`.

    An alternation of words that begin with frequent letters ("is", "send", "corner", ...) is
    tried by `re` at nearly every position of the text, each word in turn (0.19 ms on a
    10,000-character prompt for twenty words); an Aho-Corasick automaton of the words
    (pyahocorasick, as gates.py) finds where they stand in one read (0.07 ms), and the pattern is
    matched only there. A match begins where one of its words stands, so from where `finditer`
    would resume, the first of those places where the pattern matches is where `finditer` finds
    its next match: the matches are exactly `finditer`'s (none is empty, as each begins with a
    word).
    """

    __slots__ = ("automaton", "pattern")

    def __init__(self, pattern: re.Pattern[str], words: Iterable[str]) -> None:
        self.pattern = pattern
        self.automaton = ahocorasick.Automaton()
        for word in words:
            if not word:
                raise ValueError("leading words are not empty")
            self.automaton.add_word(word, len(word))
        if len(self.automaton) == 0:
            raise ValueError("a pattern needs leading words")
        self.automaton.make_automaton()

    def finditer(self, text: str, searched: str | None = None) -> Iterator[re.Match[str]]:
        """The matches in `text`; the words are looked for in `searched` if given, another text of
        the same length (the text lowercased, where its positions are the text's: case_aligned)."""
        match = self.pattern.match
        position = 0
        # the automaton reports each word where it ends: a word's start is its end less its length
        words = self.automaton.iter(text if searched is None else searched)
        for start in sorted({end + 1 - length for end, length in words}):
            if start >= position and (found := match(text, start)) is not None:
                yield found
                position = found.end()


_RUN_START = re.compile(r"\d(?<!\d\d)")  # a digit that no digit precedes
_START = re.Match.start
# Past one run of digits in this many characters (a table of figures), a pattern's own scan costs
# less than matching it at every run from Python: over the digit detectors, the two cost the same at
# about one run in 25 characters, and matching at the runs costs 0.75 of the scans at one in 40-60.
_DENSE = 40
# the last text read and where its runs of digits begin (one tuple, replaced whole, as in gates.py)
_last_runs: tuple[str, list[int] | None] | None = None


def digit_runs(text: str) -> list[int] | None:
    """Where each run of digits (\\d) in `text` begins, in order; None where they are dense. The
    last text's are kept: every detector of numbers reads the same text in turn."""
    global _last_runs
    last = _last_runs
    if last is not None and last[0] is text:
        return last[1]
    most = len(text) // _DENSE
    starts = list(map(_START, islice(_RUN_START.finditer(text), most + 1)))
    kept = starts if len(starts) <= most else None
    _last_runs = (text, kept)
    return kept


class Finder(Protocol):
    def finditer(self, text: str) -> Iterator[re.Match[str]]: ...


class DigitLed:
    """`pattern.finditer(text)` for a pattern every match of which begins `back` characters before
    a digit (\\d) that no digit precedes, for one of the `back` values: with the default, a
    pattern led by scanning.lead(r"\\d", r"\\w"), which begins where a run of digits does;
    with 2, "\\b[A-Za-z]{2}\\d", whose digit no digit precedes either.

    A pattern led by a class is tried by `re` at each character of the class, but it reads every
    character on the way to them, about 0.06 ms for 10,000 characters; the detectors of numbers
    run a dozen such patterns over the same text. The runs of digits are found once (digit_runs),
    and each pattern is matched only where a match can begin: from where `finditer` would resume,
    the first of those places where the pattern matches is where `finditer` finds its next match
    (none is empty: each holds a digit). Where runs are dense, `dense` (default: the pattern)
    finds them, which must find the same.
    """

    __slots__ = ("backs", "dense", "pattern")

    def __init__(
        self, pattern: re.Pattern[str], back: tuple[int, ...] = (0,), dense: Finder | None = None
    ) -> None:
        self.pattern = pattern
        self.backs = back
        self.dense = dense or pattern

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        runs = digit_runs(text)
        if runs is None:
            yield from self.dense.finditer(text)
            return
        if self.backs == (0,):
            starts = runs
        else:
            starts = sorted({run - back for run in runs for back in self.backs if run >= back})
        match = self.pattern.match
        position = 0
        for start in starts:
            if start >= position and (found := match(text, start)) is not None:
                yield found
                position = found.end()

    def search(self, text: str) -> re.Match[str] | None:
        return next(self.finditer(text), None)
