"""The sensitivity detectors' fast forms of their patterns find exactly what the plain forms find.

The detectors write a leading lookbehind or \\b after a pattern's first character
(scanning.lead), try a pattern only where a cheap gate matches (scanning.Prefiltered), and match
lowercase forms of case-insensitive patterns in the lowercased text (scanning.case_aligned). Each
test here compares a fast form with the plain pattern it stands for, on generated strings built
from the pieces those patterns care about. No network, a few seconds in all.
"""

from __future__ import annotations

import random
import re
import string
import sys
from collections.abc import Callable, Iterable, Iterator

import pytest

from router.signals.sensitivity import (
    addresses,
    credential_files,
    detector,
    identifiers,
    name_cues,
    name_tokens,
    names,
    nearby,
    numbers,
    programs,
    prose,
    scanning,
)
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.letters import BMP_LETTER, UPPER, bmp_only
from router.signals.sensitivity.scanning import DigitLed, Prefiltered, WordLed, case_aligned, lead, word_start

Spans = list[tuple[tuple[int, int], ...]]

# characters that lowering or IGNORECASE treat specially: long s, dotless i, dotted capital I, the
# Kelvin sign, a final sigma, an Arabic-Indic digit
ODD = ["\u017f", "\u0131", "\u0130", "\u212a", "é", "ß", "Σ", "\u0663", "_", "'", "\u2019"]


def spans(matches: Iterable[re.Match[str]]) -> Spans:
    """Every match's span and the spans of all its groups."""
    return [tuple(m.span(g) for g in range((m.re.groups or 0) + 1)) for m in matches]


def texts(vocabulary: list[str], count: int = 4000, seed: int = 7, longest: int = 14) -> Iterator[str]:
    """Strings of up to `longest` random pieces of `vocabulary`, glued by spaces, breaks or punctuation."""
    rng = random.Random(seed)
    glue = ["", "", " ", "  ", "\n", "-", ".", ",", ": ", "\t"]
    for _ in range(count):
        yield "".join(rng.choice(vocabulary) + rng.choice(glue) for _ in range(rng.randrange(1, longest)))


def pieces(joined: str) -> list[str]:
    """The |-separated pieces of a pattern's vocabulary, and the odd characters."""
    return [*joined.split("|"), *ODD]


def variants(text: str) -> list[str]:
    return [text, text.lower(), text.upper(), text.title()]


def same_matches(
    plain: Callable[[str], Iterable[re.Match[str]]],
    fast: Callable[[str], Iterable[re.Match[str]]],
    vocabulary: list[str],
) -> None:
    for text in texts(vocabulary):
        for variant in variants(text):
            assert spans(fast(variant)) == spans(plain(variant)), variant


# --- scanning's helpers ------------------------------------------------------------------------


def test_a_lookbehind_written_after_the_first_character_matches_the_same() -> None:
    for first, not_after, rest in [
        (r"\d", r"[\w.,]", r"\d{0,4}[A-Za-z]?"),
        ("[A-Za-z]", r"\w", r"[A-Za-z]\d{2}"),
        ("[2-9]", r"[\w-]", r"\d{3}([ -]?)\d{4}\1\d{4}"),
        ("ab", r"\w", "c?"),
        (UPPER, r"\w", r"[\w'\-]*"),
    ]:
        plain = re.compile(f"(?<!{not_after}){first}{rest}")
        fast = re.compile(lead(first, not_after) + rest)
        same_matches(
            plain.finditer,
            fast.finditer,
            ["1", "23", "2", "9", "a", "Ab", "abc", "B", "x", ".", ",", "-", *ODD],
        )
    plain = re.compile(r"\bsk-\w+")
    fast = re.compile(word_start("sk-") + r"\w+")
    same_matches(plain.finditer, fast.finditer, ["sk-", "ask-", "sk", "-", "a1", "_sk-", *ODD])


