"""How a suite run is shown: a terminal table, metrics.json, report.md and PNG plots in the run folder.

Pure formatting over `Row`s and the run record, plus the plots, drawn by matplotlib with the Agg
backend and imported only when a plot is written (a run without matplotlib still writes its JSON and
Markdown and says the plots were skipped). Nothing here computes or judges a metric.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.results import ConfusionPlot, CostQualityPlot, Plot, Row


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.4f}"


def _delta(row: Row) -> str:
    delta = row.delta
    return "" if delta is None else ("+" if delta >= 0 else "") + fmt(delta)


def _table(rows: Sequence[Row], with_baseline: bool) -> list[list[str]]:
    header = ["metric", "value", "better"]
    header += ["baseline", "delta"] if with_baseline else []
    header += ["gate", "status"]
    body = []
    for row in rows:
        cells = [row.name, fmt(row.value), row.better.value]
        cells += [fmt(row.baseline), _delta(row)] if with_baseline else []
        cells += [row.gate, row.status + (f": {row.why}" if row.why else "")]
        body.append(cells)
    return [header, *body]


def terminal_table(rows: Sequence[Row], with_baseline: bool) -> str:
    table = _table(rows, with_baseline)
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def terminal_report(record: dict[str, Any], rows: Sequence[Row], run_dir: Path) -> str:
    """The gated metrics (every metric when a suite gates none), and where the rest is."""
    shown = [row for row in rows if row.gate] or list(rows)
    with_baseline = record["baseline"] is not None
    lines = [
        f"suite {record['suite']}: {len(record['tasks'])} task(s) in "
        f"{sum(t['seconds'] for t in record['tasks']):.1f} s, {len(rows)} metrics"
        + (f", against {record['baseline']}" if with_baseline else ""),
        terminal_table(shown, with_baseline),
    ]
    if len(shown) < len(rows):
        lines.append(f"({len(rows) - len(shown)} more metrics in {run_dir / 'report.md'})")
    else:
        lines.append(f"report: {run_dir / 'report.md'}")
    return "\n".join(lines)


def _markdown_table(rows: Sequence[Row], with_baseline: bool) -> list[str]:
    table = _table(rows, with_baseline)
    escape = [[cell.replace("|", "\\|") for cell in line] for line in table]
    lines = ["| " + " | ".join(escape[0]) + " |", "|" + "---|" * len(escape[0])]
    return lines + ["| " + " | ".join(line) + " |" for line in escape[1:]]


def markdown(record: dict[str, Any], rows: Sequence[Row]) -> str:
    with_baseline = record["baseline"] is not None
    regressed = [row for row in rows if row.status == "REGRESSED"]
    verdict = f"**{len(regressed)} regression(s)**" if regressed else "no regression"
    lines = [
        f"# Eval run: {record['suite']}",
        "",
        record["description"].strip(),
        "",
        f"- suite file: `{record['suite_file']}` (sha256 {record['suite_sha256'][:12]})",
        f"- started {record['started_at']}, finished {record['finished_at']}",
        f"- commit: {record['git_commit'] or 'unknown'}",
        f"- baseline: {record['baseline'] or 'none'}; {verdict}",
        "",
    ]
    if regressed:
        lines += ["## Regressions", "", *_markdown_table(regressed, with_baseline), ""]
    lines += [f"- problem: {problem}" for problem in record["problems"]]
    for task in record["tasks"]:
        task_rows = [row for row in rows if row.task == task["id"]]
        lines += [
            f"## {task['id']} (`{task['task']}`, {task['seconds']:.1f} s)",
            "",
            f"params: `{json.dumps(task['params'], sort_keys=True)}`",
            "",
            *[f"{note}\n" for note in task["notes"]],
            *[f"![{name}]({name})\n" for name in task["plots"]],
            *_markdown_table(task_rows, with_baseline),
            "",
        ]
    lines += ["## Datasets", "", "| name | source | license | sha256 |", "|---|---|---|---|"]
    for name, source in sorted(record["datasets"].items()):
        where = f"{source['repo']}@{source['commit']}:{source['source_path']}"
        lines.append(f"| {name} | {where} | {source['license']} | `{source['sha256'][:16]}` |")
    return "\n".join(lines) + "\n"


def write_plots(plots: dict[str, list[Plot]], run_dir: Path, prefix: str) -> tuple[list[str], str | None]:
    """One PNG per figure, named `<prefix>-<stem>.png`; the file names, or a note why none were drawn."""
    if not plots:
        return [], None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "plots skipped: matplotlib is not installed"
    written = []
    for stem, panels in plots.items():
        columns = min(len(panels), 3)
        rows = (len(panels) + columns - 1) // columns
        figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 4.4 * rows), squeeze=False)
        for ax, panel in zip(axes.flat, panels, strict=False):
            if isinstance(panel, CostQualityPlot):
                _cost_quality(ax, panel)
            elif isinstance(panel, ConfusionPlot):
                _confusion(ax, panel)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        figure.tight_layout()
        name = f"{prefix}-{stem}.png"
        figure.savefig(run_dir / name, dpi=100)
        plt.close(figure)
        written.append(name)
    return written, None


def _cost_quality(ax: Any, panel: CostQualityPlot) -> None:
    for series in panel.series:
        if series.style == "point":
            ax.scatter(series.xs, series.ys, label=series.name, zorder=3, s=36)
        else:
            ax.plot(series.xs, series.ys, label=series.name, linewidth=1.4)
    if panel.target is not None:
        ax.axhline(panel.target, linestyle="--", linewidth=0.8, color="grey", label="quality target")
    ax.set_title(panel.title)
    ax.set_xlabel("$ per 1,000 queries")
    ax.set_ylabel("mean quality")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")


def _confusion(ax: Any, panel: ConfusionPlot) -> None:
    import numpy as np

    matrix = np.array(panel.matrix, dtype=float)
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        colour = "white" if shares[i, j] > 0.6 else "black"
        ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=8, color=colour)
    ax.set_xticks(range(len(panel.labels)), panel.labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(panel.labels)), panel.labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(panel.title)
