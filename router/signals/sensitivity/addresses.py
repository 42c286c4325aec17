"""Detects street addresses and postal boxes in prompt text, in English and common European forms.

"12 Main Street", "Hauptstraße 5", "Koskikatu 25", "12 rue de la Paix", "Via Roma 10", "Calle Mayor
3", "Apt. 4", "P.O. Box 12", military APO/FPO lines, and any house-number phrase that follows an
address cue ("my address is", "located at", "send it to"). Offline; European forms are checked
backwards from each house number rather than by scanning the whole text with long alternations,
to keep scans cheap. It must not flag a bare number followed by an ordinary word ("5 apples",
"at 5 pm").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.gazetteer import gazetteer
from router.signals.sensitivity.letters import UPPER
from router.signals.sensitivity.scanning import DigitLed, WordLed, case_aligned, lead, word_start


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words, in order: keeps long word lists readable in source."""
    return tuple(text.split())


_CAP = rf"{UPPER}[\w'\u2019.\-]*"
_WORD = r"[^\W\d_][\w'\u2019.\-]*"
_NUMBER = r"\d{1,5}[A-Za-z]?(?:[/\-]\d{1,4})?"
_EN_SUFFIX = (
    r"Street|St|Streets|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Square|Sq"
    r"|Squares|Terrace|Ter|Way|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Trail|Trl|Crescent|Cres|Close|Row|Alley"
    r"|Bypass|Loop|Pike|Plaza|Ridge|Walk|Mews|Gardens|Grove|Hill|Hills|Heights|Point|Crossing|Expressway"
    r"|Freeway|Turnpike|Causeway|Esplanade|Parade|Quay|Wharf|Green|Junction|Meadows?|Rise|Vale|Villas"
    r"|Wynd|Glen|Hollow|Landing|Manor|Orchard|Estates?|Harbou?r|Creek|Cove|Mall|Motorway|Route|Rte"
    r"|Track|Trace|Viaduct|Wells?|Spur|Summit|Shores?|Fords?|Ferry|Field|Fields|Forest|Fort|Center"
    r"|Centre|Corners?|Springs?|Station|Ways"
)
# The patterns that run over the whole text begin with their first character's class, a \b or a
# lookbehind written after that character (scanning.lead), so that `re` skips ahead to candidates.
# (a time's minutes are no house number: "at 9:00 on the route to ...", but "Home:27 Moss Lane" is one)
_EN_STREET = re.compile(
    lead(r"\d", r"[\w.,]")
    + r"(?<!\d:\d)"
    + rf"\d{{0,5}}[A-Za-z]?(?:[/\-]\d{{1,4}})?,?\s+(?:{_CAP}\s+){{0,3}}{_CAP}\s+"
    rf"(?:{_EN_SUFFIX}|(?i:street|avenue|road|lane|drive|boulevard))\b\.?"
)
_EN_STREETS = DigitLed(_EN_STREET)  # a digit that no digit precedes first: tried where a number begins
# Prefixes that are also English words count only capitalised and followed by capitalised words.
_WEAK_PREFIXES = ("Via", "Corso", "Largo", "Plaza", "Avenue", "Boulevard", "Place", "Route", "Rue")
_WEAK_PREFIXED_STREET = re.compile(
    "(?:" + "|".join(lead(word, r"[\w.]") for word in _WEAK_PREFIXES) + r")\s+"
    rf"(?:(?:de|del|della|di|da|do|dos|das|des|du|la|le|el)\s+)?(?:{_CAP}\s+){{0,3}}{_CAP},?\s+{_NUMBER}\b"
)
_FRENCH_STREET = re.compile(
    lead(r"\d", r"[\w.,]")
    + r"(?<!\d:\d)"
    + rf"\d{{0,4}}(?:\s?(?:bis|ter))?,?\s+(?i:rue|boulevard|bd|chemin|allée|impasse|quai|avenue)"
    rf"\s+(?:(?:de|du|des|la|le|l'|d')\s+)*{_WORD}(?:\s+{_CAP}){{0,3}}"
)
_UNIT = re.compile(
    r"(?<![\w])(?:(?i:apt|apartment|appartement|flat)\.?\s*#?\s*\d{1,5}[A-Za-z]?\b|Suite\s+#?\d{1,5}[A-Za-z]?\b"
    r"|(?i:p\.?\s?o\.?\s*box|post\s+office\s+box|postbox|postfach|apartado|casilla)\s+\d{1,6}\b"
    r"|(?i:psc|unit|cmr)\s+\d{3,5},?\s+(?i:box)\s+\d{3,5}\b|\b(?i:apo|fpo|dpo)\s+(?i:aa|ae|ap)\s+\d{5}\b)"
)
_FRENCH_STREETS = DigitLed(_FRENCH_STREET)
# _UNIT starts where one of its words does: in lowercase text (scanning.case_aligned) it is tried only
# there (scanning.WordLed), found by their lowercase forms; a "p.o. box" begins "po", "p.o", or "p" or
# "p." and one whitespace character (\s, each of them below U+3001) before its "o".
_SPACES = re.findall(r"\s", "".join(map(chr, range(0x3001))))
_UNITS = WordLed(
    _UNIT,
    [
        *_words("apt apartment appartement flat suite post apartado casilla psc unit cmr apo fpo dpo po p.o"),
        *(f"p{dot}{space}o" for dot in ("", ".") for space in _SPACES),
    ],
)
_UNIT_WORDS = (
    "apt",
    "apartment",
    "appartement",
    "flat",
    "suite",
    "box",
    "postfach",
    "apartado",
    "casilla",
    "apo",
    "fpo",
    "dpo",
)
_UNIT_GATE = Gate(_UNIT_WORDS)
# Street-type words of European languages, written joined (Koskikatu) or apart (Passauer Strasse).
_EU_SUFFIXES = tuple(
    _words("""
straße strasse str. gasse weg allee platz damm ufer steig pfad chaussee straat laan plein gracht
kade singel dijk vej gade allé vei veien veg vegen gata gatan vägen väg gränd stigen backen torget
plass straeti gate katu tie kuja polku kaari ranta raitti rinne väylä utca út útja tér körút braut
stræde stræti gatvė iela tänav tee puiestee cesta ulice ská cká sokak soka\u011f\u0131 caddesi bulvar\u0131 brücke
""")
)
# Standalone, these are also English words ("bow tie 3"): only joined to a name do they count.
_EU_JOINED_ONLY = frozenset(("tie", "tee", "weg", "vei", "veg", "ranta", "gate"))
# Street-type words that come before the name and are not English words: "ul. Słowicza 10".
_STRONG_PREFIXES = frozenset(
    _words("""
rue rúa calle c/ avenida avda avda. av. paseo carrer camino carretera rua travessa praça ul. ulica
al. aleja os. trg strada str. calea bulevardul viale piazza piazzale vicolo λεωφόρος οδός λ.
""")
)
_HOUSE_NUMBER = re.compile(lead(r"\d", r"[\w.,:/\-]") + r"\d{0,4}[A-Za-z]?(?![\w:/\-]|[.,]\d)")
_HOUSE_NUMBERS = DigitLed(_HOUSE_NUMBER)  # tried where a number begins
_NON_SPACE = re.compile(r"\S+")
# Gates (searched, not matched): a word and a number, or a number and a capitalised word. The word
# starts only where no letter precedes, since a match starting inside a word is always preceded by
# one starting earlier; this keeps the search from re-reading every word from each of its letters.
_WORD_NUMBER = re.compile(lead(r"[^\W\d_]", r"[^\W\d_]") + r"[\w'\u2019\-]*,?[ \t]+\d{1,5}\b")
_NUMBER_CAPITAL = re.compile(lead(r"\d", r"\w") + r"\d{0,5}[A-Za-z]?,?[ \t]+" + UPPER)
# Cue phrases that an address follows: the first word of each and the rest of its pattern.
_CUE_PHRASES = (
    ("address", r"(?:\s+is|\s+to|\W{1,3}it\s+is|\W{1,3}it's|\s+of\s+(?:\S+\s+){1,6}?is)?"),
    ("located", r"\s+at"),
    ("live", r"s?\s+(?:at|on|in)"),
    ("lived", r"\s+(?:at|on|in)"),
    ("living", r"\s+at"),
    ("meet", r"(?:ing)?\s+(?:me|you|us|them)?\s*at"),
    ("sen", r"[dt]\s+(?:\w+\s+){0,4}?to"),
    ("deliver", r"(?:ed)?\s+(?:it\s+)?to"),
    ("ship", r"(?:ped)?\s+(?:it\s+)?to"),
    ("return", r"(?:ed)?\s+(?:it\s+)?to"),
    ("off", r"\s+at"),
    ("corner", r"\s+of"),
    ("moved", r"\s+to"),
    ("stop", r"\s+at"),
    ("taxi", r"\s+to"),
    ("is", r"\s+(?:on|at|in)"),
    ("enter", r"\s+on"),
    ("stay", r"(?:ing)?\s+at"),
    ("come", r"\s+to"),
    ("go", r"\s+to"),
    ("it's", r"\s+in"),
)
_CUE_END = r"\s*[:\-]?\s*"
_CUE = re.compile(r"(?i)\b(?:" + "|".join(word + rest for word, rest in _CUE_PHRASES) + ")" + _CUE_END)
# The same cues in lowercase text (scanning.case_aligned), each led by its first word, so that `re`
# skips ahead to the words' first letters instead of trying the pattern at every position.
_LOWER_CUE = re.compile(
    "(?:" + "|".join(word_start(word) + rest for word, rest in _CUE_PHRASES) + ")" + _CUE_END
)
# _LOWER_CUE tried only where one of its first words stands (their first letters are a third of a
# text's: `re` would try the pattern at nearly every position).
_LOWER_CUES = WordLed(_LOWER_CUE, [word for word, _ in _CUE_PHRASES])
# Every _CUE alternative contains one of these: a substring test is far cheaper than the regex.
_CUE_HINTS = (
    "address",
    "located",
    "live",
    "meet",
    "send",
    "sent",
    "deliver",
    "ship",
    "return",
    "off at",
    "corner",
    "moved",
    "stop at",
    "taxi",
    "is on",
    "is at",
    "is in",
    "enter on",
    "stay",
    "come to",
    "go to",
    "it's in",
)
_CUE_GATE = Gate(_CUE_HINTS)
_DIGIT = re.compile(r"\d")
_WORD_START = re.compile(r"(?<![^\W\d_])[^\W\d_]")
_CUED_NUMBER_FIRST = re.compile(rf"\d{{1,6}}[A-Za-z]?(?:[ \t]\d{{1,5}})?,?\s+(?:{_WORD}\s+){{0,3}}{_CAP}")
_CUED_NAME_FIRST = re.compile(
    rf"{_CAP}(?:\s+{_WORD}){{0,3}},?\s+{_NUMBER}(?!\d|[:.,]\d|\s?(?i:%|am\b|pm\b|a\.m\.|p\.m\.))"
)
_SENTENCE_BREAK = re.compile(r"[.!?]\s+[A-Z]")
_NOT_PLACE = re.compile(
    r"(?i)\b(?:am|pm|o'clock|hours?|minutes?|days?|weeks?|months?|years?|times?|people|percent|dollars"
    r"|euros|pounds|items?|pages?|chapter|version|step|level|grade|page|section|figure|table)\b"
)
# A date or a time of day at a number: "my calendar for march 2", "the alarm at 9 tomorrow" (not
# "1585 Broadway tomorrow": the street's number is not the day's)
_MONTHS = (
    r"january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|apr|jun|jul|aug|sept?|oct|nov|dec"  # not "mar": "Passeig del Mar 5" is a street
)
# (a month's name before a street's or a building's word is a name: "3 May Cottages", "2 march barns")
_DATE = re.compile(
    rf"(?i)\b(?:{_MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b\d{{1,2}}(?::\d\d)?(?:st|nd|rd|th)?\s+(?:{_MONTHS}|today|tonight|tomorrow|yesterday|noon|midnight)\b"
    rf"(?!\s+(?:{_EN_SUFFIX}|cottages?|house|barns?|farm|lodge|hall|mews|villas?)\b)"
)


