"""Finds person names in prompt text as far as can be done offline: a gazetteer plus cue phrases.

A name is reported when a cue says a person is meant ("my name is", "Dr.", "Dear", "says", "my son",
speaker labels, vocatives, lists of names) or when a known first name is followed by a surname-like
word (router.signals.sensitivity.gazetteer). A lone first name is never enough on its own: arithmetic word
problems are full of them, and the privacy gate must not send every "Natalia sold 48 clips" to the
local model; inside such problems even cued single names count only as weak evidence, and so do
names in requests about fiction or public figures. It must never import faker, and it works on
word tokens rather than running every pattern over the whole text, to stay cheap per scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity import name_cues as cues
from router.signals.sensitivity.citations import Cited, cited
from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gazetteer import Gazetteer, gazetteer
from router.signals.sensitivity.made_up import FIRST_PERSON_FORMS, made_up, tied
from router.signals.sensitivity.name_tokens import CAPITALISED, TOKEN, Tokens, capitalised
from router.signals.sensitivity.places import PlaceNames, place_names
from router.signals.sensitivity.public_names import public_names
from router.signals.sensitivity.recasing import recase
from router.signals.sensitivity.scanning import LineStarts

_SPEAKER = re.compile(rf"(?m)^[ \t>]*({CAPITALISED})[ \t]?:[ \t]*[\"“'\w]")
_SPEAKERS = LineStarts(_SPEAKER)  # found from each line break, as a label lies within its line
_VOCATIVE_END = re.compile(rf",\s+({CAPITALISED})\s*[!?]")
_DIGIT = re.compile(r"\d")
# The field cues of name_cues, which need no capital after them: an all-lowercase text without any
# of these and without a listed name has no person in it.
_LOWERCASE_FIELD = re.compile(
    r"name|call\s+me|signed|sincerely|regards|patient|(?:directed|written)\s+by|(?:change|correct)\s+it\s+to"
)
_MONEY = re.compile(r"[%$€£]")
_WEAK = 0.45  # below the default threshold: context alone, in a word problem or about public figures
# Findings that are a name and nothing said about its bearer: any such name in a request about
# fiction or public life stays below the threshold, and so does a listed public figure's or
# character's full name (only `full_name`: never one introduced, quoted or cued as someone's).
_PLAIN_NAMES = ("full_name", "intro", "speech", "name_list", "lone_name")
# A name a request about made-up people still holds as someone's: one the writer relates to
# themself ("my son Leo"); a field's only when it is the writer's own ("my name is", not a
# character sheet's "Name:").
_OWN_NAMES = ("relation",)
# The findings a citation holds as an author's: a name read as a name, or after a cue of speech
# ("according to Kahneman (2011)"; citations.cited asks more of a name in a sentence); never one
# introduced, greeted, titled or given in a field ("Patient Garcia", "Dear Dr. Lopez", "Mr. Reed",
# "Name:", "signed by Kowalczyk").
_CITED_NAMES = ("full_name", "speech", "name_list", "lone_name", "lone_surname", "context")
# The findings of one word that can be a word of a longer name read again alone ("Columbus had
# ...", "... and Marie Curie": "Marie"), which a listed public figure's name held as such holds too.
_ALONE_NAMES = ("lone_name", "lone_surname", "name_list", "subject_list")
_Span = tuple[int, int, float, str]  # first token, last token, confidence, detail


def _extend(tokens: Tokens, index: int, names: Gazetteer, limit: int = 3) -> int:
    """The last token of the name starting at index: following initials, particles and surnames."""
    last = current = index
    while current + 1 < len(tokens.words) and current - index < limit and tokens.glued(current):
        word = tokens.words[current + 1]
        if (len(word) == 1 and word.isupper()) or word in cues.PARTICLES:
            current += 1
            continue
        # after "van", "ten", "von" any capitalised word is a surname, even Pas or Berg
        linked = tokens.words[current] in cues.SURNAME_PARTICLES or (
            current == index and tokens.lower[index] in cues.LEADING_PARTICLES
        )
        common = names.is_common(word) and not linked
        if not capitalised(word) or common or word.lower() in cues.FUNCTION_WORDS:
            break
        current += 1
        last = current
    return last


def _pair_confidence(tokens: Tokens, index: int, last: int, names: Gazetteer, english: float) -> float:
    first = tokens.words[index]
    surnames = [tokens.words[i] for i in range(index + 1, last + 1) if len(tokens.words[i]) > 1]
    if not surnames:
        return 0.0
    # a Dutch or German particle before the surname is as good as a listed one (Willemine ten Pas)
    listed = any(names.in_last(word) for word in surnames) or any(
        tokens.words[i] in cues.SURNAME_PARTICLES for i in range(index + 1, last)
    )
    if names.is_first(first) and listed:
        return 0.85
    if _plain_first(tokens, index, names) and (english >= 0.8 or names.in_last(surnames[0])):
        return 0.7  # Mark Jensen, Bill Kowalski, Frank Freud
    # Unlisted surnames and unlisted first names count only in English text: elsewhere every
    # capitalised word is unknown to the English dictionary.
    if english < 0.8:
        return 0.0
    if names.is_first(first):
        return 0.7
    if names.is_foreign(first) and (listed or all(names.is_foreign(word) for word in surnames)):
        # "the Taj Mahal", "the Linux Kernel": an article does not come before a person's name
        return 0.0 if index and tokens.lower[index - 1] == "the" else 0.65
    return 0.0


def _plain_first(tokens: Tokens, index: int, names: Gazetteer) -> bool:
    """A first name that is also a word (Mark, Bill, Grace) before a listed surname: Mark Jensen."""
    word, after = tokens.words[index], tokens.words[index + 1]
    if not _plain_first_word(word, names):
        return False
    return (names.in_last(after) and not names.is_common(after)) or names.is_foreign(after)


def _plain_first_word(word: str, names: Gazetteer) -> bool:
    """What _plain_first asks of the word itself."""
    return word.lower() not in cues.NOT_FIRST_NAMES and names.in_first(word)


def _full_names(tokens: Tokens, names: Gazetteer) -> Iterator[_Span]:
    """Capitalised words that start a name of two words or more, left to right, each after the
    last word of the name found before it."""
    english: float | None = None
    done = -1  # the last token of the latest name found
    stop = len(tokens.words) - 1  # a name starting at the last word has no second one
    # What the gazetteer says of each word, asked once a word (code repeats its capitalised
    # identifiers, Private, Double, As, hundreds of times): True for a first or foreign name, None
    # for a word that may be a plain first name (as the word after says: _plain_first), else False.
    starts: dict[str, bool | None] = {}
    for index in tokens.capitalised:
        if index >= stop:
            break
        if index <= done:
            continue
        word = tokens.words[index]
        if not tokens.glued(index) or word.endswith(("'s", "\u2019s")):
            continue
        if word not in starts:
            starts[word] = (names.is_first(word) or names.is_foreign(word)) or (
                None if _plain_first_word(word, names) else False
            )
        start = starts[word]
        if start or (start is None and _plain_first(tokens, index, names)):
            last = _extend(tokens, index, names)
            if last > index and not cues.NOT_PERSON_AFTER.match(tokens.text, tokens.ends[last]):
                if english is None:
                    english = tokens.english_share(names)
                confidence = _pair_confidence(tokens, index, last, names, english)
                if confidence:
                    yield index, last, confidence, "full_name"
                    done = last


def _qualifies(kind: str, word: str, cue: str, names: Gazetteer, full: bool) -> bool:
    """Whether the word after a cue of this kind starts a name; full: a name-like pair follows."""
    if word.lower() in cues.FUNCTION_WORDS or len(word) < 2:
        return False
    if kind == "field" and word.lower() in cues.TYPE_WORDS:
        return False
    if full and capitalised(word):
        return True
    if kind == "field":
        return names.is_known(word) or not names.is_common(word)
    if not capitalised(word):
        return False
    if kind == "title" or cue.lower().startswith("dear"):
        return not names.is_common(word) or names.is_known(word)
    if kind == "relation":
        return names.is_known(word) or names.is_foreign(word) or names.in_first(word)
    return names.is_known(word) or names.is_foreign(word)


def _in_identifier(text: str, start: int, end: int) -> bool:
    """Whether the word at [start, end) is part of a code identifier: "pred_name: str", "user.name:"
    (but "thanks.my name is" is a missing space, not an identifier)."""
    before = text[start - 1]
    if before == "_" or before.isalnum():
        return True
    return before == "." and end < len(text) and not text[end].isspace()


def _cue_matches(tokens: Tokens) -> Iterator[tuple[str, re.Match[str]]]:
    by_word = cues.CUES_BY_WORD
    for index in [index for index, word in enumerate(tokens.lower) if word in by_word]:
        start, end = tokens.starts[index], tokens.ends[index]
        if start and _in_identifier(tokens.text, start, end):
            continue
        for kind, pattern in by_word[tokens.lower[index]]:
            match = pattern.match(tokens.text, start)
            if match:
                yield kind, match


def _cued(tokens: Tokens, names: Gazetteer, problem: bool) -> Iterator[_Span]:
    for kind, match in _cue_matches(tokens):
        index = tokens.at(match.end())
        if index is None:
            continue
        last = _extend(tokens, index, names)
        words = tokens.words[index : last + 1]
        # a capitalised particle and a surname after a cue: "says Du Cane", "according to De Vries"
        particle = tokens.lower[index] in cues.LEADING_PARTICLES
        full = last > index and (particle or any(names.is_known(w) or names.is_foreign(w) for w in words))
        if not _qualifies(kind, tokens.words[index], match.group(0), names, full):
            continue
        if kind in ("intro", "credit") and last == index and not names.is_known(tokens.words[index]):
            continue  # "with Kubernetes", "a film by Pixar": an unknown single word needs a stronger cue
        weak = last == index and kind != "field" and problem
        yield index, last, _WEAK if weak else cues.CONFIDENCE[kind], kind


def _single(tokens: Tokens, names: Gazetteer, index: int | None, foreign: bool) -> int | None:
    """index if its token is a capitalised known name (or, where allowed, a likely foreign one)."""
    if index is None or not capitalised(tokens.words[index]):
        return None
    word = tokens.words[index]
    if names.is_known(word) or (foreign and (names.is_foreign(word) or names.in_first(word))):
        return index
    return None


def _sentence_start(tokens: Tokens, index: int) -> bool:
    """Whether only the start of the text or one of .!?: or a line break, then spaces and quotes,
    come before the word. (Past a gap of only spaces and quotes, the word before ends in a letter.)"""
    before = tokens.gaps[index].rstrip(" \t\"'“")
    return before[-1] in ".!?\n:" if before else index == 0


# Only a word before one of these can be a vocative or a possessive before a relation.
_BEFORE_CONTEXT = cues.VOCATIVE_NEXT | cues.RELATIONS


def _context_indices(tokens: Tokens, names: Gazetteer) -> Iterator[int]:
    """Tokens that context marks as a person: speaker labels, vocatives, X's daughter."""
    text = tokens.text
    for matches, foreign in (
        (_SPEAKERS.finditer(text), False),
        (_VOCATIVE_END.finditer(text), True),
    ):
        for match in matches:
            found = _single(tokens, names, tokens.by_start.get(match.start(1)), foreign)
            if found is not None:
                yield found
    lower = tokens.lower
    for index in [index for index, word in enumerate(lower[1:]) if word in _BEFORE_CONTEXT]:
        nxt = lower[index + 1]
        # the gap to the next word starts with a comma (a gap is never empty)
        comma = tokens.gaps[index + 1].startswith(",")
        vocative = comma and nxt in cues.VOCATIVE_NEXT and _sentence_start(tokens, index)
        possessive = lower[index].endswith(("'s", "\u2019s")) and nxt in cues.RELATIONS
        if vocative or possessive:
            found = _single(tokens, names, index, foreign=True)
            if found is not None:
                yield found


