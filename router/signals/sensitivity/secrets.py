"""Detects credentials in prompt text: provider API keys, tokens, private keys, passwords in config.

Offline and regex-only. A known key format (AWS, GitHub, Slack, Stripe, Google, OpenAI, Anthropic,
JWT, PEM private keys) is reported on shape alone; free-form values (password=..., TOKEN=...) only
when they look like real secrets rather than placeholders, variable names or type annotations, so
ordinary code does not trip the privacy gate. It must never report the secret's value anywhere but
as offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.programs import find_in_programs
from router.signals.sensitivity.scanning import case_aligned, word_start
from router.signals.sensitivity.secret_values import (
    PLACEHOLDER,
    REFERENCE_SUFFIXES,
    STRONG_VALUE,
    character_classes,
    mentions_secret,
    shannon_entropy,
    strong,
    value_confidence,
)

# Substrings (of the lowercased text) that each pattern needs; a prompt holding none of them skips
# the pattern entirely, and most chat prompts hold none of any.
_ASSIGNED_HINTS = ("pass", "pw", "psk", "secret", "token", "key", "auth", "credential")
_SPOKEN_HINTS = ("pass", "pasw", "pssw", "pin", "pw", "pswd")
# Only Stripe's key patterns, which begin with [sr] (frequent letters), are gated by hints. Every
# other known format begins with a literal, its \b written after it (scanning.word_start), which
# `re` finds as fast as a substring test finds a hint, so those run on every text; each of their
# matches holds, lowercased, a hint of its kind (AKIA holds akia, eyJ eyj), so gating them by such
# hints would find the same.
_KNOWN_HINTS = {"stripe_key": ("k_live_", "k_test_")}

_KNOWN: tuple[tuple[str, re.Pattern[str], float], ...] = (
    # AKIA, ASIA, ABIA, ACCA, AIDA, AROA, ANPA or AIPA, then 16 characters
    (
        "aws_access_key",
        re.compile(word_start("A") + r"(?:KIA|SIA|BIA|CCA|IDA|ROA|NPA|IPA)[A-Z2-7]{16}\b"),
        0.95,
    ),
    ("github_token", re.compile(word_start("gh") + r"[pousr]_[A-Za-z0-9]{36,255}\b"), 0.97),
    ("github_token", re.compile(word_start("github_pat_") + r"[A-Za-z0-9_]{22,255}\b"), 0.97),
    ("slack_token", re.compile(word_start("xox") + r"[abposr]-[A-Za-z0-9-]{10,250}"), 0.95),
    (
        "slack_webhook",
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"),
        0.9,
    ),
    ("stripe_key", re.compile(r"\b[sr]k_live_[A-Za-z0-9]{16,247}\b"), 0.97),
    ("stripe_key", re.compile(r"\b[sr]k_test_[A-Za-z0-9]{16,247}\b"), 0.7),
    ("google_api_key", re.compile(word_start("AIza") + r"[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"), 0.95),
    ("anthropic_key", re.compile(word_start("sk-ant-") + r"[a-z]{2,8}\d{2}-[A-Za-z0-9_-]{20,}"), 0.97),
    (
        "openai_key",
        re.compile(word_start("sk-") + r"(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
        0.9,
    ),
    (
        "jwt",
        re.compile(word_start("eyJ") + r"[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        0.9,
    ),
    # Mapbox secret tokens: "sk." and a base64 JSON head that starts {"u":" (eyJ1Ijoi), then a dot.
    (
        "mapbox_token",
        re.compile(word_start(r"sk\.eyJ1Ijoi") + r"[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
        0.95,
    ),
    (
        "private_key",
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
            r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[^\n]*)"
        ),
        0.99,
    ),
)

# A URL's user information with a password, in any scheme (RFC 3986: scheme://user:password@host):
# postgres://, mysql+pymysql:// (SQLAlchemy's dialect+driver), jdbc:mysql://, git+https://, amqps://.
# Read from each "://": the scheme back to where its characters end, then this after the "://".
_USERINFO = re.compile(r"([^\s:/@'\"]*):([^\s/@'\"]+)@[^\s/'\"]+")
# Go's MySQL driver DSN: NAME:PASSWORD@tcp(HOST:PORT)/DB (also unix(...)), as sql.Open takes it.
_GO_DSN = re.compile(r"(?<![\w.-])[\w.-]+:([^\s@\"'`]{4,200})@(?:tcp|unix)\(")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
# Matched against the lowercased text: a case-sensitive alternation is several times faster.
_KEY_WORD = re.compile(
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key"
    r"|private[_-]?key|credential|signing[_-]?key|encryption[_-]?key"
    # DB_PASS=, RABBITMQ_DEFAULT_PASS=: a key that ends in "pass", no letter before or after it (the
    # lookbehind written after the word, so that every alternative begins with a letter `re` skips to)
    r"|pass(?<![a-z]pass)(?![a-z])"
    # PW=, db_pw:, "ID:admin PW:...": the common short form, no letter before or after it; since
    # "pw" also names pulse widths, page widths and picowatts, it must end the key (not PW_TEST_...
    # or PW-1) and its value must not be a measurement (_MEASUREMENT)
    r"|pw(?<![a-z]pw)(?![a-z])"
    # psk="...": a Wi-Fi pre-shared key (wpa_supplicant), no letter before or after it
    r"|psk(?<![a-z]psk)(?![a-z])"
)
# A number with a unit, or a run of them: 1500us, 2.5e-3, 25.3nW, 1280px, 0.5ms-2ms, 10^-12.
_MEASUREMENT = re.compile(
    r"(?i)[-+]?\d[\d.,]*(?:(?:e|\^|\*\*)[-+]?\d+)?[a-zµ°%]{0,4}(?:[-~/x][-+]?\d[\d.,]*(?:(?:e|\^)[-+]?\d+)?[a-zµ°%]{0,4})*"
)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# From the end of the key word: rest of the key, then = : => := and the value, quoted or bare.
# A quoted key and a quoted value as a call's first two arguments count as an assignment too:
# define('DB_PASSWORD', '...'), setenv("API_TOKEN", "..."), config.set('secret', '...'); the key
# must be the whole first argument and end in the secret's word (not "tokenizers", "token_type").
# The rest of a key is read for at most 100 characters: from every key word in a long run of key
# characters ("tokentoken...") an unbounded read made the scan quadratic.
_ASSIGNMENT = re.compile(
    r"(?P<rest>[A-Za-z0-9_.-]{0,100})(?:[\"']?\s*(?:=>|:=|=|:)|[\"']\s*(?P<comma>,)(?=\s*[\"'][^\s\"']{4,200}[\"']))\s*"
    r"(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})'|([^\s\"',;)}\]]{4,200}))"
)
# A password said in a sentence: the word, up to seven words about whose it is ("the password we
# agreed on for the shared drive is ..."), a verb or a colon, perhaps "now", "still" or "currently",
# then the value ("the root password on that box is ...", "set the passphrase to ...", "use the
# password ... for"); the value must still look like a secret (two kinds of character, no placeholder).
# with the short forms and the commonest misspellings people type in a hurry
_SPOKEN_WORDS = (
    "password", "passcode", "passphrase", "pin", "pwd", "pw",
    "passwd", "passwrd", "pasword", "passowrd", "pssword", "pswd", "pword",
)  # fmt: skip
_SPOKEN_REST = (
    # the words about whose it is may be names of hosts, users or addresses ("the root password on
    # 10.0.3.7 is ...", "the password for ops@corp is ..."), not a sentence's end; the last of them
    # may end at the colon ("the password, sent by text: ..."), and they stay on one line
    r"\b(?:\??\s+(?P<words>(?:[^\s.!?,;:=]+(?:[.:][^\s.!?,;:=]+)*(?:,?[ \t]+|(?=[:=]))){0,7}?)"
    r"(?:(?:is|was|be|to|as|it's|it\u2019s)\b|=|:)\s*(?P<adverb>now\s+|still\s+|currently\s+)?"
    r"|\s*[:=]\s*|\s+)"
    r"(?:-\s*)?[\"']?(?P<value>[^\s\"']{4,100})"
)
_SPOKEN = re.compile(r"(?i)\b(?:" + "|".join(_SPOKEN_WORDS) + ")" + _SPOKEN_REST)
# The same on lowercase text (scanning.case_aligned), each word with its \b after it, so that `re`
# skips ahead to the words' first letters instead of trying the pattern at every position.
_LOWER_SPOKEN = re.compile("(?:" + "|".join(map(word_start, _SPOKEN_WORDS)) + ")" + _SPOKEN_REST)
# A password said in another language: the word, up to five words, a colon, "=" or the language's
# "is", then a strong value ("la contraseña del router es ...", "das Passwort ist ...", "密码是...").
_FOREIGN_WORDS = (
    "contraseña", "contrasena", "mot de passe", "mdp", "passwort", "kennwort", "senha", "wachtwoord", "hasło",
    "haslo", "lösenord", "losenord", "salasana", "heslo", "jelszó", "jelszo", "пароль", "şifre",
    "sifre", "mật khẩu", "kata sandi", "parolă", "密码", "密碼", "パスワード", "비밀번호",
)  # fmt: skip
_FOREIGN_SPOKEN = re.compile(
    r"(?i)(?<!\w)(?:" + "|".join(_FOREIGN_WORDS) + r")"
    r"(?:(?<=[^\W\d_])(?!\w)\s+(?:[^\s.!?]+\s+){0,5}?(?:es|est|ist|é|e|er|är|is|on|je|jest|era|war|là|adalah)(?!\w)"
    r"|\s*[:\uff1a=]|\s*(?:是|为|為|は|는|은|이|가)|\s+[-\u2013\u2014])"
    r"\s*[:\uff1a]?\s*[\"'«\u201c\u201e]?([^\s\"'»\u201d\u201c\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]{4,100})"
)
_FOREIGN_HINTS = tuple(sorted({word.split()[0][:4] for word in _FOREIGN_WORDS}))
# After a rejected value, a later one in the same sentence: "the password on that box was rotated
# last night, it's now ...", "the password to the wifi is ...". Read at most 200 characters on.
_THEN_VALUE = re.compile(
    r"(?:\b(?:is|was|be|to|as)\b|\bit['\u2019]s\b|[=:])\s*(?:now\s+|still\s+|currently\s+)?(?:-\s*)?[\"']?"
    r"([^\s\"']{4,100})",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
# A name and a password after "login", "credentials" or "account": "the login is NAME / PASSWORD".
_PAIR_WORDS = ("login", "credential", "creds", "account")
# Words that stand where a name would and say where the credentials are, not whose they are.
_NOT_NAMES = frozenset(
    ("in", "at", "on", "under", "the", "a", "an", "our", "my", "your", "stored", "kept", "saved", "see", "use", "ask")
)  # fmt: skip
# The value must be strong, after a slash, a comma, a dash or a space ("creds for staging: NAME
# PASSWORD", "the login for the router - NAME, PASSWORD", "account - email is NAME - PASSWORD"; not
# "Account is acme-prod / eu-west-1"). A URL ("Login: https://...") and a place ("credentials are in
# vault2", "creds: see 1Password / ...") are not a pair. Between the word and its "is" or colon, up
# to 80 characters of the same sentence, a host's or an address's dots included ("creds for the
# admin page at http://10.0.3.7: NAME / PASSWORD").
_PAIR_REST = (
    r"(?:[^\n.]|\.(?=\w)){0,80}?(?:\bis|\bare|:|\s-)\s+(?P<name>[^\s/,]+)"
    r"(?:\s*(?P<slash>/)\s*|,\s*|\s+[-\u2013\u2014|]\s+|\s+)" + STRONG_VALUE
)
_PAIR = re.compile(r"(?i)\b(?:login|credential|creds|account)s?\b" + _PAIR_REST)
# The same on lowercase text (scanning.case_aligned), beginning with the words' first letters.
_LOWER_PAIR = re.compile("(?:" + "|".join(map(word_start, _PAIR_WORDS)) + r")s?\b" + _PAIR_REST)
# A user's name, then "pass" and a strong value: "user is NAME pass PASSWORD", "login NAME / pass:
# PASSWORD". The short word is a password's only after a name (not "pass the salt", "a boarding pass"),
# and "password" itself is _SPOKEN's.
_USER_PASS_WORDS = ("user", "username", "login", "email", "e-mail")
_USER_PASS_REST = (
    r"\b\s*(?:is\s+|:\s*|=\s*)?[\"']?(?P<name>[^\s\"',;/]+)[\"']?\s*(?:[,;/]\s*|\s+(?:and|&)\s+|\s+)"
    r"(?:(?:the|my|its|with)\s+)?pass(?:wd)?\b\s*(?:is\s+|:\s*|=\s*)?" + STRONG_VALUE
)
_USER_PASS = re.compile(r"(?i)\b(?:user(?:name)?|login|e-?mail)" + _USER_PASS_REST)
_LOWER_USER_PASS = re.compile("(?:" + "|".join(map(word_start, _USER_PASS_WORDS)) + ")" + _USER_PASS_REST)
# A password named after it is given: "whether X is a strong enough password", "X is my password",
# "is X a good password?", "I use X as my password". Read in the words before each such noun.
_NAMED_AFTER = re.compile(r"password|passphrase|passcode")
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


def _known(text: str, lowered: str) -> Iterator[Finding]:
    hinted = {detail: any(hint in lowered for hint in hints) for detail, hints in _KNOWN_HINTS.items()}
    for detail, pattern, confidence in _KNOWN:
        if not hinted.get(detail, True):
            continue
        for match in pattern.finditer(text):
            value = match.group(0)
            if "EXAMPLE" in value.upper() or "xxxx" in value.lower() or shannon_entropy(value) < 3.0:
                continue  # documentation examples (AKIAIOSFODNN7EXAMPLE, ghp_xxxx...) are nobody's secret
            yield Finding("secret", match.start(), match.end(), confidence, detail)


def _key_start(text: str, position: int) -> int:
    """Where the key holding the key word at `position` begins, at most 100 characters back."""
    limit = max(0, position - 100)
    while position > limit and text[position - 1] in _KEY_CHARS:
        position -= 1
    return position


def _first_argument_key(text: str, word_at: int, match: re.Match[str]) -> bool:
    """Whether a quoted key before a comma is a call's whole first argument that ends in its secret
    word, and its value is strong and does not name the secret: define('DB_PASSWORD', 'Xk7#...'),
    not t("password", "Password"), ("api_key", "API-Key") or setItem('token', 'pending-1')."""
    if match.group("rest"):
        return False
    start = _key_start(text, word_at)
    before = text[max(0, start - 20) : start]
    if not before.endswith(("'", '"')) or not before[:-1].rstrip().endswith("("):
        return False  # define( 'DB_PASSWORD', ...) and define('DB_PASSWORD', ...) alike
    value = match.group(3) or match.group(4) or ""
    return strong(value) and not mentions_secret(value)


def _assigned(text: str, lowered: str) -> Iterator[Finding]:
    """key = value, "key": "value", key: value, export KEY=value, where the key names a secret."""
    if not any(hint in lowered for hint in _ASSIGNED_HINTS):
        return
    end = 0
    for hit in _KEY_WORD.finditer(lowered):
        if hit.start() < end:
            continue
        match = _ASSIGNMENT.match(text, hit.end())
        if match is None:
            continue
        end = match.end()
        if match.group("rest").lower().endswith(REFERENCE_SUFFIXES):
            continue  # password_file=/run/secrets/db, TOKEN_PATH=...: where the secret is, not it
        group = 3 if match.group(3) is not None else 4 if match.group(4) is not None else 5
        value = match.group(group)
        if group == 5 and value[0] == "[" and text[match.end(5) : match.end(5) + 1] == "]":
            continue  # Password: [REDACTED], token=[hidden]: the bare value stops before its "]"
        if hit.group() == "pw" and (match.group("rest") or _MEASUREMENT.fullmatch(value)):
            continue  # PW_TEST_REPORTER=..., PW-1: 4500psi, pw = 2.5e-3: not a password
        if hit.group() == "psk" and match.group("rest"):
            continue  # HAS_PSK_TLSv1_3: a name that holds "psk", not a pre-shared key
        if match.group("comma") is not None and not _first_argument_key(text, hit.start(), match):
            continue  # ["tokenizers", "..."], hset('user:1', 'password_changed_at', ...): no key
        # a call's arguments are quoted whatever they hold, so quotes there say nothing of a secret
        confidence = value_confidence(value, quoted=group != 5 and match.group("comma") is None)
        if confidence:
            name = lowered[_key_start(text, hit.start()) : hit.end()]
            detail = (
                "password" if "pass" in name or "pwd" in name or name.endswith("pw") else "assigned_secret"
            )
            yield Finding("secret", match.start(group), match.end(group), confidence, detail)


def _case_blind(
    text: str, lowered: str, lower: re.Pattern[str], ignoring_case: re.Pattern[str]
) -> Iterator[re.Match[str]]:
    """A case-insensitive pattern's matches: its lowercase form's in the lowercased text where the
    offsets agree (scanning.case_aligned), else its (?i) form's in the text."""
    return lower.finditer(lowered) if case_aligned(text, lowered) else ignoring_case.finditer(text)


