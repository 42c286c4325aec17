"""Passwords said in prose: "the password is ...", "pw: ...", a password's noun in twenty-odd
languages, a name and a password after "login" or "creds" or after a user's name ("user NAME, pass
..."), and a password named after it is given ("X is my password").

The rules that read a value far from its noun ask for a strong one (secret_values.strong). Each
case-insensitive rule runs lowercased on the lowercased text where the offsets agree
(scanning.case_aligned), so that `re` skips ahead to its words' first letters; every gap it skips
is bounded. router.signals.sensitivity.secrets runs `find_in_prose` beside its own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.nearby import made_up
from router.signals.sensitivity.scanning import case_aligned, lead, word_start
from router.signals.sensitivity.secret_values import (
    MEASUREMENT,
    PLACEHOLDER,
    VALUE,
    bracketed_at,
    character_classes,
    chosen_word,
    strong,
    value_confidence,
)

# Substrings (of the lowercased text) that _spoken needs; a prompt holding none of them skips it.
_SPOKEN_GATE = Gate(("pass", "pasw", "pssw", "pin", "pw", "pswd"))

# A password said in a sentence: the word, up to seven words about whose it is ("the password we
# agreed on for the shared drive is ..."), a verb or a colon, perhaps "now", "still" or "currently",
# then the value ("the root password on that box is ...", "set the passphrase to ...", "use the
# password ... for"); the value must still look like a secret (two kinds of character, no placeholder).
# The word also in its short forms and the commonest misspellings people type in a hurry.
_SPOKEN_WORDS = (
    "password", "passcode", "passphrase", "pin", "pwd", "pw",
    "passwd", "passwrd", "pasword", "passowrd", "pssword", "pswd", "pword",
)  # fmt: skip
_SPOKEN_REST = (
    # the words about whose it is may be names of hosts, users or addresses ("the root password on
    # 10.0.3.7 is ...", "the password for ops@corp is ..."), not a sentence's end; the last of them
    # may end at the colon ("the password, sent by text: ...")
    r"\b(?:[?,]?\s+(?P<words>(?:[^\s.!?,;:=]+(?:[.:][^\s.!?,;:=]+)*(?:,?[ \t]+|(?=[:=]))){0,7}?)"
    # "to" not before an article: "the password to the wifi is ..." reads on to its "is"
    r"(?P<verb>(?:is|was|as|it's|it\u2019s|to(?!\s+(?:the|a|an|my|our|your|this|that)\b))\b|=|:(?!//))"
    r"\s*(?P<adverb>now\s+|still\s+|currently\s+)?"
    # (after "=" the value is on its line: an empty "password=" does not take the next line's host=)
    r"|\s*(?::\s*|=[ \t]*)|\s+)"
    r"(?:-\s*)?[\"']?(?P<value>[^\s\"']{4,100})"
)
# "passwd" not right after a dot, a slash or a hyphen: /etc/passwd, usr.bin.passwd and base-passwd
# are a file and packages (but "the VPN-password is ..." is a password).
_NOT_BEFORE = {"passwd": r"[\w./\\-]"}
_WORD_CHAR = r"\w"
_SPOKEN = re.compile(
    r"(?i)(?:"
    + "|".join("(?<!" + _NOT_BEFORE.get(word, _WORD_CHAR) + ")" + word for word in _SPOKEN_WORDS)
    + ")"
    + _SPOKEN_REST
)
# The same on lowercase text (scanning.case_aligned), each word with its \b after it, so that `re`
# skips ahead to the words' first letters instead of trying the pattern at every position.
_LOWER_SPOKEN = re.compile(
    "(?:"
    + "|".join(lead(word[0], _NOT_BEFORE.get(word, _WORD_CHAR)) + word[1:] for word in _SPOKEN_WORDS)
    + ")"
    + _SPOKEN_REST
)
# A password said in another language: the word, up to five words, a colon, "=", a dash or the
# language's "is", then a strong value ("la contraseña del router es ...", "das Passwort ist ...",
# "hasło to ...", "密码是..."). The verb is a word of its own ("a senha do e-mail da loja é ...":
# not the "e" of "e-mail"; "das Passwort ist: ..." still is).
# Words of scripts written without spaces ("サーバーのパスワードは ..."): no word start is asked of them.
_JOINED_WORDS = ("密码", "密碼", "パスワード", "비밀번호")
_FOREIGN_WORDS = (
    "contraseña", "contrasena", "mot de passe", "passwort", "kennwort", "senha", "wachtwoord", "hasło",
    "haslo", "lösenord", "losenord", "salasana", "heslo", "jelszó", "jelszo", "пароль", "şifre",
    "sifre", "mật khẩu", "kata sandi", "parolă", *_JOINED_WORDS,
)  # fmt: skip
_FOREIGN_REST = (
    r"(?:(?<=[^\W\d_])(?!\w)\s+(?:[^\s.!?]+\s+){0,5}?"
    r"(?:es|est|ist|lautet|é|e|er|är|is|on|je|jest|to|era|war|là|adalah|[-\u2013\u2014])(?![\w\u2013\u2014-])"
    r"|\s*[:\uff1a=]|\s*(?:是|为|為|は|는|은|이|가)|\s+[-\u2013\u2014])"
    r"\s*[:\uff1a]?\s*[\"'«\u201c\u201e]?([^\s\"'»\u201d\u201c\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]{4,100})"
)
_FOREIGN_SPOKEN = re.compile(
    r"(?i)(?:(?<!\w)(?:" + "|".join(word for word in _FOREIGN_WORDS if word not in _JOINED_WORDS) + ")|"
    + "|".join(_JOINED_WORDS) + ")" + _FOREIGN_REST
)  # fmt: skip
# The same on lowercase text (scanning.case_aligned), each word with its lookbehind after its first letter.
_LOWER_FOREIGN = re.compile(
    "(?:" + "|".join(word if word in _JOINED_WORDS else lead(word[0], r"\w") + word[1:] for word in _FOREIGN_WORDS) + ")"
    + _FOREIGN_REST
)  # fmt: skip
# The gate: what each word holds (passwort and kennwort "wort", lösenord and losenord "senord"), and
# the words not in ASCII themselves.
_FOREIGN_GATE = Gate(
    ("contras", "mot de passe", "wort", "senha", "wachtwoord", "haslo", "senord", "salasana", "heslo",
     "jelszo", "sifre", "kata sandi", *(word for word in _FOREIGN_WORDS if not word.isascii()))
)  # fmt: skip
# A name and a password after "login", "credentials" or "account": "the login is NAME / PASSWORD".
_PAIR_WORDS = ("login", "credential", "creds", "account")
_PAIR_GATE = Gate(_PAIR_WORDS)
# Words that stand where a name would and say where the credentials are, not whose they are.
_NOT_NAMES = frozenset(
    ("in", "at", "on", "under", "the", "a", "an", "our", "my", "your", "stored", "kept", "saved", "see", "use", "ask")
)  # fmt: skip
# The value must be strong, after a slash, a comma or a space ("creds for staging: NAME PASSWORD",
# "the login for the router - NAME, PASSWORD"; not "Account is acme-prod / eu-west-1"). A URL
# ("Login: https://...") and a place ("credentials are in vault2", "creds: see 1Password / ...")
# are not a pair.
_PAIR_REST = r"[^\n.]{0,40}?(?:\bis|\bare|:|\s-)\s+(?P<name>[^\s/,]+)(?:\s*(?P<slash>/)\s*|,\s*|\s+)" + VALUE
_PAIR = re.compile(r"(?i)\b(?:login|credential|creds|account)s?\b" + _PAIR_REST)
# The same on lowercase text (scanning.case_aligned), beginning with the words' first letters.
_LOWER_PAIR = re.compile("(?:" + "|".join(map(word_start, _PAIR_WORDS)) + r")s?\b" + _PAIR_REST)
# A name, then a password's noun and its value with no verb: "user is NAME pass VALUE", "user
# NAME, pass VALUE", "Benutzer NAME, Passwort VALUE"; a strong value only ("username and password
# fields", "user guide / password reset" are not one).
_FIELD_USER_WORDS = ("username", "user", "login", "benutzername", "benutzer", "nutzer", "usuario", "usuário",
                     "utilisateur", "identifiant")  # fmt: skip
_FIELD_PASS_WORDS = ("password", "passwd", "passcode", "pass", "pwd", "pw", "passwort", "kennwort", "contraseña",
                     "contrasena", "mot de passe", "senha", "wachtwoord", "hasło", "haslo", "lösenord")  # fmt: skip
_FIELD_NAME = r"[\"']?[^\s,;/\"']{1,60}[\"']?"
_FIELD_SEPARATOR = r"[ \t]*(?:,|;|/|&|\band\b)[ \t]*"
# On one line; a verb or colon after the user's word, or a separator after the name ("every user
# must pass Level2 ..." is neither; "except User.DoesNotExist:\n    pass" crosses a line).
_FIELD_REST = (
    r"(?!\w)(?:[ \t]*(?:is[ \t]+|[:=][ \t]*)" + _FIELD_NAME + "(?:" + _FIELD_SEPARATOR + r"|[ \t]+)"
    r"|[ \t]+" + _FIELD_NAME + _FIELD_SEPARATOR + r")(?:(?:the|le|la|das)[ \t]+)?"
    r"(?<!\w)(?:"
    + "|".join(_FIELD_PASS_WORDS)
    + r")(?!\w)(?:[ \t]*(?P<said>[:=]|is(?=[ \t]))[ \t]*|[ \t]+)"
    + VALUE
)
# A camelCase or snake_case name with a digit: code's, not a password ("recordV2", "csrf_token2").
_IDENTIFIER = re.compile(r"[a-z]+(?:[A-Z][a-z0-9]*|_[a-z0-9]+)+\Z")
_FIELD_PAIR = re.compile(r"(?i)(?<!\w)(?:" + "|".join(_FIELD_USER_WORDS) + ")" + _FIELD_REST)
# The same on lowercase text (scanning.case_aligned), beginning with the words' first letters.
_LOWER_FIELD_PAIR = re.compile("(?:" + "|".join(map(word_start, _FIELD_USER_WORDS)) + ")" + _FIELD_REST)
_FIELD_GATE = Gate(_FIELD_USER_WORDS)
# "pass" said for a password, with its verb: "the admin pass for the router is VALUE" (a made-up
# value, nearby.made_up: "the season pass is Gold-Tier2" is not one; not "pass:" in code, where it
# is a parameter, nor after a slash, dot or hyphen).
_PASS_REST = (
    r"(?!\w)(?:[ \t]+[^\s.!?,;:=]+){0,5}?[ \t]+(?:is|was)(?:[ \t]+now)?[ \t]+[\"'`]?([^\s\"'`]{4,100})"
)
_PASS_SAID = re.compile(r"(?i)(?<![\w/.-])pass" + _PASS_REST)
_LOWER_PASS_SAID = re.compile(lead("p", r"[\w/.-]") + "ass" + _PASS_REST)
# A question about a login or password and its answer on the next line, perhaps after a speaker's
# name or a time, perhaps as NAME / VALUE: "[10:02] dana: anyone have the jenkins login?\n[10:03]
# raj: NAME / VALUE", "Agent: could you confirm the password?\nCustomer: sure, it's VALUE".
_ASKED_WORDS = ("login", "password", "passwd", "pw", "creds", "credentials", "passphrase", "passcode")
_ASKED = re.compile(
    "(?:" + "|".join(map(word_start, _ASKED_WORDS)) + r")(?!\w)[^\n]{0,120}\?[ \t]*\n"
)  # fmt: skip
_ASKED_GATE = Gate(_ASKED_WORDS)
_ANSWER = re.compile(
    r"[ \t>]*(?:\[[^\]\n]{1,20}\][ \t]*)?(?:[\w .@-]{1,24}:[ \t]*)?(?:(?:sure|yes|yeah|ok|okay|it'?s|it is)[,!]?[ \t]+)*"
    r"(?:[\w.@+-]{2,40}[ \t]*/[ \t]*)?[\"'`]?([^\s\"'`]{4,100})",
    re.IGNORECASE,
)
# A password named after it is given: "whether X is a strong enough password", "X is my password",
# "is X a good password?", "I use X as my password". Read in the words before each such noun.
_NAMED_AFTER = re.compile(r"password|passphrase|passcode")
_PASS_GATE = Gate(("pass",))
_BEFORE_NOUN = re.compile(
    r"(?:(?<![^\s\"'(])([^\s\"'(]{6,100}?)[\"')]?\s+(?:is|was|as)"
    r"|\bis\s+[\"']?([^\s\"']{6,100})[\"']?)"
    r"\s+(?:(?:a|an|my|the|our|your|his|her|their|good|strong|weak|secure|safe|valid|new|current|enough)\s+){0,4}$",
    re.IGNORECASE,
)
# After the noun, what shows that the phrase ends there (not "a password manager"): the text's end,
# punctuation, or a word that starts something else.
_ENDS_THE_PHRASE = re.compile(
    r"s?(?:\s*$|\s*[.,;:!?)\"']|\s+(?:for|to|on|of|at|in|and|but|so|now|then|because|since|again|anymore"
    r"|too|either|yet|right|though|here|there|that|which|i|you|we|it|is|was)\b)"
)


def _case_blind(
    text: str, lowered: str, lower: re.Pattern[str], ignoring_case: re.Pattern[str]
) -> Iterator[re.Match[str]]:
    """A case-insensitive pattern's matches: its lowercase form's in the lowercased text where the
    offsets agree (scanning.case_aligned), else its (?i) form's in the text."""
    return lower.finditer(lowered) if case_aligned(text, lowered) else ignoring_case.finditer(text)


