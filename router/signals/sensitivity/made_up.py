"""Whether a request's people are made up, and whether the writer ties a name to themself.

A request to write fiction ("write a short story about ..."), one that says its people are invented
("fictional", "role-play", "NPC") or one that asks for made-up examples ("fake customers", "sample
names") names characters, not private people; `names.find_people` then keeps its names below the
threshold, unless `tied` finds the writer relating the name to themself ("my nephew Tobias W.",
"Maureen K., the nurse who sat with my father"). What says a request is about real people wins over
all of it: the word "real", and the occasions people write pieces for about people they know (a
birthday, a funeral, a wedding). Each word counts only as a word of the text's running prose (not
capitalised mid-sentence: "Roman" is a name, "roman" a novel), and a form of fiction only as what a
request asks to be written, in its clause ("write a limerick", not "chapter 2 of my thesis ... I
need"). Reviewed by a helper who wrote requests to break it (README: the twenty-eighth session).
"""

from __future__ import annotations

from itertools import compress, count

from router.signals.sensitivity import name_cues as cues
from router.signals.sensitivity.name_tokens import Tokens


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _and_possessives(words: frozenset[str]) -> frozenset[str]:
    """The words, and each with 's or a right quote's after it ("my villain's motive")."""
    return words | {word + ending for word in words for ending in ("'s", "\u2019s")}


# Words that say the people are made up, in English and the other languages the name lists cover.
MADE_UP_WORDS = _and_possessives(
    _words("""
fictional fictitious invented imaginary made-up hypothetical roleplay role-play npc npcs fanfic
fanfiction protagonist antagonist villain heroine narrator worldbuilding screenwriting
ficticio ficticia ficticios ficticias inventado inventada fiktiv fiktive fiktiven fiktiver erfunden
erfundene erfundenen fictif fictive fictifs fictives inventé inventée inventés fictício fictícia
fictícios fittizio fittizia fittizi inventato inventata fictief fictieve verzonnen fikcyjny fikcyjna
fikcyjne zmyślony zmyślona
""")
)
# Words that make the people after them examples: "fake customers", "sample names", "test data".
EXAMPLE_WORDS = _words("fake dummy mock placeholder sample example test")
EXAMPLE_OF = _words("""
name names people person persons customer customers client clients user users employee employees
patient patients character characters student students author authors contact contacts record
records profile profiles persona personas candidate candidates applicant applicants family families
data dataset rows entries
""")
# Forms of fiction, counted where a request asks for one to be written.
FICTION_FORMS = _and_possessives(
    _words("""
story stories tale tales fable fables fairytale myth novel novella chapter fiction poem poems
limerick haiku sonnet ballad rhyme song lyrics shanty screenplay skit sitcom joke riddle fanfic
scene dialogue monologue play drabble lullaby backstory ode saga epic narrative mystery thriller
romance adventure rap verse vignette persona personas scenario
cuento relato novela poema historia canción escena diálogo guion obra geschichte kurzgeschichte
erzählung krimi märchen gedicht lied szene dialog theaterstück histoire nouvelle conte poème chanson scène história conto canção cena
storia racconto romanzo poesia canzone scena verhaal opowiadanie wiersz piosenka
""")
)
# The writer's own fiction, after "my" or "our": "my novel", "my fantasy manuscript", "my WIP".
OWN_FICTION = _words("novel novels novella manuscript screenplay fanfic fanfiction wip")
HEAD_REACH = 3  # a form among a request's first words is what it asks for ("Limerick about a man named ...")
# The asks themselves, not their -ing forms, which tell of writing done ("she spent May composing
# a ballad for ..."). Chosen after reading sentences of Presidio's set that the first version misread
# (README: the twenty-eighth session); on turnout's held-out fiction set this costs 0.5 points.
WRITING_ASKS = _words("""
write continue create compose generate make draft rewrite invent imagine tell give need get
escribe escríbeme escribir escriba haz cuenta cuéntame schreib schreibe schreiben
erstelle erfinde erzähl erzähle écris écrivez écrire crée créez raconte raconte-moi escreva
escreve escrever crie invente conta scrivi scrivere crea inventa racconta schrijf maak verzin
vertel napisz stwórz wymyśl opowiedz
""")
FORM_REACH = 5  # words from an ask to the form it asks for ("write a very short sad story")
# What says the people are real: the word itself, and occasions people write about people they know.
REAL_WORDS = _words("""
real actual actually irl prod production birthday birthdays retirement retiring retire retires farewell funeral
memorial eulogy obituary condolence condolences wedding anniversary graduation banquet roast died
passed
cumpleaños boda reales geburtstag hochzeit beerdigung echt echte echten anniversaire
mariage funérailles réel réelle réels aniversário casamento velório compleanno matrimonio funerale
vero vera verjaardag bruiloft begrafenis urodziny ślub pogrzeb prawdziwy prawdziwa
""")

