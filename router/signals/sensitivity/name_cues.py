"""The cue phrases router.signals.sensitivity.names looks for, indexed by their first word for speed.

Each cue is a case-insensitive pattern anchored at a word start and ending where a name begins
("my name is ", "Dr. ", "says "). Indexing by first word lets a scan try only the cues whose first
word is actually in the text, instead of running every alternation at every position; a cue must
therefore always start with one of the words it is listed under. Data only: no scanning here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable


def _words(text: str) -> tuple[str, ...]:
    """Whitespace-separated words, in order: keeps long word lists readable in source."""
    return tuple(text.split())


RELATIONS = frozenset(
    _words("""
son daughter kid child baby wife husband partner spouse mother mom mum father dad brother sister
friend boss colleague coworker neighbor neighbour uncle aunt cousin nephew niece grandson
granddaughter grandmother grandma grandfather grandpa fiance fiancé fiancee fiancée girlfriend
boyfriend doctor lawyer manager tenant landlord client patient student employee teacher assistant
guardian beneficiary
""")
)
HONORIFICS = _words("""
mr mrs ms mx miss dr prof professor sir dame madam mme mlle herr frau sr sra srta señor señora
signor signora sig
""")
_RELATION = "|".join(sorted(RELATIONS, key=len, reverse=True))
# Works that people make, in the singular and plural: "a song by ...", "the Jensen novel".
WORKS = _words("""
song songs novel novels book books album albums film films movie movies poem poems play plays
painting paintings recording recordings track tracks single singles record records version versions
story stories essay essays biography biographies memoir memoirs cover covers rendition renditions
""")
_MADE = "written|directed|recorded|performed|sung|composed|painted|produced|edited|translated|illustrated"
_END = r"[ \t]+"

# kind -> ((first words, pattern from the first word to where the name starts), ...)
_SPEC: dict[str, tuple[tuple[str, str], ...]] = {
    "field": (
        ("my", r"my\s+name(?:\s+is|'s)[ \t]*"),
        ("name", r"name\s*(?:is\b|:|\?|on\s+the\s+\w+\s*(?:is\b|:|\?))[ \t]*(?:User:[ \t]*)?"),
        ("your", r"your\s+name\s*\?[ \t]*(?:User:[ \t]*)?"),
        (
            "full first last given family maiden middle",
            r"\w+\s*name\s*(?:is\b|was\b|:|\?)?[ \t]*(?:User:[ \t]*)?",
        ),
        ("surname", r"surname\s*(?:is\b|:|\?)?[ \t]*"),
        ("patient", r"patient(?:\s+name)?\s*:[ \t]*"),
        ("signed", r"signed(?:\s+by)?:?[ \t]*"),
        ("sincerely regards", r"\w+,?\s*"),
        ("call", r"call\s+me" + _END),
        ("directed written", r"\w+\s+by:?[ \t]*"),
        ("change correct", r"\w+\s+it\s+to" + _END),
    ),
    "title": ((" ".join(HONORIFICS), r"\w+\.?(?=[ \t])" + _END),),
    "greeting": (
        ("dear hi hello hey thanks", r"\w+,?" + _END),
        ("thank", r"thank\s+you,?" + _END),
        ("good", r"good\s+(?:morning|afternoon|evening),?" + _END),
    ),
    "intro": (
        ("i", r"i\s+am" + _END),
        ("i'm i\u2019m", r"i['\u2019]m" + _END),
        ("this", r"this\s+is" + _END),
        ("known", r"known\s+as" + _END),
        ("meet under named called add with patient client customer producer speaker", r"\w+" + _END),
    ),
    "relation": (
        ("my our", rf"\w+\s+(?:{_RELATION})" + _END),
        ("named", r"named\s+(?:him|her|them)" + _END),
        ("call", r"call\s+(?:him|her)" + _END),
    ),
    "attribute": (("gender pronouns birthday ethnicity", r"\w+\s+of" + _END),),
    "speech": (
        (
            "says said asks asked replied replies shouted shouts yelled whispered told tells exclaimed married",
            r"\w+(?:\s+(?:at|to|with))?" + _END,
        ),
        ("according", r"according\s+to" + _END),
        ("speak talk", r"\w+\s+to" + _END),
    ),
    # Who made or appears in a work: "a song by Kastner", "featuring Johan Lynge", "a tribute to ...".
    "credit": (
        (" ".join(WORKS), rf"\w+\s+(?:(?:{_MADE})\s+)?by" + _END),
        ("featuring starring features stars", r"\w+" + _END),
        ("tribute dedicated", r"\w+\s+to" + _END),
        ("memory", r"memory\s+of" + _END),
    ),
}
CONFIDENCE = {
    "field": 0.9,
    "title": 0.9,
    "greeting": 0.8,
    "intro": 0.8,
    "relation": 0.8,
    "speech": 0.7,
    "attribute": 0.7,
    "credit": 0.7,
}


def _index() -> dict[str, tuple[tuple[str, re.Pattern[str]], ...]]:
    index: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
    for kind, cues in _SPEC.items():
        for words, pattern in cues:
            compiled = re.compile(pattern, re.IGNORECASE)
            for word in words.split():
                index.setdefault(word, []).append((kind, compiled))
    return {word: tuple(cues) for word, cues in index.items()}


# first word (lowercase) -> ((kind, pattern), ...)
CUES_BY_WORD = _index()

# Requests about fiction, art or public life name characters and public figures, not private people.
PUBLIC_WORDS = frozenset(
    _words("""
