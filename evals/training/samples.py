"""Builds the registry's sampled files from windows of their sources.

Two labelled JSON-lines sources are too large to copy whole onto a machine without a network, so
turnout trains on windows of them: fixed, evenly spaced 16,000-character slices of the file as
published (window k of n starts at k * (total - 16,000) // (n - 1)), of which every complete record
is kept. The same slices of a full download give the same sample, so each sample is reproducible
from its source:

    python -m evals.training.samples dolly --full databricks-dolly-15k.jsonl
    python -m evals.training.samples folio --windows DIR   # DIR/w_<offset>.txt, as read

writes it into the dataset cache (`~/.cache/turnout/datasets/<local_path>`), where
`evals.datasets.resolve` checks it against its registered sha256. Nothing here is ever written into
the repository.

- dolly: databricks-dolly-15k (CC-BY-SA-3.0), 48 windows: 15,011 instructions people wrote in eight
  task categories, with the passage they refer to (`context`).
- folio: FOLIO's training set (Yale-LILY/FOLIO, CC-BY-SA-4.0), 12 windows: natural-language premises
  written by people, a conclusion, and whether it follows (first-order logic puzzles).

One more is not a window of one file but a selection from many: Super-NaturalInstructions
(allenai/natural-instructions, Apache-2.0) keeps each of its 1,600 tasks in a file of its own,
`tasks/<task>.json`, of up to several megabytes, and no network reached them here. The sample holds,
for each chosen task, its definition and its first six instances (fewer for a few), as read through
a stored index of public repositories; labels/ni_train_categories.tsv records, per task, the commit it
was read at and the instance ids kept:

    python -m evals.training.samples ni --tasks DIR   # DIR/task*.json: one extract per task
    python -m evals.training.samples ni --fetch       # each task file at its commit, from GitHub

An extract is {"task", "commit", "categories", "definition" (the file's Definition[0]), "instances":
[{"id", "input"}, ...]}. `--fetch` needs a network: it downloads each task file at the recorded
commit and keeps the listed instances, so anyone can check the sample against the published files.

And two are projections: Arena-Bench v1's judgements of Mixtral-8x7B-Instruct's and of
GPT-4-1106-preview's answers (lmarena/arena-hard-auto, Apache-2.0; 1.75 and 2.0 MB, mostly the
answers and the judge's reasoning) are kept as each judgement's question id and grade, in file order,
which is all evals.heldout reads:

    python -m evals.training.samples arena-mixtral --full Mixtral-8x7B-Instruct-v0.1.jsonl
    python -m evals.training.samples arena-gpt4 --fetch   # the judgement file at its commit, from GitHub
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import sys
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evals.datasets import REGISTRY
from router import datafiles

WINDOW = 16_000
# (total characters of the source as published, number of windows): window k starts at
# k * (total - WINDOW) // (count - 1).
SHAPES = {"dolly-15k-sample": (13_216_783, 48), "folio-sample": (767_202, 12)}


def offsets(total: int, count: int) -> list[int]:
    return [k * (total - WINDOW) // (count - 1) for k in range(count)]


def windows_from_full(text: str, count: int) -> list[str]:
    return [text[start : start + WINDOW] for start in offsets(len(text), count)]


def windows_from_folder(folder: Path) -> list[str]:
    """Windows saved one per file (`w_<offset>.txt` or `p_<offset>.txt`), in offset order."""
    files = sorted(
        (p for p in folder.glob("[wp]_*.txt") if p.stem[2:].isdigit()), key=lambda p: int(p.stem[2:])
    )
    return [path.read_text(encoding="utf-8") for path in files]


def complete_lines(window: str, first: bool) -> list[str]:
    """The window's whole lines: the first one is cut unless the window starts the file, and the
    last one is cut unless it ends with a newline."""
    lines = window.split("\n")
    if not first:
        lines = lines[1:]
    if lines and not window.endswith("\n"):
        lines = lines[:-1]
    return [line for line in lines if line.strip()]


def records(windows: list[str], keep: tuple[str, ...]) -> list[dict[str, Any]]:
    """The `keep` fields of every whole JSON record of the windows, each record once."""
    rows, seen = [], set()
    for index, window in enumerate(windows):
        for line in complete_lines(window, first=index == 0):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by the window's edge
            row = {k: record[k] for k in keep}
            key = json.dumps(row, sort_keys=True)
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


def dolly_rows(windows: list[str]) -> list[dict[str, Any]]:
    return records(windows, ("instruction", "context", "category"))


def folio_rows(windows: list[str]) -> list[dict[str, Any]]:
    return records(windows, ("premises", "conclusion", "label"))


NI_FIELDS = ("task", "commit", "categories", "definition")


def ni_rows(folder: Path) -> list[dict[str, Any]]:
    """One row per instance: the task's fields and the instance's id and input, tasks in name order
    and instances in file order."""
    rows = []
    for path in sorted(folder.glob("task*.json")):
        task = json.loads(path.read_text(encoding="utf-8"))
        for instance in task["instances"]:
            rows.append({**{k: task[k] for k in NI_FIELDS}, "id": instance["id"], "input": instance["input"]})
    return rows


NI_RAW = "https://raw.githubusercontent.com/allenai/natural-instructions"


def ni_rows_fetched(base_url: str = NI_RAW, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The same rows from the published task files: each at the commit the labels file records,
    with the instances it lists, in its order."""
    from evals.training.instructions import ni_selection

    rows = []
    for task, commit, ids in ni_selection():
        with urllib.request.urlopen(f"{base_url}/{commit}/tasks/{task}.json", timeout=timeout) as reply:
            published = json.loads(reply.read().decode("utf-8"))
        definition = published["Definition"]
        fields = {
            "task": task,
            "commit": commit,
            "categories": published["Categories"],
            "definition": definition[0] if isinstance(definition, list) else definition,
        }
        inputs = {instance["id"]: instance["input"] for instance in published["Instances"]}
        absent = [i for i in ids if i not in inputs]
        if absent:
            raise ValueError(f"{task} at {commit} has no instance {absent[0]}")
        rows += [{**fields, "id": i, "input": inputs[i]} for i in ids]
    return rows