def test_a_prefiltered_pattern_finds_what_finditer_finds() -> None:
    cases = [
        # the pattern without its \b as the gate
        (
            re.compile(r"\b(ey[a-z0-9]{3,}\.ey[a-z0-9]{3,})"),
            re.compile(r"(ey[a-z0-9]{3,}\.ey[a-z0-9]{3,})"),
            0,
        ),
        # a gate on the rarer middle, `back` characters after the start
        (re.compile(r"\b[A-Za-z]{2}\d{2}[A-Z0-9]{4,}\b"), re.compile(r"\d(?<=[A-Za-z]{2}\d)\d"), 2),
        # a pattern that can match the empty string hands over to finditer
        (re.compile(r"\bx*"), re.compile(r"x*"), 0),
    ]
    pieces = ["ey", "eyJ", "abc", "x", "xx", "DE", "89", "1234", ".", "AB12", "q", *ODD]
    for pattern, gate, back in cases:
        prefiltered = Prefiltered(pattern, gate, back)
        same_matches(pattern.finditer, prefiltered.finditer, pieces)


def test_a_word_led_pattern_finds_what_finditer_finds() -> None:
    """Overlapping words, words inside words, and a shorter word where a longer one matches."""
    pattern = re.compile(r"is(?<!\wis)\s+(?:on|at)|it's\s+in|live(?:s|d)?\s+at|liv(?<!\wliv)ing")
    led = WordLed(pattern, ["is", "it's", "live", "liv"])
    same_matches(
        pattern.finditer, led.finditer, ["is", "this", "it's", "lives", "living", " ", "on", "at", "in", *ODD]
    )
    with pytest.raises(ValueError):
        WordLed(pattern, ["is", ""])


def test_a_digit_led_pattern_finds_what_finditer_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """At the runs of digits, and where they are dense (by finditer itself)."""
    pattern = re.compile(lead(r"\d", r"\w") + r"\d*(?:[.-]\d+)?")
    led = DigitLed(pattern)
    vocabulary = ["1", "12", "a", "b1", ".", "-", " ", "\u0663", *ODD]
    same_matches(pattern.finditer, led.finditer, vocabulary)  # short texts: dense
    monkeypatch.setattr(scanning, "_DENSE", 1)  # any text: at the runs
    same_matches(pattern.finditer, led.finditer, vocabulary)
    assert scanning.digit_runs("a1 22 3\u0663b4") == [1, 3, 6, 9]
    assert led.search("x 12-3") is not None and led.search("x y") is None


def test_case_aligned_holds_for_every_code_point() -> None:
    """What case_aligned rests on: lowering keeps a character's class (\\w, \\s, \\d, letter), and
    IGNORECASE matches a character to an ASCII letter just when it lowers to it, but for the
    dotless i and the long s."""
    chars = [chr(code) for code in range(sys.maxunicode + 1)]
    chars = [char for char in chars if len(char.lower()) == 1]
    text = "".join(chars)
    lowered = "".join(char.lower() for char in chars)
    for kind in (r"\w", r"\s", r"\d", r"[^\W\d_]"):
        pattern = re.compile(kind)
        assert [m.start() for m in pattern.finditer(text)] == [m.start() for m in pattern.finditer(lowered)]
    for letter in "abcdefghijklmnopqrstuvwxyz":
        insensitive = {m.start() for m in re.finditer(f"(?i){letter}", text)}
        lowers = {m.start() for m in re.finditer(letter, lowered)}
        assert {text[i] for i in insensitive ^ lowers} <= {"\u0131", "\u017f"}, letter
    assert not case_aligned("\u0130", "\u0130".lower()) and not case_aligned("\u017f", "\u017f")
    assert case_aligned("\u212a", "k")


# --- the detectors' fast forms -----------------------------------------------------------------


def lowercase_matches(
    plain: re.Pattern[str], fast: Callable[[str, str], Iterable[re.Match[str]]], vocabulary: list[str]
) -> None:
    """`fast(text, text.lower())` finds what `plain` finds in `text`, wherever case_aligned holds."""
    for text in texts(vocabulary):
        for variant in variants(text):
            lowered = variant.lower()
            if case_aligned(variant, lowered):
                assert spans(fast(variant, lowered)) == spans(plain.finditer(variant)), variant


