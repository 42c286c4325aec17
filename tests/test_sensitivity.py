"""Behaviour of router.signals.sensitivity.detector: each detector's positives, spans and near misses.

Hand-written examples only (none taken from the evaluation datasets), no network, well under a
second in all: the detector is built once per module and the gazetteer loads once per process.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from itertools import pairwise
from pathlib import Path

import pytest

from router.signals.sensitivity.detector import FINDING_TYPES, Finding, SensitivityDetector
from router.signals.sensitivity.directives import find_directive
from router.signals.sensitivity.letters import UPPER


@pytest.fixture(scope="module")
def detector() -> SensitivityDetector:
    return SensitivityDetector()


def found(detector: SensitivityDetector, text: str, kind: str | None = None) -> list[str]:
    return [text[f.start : f.end] for f in detector.scan(text) if kind is None or f.type == kind]


def kinds(detector: SensitivityDetector, text: str) -> set[str]:
    return {finding.type for finding in detector.scan(text)}


# --- contact details ---------------------------------------------------------------------------


def test_email_span(detector: SensitivityDetector) -> None:
    text = "Please reply to maria.lopez+travel@fastmail.fm before Friday."
    assert found(detector, text, "email") == ["maria.lopez+travel@fastmail.fm"]


def test_documentation_email_is_not_personal(detector: SensitivityDetector) -> None:
    assert found(detector, "Set the sender to someone@example.com in the config.", "email") == []


@pytest.mark.parametrize(
    "address",
    [
        "john.doe@gmail.com",
        "jane.doe@hospital.org",
        "test@gmail.com",
        "user@fastmail.fm",
        "youri.tielemans@gmail.com",  # "your..." is an instruction only as your.email@, yourname@
        "jane.smith@email.com",  # email.com, host.de: real mail domains
        "maria@host.de",
    ],
)
def test_a_stock_local_part_at_a_real_domain_is_an_address(
    detector: SensitivityDetector, address: str
) -> None:
    """A third trial (2026-12-08) sent these out under reroute: the local part alone made them
    placeholders. At a documentation domain they still are."""
    assert found(detector, f"My email is {address}, can you fix my resume?", "email") == [address]
    local = address.split("@")[0]
    assert found(detector, f"Write to {local}@example.com or {local}@yourcompany.com.", "email") == []
    assert found(detector, "git remote add origin git@github.com:acme/app.git", "email") == []
    assert found(detector, "Replace your.email@gmail.com and yourname@company.com with yours.", "email") == []


@pytest.mark.parametrize(
    "number",
    [
        "+1 (202) 555-0170",
        "020 7946 0018",
        "+45 12 34 56 78",
        "+44 7700 900123",
        "(03) 9876 5432",
        "612-555-0188",
    ],
)
def test_phone_numbers(detector: SensitivityDetector, number: str) -> None:
    text = f"You can reach me on {number} after six."
    assert found(detector, text, "phone") == [number]


def test_national_phone_after_a_cue(detector: SensitivityDetector) -> None:
    assert found(detector, "Call my mobile 78 651 450 tonight", "phone") == ["78 651 450"]


def test_six_digit_phone_needs_a_phone_word(detector: SensitivityDetector) -> None:
    # Greenland and the Faroes have six-digit numbers, written in pairs
    assert found(detector, "Can someone call me on 85 99 60?", "phone") == ["85 99 60"]
    assert found(detector, "Stop sending messages to 66 65 76", "phone") == ["66 65 76"]
    assert found(detector, "We met on 12 05 23 at noon, scores 12 34 56.", "phone") == []


@pytest.mark.parametrize(
    "text",
    [
        "The release is dated 2023-10-12 and ships at 10:30.",
        "Upgrade from version 10.2.4 to 11.0.1 first.",
        "The house sold for $1 250 000 last year.",
        "Order 1495-1505 units, then pick items 12 34 56.",
        "The population grew to 1 200 000 people by 1990.",
        "Use 0.223016 as the drift and 3.14159 for pi.",
    ],
)
def test_numbers_that_are_not_phones(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "phone") == []


@pytest.mark.parametrize(
    "text",
    [
        "Order number 4829173650 hasn't arrived yet, can you draft a complaint?",
        "Ticket no. 5550123456 was closed without a reply.",
        "The tracking number: 4829173650 shows it delivered.",
        "Part # 4155550134 is out of stock.",
    ],
)
def test_a_number_the_text_names_as_another_kind_is_no_phone(
    detector: SensitivityDetector, text: str
) -> None:
    assert found(detector, text, "phone") == []


def test_a_phone_word_still_wins_over_another_kind_of_number(detector: SensitivityDetector) -> None:
    # "order number" is right before the number, and so is "call": the phone word decides
    assert found(detector, "About my order number, call 4155550134 tonight.", "phone") == ["4155550134"]
    assert found(detector, "Order number: +1 415 555 0134", "phone") == ["+1 415 555 0134"]


@pytest.mark.parametrize(
    "text",
    [
        "In case nobody's at 4155550134, leave a note.",  # "no" of "nobody", "case" before it
        "Build notes at 4155550134 after five.",
        "The order number is 12 or 4155550134, whichever you reach first.",  # it names the 12
    ],
)
def test_another_kind_of_number_is_named_only_right_before_the_number(
    detector: SensitivityDetector, text: str
) -> None:
    assert found(detector, text, "phone") == ["4155550134"]


def test_a_label_after_a_number_cues_a_phone(detector: SensitivityDetector) -> None:
    assert found(detector, "Reach her on 4155550134 (mobile) before noon.", "phone") == ["4155550134"]


# --- payment and bank --------------------------------------------------------------------------


def test_card_with_and_without_separators(detector: SensitivityDetector) -> None:
    text = "Charge 4539 1488 0343 6467 or 4539148803436467 please."
    assert found(detector, text, "credit_card") == ["4539 1488 0343 6467", "4539148803436467"]


def test_card_failing_luhn_is_ignored(detector: SensitivityDetector) -> None:
    assert found(detector, "My card is 4539 1488 0343 6468.", "credit_card") == []


def test_iban_valid_and_invalid(detector: SensitivityDetector) -> None:
    text = "Send it to GB82 WEST 1234 5698 7654 32 or DE89370400440532013000."
    assert found(detector, text, "iban") == ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"]
    assert found(detector, "Send it to GB83 WEST 1234 5698 7654 32.", "iban") == []


def _iban(country: str, bban: str) -> str:
    """The IBAN of a BBAN, its check digits computed as ISO 13616 says."""
    number = int("".join(str(int(char, 36)) for char in bban + country + "00"))
    return f"{country}{98 - number % 97:02d}{bban}"


@pytest.mark.parametrize(
    ("country", "bban", "groups"),
    [
        ("FR", "30006000011234567890189", (4, 5, 5, 11, 2)),  # a French RIB: bank, branch, account, key
        ("IT", "X0542811101000000123456", (4, 1, 5, 5, 12)),  # CIN, ABI, CAB, account
        ("ES", "21000418450200051332", (4, 4, 4, 2, 10)),  # entity, branch, control digits, account
        ("DE", "370400440532013000", (4, 8, 10)),  # Bankleitzahl, account
        ("BE", "539007547034", (4, 3, 7, 2)),
    ],
)
def test_an_iban_in_its_country_s_own_grouping_is_found(
    detector: SensitivityDetector, country: str, bban: str, groups: tuple[int, ...]
) -> None:
    """A trial's IBAN written in its national groups was missed: only fours or one run were read."""
    iban, parts, at = _iban(country, bban), [], 0
    for size in groups:
        parts.append(iban[at : at + size])
        at += size
    for gap in (" ", "-"):
        written = gap.join(parts)
        assert found(detector, f"Wire it to {written} by Friday.", "iban") == [written]


