"""`turnout drift`: how far what users ask has moved, by the population stability index (PSI) of each
routing signal in the usage ledger, the current window against the reference window just before it.

The ledger is read by two aggregate statements (the reference window's prompt-token deciles, then one
scan grouped by window and by each signal with GROUPING SETS); only counts per bin reach Python,
never rows, so a million rows take about a second. Everything after is arithmetic on those counts,
kept pure so that a test can redo it by hand. It must never write to the ledger.

Each signal, its population (the rows it is computed over) and its bins:

- category: requests with a capability category (model "auto"); one bin per category.
- difficulty: the same requests; 10 equal bins on [0, 1].
- prompt_tokens: requests with prompt tokens; bins between the reference window's deciles, so that
  each holds about a tenth of the reference traffic (PSI's usual binning: fixed log2 bins would put
  most prompts in two or three bins and hide a move inside them). Equal deciles merge into one bin.
- sensitive: routed requests (route set: the signals were computed) and blocked ones; bins "no" and "yes".
- finding_types: requests with sensitivity findings; one bin per type, each type counted once per
  request that carries it, shares taken over all such counts (a distribution over types).
- route, backend: routed requests; one bin per route, per backend.
- retrieval_hit: requests that tried retrieval; "miss" (no passage) and "hit" (one or more).

A categorical value under RARE_SHARE of both windows is pooled into the bin "(rare)" (not "other",
which is a category of its own), as are values past MAX_BINS. An empty bin's share counts as EPSILON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from router.db import Pool
from router.http.errors import TurnoutError

SIGNALS = (
    "category",
    "difficulty",
    "prompt_tokens",
    "sensitive",
    "finding_types",
    "route",
    "backend",
    "retrieval_hit",
)
WATCH = 0.1  # the seed's thresholds: PSI < 0.1 stable, 0.1 to 0.25 watch, > 0.25 act
ACT = 0.25
# Two samples of one distribution still differ: their PSI averages (bins - 1) * (1/n_ref + 1/n_cur).
# At 300 rows a window that is 0.06 for ten bins (0.03 against a 7-day reference seven times larger),
# so a signal with fewer rows in either window gets no PSI rather than a noisy one.
MIN_ROWS = 300
EPSILON = 1e-4  # the share an empty bin counts as: ln(c/r) stays finite, a new 5% bin alone gives 0.31
RARE_SHARE = 0.01
MAX_BINS = 12
RARE = "(rare)"
REQUESTS = ""  # the key that counts finding_types' requests beside its per-type counts
DIFFICULTY_BINS = 10
DECILES = [i / 10 for i in range(1, 10)]
FIXED_BINS = {"sensitive": ["no", "yes"], "retrieval_hit": ["miss", "hit"]}


@dataclass
class SignalDrift:
    signal: str
    psi: float | None  # None when a window has fewer than MIN_ROWS rows for this signal
    status: str  # "stable", "watch", "act" or "too few rows"
    bins: list[str]
    reference: list[float]  # share per bin
    current: list[float]
    reference_rows: int = 0  # the signal's population in each window
    current_rows: int = 0


@dataclass
class DriftReport:
    reference_start: datetime
    reference_end: datetime
    current_start: datetime
    current_end: datetime
    reference_rows: int
    current_rows: int
    signals: list[SignalDrift] = field(default_factory=list)

    def signal(self, name: str) -> SignalDrift:
        return next(s for s in self.signals if s.signal == name)

    def to_json(self) -> dict[str, Any]:
        """What `turnout drift --json` prints (keys documented in README)."""
        return {
            "reference_start": self.reference_start.isoformat(),
            "reference_end": self.reference_end.isoformat(),
            "current_start": self.current_start.isoformat(),
            "current_end": self.current_end.isoformat(),
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "thresholds": {"watch": WATCH, "act": ACT, "min_rows": MIN_ROWS, "epsilon": EPSILON},
            "signals": [
                {
                    "signal": s.signal,
                    "psi": round(s.psi, 6) if s.psi is not None else None,
                    "status": s.status,
                    "reference_rows": s.reference_rows,
                    "current_rows": s.current_rows,
                    "bins": s.bins,
                    "reference": [round(x, 6) for x in s.reference],
                    "current": [round(x, 6) for x in s.current],
                }
                for s in self.signals
            ],
        }


# ---- the arithmetic, on counts -------------------------------------------------------------------
def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """Σ (c - r) ln(c / r) over the bins, each share at least EPSILON."""
    if len(reference) != len(current):
        raise ValueError("reference and current need the same bins")
    total = 0.0
    for r, c in zip(reference, current, strict=True):
        r, c = max(r, EPSILON), max(c, EPSILON)
        total += (c - r) * math.log(c / r)
    return total


def status_of(value: float | None) -> str:
    if value is None:
        return "too few rows"
    if value < WATCH:
        return "stable"
    return "watch" if value <= ACT else "act"


def shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts)
    return [count / total if total else 0.0 for count in counts]


def pool_rare(reference: dict[str, int], current: dict[str, int]) -> list[str]:
    """The bins of a categorical signal: its values by combined share, those under RARE_SHARE in both
    windows and those past MAX_BINS left out (they go to RARE)."""
    ref_total, cur_total = sum(reference.values()) or 1, sum(current.values()) or 1

    def share(value: str) -> float:
        return max(reference.get(value, 0) / ref_total, current.get(value, 0) / cur_total)

    values = sorted(set(reference) | set(current), key=lambda v: (-share(v), v))
    kept = [v for v in values if share(v) >= RARE_SHARE]
    if len(kept) == len(values) and len(kept) <= MAX_BINS:
        return kept
    return [*kept[: MAX_BINS - 1], RARE]


def signal_drift(
    name: str, bins: list[str], reference: dict[str, int], current: dict[str, int]
) -> SignalDrift:
    """PSI of one signal from its counts per value; values not in `bins` go to the RARE bin."""
    ref_counts, cur_counts = _binned(bins, reference), _binned(bins, current)
    ref_rows, cur_rows = sum(reference.values()), sum(current.values())
    if name == "finding_types":  # counts are per type; the population is requests with findings
        ref_rows, cur_rows = reference.get(REQUESTS, 0), current.get(REQUESTS, 0)
    value = psi(shares(ref_counts), shares(cur_counts)) if min(ref_rows, cur_rows) >= MIN_ROWS else None
    return SignalDrift(
        name, value, status_of(value), bins, shares(ref_counts), shares(cur_counts), ref_rows, cur_rows
    )


def _binned(bins: list[str], counts: dict[str, int]) -> list[int]:
    binned = [counts.get(b, 0) for b in bins]
    if bins and bins[-1] == RARE:
        binned[-1] = sum(n for value, n in counts.items() if value not in bins and value != REQUESTS)
    return binned


def token_bins(edges: list[int]) -> list[str]:
    """Labels of the prompt-token bins width_bucket makes from sorted, distinct `edges` (bin 0 below
    the first edge, bin i from edge i up to the next); bin 0 is dropped when the first edge is 1."""
    labels = [f"<{edges[0]}"] if edges and edges[0] > 1 else []
    for low, high in pairwise(edges):
        labels.append(f"{low}" if high == low + 1 else f"{low}-{high - 1}")
    labels.append(f">={edges[-1]}" if edges else "all")
    return labels


def difficulty_bins() -> list[str]:
    step = 1 / DIFFICULTY_BINS
    return [f"{i * step:.1f}-{(i + 1) * step:.1f}" for i in range(DIFFICULTY_BINS)]


# ---- the ledger ----------------------------------------------------------------------------------
EDGES_SQL = """
SELECT percentile_disc(%(deciles)s::float8[]) WITHIN GROUP (ORDER BY prompt_tokens) AS edges
FROM turnout_usage WHERE ts >= %(ref_start)s AND ts < %(ref_end)s AND prompt_tokens > 0
  AND route IS DISTINCT FROM 'embeddings'
