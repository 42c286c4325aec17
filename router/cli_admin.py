"""The administrative verbs of `turnout`: keys, teams and the usage ledger, all against Postgres.

Split from router.cli so each stays small; the same rules hold: one-line errors on stderr, exit 1 when
the thing asked for does not exist, and never a key printed except once, on creation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from typing import Any

from router.http.errors import TurnoutError
from router.settings import Settings


async def _with_store(action: Any) -> Any:
    from router.accounts.auth import KeyStore
    from router.db import open_database, open_pool

    database = await asyncio.to_thread(open_database, Settings())
    try:
        pool = await open_pool(database.url, max_size=2)
        try:
            return await action(KeyStore(pool))
        finally:
            await pool.close()
    finally:
        database.release()


def _limit_changes(args: argparse.Namespace) -> dict[str, Any]:
    """--rpm/--tpm/--concurrent/--usd-day/--usd-month as given (0 or less: remove that limit)."""
    changes: dict[str, Any] = {}
    for name in ("rpm", "tpm", "concurrent", "usd_day", "usd_month"):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value if value > 0 else None
    return changes


def _limits_text(limits: dict[str, Any]) -> str:
    return " ".join(f"{name}={value}" for name, value in limits.items()) or "-"


def cmd_keys(args: argparse.Namespace) -> int:
    from router.accounts.auth import OnBudget
    from router.accounts.limits import Limits

    if args.keys_command == "create":
        _warn_unknown_models(args.allow)
        limits = Limits(**{k: v for k, v in _limit_changes(args).items() if v is not None})
        on_budget = OnBudget(args.on_budget)

        async def create(store: Any) -> tuple[str, str]:
            await _warn_unknown_team(store, args.team)
            created: tuple[str, str] = await store.create(
                args.name,
                args.allow or None,
                team=args.team,
                limits=limits,
                on_budget=on_budget,
                private=args.private,
            )
            return created

        key_id, key = asyncio.run(_with_store(create))
        if args.json:
            from router.accounts.auth import limits_to_dict

            print(
                json.dumps(
                    {
                        "id": key_id,
                        "name": args.name,
                        "key": key,
                        "allowed_models": args.allow or None,
                        "team": args.team,
                        "limits": limits_to_dict(limits),
                        "on_budget": on_budget.value,
                        "private": args.private,
                    }
                )
            )
        else:
            print(f"created {key_id} ({args.name}); the key is shown only once:\n{key}")
        return 0
    if args.keys_command == "update":
        _warn_unknown_models(args.allow)
        changes = _limit_changes(args)
        new_rule = OnBudget(args.on_budget) if args.on_budget else None

        async def update(store: Any) -> bool:
            await _warn_unknown_team(store, args.team)
            updated: bool = await store.update(
                args.id,
                limits=changes,
                team=args.team,
                clear_team=args.no_team,
                on_budget=new_rule,
                allowed_models=args.allow,
                private=args.private,
            )
            return updated

        if not asyncio.run(_with_store(update)):
            print(f"turnout: no active key with id {args.id}", file=sys.stderr)
            return 1
        print(f"updated {args.id}")
        return 0
    if args.keys_command == "revoke":
        if not asyncio.run(_with_store(lambda store: store.revoke(args.id))):
            print(f"turnout: no active key with id {args.id}", file=sys.stderr)
            return 1
        print(f"revoked {args.id}")
        return 0
    rows = asyncio.run(_with_store(lambda store: store.list()))
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    print(
        f"{'ID':<18} {'NAME':<20} {'PREFIX':<12} {'CREATED':<20} {'STATUS':<8} {'TEAM':<12} {'MODELS':<12} LIMITS"
    )
    for row in rows:
        status = "revoked" if row["revoked_at"] else "active"
        models = ",".join(row["allowed_models"] or []) or "*"
        created = row["created_at"].strftime("%Y-%m-%d %H:%M:%S")
        shown = (
            _limits_text(row["limits"])
            + (" on_budget=downgrade" if row["on_budget"] == "downgrade" else "")
            + (" private" if row["private"] else "")
        )
        print(
            f"{row['id']:<18} {row['name'][:20]:<20} {row['prefix']:<12} {created:<20} {status:<8} "
            f"{(row['team'] or '-')[:12]:<12} {models[:12]:<12} {shown}"
        )
    return 0


def cmd_teams(args: argparse.Namespace) -> int:
    if args.teams_command == "set":
        changes = _limit_changes(args)
        asyncio.run(_with_store(lambda store: store.set_team(args.name, changes)))
        print(f"team {args.name} updated")
        return 0
    rows = asyncio.run(_with_store(lambda store: store.teams()))
    if args.json:
        print(json.dumps(rows, default=str))
        return 0
    print(f"{'TEAM':<20} {'KEYS':>5}  LIMITS")
    for row in rows:
        print(f"{row['name'][:20]:<20} {row['keys']:>5}  {_limits_text(row['limits'])}")
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    from router.accounts.usage import baseline_price, parse_since, summarize
    from router.policy.model import load_policy

    try:
        since = parse_since(args.since)
    except ValueError as error:
        raise TurnoutError(str(error)) from None
    settings = Settings()
    try:
        baseline = baseline_price(load_policy(args.policy or settings.policy).policy, args.baseline)
    except ValueError as error:
        raise TurnoutError(f"--{error}") from None

    async def query(store: Any) -> dict[str, Any]:
        summary: dict[str, Any] = await summarize(
            store.pool,
            since=since,
            by=args.by,
            key=args.key,
            team=args.team,
            baseline=baseline[1] if baseline else None,
        )
        return summary

    summary = asyncio.run(_with_store(query))
    summary["baseline_backend"] = baseline[0] if baseline else None
    if args.json:
        print(json.dumps(summary, default=str, indent=2))
        return 0
    print(f"usage since {summary['since']} by {args.by}")
    print(
        f"{args.by.upper():<24} {'REQS':>7} {'ERRS':>5} {'PROMPT':>9} {'OUTPUT':>9} {'COST $':>10} {'P50 MS':>8}"
    )
    for group in summary["groups"]:
        # requests refused before a route was chosen (an unknown model, a 403) have none
        label = group[args.by] if group[args.by] is not None else _UNSET.get(args.by, "(none)")
        print(
            f"{str(label)[:24]:<24} {group['requests']:>7} {group['errors']:>5} "
            f"{group['prompt_tokens']:>9} {group['completion_tokens']:>9} {group['cost_usd']:>10.4f} "
            f"{group['latency_p50_ms']:>8.1f}"
        )
    totals = summary["totals"]
    print(
        f"{'total':<24} {totals['requests']:>7} {totals['errors']:>5} {totals['prompt_tokens']:>9} "
        f"{totals['completion_tokens']:>9} {totals['cost_usd']:>10.4f}"
    )
    if baseline is not None:
        print(
            f"all on {baseline[0]}: ${totals['baseline_usd']:.4f}; saved ${totals['saved_usd']:.4f} "
            f"({totals['saved_share']:.1%})"
        )
    return 0


_UNSET = {"route": "(not routed)", "backend": "(not sent)", "model": "(not sent)", "team": "(no team)"}


# (argparse names the type by the function: "invalid count value: 'x'")
def counted(maximum: int) -> Any:
    """A limit's argument type: a whole number from 0 (which removes the limit) to `maximum`, the
    bound the admin API takes too (router.accounts.limits)."""

    def count(text: str) -> int:
        value = int(text)
        if not 0 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{value} is not from 0 to {maximum} (0 removes the limit)")
        return value

    return count


def amount(text: str) -> float:
    from router.accounts.limits import MAX_USD

    value = float(text)
    if not (math.isfinite(value) and 0 <= value <= MAX_USD):  # nan and inf too
        raise argparse.ArgumentTypeError(
            f"{text} is not a number of dollars from 0 to {MAX_USD:g} (0 removes the budget)"
        )
    return value


def team_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a team needs a name (leave --team out for none)")
    return text.strip()


def key_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a key needs a name")
    return text.strip()


def limit_arguments(parser: argparse.ArgumentParser) -> None:
    from router.accounts.limits import MAX_CONCURRENT, MAX_RPM, MAX_TPM

    group = parser.add_argument_group("limits (0 removes one)")
    group.add_argument("--rpm", type=counted(MAX_RPM), help="requests per minute (per window)")
    group.add_argument(
        "--tpm", type=counted(MAX_TPM), help="tokens per minute: prompt + max_tokens reserved, then settled"
    )
    group.add_argument("--concurrent", type=counted(MAX_CONCURRENT), help="requests in flight at once")
    group.add_argument("--usd-day", type=amount, help="USD budget per UTC day")
    group.add_argument("--usd-month", type=amount, help="USD budget per UTC month")


async def _warn_unknown_team(store: Any, team: str | None) -> None:
    """--team names a team `turnout teams set` made: say so when none has that name (a typo gave a
    key a team with no limits); the key still joins it, and the team's limits apply once set."""
    if team is None:
        return
    teams = await store.teams()
    if team not in {row["name"] for row in teams}:
        known = ", ".join(sorted(row["name"] for row in teams)) or "none yet"
        print(
            f"turnout: warning: no team {team!r} has limits (`turnout teams set {team} ...`); teams: {known}",
            file=sys.stderr,
        )


def _warn_unknown_models(allowed: list[str] | None) -> None:
    """--allow names each model a key may use: say so on stderr when the policy has no such model
    (a typo made a key that could use nothing); the key is still made, as a backend may come later."""
    if not allowed:
        return
    from router.pipeline.embeddings import local_model_id
    from router.policy.model import load_policy

    settings = Settings()
    try:
        policy = load_policy(settings.policy).policy
    except Exception:  # the policy's own errors are `policy check`'s to report
        return
    known = {"auto", *policy.backends, *policy.embeddings, local_model_id(settings.embedder)}
    for model in allowed:
        if model not in known:
            print(
                f"turnout: warning: --allow {model!r} is no model of {settings.policy} "
                f"(its models: {', '.join(sorted(known))})",
                file=sys.stderr,
            )
