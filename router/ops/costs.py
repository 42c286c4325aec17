"""`turnout report costs`: what the ledger's traffic cost, what it would have cost all on the dearest
backend, and for each self-hosted backend the monthly volume above which it beats the API it replaces.

The ledger is read by one aggregate query grouped by backend (never its rows); everything after is
arithmetic on the policy and those sums, kept pure so that a test can redo it by hand. It must never
write to the ledger. A month is 730 hours (8,760 / 12), for the GPU's bill and the extrapolated volume
alike. Counted are the rows with tokens, whatever their status: a stream cut short still used the
GPU or was billed by the API, and a row without tokens costs nothing on any backend.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from router.db import Pool
from router.http.errors import TurnoutError
from router.policy.model import GpuCost, Policy, Price

HOURS_PER_MONTH = 730.0
SHORT_WINDOW_H = 24.0  # under a day of traffic, a month extrapolated from it is said to be one
COUNTED = "rows with prompt or completion tokens, any status"

# Decode time is the upstream's share of a row's latency (less the gateway's own overhead), over
# answered rows with output; it still holds queueing and prefill, so the rate is a lower bound.
USAGE_SQL = """
SELECT backend, count(*) AS requests,
       coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(completion_tokens), 0) AS completion_tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       coalesce(sum(completion_tokens) FILTER (WHERE {decoded}), 0) AS decode_tokens,
       coalesce(sum(latency_ms - overhead_ms) FILTER (WHERE {decoded}), 0) / 1000.0 AS decode_s
FROM turnout_usage
WHERE ts >= %(since)s AND (prompt_tokens > 0 OR completion_tokens > 0)
  AND route IS DISTINCT FROM 'embeddings'  -- chat traffic: embeddings are priced per model of their own
GROUP BY backend ORDER BY cost_usd DESC, backend
""".format(decoded="status = 200 AND completion_tokens > 0 AND latency_ms > overhead_ms")


@dataclass(frozen=True, slots=True)
class BackendUse:
    """One backend's sums over the window."""

    backend: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    decode_tokens: int = 0
    decode_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Window:
    """The period the sums cover: from `--since`, or from the ledger's first row when that is later
    (a gateway started a week ago has a week of traffic, not a thinner month), up to now."""

    since: datetime
    start: datetime
    end: datetime

    @property
    def hours(self) -> float:
        return max((self.end - self.start).total_seconds(), 0.0) / 3600

    def per_month(self, amount: float) -> float:
        return amount * HOURS_PER_MONTH / self.hours if self.hours > 0 else 0.0


async def read_usage(
    pool: Pool, since: datetime, now: datetime | None = None
) -> tuple[Window, list[BackendUse]]:
    """The window and each backend's sums since `since`, aggregated in Postgres."""
    now = now or datetime.now(UTC)
    first = await pool.fetch_one("SELECT min(ts) AS first FROM turnout_usage")
    begins = first["first"] if first else None
    window = Window(since, max(since, begins) if begins is not None else since, now)
    rows = await pool.fetch_all(USAGE_SQL, {"since": since})
    uses = [
        BackendUse(
            backend=row["backend"],
            requests=int(row["requests"]),
            prompt_tokens=int(row["prompt_tokens"]),
            completion_tokens=int(row["completion_tokens"]),
            cost_usd=float(row["cost_usd"]),
            decode_tokens=int(row["decode_tokens"]),
            decode_s=float(row["decode_s"]),
        )
        for row in rows
    ]
    return window, uses


def usd_per_token(price: Price, input_share: float) -> float:
    """What one token costs at this share of input tokens (the rest output)."""
    return (input_share * price.input_per_mtok + (1 - input_share) * price.output_per_mtok) / 1e6


def dearest_backend(policy: Policy, prompt: int, completion: int) -> str:
    """The backend that would have charged most for these tokens (for 1,000 in and 1,000 out when
    there are none)."""
    weights = (prompt, completion) if prompt + completion else (1000, 1000)
    return max(policy.backends, key=lambda name: policy.backends[name].unit_price.cost(*weights))


def replaced_backend(policy: Policy, name: str, input_share: float | None) -> tuple[str | None, str | None]:
    """The API a self-hosted backend stands in for, and why that one: `gpu.replaces` when the policy
    says; else the cheapest external priced backend a route lists next to it; else the cheapest
    external priced backend at all. The cheapest, because that is the bill self-hosting must beat."""
    spec = policy.backends[name]
    if spec.gpu is not None and spec.gpu.replaces is not None:
        return spec.gpu.replaces, "policy"
    share = 0.5 if input_share is None else input_share
    external = [n for n, s in policy.backends.items() if s.data == "external" and s.gpu is None]
    neighbours = {b for route in policy.routes if name in route.backends for b in route.backends}
    for candidates, reason in (
        ([n for n in external if n in neighbours], "shared route"),
        (external, "cheapest"),
    ):
        if candidates:
            return min(candidates, key=lambda n: usd_per_token(policy.backends[n].unit_price, share)), reason
    return None, None