def _foreign_spoken(text: str, lowered: str) -> Iterator[Finding]:
    if text.isascii() and not any(hint in lowered for hint in _FOREIGN_HINTS):
        return
    for match in _FOREIGN_SPOKEN.finditer(text):
        value = match.group(1).rstrip(".,;!?。、")
        if strong(value) and value_confidence(value, quoted=False):
            yield Finding("secret", match.start(1), match.start(1) + len(value), 0.8, "password")


def _later_value(text: str, start: int, noun_at: int) -> tuple[int, int] | None:
    """A strong value said later in the sentence of a password's noun, at most 200 characters after
    the noun: "the password on that box was rotated last night, it's now X"."""
    limit = min(len(text), noun_at + 200)
    end = _SENTENCE_END.search(text, start, limit)
    for match in _THEN_VALUE.finditer(text, start, end.start() if end else limit):
        value = match.group(1).rstrip(".,;!?")
        if strong(value) and value_confidence(value, quoted=False):
            return match.start(1), match.start(1) + len(value)
    return None


def _spoken(text: str, lowered: str) -> Iterator[Finding]:
    if not any(hint in lowered for hint in _SPOKEN_HINTS):
        return
    for match in _case_blind(text, lowered, _LOWER_SPOKEN, _SPOKEN):
        begin = match.start("value")
        value = text[begin : match.end("value")].rstrip(".,;!?")
        end = begin + len(value)
        said = match.group(0).lower()
        if said.startswith("pw") and not said.startswith("pwd") and _MEASUREMENT.fullmatch(value):
            continue  # "pw 2.5ms", "PW: 25nW": a pulse width or a power, not a password
        pin = said.startswith("pin")  # "pin numpy to 1.26.4": only digits are a PIN
        far = len((match.group("words") or "").split()) > 4 or match.group("adverb")
        if value[:1] in ")]}>,;":
            continue  # password('Password:').ask(): the code goes on, no value is said
        if far and not strong(value):
            pass  # "the password length limit in our app is 64-chars", "the pin ... is now GPIO17"
        elif not pin and character_classes(value) >= 2 and value_confidence(value, quoted=False):
            yield Finding("secret", begin, end, 0.8, "password")
            continue
        elif value.isdigit() and 4 <= len(value) <= 8 and said.startswith(("pin", "passcode")):
            yield Finding("secret", begin, end, 0.7, "pin")
            continue
        # not said here: perhaps later in the sentence
        if not pin and (later := _later_value(text, end, match.start())) is not None:
            yield Finding("secret", *later, 0.8, "password")


