"""In-memory Okapi BM25 over chunks: the keyword half of hybrid retrieval.

Text is cut into Unicode words, lowercased, stripped of a short English stopword list and stemmed
(Porter's algorithm, written out below: no new dependency). Code identifiers are kept whole and also
split (`max_tokens` → `max_tokens`, `max`, `token`; `HTTPServer` → `httpserver`, `http`, `server`),
so a query may name either. The index is a term → postings matrix in CSR form whose entries are the
precomputed BM25 impact of a term in a chunk, so a query is a few numpy slices and one partial sort.
It never persists anything and never calls a model: the store stays the source of truth.
"""

from __future__ import annotations

import itertools
import re
from array import array
from collections.abc import Callable, Iterable
from functools import lru_cache

import numpy as np

from rag.types import Chunk, Filter, Hit

_WORD = re.compile(r"\w+")
_PART = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_ASCII_LETTERS = re.compile(r"[a-z]+")

_STOPWORDS = """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves"""
STOPWORDS = frozenset(_STOPWORDS.split())


# --- Porter stemmer (M. F. Porter, 1980), for lowercase ASCII words --------------------------------


def _consonant(word: str, i: int) -> bool:
    char = word[i]
    if char in "aeiou":
        return False
    if char == "y":
        return i == 0 or not _consonant(word, i - 1)
    return True


def _measure(stem: str) -> int:
    """Porter's m: the number of vowel→consonant transitions in the stem ([C](VC)^m[V])."""
    m, previous_vowel = 0, False
    for i in range(len(stem)):
        vowel = not _consonant(stem, i)
        if previous_vowel and not vowel:
            m += 1
        previous_vowel = vowel
    return m


def _has_vowel(stem: str) -> bool:
    return any(not _consonant(stem, i) for i in range(len(stem)))


def _double_consonant(word: str) -> bool:
    return len(word) > 1 and word[-1] == word[-2] and _consonant(word, len(word) - 1)


def _cvc(word: str) -> bool:
    n = len(word)
    return (
        n >= 3
        and _consonant(word, n - 3)
        and not _consonant(word, n - 2)
        and _consonant(word, n - 1)
        and word[-1] not in "wxy"
    )


_STEP2 = (
    ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
    ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
    ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
    ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
    ("logi", "log"),
)  # fmt: skip
_STEP3 = (
    ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
    ("ness", ""),
)  # fmt: skip
_STEP4 = (
    "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion", "ou",
    "ism", "ate", "iti", "ous", "ive", "ize",
)  # fmt: skip


def _replace(word: str, rules: Iterable[tuple[str, str]], min_m: int) -> str:
    for suffix, replacement in rules:
        if word.endswith(suffix):
            stem = word[: -len(suffix)]
            return stem + replacement if _measure(stem) > min_m else word
    return word