def _lists(tokens: Tokens, names: Gazetteer) -> Iterator[int]:
    """Members of "A, B and C" when all are name-like and at least two are known names."""
    for match in tokens.lists:
        members = [tokens.by_start.get(match.start() + m.start()) for m in TOKEN.finditer(match.group(0))]
        indices = [i for i in members if i is not None and tokens.lower[i] != "and"]
        words = [tokens.words[i] for i in indices]
        known = sum(names.is_known(word) for word in words)
        if known >= min(2, len(words) - 1) and all(names.is_known(w) or names.is_foreign(w) for w in words):
            yield from indices


def _subject_lists(tokens: Tokens, names: Gazetteer) -> Iterator[int]:
    """ "A and B were ...", "our founders: A, B and C": listed names as the subject of people."""
    text = tokens.text
    for match in tokens.lists:
        rest = text[match.end() : match.end() + 12].split()
        before = text[max(0, match.start() - 30) : match.start()].rstrip().lower()
        subject = (
            bool(rest)
            and rest[0] in cues.PLURAL_PERSON_VERBS
            and _sentence_start(tokens, tokens.by_start.get(match.start(), 0))
        )
        introduced = before.endswith(":") and before[:-1].rstrip().endswith(cues.GROUPS_OF_PEOPLE)
        if not (subject or introduced):
            continue
        members = [tokens.by_start.get(match.start() + m.start()) for m in TOKEN.finditer(match.group(0))]
        indices = [i for i in members if i is not None and tokens.lower[i] != "and"]
        words = [tokens.words[i] for i in indices]
        listed = all(names.in_first(w) or names.in_last(w) or names.is_foreign(w) for w in words)
        if listed and any(names.is_known(w) or names.is_foreign(w) for w in words):
            yield from indices


