"""Eval suites: YAML files that name tasks, their datasets and parameters, and the gates on their metrics.

`python -m evals.suite SUITE.yaml [--out DIR] [--baseline RUN]` (also `turnout eval`) runs a suite
into a run folder (default `evals/runs/<suite>-<UTC time>/`: metrics.json, report.md, PNG plots),
prints the gated metrics and, given a baseline run, compares the two. Exit codes: 0 pass, 1 a metric
regressed beyond its gate, 2 the suite, a dataset or the baseline could not be used (one line on
stderr naming the file, line and key). A suite is validated whole before anything runs; this module
never computes a metric itself and never writes outside the run folder.

    version: 1
    name: fast
    description: free text
    tasks:
      - id: routing                   # unique in the suite, prefixes its metrics (default: the task)
        task: routing_replay          # a name from evals.tasks.TASKS
        datasets: [routellm-*, mt-bench, ...]   # registry names or globs; must cover what the task reads
        params: {benchmarks: [gsm8k], limit: 200}
        metrics:                      # gates by metric name (no task id) or glob; exact names win
          gsm8k.ours.apgr: {tolerance: 0.02}     # worse than the baseline by more than 0.02 fails
          latency.p99_us: {tolerance: 50%}       # relative to the baseline's value
          sensitive_leaks: {max: 0}              # a bound, checked on every run
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evals import datasets as registry
from evals import report
from evals.results import Better, Metric, Params, Row, TaskError
from evals.tasks import TASKS
from router.policy.yamldoc import Loc, YamlSyntaxError, compose, reason, where

REPO_ROOT = Path(__file__).resolve().parents[1]
RUNS_DIR = REPO_ROOT / "evals" / "runs"
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class SuiteError(Exception):
    """A suite, a dataset or a baseline that cannot be used; the message names file, line and key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gate(_Model):
    tolerance: float | str | None = Field(None, description="absolute slack vs the baseline, or 'N%' of it")
    min: float | None = None
    max: float | None = None

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str) and not _PERCENT.match(value):
            raise ValueError("a tolerance is a number (absolute) or a percentage such as '10%'")
        if isinstance(value, float | int) and value < 0:
            raise ValueError("a tolerance cannot be negative")
        return value

    @model_validator(mode="after")
    def _something(self) -> Gate:
        if self.tolerance is None and self.min is None and self.max is None:
            raise ValueError("a gate needs a tolerance, a min or a max")
        return self

    def slack(self, baseline: float) -> float:
        if isinstance(self.tolerance, str):
            match = _PERCENT.match(self.tolerance)
            assert match is not None  # checked on load
            return abs(baseline) * float(match.group(1)) / 100
        return float(self.tolerance or 0.0)

    def describe(self) -> str:
        parts = [] if self.tolerance is None else [f"±{self.tolerance} vs baseline"]
        parts += [] if self.min is None else [f"min {report.fmt(self.min)}"]
        parts += [] if self.max is None else [f"max {report.fmt(self.max)}"]
        return ", ".join(parts)


Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]


class TaskEntry(_Model):
    task: str
    id: Name | None = None
    datasets: list[str] = Field(min_length=1)
    params: dict[str, Any] = {}
    metrics: dict[str, Gate] = {}

    @property
    def key(self) -> str:
        return self.id or self.task


class Suite(_Model):
    version: Literal[1] = 1
    name: Name
    description: str = ""
    tasks: list[TaskEntry] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedTask:
    entry: TaskEntry
    params: Params
    datasets: tuple[str, ...]  # registry names, globs expanded


@dataclass(frozen=True)
class LoadedSuite:
    suite: Suite
    path: Path
    sha256: str
    tasks: tuple[LoadedTask, ...]
    node: yaml.Node | None  # the composed YAML, for the line of a key named after the run

    def where(self, loc: Loc, why: str) -> str:
        return where(self.path, self.node, loc, why)


# ---- loading ----------------------------------------------------------------------------------------
def _check_task(index: int, entry: TaskEntry) -> tuple[list[tuple[Loc, str]], LoadedTask | None]:
    at: Loc = ("tasks", index)
    task = TASKS.get(entry.task)
    if task is None:
        return [((*at, "task"), f"unknown task '{entry.task}'; known: {', '.join(sorted(TASKS))}")], None
    problems: list[tuple[Loc, str]] = []
    names: list[str] = []
    for j, pattern in enumerate(entry.datasets):
        matched = fnmatch.filter(registry.names(), pattern)
        if not matched:
            problems.append(((*at, "datasets", j), f"no registered dataset matches '{pattern}'"))
        names += [name for name in matched if name not in names]
    missing = [name for name in task.datasets if name not in names]
    if missing and not problems:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        problems.append(((*at, "datasets"), f"task {entry.task} also reads {shown}"))
    try:
        params = task.params.model_validate(entry.params)
    except ValidationError as error:
        for e in error.errors(include_url=False):
            problems.append(((*at, "params", *e["loc"]), reason(e)))
        return problems, None
    return problems, LoadedTask(entry, params, tuple(names))