story stories fanfic novel poem script screenplay roleplay role-play character characters scene
episode fiction fictional style lyrics film movie series celebrity celebrities actor actress singer
president minister famous historical biography anime game persona pretend imagine
""")
)
# Words that tie the people in a text to the writer (a possessive, a role in the writer's dealings):
# a listed public figure's name beside them is not discounted ("a letter about my divorce to
# William Hughes", "patient Edna McCoy", "the client's guarantor"). "I" and "me" alone do not
# ("Where can I find X's ...?"), nor family words, which questions about public figures use too.
PERSONAL_WORDS = frozenset(
    _words("""
my mine our ours patient patients client clients customer customers employee employees colleague
colleagues coworker coworkers tenant tenants neighbor neighbour boss applicant applicants
""")
)


# Words of matters people keep private, said of someone: their health care, their employment
# record, money they owe or are owed, legal trouble, their home. A request about such a matter is
# about a private person, whoever shares their name: a listed public figure's name or a town's beside
# them is not discounted ("Angela Merkel owes three months of rent", "Draft a letter to Emerson Hill
# about his absences"). Words that questions about public life use most ("illness", "court",
# "interview", "performance") are not among them; some that are ("diagnosis", "resignation", "loan")
# cost such questions their discount, which a review counted (README). A partial guard: every
# wording it lacks ("fired", "evicted", "debts") leaves a private namesake discounted.
PRIVATE_MATTERS = frozenset(
    _words("""
