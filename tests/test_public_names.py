"""Public figures and fictional characters are not personal data: the lists are read from a mirror
folder like any dataset, names are matched whole, and common names never come from a list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.signals.sensitivity import public_names
from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.public_names import PublicNames


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A mirror folder with short people and character lists, in the layout the registry uses."""
    (tmp_path / "pii").mkdir()
    (tmp_path / "pii" / "wikidata_people_names.txt").write_text(
        "Angela Merkel\nRobert Downey Jr.\nJohn Smith\nPelé\n"
    )
    (tmp_path / "pii" / "wikidata_fictional_names.txt").write_text("Hermione Granger\nSherlock Holmes\n")
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(tmp_path))
    public_names.public_names.cache_clear()
    yield tmp_path
    public_names.public_names.cache_clear()


def test_names_match_whole_without_case_accents_dots_or_possessives() -> None:
    names = PublicNames(["Angela Merkel", "Robert Downey Jr.", "Ségolène Royal", "Pelé", "John Smith"])
    assert (
        names.known("angela merkel")
        and names.known("Angela Merkel's")
        and names.known("Angela Merkel\u2019s")
    )
    assert names.known("Robert Downey Jr") and names.known("Segolene Royal")
    assert names.known("Angela Merkel Instagram")  # a found span may run on past the name
    assert not names.known("Angela Merkelson") and not names.known("Angela") and not names.known("Merkel")
    assert not names.known("Pelé")  # one word is never enough
    assert not names.known("John Smith") and len(names) == 3  # too common to say anything


def test_listed_people_and_characters_are_not_flagged(mirror: Path) -> None:
    detector = SensitivityDetector()
    for text in (
        "When was Angela Merkel born?",
        "Was Robert Downey Jr ever an actor in a comedy?",
        "How much money does Hermione Granger earn?",
        "What is Sherlock Holmes's address?",
    ):
        assert [f for f in detector.scan(text) if f.type == "person"] == [], text
    for text in (
        "When was Angela Merkelson born?",  # not the listed name
        "Please email the contract to John Smith tomorrow.",  # listed, but too common to trust
        "My colleague Hermione Granger lives at 12 Elm Street, Springfield.",  # an address is still found
    ):
        assert detector.scan(text), text


def test_without_lists_names_stay_personal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(public_names, "SOURCES", (("pii/none.txt", False),))
    public_names.public_names.cache_clear()
    try:
        assert len(public_names.public_names()) == 0
        assert [f.type for f in SensitivityDetector().scan("When was Angela Merkel born?")] == ["person"]
    finally:
        public_names.public_names.cache_clear()
