"""Parsing and chunking for `ingest`: real files in tmp_path, the real word-piece tokenizer."""

from __future__ import annotations

import io
import itertools
import json
import random
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.chunker import CHUNKER_VERSION, Piece, chunk_document
from ingest.parsers import (
    SUFFIXES,
    Block,
    BlockKind,
    Document,
    ParseError,
    parse_bytes,
    parse_file,
    supported,
)

H, P, C, T, L = BlockKind.HEADING, BlockKind.PARAGRAPH, BlockKind.CODE, BlockKind.TABLE, BlockKind.LIST


@pytest.fixture(scope="module")
def count() -> Callable[[str], int]:
    from rag.embed import wordpiece_tokenizer

    tokenizer = wordpiece_tokenizer()
    assert tokenizer is not None, "the packaged all-MiniLM-L6-v2 tokenizer.json is missing"
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def shape(doc: Document) -> list[tuple[BlockKind, int, str]]:
    return [(block.kind, block.level, block.text) for block in doc.blocks]


def make_pdf(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A real PDF whose pages show `pages` (one text line per string) in Helvetica."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    for lines in pages:
        page = writer.add_blank_page(612, 792)
        font = DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
        fonts = DictionaryObject({NameObject("/F1"): font})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        shown = " ".join(f"({line or ' '}) Tj T*" for line in lines)  # "( )" leaves a blank line
        stream = DecodedStreamObject()
        stream.set_data(f"BT /F1 12 Tf 14 TL 72 720 Td {shown} ET".encode("latin-1"))
        page.replace_contents(stream)
    if title:
        writer.add_metadata({"/Title": title})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


# --- formats -----------------------------------------------------------------------------------------

MARKDOWN = """---
title: "Deploying: the guide"
tags: [ops]
---
Intro paragraph
on two lines.

Setext one
==========

## Install ##

- first item
- second item

| a | b |
|---|---|
| 1 | 2 |

```python
# not a heading
def f():

    return 1
```

Sub heading
-----------

~~~
## still code
~~~

    indented = "code"

***
Last words.
"""


def test_markdown_structure(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "deploy.md", MARKDOWN))
    assert doc.title == "Deploying: the guide"
    assert shape(doc) == [
        (P, 0, "Intro paragraph\non two lines."),
        (H, 1, "Setext one"),
        (H, 2, "Install"),
        (L, 0, "- first item\n- second item"),
        (T, 0, "| a | b |\n|---|---|\n| 1 | 2 |"),
        (C, 0, "```python\n# not a heading\ndef f():\n\n    return 1\n```"),
        (H, 2, "Sub heading"),
        (C, 0, "~~~\n## still code\n~~~"),
        (C, 0, 'indented = "code"'),
        (P, 0, "Last words."),
    ]


def test_a_file_of_headings_alone_is_chunked_as_its_headings(
    tmp_path: Path, count: Callable[[str], int]
) -> None:
    """A trial's Markdown file that was one heading gave no chunk, and a search for its words found nothing."""
    only = parse_file(write(tmp_path, "zebra.md", "# Zebra migration plan\n\n## Phase two\n"))
    pieces = chunk_document(only, count)
    assert [piece.text for piece in pieces] == ["Zebra migration plan\nPhase two"]
    assert chunk_document(parse_file(write(tmp_path, "empty.md", "\n\n")), count) == []
    body = chunk_document(parse_file(write(tmp_path, "body.md", "# Title\n\ntext")), count)
    assert [(piece.text, piece.headings) for piece in body] == [("text", ("Title",))]


def test_markdown_title_falls_back_to_h1_then_stem(tmp_path: Path) -> None:
    assert parse_file(write(tmp_path, "a.md", "## Two\n\n# One\n\ntext")).title == "One"
    assert parse_file(write(tmp_path, "getting-started.md", "## Two\n\ntext")).title == "getting-started"
    unclosed = parse_file(write(tmp_path, "b.md", "# T\n\n```\ncode\n# inside\n"))
    assert shape(unclosed) == [(H, 1, "T"), (C, 0, "```\ncode\n# inside")]
    tabbed = parse_file(
        write(tmp_path, "c.md", "- item\n\n    more of the item\n\ntext\n\n\tx = 1\n\t\ty = 2\n")
    )
    assert shape(tabbed) == [
        (L, 0, "- item"),
        (P, 0, "more of the item"),  # indented after a list item: the item goes on, not code
        (P, 0, "text"),
        (C, 0, "x = 1\n    y = 2"),
    ]


