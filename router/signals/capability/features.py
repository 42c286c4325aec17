"""Hashed sparse features of a prompt, shared by training and by the runtime classifier.

A prompt becomes a handful of (index, value) pairs: lowercased word unigrams and bigrams, L2
normalised as one block, plus indicator cues for the shapes that separate code and math from prose
(braces, operators, fences, digits, length, line structure), each hashed with zlib.crc32 into a
fixed space of 2**bits slots. This module must never use Python's salted hash() or any state that
differs between processes: a model trained in one process is scored in another, so the same text
must give the same features everywhere. Any change to what it computes must bump FEATURES_VERSION,
which makes every older artifact refuse to load.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Iterable
from itertools import filterfalse

import numpy as np
import numpy.typing as npt

# 2: the meaning vector (router.signals.capability.meaning) beside the hashed features; 3: and the
# meaning vector of the prompt's first sentence beside that (Meaning.pair)
FEATURES_VERSION = 3
DEFAULT_HASH_BITS = 18

# Word features only look at the head of a prompt so that latency stays bounded on pasted documents;
# the length cues still see the whole text.
MAX_WORD_CHARS = 2000
# Cues are few and always present; at full scale a linear model leans on them as source detectors
# (every short open prompt looked like creative writing) instead of on the words.
CUE_SCALE = 0.3

_WORD = re.compile(r"[a-z0-9_']+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_SYMBOLS = "{}()[];=+-*/^<>$\\#%|&:_`~@\"'!?"
_OPERATORS = ("```", "==", "!=", "<=", ">=", "->", "=>", "::", "**", "//", "&&", "||", "+=", "\\frac", "\\(")
_OPERATOR_NAMES = {op: f"op:{op}" for op in _OPERATORS}
_CODE_LINE = re.compile(
    r"^\s*(def|class|import|from|return|for|while|if|function|const|let|var|#include|public|fn)\b"
)
_INDENTED = re.compile(r"^(    |\t)\S")
_CHOICE = re.compile(r"^\s*\(?[A-Da-d][.)]\s", re.M)

# Function words carry no task as unigrams, but their counts differ by source (CLINC's "i", MMLU's
# "of the") and linear models latch onto that; they still appear inside bigrams ("how many").
_STOPWORD_TEXT = """
a an the of in on at to for from by with and or but is are was were be been am i me my we our you
your he she it its they them their this that these those there here as so do does did have has had
not no can could would should will shall may might must just very also than then too
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())

Features = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


def _bucket(count: int) -> int:
    """Log2 bucket, so a linear model can weigh 'a few' and 'many' differently: 1 + floor(log2),
    which for a positive int is its bit length (exact, where a float's log2 might round)."""
    return 0 if count <= 0 else min(count.bit_length(), 8)


# Digits become 0s: the number's shape matters for math, its value does not. A token holds ASCII
# digits only, so mapping them before splitting gives the same tokens as mapping each token after.
_ZERO_DIGITS = str.maketrans("123456789", "000000000")


def word_tokens(lowered: str) -> list[str]:
    tokens = _WORD.findall(lowered)
    if not tokens:
        return tokens
    # The tokens mapped as one string: they are ASCII without spaces, which str.translate maps in
    # its fast ASCII path and split(" ") takes apart again; the text itself, when it holds any other
    # character, is translated a character at a time (0.04 ms of a 2,000-character head).
    return " ".join(tokens).translate(_ZERO_DIGITS).split(" ")


def word_features(lowered: str) -> list[str]:
    tokens = word_tokens(lowered[:MAX_WORD_CHARS])
    # by C loops (map, filterfalse) rather than comprehensions: a third less on a prompt's words
    names = set(map("w:".__add__, filterfalse(STOPWORDS.__contains__, tokens)))
    names.update(map("b:{} {}".format, tokens, tokens[1:]))
    if tokens:
        names.add("first:" + tokens[0])
    return sorted(names)