def test_lowercase_cues_are_the_case_insensitive_cues() -> None:
    lowercase_matches(
        addresses._CUE,
        lambda text, lowered: addresses._LOWER_CUES.finditer(lowered),
        pieces(
            "address|Address of my new flat is|located at|lives in|LIVED ON|living at|meeting you at|send it"
            "|sent to|delivered it to|ship to|returned to|off at|corner of|moved to|stop at|taxi to|is on"
            "|enter on|staying at|come to|go to|it's in|12|Main|x"
        ),
    )
    lowercase_matches(
        identifiers._LICENCE,
        lambda text, lowered: identifiers._LOWER_LICENCE.finditer(lowered),
        pieces("driver's|DRIVERS|driving|licence|license|number|no.|#|id|DL|dl|passport|x"),
    )
    lowercase_matches(
        prose._SPOKEN,
        lambda text, lowered: prose._LOWER_SPOKEN.finditer(lowered),
        pieces(
            "password|PASSCODE|passphrase|pin|pwd|passwd|creds|is|was|be|to|the|=|:|,|?|my|root|10.0.3.7|hunter2"
            "|S3cr3t!|1234|-|'|x"
        ),
    )
    # the rules of 2026-12-06: each (?i) form against its lowercase form
    for plain, lower, words in (
        (
            prose._FOREIGN_SPOKEN,
            prose._LOWER_FOREIGN,
            "Passwort|mot de passe|CONTRASEÑA|пароль|ist|es|—|:|der|Ab3cD4eF9g|x",
        ),
        (prose._PAIR, prose._LOWER_PAIR, "login|Creds|ACCOUNT|is|:|-|for|a.b|bob|/|,|Ab3cD4eF9g|x"),
        (
            prose._FIELD_PAIR,
            prose._LOWER_FIELD_PAIR,
            "user|Username|BENUTZER|Login|is|:|=|,|/|and|pass|PW|Passwort|mot de passe|the|bob|Ab3cD4eF9g|\t|x",
        ),
        (
            nearby._WORD,
            nearby._LOWER_WORD,
            "password|PW|Pwd|creds|LOGIN|log-in|Wi-Fi|Passwort|CONTRASEÑA|mot de passe|пароль|密码|_|2|x",
        ),
        (
            re.compile("(?i)" + programs._IDENTIFIED_BY),
            re.compile(programs._IDENTIFIED_BY),
            "IDENTIFIED|identified|With|sha2|BY|by|CREATE|alter|USER|bob|set|PASSWORD|=|(|'Ab3cD4eF9g'|\"Q7!x1\"|Values|;|x",
        ),
    ):
        lowercase_matches(plain, lambda text, lowered, lower=lower: lower.finditer(lowered), pieces(words))
    lowercase_matches(
        addresses._UNIT,
        lambda text, lowered: addresses._UNITS.finditer(text, lowered),
        pieces(
            "Apt|apartment|Appartement|flat|Suite|suite|P.O. Box|po box|Post Office Box|postbox|Postfach"
            "|apartado|casilla|PSC|unit|CMR|box|APO|fpo|dpo|AA|ae|#|12|123|4567|12345|P. O. Box|p\to box"
            "|P.\u00a0O. Box|pO|p.|p|o"
        ),
    )


def test_the_whitespace_of_a_po_box_is_below_u3001() -> None:
    assert re.findall(r"\s", "".join(map(chr, range(sys.maxunicode + 1)))) == addresses._SPACES


@pytest.mark.parametrize("dense", [40, 1])  # short texts: through their gates; any text: at the runs
def test_gated_identifier_and_iban_patterns_find_the_same(
    monkeypatch: pytest.MonkeyPatch, dense: int
) -> None:
    monkeypatch.setattr(scanning, "_DENSE", dense)
    parts = pieces(
        "DE89|3704|0044|0532|0130|00|GB82 WEST 1234 5698 7654 32|RSSMRA85T10A562S|ABCPE1234F|12345678Z"
        "|X1234567L|x|Y|ab|AB12|1|JK 12 34 56 C|AB123456D| "
    )
    same_matches(identifiers._DNI.finditer, identifiers._DNIS.finditer, parts)
    same_matches(identifiers._CODICE_FISCALE.finditer, identifiers._CODICI_FISCALI.finditer, parts)
    same_matches(identifiers._PAN.finditer, identifiers._PANS.finditer, parts)
    same_matches(identifiers._NINO.finditer, identifiers._NINOS.finditer, parts)
    same_matches(numbers._IBAN.finditer, numbers._IBANS.finditer, parts)
    letter_digits = identifiers._LETTER_DIGITS
    same_matches(letter_digits.pattern.finditer, letter_digits.finditer, parts)