def _address_shape(text: str) -> bool:
    """A number and a capitalised word, or a word and a number, somewhere in the text."""
    return bool(_NUMBER_CAPITAL.search(text) or _WORD_NUMBER.search(text))


def _cued(text: str, lowered: str) -> Iterator[Finding]:
    """Addresses after a cue, where the text has the shape of an address somewhere: that gate is
    read only once a cue is followed by an address, as most cues are not (it costs more than the
    cues on a long prompt)."""
    cues = _LOWER_CUES.finditer(lowered) if case_aligned(text, lowered) else _CUE.finditer(text)
    shaped: bool | None = None
    for cue in cues:
        position = cue.end()
        match = _CUED_NUMBER_FIRST.match(text, position) or _CUED_NAME_FIRST.match(text, position)
        if (
            match
            and not _NOT_PLACE.search(match.group(0))
            and not _SENTENCE_BREAK.search(match.group(0))
            and not _DATE.search(match.group(0))
        ):
            if shaped is None:
                shaped = _address_shape(text)
            if not shaped:
                return
            confidence = 0.75 if "address" in cue.group(0).lower() else 0.6
            yield Finding("street_address", match.start(), match.end(), confidence, "cued")


def _suffixed(words: list[re.Match[str]]) -> re.Match[str] | None:
    """The word where "Koskikatu" or "Passauer Strasse" begins, if the last word is a street type."""
    last = words[-1].group(0).rstrip(",")
    lower = last.lower()
    if not last[:1].isalpha() or not lower.endswith(_EU_SUFFIXES):
        return None
    if lower not in _EU_SUFFIXES:
        return words[-1]
    if lower in _EU_JOINED_ONLY or len(words) < 2 or not words[-2].group(0)[:1].isalpha():
        return None
    return words[-2]


