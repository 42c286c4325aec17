"""Builds the person-name gazetteer that router.signals.sensitivity.names loads at run time.

Run as `python -m evals.training.build_names` (a development step; needs the dev extra's `faker`).
It gathers the first and last names of Faker's person providers (Faker, MIT license) across every
locale, keeping names written in Latin script (romanised lists included) and transliterating the
Cyrillic ones, as people write them in English text. Common English words come from Faker's lorem
list and, when present, the system word list /usr/share/dict/words (Debian `wamerican`, SCOWL by
Kevin Atkinson, permissive license: `apt-get install wamerican` before rebuilding). Everything is
written casefolded to router/signals/data/names.txt.gz. The runtime must never import faker: only
this script does, and the artifact it writes is committed.
"""

from __future__ import annotations

import gzip
import importlib
import pkgutil
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from router.signals.sensitivity.gazetteer import GAZETTEER

OUTPUT = GAZETTEER  # router/signals/data/names.txt.gz, read by the runtime


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words, in order: keeps long word lists readable in source."""
    return tuple(text.split())


SYSTEM_WORDS = Path("/usr/share/dict/words")
ENGLISH_LOCALES = ("en_US", "en_GB", "en_IE", "en_NZ", "en_CA", "en_AU")
WORDS_NOTICE = "# common words include SCOWL (c) Kevin Atkinson; see /usr/share/doc/wamerican/copyright"
_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
        _words("""
a b v g d e yo zh z i y k l m n o p r s t u f kh ts ch sh shch - y - e yu ya i yi ye g
"""),
        strict=True,
    )
)
# Joined names ("de la Cruz") and single letters are matched token by token at run time, so the
# gazetteer keeps only single tokens of two letters or more.
MIN_LENGTH = 2


def is_latin_name(name: str) -> bool:
    return len(name) >= MIN_LENGTH and all(
        unicodedata.name(char, "").startswith("LATIN") or char in "'-" for char in name
    )


def transliterate(name: str) -> str:
    """Cyrillic to Latin (BGN/PCGN-like, simplified); other scripts come back unchanged."""
    out = []
    for char in name.lower():
        latin = _CYRILLIC.get(char, char)
        out.append("" if latin == "-" else latin)
    return "".join(out)


def _name_attrs(provider: type, kind: str) -> list[str]:
    """first_names, first_names_female, first_romanized_names, male_last_names, ... (not kana or pairs)."""
    return [
        attr
        for attr in dir(provider)
        if kind in attr
        and "name" in attr
        and not attr.startswith("_")
        and "kana" not in attr
        and "pair" not in attr
    ]


def _provider_names(provider: type, attrs: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for attr in attrs:
        value = getattr(provider, attr, None)
        # Some providers expose computed properties or weighted dicts; only plain collections count.
        if isinstance(value, dict | list | tuple | set | frozenset):
            found.update(str(item) for item in value)
    return found


def _split(names: Iterable[str]) -> set[str]:
    tokens: set[str] = set()
    for name in names:
        for token in name.replace("-", " ").split():
            if not is_latin_name(token):
                token = transliterate(token)
            if is_latin_name(token):
                tokens.add(token.casefold())
    return tokens


def collect_names(english: set[str]) -> tuple[set[str], set[str]]:
    """First and last names; an English word stays only if an English-speaking locale lists it.

    Some locales' lists carry stray words ("valid", "among"); "Mark" and "Baker" are real names.
    """
    import faker.providers.person as person

    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = importlib.import_module(f"{person.__name__}.{module.name}").Provider
        local_first = _split(_provider_names(provider, _name_attrs(provider, "first")))
        local_last = _split(_provider_names(provider, _name_attrs(provider, "last")))
        if not module.name.startswith(ENGLISH_LOCALES):
            local_first -= english
            local_last -= english
        first |= local_first
        last |= local_last
    return first, last


def common_english_words() -> set[str]:
    """Faker's lorem list: the most frequent English words, which veto a first-name reading."""
    from faker.providers.lorem.en_US import Provider as Lorem

    return {word.casefold() for word in Lorem.word_list}


def english_words() -> set[str]:
    """A full dictionary: a capitalised word found here is no evidence of a surname."""
    words: set[str] = set()
    if SYSTEM_WORDS.is_file():
        for line in SYSTEM_WORDS.read_text(encoding="utf-8").splitlines():
            # Lowercase entries only: the list also holds proper nouns ("Natalia"), capitalised.
            if line.islower() and line.isalpha() and len(line) > 1:
                words.add(line)
    else:
        print(f"warning: {SYSTEM_WORDS} not found; common words limited to Faker's lorem list")
    return words


def render(first: set[str], last: set[str], common: set[str], english: set[str]) -> str:
    lines = [WORDS_NOTICE, "#first", *sorted(first), "#last", *sorted(last), "#common", *sorted(common)]
    lines += ["#english", *sorted(english - common)]
    return "\n".join(lines) + "\n"


def main() -> None:
    common, english = common_english_words(), english_words()
    first, last = collect_names(common | english)
    text = render(first, last, common, english)
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the artifact byte-identical across rebuilds of the same Faker version.
    OUTPUT.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"{OUTPUT}: {len(first)} first names, {len(last)} last names, {OUTPUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