def _foreign_spoken(text: str, lowered: str) -> Iterator[Finding]:
    if not _FOREIGN_GATE.open(lowered):
        return
    for match in _case_blind(text, lowered, _LOWER_FOREIGN, _FOREIGN_SPOKEN):
        value = text[match.start(1) : match.end(1)].rstrip(".,;!?。、")  # the text's, not lowercased
        if strong(value) and value_confidence(value, quoted=False):
            yield Finding("secret", match.start(1), match.start(1) + len(value), 0.8, "password")


# A word a person chose, said in a sentence (_chosen_in_sentence): the sentence's verb (not "=" or
# ":", which code writes too), what may stand between the noun and it (nothing, or words that say
# whose or where: "the password for the NAS is", "the password we agreed on was"; not another noun:
# "the password manager is bitwarden"), "to" only after a verb that sets one ("set the password to
# ...", not "pipe the password to sshpass"), and the value ending its clause ("the password is
# kittycatz." or "... btw" or "... until Monday"; not "the password is cleartext in the logs").
_SENTENCE_VERBS = frozenset(("is", "was", "it's", "it\u2019s"))
_WHOSE_WORDS = frozenset(
    ("for", "on", "of", "to", "at", "in", "from", "we", "you", "i", "they", "he", "she", "it", "that",
     "which", "the", "my", "our", "your", "his", "her", "their")
)  # fmt: skip
_SETS_ONE = re.compile(r"\b(?:set|sets|setting|change|changed|changing|reset)\b[^.!?\n]{0,30}\Z")
_NOT_SET = re.compile(r"\b(?:can't|cannot|can\u2019t|don't|don\u2019t|never|not)\s+\Z")
# a quote ends the value's clause only where the same quote opened the value ("anjali's" does not)
_CLAUSE_END = re.compile(
    r"[ \t]*(?:$|[\n.,;:!?)\]\u2014\u2013]|-[ \t])|[ \t]+(?:and|but|so|btw|lol|pls|please|thanks|thx|until|since|yesterday|today|tonight|now)\b"
)