def cue_features(text: str) -> list[tuple[str, float]]:
    """Shape cues as (name, value): indicators are 1.0, sizes are log-scaled to about [0, 2].

    Only what is present becomes a cue ("no digits" is not one): absence cues fire on nearly every
    prompt of some sources and turned into source detectors that outvoted the words.
    """
    head = text[:MAX_WORD_CHARS]
    lines = head.splitlines()
    words = len(text.split())
    numbers = len(_NUMBER.findall(head))
    # Length means different things in a multiple-choice question and in an open one.
    shape = "choice" if len(_CHOICE.findall(head)) >= 2 else "open"
    names = [f"words:{_bucket(words)}", f"words10:{shape}:{min(words // 10, 30)}"]
    if shape == "choice":
        names.append("shape:choice")
    if len(lines) > 1:
        names.append(f"lines:{_bucket(len(lines))}")
    if numbers:
        # In ASCII, where the digits are 0-9 only, ten counts in C read the head fastest (a fifth of
        # the time); else each character's isdigit (as a generator of c.isdigit(), in a third less).
        digits = sum(map(head.count, "0123456789")) if head.isascii() else sum(map(str.isdigit, head))
        names += [f"nums:{_bucket(numbers)}", f"digitshare:{min(int(20 * digits / max(len(head), 1)), 5)}"]
    names.extend(f"sym:{ch}:{_bucket(head.count(ch))}" for ch in _SYMBOLS if ch in head)
    names.extend(_OPERATOR_NAMES[op] for op in _OPERATORS if op in head)
    code_lines = sum(map(bool, map(_CODE_LINE.match, lines)))  # C loops, not a generator
    if code_lines:
        names.append(f"codelines:{_bucket(code_lines)}")
    indented = sum(map(bool, map(_INDENTED.match, lines)))
    if indented:
        names.append(f"indented:{_bucket(indented)}")
    if text.rstrip().endswith("?"):
        names.append("ends:?")
    sizes = [
        (f"size:{shape}:words", math.log1p(words) / 4),
        (f"size:{shape}:numbers", math.log1p(numbers) / 2),
        (f"size:{shape}:sentences", math.log1p(head.count(". ") + head.count("? ")) / 2),
    ]
    return [(name, 1.0) for name in names] + [(name, value) for name, value in sizes if value]


def length_cue_names() -> list[str]:
    """Every length cue `cue_features` can emit; training hides them from the category model.

    Length told the sources apart (CLINC is short, Arena long) rather than the tasks, so a short
    question on any topic came out simple_chat; difficulty keeps them (longer problems are harder).
    """
    names = [f"words:{b}" for b in range(9)]
    for shape in ("choice", "open"):
        names += [f"words10:{shape}:{n}" for n in range(31)]
        names += [f"size:{shape}:{what}" for what in ("words", "numbers", "sentences")]
    return ["c:" + name for name in names]


def slots(names: list[str], bits: int = DEFAULT_HASH_BITS) -> npt.NDArray[np.int64]:
    return np.array(_hashes(names), dtype=np.int64) & ((1 << bits) - 1)


def _hashes(names: Iterable[str]) -> list[int]:
    """Each name's crc32 (of its UTF-8, str.encode's default), by C loops: a Python call per name
    costs twice as much over a prompt's few hundred names."""
    return list(map(zlib.crc32, map(str.encode, names)))


def featurize(text: str, bits: int = DEFAULT_HASH_BITS) -> Features:
    """(indices, values) of `text` in a space of 2**bits slots; indices may repeat (values then add)."""
    words = word_features(text.lower())
    cues = cue_features(text)
    share = 1.0 / math.sqrt(len(words)) if words else 0.0
    # Built as lists and turned into arrays once: per-element numpy writes cost more than these.
    indices = _hashes(words) + _hashes("c:" + name for name, _ in cues)
    values = [share] * len(words) + [CUE_SCALE * value for _, value in cues]
    return np.array(indices, dtype=np.int64) & ((1 << bits) - 1), np.array(values, dtype=np.float32)