@pytest.mark.parametrize(
    ("country", "bban"),
    [
        ("FR", "3000600001123456789018"),  # a digit short of France's 27
        ("FR", "300060000112345678901891"),  # one past it
        ("US", "30006000011234567890"),  # the US issues no IBANs
        ("DE", "ABCD00440532013000"),  # Germany's BBAN is digits only
    ],
)
def test_iban_look_alikes_are_not_found(detector: SensitivityDetector, country: str, bban: str) -> None:
    """Each has valid check digits: what rejects it is the registry's length or structure."""
    looks_like = _iban(country, bban)
    assert found(detector, f"Order code {looks_like} shipped.", "iban") == []
    grouped = " ".join(looks_like[at : at + 4] for at in range(0, len(looks_like), 4))
    assert found(detector, f"Order code {grouped} shipped.", "iban") == []


def test_two_ibans_side_by_side_are_both_found(detector: SensitivityDetector) -> None:
    first, second = _iban("DE", "370400440532013000"), _iban("GB", "NWBK60161331926819")
    assert found(detector, f"{first} {second}", "iban") == [first, second]


# --- national identifiers ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "detail"),
    [
        ("Employee SSN: 536-22-8714.", "536-22-8714", "us_ssn"),
        ("my social security number is 536228714", "536228714", "us_ssn"),
        ("NI number AB123456C on file", "AB123456C", "uk_nino"),
        ("Her SIN is 046 454 286.", "046 454 286", "ca_sin"),
        ("DNI 12345678Z, NIE below", "12345678Z", "es_dni"),
        ("El NIE es X1234567L.", "X1234567L", "es_dni"),
        ("Codice fiscale RSSMRA85T10A562S allegato", "RSSMRA85T10A562S", "it_codice_fiscale"),
        ("Numéro de sécurité sociale 1 85 05 78 006 084 91.", "1 85 05 78 006 084 91", "fr_nir"),
        ("PAN card ABCPE1234F attached", "ABCPE1234F", "in_pan"),
        ("Aadhaar 2345 6789 0124 for KYC", "2345 6789 0124", "in_aadhaar"),
        ("My driver's license number is D1234567.", "D1234567", "us_driver_license"),
        ("passport number 533380006 expires soon", "533380006", "passport"),
    ],
)
def test_national_ids(detector: SensitivityDetector, text: str, value: str, detail: str) -> None:
    findings = [f for f in detector.scan(text) if f.type == "national_id"]
    assert [(text[f.start : f.end], f.detail) for f in findings] == [(value, detail)]


