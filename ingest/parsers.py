"""Turn one source file into a `Document`: a title and a flat list of structural blocks.

Parsers keep structure (headings, paragraphs, code, tables, lists, PDF pages) and nothing else: token
bounds are the chunker's business. A bad file (unreadable, binary, corrupt, encrypted, too big, not
UTF-8) raises `ParseError` and nothing else, whose message is one line saying what is wrong and what
to do, so `ingest` can print `path: message` and go on. Parsers never guess an encoding: latin-1
garbage in the index is worse than a skipped file.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import partial
from pathlib import Path

from ingest.document import (
    Block,
    BlockKind,
    Document,
    LineBlocks,
    ParseError,
    Parser,
    classify_lines,
    decode_text,
    one_line,
    paragraphs,
)
from ingest.markup import parse_docx, parse_html, parse_pdf

__all__ = [
    "MAX_FILE_BYTES",
    "SUFFIXES",
    "Block",
    "BlockKind",
    "Document",
    "ParseError",
    "decode_text",
    "parse_bytes",
    "parse_file",
    "supported",
]

MAX_FILE_BYTES = 50 * 2**20
_SNIFF = 8192  # binary detection looks for NUL bytes in this many leading bytes
_CSV_ROWS = 10  # rows per CSV block (the header is repeated in each) ...
_CSV_CHARS = 600  # ... or fewer, when the rows are wide


def parse_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES, encoding: str | None = None) -> Document:
    """Read `path` once (never more than `max_bytes` + 1 bytes) and parse it by its suffix."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise ParseError(f"unreadable ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise ParseError(f"file over the {_size(max_bytes)} limit (--max-file-mb)")
    return parse_bytes(data, path.suffix, path.name, encoding=encoding)


def parse_bytes(data: bytes, suffix: str, name: str, *, encoding: str | None = None) -> Document:
    """Parse `data` as a file called `name` with `suffix` (".md", ".pdf", ...); pure."""
    parser = SUFFIXES.get(suffix.lower())
    if parser is None:
        raise ParseError(f"unsupported file type {suffix or '(no suffix)'!r}")
    fallback = name if parser in _NAME_TITLED else Path(name).stem  # "app.py" says more than "app"
    if not data:
        return Document(fallback, [])
    try:
        return parser(data, fallback, encoding)
    except ParseError:
        raise
    except Exception as exc:  # a library's own failure on a bad file is still just a skipped file
        raise ParseError(f"could not parse {suffix} file: {one_line(exc)}") from exc


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit}-byte"


# --- plain text and Markdown -------------------------------------------------------------------------


def _parse_text(data: bytes, fallback: str, encoding: str | None) -> Document:
    out = LineBlocks()
    for part in paragraphs(decode_text(data, encoding)):
        out.lines = part.split("\n")
        out.flush()
    return Document(fallback, out.blocks)


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_BREAK = re.compile(r"^ {0,3}([*_])(?:[ \t]*\1){2,}[ \t]*$")
_FRONT_TITLE = re.compile(r"""^title:[ \t]*(["']?)(.+?)\1[ \t]*$""", re.MULTILINE)


def _parse_markdown(data: bytes, fallback: str, encoding: str | None) -> Document:
    lines = decode_text(data, encoding).split("\n")
    title, i = _front_matter(lines)
    out = LineBlocks()
    while i < len(lines):
        line, i = lines[i], i + 1
        if (match := _FENCE.match(line)) and not (match[1][0] == "`" and "`" in match[2]):
            end = _fence_end(lines, i, match[1])  # nothing inside a fence is a heading
            out.add(BlockKind.CODE, "\n".join(lines[i - 1 : end]))
            i = end
        elif line.startswith(("    ", "\t")) and line.strip() and not out.lines and not _after_list(out):
            code, i = _indented(lines, i - 1, 3)
            out.add(BlockKind.CODE, code)
        elif match := _ATX.match(line):
            out.add(BlockKind.HEADING, match[2] or "", len(match[1]))
        elif (
            (match := _SETEXT.match(line)) and out.lines and classify_lines(out.lines) is BlockKind.PARAGRAPH
        ):
            text, out.lines = " ".join(out.lines), []
            out.add(BlockKind.HEADING, text, 1 if match[1][0] == "=" else 2)
        elif not line.strip() or _SETEXT.match(line) or _BREAK.match(line):
            out.flush()  # a blank line or a thematic break ends the paragraph
        else:
            out.lines.append(line)
    out.flush()
    return Document(title or out.first_heading(1) or fallback, out.blocks)