ARENA_RAW = "https://raw.githubusercontent.com/lmarena/arena-hard-auto"
# Arena-Bench v1's judgement files, kept as projections: the command's name -> the registry's
ARENA = {"arena-mixtral": "arena-bench-v1-mixtral", "arena-gpt4": "arena-bench-v1-gpt4"}


def arena_rows(text: str) -> list[dict[str, Any]]:
    """Each judgement's question id and grade, in file order (None where the file holds null: a
    grade the judge's text gave in a form it could not read, such as [[7.5]])."""
    rows = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            score = record["score"]
            if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
                raise ValueError(f"{record['question_id']}: the grade {score!r} is not an integer")
            rows.append({"question_id": record["question_id"], "score": score})
    return rows


def arena_text_fetched(name: str, base_url: str = ARENA_RAW, timeout: float = 60.0) -> str:
    """The published judgement file behind the registry's `name`, at the commit it records."""
    dataset = REGISTRY[name]
    with urllib.request.urlopen(
        f"{base_url}/{dataset.commit}/{dataset.source_path}", timeout=timeout
    ) as reply:
        return str(reply.read().decode("utf-8"))


def write(name: str, rows: Iterable[dict[str, Any]]) -> tuple[Path, str]:
    """Into the cache only when it is the registered file; otherwise nothing is left there."""
    target = datafiles.cache_dir() / REGISTRY[name].local_path
    target.parent.mkdir(parents=True, exist_ok=True)
    data = gzip.compress(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode(), mtime=0
    )
    digest = hashlib.sha256(data).hexdigest()
    if digest == REGISTRY[name].sha256:
        partial = target.with_suffix(target.suffix + ".part")
        partial.write_bytes(data)
        partial.rename(target)
    return target, digest


BUILDERS = {"dolly": ("dolly-15k-sample", dolly_rows), "folio": ("folio-sample", folio_rows)}
FOLDERS = {"ni": ("ni-train-sample", ni_rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.training.samples", description=__doc__)
    parser.add_argument("sample", choices=sorted([*BUILDERS, *FOLDERS, *ARENA]))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--full", type=Path, help="the whole source file, as published")
    source.add_argument("--windows", type=Path, help="a folder of the windows, one file each")
    source.add_argument("--tasks", type=Path, help="ni: a folder of task extracts, one JSON file each")
    source.add_argument(
        "--fetch", action="store_true", help="ni, arena-*: download the published files (network)"
    )
    parser.add_argument("--base-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sample in ARENA:
        name = ARENA[args.sample]
        if args.windows or args.tasks:
            parser.exit(2, f"samples: {args.sample} is built from --full FILE or --fetch\n")
        try:
            text = (
                arena_text_fetched(name, args.base_url or ARENA_RAW)
                if args.fetch
                else args.full.read_text(encoding="utf-8")
            )
            rows = arena_rows(text)
        except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException) as error:
            parser.exit(1, f"samples: {args.sample}: {error!r}\n")
        return _report(name, rows, "the published judgements")
    if args.sample in FOLDERS:
        name, from_folder = FOLDERS[args.sample]
        if args.fetch:
            try:
                rows = ni_rows_fetched(args.base_url or NI_RAW)
            except (OSError, ValueError, KeyError, http.client.HTTPException) as error:
                parser.exit(1, f"samples: {args.sample}: {error!r}\n")
            return _report(name, rows, f"{len({r['task'] for r in rows})} published task files")
        if not args.tasks:
            parser.exit(2, f"samples: {args.sample} is built from --tasks DIR or --fetch\n")
        try:
            rows = from_folder(args.tasks)
        except (OSError, ValueError, KeyError, TypeError) as error:
            parser.exit(
                1, f"samples: {args.sample}: {args.tasks} is not a folder of task extracts: {error!r}\n"
            )
        return _report(name, rows, f"{len(list(args.tasks.glob('task*.json')))} tasks")
    if args.tasks or args.fetch:
        parser.exit(2, f"samples: {args.sample} is built from --full FILE or --windows DIR\n")
    name, build = BUILDERS[args.sample]
    total, count = SHAPES[name]
    if args.full:
        text = args.full.read_text(encoding="utf-8")
        if len(text) != total:
            parser.exit(2, f"samples: {args.full} has {len(text):,} characters, the source has {total:,}\n")
        windows = windows_from_full(text, count)
    else:
        starts = sorted(int(p.stem[2:]) for p in args.windows.glob("[wp]_*.txt") if p.stem[2:].isdigit())
        if starts != offsets(total, count):
            parser.exit(
                2, f"samples: {args.windows} does not hold the {count} windows at {offsets(total, count)}\n"
            )
        windows = windows_from_folder(args.windows)
    return _report(name, build(windows), f"{len(windows)} windows")


def _report(name: str, rows: list[dict[str, Any]], made_from: str) -> int:
    target, digest = write(name, rows)
    if digest != REGISTRY[name].sha256:
        print(
            f"samples: {name}: {len(rows)} rows, sha256 {digest} is not the registered one; nothing written"
        )
        return 1
    print(f"{name}: {len(rows)} rows from {made_from} -> {target} (sha256 checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
