"""Builds the list of public figures' and fictional characters' names that the gateway ships.

Run as `python -m evals.training.build_public_names` (a development step, like build_names). It
reads two registered lists through the dataset registry (sha256-checked; `python -m evals.datasets
fetch wikidata-people wikidata-fictional` puts them into the cache): about 12,000 widely known
people and about 26,000 distinct fictional characters' names, both collected from Wikidata by
geru-scotland/lore-nexus (MIT; Wikidata's labels are CC0). Each name is reduced to the key the
runtime compares by (public_names.normalise: lower case, no accents, dots, hyphens or possessives)
and the keys are written, sorted and once each, to router/signals/data/public_names.txt.gz, which
is committed: a gateway on a machine that cannot download finds these names too. Nothing else is
kept from the files. fivethirtyeight's list (`public-figures`) is not built in: the gateway reads it
from the mirror folder where there is one.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Iterable
from pathlib import Path

from evals.datasets import REGISTRY, DatasetError, resolve
from router.signals.sensitivity.public_names import PACKAGED, full_name_keys

SOURCES = ("wikidata-people", "wikidata-fictional")
# lore-nexus's license (its LICENSE file), which goes with every copy of a substantial portion of
# what it publishes; the names themselves are Wikidata labels (CC0)
LORE_NEXUS_LICENSE = """MIT License

Copyright (c) 2024 Aingeru García (https://github.com/geru-scotland)

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


def header(sources: Iterable[str]) -> list[str]:
    """Comment lines naming each source file: repository, commit, path, license, sha256."""
    lines = ["# keys of public figures' and fictional characters' names (evals.training.build_public_names)"]
    for name in sources:
        dataset = REGISTRY[name]
        lines.append(
            f"# {name}: {dataset.repo} @ {dataset.commit} : {dataset.source_path}; "
            f"{dataset.license}; sha256 {dataset.sha256}"
        )
    lines.append("# geru-scotland/lore-nexus's license:")
    return lines + [f"# {line}".rstrip() for line in LORE_NEXUS_LICENSE.splitlines()]


def build(paths: Iterable[Path]) -> list[str]:
    """The sorted keys, words joined by one space, of every name in these files."""
    names: list[str] = []
    for path in paths:
        names += path.read_text(encoding="utf-8").splitlines()
    return sorted({" ".join(key) for key in full_name_keys(names)})


def write(output: Path) -> int:
    keys = build(resolve(name, download=False) for name in SOURCES)
    text = "\n".join([*header(SOURCES), *keys]) + "\n"
    # mtime 0 and no file name in the gzip header: the same keys give the same bytes on any machine
    with open(output, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(text.encode("utf-8"))
    return len(keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PACKAGED)
    args = parser.parse_args(argv)
    try:
        count = write(args.output)
    except DatasetError as error:
        print(f"build_public_names: {error}", file=sys.stderr)
        return 1
    print(f"{count} names written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
