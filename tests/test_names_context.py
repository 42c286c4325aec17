"""People named where the text itself says they are no private person: the authors a citation
names. Each case beside the personal data it must still find: a titled or introduced name, a name
given with a birth year or a date, a citation beside other personal data or in the writer's own
words; and a multiple-choice item's people, which are found."""

from __future__ import annotations

import time

import pytest

from evals.datasets import DatasetError
from router.signals.sensitivity.citations import cited
from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.gazetteer import gazetteer


def _people(text: str) -> list[str]:
    return [text[f.start : f.end] for f in SensitivityDetector().scan(text) if f.type == "person"]


def test_the_people_of_a_multiple_choice_item_are_found() -> None:
    """An item's options may be a quiz's public figures or someone's patients, customers or staff:
    without a list that says who is public, the options' names count like any (a rule that held
    them was tried and taken out, README)."""
    for text in (
        "Reschedule the following patients:\nA. Maria Lopez\nB. John Reed\nC. Priya Natarajan",
        "Who did the damage at the party last night?\nA. Kevin Marsh\nB. Jenna Ortiz\nC. Luis Romero",
    ):
        assert len(_people(text)) == 3, text


@pytest.mark.parametrize(
    "text",
    [
        "As Vaswani et al. (2017) showed, attention suffices. Summarize the argument of Devlin and Chang (2019).",
        "Summarize: prior work (Kingma and Ba, 2015; see also He et al., 2016, p. 3) used adaptive optimizers.",
        "According to Kahneman (2011), people rely on two systems of thinking. Explain this.",
        "Explain the model of Smith, Jones, & Lee (2001) to a first-year student.",
        "Devlin and Chang (2019) argue that pretraining helps. Explain the argument simply.",
        "As Vaswani et al. showed, attention suffices. Explain why in two paragraphs.",
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
        ("Dear Dr. Lopez et al., please find the lab results attached.", "Lopez"),
        ("Patient Garcia (1987-03-12) was admitted with chest pain; draft the discharge letter.", "Garcia"),
        # beside other personal data, or in the writer's own words: the author may be the writer's
        (
            "According to Whitaker (2019), the tenant at 12 Elm Street broke the window; write a reply.",
            "Whitaker",
        ),
        ("I told Kowalski et al. that the lease ends in June.", "Kowalski"),
        ("I'm worried that Nguyen and Okafor (2021) keep missing shifts. Draft a warning.", "Okafor"),
        ("We\u2019ve hired Nguyen and Okafor (2021); write their welcome email.", "Okafor"),
        ("Patients: (Okafor and Nguyen, 1990) need follow up.", "Okafor"),  # someone's patients
        # a name and a year in a sentence, with nothing of a citation about it
        ("Kowalczyk and Brzezinski (2019) were fired for theft. Write the HR memo.", "Brzezinski"),
        ("Talk to Kowalczyk and Brzezinski (2019) about the overtime they claimed.", "Brzezinski"),
        ("Kowalczyk and Brzezinski (2019) reported the theft to the police.", "Brzezinski"),
        # "et al." without a year or a verb of argument: a group of people, not a paper
        (
            "According to Kowalczyk et al., the flat was clean when they moved out. Draft a reply.",
            "Kowalczyk",
        ),
        ("Kowalczyk and Brzezinski et al. said the deposit was never returned.", "Brzezinski"),
    ],
)
def test_a_name_that_a_citation_does_not_name_is_found(text: str, person: str) -> None:
    assert person in _people(text)


def test_cited_authors_are_found_by_span() -> None:
    text = "Prior work (Kingma and Ba, 2015; He et al., 2016) and Devlin and Chang (2019) argue otherwise."
    spans = cited(text, gazetteer())
    for author in ("Kingma and Ba", "He", "Devlin and Chang", "Chang"):
        start = text.index(author)
        assert spans.covers(start, start + len(author)), author
    assert not spans.covers(text.index("Prior"), text.index("Prior") + 5)
    quoted = "Summarize: 'Kahneman (2011) argues that we think in two systems.'"
    assert cited(quoted, gazetteer()).covers(12, 20)  # after a quote, as a list may start there
    # a given name before the surname, a year that is no citation's, a date
    assert not cited("Employee John Reed (1987) argued", gazetteer()).covers(14, 18)
    assert cited("Employee Reed (1987) argued", gazetteer()).covers(9, 13)
    assert not cited("as Kowalczyk (2019 hire) argued", gazetteer()).covers(3, 12)
    assert not cited("in Garcia (1987-03-12)", gazetteer()).covers(3, 9)
    assert not cited("(Kowalczyk and Nguyen, 2019 cohort)", gazetteer()).covers(1, 21)
    assert cited("(Kowalczyk and Nguyen, 2019)", gazetteer()).covers(1, 21)
    # a given name among the surnames: a record's order, not an author list
    assert not cited("Lopez, Maria (1990) moved", gazetteer()).covers(0, 12)
    assert not cited("(Lopez, Maria, 1990)", gazetteer()).covers(1, 13)
    assert cited("(Lopez, Garcia, 1990)", gazetteer()).covers(1, 14)
    assert not cited("Reed (2019 hire) and Reed (1987-03-12)", gazetteer()).covers(0, 4)


def scans_in_linear_time(unit: str, small: int = 200, factor: int = 20) -> bool:
    """Whether `factor` times the repeats of `unit` cost less than three times `factor` the time
    (CPU time, the best of three runs of the small text): a scan that reads each part again from
    every other grows as the square, 400 times here. A guard on how the cost grows, not a speed
    target (those are `turnout bench`'s)."""
    detector = SensitivityDetector()

    def cost(repeat: int) -> float:
        started = time.process_time()
        detector.scan(unit * repeat)
        return time.process_time() - started

    cost(small // 4)
    base = min(cost(small) for _ in range(3))
    return cost(small * factor) < 3 * factor * max(base, 1e-3)


def test_many_citations_and_names_scan_in_linear_time() -> None:
    """A name looked up among a text's citations is a binary search, not a walk over all of them."""
    assert scans_in_linear_time("Lopez et al. and Maria Lopez said Reed (2019). ")


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


def test_a_long_list_of_names_is_found_and_runs_without_one_scan_in_linear_time() -> None:
    first = "Maria, John, Anna, Peter, Sofia, Lucas, Emma, Noah, Olivia, Liam, Ava, Ethan, Mia"
    names = first + ", Mason, Isla, Logan, Grace, Oscar, Chloe, Helen, Paul and Lily"
    assert len(_people(f"{names} were absent today. Draft a note to the parents.")) == 22
    many = ", ".join(f"{name}{i}" for i in range(4) for name in first.split(", ")) + " and Lily"
    assert len(_people(f"{many} were absent today. Draft a note to the parents.")) == 53
    # after a quote or a bullet's hyphen a list starts as anywhere
    assert _people("Summarize: 'Priya and Devon were suspended for cheating on the exam.'") == [
        "Priya",
        "Devon",
    ]
    assert _people("Attendees:\n-Kowalczyk, Nguyen and Okafor") == ["Kowalczyk", "Nguyen", "Okafor"]
    # no "and" anywhere: each word read once, not the whole run again from every word
    assert scans_in_linear_time("Aa, ", small=1000) and scans_in_linear_time("A-", small=1000)