RST = """\
=========
Runbook
=========

Intro text.

Restarting
==========

Run this::

    kubectl rollout restart deploy/gateway
    kubectl get pods

Details
-------

.. code-block:: python
   :linenos:

   print("hi")

   print("bye")

----------

Back to text.

Rotating
========

.. note::

   Keys rotate monthly.
"""


def test_rst_headings_levels_and_literal_blocks(tmp_path: Path, count: Callable[[str], int]) -> None:
    doc = parse_file(write(tmp_path, "runbook.rst", RST))
    assert doc.title == "Runbook"
    assert shape(doc) == [
        (H, 1, "Runbook"),
        (P, 0, "Intro text."),
        (H, 2, "Restarting"),  # "=" underline: second style seen
        (P, 0, "Run this:"),
        (C, 0, "kubectl rollout restart deploy/gateway\nkubectl get pods"),
        (H, 3, "Details"),
        (C, 0, 'print("hi")\n\nprint("bye")'),
        (P, 0, "Back to text."),
        (H, 2, "Rotating"),
        (P, 0, "Keys rotate monthly."),
    ]
    assert [(p.text[:12], p.headings) for p in chunk_document(doc, count)] == [
        ("Intro text.", ("Runbook",)),
        ("Run this:\n\nk", ("Runbook", "Restarting")),
        ('print("hi")\n', ("Runbook", "Restarting", "Details")),
        ("Keys rotate ", ("Runbook", "Rotating")),
    ]


HTML = """<!doctype html>
<html><head><title>Platform &amp; FAQ</title><style>h1 { color: red }</style>
<script>var h1 = "<h1>no</h1>";</script></head>
<body><nav><a href="/">Home</a> <h2>Menu</h2></nav>
<h1>Questions</h1>
<p>First   answer,
   wrapped.<br>Second line.</p>
<h2>Code</h2><pre>def f():
    return 1</pre>
<ul><li>one</li><li>two <b>bold</b></li></ul>
<table><tr><th>key</th><th>value</th></tr><tr><td>a<td>1</tr></table>
<div>tail text</div>
</body></html>"""


def test_html_structure(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "faq.html", HTML))
    assert doc.title == "Platform & FAQ"
    assert shape(doc) == [
        (H, 1, "Questions"),
        (P, 0, "First answer, wrapped.\nSecond line."),
        (H, 2, "Code"),
        (C, 0, "def f():\n    return 1"),
        (L, 0, "one"),
        (L, 0, "two bold"),
        (T, 0, "key | value\na | 1"),
        (P, 0, "tail text"),
    ]
    sloppy = "<html><head><title>T</title><body><h2>Sub</h2><h1>Main</h1><table><tr><td>a<br>b<td>c</table>"
    doc = parse_file(write(tmp_path, "x.htm", sloppy))  # <head> never closed, cells never closed
    assert doc.title == "T"
    assert shape(doc) == [(H, 2, "Sub"), (H, 1, "Main"), (T, 0, "a b | c")]
    assert parse_bytes(b"<h1>Main</h1>", ".html", "y.html").title == "Main"


def test_pdf_pages_and_paragraphs(tmp_path: Path, count: Callable[[str], int]) -> None:
    data = make_pdf([["First page, first para.", "", "First page, second para."], ["Second page."]])
    doc = parse_file(write(tmp_path, "manual.pdf", data))
    assert doc.title == "manual" and doc.warnings == []
    assert [(b.text, b.page) for b in doc.blocks] == [
        ("First page, first para.", 1),
        ("First page, second para.", 1),
        ("Second page.", 2),
    ]
    pieces = chunk_document(doc, count, max_tokens=200)
    assert [(p.text, p.page) for p in pieces] == [
        ("First page, first para.\n\nFirst page, second para.", 1),  # merged within the page ...
        ("Second page.", 2),  # ... never across pages
    ]
    assert parse_bytes(make_pdf([["x"]], title="Meta Title"), ".pdf", "a.pdf").title == "Meta Title"
    # no paragraph marks in a PDF: a gap wider than the line pitch ends one, the pitch does not
    lines = ["Line one of a paragraph,", "line two of it.", "", "Next paragraph."]
    assert [b.text for b in parse_bytes(make_pdf([lines]), ".pdf", "a.pdf").blocks] == [
        "Line one of a paragraph,\nline two of it.",
        "Next paragraph.",
    ]