def parse_suite(text: str, path: Path) -> LoadedSuite:
    """Validate suite YAML; SuiteError listing every problem as `file:line: key: why`."""
    try:
        node, data = compose(text, path)
    except YamlSyntaxError as error:
        raise SuiteError(str(error)) from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}:1: a suite must be a YAML mapping with a name and tasks")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as error:
        raise SuiteError(
            "; ".join(where(path, node, tuple(e["loc"]), reason(e)) for e in error.errors(include_url=False))
        ) from None
    problems: list[tuple[Loc, str]] = []
    loaded: list[LoadedTask] = []
    seen: set[str] = set()
    for i, entry in enumerate(suite.tasks):
        if entry.key in seen:
            problems.append((("tasks", i, "id"), f"task id '{entry.key}' is used twice; give each an id"))
        seen.add(entry.key)
        found, task = _check_task(i, entry)
        problems += found
        if task is not None:
            loaded.append(task)
    if problems:
        raise SuiteError("; ".join(where(path, node, loc, why) for loc, why in problems))
    digest = hashlib.sha256(text.encode()).hexdigest()
    return LoadedSuite(suite, path, digest, tuple(loaded), node)


def load_suite(path: Path) -> LoadedSuite:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SuiteError(f"{path}: cannot read suite: {error.strerror}") from None
    return parse_suite(text, path)


# ---- running and comparing ---------------------------------------------------------------------------
@dataclass
class RunResult:
    suite: str
    run_dir: Path
    rows: list[Row]
    record: dict[str, Any]
    problems: list[str] = field(default_factory=list)  # gates that could not apply: a suite mistake

    @property
    def regressions(self) -> list[Row]:
        return [row for row in self.rows if row.status == "REGRESSED"]

    @property
    def exit_code(self) -> int:
        return 2 if self.problems else 1 if self.regressions else 0