@pytest.mark.parametrize(
    "text",
    [
        "Invoice 536228714 was paid.",  # a bare 9-digit number without a cue
        "SSN 666-12-3456 is not a valid area",
        "Order 12345678A shipped",  # wrong DNI check letter
        "The batch 2345 6789 0125 passed QA",  # fails Verhoeff, no cue
    ],
)
def test_identifier_near_misses(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "national_id") == []


# --- network ----------------------------------------------------------------------------------


def test_ip_addresses(detector: SensitivityDetector) -> None:
    text = "Logins came from 81.2.69.160 and 2a00:1450:4001:81c::200e yesterday."
    assert found(detector, text, "ip_address") == ["81.2.69.160", "2a00:1450:4001:81c::200e"]


@pytest.mark.parametrize("text", ["Ping 999.1.1.1 now", "Bump to 1.2.3.4 of the lib", "std::vector<int> v;"])
def test_ip_near_misses(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "ip_address") == []


def test_internal_addresses_are_their_own_type_and_only_where_a_policy_asks() -> None:
    """RFC 1918 and RFC 4193 addresses are infrastructure details, typed `internal_ip`: off by
    default (an infra question stays routable), on where `sensitivity.types` lists it."""
    text = "The primary is 10.20.0.15, the replica 172.20.3.4, the VPN gateway fd00:ab:cd::1."
    assert found(SensitivityDetector(), text, "internal_ip") == []
    assert found(SensitivityDetector(), text, "ip_address") == []
    opted = SensitivityDetector(types=["internal_ip", "ip_address"])
    assert found(opted, text, "internal_ip") == ["10.20.0.15", "172.20.3.4", "fd00:ab:cd::1"]
    public = "Logins came from 81.2.69.160."
    assert found(opted, public, "ip_address") == ["81.2.69.160"] and found(opted, public, "internal_ip") == []
    # neither loopback nor a documentation range names a machine of anyone's
    assert found(opted, "curl 127.0.0.1:8080 or 192.0.2.15", "internal_ip") == []


def test_policies_can_list_internal_ip() -> None:
    from router.policy.model import load_policy

    policy = load_policy(Path(__file__).resolve().parents[1] / "policies" / "privacy-first.yaml").policy
    assert policy.sensitivity.types is not None and "internal_ip" in policy.sensitivity.types


# --- street addresses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "1600 Pennsylvania Avenue",
        "221B Baker Street",
        "Hammarvägen 15",
        "Koskikatu 25",
        "Hauptstraße 5",
        "12 rue de la Paix",
        "Via Roma 10",
        "Calle Mayor 3",
        "ul. Słowicza 10",
    ],
)
def test_street_addresses(detector: SensitivityDetector, address: str) -> None:
    assert address in found(detector, f"The parcel goes to {address}, second floor.", "street_address")


def test_units_and_boxes(detector: SensitivityDetector) -> None:
    spans = found(detector, "Ship to Apt. 4B, or to P.O. Box 1234 if nobody is in.", "street_address")
    assert spans == ["Apt. 4B", "P.O. Box 1234"]