def _step1(word: str) -> str:
    if word.endswith("sses") or word.endswith("ies"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if word.endswith("eed"):
        return word[:-1] if _measure(word[:-3]) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and _has_vowel(word[: -len(suffix)]):
            word = word[: -len(suffix)]
            if word.endswith(("at", "bl", "iz")):
                return word + "e"
            if _double_consonant(word) and word[-1] not in "lsz":
                return word[:-1]
            if _measure(word) == 1 and _cvc(word):
                return word + "e"
            return word
    return word


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Porter stem of a lowercase ASCII word; other words come back unchanged."""
    if len(word) <= 2 or not _ASCII_LETTERS.fullmatch(word):
        return word
    word = _step1(word)
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    word = _replace(word, _STEP2, 0)
    word = _replace(word, _STEP3, 0)
    for suffix in _STEP4:
        if word.endswith(suffix):
            stem_ = word[: -len(suffix)]
            if _measure(stem_) > 1 and (suffix != "ion" or stem_.endswith(("s", "t"))):
                word = stem_
            break
    if word.endswith("e"):
        stem_ = word[:-1]
        m = _measure(stem_)
        if m > 1 or (m == 1 and not _cvc(stem_)):
            word = stem_
    if word.endswith("ll") and _measure(word) > 1:
        word = word[:-1]
    return word


# --- tokenizer --------------------------------------------------------------------------------------


@lru_cache(maxsize=200_000)  # bounded: ids and hashes make vocabularies unbounded
def _word_terms(word: str) -> tuple[str, ...]:
    """The index terms of one raw `\\w+` word (original case, so camelCase can be seen)."""
    lower = word.lower()
    parts = _PART.findall(word) if word.isascii() else [part for part in word.split("_") if part]
    if len(parts) <= 1:
        if lower in STOPWORDS or not lower.strip("_"):
            return ()
        return (stem(lower.strip("_")),)
    terms = [lower.strip("_")]
    for part in parts:
        part = part.lower()
        if part not in STOPWORDS and (len(part) > 1 or part.isdigit()):
            terms.append(stem(part))
    return tuple(terms)


def tokenize(text: str) -> list[str]:
    """Index terms of a text, in order (repeats kept: they are term frequencies)."""
    return list(itertools.chain.from_iterable(map(_word_terms, _WORD.findall(text))))


class _WordIds(dict[str, tuple[int, ...]]):
    """Whitespace-separated token → term ids, for one index; a miss tokenises the token (`\\w+` never
    spans whitespace, so this is `tokenize` with one dict lookup per token) and grows the vocabulary."""

    def __init__(self, vocab: dict[str, int]) -> None:
        super().__init__()
        self.vocab = vocab

    def __missing__(self, token: str) -> tuple[int, ...]:
        vocab = self.vocab
        terms = itertools.chain.from_iterable(map(_word_terms, _WORD.findall(token)))
        ids = self[token] = tuple(vocab.setdefault(term, len(vocab)) for term in terms)
        return ids


# --- index ------------------------------------------------------------------------------------------


class BM25Index:
    """Okapi BM25 over chunks, with adjacent-term pairs ("text complet") as extra terms.

    Pairs are the cheap form of term proximity (the sequential dependence model's ordered window of
    two): a chunk that says "Text Completions API" outranks one that says "text" and "API" far apart.
    `add` only tokenises (into one flat array of term ids); `build`, run by the next `search` when
    needed, makes the postings with one sort of (term, chunk) keys, never per-term Python loops.
    Postings hold the precomputed BM25 impact of their term in their chunk, so a query is a few numpy
    slices and one partial sort.
    """

    max_key = 2**63  # (largest term code + 1) << chunk bits must fit an int64 sort key

    def __init__(
        self,
        chunks: Iterable[Chunk] = (),
        *,
        k1: float = 1.2,
        b: float = 0.75,
        pair_weight: float = 1.0,
        text: Callable[[Chunk], str] | None = None,
    ) -> None:
        if text is None:
            from rag.retrieve import passage_text  # index exactly the text that ingest embeds

            text = passage_text
        self.k1, self.b, self.pair_weight = k1, b, pair_weight
        self._text = text
        self.chunks: list[Chunk] = []
        self._by_id: dict[str, Chunk] | None = None
        self._vocab: dict[str, int] = {}
        self._word_ids = _WordIds(self._vocab)
        self._flat = array("i")  # every chunk's term ids, one after the other
        self._lengths = array("i")  # terms per chunk
        self._dirty = True
        self._masks: dict[Filter, np.ndarray] = {}
        self._words = 0  # vocabulary size when the postings were built
        self._pair_table: np.ndarray | None = None  # sorted pair codes, when they were renumbered
        self._codes = np.zeros(0, dtype=np.int64)  # sorted term codes that have postings
        self._ptr = np.zeros(1, dtype=np.int64)
        self._docs = np.zeros(0, dtype=np.int32)
        self._impact = np.zeros(0, dtype=np.float32)
        self.add(chunks)

    def __len__(self) -> int:
        return len(self.chunks)

    def chunk(self, chunk_id: str) -> Chunk | None:
        """The indexed chunk with this id (a dict built on first use), or None."""
        if self._by_id is None or len(self._by_id) != len(self.chunks):
            self._by_id = {chunk.id: chunk for chunk in self.chunks}
        return self._by_id.get(chunk_id)

    def add(self, chunks: Iterable[Chunk]) -> None:
        lookup, flat, text = self._word_ids.__getitem__, self._flat, self._text
        for chunk in chunks:
            before = len(flat)
            flat.extend(itertools.chain.from_iterable(map(lookup, text(chunk).split())))
            self._lengths.append(len(flat) - before)
            self.chunks.append(chunk)
        self._dirty = True
        self._masks.clear()

    def build(self) -> None:
        """Postings sorted by term code then chunk, with their BM25 impacts (idf × saturated tf).

        A word's code is its id; the pair (a, b) has code `words + a × words + b`, or, when the
        (code, chunk) key would overflow an int64, `words + ` its rank among the pairs present.
        """
        n_docs, words = len(self.chunks), len(self._vocab)
        shift = max(n_docs - 1, 1).bit_length()  # key = code << shift | chunk
        lengths = np.frombuffer(self._lengths, dtype=np.int32).copy()  # no view may pin the array
        ids = np.frombuffer(self._flat, dtype=np.int32).astype(np.int64)
        docs = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
        same = docs[1:] == docs[:-1]
        pairs = ids[:-1][same] * words + ids[1:][same]
        self._pair_table = None
        if (words + words * words + 1) << shift >= self.max_key:
            self._pair_table, pairs = np.unique(pairs, return_inverse=True)
        keys = np.concatenate((ids << shift | docs, (words + pairs.reshape(-1)) << shift | docs[1:][same]))
        del ids, pairs, docs, same
        keys.sort()
        first = np.flatnonzero(np.diff(keys, prepend=-1))  # keys are >= 0: the first one counts
        tf = np.diff(np.append(first, len(keys))).astype(np.float32)
        keys = keys[first]
        self._docs = (keys & ((1 << shift) - 1)).astype(np.int32)
        codes = keys >> shift
        row_start = np.flatnonzero(np.diff(codes, prepend=-1))
        self._codes, self._words = codes[row_start], words
        self._ptr = np.append(row_start, len(codes))
        df = np.diff(self._ptr)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))  # Lucene's idf: never negative
        idf[self._codes >= words] *= self.pair_weight
        avg = max(float(lengths.mean()), 1.0) if n_docs else 1.0
        norm = (self.k1 * (1.0 - self.b + self.b * lengths / avg)).astype(np.float32)
        tf_part = tf * np.float32(self.k1 + 1.0) / (tf + norm[self._docs])
        self._impact = np.repeat(idf.astype(np.float32), df) * tf_part
        self._dirty = False

    def _rows(self, query: str) -> np.ndarray:
        """Posting rows of the query's words and adjacent pairs (each once)."""
        words = self._words
        ids = [self._vocab.get(term, -1) for term in tokenize(query)]
        pairs = np.array(
            [a * words + b for a, b in itertools.pairwise(ids) if a >= 0 and b >= 0], dtype=np.int64
        )
        ids = [i for i in ids if i >= 0]
        if self._pair_table is not None and len(pairs):
            at = np.minimum(np.searchsorted(self._pair_table, pairs), len(self._pair_table) - 1)
            pairs = np.where(self._pair_table[at] == pairs, at, -1 - words)  # -1: matches no code
        codes = np.unique(np.concatenate((np.array(ids, dtype=np.int64), words + pairs)))
        rows = np.minimum(np.searchsorted(self._codes, codes), max(len(self._codes) - 1, 0))
        return rows[self._codes[rows] == codes] if len(self._codes) else rows[:0]

    def _mask(self, where: Filter) -> np.ndarray:
        mask = self._masks.get(where)
        if mask is None:
            if len(self._masks) >= 64:
                self._masks.clear()
            mask = np.fromiter((where.admits(c) for c in self.chunks), dtype=bool, count=len(self.chunks))
            self._masks[where] = mask
        return mask

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk for `query` (zero where no term matches)."""
        if self._dirty:
            self.build()
        scores = np.zeros(len(self.chunks), dtype=np.float32)
        for row in self._rows(query).tolist():
            start, end = self._ptr[row], self._ptr[row + 1]
            scores[self._docs[start:end]] += self._impact[start:end]  # a row's chunks are unique
        return scores

    def search(self, query: str, k: int = 10, where: Filter | None = None) -> list[Hit]:
        """The k best chunks that share at least one term with the query, best first."""
        if k <= 0 or not self.chunks:
            return []
        scores = self.scores(query)
        if where is not None:
            scores[~self._mask(where)] = 0.0
        top = np.flatnonzero(scores)  # (introselect crawls over long runs of equal zeros)
        if len(top) > k:
            top = top[np.argpartition(-scores[top], k - 1)[:k]]
        top = top[np.lexsort((top, -scores[top]))]  # ties: insertion order
        return [Hit(self.chunks[i], float(scores[i])) for i in top.tolist()]
