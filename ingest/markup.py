"""Parsers for markup and binary formats: HTML (stdlib html.parser), PDF (PDFium, page by page) and
DOCX (python-docx). Each turns a library's failure on a bad file into a one-line `ParseError`.
"""

from __future__ import annotations

import io
import re
import threading
from html.parser import HTMLParser
from itertools import groupby
from typing import Any

from ingest.document import (
    Block,
    BlockKind,
    Document,
    LineBlocks,
    ParseError,
    decode_text,
    one_line,
    paragraphs,
)

# --- HTML --------------------------------------------------------------------------------------------

_BR, _CELL = "\x00", "\x01"  # <br>/<tr> and <td> in collected text (the page's own are replaced)
_HTML_SKIP = {"script", "style", "nav", "head", "noscript", "template", "svg"}
_HTML_BLOCKS = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "ul", "ol",
    "dl", "dt", "dd", "figure", "figcaption", "form", "hr", "body", "li", "caption", "pre", "table",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip


class _HTMLBlocks(HTMLParser):
    """Text between block-level tags becomes one block; the tag that opened it sets the kind."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out, self.title, self.text, self.skip = LineBlocks(), "", list[str](), list[str]()
        self.kind, self.level, self.items, self.in_title = BlockKind.PARAGRAPH, 0, 0, False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.in_title = True
        elif tag == "body" and "head" in self.skip:  # a <head> nobody closed
            self.skip.remove("head")
        elif tag in _HTML_SKIP:
            self.skip.append(tag)
        elif self.kind is BlockKind.TABLE:  # inside a table only rows and cells matter
            self.text.append(_BR if tag == "tr" else _CELL if tag in ("td", "th") else " ")
        elif tag == "br":
            self.text.append(_BR)
        elif tag in _HTML_BLOCKS:
            self.end_text()
            self.items += tag == "li"
            kinds = {"pre": BlockKind.CODE, "table": BlockKind.TABLE, "li": BlockKind.LIST}
            self.kind = (
                BlockKind.HEADING if tag[0] == "h" and tag[1:].isdigit() else kinds.get(tag, self.kind)
            )
            self.level = int(tag[1]) if self.kind is BlockKind.HEADING else 0

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        elif tag in self.skip:
            del self.skip[len(self.skip) - 1 - self.skip[::-1].index(tag) :]
        elif tag in _HTML_BLOCKS and (self.kind is not BlockKind.TABLE or tag == "table"):
            self.end_text()
            self.items -= tag == "li" and self.items > 0
            self.kind, self.level = BlockKind.LIST if self.items else BlockKind.PARAGRAPH, 0

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title += data
        elif not self.skip:
            self.text.append(data.replace(_BR, " ").replace(_CELL, " "))

    def end_text(self) -> None:
        text, self.text = "".join(self.text), []
        if self.kind is BlockKind.CODE:
            self.out.add(self.kind, text.replace(_BR, "\n"))
            return
        lines = [[" ".join(cell.split()) for cell in line.split(_CELL)] for line in text.split(_BR)]
        rows = [" | ".join(cells[1:] if cells[0] == "" and len(cells) > 1 else cells) for cells in lines]
        self.out.add(self.kind, "\n".join(row for row in rows if row.strip(" |")), self.level)


def parse_html(data: bytes, fallback: str, encoding: str | None) -> Document:
    parser = _HTMLBlocks()
    parser.feed(decode_text(data, encoding))
    parser.close()
    parser.end_text()
    title = " ".join(parser.title.split())
    return Document(title or parser.out.first_heading(1) or fallback, parser.out.blocks)


# --- PDF and DOCX ------------------------------------------------------------------------------------


def parse_pdf(data: bytes, fallback: str, encoding: str | None) -> Document:
    """Text page by page with PDFium (pypdfium2): the same text as pypdf here, ~11x faster, which
    matters when parsing shares two cores with the embedder (20 real PDF manuals: 0.45 s vs 5.0 s)."""
    import pypdfium2 as pdfium

    with _PDFIUM:
        try:
            pdf = pdfium.PdfDocument(data)  # an owner-only password still opens
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise ParseError("encrypted PDF (needs a password); decrypt it first") from exc
            raise ParseError(f"corrupt PDF: {one_line(exc)}") from exc
        try:
            title = (pdf.get_metadata_value("Title") or "").strip()
            doc = Document(title or fallback, [])
            for number in range(1, len(pdf) + 1):
                try:
                    text = _page_text(pdf, number - 1)
                except Exception as exc:
                    doc.warnings.append(
                        f"page {number}: text extraction failed ({one_line(exc)}); page skipped"
                    )
                    continue
                doc.blocks.extend(Block(BlockKind.PARAGRAPH, part, page=number) for part in paragraphs(text))
            if len(pdf) and not doc.blocks:
                doc.warnings.append("no extractable text (a scanned PDF?); run OCR on it first")
        finally:
            pdf.close()
    return doc


_PDFIUM = threading.Lock()  # PDFium is not thread-safe; ingest parses in one thread anyway


def _page_text(pdf: Any, index: int) -> str:
    """The page's text with a blank line wherever the gap to the next line says a paragraph (or a
    heading, or a code block) ends: a top-to-top pitch over 1.5 line heights, or a jump back up
    the page (a new column). PDFs have no paragraph marks; without these breaks a page of running
    text would reach the chunker as one block."""
    page = pdf[index]
    try:
        textpage = page.get_textpage()
        try:
            return _paragraphed(textpage)
        finally:
            textpage.close()
    finally:
        page.close()


def _paragraphed(textpage: Any) -> str:
    text: str = textpage.get_text_range()
    count = textpage.count_chars()
    lines = text.split("\r\n")  # PDFium's generated line breaks, each counted as two characters
    if len(text) != count:  # offsets would not match the characters: no paragraph breaks then
        return "\n".join(lines).replace("\r", "").replace("\x00", "")
    out: list[str] = []
    previous = None
    offset = 0
    for line in lines:
        indent = len(line) - len(line.lstrip())
        if line.strip():
            box = textpage.get_charbox(offset + indent, loose=True)  # (left, bottom, right, top)
            if previous is not None:
                pitch = previous[3] - box[3]
                height = max(min(box[3] - box[1], previous[3] - previous[1]), 1.0)
                if pitch > 1.5 * height or pitch < -0.5 * height:
                    out.append("")
            previous = box
        out.append(line.replace("\r", ""))
        offset += len(line) + 2
    return "\n".join(out).replace("\x00", "")


def parse_docx(data: bytes, fallback: str, encoding: str | None) -> Document:
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        content = list(document.iter_inner_content())
        title = document.core_properties.title or ""
    except Exception as exc:
        raise ParseError(f"corrupt DOCX: {one_line(exc)}") from exc
    out = LineBlocks()
    for item in content:
        if isinstance(item, Table):
            # a merged cell repeats across its span in python-docx: keep it once
            rows = [
                [text for text, _ in groupby(cell.text.strip() for cell in row.cells)] for row in item.rows
            ]
            out.add(BlockKind.TABLE, "\n".join(" | ".join(row) for row in rows if any(row)))
            continue
        style = item.style.name if item.style is not None and item.style.name else ""
        if style == "Title":
            title = title or item.text.strip()
        elif match := re.fullmatch(r"Heading ?(\d*)", style):
            out.add(BlockKind.HEADING, item.text, int(match[1] or 1))
        else:
            out.add(BlockKind.LIST if style.startswith("List") else BlockKind.PARAGRAPH, item.text)
    return Document(title.strip() or out.first_heading(1) or fallback, out.blocks)
