"""Countries', US states' and cities' names are places, not people: GeoNames' names of two words or
more ship with the gateway (rebuilt from the registered tables byte for byte where they are here),
a found full name that is one is not a person, and a town named like a private person is not kept."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from router.signals.sensitivity import places
from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.public_names import normalise


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of Burkina Faso?",
        "Is Costa Rica safe for tourists in July?",
        "Plan a 5-day trip to Sierra Leone.",
        "Things to do in Rio de Janeiro with kids",
        "Should I visit Porto Alegre or Belo Horizonte?",
        "Sri Lanka's economy after 2022, in three bullet points",
        "how hot is new mexico in june",
        "I love Rio de Janeiro and Porto Alegre.",  # not 'Janeiro' and 'Porto' as a list of names
        "Weekend in Santa Cruz de Tenerife, what to do?",  # found from its second word
        "Is San Jose del Monte safe at night?",
        "What is the capital of Trinidad and Tobago?",  # not 'Trinidad' and 'Tobago' as two names
        "Best beaches in Antigua and Barbuda?",
    ],
)
def test_a_place_named_in_a_request_is_no_person(text: str) -> None:
    assert [f.type for f in SensitivityDetector().scan(text)] == []


def test_people_named_like_towns_and_people_beside_places_are_still_found() -> None:
    detector = SensitivityDetector()
    # "Juan Díaz" is a town of 15,000+ people in Panama, and a common Spanish name: not kept
    assert [f.type for f in detector.scan("Send the contract to Juan Diaz tomorrow.")] == ["person"]
    assert [f.type for f in detector.scan("Send the file to Maria Jose del Monte today.")] == ["person"]
    text = "Email Lucia Fernandez about her transfer to the Buenos Aires office."
    assert [text[f.start : f.end] for f in detector.scan(text)] == ["Lucia Fernandez"]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Sam and Lee on the finance team need access to the shared drive.", "Lee"),  # "Lee-on-the-Solent"
        ("Either Avi or Yehuda said they would pick up the keys.", "Yehuda"),  # "Or Yehuda", a city
        ("Did Mia and Owen sound worried when they called?", "Owen"),  # "Owen Sound", a city
    ],
)
def test_a_listed_name_beside_lowercase_words_that_spell_a_place_is_still_found(text: str, name: str) -> None:
    """A name is held as a place's word only where the place is written as a name, its first and
    last words capitalised: a second reviewer's sentences, whose names the first cut lost."""
    assert name in [text[f.start : f.end] for f in SensitivityDetector().scan(text)]


@pytest.mark.parametrize(
    "text",
    [
        "Emerson Hill is my son and he is being bullied at school.",  # a town in Australia
        "Call Cicero Dantas on +55 11 98765-4321 about the order.",  # a town in Brazil
        "Jose Rizal, our new tenant, wants the lease renewed.",  # a city in the Philippines
        "Trinidad and Tobago called me about my loan.",  # a list of two people, by the text's words
    ],
)
def test_a_person_named_like_a_town_is_found_where_the_text_says_more_about_people(text: str) -> None:
    """A place's name is not looked up in a text that ties people to the writer or holds other
    personal data, as a listed public figure's name is not."""
    assert "person" in [f.type for f in SensitivityDetector().scan(text)]


def test_place_keys_are_of_two_words_or_more_without_common_names() -> None:
    from evals.training.build_places import keys, place_names

    countries = {
        "BF": {"name": "Burkina Faso", "capital": "Ouagadougou"},
        "CR": {"name": "Costa Rica", "capital": "San José"},
    }
    states = {"NM": {"name": "New Mexico"}}
    cities = {"1": {"name": "Juan Díaz"}, "2": {"name": "Lyon"}, "3": {"name": "Rio de Janeiro"}}
    names = place_names(countries, states, cities)
    assert names == [
        "Burkina Faso",
        "Costa Rica",
        "Ouagadougou",
        "San José",
        "New Mexico",
        "Juan Díaz",
        "Lyon",
        "Rio de Janeiro",
    ]
    locales = [(frozenset({"juan", "jose"}), frozenset({"diaz", "garcia"}), False)]
    assert keys(names, locales) == (
        ["burkina faso", "costa rica", "new mexico", "rio de janeiro", "san jose"],
        1,
    )


def test_the_shipped_place_keys_name_their_sources_and_are_in_the_compared_form() -> None:
    from evals.datasets import REGISTRY
    from evals.training.build_places import ATTRIBUTION, SOURCES

    lines = gzip.decompress(places.PACKAGED.read_bytes()).decode("utf-8").splitlines()
    header = "\n".join(line for line in lines if line.startswith("#"))
    assert ATTRIBUTION in header and all(REGISTRY[name].sha256 in header for name in SOURCES)
    found = [line for line in lines if not line.startswith("#")]
    assert found == sorted(set(found)) and len(found) > 7_000
    assert all(" ".join(normalise(key)) == key and len(key.split()) >= 2 for key in found)
    assert "burkina faso" in found and "juan diaz" not in found


def test_the_shipped_place_keys_are_what_the_registered_tables_build(tmp_path: Path) -> None:
    import faker

    from evals.datasets import DatasetError, resolve
    from evals.training import build_places

    try:
        for name in build_places.SOURCES:
            resolve(name, download=False)
    except DatasetError:
        pytest.skip(
            "the GeoNames tables are not in a mirror folder or the cache (python -m evals.datasets fetch ...)"
        )
    shipped = gzip.decompress(places.PACKAGED.read_bytes()).decode("utf-8")
    if f"(faker {faker.VERSION})" not in shipped:
        pytest.skip(f"built with another faker than {faker.VERSION}, whose locales' names may differ")
    build_places.write(tmp_path / "places.txt.gz")
    assert gzip.decompress((tmp_path / "places.txt.gz").read_bytes()).decode("utf-8") == shipped


def test_without_the_place_keys_scanning_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    (tmp_path / "broken.txt.gz").write_bytes(b"not gzip")
    monkeypatch.setattr(places, "PACKAGED", tmp_path / "broken.txt.gz")
    places.place_names.cache_clear()
    try:
        assert len(places.place_names()) == 0
        assert "place names" in caplog.text
        assert [f.type for f in SensitivityDetector().scan("Is Costa Rica safe for tourists?")] == ["person"]
    finally:
        places.place_names.cache_clear()


def test_a_person_named_like_a_town_beside_a_private_matter_is_found() -> None:
    # Emerson Hill is a suburb of Newcastle, New South Wales
    found = SensitivityDetector().scan(
        "Draft a warning letter to Emerson Hill about his absences this month."
    )
    assert [f.type for f in found] == ["person"]


def test_a_private_name_counts_as_found_when_a_person_finding_covers_half_of_it() -> None:
    """evals.pii_eval's private-name recall: a name counts once, found where person findings cover
    at least half of its characters; a name missing from its text is not counted."""
    from evals.pii_eval import _names_found

    rows = [
        {"text": "Remind Dana Whitfield about Thursday's training.", "names": ["Dana Whitfield"]},
        {"text": "Is Costa Rica safe for tourists?", "names": ["Costa Rica"]},  # no person found
        {"text": "Send it to the team.", "names": ["Marcus Bell"]},  # not in the text
    ]
    assert _names_found(SensitivityDetector(), rows) == (2, 1)
