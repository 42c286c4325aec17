"""What an eval task hands back: named metrics with a direction, and the data behind its plots.

Plain values only, so a task can be tested without the suite runner and a run can be written as
JSON. Nothing here computes a metric or draws anything; it must stay free of I/O.

    TaskError          a task cannot run as configured (e.g. a policy backend the emulators cannot stand in for)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """A task's parameters, as a suite writes them under `params:`; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Better(StrEnum):
    """Which way a metric improves; `info` metrics (counts, sizes) are reported and never gated by a baseline."""

    HIGHER = "higher"
    LOWER = "lower"
    INFO = "info"


@dataclass(frozen=True)
class Metric:
    value: float
    better: Better


@dataclass(frozen=True)
class Series:
    """One line or point set of a cost-quality plot: x in dollars per 1,000 queries, y a mean quality."""

    name: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    style: str = "line"  # line | point


@dataclass(frozen=True)
class CostQualityPlot:
    title: str
    series: tuple[Series, ...]
    target: float | None = None  # the quality target, drawn as a horizontal line


@dataclass(frozen=True)
class ConfusionPlot:
    title: str
    labels: tuple[str, ...]
    matrix: tuple[tuple[int, ...], ...]  # rows: true, columns: predicted


Plot = CostQualityPlot | ConfusionPlot


@dataclass
class TaskResult:
    metrics: dict[str, Metric] = field(default_factory=dict)
    plots: dict[str, list[Plot]] = field(default_factory=dict)  # file stem -> panels of one figure
    notes: list[str] = field(default_factory=list)  # lines for the Markdown report

    def add(self, name: str, value: float | None, better: Better) -> None:
        """Record a metric; a value that does not exist (e.g. a target never reached) is left out."""
        if value is not None:
            self.metrics[name] = Metric(float(value), better)


class TaskError(Exception):
    """A task cannot run as the suite configured it; the message says why in one line."""


@dataclass(frozen=True)
class Row:
    """One metric of a run as the reports show it, next to its baseline and its gate."""

    task: str  # the suite's task id
    name: str  # the full metric name, `<task id>.<metric>`
    value: float
    better: Better
    baseline: float | None = None
    gate: str = ""  # the gate in words, e.g. "±0.01 vs baseline, max 0"
    status: str = ""  # "", ok, new, improved, REGRESSED
    why: str = ""  # for a regression: what it fell beyond

    @property
    def delta(self) -> float | None:
        return None if self.baseline is None else self.value - self.baseline