def self_hosted(
    policy: Policy,
    name: str,
    gpu: GpuCost,
    input_share: float | None,
    tokens_per_month: float,
    own: BackendUse | None,
    window: Window,
) -> dict[str, Any]:
    """The break-even figures of one backend with a `gpu` block; those that need the traffic's
    input/output mix are None when the window had no tokens."""
    api, reason = replaced_backend(policy, name, input_share)
    benchmark_rate = gpu.output_tokens_per_hour / 3600
    observed = own.decode_tokens / own.decode_s if own is not None and own.decode_s > 0 else None
    item: dict[str, Any] = {
        "backend": name,
        "gpu_cost_per_hour": gpu.cost_per_hour,
        "monthly_cost_usd": round(gpu.cost_per_hour * HOURS_PER_MONTH, 6),
        "input_tokens_per_month": gpu.input_rate * HOURS_PER_MONTH,
        "output_tokens_per_month": gpu.output_tokens_per_hour * HOURS_PER_MONTH,
        "capacity_tokens_per_month": None,
        "usd_per_mtok_at_full_use": None,
        "replaces": api,
        "replaces_chosen_by": reason,
        "api_usd_per_mtok": None,
        "break_even_tokens_per_month": None,
        "tokens_per_month": round(tokens_per_month, 3),
        "served_tokens_per_month": round(
            window.per_month(own.prompt_tokens + own.completion_tokens) if own else 0.0, 3
        ),
        "above_break_even": None,
        "replicas_needed": 0,
        "api_cost_per_month": None,
        "self_hosted_cost_per_month": None,
        "cheaper": None,
        "benchmark_output_tokens_per_s": round(benchmark_rate, 3),
        "observed_decode_tokens_per_s": round(observed, 3) if observed is not None else None,
        "implied_concurrent_streams": round(benchmark_rate / observed, 2) if observed else None,
        "note": None,
    }
    if input_share is None:
        item["note"] = "no traffic in the window to take an input/output mix from"
        return item
    api_price = policy.backends[api].unit_price if api is not None else None
    item.update(break_even(gpu, api, api_price, input_share, tokens_per_month))
    return item


def break_even(
    gpu: GpuCost, api: str | None, api_price: Price | None, input_share: float, volume: float
) -> dict[str, Any]:
    """Capacity and cost per token at this mix, the volume where one replica's monthly bill equals
    the API's, and the replicas (`ceil(volume / capacity)`) and both bills at `volume` a month."""
    monthly = gpu.cost_per_hour * HOURS_PER_MONTH
    capacity = HOURS_PER_MONTH / (
        input_share / gpu.input_rate + (1 - input_share) / gpu.output_tokens_per_hour
    )
    full_use = monthly / capacity
    replicas = math.ceil(round(volume / capacity, 9))
    figures: dict[str, Any] = {
        "capacity_tokens_per_month": round(capacity, 3),
        "usd_per_mtok_at_full_use": round(full_use * 1e6, 6),
        "replicas_needed": replicas,
    }
    if api is None or api_price is None:
        figures["note"] = "the policy has no external priced backend to compare with"
        return figures
    api_rate = usd_per_token(api_price, input_share)
    figures["api_usd_per_mtok"] = round(api_rate * 1e6, 6)
    if api_rate <= 0 or full_use >= api_rate:
        figures["note"] = f"dearer than {api} at any volume: even a full replica costs more per token"
        figures["above_break_even"] = False
    else:
        figures["break_even_tokens_per_month"] = round(monthly / api_rate, 3)
        figures["above_break_even"] = volume >= monthly / api_rate
    if volume > 0:
        figures["api_cost_per_month"] = round(api_rate * volume, 6)
        figures["self_hosted_cost_per_month"] = round(replicas * monthly, 6)
        figures["cheaper"] = "self-hosted" if replicas * monthly < api_rate * volume else "api"
    return figures


