"""`ingest PATH` as users run it: the real CLI, the real stores (embedded pgvector, Qdrant local mode),
incremental reruns, bad files, a changed embedder, and a run killed with SIGKILL halfway."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, run

SAMPLES = ROOT / "ingest" / "samples"
INGEST = [sys.executable, "-m", "ingest.cli"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def ingest(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INGEST, *args], capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT, check=False
    )


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


async def stored(url: str, collection: str) -> tuple[list[Any], dict[str, Any]]:
    from rag.stores import open_store

    store = await open_store(url)
    try:
        return await store.chunks(collection), await store.manifest(collection)
    finally:
        await store.close()


def identity(chunks: list[Any]) -> list[tuple[str, int, str]]:
    return sorted((c.source, c.position, c.content_hash) for c in chunks)


# the sample corpus's files, as the collection names them
CORPUS_SOURCES = {"faq.html", "handbook/expenses.md", "handbook/on-call.md", "runbooks/gateway.rst"}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    shutil.copytree(SAMPLES, root)
    return root


@pytest.fixture(params=["pgvector", "qdrant"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "pgvector":
        url: str = request.getfixturevalue("pg_url")
        return url
    return f"qdrant+local://{tmp_path / 'qdrant'}"


def test_ingest_is_incremental_on_both_stores(corpus: Path, store_url: str) -> None:
    collection = f"inc-{uuid.uuid4().hex[:8]}"
    base = ["--store", store_url, "--collection", collection, "--embedder", "hash-64", "--json"]
    first = ingest(str(corpus), *base)
    assert first.returncode == 0, first.stderr
    report = summary(first)
    assert report["files"]["new"] == 4 and report["files"]["failed"] == 0 and report["chunks"] > 10
    chunks, manifest = run(stored(store_url, collection))
    assert len(chunks) == report["chunks"] and set(manifest) == CORPUS_SOURCES
    oncall = [c for c in chunks if c.source == "handbook/on-call.md"]
    assert {c.title for c in oncall} == {"On-call handbook"}
    assert ("On-call handbook", "Severity levels") in {c.headings for c in oncall}
    assert all(len(c.content_hash) == 64 for c in chunks)

    again = summary(ingest(str(corpus), *base))
    assert again["files"]["unchanged"] == 4 and again["chunks"] == 0

    (corpus / "handbook" / "expenses.md").write_text("# Travel\n\nHotels up to 999 EUR per night.\n")
    (corpus / "faq.html").unlink()
    (corpus / "new.txt").write_text("A brand new note about the staging cluster.\n")
    changed = summary(ingest(str(corpus), *base))
    assert changed["files"] == {"new": 1, "changed": 1, "unchanged": 2, "failed": 0, "deleted": 1}
    chunks, manifest = run(stored(store_url, collection))
    sources = {c.source for c in chunks}
    assert "faq.html" not in sources and "faq.html" not in manifest and "new.txt" in sources
    expenses = [c.text for c in chunks if c.source == "handbook/expenses.md"]
    assert expenses == ["Hotels up to 999 EUR per night."]
    assert len({c.id for c in chunks}) == len(chunks)

    (corpus / "old.txt").write_text("Kept by --no-prune after it left the folder.\n")
    assert summary(ingest(str(corpus), *base))["files"]["new"] == 1
    (corpus / "old.txt").unlink()
    assert summary(ingest(str(corpus), *base, "--no-prune"))["files"]["deleted"] == 0
    reembedded = summary(ingest(str(corpus), *base[:-3], "--embedder", "hash-32", "--json"))
    assert reembedded["reembedded"] is True and reembedded["files"]["new"] == 4
    # the re-embedding dropped old.txt, which --no-prune had kept: said, not silent (a third trial)
    assert reembedded["files"]["deleted"] == 1
    assert "old.txt" not in run(stored(store_url, collection))[1]
    # a search embedding with another model than the collection's says so, in one line
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "router.cli",
            "search",
            "staging",
            "--store",
            store_url,
            "--collection",
            collection,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert wrong.returncode != 0 and "--embedder hash-32" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    right = subprocess.run(
        [*wrong.args, "--embedder", "hash-32", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert right.returncode == 0, right.stderr


def test_one_file_named_alone_updates_that_file_and_deletes_nothing(corpus: Path, tmp_path: Path) -> None:
    """`ingest FOLDER` mirrors the folder; `ingest FILE` adds or replaces that file only (a new
    user's `ingest docs/faq.html` once deleted the rest of the collection)."""
    url = f"qdrant+local://{tmp_path / 'qdrant'}"
    base = ["--store", url, "--collection", "one", "--embedder", "hash-64", "--json"]
    assert summary(ingest(str(corpus), *base))["files"]["new"] == 4
    (corpus / "faq.html").write_text("<h1>FAQ</h1><p>Changed: the gateway listens on 8080.</p>")
    alone = summary(ingest(str(corpus / "faq.html"), *base))
    assert alone["files"] == {"new": 0, "changed": 1, "unchanged": 0, "failed": 0, "deleted": 0}
    _, manifest = run(stored(url, "one"))
    assert set(manifest) == CORPUS_SOURCES


def test_a_nested_file_named_alone_keeps_the_name_its_folder_gave_it(corpus: Path, tmp_path: Path) -> None:
    """After `ingest docs`, `ingest docs/handbook/expenses.md` replaces handbook/expenses.md (it
    was stored a second time as expenses.md); a file the collection never held goes under its name."""
    url = f"qdrant+local://{tmp_path / 'qdrant'}"
    base = ["--store", url, "--collection", "nested", "--embedder", "hash-64", "--json"]
    assert summary(ingest(str(corpus), *base))["files"]["new"] == 4
    (corpus / "handbook" / "expenses.md").write_text("# Travel\n\nHotels up to 180 EUR per night.\n")
    alone = summary(ingest(str(corpus / "handbook" / "expenses.md"), *base))
    assert alone["files"] == {"new": 0, "changed": 1, "unchanged": 0, "failed": 0, "deleted": 0}
    stray = tmp_path / "stray.md"
    stray.write_text("# Stray\n\nA note the folder never held.\n")
    assert summary(ingest(str(stray), *base))["files"]["new"] == 1
    chunks, manifest = run(stored(url, "nested"))
    assert set(manifest) == CORPUS_SOURCES | {"stray.md"}
    assert [c.text for c in chunks if c.source == "handbook/expenses.md"] == [
        "Hotels up to 180 EUR per night."
    ]


def test_repeated_chunks_of_a_file_are_stored_once_and_dense_search_still_finds_the_rest(
    corpus: Path, pg_url: str
) -> None:
    """A trial's log of 6,000 equal lines became thousands of equal vectors, and pgvector's HNSW
    search then missed the best chunk of the other files; a file's repeated chunks are kept once."""
    collection = f"dup-{uuid.uuid4().hex[:8]}"
    (corpus / "app.log").write_text("GET /healthz 200 OK in 1ms from the load balancer probe\n" * 6000)
    (corpus / "app.log").rename(corpus / "app.log.txt")
    (corpus / "faq.md").write_text("# FAQ\n\n## Is it free?\n\nYes.\n\n## Does it run offline?\n\nYes.\n")
    base = ["--store", pg_url, "--collection", collection, "--embedder", "hash-64", "--json"]
    assert summary(ingest(str(corpus), *base))["files"]["new"] == 6
    chunks, _ = run(stored(pg_url, collection))
    log = [c for c in chunks if c.source == "app.log.txt"]
    assert len({c.text for c in log}) == len(log) >= 1
    faq = [c for c in chunks if c.source == "faq.md"]  # the same answer under two questions: both kept
    assert sorted(c.headings[-1] for c in faq if c.text == "Yes.") == ["Does it run offline?", "Is it free?"]
    assert sorted(c.position for c in log) == list(range(len(log)))
    search = subprocess.run(
        [sys.executable, "-m", "router.cli", "search", "Hotels per night travel expenses", "--store", pg_url,
         "--collection", collection, "--mode", "dense", "--json", "-k", "3"],
        capture_output=True, text=True, timeout=120, env={**ENV, "TURNOUT_EMBEDDER": "hash-64"}, cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    hits = json.loads(search.stdout)["data"]
    assert len(hits) == 3 and hits[0]["source"] == "handbook/expenses.md"


def test_a_rerun_with_other_tags_retags_the_files(corpus: Path, tmp_path: Path) -> None:
    """`ingest docs --tag hr` after `ingest docs` said "unchanged" and left the chunks untagged."""
    url = f"qdrant+local://{tmp_path / 'qdrant'}"
    base = ["--store", url, "--collection", "tags", "--embedder", "hash-64", "--json"]
    assert summary(ingest(str(corpus), *base))["files"]["new"] == 4
    tagged = summary(ingest(str(corpus), *base, "--tag", "hr"))
    assert tagged["files"]["changed"] == 4
    chunks, _ = run(stored(url, "tags"))
    assert chunks and all(c.tags == ("hr",) for c in chunks)
    assert summary(ingest(str(corpus), *base, "--tag", "hr"))["files"]["unchanged"] == 4


def test_a_link_to_nothing_is_reported_and_its_chunks_are_kept(corpus: Path, tmp_path: Path) -> None:
    """A link whose file is gone is skipped on one line like a bad file (it was silently ignored),
    and what was ingested from it stays until the link is mended or removed."""
    url = f"qdrant+local://{tmp_path / 'qdrant'}"
    base = ["--store", url, "--collection", "links", "--embedder", "hash-64", "--json"]
    target = tmp_path / "notes.md"
    target.write_text("# Notes\n\nThe staging cluster is rebuilt on Mondays.\n")
    (corpus / "notes.md").symlink_to(target)
    assert summary(ingest(str(corpus), *base))["files"]["new"] == 5
    target.unlink()
    result = ingest(str(corpus), *base)
    assert result.returncode == 1
    assert "ingest: skipped notes.md: a link to a file that does not exist" in result.stderr.splitlines()
    assert summary(result)["files"]["deleted"] == 0
    _, manifest = run(stored(url, "links"))
    assert "notes.md" in manifest


def test_a_folder_that_cannot_be_listed_is_reported_and_deletes_nothing(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A subfolder, or the root itself, that cannot be listed (permissions; root here reads
    everything, so os.walk's error is made) is a skipped line, and no chunk of what it held goes."""
    from ingest import pipeline
    from ingest.pipeline import IngestOptions, Ingestor
    from rag.embed import make_embedder
    from rag.stores import open_store

    url = f"qdrant+local://{tmp_path / 'qdrant'}"

    async def ingest_once() -> Any:
        store = await open_store(url)
        try:
            return await Ingestor(store, make_embedder("hash-64"), IngestOptions(collection="walk")).run(
                corpus
            )
        finally:
            await store.close()

    assert run(ingest_once()).files[pipeline.FileStatus.new] == 4
    walk = os.walk
    for unlisted in (corpus / "handbook", corpus):

        def failing_walk(top: Any, onerror: Any = None, unlisted: Path = unlisted) -> Any:
            for folder, dirs, files in walk(top):
                if Path(folder) == unlisted:
                    onerror(PermissionError(13, "Permission denied", str(unlisted)))
                    dirs[:] = []
                    continue
                yield folder, dirs, files

        monkeypatch.setattr(pipeline.os, "walk", failing_walk)
        report = run(ingest_once())
        where = "." if unlisted == corpus else "handbook"
        assert report.failures == [(where, "folder not readable (Permission denied)")]
        assert report.files[pipeline.FileStatus.deleted] == 0
    _, manifest = run(stored(url, "walk"))
    assert set(manifest) == CORPUS_SOURCES


def test_bad_files_are_reported_and_skipped(corpus: Path, pg_url: str) -> None:
    (corpus / "binary.md").write_bytes(b"# title\n\x00\x01\x02 binary junk")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog")
    (corpus / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (corpus / "big.txt").write_text("word " * 50_000)
    (corpus / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    collection = f"bad-{uuid.uuid4().hex[:8]}"
    result = ingest(
        str(corpus),
        *("--store", pg_url, "--collection", collection, "--embedder", "hash-64", "--max-file-mb", "0.1"),
    )
    assert result.returncode == 1
    skipped = [line for line in result.stderr.splitlines() if line.startswith("ingest: skipped ")]
    assert sorted(line.split()[2].rstrip(":") for line in skipped) == [
        "big.txt",
        "binary.md",
        "broken.pdf",
        "latin1.txt",
    ]
    assert "MB limit" in next(line for line in skipped if "big.txt" in line)
    assert "4 file(s) skipped" in result.stderr and "1 of unsupported types ignored" in result.stderr
    chunks, manifest = run(stored(pg_url, collection))
    assert len(manifest) == 4 and {c.source for c in chunks} == set(manifest)

    latin = ingest(
        str(corpus / "latin1.txt"),
        *("--store", pg_url, "--collection", collection + "-l", "--embedder", "hash-64"),
        *("--encoding", "latin-1", "--json"),
    )
    assert latin.returncode == 0 and summary(latin)["files"]["new"] == 1
    chunks, _ = run(stored(pg_url, collection + "-l"))
    assert [c.text for c in chunks] == ["Café crème"]


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    missing = ingest(str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.strip().count("\n") == 0
    assert "no such file or folder" in missing.stderr
    bad_store = ingest(str(SAMPLES), "--store", "mongodb://x", "--embedder", "hash-64")
    assert bad_store.returncode == 2 and "unknown vector store URL" in bad_store.stderr
    assert "Traceback" not in bad_store.stderr
    bad_overlap = ingest(str(SAMPLES), "--overlap", "150", "--embedder", "hash-64")
    assert bad_overlap.returncode == 2 and "--overlap" in bad_overlap.stderr
    bad_setting = subprocess.run(
        [*INGEST, str(SAMPLES), "--store", "qdrant+local://:memory:"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**ENV, "TURNOUT_EMBED_PRECISION": "fp16"},
        cwd=ROOT,
        check=False,
    )
    assert bad_setting.returncode == 2 and bad_setting.stderr.strip().count("\n") == 0
    assert "TURNOUT_EMBED_PRECISION: Input should be 'auto', 'bf16' or 'fp32'" in bad_setting.stderr


def _big_corpus(root: Path, files: int) -> None:
    root.mkdir()
    for i in range(files):
        sections = "\n\n".join(
            f"## Section {j}\n\n"
            + " ".join(f"Item {i}-{j}-{k} covers topic {k * j % 17}." for k in range(30))
            for j in range(4)
        )
        (root / f"doc{i:03d}.md").write_text(f"# Document {i}\n\n{sections}\n")


def test_sigkill_halfway_then_rerun_leaves_no_duplicate_and_no_gap(tmp_path: Path, pg_url: str) -> None:
    """The real embedder, the real store, a real SIGKILL while chunks are being written."""
    root = tmp_path / "many"
    _big_corpus(root, 30)
    collection = f"kill-{uuid.uuid4().hex[:8]}"
    args = [*INGEST, str(root), "--store", pg_url, "--collection", collection, "--json"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    deadline = time.monotonic() + 120
    written = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            _, manifest = run(stored(pg_url, collection))
            written = len(manifest)
        except Exception:  # the collection is not created yet
            written = 0
        if written >= 3:
            break
        time.sleep(0.2)
    assert process.poll() is None, "ingest finished before it could be killed; make the corpus bigger"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    assert process.returncode == -signal.SIGKILL
    _, partial = run(stored(pg_url, collection))
    assert 3 <= len(partial) < 30

    rerun = subprocess.run(args, capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr
    report = summary(rerun)
    assert report["files"]["unchanged"] >= len(partial) and report["files"]["failed"] == 0

    clean = f"clean-{uuid.uuid4().hex[:8]}"  # what chunks there are does not depend on the embedder
    fresh = ingest(str(root), "--store", pg_url, "--collection", clean, "--embedder", "hash-64", "--json")
    assert fresh.returncode == 0, fresh.stderr
    after_kill, manifest = run(stored(pg_url, collection))
    reference, _ = run(stored(pg_url, clean))
    assert len(manifest) == 30
    assert len({c.id for c in after_kill}) == len(after_kill)
    assert identity(after_kill) == identity(reference)
