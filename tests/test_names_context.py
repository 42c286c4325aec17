"""People named where the text itself says they are no private person: the people of a
multiple-choice item (an exam's vignette, its options) and the authors a citation names. Each case
beside the personal data it must still find: the writer's own people, a name given with a birth
year, and the same sentences outside an item."""

from __future__ import annotations

import pytest

from router.signals.sensitivity.citations import cited
from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.gazetteer import gazetteer


def _people(text: str) -> list[str]:
    return [text[f.start : f.end] for f in SensitivityDetector().scan(text) if f.type == "person"]


VIGNETTE = "Dr. Maxine Miller, a school psychologist, is asked by a parent for his son's test results."
OPTIONS = "\nA. comply at once\nB. refuse\nC. ask the school first\nD. consult a lawyer\nAnswer:"


@pytest.mark.parametrize(
    "item",
    [
        VIGNETTE + " She should:" + OPTIONS,
        "Which psychologist proposed a hierarchy of needs?\nA. Abraham Maslow\nB. Carl Rogers\nC. Karen Horney",
        "Mr. Fuller fences a garden of 20 by 45 feet. How many feet of fencing does he need?\na) 130\nb) 260\nc) 65",
        "Kendall and Thornton form a partnership; only Kendall manages it. Is Thornton liable?\n(A) yes\n(B) no\n(C) only for debts",
        # "real", "died": words that keep fiction's people real say nothing of an exam's
        "Why did real GDP fall after Tom Brennan, the finance minister, died?\nA. rates\nB. taxes\nC. trade",
    ],
)
def test_the_people_of_a_multiple_choice_item_are_not_flagged(item: str) -> None:
    assert _people(item) == []


def test_the_same_people_outside_an_item_or_tied_to_the_writer_are_found() -> None:
    assert _people(VIGNETTE + " What should she do?") == ["Maxine Miller"]
    # two options are no item: "A." and "B." also letter a list or an outline
    assert _people(VIGNETTE + " She should:\nA. comply\nB. refuse") == ["Maxine Miller"]
    # the writer speaks of people they deal with: an item of theirs, about their people
    employees = "Which of my employees should I promote?\nA. Maria Lopez\nB. Tom Reed\nC. Ana Silva"
    assert _people(employees) == ["Maria Lopez", "Tom Reed", "Ana Silva"]
    coworker = "My coworker Dana Whitfield asked me which is right:\nA. 4\nB. 5\nC. 6"
    assert _people(coworker) == ["Dana Whitfield"]


@pytest.mark.parametrize(
    "text",
    [
        "As Vaswani et al. (2017) showed, attention suffices. Summarize the argument of Devlin and Chang (2019).",
        "Summarize: prior work (Kingma and Ba, 2015; see also He et al., 2016, p. 3) used adaptive optimizers.",
        "According to Kahneman (2011), people rely on two systems of thinking. Explain this.",
        "Explain the model of Smith, Jones, & Lee (2001) to a first-year student.",
    ],
)
def test_the_authors_a_citation_names_are_not_flagged(text: str) -> None:
    assert _people(text) == []


def test_a_name_with_a_year_that_is_no_citation_is_found() -> None:
    # a given name before the surname: a record's name and birth year, not an author cited by surname
    assert _people("Employee John Reed (1987) joined the Denver office in May; update his HR record.") == [
        "John Reed"
    ]
    assert _people("According to Kahneman, the meeting moved to Friday.") == ["Kahneman"]  # no year
    assert _people("My supervisor Anna Devlin (2019) wrote to me.") == ["Anna Devlin"]


def test_cited_spans_cover_the_authors_only() -> None:
    text = "Prior work (Kingma and Ba, 2015; He et al., 2016) and Devlin and Chang (2019) disagree."
    spans = sorted(text[start:end] for start, end in cited(text, gazetteer()))
    assert spans == ["Devlin and Chang", "He", "He et al", "Kingma and Ba"]
    assert cited("(Maria Lopez, 1990)", gazetteer()) == []
    assert cited("Call Reed (555) 0134 tonight", gazetteer()) == []


def test_mmlu_halves_split_by_subject() -> None:
    """The PII eval's MMLU halves: every question once, no subject on both sides, the held-out side
    with its own subjects (every history subject among them)."""
    from evals.pii_eval import mmlu_sets, mmlu_side
    from evals.training.corpus import mmlu_names, mmlu_subject

    sets = mmlu_sets()
    read, held = sets["mmlu-read"], sets["mmlu-heldout"]
    assert len(read) > 5000 and len(held) > 5000 and not set(read) & set(held)
    subjects = [mmlu_subject(name) for name in mmlu_names()]
    assert {mmlu_side(s) for s in subjects} == {"mmlu-read", "mmlu-heldout"}
    assert all(mmlu_side(s) == "mmlu-heldout" for s in subjects if s.endswith("_history"))