"""
# One scan of both windows; each grouping set counts one signal's bins per window. A NULL bin is a
# row outside that signal's population (see the module docstring). `ungrouped` has a bit per signal,
# the first signal's the highest, set where that column is not grouped in the row's set. width_bucket
# puts a difficulty of 1.0 in bin 11; it is clamped into 1..10 (after the NULL test: greatest() would
# make a NULL bin 1).
COUNTS_SQL = f"""
SELECT cur, category, difficulty, prompt_tokens, sensitive, finding_types, route, backend,
       retrieval_hit, count(*) AS n,
       GROUPING(category, difficulty, prompt_tokens, sensitive, finding_types, route, backend,
                retrieval_hit) AS ungrouped
FROM (
    SELECT ts >= %(cur_start)s AS cur, category,
           CASE WHEN difficulty IS NOT NULL THEN least(greatest(
               width_bucket(difficulty, 0, 1, {DIFFICULTY_BINS}), 1), {DIFFICULTY_BINS}) END AS difficulty,
           -- no reference deciles (an empty reference window): one bin, "all", not NULL for every row
           CASE WHEN prompt_tokens > 0 THEN coalesce(width_bucket(prompt_tokens, %(edges)s::int[]), 1) END
               AS prompt_tokens,
           CASE WHEN route IS NOT NULL OR sensitive THEN sensitive END AS sensitive,  -- blocked: no route
           finding_types, route, backend, passages > 0 AS retrieval_hit
    FROM turnout_usage WHERE ts >= %(ref_start)s AND ts < %(cur_end)s
      AND route IS DISTINCT FROM 'embeddings'  -- what users ask, not what gets embedded
) AS rows
GROUP BY GROUPING SETS ((cur), {", ".join(f"(cur, {name})" for name in SIGNALS)})
"""


async def read_counts(
    pool: Pool, ref_start: datetime, cur_start: datetime, cur_end: datetime
) -> tuple[list[int], list[dict[str, Any]]]:
    """The reference window's distinct prompt-token deciles and the grouped counts."""
    found = await pool.fetch_one(
        EDGES_SQL, {"deciles": DECILES, "ref_start": ref_start, "ref_end": cur_start}
    )
    edges = sorted(set(found["edges"] or [])) if found else []
    rows = await pool.fetch_all(
        COUNTS_SQL,
        {"cur_start": cur_start, "ref_start": ref_start, "cur_end": cur_end, "edges": edges or None},
    )
    return edges, rows


