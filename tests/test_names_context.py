"""People named where the text itself says they are no private person: the answers a
multiple-choice item offers and the authors a citation names. Each case beside the personal data it
must still find: the question's own people, an option that is a field, the writer's own people, a
titled or introduced name, a name given with a birth year or a date."""

from __future__ import annotations

import time

import pytest

from evals.datasets import DatasetError
from router.signals.sensitivity.citations import cited
from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.gazetteer import gazetteer


def _people(text: str) -> list[str]:
    return [text[f.start : f.end] for f in SensitivityDetector().scan(text) if f.type == "person"]


@pytest.mark.parametrize(
    "item",
    [
        "Which psychologist proposed a hierarchy of needs?\nA. Abraham Maslow\nB. Carl Rogers\nC. Karen Horney",
        "Who first described the unconscious as layered?\n(a) Sigmund Freud\n(b) Josef Breuer\n(c) Pierre Janet\nAnswer:",
        "The ______ was founded by\nA) Mordechai Kaplan\nB) Solomon Schechter\nC) Isaac Wise\nD) Abraham Geiger",
    ],
)
def test_names_offered_as_the_answers_of_a_multiple_choice_item_are_not_flagged(item: str) -> None:
    assert _people(item) == []


@pytest.mark.parametrize(
    ("text", "people"),
    [
        # the question's own people: a vignette and a message look alike
        (
            "Hi team, Maria Lopez called again about the double charge on her card. Quick poll for lunch:"
            "\nA. pizza\nB. sushi\nC. tacos",
            ["Maria Lopez"],
        ),
        # an option that is a field of a record, not an answer to choose
        (
            "Tenant agreement. The parties:\n(a) Landlord: Thomas Whitaker\n(b) Tenant: Maria Lopez\n(c) Guarantor: Ana Silva",
            ["Thomas Whitaker", "Maria Lopez", "Ana Silva"],
        ),
        # the writer's own people
        (
            "Which of our customers should get the refund first?\nA. Maria Lopez\nB. Tom Reed\nC. Ana Silva",
            ["Maria Lopez", "Tom Reed", "Ana Silva"],
        ),
        ("Who should I invite to my wedding?\nA. Maria Lopez\nB. Tom Reed\nC. Ana Silva", None),
        # options that do not end the text, or out of order, or two, or no question before them
        ("Who gets the refund?\nA. Maria Lopez\nB. Tom Reed\nC. Ana Silva\nPlease reply by Friday.", None),
        ("Who gets the refund?\nA. Maria Lopez\nC. Tom Reed\nB. Ana Silva", None),
        ("Who gets the refund?\nA. Maria Lopez\nB. Tom Reed", ["Maria Lopez", "Tom Reed"]),
        ("Notes from Tuesday\nA. Maria Lopez\nB. Tom Reed\nC. Ana Silva", None),
    ],
)
def test_the_people_an_item_does_not_offer_as_answers_are_found(text: str, people: list[str] | None) -> None:
    assert _people(text) == (people or ["Maria Lopez", "Tom Reed", "Ana Silva"])


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


@pytest.mark.parametrize(
    ("text", "person"),
    [
        # a given name before the surname, or in the list: a record's name and birth year
        ("Employee John Reed (1987) joined the Denver office in May; update his HR record.", "John Reed"),
        ("According to Kahneman, the meeting moved to Friday.", "Kahneman"),  # no year
        ("My supervisor Anna Devlin (2019) wrote to me.", "Anna Devlin"),
        # a title, a greeting, an introduction or a field names someone; a date or "(2019 hire)" is no year
        ("Please update the file for Mr. Reed (2019) who moved offices.", "Reed"),
        ("Ms. Kowalczyk (2019 hire) is asking for a raise. Draft a response.", "Kowalczyk"),
        ("Dear Dr. Lopez et al., please find my lab results attached.", "Lopez"),
        ("Patient Garcia (1987-03-12) was admitted with chest pain; draft the discharge letter.", "Garcia"),
    ],
)
def test_a_name_that_a_citation_does_not_name_is_found(text: str, person: str) -> None:
    assert person in _people(text)


def test_cited_authors_are_found_by_span() -> None:
    text = "Prior work (Kingma and Ba, 2015; He et al., 2016) and Devlin and Chang (2019) disagree."
    spans = cited(text, gazetteer())
    for author in ("Kingma and Ba", "He", "Devlin and Chang", "Chang"):
        start = text.index(author)
        assert spans.covers(start, start + len(author)), author
    assert not spans.covers(text.index("Prior"), text.index("Prior") + 5)
    assert not cited("(Maria Lopez, 1990)", gazetteer()).covers(1, 12)
    assert not cited("Lopez, Maria (1990) moved", gazetteer()).covers(0, 12)  # a given name in the list
    assert not cited("Reed (2019 hire) and Reed (1987-03-12)", gazetteer()).covers(0, 4)


def test_many_citations_and_names_scan_in_linear_time() -> None:
    """A name looked up among a text's citations is a binary search: 20 times the text costs about
    20 times the time (a walk over every citation per name grew as the square)."""
    detector = SensitivityDetector()

    def cost(repeat: int) -> float:
        text = "Lopez et al. and Maria Lopez said Reed (2019). " * repeat
        started = time.process_time()
        detector.scan(text)
        return time.process_time() - started

    cost(50)
    small, large = min(cost(200) for _ in range(3)), cost(4000)
    assert large < 60 * max(small, 1e-3)


def test_mmlu_halves_split_by_subject() -> None:
    """The PII eval's MMLU halves: every question once, no subject on both sides, the held-out side
    with its own subjects (every history subject among them)."""
    from evals.pii_eval import mmlu_sets, mmlu_side
    from evals.training.corpus import mmlu_names, mmlu_subject

    try:
        sets = mmlu_sets()
    except DatasetError as error:
        pytest.skip(str(error))
    read, held = sets["mmlu-read"], sets["mmlu-heldout"]
    assert len(read) > 5000 and len(held) > 5000 and not set(read) & set(held)
    subjects = [mmlu_subject(name) for name in mmlu_names()]
    assert {mmlu_side(s) for s in subjects} == {"mmlu-read", "mmlu-heldout"}
    assert all(mmlu_side(s) == "mmlu-heldout" for s in subjects if s.endswith("_history"))