@pytest.mark.parametrize(
    "text",
    [
        "She bought 5 red apples at 3 pm.",
        "Windows 11 Pro and Python 3 are installed.",
        "See chapter 4 section 2.",
        # lowercase chat, given capitals to be read: a time's minutes, a date, function words
        "what kind of traffic can i expect at 9:00 on the route to detroit",
        "can i get an uber for 4 to the mall",
        "i need a hotel room for 7 people in st louis for november 3rd",
        "tell me what is on my calendar for march 2",
        "set the alarm to go off at 9 tomorrow",
        "if i go to olive garden at 4 pm, how busy will it be",
        "what is on my schedule between 10:00 am and 11:00 am",
        "help me book a place to stay from may 2 to may 4 in tampa",
        "i need to get 3 riders to union station",
        # a time's minutes, in text with its own capitals
        "Traffic at 9:00 On The Route To Detroit",
    ],
)
def test_addresses_near_misses(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "street_address") == []


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("can you get uber for two people going to 27 moss lane", "27 moss lane"),
        ("i live at 1600 pennsylvania avenue", "1600 pennsylvania avenue"),
        ("Meet me at 9:00 at 44 Elm Street tomorrow.", "44 Elm Street"),
        ("Send it to Orchard Road 12 please", "Orchard Road 12"),
        # a leading "the" names a street ("The Avenue", "The Green"); a colon before a number no time's
        ("can you write a note to my neighbour at 10 the avenue about the fence", "10 the avenue"),
        ("flat 2, 12 the green, richmond tw9 1ab", "12 the green"),
        ("my office is 1 avenue of the americas, new york", "1 avenue of the americas"),
        ("Home:27 Moss Lane, Manchester", "27 Moss Lane"),
        ("Adresse:12 rue de la Paix, Paris", "12 rue de la Paix"),
        # a day or a time after the street is not its number
        ("please deliver it to 1585 broadway tomorrow", "1585 broadway"),
        ("meet me at 40 piccadilly tonight", "40 piccadilly"),
        ("Please send it to 1585 Broadway in May.", "1585 Broadway"),
        # "of" and "and" name streets
        ("book a cab from 10 prince of wales road to the station at 6", "10 prince of wales road"),
        ("please send it to 3 king and queen street", "3 king and queen street"),
        ("the package for 12 stratford on avon road never arrived", "12 stratford on avon road"),
        ("our flat in via in lucina 10 has mould", "via in lucina 10"),
        ("i need a cleaner for 12 a high street, putney", "12 a high street"),
        ("My address: Passeig del Mar 5, 08003 Barcelona", "Passeig del Mar 5"),
        # a street's word at the end makes a street of a name that begins like a phrase
        ("the potholes outside 14 our lady's road, cork", "14 our lady's road"),
        ("draft an email to my landlord about the damp at 23 days lane", "23 days lane"),
        ("the flat is number 5 on kings road, chelsea", "5 on kings road"),
        # a month's name before a building's word is a name, not a date
        ("I live at 3 May Cottages, Little Snoring", "3 May Cottages"),
        ("i live at 2 march barns, thetford", "2 march barns"),
    ],
)
def test_addresses_in_lowercase_chat_and_beside_times(
    detector: SensitivityDetector, text: str, address: str
) -> None:
    assert any(address in span for span in found(detector, text, "street_address"))


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # a building number before the street, a unit line and a "place postcode" line after it
        (
            "Ship to:\n712 48 Holloway Lane\nSuite 9\nMarlow 40215",
            "712 48 Holloway Lane\nSuite 9\nMarlow 40215",
        ),
        ("Send it to 5521 Brennerstraße 14, please.", "5521 Brennerstraße 14"),
    ],
)
def test_address_blocks_are_widened(detector: SensitivityDetector, text: str, address: str) -> None:
    assert found(detector, text, "street_address") == [address]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # all-lowercase text is read as if each word were capitalised
        ("please ship it to 221 baker street, london", "221 baker street"),
        ("deliver it to 12 rua augusta apt 4 lisboa", "12 rua augusta apt 4"),
        # Czech and Slovak street names are adjectives: Vinohradská, Lidická
        ("Meet me at Vinohradská 12, Praha", "Vinohradská 12"),
        ("The address of the Brno branch is Lidická 40", "Lidická 40"),
        # a building and a house number after a cue, and no street type
        ("it is located at 52 118 queen mary, northside", "52 118 queen mary"),
        # a cue with a lowercase street type before the number
        ("the lab is at the corner of Rákóczi kapu 12. and the river", "Rákóczi kapu 12"),
    ],
)
def test_addresses_in_other_shapes(detector: SensitivityDetector, text: str, address: str) -> None:
    assert found(detector, text, "street_address") == [address]


@pytest.mark.parametrize(
    ("text", "address"),
    [
        # no street type, but a place and its postcode after the number
        ("Please update it to Kvetná 14, Bratislava 81106 before Friday.", "Kvetná 14, Bratislava 81106"),
        ("Send it to Lindholmen 8, 41103 Göteborg.", "Lindholmen 8, 41103 Göteborg"),
    ],
)
def test_a_street_before_a_postcode_line(detector: SensitivityDetector, text: str, address: str) -> None:
    assert found(detector, text, "street_address") == [address]


@pytest.mark.parametrize(
    "text",
    [
        "Windows 10, Office 2019 and Teams are installed.",  # a year is no postcode
        "Decimal 11, Binary 1100, Hexadecimal D",  # an English word is no street name
        "The versions were Release 12, Build 4021 and Patch 7.",
    ],
)
def test_numbered_lists_are_not_streets(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "street_address") == []


def test_address_widening_near_misses(detector: SensitivityDetector) -> None:
    # a count before the street is not glued to it, and a following sentence is not a postcode line
    text = "In 2019, 12 Holloway Lane was sold.\nPrices rose 15"
    assert found(detector, text, "street_address") == ["12 Holloway Lane"]


@pytest.mark.parametrize(
    "text",
    [
        # a lowercase word in Polish or Russian is not the capitalised name of a street
        "Mix 2 łyżki Green tea into the batter.",
        "Мы заказали 3 ёлки Road Runner для офиса.",
    ],
)
def test_lowercase_words_outside_latin1_are_not_street_names(
    detector: SensitivityDetector, text: str
) -> None:
    assert found(detector, text, "street_address") == []


def test_capitals_in_every_cased_script() -> None:
    capital = re.compile(UPPER)
    assert all(capital.fullmatch(c) for c in "AZÀÞŽŁĐŐДЁΩǅ")
    assert not any(capital.fullmatch(c) for c in "azßÿžłđőдёω中ـ1_")