def _prefixed(words: list[re.Match[str]]) -> re.Match[str] | None:
    """The word where "ul. Słowicza" or "Calle Mayor" begins: a street-type prefix a few words back."""
    for word in reversed(words[:-1] or words):
        token = word.group(0)
        if token.lower() in _STRONG_PREFIXES:
            return word
        if token.endswith((".", "!", "?", ":", ";")):
            return None  # the street name would cross a sentence or a label
    return None


def _european(text: str) -> Iterator[Finding]:
    for number in _HOUSE_NUMBERS.finditer(text):
        window_start = max(0, number.start() - 60)
        window = text[window_start : number.start()]
        if window[-1:] not in (" ", "\t") or (
            number.group(0)[:2] in ("19", "20") and len(number.group(0)) == 4
        ):
            continue  # a year after a word ("Spring 2024") is no house number
        # The last words as strings first, a cheaper look than as matches (0.1-0.2 ms less on a
        # long prompt of a hundred numbers): each reading below needs a comma after the number
        # (_before_postcode), a street-type prefix (_prefixed) or a street type last (_suffixed),
        # and most numbers (a count, a step, a version) have none.
        last = window.split()[-6:]
        if not last or not (
            text.startswith((",", ".,"), number.end())
            or not _STRONG_PREFIXES.isdisjoint(map(str.lower, last))
            or last[-1].rstrip(",").lower().endswith(_EU_SUFFIXES)
        ):
            continue
        words = list(_NON_SPACE.finditer(window))[-6:]
        begin = _suffixed(words)
        confidence = 0.8
        if begin is None:
            begin, confidence = _prefixed(words), 0.75
        end = number.end()
        if begin is None:
            begin, end = _before_postcode(text, words, end)
            confidence = 0.7
        if begin is not None:
            yield Finding("street_address", window_start + begin.start(), end, confidence, "street")