def _chosen_in_sentence(match: re.Match[str], lowered: str, value_end: int) -> bool:
    verb = (match.group("verb") or "").lower()
    words = (match.group("words") or "").split()
    if verb == "to":
        setter = _SETS_ONE.search(lowered, max(0, match.start() - 40), match.start())
        sets = (
            setter is not None
            and _NOT_SET.search(lowered, max(0, setter.start() - 12), setter.start()) is None
        )
    else:
        sets = verb in _SENTENCE_VERBS
    start = match.start("value")
    quote = lowered[start - 1 : start]
    quoted = quote in ("'", '"') and lowered[value_end : value_end + 1] == quote
    return (
        sets
        and (not words or words[0].strip(",") in _WHOSE_WORDS)
        and (quoted or _CLAUSE_END.match(lowered, value_end) is not None)
    )


# a digest's hex ("the password for admin in the dump is 5f4dcc3b..."): the hash, not the password
_HEX_DIGEST = re.compile(r"[0-9a-f]{16,}")


def _words_and_digits(value: str) -> bool:
    """A password a person chose of lowercase letters and digits, or of digits alone, six or more
    ("baseball1", "q1w2e3r4", "12345678"): not a word of the language, which "the password is
    incorrect" says, nor a digest's hex, a placeholder or a default (value_confidence's checks for a
    literal)."""
    return (
        6 <= len(value) <= 32
        and value.isascii()
        and value.isalnum()
        and any(c.isdigit() for c in value)
        and value == value.lower()
        and not _HEX_DIGEST.fullmatch(value)
        and value_confidence(value, quoted=True) > 0
    )