def test_the_gates_that_stand_for_a_search_agree() -> None:
    shape = re.compile(
        r"(?<![^\W\d_])[^\W\d_][\w'\u2019\-]*,?[ \t]+\d{1,5}\b|(?<!\w)\d{1,6}[A-Za-z]?,?[ \t]+" + UPPER
    )
    letter_digits = re.compile(r"[A-Za-z] ?\d\d")
    for text in texts(["Main", "12", "a", "B", "1", "123456", "'", "-", ",", "x1", *ODD]):
        for variant in variants(text):
            assert addresses._address_shape(variant) == bool(shape.search(variant)), variant
            assert bool(identifiers._LETTER_DIGITS.search(variant)) == bool(letter_digits.search(variant)), (
                variant
            )


# The number patterns as they were written before they began with their first character (b3bb7cd).
PLAIN_NUMBERS = {
    "_PHONE": r"(?<![\w.+/\-=#$€£¥:(])(?>\+?\(?\d[\d ().\-]*\d)(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w/]|-\d|[.,]\d|:\d)",
    "_CARD": r"(?<![\d\-.,])\d(?:[ \-]?\d){11,18}(?![\d\-]|[.,]\d)",
    "_IPV4": r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)",
    "_IPV6": r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])",
}


def test_patterns_led_by_a_number_find_the_same_where_numbers_begin(monkeypatch: pytest.MonkeyPatch) -> None:
    """The detectors' patterns tried where a run of digits begins (scanning.DigitLed)."""
    monkeypatch.setattr(scanning, "_DENSE", 1)  # at the runs, however short the text
    vocabulary = pieces(
        "1|12|123|1234|12345|123-45-6789|046 454 286|2345 6789 0123|4111 1111 1111 1111|10.0.0.1|1 85 05"
        "|1 85 05 78 006 084 36|185057800608436|12 Main Street|5 rue de la Paix|Hauptstraße|x|-|.|,|/|:"
        "|+44 20 7946 0958|(555) 123-4567|+(1)|+|(|)|ext. 12"
    )
    for led in (
        numbers._CARDS,
        numbers._PHONES,
        numbers._IPV4S,
        identifiers._SSNS,
        identifiers._SINS,
        identifiers._AADHAARS,
        identifiers._NIRS,
        identifiers._NINE_DIGITS,
        addresses._HOUSE_NUMBERS,
        addresses._EN_STREETS,
        addresses._FRENCH_STREETS,
    ):
        same_matches(led.pattern.finditer, led.finditer, vocabulary)
    plain_long = re.compile(r"\d[\d \-]{5,}\d")
    for text in texts(vocabulary):
        assert (identifiers._LONG_NUMBER.search(text) is None) == (plain_long.search(text) is None), text