# --- people -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Hello, my name is Ingrid Solberg and I need help.", "Ingrid Solberg"),
        ("Please forward this to Dr. Okonkwo before noon.", "Okonkwo"),
        ("Dear Priya, thanks for the notes.", "Priya"),
        ("Yesterday Jonas Lindqvist signed the lease.", "Jonas Lindqvist"),
        ("I want to add my son Mateo to the account.", "Mateo"),
        ("Patient: Helena Marques, 54, reports chest pain.", "Helena Marques"),
        ("Name: kowalski", "kowalski"),  # a form field still takes a lower-case surname
        ("Thanks.My name is Ana Lima", "Ana Lima"),  # a missing space is not an identifier
    ],
)
def test_people(detector: SensitivityDetector, text: str, name: str) -> None:
    assert found(detector, text, "person") == [name]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # who made a work or appears in it, even where the text is about art or film
        ("My favourite is a song by Kowalczyk from the nineties.", "Kowalczyk"),
        ("The movie, featuring Tomasz Wisniewski, opens Friday.", "Tomasz Wisniewski"),
        # an unlisted first name: an attribute
        ("We still do not know the birthday of Jarkko yet.", "Jarkko"),
        # a first name that is also a word, before a listed surname
        ("Yesterday Mark Jensen signed the lease.", "Mark Jensen"),
        ("Please email Bill Kowalski today.", "Bill Kowalski"),
        # a surname that starts with a particle, after a cue
        ('"Prices will fall," says Du Plessis.', "Du Plessis"),
        # the same slots in all-lowercase text, and words no dictionary knows after any cue
        ("we need to add wiremu tane as guardian", "wiremu tane"),
        ("please follow up with tuulikki rasanen next week", "tuulikki rasanen"),
        # a doubled space inside a name
        ("Edda  Greco from Terex is the keynote speaker", "Edda  Greco"),
    ],
)
def test_people_named_by_their_role(detector: SensitivityDetector, text: str, name: str) -> None:
    assert found(detector, text, "person") == [name]


@pytest.mark.parametrize(
    "text",
    [
        "Toy Story is a film by Pixar about toys.",  # an unlisted single word after "by" needs a title
        "The Jenkins version on the build server is old.",  # a version after one word is software
        "The app features Kubernetes support out of the box.",
        "Our German Shepherd needs a new collar.",  # a people's name is not a first name
        "When was the Old Babylonian version written?",
        "Why is Kubernetes so slow on my laptop?",  # slow is no temper
        "Give me Python, then Rust.",
        # places before a work are no makers of it
        "The Hong Kong version of the app is slower.",
        "We watched the El Paso film at the festival.",
        "have you seen the kuala lumpur film yet",
        "did you see the new model speak",
        "can you play the song that starts with doo doo doo",  # a tune, not a name
    ],
)
def test_role_cues_need_a_name(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "person") == []


@pytest.mark.parametrize(
    "text",
    [
        "Natalia sold 48 clips in April and half as many in May. How many clips did she sell?",
        "Mr. Tan bought 3 boxes of pens at $4 each. How much did he spend?",
        "Tom and Lisa share 12 apples equally. How many does each get?",
        "Explain the Fourier Transform and the Central Limit Theorem.",
        "Write a story in the style of Ernest Hemingway about the sea.",
        # "name:" in code is an identifier or a parameter, not a form field
        'def __init__(self, pred_name: str = "prediction", suffix: str = None):',
        "def greet(name: str) -> str:",
        "config = {user.name: value}",
    ],
)
def test_people_near_misses(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "person") == []


@pytest.mark.parametrize(
    ("text", "names"),
    [
        # a lone first name as the subject of a person verb, or after "why is ... so"
        ("Marguerite is from a small firm in Leeds.", ["Marguerite"]),
        ("Why is Leonora so stubborn about the lease?", ["Leonora"]),
        # a non-dictionary word at a sentence start, with a person verb and a later he/she
        ("Kowalczyk began painting young, and her first show sold out.", ["Kowalczyk"]),
        # all-lowercase text: listed names are read as if capitalised
        ("please call back gertrude hofstadter tomorrow", ["gertrude hofstadter"]),
        ("ask mr. pemberton about the overdue rent", ["pemberton"]),
        # lowercase letters outside Latin-1 (ž, ł) are still lowercase text
        ("follow up with zofia kwiatkowská next week", ["zofia kwiatkowská"]),
        ("sometimes my friends call me radoslav", ["radoslav"]),
        # a surname after "ten", "van", "von" may be an English word
        ("please invite Willemijn ten Hoop and her team", ["Willemijn ten Hoop"]),
        # a listed surname that is also a word, with a person verb and a later he/she
        ("Fisher began teaching in 1990, and her students still write to her", ["Fisher"]),
        # listed names as the subject of people, or introduced by a plural noun for people
        ("Okonkwo and Haldane were both engineers at the plant.", ["Okonkwo", "Haldane"]),
        ("Our founders: Brannigan, Okafor and Lindqvist.", ["Brannigan", "Okafor", "Lindqvist"]),
    ],
)
def test_people_without_a_full_name(detector: SensitivityDetector, text: str, names: list[str]) -> None:
    assert found(detector, text, "person") == names


@pytest.mark.parametrize(
    "text",
    [
        "Why is Python so slow compared with Rust?",
        "Kubernetes is from Google originally.",
        "Red and Blue were the team colours.",
        "Apple and Google are rivals.",
        "Contributors: Flask, Django and Pyramid.",
        "the pipeline is fine but the cache is stale",
        "Kasimir bought 7 pencils and gave 2 away. How many are left?",
        "Write a story where Rosalind is brave and she saves the town.",
        "The Sagrada Familia took over a century to build.",  # an article: a place, not a person
        "the weather in lisbon is fine today, no rain",
    ],
)
def test_lone_name_near_misses(detector: SensitivityDetector, text: str) -> None:
    assert found(detector, text, "person") == []