def _spoken(text: str, lowered: str) -> Iterator[Finding]:
    if not _SPOKEN_GATE.open(lowered):
        return
    for match in _case_blind(text, lowered, _LOWER_SPOKEN, _SPOKEN):
        begin = match.start("value")
        if PLACEHOLDER.match(text[begin : match.end("value")]):
            continue  # PASSWORD=!DB_PW!: a placeholder before its closing "!" is cut off below
        if text[begin : match.end("value")].endswith(":") or bracketed_at(text, begin):
            continue  # "password removed: Username: ...", "Password: [REDACTED per policy]": no value
        value = text[begin : match.end("value")].rstrip(".,;!?")
        end = begin + len(value)
        said = match.group(0).lower()
        if said.startswith("pw") and not said.startswith("pwd") and MEASUREMENT.fullmatch(value):
            continue  # "pw 2.5ms", "PW: 25nW": a pulse width or a power, not a password
        pin = said.startswith("pin")  # "pin numpy to 1.26.4": only digits are a PIN
        words = match.group("words") or ""
        if words and (said.startswith("pwd") or (pin and any(c.isdigit() for c in words))):
            continue  # "pwd returns C:\\Users\\...": the shell's command; "pin 13 to 1000": a pin number
        if match.group("verb") == "=" and lowered[match.start() : match.start("words")].rstrip().endswith(
            ","
        ):
            continue  # get_input(prompt, self.password, stream=stream): the next argument, not its value
        if match.group("verb") == "=" and text.startswith(":", begin):
            continue  # SCRAM-SHA-256$4096:salt$key=:key: base64's padding and a separator, not "="
        far = len(words.split()) > 4 or match.group("adverb")
        # "the password is woofwoof": in a sentence, a word that is not English is one a person
        # chose ("the password is incorrect" and "... is football" stay unread); "now" or "still"
        # before it, as a rotation is said, is not far
        chosen = (
            not pin
            and len(words.split()) <= 7
            and (chosen_word(value) or _words_and_digits(value))
            and _chosen_in_sentence(match, lowered, end)
        )
        if chosen:
            yield Finding("secret", begin, end, 0.75, "password")
            continue
        if (
            (match.group("verb") == "to" and len(words.split()) > 2)  # "... from HOST to DC01-Corp": a place
            or (match.group("verb") == "as" and words.split()[-1:] == ["such"])  # "such as 'Summer2024!'"
            or value[:1] in ")]}>,;-"  # password('Password:').ask(), gpg --passphrase --batch: no value
            # "rotate the password (value now in Key Vault)": a word in brackets, no value
            or (value[:1] == "(" and value[1:].rstrip(").,;").isalpha())
            or (far and not strong(value))  # "the password length limit in our app is 64-chars"
        ):
            continue
        if not pin and character_classes(value) >= 2 and value_confidence(value, quoted=False):
            yield Finding("secret", begin, end, 0.8, "password")
        elif value.isdigit() and 4 <= len(value) <= 8 and said.startswith(("pin", "passcode")):
            yield Finding("secret", begin, end, 0.7, "pin")


