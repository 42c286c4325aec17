"""`ingest PATH` (also `turnout ingest PATH`): the command-line face of ingest.pipeline.

Prints one line per file it could not ingest, a progress bar on a terminal (plain log lines
otherwise), and a summary. Exit status: 0 when every file went in, 1 when some were skipped, 2 when
nothing could run (bad path, bad store URL, unreachable store).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ingest.progress import BarProgress, LineProgress

if TYPE_CHECKING:
    from ingest.pipeline import IngestOptions, Report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a folder (walked recursively) or one file")
    parser.add_argument(
        "--store",
        help="postgresql://..., qdrant://HOST:6333, qdrant+local://PATH (default: TURNOUT_STORE_URL, "
        "else the gateway's database)",
    )
    parser.add_argument("--collection", help="collection name (default: TURNOUT_COLLECTION, else docs)")
    parser.add_argument("--max-tokens", type=int, default=200, help="word pieces per chunk (≤ 254)")
    parser.add_argument("--overlap", type=int, default=32, help="word pieces repeated between split windows")
    parser.add_argument("--tag", action="append", default=[], help="tag every chunk (repeatable)")
    parser.add_argument("--max-file-mb", type=float, default=50.0, help="skip files larger than this")
    parser.add_argument("--no-prune", action="store_true", help="keep chunks of files that are gone")
    parser.add_argument(
        "--encoding", help="decode text files with this codec (default: UTF-8, or UTF-16 by BOM)"
    )
    parser.add_argument("--embedder", help="sentence-transformers model (default: TURNOUT_EMBEDDER)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _options(args: argparse.Namespace, collection: str, max_piece_tokens: int) -> IngestOptions:
    from ingest.pipeline import IngestOptions

    if not 16 <= args.max_tokens <= max_piece_tokens:
        raise ValueError(f"--max-tokens must be between 16 and {max_piece_tokens}")
    if not 0 <= args.overlap < args.max_tokens // 2:
        raise ValueError("--overlap must be at least 0 and under half of --max-tokens")
    if args.max_file_mb <= 0:
        raise ValueError("--max-file-mb must be positive")
    if args.encoding:
        import codecs

        try:
            codecs.lookup(args.encoding)
        except LookupError:
            raise ValueError(f"--encoding: unknown codec '{args.encoding}'") from None
    return IngestOptions(
        collection=collection,
        max_tokens=args.max_tokens,
        overlap=args.overlap,
        max_file_bytes=int(args.max_file_mb * 2**20),
        tags=tuple(args.tag),
        prune=not args.no_prune,
        encoding=args.encoding,
    )


async def _ingest(args: argparse.Namespace, out: TextIO) -> tuple[Report, IngestOptions]:
    from rag.embed import make_embedder
    from router.pipeline.retrieval import open_configured_store
    from router.settings import Settings

    settings = Settings()
    embedder = make_embedder(
        args.embedder or settings.embedder, settings.embed_precision, settings.embed_runtime
    )
    options = _options(args, args.collection or settings.collection, embedder.max_tokens)
    from ingest.pipeline import Ingestor

    async with open_configured_store(settings, args.store) as store:
        progress: BarProgress | LineProgress = BarProgress(out) if out.isatty() else LineProgress(out)
        try:
            report = await Ingestor(store, embedder, options).run(args.path, progress)
        finally:
            progress.close()
    return report, options


def run(args: argparse.Namespace) -> int:
    if not args.path.exists():
        print(f"ingest: {args.path}: no such file or folder", file=sys.stderr)
        return 2
    from pydantic import ValidationError

    try:
        report, options = asyncio.run(_ingest(args, sys.stderr))
    except ValidationError as error:
        from router.settings import describe_invalid

        print(f"ingest: bad setting: {describe_invalid(error)}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"ingest: {error}", file=sys.stderr)
        return 2
    if args.json:
        payload = {
            "collection": options.collection,
            "files": {status.value: count for status, count in report.files.items()},
            "unsupported": report.unsupported,
            "chunks": report.chunks,
            "seconds": round(report.seconds, 3),
            "reembedded": report.reembedded,
            "failures": [{"source": source, "error": error} for source, error in report.failures],
        }
        print(json.dumps(payload, indent=2))
    else:
        print(f"ingest: {options.collection}: {report.summary()}", file=sys.stderr)
        if report.failures:
            print(f"ingest: {len(report.failures)} file(s) skipped, listed above", file=sys.stderr)
    return 0 if report.ok else 1


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ingest", description="Put documents into a vector store.")
    add_arguments(parser)
    return parser


def quiet_libraries() -> None:
    """A bad file is reported once, on our one line: a library's own warnings about it would repeat it."""
    import logging

    for name in (
        "sentence_transformers",
        "sentence_transformers.base.model",
        "transformers",
        "httpx",
    ):
        logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    from router.settings import make_offline

    make_offline()
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    args = parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        from rag.types import StoreError

        if isinstance(error, StoreError | OSError):
            print(f"ingest: {error}".splitlines()[0], file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