def test_pdf_page_that_fails_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pypdfium2 as pdfium

    original = pdfium.PdfPage.get_textpage
    calls = 0

    def flaky(self: pdfium.PdfPage) -> pdfium.PdfTextPage:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise pdfium.PdfiumError("Failed to load text page.")
        return original(self)

    monkeypatch.setattr(pdfium.PdfPage, "get_textpage", flaky)
    doc = parse_file(write(tmp_path, "p.pdf", make_pdf([["one"], ["two"], ["three"]])))
    assert [(b.text, b.page) for b in doc.blocks] == [("one", 1), ("three", 3)]
    assert len(doc.warnings) == 1 and doc.warnings[0].startswith("page 2:")


def test_bad_pdfs_raise_parse_error(tmp_path: Path) -> None:
    from pypdf import PdfReader, PdfWriter

    data = make_pdf([["secret text"]])
    for cut in (len(data) // 2, len(data) - 30, 40):
        with pytest.raises(ParseError, match=r"^corrupt PDF: "):
            parse_file(write(tmp_path, "cut.pdf", data[:cut]))
    with pytest.raises(ParseError, match=r"^corrupt PDF: "):
        parse_file(write(tmp_path, "fake.pdf", b"%PDF-1.7\nthis is not a pdf at all\n"))
    locked = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    locked.encrypt("user-pw", "owner-pw", algorithm="RC4-128")
    buffer = io.BytesIO()
    locked.write(buffer)
    with pytest.raises(ParseError, match=r"^encrypted PDF"):
        parse_file(write(tmp_path, "locked.pdf", buffer.getvalue()))
    owner_only = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    owner_only.encrypt("", "owner-pw", algorithm="RC4-128")  # opens without a password
    buffer = io.BytesIO()
    owner_only.write(buffer)
    assert [b.text for b in parse_file(write(tmp_path, "open.pdf", buffer.getvalue())).blocks] == [
        "secret text"
    ]


def test_docx_headings_lists_and_tables(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Quarterly report", style="Title")
    document.add_heading("Summary", level=1)
    document.add_paragraph("Revenue went up.")
    document.add_paragraph("a bullet", style="List Bullet")
    document.add_heading("Details", level=2)
    table = document.add_table(rows=2, cols=2)
    for (row, col), text in {(0, 0): "region", (0, 1): "sales", (1, 0): "EU", (1, 1): "12"}.items():
        table.cell(row, col).text = text
    document.add_paragraph("After the table.")
    path = tmp_path / "report.docx"
    document.save(str(path))
    doc = parse_file(path)
    assert doc.title == "Quarterly report"
    assert shape(doc) == [
        (H, 1, "Summary"),
        (P, 0, "Revenue went up."),
        (L, 0, "a bullet"),
        (H, 2, "Details"),
        (T, 0, "region | sales\nEU | 12"),
        (P, 0, "After the table."),
    ]
    with pytest.raises(ParseError, match=r"^corrupt DOCX: "):
        parse_file(write(tmp_path, "renamed.docx", b"PK\x03\x04 but not really a zip"))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("hello.txt", "not a word document")
    with pytest.raises(ParseError, match=r"^corrupt DOCX: "):
        parse_file(write(tmp_path, "other.docx", archive.getvalue()))


CODE = '''"""Module docstring."""

import os


def first(x):
    y = x + 1

    return y


@decorator
class Second:
    def method(self):

        return 2
'''


def test_code_one_block_per_top_level_definition(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "mod.py", CODE))
    assert doc.title == "mod.py"
    assert [b.kind for b in doc.blocks] == [C] * 4
    assert [b.text.split("\n")[0] for b in doc.blocks] == [
        '"""Module docstring."""',
        "import os",
        "def first(x):",
        "@decorator",
    ]
    assert doc.blocks[2].text == "def first(x):\n    y = x + 1\n\n    return y"
    go = parse_file(write(tmp_path, "main.go", "func a() {\n\tx := 1\n\n\treturn\n}\n\nfunc b() {}\n"))
    assert [b.text.split("\n")[0] for b in go.blocks] == ["func a() {", "func b() {}"]


def test_json_jsonl_csv_tsv(tmp_path: Path) -> None:
    doc = parse_file(write(tmp_path, "conf.json", json.dumps({"name": "x", "nested": {"a": [1, 2]}})))
    assert shape(doc) == [(C, 0, '"name": "x"'), (C, 0, '"nested": {\n  "a": [\n    1,\n    2\n  ]\n}')]
    assert [b.text for b in parse_file(write(tmp_path, "l.json", '[1, "two"]')).blocks] == ["1", '"two"']
    broken = parse_file(write(tmp_path, "tsconfig.json", '{\n  // comment\n  "a": 1\n}'))
    assert broken.blocks and broken.warnings[0].startswith("not valid JSON")
    lines = parse_file(write(tmp_path, "r.jsonl", '{"q": 1}\n\nnot json\n'))
    assert [b.text for b in lines.blocks] == ['{\n  "q": 1\n}', "not json"]
    rows = "\n".join(["id,name", *(f"{i},item {i}" for i in range(25))])
    table = parse_file(write(tmp_path, "items.csv", rows))
    assert [b.kind for b in table.blocks] == [T, T, T]
    assert all(b.text.startswith("id | name\n") for b in table.blocks)
    assert sum(b.text.count("\n") for b in table.blocks) == 25  # every row once, header repeated
    assert parse_file(write(tmp_path, "t.tsv", "a\tb\n1\t2\n")).blocks[0].text == "a | b\n1 | 2"


def test_plain_text_paragraphs_and_encodings(tmp_path: Path) -> None:
    text = "One para\nstill one.\n\n\n  \nTwo.\r\nTwo b.\n"
    assert [b.text for b in parse_file(write(tmp_path, "a.txt", text)).blocks] == [
        "One para\nstill one.",
        "Two.\nTwo b.",
    ]
    for encoded in ("é ok".encode("utf-8-sig"), "é ok".encode("utf-16")):  # utf-16 writes a BOM
        assert parse_bytes(encoded, ".txt", "x.txt").blocks[0].text == "é ok"
    assert parse_bytes("é ok".encode("cp1252"), ".TXT", "x.txt", encoding="cp1252").blocks[0].text == "é ok"


# --- bad files ---------------------------------------------------------------------------------------


def test_bad_files_raise_one_line_parse_errors(tmp_path: Path) -> None:
    (tmp_path / "folder.md").mkdir()
    cases: dict[str, tuple[Path, str, int | None]] = {
        "binary": (write(tmp_path, "blob.md", b"abc\x00\x01\x02" * 10), "^binary file", None),
        "latin-1": (write(tmp_path, "old.txt", "caf\xe9 au lait".encode("latin-1")), "at byte 3 ", None),
        "huge": (write(tmp_path, "big.md", "word " * 400), "over the 1000-byte limit", 1000),
        "directory": (tmp_path / "folder.md", "^unreadable", None),
        "missing": (tmp_path / "gone.md", "^unreadable", None),
        "unsupported": (write(tmp_path, "x.exe", b"MZ"), "^unsupported file type", None),
    }
    for name, (path, pattern, max_bytes) in cases.items():
        with pytest.raises(ParseError, match=pattern) as caught:
            parse_file(path, max_bytes=max_bytes or 2**20)
        assert "\n" not in str(caught.value) and str(caught.value), name
    with pytest.raises(ParseError) as latin:
        parse_bytes(b"abc\xe9", ".txt", "a.txt")
    assert str(latin.value) == (
        "not UTF-8 at byte 3 (tried utf-8, utf-8-sig, utf-16 with BOM); convert it or pass --encoding"
    )
    assert parse_file(write(tmp_path, "just.md", "word " * 200), max_bytes=1000).blocks  # at the limit: fine


def test_damaged_files_give_a_document_or_a_parse_error(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Heading", level=1)
    document.add_paragraph("body")
    buffer = io.BytesIO()
    document.save(buffer)
    samples = {
        ".md": MARKDOWN.encode(), ".rst": RST.encode(), ".html": HTML.encode(), ".py": CODE.encode(),
        ".pdf": make_pdf([["a b", "", "c"], ["d"]]), ".docx": buffer.getvalue(),
        ".json": b'{"a": [1, {"b": "c"}]}', ".csv": b'a,b\n1,"2\n3"\n', ".jsonl": b'{"a": 1}\n[2]\n',
    }  # fmt: skip
    rng = random.Random(3)
    for round_ in range(150):
        suffix, data = list(samples.items())[round_ % len(samples)]
        damaged = bytearray(data[: rng.randrange(1, len(data) + 1)])
        for _ in range(rng.randint(0, 8)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            doc = parse_bytes(bytes(damaged), suffix, f"f{suffix}")
        except ParseError as error:
            assert str(error) and "\n" not in str(error)
        else:
            assert all(isinstance(block, Block) for block in doc.blocks)


def test_empty_files_are_documents_without_blocks(tmp_path: Path) -> None:
    for suffix in (".md", ".pdf", ".docx", ".json", ".csv", ".py", ".html", ".rst"):
        doc = parse_file(write(tmp_path, f"empty{suffix}", b""))
        assert doc.blocks == [] and doc.title in ("empty", f"empty{suffix}")
    assert parse_file(write(tmp_path, "blank.md", "\n  \n\t\n")).blocks == []


def test_registry_and_supported() -> None:
    expected = ".md .markdown .txt .text .rst .html .htm .pdf .docx .json .jsonl .csv .tsv .py .ts .go .yaml"
    assert set(expected.split()) <= set(SUFFIXES)
    assert supported(Path("a/B.MD")) and supported(Path("x.yml"))
    assert (
        not supported(Path("photo.png")) and not supported(Path("Makefile")) and not supported(Path(".env"))
    )


# --- chunking ----------------------------------------------------------------------------------------


def test_heading_path_and_grouping(count: Callable[[str], int]) -> None:
    doc = parse_bytes(
        b"# A\n\nalpha one.\n\nalpha two.\n\n## B\n\nbeta.\n\n### C\n\ngamma.\n\n## D\n\ndelta.\n\n# E\n\n"
        b"## F\n\nphi.",
        ".md",
        "x.md",
    )
    pieces = chunk_document(doc, count)
    assert [(p.text, p.headings, p.position) for p in pieces] == [
        ("alpha one.\n\nalpha two.", ("A",), 0),
        ("beta.", ("A", "B"), 1),
        ("gamma.", ("A", "B", "C"), 2),
        ("delta.", ("A", "D"), 3),
        ("phi.", ("E", "F"), 4),
    ]


def test_code_block_stays_whole_when_it_fits(count: Callable[[str], int]) -> None:
    code = "\n".join(f"    total_{i} = compute(value_{i}, factor={i})" for i in range(12))
    source = "# Title\n\n" + "Some prose sentence here. " * 20 + "\n\n```python\n" + code + "\n```\n\nAfter."
    pieces = chunk_document(parse_bytes(source.encode(), ".md", "x.md"), count, max_tokens=200)
    fenced = "```python\n" + code + "\n```"
    assert 120 < count(fenced) <= 200
    assert sum(fenced in p.text for p in pieces) == 1


def test_long_block_windows_overlap(count: Callable[[str], int]) -> None:
    rng = random.Random(7)
    words = ("gateway", "routes", "each", "query", "to", "the", "right", "model", "while", "costs")
    text = " ".join(
        " ".join(rng.choice(words) for _ in range(rng.randint(5, 30))).capitalize() + "." for _ in range(80)
    )
    doc = Document("t", [Block(P, text)])
    for overlap in (0, 16, 40):
        pieces = chunk_document(doc, count, max_tokens=100, overlap=overlap)
        assert len(pieces) > 5
        for before, after in itertools.pairwise(pieces):
            shared = _shared(before.text, after.text)
            assert count(shared) <= overlap
            if overlap:
                assert count(shared) >= overlap - 12, (overlap, shared)  # word-aligned, close to it
            else:
                assert shared == ""
        assert all(count(p.text) <= 100 for p in pieces)
        assert all(p.text in text for p in pieces)  # exact substrings, nothing rewritten


def _shared(before: str, after: str) -> str:
    """The longest prefix of `after` that ends `before`."""
    for size in range(min(len(before), len(after)), 0, -1):
        if before.endswith(after[:size]):
            return after[:size]
    return ""


def test_token_bound_holds_for_varied_inputs(count: Callable[[str], int]) -> None:
    rng = random.Random(1234)
    for case in range(30):
        doc = _random_document(rng)
        max_tokens = rng.choice([24, 64, 128, 200, 254])
        overlap = rng.choice([0, 8, max_tokens // 4, max_tokens // 2])
        pieces = chunk_document(doc, count, max_tokens=max_tokens, overlap=overlap)
        if case % 5 == 0:
            assert pieces == chunk_document(doc, count, max_tokens=max_tokens, overlap=overlap)
        assert [p.position for p in pieces] == list(range(len(pieces)))
        for piece in pieces:
            assert piece.text.strip() == piece.text and piece.text
            assert count(piece.text) <= max_tokens, (case, max_tokens, piece.text[:80])
        kept = {word for piece in pieces for word in piece.text.split()}  # cuts fall between words
        for block in doc.blocks:
            if block.kind is not H:
                missing = [w for w in block.text.split() if len(w) < 40 and w not in kept]
                assert not missing, (case, missing[:5])


def _random_document(rng: random.Random) -> Document:
    vocabulary = [
        "the", "model", "routes", "queries", "antidisestablishmentarianism", "東京", "naïve", "🙂",
        "x=1;", "https://example.com/a/b?c=d", "(see", "below)", "end.", "Why?", "yes!", "1,024",
    ]  # fmt: skip
    blocks: list[Block] = []
    page = rng.choice([None, 1])
    for _ in range(rng.randint(1, 20)):
        kind = rng.choice([H, P, P, P, C, T, L])
        if kind is H:
            blocks.append(Block(H, " ".join(rng.choices(vocabulary, k=3)), level=rng.randint(1, 4)))
            continue
        size = rng.choice([3, 8, 20, 300, 900])
        sep = rng.choice([" ", "\n", "  ", ". "]) if kind is not C else "\n    "
        text = sep.join(rng.choices(vocabulary, k=size))
        if rng.random() < 0.1:  # a base64-ish blob: one "word" of many word pieces
            text += " " + "".join(rng.choices("abcdefghij0123456789+/", k=rng.choice([200, 1500])))
        page = page + 1 if page and rng.random() < 0.2 else page
        blocks.append(Block(kind, text, page=page))
    return Document("random", blocks)


def test_non_additive_tokenizer_still_bounded() -> None:
    def lumpy(text: str) -> int:  # whitespace runs cost tokens too: sums of parts underestimate
        return len(text.split()) + text.count("\n") * 3 + text.count("  ")

    doc = Document(
        "t", [Block(P, f"para {i} " + "w " * (i % 9)) for i in range(60)] + [Block(C, "a\n" * 500)]
    )
    for max_tokens, overlap in ((10, 0), (17, 5), (40, 12)):
        pieces = chunk_document(doc, lumpy, max_tokens=max_tokens, overlap=overlap)
        assert pieces and all(lumpy(p.text) <= max_tokens for p in pieces)


def test_whitespace_blocks_dropped_and_options_validated(count: Callable[[str], int]) -> None:
    doc = Document("t", [Block(P, "  \n "), Block(H, "Only heading", level=1), Block(C, "\n\n")])
    assert chunk_document(doc, count) == [Piece("Only heading", (), None, 0)]  # the heading is the text
    assert chunk_document(Document("t", [Block(P, "  \n "), Block(C, "\n\n")]), count) == []
    with pytest.raises(ValueError):
        chunk_document(doc, count, max_tokens=10, overlap=10)
    with pytest.raises(ValueError):
        chunk_document(doc, count, max_tokens=0, overlap=0)
    assert CHUNKER_VERSION == "v3"  # v3: headings alone are chunked, a file's repeated chunks stored once
    assert Piece("a", (), None, 0).position == 0


def test_one_megabyte_markdown_chunks_quickly(count: Callable[[str], int]) -> None:
    rng = random.Random(5)
    words = ("retrieval", "augmented", "generation", "keeps", "answers", "grounded", "in", "documents")
    sections = []
    while sum(map(len, sections)) < 2**20:
        paragraphs = [
            " ".join(rng.choices(words, k=rng.randint(20, 400))) + "." for _ in range(rng.randint(1, 6))
        ]
        sections.append(f"## Section {len(sections)}\n\n" + "\n\n".join(paragraphs) + "\n\n")
    doc = parse_bytes("".join(sections).encode(), ".md", "big.md")
    started = time.perf_counter()
    pieces = chunk_document(doc, count)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"{elapsed:.2f} s"  # ~1-2 s on two busy cores; quadratic would be minutes
    assert len({p.headings for p in pieces}) == len(sections)
    assert max(count(p.text) for p in pieces[:: max(1, len(pieces) // 200)]) <= 200