# A place and its postcode after the house number: "Lomená 19, Mikulovice 671 72", "Pärna 67, 48023 Räsna".
_POSTCODE_LINE = re.compile(
    rf"\.?,[ \t]+(?:{_CAP}(?:[ \t]+{_WORD}){{0,3}}[ \t]+(\d{{4,6}})(?:[ \t]?\d{{2}}|[ \t]?[A-Z]{{2}})?\b"
    rf"|(\d{{4,6}})[ \t]+{_CAP})"
)


_CAPITAL = re.compile(UPPER)


def _before_postcode(text: str, words: list[re.Match[str]], end: int) -> tuple[re.Match[str] | None, int]:
    """Where "Slovenčeva 34, Dramlje 3222" begins and ends: a street without a street type counts
    when a place and a postcode follow the number (not a year: "Windows 10, Office 2019")."""
    line = _POSTCODE_LINE.match(text, end)
    if line is None:
        return None, end
    code = line.group(1) or line.group(2)
    if len(code) == 4 and code[:2] in ("19", "20"):
        return None, end
    begin = None
    for word in reversed(words[-4:]):
        token = word.group(0)
        if token.endswith((".", ",", "!", "?", ":", ";")) or not _CAPITAL.match(token):
            break
        begin = word
    # a street named in English would have a street type; "Decimal 11, Binary 1100" is a list
    if begin is None or gazetteer().is_english(begin.group(0).lower()):
        return None, end
    # the place and postcode are part of the address, a full stop after them is not
    return begin, line.start() + len(line.group(0).rstrip(".,"))