# The people a possessive ties to the writer: relations and the roles of the writer's everyday life,
# in English and the other languages the name lists cover.
TIES = (
    cues.RELATIONS
    | {word + "s" for word in cues.RELATIONS}
    | _words("""
children ex ex-wife ex-husband ex-boyfriend ex-girlfriend ex-partner stepfather stepmother stepson
stepdaughter stepdad stepmom stepbrother stepsister half-brother half-sister godfather godmother
godson goddaughter sibling siblings twins toddler roommate flatmate housemate classmate classmates
teammate teammates bandmate bandmates coworkers intern interns reports supervisor sponsor therapist
coach pupil pupils tutor mentor nanny babysitter caregiver carer nurse surgeon dentist physician
oncologist vet pastor priest rabbi in-laws father-in-law mother-in-law sister-in-law brother-in-law
late former year-old bestie bff hubby wifey buddy pal nana nan granny gran grandad granddad papa
mama crush sweetheart lodger
hijo hija hijos madre padre mamá papá esposo esposa marido mujer novio novia hermano hermana abuela
abuelo jefe jefa amigo amiga vecino vecina tío tía suegro suegra sohn tochter mutter vater mann
frau freund freundin bruder schwester oma opa chef chefin kollege kollegin nachbar nachbarin onkel
tante schwiegervater schwiegermutter fils fille mère père mari femme ami amie frère sœur grand-mère
grand-père patron patronne collègue voisin voisine oncle beau-père belle-mère figlio figlia marito
moglie amico fratello sorella nonna nonno capo collega vicino zio zia suocero suocera filho filha
mãe pai irmão irmã avó avô chefe colega vizinho vizinha tio sogro sogra zoon dochter moeder vader
man vrouw vriend vriendin broer zus baas buurman buurvrouw oom schoonvader schoonmoeder syn córka
matka ojciec mąż żona przyjaciel przyjaciółka siostra babcia dziadek szef kolega koleżanka sąsiad
sąsiadka wujek ciocia teść teściowa
""")
)
POSSESSIVES = _words("""
my our mi mis nuestro nuestra mein meine meinen meinem meiner unser unsere mon ma mes notre nos mio
mia miei mie nostro nostra meu minha meus minhas nosso nossa mijn onze ons mój moja moje mojego
mojej moim nasz nasza
""")
# A relation a possessive gives a character, not the writer ("my protagonist's sister, Elena V.").
CHARACTER_ROLES = _words("""
protagonist protagonists character characters hero heroine villain narrator antagonist oc ocs mc
""")
# First-person words: after a name, in its clause, they relate it to the writer ("Kevin Tran, he's
# the best man at my wedding"; "the nurse who sat with my father"; "Zainab O., I love her so much").
FIRST_PERSON = _words("my me our us mine myself i we")
# and the contractions of "I", "we" and "let us", with either apostrophe
FIRST_PERSON_FORMS = FIRST_PERSON | {
    word.replace("'", apostrophe)
    for word in _words("i'm i've i'll i'd we're we've we'll we'd let's")
    for apostrophe in ("'", "\u2019")
}
# A clause that begins by pointing back at someone ("Her name is Claudia B."): the tie may stand in
# the sentence before it ("Write a story about my sister. Her name is ...").
POINTING_BACK = _words("her his their she he they")
TIE_REACH = 6  # words back from a name to a possessive that ties it to the writer
AFTER_REACH = 12  # words on from a name to a first-person word in its clause


def _as_word(tokens: Tokens, index: int) -> bool:
    """Word `index` stands as a word of prose: lowercase, or capitalised at a sentence's start."""
    return tokens.words[index][:1].islower() or index == 0 or clause_ends(tokens, index - 1)


def _at(tokens: Tokens, words: frozenset[str]) -> list[int]:
    """The indices of `words` in the text, found by C loops (map, compress)."""
    return list(compress(count(), map(words.__contains__, tokens.lower)))


