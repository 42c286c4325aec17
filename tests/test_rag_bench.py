"""`turnout bench ingest|retrieval` and the result format all benches share.

The benches run at toy sizes on the session's Postgres; what is checked is that every row is there,
every figure is positive and every ratio is computed. No speed is asserted: these are not timed tests.
"""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import pypdf
import pytest

from evals.bench import data as bench_data
from evals.bench import rag as bench
from evals.bench.fmt import BenchResult, Bound, On, Target


def rows_by_name(path: Path) -> dict[str, dict]:
    payload = json.loads(path.read_text())
    assert payload["machine"]["cpu_count"] >= 1 and payload["machine"]["python"]
    return {row["name"]: row for row in payload["rows"]}


def test_result_format_round_trip(tmp_path):
    result = BenchResult("demo", {"size": 3})
    result.add(
        "fast thing", 30.0, "ms", baseline=10.0, baseline_name="alone", target=Target(Bound.AT_MOST, 2)
    )
    result.add("count", 0.0, "files", target=Target(Bound.AT_MOST, 0, On.VALUE), note="none | at all")
    result.add("unmeasured", None, "ms")
    paths = result.finish().write(tmp_path / "out")
    assert [p.name for p in paths] == ["demo.json", "demo.md"]
    rows = rows_by_name(paths[0])
    assert rows["fast thing"]["ratio"] == pytest.approx(3.0) and rows["fast thing"]["met"] is False
    assert rows["count"]["met"] is True and rows["unmeasured"]["ratio"] is None
    markdown = paths[1].read_text()
    assert "| fast thing | 30.0 | ms | alone | 10.0 | 3.00× | ratio ≤ 2× | **no** |" in markdown
    assert "none \\| at all" in markdown  # a note cannot break the table


def test_generated_pdf_is_read_back_by_pypdf():
    data, pages = bench_data.pdf_document(
        "Title (one)", [("Heading", "Quotes “like this” and a \\ back" * 200)]
    )
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == pages > 1 and reader.metadata.title == "Title (one)"
    text = reader.pages[0].extract_text()
    assert "Heading" in text and "“like this”" in text and "\\ back" in text


def test_help_and_bad_arguments(capsys):
    assert bench.main(["ingest", "--help"]) == 0
    assert "--corpus" in capsys.readouterr().out
    assert bench.main(["retrieval", "--help"]) == 0
    assert "--chunks" in capsys.readouterr().out
    assert bench.main(["retrieval", "--chunks", "5"]) == 2
    assert bench.main(["nothing"]) == 2


def test_gateway_cells_go_through_the_shared_format():
    from evals.bench.fmt import Sample
    from evals.bench.gateway import record

    result = BenchResult("gateway")
    record(
        result,
        "openai json c=1",
        Sample([0.020, 0.021], 0, 1.0),
        Sample([0.022, 0.024], 1, 1.0, 0.004, calls=2),
    )
    rows = {row.name: row for row in result.rows}
    assert rows["openai json c=1 p50"].ratio == pytest.approx(24 / 21)
    assert rows["openai json c=1 server CPU"].value == pytest.approx(2.0)
    assert rows["openai json c=1 errors"].value == 1


@pytest.mark.slow
@pytest.mark.integration
def test_bench_ingest_writes_its_rows(pg_url, tmp_path, capsys):
    assert bench.main(["ingest", "--docs", "3", "--store", pg_url, "--out", str(tmp_path)]) == 0
    assert "| ingest end to end" in capsys.readouterr().out
    rows = rows_by_name(tmp_path / "ingest.json")
    assert (tmp_path / "ingest.md").read_text().startswith("# turnout bench ingest")
    ingest = rows["ingest end to end (Ingestor.run, fresh collection)"]
    assert ingest["value"] > 0 and ingest["baseline"] > 0 and ingest["ratio"] > 0
    rerun = rows["rerun on the unchanged corpus"]
    assert rerun["value"] > 0 and rerun["ratio"] is not None
    assert rows["files turnout could not ingest"]["value"] == 0
    assert "not measured" in rows["LlamaIndex IngestionPipeline (issue figure, 20 SEC filings)"]["note"]


@pytest.mark.slow
@pytest.mark.integration
def test_bench_retrieval_writes_its_rows(pg_url, tmp_path):
    argv = ["retrieval", "--chunks", "2000", "--pool", "20", "--queries", "100", "--store", pg_url]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0
    rows = rows_by_name(tmp_path / "retrieval.json")
    hybrid = rows["hybrid search k=5, query embedding included, p50"]
    assert hybrid["value"] > 0 and hybrid["ratio"] > 0 and hybrid["met"] in (True, False)
    assert rows["query embedding alone p99"]["value"] > 0
    for name in ("dense only p50", "keyword only (BM25) p50", "hybrid recall@3, 2,000 chunks"):
        assert rows[name]["value"] > 0
    assert rows["hybrid MRR@3, 2,000 chunks"]["ratio"] > 0


@pytest.mark.slow
@pytest.mark.integration
def test_bench_gateway_writes_the_shared_format(tmp_path):
    from evals.bench.gateway import run_gateway_bench

    args = argparse.Namespace(
        requests=8,
        think_ms=5.0,
        jitter_ms=0.0,
        concurrency="1",
        gateway_workers=1,
        memory_requests="10,20",
        saturation_seconds=1.0,
        no_litellm=True,
        litellm=None,
        out=tmp_path,
        scrape_seconds=0.5,
        otlp=True,
    )
    assert run_gateway_bench(args) == 0
    rows = rows_by_name(tmp_path / "gateway.json")
    assert rows["openai json c=1 p50"]["ratio"] > 0 and rows["anthropic stream c=1 errors"]["value"] == 0
    report = (tmp_path / "gateway.md").read_text()
    assert "| saturation json c=256 req/s |" in report
    assert "/metrics scraped every 0.5 s" in report and "tracing on" in report
    received = re.search(r"\((\d+) KiB received\)", report)
    assert received is not None and int(received[1]) > 0  # the gateway really exported spans
