"""Cut a parsed `Document` into pieces that fit the embedder's window.

Structure first: blocks are grouped under their heading path (and PDF page) while the group fits, and
never across a heading or a page. Then the token bound: a block too big on its own is cut at sentence
ends, then lines, then words (then characters, for a pathological word) into windows that repeat up
to `overlap` tokens of the previous window. Every piece this returns satisfies
`count_tokens(piece.text) <= max_tokens`; pieces are exact substrings of the parsed text, carry no
heading prefix (the embedding text is built elsewhere), and the output is a pure function of the input.

Token counts are taken per block or per sentence and summed (exact for the word-piece tokenizer, where
whitespace never forms a token), then every piece assembled from several parts is counted once more;
one that overflows is re-cut with a smaller budget, so a tokenizer that is not additive costs
time, never the bound.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ingest.document import Block, BlockKind, Document

# recorded in the manifest: bump it whenever the pieces for a file change (v2: PDFs read by PDFium,
# with paragraph breaks; v3: a file of headings alone is chunked as its headings, and a file's
# repeated chunks are stored once)
CHUNKER_VERSION = "v3"

CountTokens = Callable[[str], int]

_SENTENCE = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+|\n[ \t]*\n\s*")
_LINE = re.compile(r"\n")
_WORD = re.compile(r"\S+")
# A level is a separator, or a number of words per unit: counting runs of 8 words rather than each
# word costs a few tokens of fill per window and saves most of the tokenizer calls on long sentences.
Level = re.Pattern[str] | int
_PROSE: tuple[Level, ...] = (_SENTENCE, _LINE, 8, 1)
_CODE: tuple[Level, ...] = (_LINE, 8, 1)  # code and tables: sentences mean nothing there
_CHARS_PER_TOKEN = 16  # a block longer than this many characters per allowed token is cut unmeasured
_MAX_CUT_CHARS = 32  # the character cut never looks further than this per allowed token


@dataclass(frozen=True, slots=True)
class Piece:
    text: str
    headings: tuple[str, ...]  # heading path, outermost first
    page: int | None  # 1-based PDF page
    position: int  # index of the piece within its document


@dataclass(frozen=True, slots=True)
class _Limits:
    count: CountTokens
    max_tokens: int
    overlap: int


def chunk_document(
    doc: Document, count_tokens: CountTokens, *, max_tokens: int = 200, overlap: int = 32
) -> list[Piece]:
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise ValueError(f"overlap must be at least 0 and below max_tokens ({max_tokens}), not {overlap}")
    limits = _Limits(count_tokens, max_tokens, overlap)
    pieces: list[Piece] = []
    for headings, page, blocks in _sections(doc.blocks):
        for text in _section_texts(blocks, limits):
            if text := text.strip():
                pieces.append(Piece(text, headings, page, len(pieces)))
    if not pieces:  # headings and nothing under them: the headings are the text (they were dropped)
        titles = [block for block in doc.blocks if block.kind is BlockKind.HEADING and block.text.strip()]
        if titles:
            joined = Block(BlockKind.PARAGRAPH, "\n".join(block.text.strip() for block in titles))
            for text in _section_texts([joined], limits):
                pieces.append(Piece(text, (), titles[0].page, len(pieces)))
    return pieces


def _sections(blocks: list[Block]) -> Iterator[tuple[tuple[str, ...], int | None, list[Block]]]:
    """Runs of non-heading blocks that share a heading path and a page, with that path and page."""
    path: list[tuple[int, str]] = []
    body: list[Block] = []
    for block in blocks:
        heading = block.kind is BlockKind.HEADING
        if body and (heading or block.page != body[0].page):
            yield tuple(text for _, text in path), body[0].page, body
            body = []
        if heading:  # a heading of level L replaces the headings at level L and deeper
            path = [(level, text) for level, text in path if level < block.level]
            path.append((block.level, block.text))
        else:
            body.append(block)
    if body:
        yield tuple(text for _, text in path), body[0].page, body


def _section_texts(blocks: list[Block], limits: _Limits) -> list[str]:
    """Consecutive blocks that fit are packed together; a block that does not fit is cut alone."""
    out: list[str] = []
    run: list[tuple[str, int]] = []
    for block in blocks:
        too_long = len(block.text) > _CHARS_PER_TOKEN * limits.max_tokens  # no need to count it
        tokens = limits.max_tokens + 1 if too_long else limits.count(block.text)
        if tokens <= limits.max_tokens:
            run.append((block.text, tokens))
            continue
        out.extend(_pack(run, limits.max_tokens, limits))
        run = []
        levels = _CODE if block.kind in (BlockKind.CODE, BlockKind.TABLE) else _PROSE
        out.extend(_split(block.text, levels, limits.max_tokens, limits))
    out.extend(_pack(run, limits.max_tokens, limits))
    return out


def _pack(items: list[tuple[str, int]], budget: int, limits: _Limits) -> list[str]:
    """Greedy groups of whole blocks (each fits alone) joined by blank lines, each checked once."""
    groups: list[list[tuple[str, int]]] = []
    total = 0
    for text, tokens in items:
        if not groups or total + tokens > budget:
            groups.append([])
            total = 0
        groups[-1].append((text, tokens))
        total += tokens
    out: list[str] = []
    for group in groups:
        text = "\n\n".join(part for part, _ in group)
        excess = limits.count(text) - limits.max_tokens if len(group) > 1 else 0
        if excess <= 0:
            out.append(text)
        else:  # the tokenizer is not additive here: regroup tighter (a lone block always fits)
            estimate = sum(tokens for _, tokens in group)
            out.extend(_pack(group, _tighter(budget, estimate, excess + limits.max_tokens, limits), limits))
    return out


def _split(text: str, levels: tuple[Level, ...], budget: int, limits: _Limits) -> list[str]:
    """Windows of `text` estimated at <= `budget` tokens, each verified against max_tokens."""
    units = _units(text, 0, len(text), levels, budget, limits.count)
    out: list[str] = []
    for start, end, estimate, parts in _windows(text, units, budget, limits):
        window = text[start:end]
        actual = estimate if parts == 1 else limits.count(window)  # a lone unit was counted exactly
        if actual <= limits.max_tokens:
            out.append(window)
            continue
        smaller = _tighter(budget, estimate, actual, limits)
        if smaller < 1:
            raise ValueError(f"cannot fit text into max_tokens={limits.max_tokens} with this tokenizer")
        out.extend(_split(window, levels, smaller, limits))
    return out


def _tighter(budget: int, estimate: int, actual: int, limits: _Limits) -> int:
    """A budget under which the parts that summed to `estimate` but counted `actual` regroup smaller."""
    return min(estimate - 1, budget * limits.max_tokens // actual)


def _units(
    text: str, start: int, end: int, levels: tuple[Level, ...], budget: int, count: CountTokens
) -> list[tuple[int, int, int]]:
    """(start, end, tokens) spans of text[start:end], each <= budget, cut as coarsely as possible.

    Called only on text known to be over `budget`, so a level that finds no boundary is skipped
    without counting the same text again.
    """
    if not levels:
        return _cut(text, start, end, budget, count)
    spans = _spans(text, start, end, levels[0])
    if len(spans) == 1:
        return _units(text, spans[0][0], spans[0][1], levels[1:], budget, count)
    out: list[tuple[int, int, int]] = []
    for left, right in spans:
        tokens = count(text[left:right])
        if tokens <= budget:
            out.append((left, right, tokens))
        else:
            out.extend(_units(text, left, right, levels[1:], budget, count))
    return out


def _spans(text: str, start: int, end: int, separator: Level) -> list[tuple[int, int]]:
    """The non-blank stretches of text[start:end] between matches of `separator`, or its runs of
    `separator` words."""
    if isinstance(separator, int):
        words = list(_WORD.finditer(text, start, end))
        runs = range(0, len(words), separator)
        return [(words[i].start(), words[min(i + separator, len(words)) - 1].end()) for i in runs]
    spans: list[tuple[int, int]] = []
    position = start
    for match in separator.finditer(text, start, end):
        if text[position : match.start()].strip():
            spans.append((position, match.start()))
        position = match.end()
    if text[position:end].strip():
        spans.append((position, end))
    return spans


def _cut(text: str, start: int, end: int, budget: int, count: CountTokens) -> list[tuple[int, int, int]]:
    """The last resort for one enormous word: long prefixes that fit, guessing 4 characters a token."""
    out: list[tuple[int, int, int]] = []
    while start < end:

        def prefix(chars: int, at: int = start) -> int:
            return count(text[at : at + chars])

        found = _longest(min(end - start, _MAX_CUT_CHARS * budget), 4 * budget, budget, prefix)
        if found is None:
            tokens = count(text[start : start + 1])
            if tokens > budget:
                raise ValueError(f"one character is over a budget of {budget} tokens")
            found = (1, tokens)
        out.append((start, start + found[0], found[1]))
        start += found[0]
    return out


def _windows(
    text: str, units: list[tuple[int, int, int]], budget: int, limits: _Limits
) -> list[tuple[int, int, int, int]]:
    """Greedy (start, end, estimated tokens, parts) windows over `units`; each new window opens
    with the longest word-aligned tail of the previous one that is <= overlap tokens."""
    windows: list[tuple[int, int, int, int]] = []
    start = end = tokens = parts = 0
    for left, right, size in units:
        if parts and tokens + size > budget:
            windows.append((start, end, tokens, parts))
            tail = _tail(text, start, end, min(limits.overlap, budget - size), tokens, limits.count)
            start, tokens, parts = (tail[0], tail[1], 1) if tail else (left, 0, 0)
        if not parts:
            start = left
        end, tokens, parts = right, tokens + size, parts + 1
    if parts:
        windows.append((start, end, tokens, parts))
    return windows


def _tail(
    text: str, start: int, end: int, limit: int, tokens: int, count: CountTokens
) -> tuple[int, int] | None:
    """(offset, tokens) of a run of whole words ending at `end` with <= `limit` tokens, near `limit`.

    Never the whole window: the next piece must not contain this one.
    """
    starts = [match.start() for match in _WORD.finditer(text, start, end)]
    if limit <= 0 or len(starts) < 2:
        return None
    guess = len(starts) * limit // max(tokens, 1)  # the window's own tokens-per-word ratio
    found = _longest(len(starts) - 1, guess, limit, lambda words: count(text[starts[-words] : end]))
    return (starts[-found[0]], found[1]) if found else None


def _longest(most: int, guess: int, limit: int, size: Callable[[int], int]) -> tuple[int, int] | None:
    """(k, size(k)) for a k in 1..most close to the largest with size(k) <= limit, or None.

    `size` never shrinks as k grows. Starting from a good guess, a few proportional corrections and
    then bisection get close without the dozen counts of a plain binary search.
    """
    best: tuple[int, int] | None = None
    over = most + 1  # the smallest k known not to fit
    k = max(1, min(most, guess))
    for _ in range(5):
        tokens = size(k)
        if tokens <= limit:
            best = (k, tokens)
        else:
            over = k
        if best is None:
            k = min(k - 1, k * limit // tokens)
        elif over > most:
            k = min(most, max(k + 1, k * limit // max(tokens, 1)))
        else:
            k = (best[0] + over) // 2
        if k < 1 or k >= over or (best is not None and k <= best[0]):
            break
    return best