def _pairs(text: str, lowered: str) -> Iterator[Finding]:
    if not _PAIR_GATE.open(lowered):
        return
    for match in _case_blind(text, lowered, _LOWER_PAIR, _PAIR):
        begin = match.start(3)
        value = text[begin : match.end(3)].rstrip(".,;!?)")
        name = match.group("name").lower()
        if name.endswith(":") or value.startswith("/") or name in _NOT_NAMES:
            continue
        if not strong(value):
            continue
        if value_confidence(value, quoted=False):
            yield Finding("secret", begin, begin + len(value), 0.8, "password")


def _field_pairs(text: str, lowered: str) -> Iterator[Finding]:
    if not _FIELD_GATE.open(lowered):
        return
    for match in _case_blind(text, lowered, _LOWER_FIELD_PAIR, _FIELD_PAIR):
        begin, end = match.span(match.re.groups)  # the value: the last group (VALUE's)
        whole = text[begin:end]
        value = whole.rstrip(".,;:)")  # a password may end in "!" or "?"
        if not match.group("said") and (whole[0] in "-`(" or "(" in whole or _IDENTIFIER.match(whole)):
            continue  # "pass --role=Admin2", "pass CHAR(60)", "pass userId2 as ...": the verb, or code
        if strong(whole) and value_confidence(value, quoted=False):
            yield Finding("secret", begin, begin + len(value), 0.8, "password")