def test_house_numbers_are_read_as_before_their_words_were_looked_at_as_strings() -> None:
    """addresses._european skips a number when no reading can take it, by a look at its last words as
    strings: the readings themselves, at every number, find the same streets."""

    def every_number(text: str) -> list[tuple[int, int, float]]:
        found = []
        for number in addresses._HOUSE_NUMBER.finditer(text):
            window_start = max(0, number.start() - 60)
            window = text[window_start : number.start()]
            year = number.group(0)[:2] in ("19", "20") and len(number.group(0)) == 4
            words = list(addresses._NON_SPACE.finditer(window))[-6:]
            if window[-1:] not in (" ", "\t") or year or not words:
                continue
            begin, end, confidence = addresses._suffixed(words), number.end(), 0.8
            if begin is None:
                begin, confidence = addresses._prefixed(words), 0.75
            if begin is None:
                (begin, end), confidence = addresses._before_postcode(text, words, number.end()), 0.7
            if begin is not None:
                found.append((window_start + begin.start(), end, confidence))
        return found

    vocabulary = pieces(
        "Hauptstraße|Passauer|Strasse|Koskikatu|ul.|Słowicza|Calle|Mayor|rue|Lomená|Mikulovice|671 72|48023"
        "|Räsna|Pärna|12|19|2024|5b|step|peg|, |.,|tie|Bow|and|Lomená 19, Mikulovice 671 72|Pärna 67, 48023 Räsna"
    )
    for text in texts(vocabulary):
        for variant in variants(text):
            fast = [(f.start, f.end, f.confidence) for f in addresses._european(variant)]
            assert fast == every_number(variant), variant


def test_a_phone_candidate_of_fewer_than_six_characters_has_no_phone_shape() -> None:
    """What find_phones's first look rests on."""
    for text in texts([*"0123456789 .-()x+", "ext", "(0)"], count=20000, longest=6):
        candidate = text.rstrip(" .-")
        if len(candidate) < 6:
            assert not numbers._phone_shape_ok(candidate, numbers._phone_groups(candidate)), candidate


def test_number_patterns_match_as_they_did_before_they_led_with_a_character() -> None:
    vocabulary = pieces("1|12|123|1234|555|+1|+44|(0)|(|)|x|ext.|a|f|ab12|::|:|.|-|/|=|#|$|€|7.5|0.0.0")
    for name, plain in PLAIN_NUMBERS.items():
        same_matches(re.compile(plain).finditer, getattr(numbers, name).finditer, vocabulary)


def test_emails_are_looked_for_only_before_an_at_sign() -> None:
    same_matches(
        detector._EMAIL.finditer,
        detector._email_matches,
        [*pieces("john|j.doe|a+b|x_y|%|@example.com|@mail.co.uk|@|@@|.com|12"), "a" * 40, "b" * 30],
    )


def test_a_text_of_many_at_signs_is_searched_plainly_with_the_same_findings() -> None:
    for text in ("a.b@" * 3000, " ".join(f"user{i}@mail{i}.org" for i in range(100)), "bob@example.com"):
        found = [(f.start, f.end) for f in detector.find_emails(text)]
        assert found == [m.span() for m in detector._EMAIL.finditer(text)]
        assert found == [m.span() for m in detector._email_matches(text)]


def test_the_letters_below_u10000_are_the_letters() -> None:
    letters = re.compile(r"[^\W\d_]")
    assert {chr(c) for c in range(128) if letters.match(chr(c))} == set(string.ascii_letters)
    bmp = "".join(map(chr, range(0x10000)))
    assert re.findall(BMP_LETTER, bmp) == letters.findall(bmp)
    assert bmp_only(bmp) and not bmp_only(bmp + "\U0001f600") and not bmp_only("\U00010000")


def _split_words(split: re.Pattern[str]) -> Callable[[str], list[tuple[int, int]]]:
    def words(text: str) -> list[tuple[int, int]]:
        tokens = name_tokens.Tokens.of(text)
        assert tokens.words == split.split(text)[1::2]
        return list(zip(tokens.starts, tokens.ends, strict=True))

    return words


def test_the_words_split_are_the_words_found() -> None:
    """_Tokens.of splits a text into words with the pattern for its characters; each gives the
    words, with their spans, that _TOKEN finds."""
    found = lambda text: [match.span() for match in name_tokens.TOKEN.finditer(text)]  # noqa: E731
    for split, vocabulary in (
        (name_tokens._SPLIT_ASCII_TOKENS, list(string.printable)),
        (
            name_tokens._SPLIT_BMP_TOKENS,
            [*string.printable, *ODD, "ž", "Ⅳ", "²", "д", "中", "\u0301", "\u2013"],
        ),
        (name_tokens._SPLIT_TOKENS, ["\U0001f600", "\U0001d400", "\U00010400", *ODD, "a", " ", "-", "1"]),
    ):
        words = _split_words(split)
        for text in texts(vocabulary, count=1000):
            for variant in variants(text):
                assert words(variant) == found(variant), variant