def _context(tokens: Tokens, names: Gazetteer, problem: bool) -> Iterator[_Span]:
    confidence = _WEAK if problem else 0.7
    for index in _context_indices(tokens, names):
        yield index, _extend(tokens, index, names), confidence, "context"
    for index in _lists(tokens, names):
        yield index, index, _WEAK if problem else 0.6, "name_list"
    for index in _subject_lists(tokens, names):
        yield index, index, _WEAK if problem else 0.6, "subject_list"


def _lone_evidence(tokens: Tokens, index: int) -> bool:
    """A verb of a person right after the word, or an auxiliary before it in a question."""
    lower = tokens.lower
    after = lower[index + 1] if index + 1 < len(lower) else ""
    before = lower[index - 1] if index else ""
    if after in cues.PERSON_VERBS and tokens.glued(index):
        return True
    return before in cues.QUESTION_AUX and after in cues.DEGREE_WORDS


def _lone(tokens: Tokens, names: Gazetteer) -> Iterator[_Span]:
    """A lone first name that acts as a person: "Ana is from ...", "why is Ana so ...".

    With a third-person pronoun later in the text ("... depend on her"), a foreign-looking word or a
    listed surname at a sentence start in English text also counts ("Kowalczyk began writing ... her
    first story", "Fisher began teaching ... her students").
    """
    pronoun: bool | None = None
    english: float | None = None
    for index in tokens.capitalised:
        word = tokens.words[index]
        if word.endswith(("'s", "\u2019s")) or not _lone_evidence(tokens, index):
            continue
        if names.is_first(word):
            yield index, index, 0.6, "lone_name"
            continue
        if not (names.is_foreign(word) or names.in_last(word)) or not _sentence_start(tokens, index):
            continue
        # "X is from ..." alone fits products too (Kubernetes): only for a listed surname
        origin = tokens.lower[index + 1 : index + 3] == ["is", "from"] and names.in_last(word)
        if pronoun is None:
            pronoun = not cues.PRONOUNS.isdisjoint(tokens.lower[index + 2 :])
        if pronoun or origin:
            if english is None:
                english = tokens.english_share(names)
            if english >= 0.8:
                yield index, index, 0.6, "lone_surname"