def load_baseline(path: Path, suite: str) -> tuple[str, dict[str, float]]:
    """A previous run's metric values, from its folder or its metrics.json."""
    file = path / "metrics.json" if path.is_dir() else path
    try:
        record = json.loads(file.read_text(encoding="utf-8"))
        values = {name: float(m["value"]) for name, m in record["metrics"].items()}
        name = str(record["suite"])
    except OSError as error:
        raise SuiteError(f"{file}: cannot read baseline: {error.strerror}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise SuiteError(f"{file}: not a run's metrics.json ({error})") from None
    if name != suite:
        raise SuiteError(f"{file}: the baseline is a run of suite '{name}', not '{suite}'")
    return str(file), values


def _gate_for(metric: str, gates: dict[str, Gate]) -> str | None:
    if metric in gates:
        return metric
    return next((pattern for pattern in gates if fnmatch.fnmatchcase(metric, pattern)), None)


def judge(task: str, name: str, metric: Metric, gate: Gate | None, baseline: float | None) -> Row:
    """The row of one metric: its gate in words, and ok / new / improved / REGRESSED."""
    row = Row(task, name, metric.value, metric.better, baseline)
    if gate is None:
        return row
    whys = []
    if gate.min is not None and metric.value < gate.min:
        whys.append(f"below min {report.fmt(gate.min)}")
    if gate.max is not None and metric.value > gate.max:
        whys.append(f"above max {report.fmt(gate.max)}")
    status = "ok"
    if gate.tolerance is not None and baseline is None:
        status = "new"
    elif gate.tolerance is not None and baseline is not None:
        sign = 1 if metric.better is Better.HIGHER else -1
        change = sign * (metric.value - baseline)  # > 0 is better
        slack = gate.slack(baseline)
        if change < -slack - 1e-12:
            whys.append(
                f"{'below' if sign > 0 else 'above'} baseline {report.fmt(baseline)} by more than {slack:.4g}"
            )
        elif change > slack:
            status = "improved"
    if whys:
        status = "REGRESSED"
    return Row(task, name, metric.value, metric.better, baseline, gate.describe(), status, "; ".join(whys))


def _rows_for(
    loaded: LoadedSuite, index: int, metrics: dict[str, Metric], baseline: dict[str, float] | None
) -> tuple[list[Row], list[str]]:
    """Each metric judged against its gate; gates that could not apply are the suite's mistakes."""
    entry = loaded.suite.tasks[index]
    rows, problems, used = [], [], set()
    for name, metric in metrics.items():
        pattern = _gate_for(name, entry.metrics)
        gate = entry.metrics.get(pattern) if pattern else None
        if gate is not None and pattern is not None:
            used.add(pattern)
            if gate.tolerance is not None and metric.better is Better.INFO:
                loc = ("tasks", index, "metrics", pattern)
                problems.append(loaded.where(loc, f"'{name}' is informational: gate it with min or max only"))
                gate = None
        full = f"{entry.key}.{name}"
        rows.append(judge(entry.key, full, metric, gate, None if baseline is None else baseline.get(full)))
    for pattern in entry.metrics:
        if pattern not in used:
            problems.append(
                loaded.where(("tasks", index, "metrics", pattern), "matches no metric of this run")
            )
    return rows, problems


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """The checked-out commit, from CI's variables or read from .git (git itself is not run)."""
    for variable in ("TURNOUT_GIT_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        head = (root / ".git" / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head.removeprefix("ref: ")
        loose = root / ".git" / ref
        if loose.is_file():
            return loose.read_text().strip()
        for line in (root / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        pass
    return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_run_dir(name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate = RUNS_DIR / f"{name}-{stamp}"
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = RUNS_DIR / f"{name}-{stamp}-{suffix}"
    return candidate


def resolve_datasets(loaded: LoadedSuite) -> dict[str, dict[str, str]]:
    """Every dataset of the suite, found (or downloaded) and checked against its sha256 before any
    task runs; the optional ones are recorded where they are here and left out where not."""
    sources = {}
    for task in loaded.tasks:
        extra = TASKS[task.entry.task].optional_datasets
        for name, optional in [(n, False) for n in task.datasets] + [(n, True) for n in extra]:
            if name not in sources:
                try:
                    found = registry.local(name) if optional else registry.resolve(name)
                except registry.DatasetError as error:
                    raise SuiteError(str(error)) from None
                if found is None:
                    continue
                entry = registry.REGISTRY[name]
                sources[name] = {
                    "sha256": entry.sha256,
                    "repo": entry.repo,
                    "commit": entry.commit,
                    "source_path": entry.source_path,
                    "license": entry.license,
                }
    return sources


def _run_task(
    loaded: LoadedSuite, index: int, run_dir: Path, baseline: dict[str, float] | None
) -> tuple[list[Row], list[str], dict[str, Any]]:
    """Run one task; its judged rows, the suite's mistakes it revealed, and its part of the record."""
    task = loaded.tasks[index]
    started = time.perf_counter()
    result = TASKS[task.entry.task].run(task.params)
    seconds = time.perf_counter() - started
    plots, skipped = report.write_plots(result.plots, run_dir, task.entry.key)
    rows, problems = _rows_for(loaded, index, result.metrics, baseline)
    record = {
        "id": task.entry.key,
        "task": task.entry.task,
        "params": task.params.model_dump(mode="json"),
        "datasets": list(task.datasets),
        "seconds": round(seconds, 3),
        "notes": result.notes + ([skipped] if skipped else []),
        "plots": plots,
    }
    return rows, problems, record


def _write(run_dir: Path, record: dict[str, Any], rows: list[Row]) -> None:
    record["metrics"] = {
        row.name: {
            "value": row.value,
            "better": row.better.value,
            "baseline": row.baseline,
            "gate": row.gate,
            "status": row.status,
        }
        for row in rows
    }
    record["regressions"] = [
        {"metric": r.name, "value": r.value, "baseline": r.baseline, "why": r.why}
        for r in rows
        if r.status == "REGRESSED"
    ]
    (run_dir / "metrics.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    (run_dir / "report.md").write_text(report.markdown(record, rows), encoding="utf-8")


def run_suite(path: Path, out_dir: Path | None = None, baseline_dir: Path | None = None) -> RunResult:
    """Validate the suite, resolve its data, run each task and write the run folder.

    SuiteError (exit 2) before any task runs when the suite, a dataset or the baseline cannot be used."""
    loaded = load_suite(path)
    name = loaded.suite.name
    baseline_file, baseline = load_baseline(baseline_dir, name) if baseline_dir else (None, None)
    sources = resolve_datasets(loaded)
    run_dir = out_dir or default_run_dir(name)
    run_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "suite": name,
        "description": loaded.suite.description,
        "suite_file": str(path),
        "suite_sha256": loaded.sha256,
        "started_at": _now(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "baseline": baseline_file,
        "tasks": [],
        "datasets": sources,
    }
    rows: list[Row] = []
    problems: list[str] = []
    for index in range(len(loaded.tasks)):
        task_rows, task_problems, task_record = _run_task(loaded, index, run_dir, baseline)
        rows += task_rows
        problems += task_problems
        record["tasks"].append(task_record)
    record["finished_at"] = _now()
    record["problems"] = problems
    _write(run_dir, record, rows)
    return RunResult(name, run_dir, rows, record, problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="turnout eval", description="Run an eval suite; compare it with a baseline run."
    )
    parser.add_argument("suite", type=Path, help="a suite file, e.g. evals/suites/fast.yaml")
    parser.add_argument("--out", type=Path, help="the run folder (default evals/runs/<suite>-<UTC time>)")
    parser.add_argument(
        "--baseline", type=Path, metavar="RUN", help="a previous run folder (or its metrics.json)"
    )
    args = parser.parse_args(argv)
    from router.settings import make_offline

    make_offline()
    try:
        result = run_suite(args.suite, args.out, args.baseline)
    except (SuiteError, TaskError) as error:
        print(f"turnout eval: {error}", file=sys.stderr)
        return 2
    print(report.terminal_report(result.record, result.rows, result.run_dir))
    if result.problems:
        print("turnout eval: " + "; ".join(result.problems), file=sys.stderr)
    elif result.regressions:
        print(f"\n{len(result.regressions)} metric(s) regressed:", file=sys.stderr)
        print(
            report.terminal_table(result.regressions, result.record["baseline"] is not None), file=sys.stderr
        )
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