# A number right before a street ("3369 24 Clarke Avenue", "20789 Allika 46"): a building or
# block number, part of the address. A unit or postcode line right after it continues the block.
_LEADING_NUMBER = re.compile(r"(?<![\w.,:/\-])\d{1,6}[A-Za-z]?[ \t]+$")
_TRAILING_LINES = re.compile(
    r"(?:[ \t]*\n?[ \t>]*(?i:apt|apartment|suite|unit|flat|floor)\.?[ \t]*#?\d{1,5}[A-Za-z]?\b)?"
    r"(?:[ \t]*,?[ \t]*\n[ \t>]*(?:[^\W\d_][\w'\u2019.\-]*[ \t]?){1,3},?[ \t]*\d{4,6}\b)?"
)


def _widened(text: str, finding: Finding) -> Finding:
    leading = _LEADING_NUMBER.search(text, max(0, finding.start - 10), finding.start)
    start = leading.start() if leading else finding.start
    end = _TRAILING_LINES.match(text, finding.end)
    stop = end.end() if end and end.end() > finding.end else finding.end
    if start == finding.start and stop == finding.end:
        return finding
    return Finding(finding.type, start, stop, finding.confidence, finding.detail)


# A street read in a lowercase text given capitals (_capitalised_words) that begins with a function
# word or a counted thing and ends in a word that is also a destination's is a phrase, not an
# address: "at 9:00 on the route to", "an uber for 4 to the mall", "7 people in st louis" ("14 our
# lady's road", "12 on the hill road", "number 5 on kings road" end in a street's word: addresses).
_NOT_A_STREET_START = frozenset(
    _words("""
to on in at for from by with into onto my your our his her their its or en people persons riders
passengers guests adults kids children nights days hours minutes mins min times items
""")
)
_DESTINATION_ENDS = frozenset(
    _words("way ways route rte mall station st place pl center centre point crossing landing field fields")
)


def _phrase_not_street(street: str) -> bool:
    words = street.lower().split()
    return words[1] in _NOT_A_STREET_START and words[-1].rstrip(".") in _DESTINATION_ENDS


def _streets(text: str, recased: bool = False) -> Iterator[Finding]:
    for pattern, confidence in ((_EN_STREETS, 0.8), (_WEAK_PREFIXED_STREET, 0.7), (_FRENCH_STREETS, 0.75)):
        for match in pattern.finditer(text):
            if recased and pattern is _EN_STREETS and _phrase_not_street(match.group(0)):
                continue
            if pattern is _WEAK_PREFIXED_STREET and _DATE.search(match.group(0)):
                continue  # "Place to stay from May 2"
            yield Finding("street_address", match.start(), match.end(), confidence, "street")
    yield from _european(text)


def _capitalised_words(text: str) -> str:
    """An all-lowercase text with every word capitalised, offsets unchanged: "5670 r josé a madeira
    1 suite 696" is read as "5670 R José A Madeira 1 Suite 696", so the capitalised forms apply."""
    chars = list(text)
    for match in _WORD_START.finditer(text):
        upper = match.group(0).upper()
        if len(upper) == 1:
            chars[match.start()] = upper
    return "".join(chars)


def find_addresses(text: str) -> Iterator[Finding]:
    if _DIGIT.search(text) is None:
        return
    lowered = text.lower()
    recased = text == lowered
    if recased:
        text = _capitalised_words(text)
        lowered = text.lower()
    for finding in _streets(text, recased):
        yield _widened(text, finding)
    if _UNIT_GATE.open(lowered):
        aligned = case_aligned(text, lowered)
        for match in _UNITS.finditer(text, lowered) if aligned else _UNIT.finditer(text):
            yield Finding("street_address", match.start(), match.end(), 0.7, "unit_or_box")
    if _CUE_GATE.open(lowered):
        yield from _cued(text, lowered)