def test_personal_words_are_found_by_their_forms() -> None:
    """name_cues.personal as one set operation finds what a test of each word finds."""

    def plain(words: list[str]) -> bool:
        return not name_cues.PERSONAL_WORDS.isdisjoint(words) or any(
            word.removesuffix("'s").removesuffix("\u2019s") in name_cues.PERSONAL_WORDS
            for word in words
            if word.endswith(("'s", "\u2019s"))
        )

    endings = ["", "'s", "\u2019s", "'s's", "\u2019s's", "'s\u2019s", "s", "'", "\u2019", "'ss"]
    words = [
        word + ending for word in [*name_cues.PERSONAL_WORDS, "me", "i", "my's", ""] for ending in endings
    ]
    for word in words:
        assert name_cues.personal([word]) == plain([word]), word
    assert name_cues.personal(iter(["the", "client\u2019s"])) and not name_cues.personal(["the", "i"])


def test_possessive_repetitions_match_as_the_greedy_ones() -> None:
    """A repetition made possessive where giving characters back could never lead to a match."""
    for pattern in (names._SPEAKER, names._VOCATIVE_END, name_tokens.LIST):
        greedy = re.compile(pattern.pattern.replace("*+", "*"), pattern.flags)
        assert greedy.pattern != pattern.pattern
        same_matches(
            greedy.finditer,
            pattern.finditer,
            pieces("Anna|Bob|O'Neil|Jean-Luc|and|&|, Cy and Di|, Anna!|tell me Anna,|:|!|?|me|x|1|\n|>|'|-"),
        )


def test_patterns_of_line_starts_are_found_line_by_line() -> None:
    """The same groups: a match after a line break begins with the break."""
    for lines, vocabulary in [
        (names._SPEAKERS, pieces('Anna|Bob|:| |\t|>|\n|\r\n|x|"|“|Dr.')),
        (
            credential_files._PGPASS_LINES,
            pieces("db:5432:app:admin:|h:*:d:u:|s3cr3t!|pw|localhost|5432|:|\n| "),
        ),
    ]:
        for text in texts(vocabulary):
            for variant in variants(text):
                found = [m.span(1) for m in lines.finditer(variant)]
                assert found == [m.span(1) for m in lines.pattern.finditer(variant)], variant


@pytest.fixture
def own_gate_words(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process-wide gate words as they were after the test: its words ("k", "ey") would make
    every later scan in the process read its texts further."""
    from router.signals.sensitivity import gates

    monkeypatch.setattr(gates, "_words", set(gates._words))
    monkeypatch.setattr(gates, "_version", gates._version + 1)
    monkeypatch.setattr(gates, "_automaton", None)
    monkeypatch.setattr(gates, "_last", None)


@pytest.mark.usefixtures("own_gate_words")
def test_a_gate_finds_exactly_the_words_a_text_holds() -> None:
    """Gate.found is `{w for w in words if w in lowered}` for overlapping words (one inside another,
    one starting inside another), for another gate registered after a text was read (the automaton
    is built again with it), and for one text after another (the kept result is the last text's)."""
    words = ["api", "apikey", "key", "ey", "s.", "sk", "sk-ant-", "hvs.", "-----begin", "本地"]
    gate = Gate(words)
    later = ["pikey", "ant-", "k"]
    vocabulary = ["api", "apikey", "key", "ey", "s.", "sk-ant-", "hvs.", "-----BEGIN", "本地", "x", "k", *ODD]
    for number, text in enumerate(texts(vocabulary, count=2000)):
        lowered = text.lower()
        if number == 1000:
            other = Gate(later)
        assert gate.found(lowered) == {w for w in words if w in lowered}, text
        assert gate.open(lowered) == any(w in lowered for w in words), text
        if number >= 1000:
            assert other.found(lowered) == {w for w in later if w in lowered}, text
    with pytest.raises(ValueError, match="lowercase"):
        Gate(["Pass"])