def _fence_end(lines: list[str], i: int, fence: str) -> int:
    """The index after the closing fence, or the end of the file: an unclosed fence runs on."""
    for j in range(i, len(lines)):
        closing = lines[j].strip()
        if closing.startswith(fence) and not closing.strip(fence[0]):
            return j + 1
    return len(lines)


def _after_list(out: LineBlocks) -> bool:
    """Indented lines after a list item continue the item rather than start a code block."""
    return bool(out.blocks) and out.blocks[-1].kind is BlockKind.LIST


def _front_matter(lines: list[str]) -> tuple[str | None, int]:
    """YAML front matter's title (if any) and the index of the first line after it."""
    if not lines or lines[0].strip() != "---":
        return None, 0
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            match = _FRONT_TITLE.search("\n".join(lines[1:index]))
            return (match[2].strip() if match else None), index + 1
    return None, 0  # no closing line: not front matter after all


# --- reStructuredText --------------------------------------------------------------------------------

_ADORNMENT = re.compile(r"^([!-/:-@\[-`{-~])\1+[ \t]*$")
_CODE_DIRECTIVE = re.compile(r"^\s*\.\.\s+(?:code-block|code|sourcecode)::")
_EXPLICIT = re.compile(r"^\s*\.\.(?:\s|$)")


def _parse_rst(data: bytes, fallback: str, encoding: str | None) -> Document:
    lines = decode_text(data, encoding).split("\n")
    out, i = LineBlocks(), 0
    styles: dict[tuple[str, bool], int] = {}  # adornment style -> level, in order of first appearance
    while i < len(lines):
        line, after = lines[i], lines[i + 1 : i + 3]
        heading = None if out.lines else _rst_heading(line, after)
        if heading:
            text, style, used = heading
            out.add(BlockKind.HEADING, text, styles.setdefault(style, len(styles) + 1))
            i += used
        elif _CODE_DIRECTIVE.match(line):
            out.flush()
            code, i = _indented(lines, i + 1, _indent(line), skip_options=True)
            out.add(BlockKind.CODE, code)
        elif not out.lines and _ADORNMENT.match(line):
            i += 1  # a transition (a line of punctuation between paragraphs)
        elif _EXPLICIT.match(line):
            out.flush()  # comments, targets and other directives: their content stays as text
            i += 1
        elif line.strip():
            out.lines.append(line)
            i += 1
        else:
            literal = bool(out.lines) and out.lines[-1].rstrip().endswith("::")
            base = _indent(out.lines[0]) if out.lines else 0
            if literal:  # as docutils renders it: "Example::" -> "Example:"; "Example ::", "::" -> ""
                out.lines[-1] = re.sub(r"\s*::$", "", re.sub(r"(\S)::\s*$", r"\1:", out.lines[-1]))
            out.flush()
            i += 1
            if literal:
                code, i = _indented(lines, i, base)
                out.add(BlockKind.CODE, code)
    out.flush()
    return Document(out.first_heading() or fallback, out.blocks)


def _rst_heading(line: str, after: list[str]) -> tuple[str, tuple[str, bool], int] | None:
    """(title, adornment style, lines used) when a section title starts at `line`."""
    over = _ADORNMENT.match(line)
    if over and len(after) == 2 and after[0].strip() and after[1].rstrip() == line.rstrip():
        return after[0].strip(), (over[1], True), 3
    if not line.strip() or line[0].isspace() or over or not after:
        return None
    under = _ADORNMENT.match(after[0])
    if under and (len(after[0].rstrip()) >= min(len(line.rstrip()), 3)) and after[0].strip() != "::":
        return line.strip(), (under[1], False), 2
    return None


def _indent(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.lstrip())