def _indices(words: list[str], word: str, stop: int) -> Iterator[int]:
    """The indices below `stop` at which `word` stands in `words`, found by list.index."""
    index = -1
    while True:
        try:
            index = words.index(word, index + 1, stop)
        except ValueError:
            return
        yield index


def _word_problem(tokens: Tokens) -> bool:
    """An arithmetic exercise ("How many...", numbers with "each", "total", a final question)."""
    lower = tokens.lower
    if any(lower[index + 1] in cues.HOW_WORDS for index in _indices(lower, "how", len(lower) - 1)):
        return True
    text = tokens.text
    if _DIGIT.search(text) is None:
        return False
    return (
        text.rstrip().endswith("?")
        or _MONEY.search(text) is not None
        or not cues.PROBLEM_WORDS.isdisjoint(lower)
    )


def _writers_field(tokens: Tokens, first: int, detail: str) -> bool:
    """A field cue that is the writer's own name ("my name is ...", "my name's"), not a form's or a
    character sheet's ("Name: ...")."""
    before = tokens.lower[max(0, first - 3) : first]
    return detail == "field" and "my" in before and "name" in before


def _assistant(word: str) -> bool:
    """An AI assistant's or model's name, perhaps possessive (Claude's)."""
    return word.removesuffix("'s").removesuffix("\u2019s") in cues.ASSISTANT_NAMES


def _named_last(tokens: Tokens, names: Gazetteer, first: int, last: int) -> int:
    """The last word of the name the span from first to last looks up in the lists: the word with a
    possessive 's where the words after it hold no listed name ("Abraham Lincoln's Gettysburg
    Address" is looked up as "Abraham Lincoln's"; "Rosa Parks's Dana Whitfield" whole), else last."""
    for index in range(first, last):
        if tokens.lower[index].endswith(("'s", "\u2019s")):
            after = tokens.words[index + 1 : last + 1]
            return last if any(names.in_first(word) or names.is_known(word) for word in after) else index
    return last


def _a_place(tokens: Tokens, places: PlaceNames, first: int, last: int, detail: str, named: str) -> bool:
    """Whether a found full name is a listed place's, or a lone name is a word of one the list rule
    read as names ("Trinidad and Tobago"): places.PlaceNames.ends_one and holds."""
    if detail == "full_name":
        return places.ends_one(tokens, first, named)
    return detail in _ALONE_NAMES and first == last and places.holds(tokens, first)