def cost_report(
    policy: Policy, window: Window, uses: list[BackendUse], policy_path: str = ""
) -> dict[str, Any]:
    """Every figure of the report, as `--json` prints it (keys documented in README)."""
    prompt = sum(use.prompt_tokens for use in uses)
    completion = sum(use.completion_tokens for use in uses)
    tokens = prompt + completion
    charged = sum(use.cost_usd for use in uses)
    input_share = prompt / tokens if tokens else None
    dearest = dearest_backend(policy, prompt, completion)
    dearest_cost = policy.backends[dearest].unit_price.cost(prompt, completion)
    by_name = {use.backend: use for use in uses}
    notes = []
    if not uses:
        notes.append("no traffic with tokens in the window")
    elif window.hours < SHORT_WINDOW_H:
        notes.append(
            f"the ledger covers only {window.hours:.1f} h of this window: monthly figures are that traffic "
            f"times {HOURS_PER_MONTH / max(window.hours, 1e-9):,.0f}, not a month's measure"
        )
    if all(spec.gpu is None for spec in policy.backends.values()):
        notes.append("the policy has no self-hosted backend (one with `gpu`): no break-even to compute")
    return {
        "since": window.since.isoformat(),
        "window_start": window.start.isoformat(),
        "window_end": window.end.isoformat(),
        "window_hours": round(window.hours, 6),
        "hours_per_month": HOURS_PER_MONTH,
        "counted": COUNTED,
        "policy": policy_path,
        "backends": [
            {
                "backend": use.backend,
                "requests": use.requests,
                "prompt_tokens": use.prompt_tokens,
                "completion_tokens": use.completion_tokens,
                "cost_usd": round(use.cost_usd, 6),
            }
            for use in uses
        ],
        "totals": {
            "requests": sum(use.requests for use in uses),
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "tokens": tokens,
            "input_share": round(input_share, 6) if input_share is not None else None,
            "cost_usd": round(charged, 6),
            "tokens_per_month": round(window.per_month(tokens), 3),
            "cost_usd_per_month": round(window.per_month(charged), 6),
        },
        "dearest": {
            "backend": dearest,
            "usd_per_mtok": round(dearest_cost / tokens * 1e6, 6) if tokens else None,
            "cost_usd": round(dearest_cost, 6),
            "saved_usd": round(dearest_cost - charged, 6),
        },
        "self_hosted": [
            self_hosted(
                policy, name, spec.gpu, input_share, window.per_month(tokens), by_name.get(name), window
            )
            for name, spec in policy.backends.items()
            if spec.gpu is not None
        ],
        "notes": notes,
    }


def _tokens(count: float | None) -> str:
    if count is None:
        return "-"
    for size, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(count) >= size:
            return f"{count / size:.3g}{unit}"
    return f"{count:.0f}"


def render_text(report: dict[str, Any]) -> str:
    """The compact table `turnout report costs` prints."""
    totals, dearest = report["totals"], report["dearest"]
    lines = [
        f"costs since {report['window_start'][:19]} ({report['window_hours']:.1f} h; {report['counted']})",
        f"{'BACKEND':<20} {'REQS':>8} {'INPUT':>9} {'OUTPUT':>9} {'COST $':>12}",
    ]
    for row in report["backends"]:
        lines.append(
            f"{str(row['backend'])[:20]:<20} {row['requests']:>8} {_tokens(row['prompt_tokens']):>9} "
            f"{_tokens(row['completion_tokens']):>9} {row['cost_usd']:>12.4f}"
        )
    lines.append(
        f"{'total':<20} {totals['requests']:>8} {_tokens(totals['prompt_tokens']):>9} "
        f"{_tokens(totals['completion_tokens']):>9} {totals['cost_usd']:>12.4f}"
    )
    lines.append(
        f"all on {dearest['backend']} (the dearest for these tokens): ${dearest['cost_usd']:.4f}, "
        f"${dearest['saved_usd']:.4f} more than charged"
    )
    lines.append(
        f"a month at this rate: {_tokens(totals['tokens_per_month'])} tokens, "
        f"${totals['cost_usd_per_month']:,.2f} as charged"
    )
    for item in report["self_hosted"]:
        lines += ["", *_self_hosted_lines(item)]
    lines += [f"note: {note}" for note in report["notes"]]
    return "\n".join(lines)