def _pass_said(text: str, lowered: str) -> Iterator[Finding]:
    if not _PASS_GATE.open(lowered):
        return
    for match in _case_blind(text, lowered, _LOWER_PASS_SAID, _PASS_SAID):
        value = made_up(text[match.start(1) : match.end(1)])  # "the season pass is Gold-Tier2": a word
        if value is not None:
            yield Finding("secret", match.start(1), match.start(1) + len(value), 0.8, "password")


def _answers(text: str, lowered: str) -> Iterator[Finding]:
    if not _ASKED_GATE.open(lowered) or "?" not in text:
        return
    for question in _ASKED.finditer(lowered):  # the words in lowercase, the offsets the text's
        answer = _ANSWER.match(text, question.end())
        value = made_up(answer.group(1)) if answer is not None else None
        if answer is not None and value is not None:  # "PR#4521", "Python3.11+", "8443/tcp": no password
            yield Finding("secret", answer.start(1), answer.start(1) + len(value), 0.75, "password")


def _named_after(text: str, lowered: str) -> Iterator[Finding]:
    if not _PASS_GATE.open(lowered):
        return
    for noun in _NAMED_AFTER.finditer(lowered):
        if not _ENDS_THE_PHRASE.match(lowered, noun.end()):
            continue  # "a password manager", "the password tooling interpreter": something else
        start = max(0, noun.start() - 160)
        match = _BEFORE_NOUN.search(text, start, noun.start())
        if match is None:
            continue
        group = 1 if match.group(1) is not None else 2
        value = match.group(group)
        # a word ("This is a strong password") or a clause ("is v1.2.3, the password") is not one
        if strong(value) and value[-1] not in ",;:." and value_confidence(value, quoted=False):
            yield Finding("secret", match.start(group), match.end(group), 0.75, "password")


def find_in_prose(text: str, lowered: str) -> Iterator[Finding]:
    """Passwords said in `text`; `lowered` is text.lower() with the text's offsets."""
    yield from _spoken(text, lowered)
    yield from _foreign_spoken(text, lowered)
    yield from _pairs(text, lowered)
    yield from _field_pairs(text, lowered)
    yield from _pass_said(text, lowered)
    yield from _answers(text, lowered)
    yield from _named_after(text, lowered)