@pytest.mark.parametrize(
    "text,name",
    [
        # Words of fiction and public life ("style", "script", "characters", "story") do not make a
        # name cued as someone's a character's: a rule that did (tried 2026-12-05) let these out.
        (
            "Name: Priya Raman. Diagnosis: bipolar disorder. Please summarise this in a friendly style.",
            "Priya Raman",
        ),
        (
            "Write a script to remind Ms. Harriet Lowell about her therapy session on Tuesday.",
            "Harriet Lowell",
        ),
        (
            "Write a bedtime story for Emma about her grandmother, Mrs. Edna McCoy, who passed away last week.",
            "Edna McCoy",
        ),
        (
            "Full name: Daniel Okafor. Reason for visit: depression. Convert this record to JSON, keeping "
            "the field characters ASCII.",
            "Daniel Okafor",
        ),
        # the writer ties the name to themself: before it, in its clause, or right after it
        ("Write a bedtime story starring my nephew Tobias Wrenfield.", "Tobias Wrenfield"),
        ("Fictional story about my landlord, Mr. Oskar Brandt, who never fixes the heating.", "Oskar Brandt"),
        ("A poem for Dagny Holmqvist, my coworker, who retires on Friday.", "Dagny Holmqvist"),
        ("Write a haiku for Maureen Kellaway, the hospice nurse who sat with my father.", "Maureen Kellaway"),
        ("Schreib ein Gedicht für meine Mutter Ingrid Hoffmeister.", "Ingrid Hoffmeister"),
        # what says the person is real: the word, an occasion written for
        ("Write a limerick for Mr. Ambrose Quigley's retirement party.", "Ambrose Quigley's"),
        (
            "Write a story about a real person, Dr. Harriet Vandersloot, and her clinic.",
            "Harriet Vandersloot",
        ),
        # a form the text mentions but does not ask for
        ("A great poem was read at the gala by Mrs. Cordelia Ashgrove.", "Cordelia Ashgrove"),
        ("Tell the Poem Society that Mrs. Josephine Haverford has resigned.", "Josephine Haverford"),
        (
            "Write a story about my sister. Her name is Claudia Bergström and she lives in Malmö.",
            "Claudia Bergström",
        ),
        ("Write a song for Zainab Okonkwo, I love her so much", "Zainab Okonkwo"),
        # real records called a sample, test data from production
        (
            "Here is a sample of customer names from our production database: Jasmine Whitfield.",
            "Jasmine Whitfield",
        ),
        # other personal data beside the name
        (
            "Write a short story for Mr. Casimir Vandermolen (c.vandermolen@posteo.de) about his garden.",
            "Casimir Vandermolen",
        ),
    ],
)
def test_real_people_in_requests_about_fiction_stay_personal(
    detector: SensitivityDetector, text: str, name: str
) -> None:
    """A name cued as someone's beside words of fiction, or in a request for fiction that the writer
    ties to themself, that says its people are real, or that holds other personal data."""
    assert name in found(detector, text, "person")


@pytest.mark.parametrize(
    "text",
    [
        "Hi Claude, can you help me write a cover letter?",
        "I'm Claude, an AI assistant made by Anthropic.",
        "Dear Claude,\nI hope you can help me plan a trip.",
        "Thanks Gemini! Now translate it into Spanish.",
        "Hey Copilot, write a unit test for this.",
        "Claude is a helpful assistant; Claude's answers are short.",
    ],
)
def test_an_assistants_name_alone_is_not_a_person(detector: SensitivityDetector, text: str) -> None:
    """The model a prompt is addressed to is not personal data, so such prompts may leave."""
    assert found(detector, text, "person") == []


@pytest.mark.parametrize(
    "text,name",
    [
        ("My colleague Claude Dupont will call you tomorrow.", "Claude Dupont"),  # a surname after it
        ("Mary Watson called about the invoice.", "Mary Watson"),  # a listed surname that is also one
        ("Hi Anna, can you help me?", "Anna"),
        ("Hi Alexa, the signed contract is attached.", "Alexa"),  # a person's name as often as not
    ],
)
def test_people_who_share_an_assistants_name_are_still_people(
    detector: SensitivityDetector, text: str, name: str
) -> None:
    assert name in found(detector, text, "person")


# --- secrets ----------------------------------------------------------------------------------


