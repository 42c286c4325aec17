"""What every parser produces (`Document`: a title and structural `Block`s), the one error a bad
file raises (`ParseError`, one line), text decoding without guessing, and the line-block helpers that
the text parsers share.
"""

from __future__ import annotations

import codecs
import enum
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_SNIFF = 8192  # binary detection looks for NUL bytes in this many leading bytes


class BlockKind(enum.StrEnum):
    HEADING = "heading"
    PARAGRAPH = "paragraph"
    CODE = "code"
    TABLE = "table"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    text: str
    level: int = 0  # heading level, 1 outermost
    page: int | None = None  # 1-based PDF page


@dataclass
class Document:
    title: str
    blocks: list[Block]
    warnings: list[str] = field(default_factory=list)  # parts skipped, e.g. a PDF page that failed


class ParseError(Exception):
    """Why a file was skipped: one line, what is wrong and what to do (the caller adds the path)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


Parser = Callable[[bytes, str, str | None], Document]  # (data, fallback title, encoding)


def decode_text(data: bytes, encoding: str | None = None) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with a BOM, newlines normalised; never a guess."""
    if encoding:
        codec, label, tried = encoding, encoding, f"--encoding {encoding}"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec, label, tried = "utf-16", "UTF-16", "a UTF-16 BOM"
    elif b"\x00" in data[:_SNIFF]:
        raise ParseError(f"binary file (NUL bytes in the first {_SNIFF // 1024} KiB)")
    else:
        codec, label, tried = "utf-8-sig", "UTF-8", "tried utf-8, utf-8-sig, utf-16 with BOM"
    try:
        text = data.decode(codec)
    except LookupError as exc:
        raise ParseError(f"unknown encoding {codec!r}; pass a Python codec name to --encoding") from exc
    except UnicodeDecodeError as exc:
        raise ParseError(f"not {label} at byte {exc.start} ({tried}); convert it or pass --encoding") from exc
    if "\x00" in text[:_SNIFF]:
        raise ParseError(f"binary file (NUL characters after decoding as {label})")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# --- shared line-block helpers -----------------------------------------------------------------------

_LIST_ITEM = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,9}[.)]|#\.)\s+")
_TABLE_RULE = re.compile(r"^\s*(?:\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?|\+[-=+]+|=+(?:\s+=+)+)\s*$")


class LineBlocks:
    """Collects the lines of the current paragraph and classifies it when a blank line ends it."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.lines: list[str] = []

    def flush(self) -> None:
        text = "\n".join(self.lines).strip()
        if text:
            self.blocks.append(Block(classify_lines(self.lines), text))
        self.lines = []

    def add(self, kind: BlockKind, text: str, level: int = 0) -> None:
        self.flush()
        text = " ".join(text.split()) if kind is BlockKind.HEADING else text.strip("\n").rstrip()
        if text.strip():
            self.blocks.append(Block(kind, text, level))

    def first_heading(self, level: int | None = None) -> str | None:
        for block in self.blocks:
            if block.kind is BlockKind.HEADING and level in (None, block.level):
                return block.text
        return None


def classify_lines(lines: list[str]) -> BlockKind:
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith(("|", "+-", "+=")) or any(_TABLE_RULE.match(line) for line in lines[:3]):
        return BlockKind.TABLE
    return BlockKind.LIST if _LIST_ITEM.match(first) else BlockKind.PARAGRAPH


def paragraphs(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"\n[ \t]*\n", text) if part.strip()]