def _self_hosted_lines(item: dict[str, Any]) -> list[str]:
    name = item["backend"]
    lines = [
        f"self-hosted {name}: ${item['gpu_cost_per_hour']:g}/h a replica = ${item['monthly_cost_usd']:,.2f} a month; "
        f"serves {_tokens(item['input_tokens_per_month'])} input or {_tokens(item['output_tokens_per_month'])} "
        f"output tokens a month, {_tokens(item['capacity_tokens_per_month'])} on this mix",
        f"  decode: {item['benchmark_output_tokens_per_s']:.1f} tok/s a server benchmarked; observed "
        + (
            f"{item['observed_decode_tokens_per_s']:.1f} tok/s a stream (~{item['implied_concurrent_streams']:g} "
            "streams batched at the benchmark's rate)"
            if item["observed_decode_tokens_per_s"] is not None
            else "nothing (no answered rows with output)"
        ),
    ]
    if item["api_usd_per_mtok"] is not None:
        lines.append(
            f"  replaces {item['replaces']} ({item['replaces_chosen_by']}): ${item['api_usd_per_mtok']:.3f}/Mtok "
            f"on this mix; {name} at full use ${item['usd_per_mtok_at_full_use']:.3f}/Mtok"
        )
    if item["break_even_tokens_per_month"] is not None:
        side = "above" if item["above_break_even"] else "below"
        lines.append(
            f"  break-even: {_tokens(item['break_even_tokens_per_month'])} tokens a month; this traffic's "
            f"{_tokens(item['tokens_per_month'])} is {side} it"
        )
    if item["cheaper"] is not None:
        lines.append(
            f"  at that volume: {item['replicas_needed']} replica(s) ${item['self_hosted_cost_per_month']:,.2f} "
            f"against {item['replaces']} ${item['api_cost_per_month']:,.2f}: {item['cheaper']} is cheaper"
        )
    if item["note"]:
        lines.append(f"  note: {item['note']}")
    return lines


def plottable(report: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The self-hosted backends a cost curve can be drawn for, or why there are none."""
    items = report["self_hosted"]
    if not items:
        return [], "the policy has no self-hosted backend (one with `gpu`)"
    drawn = [
        i for i in items if i["api_usd_per_mtok"] and i["capacity_tokens_per_month"] and i["monthly_cost_usd"]
    ]
    if not drawn:
        return [], next((i["note"] for i in items if i["note"]), "a free GPU or a free API has no curve")
    return drawn, None


def write_plot(items: list[dict[str, Any]], path: Path) -> None:
    """Monthly cost against monthly volume (log-log, one panel per self-hosted backend): the API's
    line, the self-hosted replicas' steps, the break-even and the current volume marked."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # a tooling extra: the CLI says so
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 4.6 * len(items)))
    FigureCanvasAgg(figure)
    for ax, item in zip(figure.subplots(len(items), 1, squeeze=False)[:, 0], items, strict=True):
        monthly, capacity = item["monthly_cost_usd"], item["capacity_tokens_per_month"]
        api_rate, break_even = item["api_usd_per_mtok"] / 1e6, item["break_even_tokens_per_month"]
        current = item["tokens_per_month"]
        marks = [v for v in (break_even, current, capacity) if v]
        volumes = np.geomspace(min(marks) / 30, max(marks) * 30, 4000)
        ax.plot(volumes, api_rate * volumes, label=f"{item['replaces']} API (${api_rate * 1e6:.2f}/Mtok)")
        ax.plot(
            volumes,
            np.ceil(volumes / capacity) * monthly,
            drawstyle="steps-post",
            label=f"{item['backend']}: replicas x ${monthly:,.0f}/month",
        )
        if break_even is not None:
            ax.axvline(break_even, linestyle="--", color="grey", linewidth=0.9)
            ax.plot(
                [break_even],
                [monthly],
                "o",
                color="black",
                label=f"break-even {_tokens(break_even)} tok/month",
            )
        if current:
            ax.axvline(current, linestyle=":", color="tab:red", label=f"current {_tokens(current)} tok/month")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("tokens per month (this traffic's input/output mix)")
        ax.set_ylabel("USD per month")
        ax.set_title(f"{item['backend']} self-hosted against {item['replaces']}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)


async def _with_pool(action: Any) -> Any:
    from router.db import open_database, open_pool
    from router.settings import Settings

    database = await asyncio.to_thread(open_database, Settings())
    try:
        pool = await open_pool(database.url, max_size=2)
        try:
            return await action(pool)
        finally:
            await pool.close()
    finally:
        database.release()


def cmd_costs(args: argparse.Namespace) -> int:
    """`turnout report costs`: 0 with the report (also when the window is empty); 1 when a plot was
    asked for and there is nothing to draw; 2 for bad input or an unreachable database."""
    from router.accounts.usage import parse_since
    from router.policy.model import load_policy
    from router.settings import Settings

    try:
        since = parse_since(args.since)
    except ValueError as error:
        raise TurnoutError(str(error)) from None
    if since > datetime.now(UTC):
        raise TurnoutError(f"--since {args.since!r} is in the future")
    path = args.policy or Settings().policy
    policy = load_policy(path).policy
    window, uses = asyncio.run(_with_pool(lambda pool: read_usage(pool, since)))
    report = cost_report(policy, window, uses, str(path))
    print(json.dumps(report, indent=2) if args.json else render_text(report))
    if args.plot is None:
        return 0
    items, why_not = plottable(report)
    if why_not is not None:
        print(f"turnout: no plot written: {why_not}", file=sys.stderr)
        return 1
    write_plot(items, args.plot)
    if not args.json:
        print(f"plot: {args.plot}")
    return 0
