"""The one result format of `turnout bench gateway|ingest|retrieval`: JSON plus a Markdown table.

A `BenchResult` is a suite name, the machine it ran on, the parameters of the run and rows of
measurements; a row may carry a baseline measured in the same run (then its ratio is value / baseline)
and a target on the value or on the ratio. Every figure is a comparison within one run on one machine,
never an absolute claim, which is why the machine's load is recorded at the start and at the end. This
module only formats and writes: it never measures anything and never imports a heavy library.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Bound(StrEnum):
    AT_LEAST = "≥"
    AT_MOST = "≤"


class On(StrEnum):
    VALUE = "value"
    RATIO = "ratio"


@dataclass(frozen=True)
class Target:
    """A goal for a row: `on` the value or the ratio, at least or at most `limit`."""

    bound: Bound
    limit: float
    on: On = On.RATIO

    def met(self, row: Row) -> bool | None:
        figure = row.ratio if self.on is On.RATIO else row.value
        if figure is None:
            return None
        return figure >= self.limit if self.bound is Bound.AT_LEAST else figure <= self.limit

    def __str__(self) -> str:
        suffix = "×" if self.on is On.RATIO else ""
        return f"{self.on.value} {self.bound.value} {self.limit:g}{suffix}"


@dataclass
class Row:
    """One measurement. `baseline` is in the same unit, from the same run (or quoted, see `note`)."""

    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        return self.target.met(self) if self.target is not None else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": str(self.target) if self.target else None,
            "met": self.met,
            "note": self.note,
        }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


@dataclass
class Machine:
    cpu_count: int
    cpu_model: str
    python: str
    date: str
    load_at_start: float | None  # 1-minute load average: other work on the same cores
    load_at_end: float | None = None

    @classmethod
    def now(cls) -> Machine:
        return cls(
            os.cpu_count() or 0,
            _cpu_model(),
            platform.python_version(),
            time.strftime("%Y-%m-%d %H:%M:%S %z"),
            _load(),
        )

    def describe(self) -> str:
        load = f"load {self.load_at_start} → {self.load_at_end}" if self.load_at_start is not None else ""
        return ", ".join(
            part
            for part in (self.date, f"{self.cpu_count} × {self.cpu_model}", f"Python {self.python}", load)
            if part
        )


def _figure(value: float | None) -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    if magnitude == 0 or magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class BenchResult:
    suite: str
    parameters: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: Machine = field(default_factory=Machine.now)

    def add(self, name: str, value: float | None, unit: str, **options: Any) -> Row:
        row = Row(name, value, unit, **options)
        self.rows.append(row)
        return row

    def finish(self) -> BenchResult:
        self.machine.load_at_end = _load()
        return self

    def to_json(self) -> str:
        payload = {
            "suite": self.suite,
            "machine": asdict(self.machine),
            "parameters": self.parameters,
            "rows": [row.as_dict() for row in self.rows],
            "notes": self.notes,
        }
        return json.dumps(payload, indent=2, ensure_ascii=False, default=str)

    def to_markdown(self) -> str:
        lines = [f"# turnout bench {self.suite}", "", self.machine.describe(), ""]
        if self.parameters:
            lines += [", ".join(f"{key}: {value}" for key, value in self.parameters.items()), ""]
        lines += [
            "| measurement | value | unit | baseline | baseline value | ratio | target | met |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows:
            met = {True: "yes", False: "**no**", None: ""}[row.met]
            ratio = f"{_figure(row.ratio)}×" if row.ratio is not None else ""
            baseline = _figure(row.baseline) if row.baseline is not None else ""
            lines.append(
                f"| {_cell(row.name)} | {_figure(row.value)} | {row.unit} | {_cell(row.baseline_name)} | "
                f"{baseline} | {ratio} | {row.target or ''} | {met} |"
            )
        notes = [f"{row.name}: {row.note}" for row in self.rows if row.note] + self.notes
        if notes:
            lines += ["", *(f"- {_cell(note)}" for note in notes)]
        return "\n".join(lines) + "\n"

    def report(self, out_dir: Path | str | None) -> int:
        """Print the table, and write it to `out_dir` when one is given (a bench's `--out`); 0."""
        print(self.to_markdown())
        if out_dir is not None:
            self.write(out_dir)
        return 0

    def write(self, out_dir: Path | str) -> list[Path]:
        """`<suite>.json` and `<suite>.md` in `out_dir` (created if missing)."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        paths = [folder / f"{self.suite}.json", folder / f"{self.suite}.md"]
        paths[0].write_text(self.to_json() + "\n", encoding="utf-8")
        paths[1].write_text(self.to_markdown(), encoding="utf-8")
        return paths


@dataclass
class Sample:
    latencies: list[float]
    errors: int
    seconds: float  # from the first counted call's start to the last one's end
    cpu_s: float = 0.0
    calls: int = 0  # warm-up calls included: what the server's CPU time is divided by

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0