def _bin_label(name: str, value: Any, edges: list[int], labels: list[str]) -> str:
    if name == "difficulty":
        return difficulty_bins()[int(value) - 1]
    if name == "prompt_tokens":
        return labels[int(value) - (0 if edges and edges[0] > 1 else 1)]
    if name == "sensitive":
        return "yes" if value else "no"
    if name == "retrieval_hit":
        return "hit" if value else "miss"
    return str(value)


def drift_from_counts(rows: list[dict[str, Any]], edges: list[int]) -> tuple[int, int, list[SignalDrift]]:
    """Rows per window and each signal's drift, from COUNTS_SQL's grouped rows."""
    labels = token_bins(edges)
    totals = {False: 0, True: 0}
    counts: dict[str, dict[bool, Counter[str]]] = {s: {False: Counter(), True: Counter()} for s in SIGNALS}
    for row in rows:
        grouped = [s for i, s in enumerate(SIGNALS) if not row["ungrouped"] >> (len(SIGNALS) - 1 - i) & 1]
        if not grouped:
            totals[row["cur"]] += row["n"]
            continue
        (name,) = grouped
        value = row[name]
        if value is None:
            continue
        window = counts[name][row["cur"]]
        if name == "finding_types":  # "email,person": one count for each type, and one request
            for kind in str(value).split(","):
                window[kind] += row["n"]
            window[REQUESTS] += row["n"]
        else:
            window[_bin_label(name, value, edges, labels)] += row["n"]
    signals = []
    for name in SIGNALS:
        ref, cur = counts[name][False], counts[name][True]
        if name in FIXED_BINS:
            bins = FIXED_BINS[name]
        elif name == "difficulty":
            bins = difficulty_bins()
        elif name == "prompt_tokens":
            bins = labels
        else:
            bins = pool_rare(
                {k: v for k, v in ref.items() if k != REQUESTS},
                {k: v for k, v in cur.items() if k != REQUESTS},
            )
        signals.append(signal_drift(name, bins, dict(ref), dict(cur)))
    return totals[False], totals[True], signals


async def compute_drift(
    pool: Pool, reference: timedelta, current: timedelta, *, now: datetime | None = None
) -> DriftReport:
    """Each signal's PSI, the window [now - current, now) against the `reference` span before it."""
    if reference <= timedelta(0) or current <= timedelta(0):
        raise ValueError("the reference and current windows must be longer than zero")
    now = now or datetime.now(UTC)
    cur_start = now - current
    ref_start = cur_start - reference
    edges, rows = await read_counts(pool, ref_start, cur_start, now)
    ref_rows, cur_rows, signals = drift_from_counts(rows, edges)
    return DriftReport(ref_start, cur_start, cur_start, now, ref_rows, cur_rows, signals)


# ---- the command ---------------------------------------------------------------------------------
_SPAN = re.compile(r"^(\d+(?:\.\d+)?)([mhdw])$")
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