def made_up(tokens: Tokens) -> bool:
    """Whether the text says its people are made up, asks for fiction to be written, or asks for
    made-up examples; never where it says they are real or writes for an occasion."""
    lower = tokens.lower
    if not REAL_WORDS.isdisjoint(lower):
        return False
    if not MADE_UP_WORDS.isdisjoint(lower) and any(_as_word(tokens, i) for i in _at(tokens, MADE_UP_WORDS)):
        return True
    if not EXAMPLE_WORDS.isdisjoint(lower):
        for index in _at(tokens, EXAMPLE_WORDS):
            # right before what it qualifies: "fake customers", "sample names", "test data"; not
            # "a sample of customer names from our production database"
            if _as_word(tokens, index) and lower[index + 1 : index + 2] and lower[index + 1] in EXAMPLE_OF:
                return True
    if FICTION_FORMS.isdisjoint(lower):
        return False
    return any(_asked_for(tokens, index) for index in _at(tokens, FICTION_FORMS))


def _asked_for(tokens: Tokens, index: int) -> bool:
    """A form of fiction at word `index` is what a request in its clause asks to be written, or
    what it asks for by naming it first ("Sea shanty about ..."), or the writer's own ("my novel")."""
    if not _as_word(tokens, index):
        return False
    if index < HEAD_REACH and _heads_request(tokens, index):
        return True
    near = tokens.lower[max(0, index - 2) : index]
    if not POSSESSIVES.isdisjoint(near) and tokens.lower[index] in OWN_FICTION:
        return True
    for before in range(index - 1, max(-1, index - 1 - FORM_REACH), -1):
        if clause_ends(tokens, before):
            return False
        if tokens.lower[before] in WRITING_ASKS:
            return True
    return False


def _heads_request(tokens: Tokens, index: int) -> bool:
    """A form among a text's first words, in its first clause, that what follows makes a request's
    head ("Limerick about ...", "Time-travel story: ...", "Short play for 3 actors"), not a
    sentence's subject ("The ballad she wrote for ... was played at ..."). Chosen after reading
    sentences of Presidio's set the first version misread (README: the twenty-eighth session)."""
    if any(clause_ends(tokens, before) for before in range(index)):
        return False
    if index + 1 >= len(tokens.words):
        return True
    return ":" in tokens.gaps[index + 1] or tokens.lower[index + 1] in _HEAD_NEXT


_HEAD_NEXT = _words("about where for with featuring starring set told in of please")


def clause_ends(tokens: Tokens, index: int) -> bool:
    """Whether a sentence or line ends between word `index` and the next (not the dot of "Dr."
    or of an initial)."""
    gap = tokens.gaps[index + 1]
    if "\n" in gap or "!" in gap or "?" in gap:
        return True
    word = tokens.lower[index]
    return "." in gap and len(word) > 1 and word not in _HONORIFICS


_HONORIFICS = frozenset(cues.HONORIFICS)


def tied(tokens: Tokens, first: int, last: int, first_person: bool = True) -> bool:
    """Whether the writer relates the name at words first..last to themself, in its clause: a
    possessive then a relation or role before it ("my twins Leo and Max", "our intern, Chloe R.",
    "mi hijo Mateo"), not a character's ("my protagonist's sister"), or in the sentence before a
    clause that points back ("... my sister. Her name is Claudia B."). With `first_person`, also a
    first-person word after it ("Jerome W., my client", "Maureen K., the nurse who sat with my
    father", "Zainab O., I love her"; not before it: "I want you to act as ..." is no tie)."""
    lower = tokens.lower
    tie = False  # a relation word seen between the possessive and the name
    crossed = False  # one sentence's end crossed back, after a clause that points back at someone
    for index in range(first - 1, max(-1, first - 1 - TIE_REACH), -1):
        if clause_ends(tokens, index):
            if crossed or lower[index + 1] not in POINTING_BACK:
                break
            crossed = True
        word = lower[index].removesuffix("'s").removesuffix("\u2019s")
        if word in CHARACTER_ROLES:
            break
        if tie and word in POSSESSIVES:
            return True
        tie = tie or word in TIES
    for index in range(last, min(len(lower) - 1, last + AFTER_REACH) if first_person else last):
        if clause_ends(tokens, index):
            break
        if lower[index + 1] in FIRST_PERSON:
            return True
    return False