def _random(alphabet: str, length: int, rng: random.Random) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _jwt(rng: random.Random) -> str:
    def part(payload: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")

    signature = _random(string.ascii_letters + string.digits + "-_", 43, rng)
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': rng.randint(1, 10**6)})}.{signature}"


def generated_secrets(rng: random.Random) -> dict[str, str]:
    alnum = string.ascii_letters + string.digits
    upper = string.ascii_uppercase + "234567"
    pem_body = base64.b64encode(rng.randbytes(96)).decode()
    return {
        "aws_access_key": rng.choice(("AKIA", "ASIA")) + _random(upper, 16, rng),
        "github_token": rng.choice(("ghp_", "gho_")) + _random(alnum, 36, rng),
        "github_pat": "github_pat_" + _random(alnum, 22, rng) + "_" + _random(alnum, 59, rng),
        "slack_token": "xoxb-" + _random(string.digits, 12, rng) + "-" + _random(alnum, 24, rng),
        "stripe_key": rng.choice(("sk_live_", "rk_live_")) + _random(alnum, 24, rng),
        "google_api_key": "AIza" + _random(alnum + "-_", 35, rng),
        "openai_key": "sk-proj-" + _random(alnum + "_-", 48, rng),
        "anthropic_key": "sk-ant-api03-" + _random(alnum + "_-", 93, rng),
        "jwt": _jwt(rng),
        "private_key": f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----",
    }


@pytest.mark.parametrize("seed", range(5))
def test_generated_secrets_are_all_found(detector: SensitivityDetector, seed: int) -> None:
    rng = random.Random(seed)
    for kind, secret in generated_secrets(rng).items():
        text = f"here is the value you asked for: {secret} (do not share)"
        spans = found(detector, text, "secret")
        assert spans == [secret], f"{kind}: {spans}"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("DB_PASSWORD=Xk9#mQ2!vL7p", "Xk9#mQ2!vL7p"),
        ('{"api_key": "a8F3kLm92QpZx7Rt"}', "a8F3kLm92QpZx7Rt"),
        ("export SERVICE_TOKEN=f3A9c1D7e5B2a8C4d6E0f1A2", "f3A9c1D7e5B2a8C4d6E0f1A2"),
        ("my password is Tr0ub4dor&3", "Tr0ub4dor&3"),
        ("the card PIN is 4921", "4921"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Lp3Vd2Q",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Lp3Vd2Q",
        ),
        (
            "connect with postgres://app:s3cr3tPw@db.internal:5432/main",
            "postgres://app:s3cr3tPw@db.internal:5432",
        ),
        ("REDIS_URL=redis://:p4ssW0rd9@cache:6379/0", "redis://:p4ssW0rd9@cache:6379"),
    ],
)
def test_assigned_secrets(detector: SensitivityDetector, text: str, value: str) -> None:
    assert found(detector, text, "secret") == [value]


def test_ordinary_code_has_no_secret(detector: SensitivityDetector) -> None:
    code = """
import os
from getpass import getpass

def login(user: str, password: str, token: str | None = None) -> bool:
    api_key = os.environ["API_KEY"]
    password = getpass("Password: ")
    secret_key = settings.SECRET_KEY
    headers = {"Authorization": f"Bearer {token}"}
    return check(user, password=password, api_key=api_key)
"""
    assert found(detector, code) == []


def test_placeholder_values_are_not_secrets(detector: SensitivityDetector) -> None:
    text = 'Set OPENAI_API_KEY=<your-api-key> and "password": "your_password_here" and sk-xxxxxxxxxxxxxxxxxxxxxxxx'
    assert found(detector, text, "secret") == []


# --- operator configuration -------------------------------------------------------------------


def test_terms_are_case_insensitive_whole_words() -> None:
    detector = SensitivityDetector(terms=["Project Bluebird", "acme"], types={"term"})
    text = "Status of project bluebird for ACME; not acmeology."
    assert found(detector, text) == ["project bluebird", "ACME"]


def test_patterns_from_the_operator() -> None:
    detector = SensitivityDetector(patterns=[r"\bTICKET-\d{4}\b"], types={"term"})
    spans = detector.scan("See TICKET-1234 and TICKET-99.")
    assert [(f.type, f.detail) for f in spans] == [("term", "pattern")]


def test_invalid_pattern_names_it() -> None:
    with pytest.raises(ValueError, match=r"\(unclosed"):
        SensitivityDetector(patterns=["(unclosed"])


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="postcode"):
        SensitivityDetector(types={"postcode"})


def test_types_restrict_detection() -> None:
    text = "Mail jonas@posteo.de or call +1 (202) 555-0170."
    assert kinds(SensitivityDetector(types={"email"}), text) == {"email"}
    assert kinds(SensitivityDetector(types={"phone"}), text) == {"phone"}
    assert kinds(SensitivityDetector(), text) == {"email", "phone"}


def test_min_confidence_filters() -> None:
    text = "The test host is 198.51.100.7 today."  # a documentation range: weak evidence (0.4)
    assert SensitivityDetector().scan(text) == []
    loose = SensitivityDetector(min_confidence=0.3).scan(text)
    assert [(f.type, text[f.start : f.end]) for f in loose] == [("ip_address", "198.51.100.7")]


def test_findings_sorted_and_non_overlapping(detector: SensitivityDetector) -> None:
    text = (
        "Hi, I am Carla Bianchi, card 4539 1488 0343 6467, mail carla.b@posteo.it, "
        "home Via Roma 10, phone +39 06 6982 1234, IBAN DE89370400440532013000."
    )
    findings = detector.scan(text)
    assert {f.type for f in findings} >= {"person", "credit_card", "email", "street_address", "phone", "iban"}
    assert findings == sorted(findings, key=lambda f: f.start)
    for before, after in pairwise(findings):
        assert before.end <= after.start
    assert all(f.type in FINDING_TYPES and 0 <= f.confidence <= 1 for f in findings)


def test_finding_is_frozen() -> None:
    finding = Finding("email", 0, 3, 0.9)
    with pytest.raises(AttributeError):
        finding.start = 1  # type: ignore[misc]


def test_empty_and_plain_text(detector: SensitivityDetector) -> None:
    assert detector.scan("") == []
    assert detector.scan("What is the capital of France? Explain briefly.") == []