def _indented(lines: list[str], i: int, base: int, *, skip_options: bool = False) -> tuple[str, int]:
    """The block indented deeper than `base` starting at line `i` (dedented), and the line after it."""
    body: list[str] = []
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
        body.append(lines[i].expandtabs(4))
        i += 1
    if skip_options:  # ":linenos:" and friends directly under the directive
        while body and body[0].strip().startswith(":"):
            body.pop(0)
    depth = min((_indent(line) for line in body if line.strip()), default=0)
    return "\n".join(line[depth:] for line in body).strip("\n"), i


# --- source code and data ----------------------------------------------------------------------------

_CLOSER = re.compile(r"^(?:[)\]}]|end\b|#endif)")


def _parse_code(data: bytes, fallback: str, encoding: str | None) -> Document:
    """One block per top-level unit: a non-indented line after a blank line starts the next one."""
    out, blank = LineBlocks(), False
    unit: list[str] = []
    for line in decode_text(data, encoding).split("\n"):
        if blank and line[:1] not in ("", " ", "\t") and not _CLOSER.match(line):
            out.add(BlockKind.CODE, "\n".join(unit))
            unit = []
        unit.append(line)
        blank = not line.strip()
    out.add(BlockKind.CODE, "\n".join(unit))
    return Document(fallback, out.blocks)


def _parse_json(data: bytes, fallback: str, encoding: str | None) -> Document:
    text = decode_text(data, encoding)
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        doc = _parse_code(data, fallback, encoding)
        doc.warnings.append(f"not valid JSON ({one_line(exc)}); indexed as plain text")
        return doc
    if isinstance(value, dict):
        parts = [f"{json.dumps(key, ensure_ascii=False)}: {_pretty(item)}" for key, item in value.items()]
    else:
        parts = [_pretty(item) for item in value] if isinstance(value, list) else [_pretty(value)]
    out = LineBlocks()
    for part in parts:
        out.add(BlockKind.CODE, part)
    return Document(fallback, out.blocks)


def _parse_jsonl(data: bytes, fallback: str, encoding: str | None) -> Document:
    out = LineBlocks()
    for line in decode_text(data, encoding).split("\n"):
        try:
            out.add(BlockKind.CODE, _pretty(json.loads(line)) if line.strip() else "")
        except (ValueError, RecursionError):
            out.add(BlockKind.CODE, line)  # a bad record is still text worth finding
    return Document(fallback, out.blocks)


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _parse_csv(data: bytes, fallback: str, encoding: str | None, delimiter: str = ",") -> Document:
    """Groups of a few rows, each group headed by the header row so it reads on its own."""
    text = decode_text(data, encoding)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        doc = _parse_code(data, fallback, encoding)
        doc.warnings.append(f"malformed CSV ({one_line(exc)}); indexed as plain text")
        return doc
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return Document(fallback, [])
    header, out = " | ".join(rows[0]), LineBlocks()
    group: list[str] = []
    for row in rows[1:]:
        group.append(" | ".join(row))
        if len(group) >= _CSV_ROWS or sum(map(len, group)) >= _CSV_CHARS:
            out.add(BlockKind.TABLE, "\n".join([header, *group]))
            group = []
    if group or len(rows) == 1:
        out.add(BlockKind.TABLE, "\n".join([header, *group]))
    return Document(fallback, out.blocks)


_parse_tsv = partial(_parse_csv, delimiter="\t")
_CODE_SUFFIXES = (
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".kt", ".scala",
    ".swift", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".cs", ".rb", ".php", ".pl", ".lua", ".r",
    ".sh", ".bash", ".zsh", ".ps1", ".sql", ".proto", ".graphql", ".css", ".scss", ".vue", ".svelte",
    ".tf", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".xml",
)  # fmt: skip

SUFFIXES: dict[str, Parser] = {
    **dict.fromkeys((".md", ".markdown", ".mdx"), _parse_markdown),
    **dict.fromkeys((".txt", ".text"), _parse_text),
    ".rst": _parse_rst,
    **dict.fromkeys((".html", ".htm", ".xhtml"), parse_html),
    ".pdf": parse_pdf,
    ".docx": parse_docx,
    ".json": _parse_json,
    ".jsonl": _parse_jsonl,
    ".csv": _parse_csv,
    ".tsv": _parse_tsv,
    **dict.fromkeys(_CODE_SUFFIXES, _parse_code),
}
_NAME_TITLED = {_parse_code, _parse_json, _parse_jsonl, _parse_csv, _parse_tsv}