def find_people(text: str, alone: bool = True, discounted: list[Finding] | None = None) -> Iterator[Finding]:
    """Person names in `text`; `alone` is false when other personal data was found in it, which
    keeps a listed public figure's name from being discounted. Each name discounted as a listed
    public figure's is also put in `discounted`, as found."""
    names = gazetteer()
    if text == text.lower():  # no capital anywhere (a character class missed ž, ł, ő: lowercase too)
        recased = recase(text, names)
        if recased is None and _LOWERCASE_FIELD.search(text) is None:
            return  # only the field cues ("call me ...") name someone without a capital
        text = recased or text
    tokens = Tokens.of(text)
    problem = _word_problem(tokens)
    public = not cues.PUBLIC_WORDS.isdisjoint(tokens.lower)
    # a request about made-up people with no other personal data beside its names: a name there is
    # a character's or an example's, however introduced, unless the writer ties it to themself
    # (judged once, at the first name found: most prompts have none)
    framed: bool | None = None if alone else False
    # a citation's authors are held only in a text that says nothing more about anyone, in which the
    # writer does not speak and no one is a patient, a customer or a colleague ("I'm worried that
    # Nguyen and Okafor (2021) ...", "Whitaker (2019) ... 12 Elm Street", "Patients: (Okafor, 1990)")
    citations: Cited | None = None  # judged at the first name that could be an author's
    public_words: list[bool] | None = None  # the words of listed names held as public figures'
    famous = public_names()
    places = place_names()
    # a listed name (or a place's) counts as a public figure's only where nothing ties the text's
    # people to the writer ("my", "our patient": name_cues.PERSONAL_WORDS) or names a private matter
    # (name_cues.PRIVATE_MATTERS: "diagnosed", "owes") and no other personal data stands beside it
    # in the same scanned string
    personal = cues.personal(tokens.lower)
    listed = alone and not personal
    for source in (
        _full_names(tokens, names),
        _cued(tokens, names, problem),
        _context(tokens, names, problem),
        () if problem else _lone(tokens, names),
    ):
        for first, last, confidence, detail in source:
            if _assistant(tokens.lower[last]) and (first == last or not names.in_last(tokens.words[last])):
                continue  # "Hi Claude, ...", "Prefill Claude's": the model the prompt is for, not a person
            start, end = tokens.starts[first], tokens.ends[last]
            named = text[start : tokens.ends[_named_last(tokens, names, first, last)]]
            if listed and _a_place(tokens, places, first, last, detail, named):
                # "Costa Rica", "Rio de Janeiro", "Trinidad and Tobago": a country's or city's name
                # read as a person's (or two people's), in a text that says nothing more about anyone
                # (a private "Emerson Hill" beside "my son" or a phone number is still found, as a
                # listed public figure's name would be); its words, read again alone by the list rule
                # ("Rio de Janeiro and Porto Alegre"), are held as a listed figure's are
                if public_words is None:
                    public_words = [False] * len(tokens.words)
                public_words[first : last + 1] = [True] * (last + 1 - first)
                continue
            listed_here = detail == "full_name" and listed and famous.known(named)
            if listed_here and discounted is not None and not public:
                discounted.append(Finding("person", start, end, confidence, detail))
            # a plain name in a request about fiction or public life, a listed public figure's
            plain = detail in _PLAIN_NAMES and ((public and alone) or listed_here)
            if framed is None:
                framed = made_up(tokens)
            character = framed and detail not in _OWN_NAMES and not _writers_field(tokens, first, detail)
            if not character and not plain and detail in _CITED_NAMES:
                if citations is None:
                    about_no_one = alone and not personal and FIRST_PERSON_FORMS.isdisjoint(tokens.lower)
                    citations = cited(text, names) if about_no_one else Cited([])
                # an author a citation names ("Kahneman (2011)", "Vaswani et al."): a publication's
                character = citations.covers(start, end)
            # a word of a listed name held as a public figure's, read again alone by another rule, is
            # that figure's ("What if Christopher Columbus had not ...": "Columbus had")
            plain = plain or (
                public_words is not None and detail in _ALONE_NAMES and all(public_words[first : last + 1])
            )
            # a listed public figure's name is tied only by a possessive ("my uncle Tom Hanks"): people
            # say "I love Taylor Swift" of a public figure, not of someone they know
            if (plain or character) and not tied(tokens, first, last, first_person=not listed_here):
                confidence = min(confidence, _WEAK)
                if listed_here:
                    if public_words is None:
                        public_words = [False] * len(tokens.words)
                    public_words[first : last + 1] = [True] * (last + 1 - first)
            yield Finding("person", start, end, confidence, detail)