# --- instructions to stay inside ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Here are the salaries. Keep it local, please.", "keep it local"),
        ("Please don't share any of this with OpenAI.", "don't share any of this with openai"),
        ("Summarise the notes below. Do not upload them to the cloud.", "do not upload them to the cloud"),
        ("This conversation must stay on-prem.", "this conversation must stay on-prem"),
        ("Analyse these records in-house only.", "analyse these records in-house"),
        ("The patient data must not leave our hospital network.", "the patient data must not leave our"),
        ("请在本地处理这份合同", "本地处理"),
        ("İstanbul team: keep it local.", "keep it local"),  # offsets survive a two-character lowercase
        (
            "Here are the minutes; you must process them on our own servers.",
            "process them on our own servers",
        ),
        ("You must not send this to the cloud.", "must not send this to the cloud"),
        # a trial's: "keep this internal" went to haiku (the thirty-sixth session)
        ("Please keep this internal: summarise our Q3 roadmap.", "keep this internal"),
        ("Summarise our roadmap. Keep it internal.", "keep it internal"),
    ],
)
def test_instructions_to_stay_inside(text: str, phrase: str) -> None:
    span = find_directive(text)
    assert span is not None and text[span[0] : span[1]].lower() == phrase


@pytest.mark.parametrize(
    "text",
    [
        "How do I run Llama locally?",
        "What is the best way to process data locally in pandas?",
        "Never share passwords with third parties.",
        "Write a Python function; do not use external APIs.",
        "Employees must not leave our premises during a drill.",
        "Access is restricted to our employees.",
        "Please keep the local copy in sync with the remote.",
        "The payment must be processed in our system within 24 hours.",
        "Run this local script and tell me the output",
        "Deploy the app to the cloud and don't send logs to stdout",
        "Use only the standard library, no external libraries.",
        "İstanbul offices: keep the local time in mind.",  # a character that lowercases to two
        # a task for the code to do, not an instruction about this request
        "Write a Python script to store the data locally in a SQLite database",
        "I want an app which can process the data locally and sync later",
        "Write a Flask route to handle the request locally without calling the API",
        "The script should not send any data to external APIs.",
        "Rewrite our privacy policy: We do not share this information with third parties.",
        "Refactor the parser and keep the helper functions internal.",  # code's visibility
        "We keep internal docs in Confluence.",
    ],
)
def test_no_instruction_to_stay_inside(text: str) -> None:
    assert find_directive(text) is None


def test_the_strongest_are_kept_as_comparing_with_every_kept_finding_keeps_them() -> None:
    """_strongest finds overlaps by bisection; the plain rule compares each with every one kept."""
    from router.signals.sensitivity.detector import _PRIORITY, _strongest, _united

    def plain(findings: list[Finding]) -> list[Finding]:
        chosen: list[Finding] = []
        for finding in sorted(findings, key=lambda f: (-f.confidence, -_PRIORITY[f.type], f.start - f.end)):
            if all(finding.end <= kept.start or finding.start >= kept.end for kept in chosen):
                chosen.append(finding)
        return sorted(chosen, key=lambda f: f.start)

    rng = random.Random(7)
    types = sorted(_PRIORITY)
    for _ in range(2000):
        findings = []
        for _ in range(rng.randint(0, 12)):
            start = rng.randint(0, 60)
            end = start + rng.randint(1, 15)
            findings.append(Finding(rng.choice(types), start, end, rng.choice((0.5, 0.7, 0.9))))
        united = _united(findings)
        assert _strongest(united) == plain(united)


def test_a_question_cancels_a_directive_within_its_window_only() -> None:
    """A question earlier in the sentence ("how do I ...") makes a directive part of the question,
    read back no further than the 200 characters of the directive's window: a longer sentence's
    earlier question no longer cancels it (reading every sentence to its start from every match
    made a long text quadratic)."""
    near = "How do I configure the pipeline so that it runs nightly and keep this data locally"
    filler = " and the nightly job also reruns the failed batches" * 6  # 300 characters, no full stop
    far = "How do I configure the pipeline" + filler + " and keep this data locally"
    assert find_directive(near) is None
    assert find_directive(far) is not None


@pytest.mark.parametrize(
    "text",
    [
        # a request to write fiction or an exercise, or one that says its people are made up: its
        # names are characters' and examples', however they are introduced
        "Write a ghost story in which Dr. Imelda Stroud inherits a lighthouse.",
        "Sample rows for my unit tests, fictional customers: Mrs. Petra Vollmer and Mr. Idris Kell.",
        "Role-play as Captain Odile Fenner, a smuggler with a heart of gold.",
        "Escribe un cuento sobre la señora Amparo Villalba y su gato.",
        # a form that heads the request, the writer's own novel, made-up examples, a character's
        # relation (not the writer's)
        "Limerick about a baker named Percival Crumbworth, please.",
        "Does the ending of my novel work? Dr. Ottilie Marchbanks dies on page 300.",
        "Generate a table of fake customers, e.g. Mrs. Wilhelmina Strout, with order totals.",
        "Write a story. My protagonist's sister, Dr. Elena Vosskamp, is a pilot.",
    ],
)
def test_made_up_people_in_a_request_for_fiction_are_not_flagged(
    detector: SensitivityDetector, text: str
) -> None:
    assert found(detector, text, "person") == []