MAX_SPAN = timedelta(days=36_500)  # two such spans back from now stay after year 1


def parse_span(option: str, text: str) -> timedelta:
    """'30m', '24h', '7d' or '2w', longer than zero; else a TurnoutError naming the option."""
    match = _SPAN.match(text.strip())
    try:
        span = timedelta(seconds=float(match[1]) * _UNITS[match[2]]) if match else None
    except OverflowError:
        span = None
    if span is None or span <= timedelta(0) or span > MAX_SPAN:
        raise TurnoutError(
            f"{option} {text!r}: use a span longer than zero and at most 100 years, such as 30m, 24h, 7d or 2w"
        )
    return span


def format_span(span: timedelta) -> str:
    """'7d', '24h', '90m': the largest unit that divides the span (seconds as a last resort)."""
    seconds = span.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def render_text(report: DriftReport) -> str:
    """The table `turnout drift` prints."""

    def when(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")

    windows = (
        ("reference", report.reference_start, report.reference_end, report.reference_rows),
        ("current", report.current_start, report.current_end, report.current_rows),
    )
    lines = [
        f"{name:<9} {format_span(end - start):>5}: {when(start)} to {when(end)} UTC, {rows:,} rows"
        for name, start, end, rows in windows
    ]
    lines += [
        f"{'SIGNAL':<14} {'PSI':>7}  {'STATUS':<13} {'REF ROWS':>10} {'CUR ROWS':>10}",
    ]
    for s in report.signals:
        shown = f"{s.psi:.3f}" if s.psi is not None else "-"
        lines.append(
            f"{s.signal:<14} {shown:>7}  {s.status:<13} {s.reference_rows:>10,} {s.current_rows:>10,}"
        )
    lines.append(
        f"thresholds: PSI < {WATCH} stable, {WATCH}-{ACT} watch, > {ACT} act; "
        f"no PSI under {MIN_ROWS} rows in a window"
    )
    return "\n".join(lines)


def write_png(report: DriftReport, path: Path) -> None:
    """Small multiples: per signal, the reference and current shares of each bin, the PSI in the title."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = 4
    rows = math.ceil(len(report.signals) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.6 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).flatten()
    for ax, s in zip(axes, report.signals, strict=False):
        x = np.arange(len(s.bins))
        ax.bar(x - 0.2, s.reference, 0.4, label=f"reference ({s.reference_rows:,})")
        ax.bar(x + 0.2, s.current, 0.4, label=f"current ({s.current_rows:,})")
        ax.set_xticks(x, [label[:14] for label in s.bins], rotation=60, ha="right", fontsize=7)
        shown = f"PSI {s.psi:.3f}" if s.psi is not None else "no PSI"
        ax.set_title(f"{s.signal}: {shown} ({s.status})", fontsize=10)
        ax.set_ylabel("share")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3, axis="y")
        if not s.reference_rows and not s.current_rows:
            ax.set_ylim(0, 1)
            ax.text(0.5, 0.5, "no rows", transform=ax.transAxes, ha="center", color="grey")
    for ax in axes[len(report.signals) :]:
        ax.set_visible(False)
    figure.suptitle(
        f"drift: current {report.current_start:%Y-%m-%d %H:%M} to {report.current_end:%Y-%m-%d %H:%M} UTC "
        f"against the {format_span(report.reference_end - report.reference_start)} before"
    )
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=90)


async def _read(reference: timedelta, current: timedelta) -> DriftReport:
    from router.db import open_database, open_pool
    from router.settings import Settings

    database = await asyncio.to_thread(open_database, Settings())
    try:
        pool = await open_pool(database.url, max_size=2)
        try:
            return await compute_drift(pool, reference, current)
        finally:
            await pool.close()
    finally:
        database.release()


def cmd_drift(args: argparse.Namespace) -> int:
    """`turnout drift`: 0 with the report (whatever it finds); 2 for a bad window or a database that
    cannot be reached (as every verb: README, Command line)."""
    from router.db import DatabaseUnreachable

    reference = parse_span("--reference", args.reference)
    current = parse_span("--current", args.current)
    try:
        report = asyncio.run(_read(reference, current))
    except DatabaseUnreachable as error:
        print(f"turnout: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report.to_json(), indent=2) if args.json else render_text(report))
    if args.png is not None:
        write_png(report, args.png)
        if not args.json:
            print(f"png: {args.png}")
    return 0