def _url_password(value: str) -> bool:
    """Not a placeholder (user:${DB_PASS}@, user:<password>@), not the word itself (user:password@),
    and not more of the user information (cvs://:pserver:anoncvs@: a method and a name)."""
    return not (PLACEHOLDER.match(value) or ":" in value or (mentions_secret(value) and not strong(value)))


def _connections(text: str) -> Iterator[Finding]:
    if "@" not in text:
        return
    position = 0
    while (separator := text.find("://", position)) >= 0:
        position = separator + 3
        start = separator
        while start > separator - 32 and start > 0 and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        while start < separator and not text[start].isalpha():
            start += 1  # a scheme begins with a letter
        match = _USERINFO.match(text, position)
        if start == separator or match is None or not _url_password(match.group(2)):
            continue
        yield Finding("secret", start, match.end(), 0.95, "connection_string")
        position = match.end()
    if "@tcp(" in text or "@unix(" in text:
        for match in _GO_DSN.finditer(text):
            if _url_password(match.group(1)):
                yield Finding("secret", match.start(), match.end(), 0.95, "connection_string")


def _pairs(text: str, lowered: str) -> Iterator[Finding]:
    if not any(word in lowered for word in _PAIR_WORDS):
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


def _user_pass(text: str, lowered: str) -> Iterator[Finding]:
    if "pass" not in lowered or not any(word in lowered for word in _USER_PASS_WORDS):
        return
    for match in _case_blind(text, lowered, _LOWER_USER_PASS, _USER_PASS):
        begin = match.start(2)
        value = text[begin : match.end(2)].rstrip(".,;!?)")
        if strong(value) and value_confidence(value, quoted=False):
            yield Finding("secret", begin, begin + len(value), 0.8, "password")


def _named_after(text: str, lowered: str) -> Iterator[Finding]:
    if "pass" not in lowered:
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


def find_secrets(text: str) -> list[Finding]:
    lowered = text.lower()
    if len(lowered) != len(text):  # "İ" lowers to two characters: keep every offset the text's
        lowered = "".join(char.lower()[0] for char in text)
    return [
        *_known(text, lowered),
        *_connections(text),
        *_assigned(text, lowered),
        *_spoken(text, lowered),
        *_foreign_spoken(text, lowered),
        *find_in_programs(text, lowered),
        *_pairs(text, lowered),
        *_user_pass(text, lowered),
        *_named_after(text, lowered),
    ]