diagnosis diagnosed biopsy symptoms dementia prescription prescribed medication medications allergy
allergies discharged triage referral physiotherapy chemotherapy migraine hospitalised hospitalized
maternity paternity disciplinary grievance probation termination dismissal resignation overtime
absence absences lateness payroll payslip overpaid underpaid reimbursement mortgage loan overdue
arrears debt owes pension parole custody eviction rent lease landlord
""")
)
# The words that are one of PERSONAL_WORDS once their possessive is taken off (removesuffix("'s"),
# then removesuffix("\u2019s")): each as it stands and with 's, \u2019s or \u2019s's after it; and
# the words of private matters as they stand.
_PERSONAL_FORMS = (
    frozenset(word + ending for word in PERSONAL_WORDS for ending in ("", "'s", "\u2019s", "\u2019s's"))
    | PRIVATE_MATTERS
)


def personal(lower_words: Iterable[str]) -> bool:
    """Whether any of these lower-case words (a possessive 's aside) ties people to the writer or
    names a private matter of someone's (PRIVATE_MATTERS)."""
    # one set operation over the words, not a Python test of each (0.05 ms on a long prompt)
    return not _PERSONAL_FORMS.isdisjoint(lower_words)


# Arithmetic word problems: their names are fictional, so weak cues must not flag them.
PROBLEM_WORDS = frozenset(
    _words("""
total altogether average calculate compute percent each per find determine
""")
)
HOW_WORDS = frozenset(["many", "much", "long", "far", "old", "fast", "tall", "often"])
VOCATIVE_NEXT = frozenset(
    _words("""
can could would will please i you we do did are is have what where when why how let don't it's i'm
listen look wait come go
""")
)
PARTICLES = frozenset(
    _words("""
van von der den ter ten de del della di da dos das du la le bin ibn al
""")
)
# Particles found only inside names (not in place names like Rio de Janeiro): the next word is a surname.
SURNAME_PARTICLES = frozenset(_words("van von ten ter"))
# Particles that may begin a surname written without the first name, after a cue: "says Du Cane".
LEADING_PARTICLES = frozenset(_words("du de da di van von ten ter del della dos das"))
FUNCTION_WORDS = frozenset(
    _words("""
a an the this that these those my your his her its our their i you he she it we they me him them us
and or but not no yes of on in at to for from by with as is are was were be been am do does did what
who whom whose which when where why how all any some there here then than so very just also please
thanks hello hi hey dear sir madam user both each every
""")
)
# Type names that follow "name:" in code ("def greet(name: str)", "name VARCHAR(80)"), never a person.
TYPE_WORDS = frozenset(
    _words("""
str string int integer float double bool boolean char varchar text none null optional list dict any
object bytes
""")
)
# Words after a capitalised pair that make it a place or an organisation, not a person.
NOT_PERSON_AFTER = re.compile(
    r"[ \t]+(?:School|Elementary|High|University|College|Academy|Institute|Hospital|Clinic|Bakery|Shop|Store"
    r"|Cafe|Café|Restaurant|Hotel|Inn|Bar|Pub|Bank|Inc|Corp|Corporation|Company|Co|Ltd|LLC|GmbH|Group"
    r"|Foundation|Museum|Library|Church|Cathedral|Airport|Station|Hall|Bridge|Stadium|Arena|Theat(?:er|re)"
    r"|Club|Park|Street|Avenue|Road|Square|County|City|Times|Post|News|Award|Prize|Center|Centre)\b"
)
# Peoples, faiths, days, feasts and the first words of place names that Faker also lists as first
# names: German Shepherd, Easter Sunday Cindy, El Paso.
NOT_FIRST_NAMES = frozenset(
    _words("""
english french german spanish italian chinese japanese russian christian muslim jewish catholic
american british irish scottish welsh dutch swiss polish greek turkish arab indian african
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december easter christmas
el la le los las san santa santo sao são saint st fort port mount lake new north south east west
""")
)
# The names of AI assistants and models, which people greet and address in the prompts a gateway
# carries ("Hi Claude, ...", "Thanks Gemini!", "I'm Claude"): alone, not a person's name. With a
# surname after it (Claude Dupont) a name is read as usual. Assistants named as people are (Alexa,
# Siri, Jarvis, Watson) are left out: "Hi Alexa, the contract is attached" is to a person as often.
ASSISTANT_NAMES = frozenset(
    _words("""
claude gemini cortana copilot bard grok bixby llama mistral mixtral qwen chatgpt gpt deepseek
""")
)
# Words after a lone first name that make it the subject of a sentence about a person.
PERSON_VERBS = frozenset(
    _words("""
is was has had began begins will would said says told wants wanted thinks thought feels felt lives
lived works worked seems seemed became
""")
)
QUESTION_AUX = frozenset(_words("is was does did has"))
DEGREE_WORDS = frozenset(_words("so such always never still really very"))
PRONOUNS = frozenset(_words("he she him her his hers himself herself"))
PLURAL_PERSON_VERBS = frozenset(_words("were are have had met founded started both"))
# Plural nouns for people that may introduce a list of their names after a colon.
GROUPS_OF_PEOPLE = tuple(
    _words("""
founders cofounders co-founders authors members speakers partners guests attendees participants
winners owners players candidates employees students colleagues parents children
""")
)
