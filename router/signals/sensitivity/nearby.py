"""A made-up password on the line of a word that names credentials, however the sentence is put.

The phrase rules (router.signals.sensitivity.prose) read a password where a sentence says it is one
("the password is ...", "login NAME / ..."); people also write "pw for the NAS, Xk7#pQ2!wz, don't
share", "Hola, te paso la contraseña: ... y el usuario ...", or a line of a ticket. Here the value
is judged instead of the phrasing: a whole token of 8-64 characters with a letter, a digit and an
ASCII symbol other than - _ . + , (made up, not a word, a version, a spec or a name), or with only
- or + where a capital follows a small letter mid-word, digits and letters interleave and no word
or version is in it (laF187-4kGX0, not iPhone-15, ChatGLM3-6B or iOS17-beta), within 60
characters before or 120 after a credential's word (password, pw, creds, login, Wi-Fi, a code or
key that opens something, logging in with, and the noun in 25 other languages) on the same line;
and anywhere else in a text that holds such a word, a value of ten or more characters in both
cases (no arithmetic: x**2, 3*Rational), at a lower confidence ("Was my old password in a
breach?" and the value lines later). What it cannot see: a weak or dictionary password
("hunter2", "Summer2024"), which only a phrase rule reads.

Not a password (`made_up`): a path, URL, e-mail address or anything holding ":", "@" or "|"; a
dotted or called name (a.b.c, f(x)); an assignment or option (KEY=value, x+=1, --timeout=3600); a
ticket or counter (fix#1234), a regex class (A-Za-z0-9#?!), a file name, a hash format
(pbkdf2_sha256$600000$), a measurement (1.5ms±2%); a value that names a secret or is a
placeholder; and any value on a line that gives examples ("such as", "e.g.", "a password like",
"banned", xkcd). Each case-insensitive pattern runs lowercased where the offsets agree
(scanning.case_aligned).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.scanning import WordLed, case_aligned, lead, word_start
from router.signals.sensitivity.secret_values import (
    CIPHERTEXT,
    PLACEHOLDER,
    mentions_secret,
    value_confidence,
)

# The words, lowercase, as words: no letter, digit or "_" before or after ("pwd" not in "npwd", not
# the names password_hash or DB_PASSWORD, which the assignment and column rules read). Not "pass"
# or "pin" (a Python statement and a verb, a GPIO pin), nor words that mostly mean something else:
# "parola" (Italian "word"), "clave" ("palabras clave"), "mdp" (a Markov decision process), "psk"
# (8-PSK modulation), "cred" ("street cred").
_WORDS = (
    "password", "passwords", "passwd", "passphrase", "passphrases", "passcode", "passcodes", "pw", "pwd",
    "pswd", "creds", "credential", "credentials", "login", "log-in", "logon", "log-on", "signin",
    "sign-in", "wifi", "wi-fi", "wlan", "kennwort", "passwort", "contraseña", "contrasena", "senha",
    "mot de passe", "wachtwoord", "hasło", "haslo", "lösenord", "losenord", "salasana", "heslo", "jelszó",
    "jelszo", "şifre", "sifre",
    # more languages, and the forms a word takes there (Swedish "lösenordet", Turkish "şifreniz")
    "lösenordet", "losenordet", "şifreniz", "şifresi", "şifren", "şifrem", "şifreyi", "sifreniz", "sifresi",
    "hasła", "hasla", "hasłem", "hesla", "heslem", "salasanan", "salasanasi", "passord", "passordet",
    "adgangskode", "adgangskoden", "kodeord", "parolă", "parolei", "kata sandi", "kata laluan",
    "passwordnya", "mật khẩu", "κωδικός", "κωδικό", "κωδικού", "συνθηματικό", "zugangsdaten",
    "anmeldedaten", "zugangscode", "identifiants", "credenciales", "credenciais",
    # codes and keys that open something
    "access code", "door code", "alarm code", "entry code", "gate code", "pin code", "pincode",
    "host key", "wireless key", "network key", "security key", "wpa key", "wpa2 key",
    # logging in with a value ("I've tried logging in with ... five times"; not "the log in /var/log")
    "log in with", "logging in with", "logged in with", "sign in with", "signing in with", "signed in with",
)  # fmt: skip
# Words in scripts without case or spaces: found wherever they stand.
_BARE_WORDS = (
    "пароль", "парола", "パスワード", "パスコード", "暗証番号", "密码", "密碼", "口令", "비밀번호", "패스워드",
    "كلمة المرور", "كلمة السر", "الرقم السري", "رمز عبور", "पासवर्ड", "סיסמה", "סיסמא", "รหัสผ่าน",
)  # fmt: skip
_GATE = Gate((*_WORDS, *_BARE_WORDS))
_WORD_END = r"(?!\w)"
_LOWER_WORD = re.compile(
    "(?:" + "|".join(lead(re.escape(word[0]), r"\w") + re.escape(word[1:]) for word in _WORDS) + ")" + _WORD_END
    + "|" + "|".join(_BARE_WORDS)
)  # fmt: skip
# the lowercase words tried only where the automaton finds one (scanning.WordLed): led by a class
# of frequent first letters, the alternation was tried at nearly every position (1.1 ms on a long
# prompt that holds one of the words)
_LOWER_WORDS = WordLed(_LOWER_WORD, (*_WORDS, *_BARE_WORDS))
_WORD = re.compile(
    r"(?i)(?<!\w)(?:" + "|".join(map(re.escape, _WORDS)) + ")" + _WORD_END + "|" + "|".join(_BARE_WORDS)
)
_BEFORE, _AFTER = 60, 120  # how far from the word a value may stand, on its line
# A whole token: no blank, quote, bracket, CJK character or full-width form in it or on either side
# (a longer run is no token of 8-64, not 64-character pieces of it).
_TOKEN_CHAR = "[^\\s\"'\u201c\u201d\u2018\u2019`<>()\\[\\]{}\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]"
_ELSEWHERE_SHORTEST = 10  # a value read away from its word's line (_scrambled) is this long at least


def _token_pattern(shortest: int) -> re.Pattern[str]:
    return re.compile(f"(?<!{_TOKEN_CHAR}){_TOKEN_CHAR}{{{shortest},64}}(?!{_TOKEN_CHAR})")


_TOKEN = _token_pattern(8)
# A whole token of 10-64 characters: what _scrambled may take for a made-up value wherever it stands
_ELSEWHERE = _token_pattern(_ELSEWHERE_SHORTEST)
_TOKEN_START = re.compile(_TOKEN_CHAR + r"{1,64}\Z")  # searched in a bounded stretch before an edge
_TOKEN_REST = re.compile(_TOKEN_CHAR + "{0,64}")
# Said of examples, not of one's own (lowercase, each led by its first letter, on the lowercased
# text); a value on a line that holds one is not read. "example" in a name is none (example.com,
# db.example.org, example-app, acme_example).
_EXAMPLE_PHRASES = (
    r"such as", r"e\.g\.", r"for example", r"for instance", r"banned", r"blocklist", r"blacklist",
    r"common passwords?", r"examples?(?![-_.]\w)(?<![-_.@/]example)(?<![-_.@/]examples)", r"xkcd", r"pass(?:word|phrase)s?\s+like", r"ones?\s+like",
)  # fmt: skip
_EXAMPLES = re.compile(
    "|".join(word_start(phrase[0]) + phrase[1:] + r"(?!\w)" for phrase in _EXAMPLE_PHRASES)
)
_EXAMPLE_GATE = Gate(
    ("such as", "e.g.", "for example", "for instance", "banned", "blocklist", "blacklist", "common password",
     "example", "xkcd", "like")
)  # fmt: skip
_LINE_REACH = 300  # how far along its line an example phrase silences a value
# What a made-up value is not (see the module's docstring).
_NOT_MADE_UP = re.compile(
    r"[/\\:@|±≈]|\$.*\$|\w\$\d+\.|\w\.\w+\.\w|\w\(|\)$|^--|[\w\])|]\+?=|#\d+(?:\.\w{1,5})?$|a-z|A-Z|0-9"
    r"|\.[A-Za-z][A-Za-z0-9]{1,4}$"
)
# Only "-" or "+" between letters and digits: made up when a capital follows a small letter and
# begins no word (laF187-4kGX0, not iPhone-15, MacBook-Pro16, GitLab-CE16, Win10-Pro), digits and
# letters interleave, and no run of five small letters reads as a word ("E1045-denied",
# "WPA2-Personal", "Ubuntu-22.04"), nor does a version after it (iOS17-beta, iOS18-Beta3, -RC1)
_SCRAMBLED = re.compile(r"[a-z][A-Z](?![a-z])")
# and a digit between letters or letters between digits (not SARS-CoV-2, MySQL8-RDS, ChatGLM3-6B)
_INTERLEAVED = re.compile(r"[A-Za-z][0-9]+[A-Za-z]|[0-9][A-Za-z]+[0-9]")
_WORDLIKE = re.compile(
    r"[a-z]{5}|(?i:[-+](?:v?\d+(?:\.\d+)+|v\d+|alpha\d*|beta\d*|rc\d*|preview\d*|dev\d*)$)"
)
_ARITHMETIC = re.compile(r"\*\*|\w\^\w|\d\*[A-Z][a-z]{3,}")
_SYMBOLS = frozenset("!\"#$%&'()*/;<=>?@[\\]^`{|}~")  # ASCII punctuation less - _ . + , and :


def made_up(token: str) -> str | None:
    """The token, less trailing punctuation, when it reads as a made-up password; else None."""
    value = token.rstrip(".,;?")
    if len(value) < 8 or value[0] in "$%{<&#":
        return None
    digit = any(char.isdigit() for char in value)
    letter = any(char.isalpha() for char in value)
    symbol = any(char in _SYMBOLS for char in value.lstrip("!"))  # "!bg-blue-600": a CSS class
    if not symbol and digit and ("-" in value or "+" in value):
        symbol = (
            _SCRAMBLED.search(value) is not None
            and _INTERLEAVED.search(value) is not None
            and _WORDLIKE.search(value) is None
        )
    if not (digit and letter and symbol) or _NOT_MADE_UP.search(value):
        return None
    if mentions_secret(value) or PLACEHOLDER.match(value) or not value_confidence(value, quoted=False):
        return None
    return value


# Right before a token: the mark of ciphertext that only a key service opens (Spring Cloud
# Config's "{cipher}...", HashiCorp Vault's transit "vault:v1:..."); mark and token together must be
# ciphertext's whole shape (secret_values.CIPHERTEXT) for the token not to be a password.
_CIPHERTEXT_MARK = re.compile(r"(?:\{cipher\}|vault:v\d+:)\Z")
# An armored block of ciphertext (age's, OpenPGP's message), its header beginning a line (perhaps
# indented, as in a SOPS file), perhaps armor headers (Version:, Comment:) and a blank line, then the
# body: its lines are not a password. It ends at its END line, else at the body's first blank line,
# else _ARMOR_REACH characters on.
_ARMOR_HEADER = re.compile(r"(?m)^[ \t]*-----BEGIN (AGE ENCRYPTED FILE|PGP MESSAGE)-----\r?\n")
_ARMOR_FIELDS = re.compile(r"(?:[A-Za-z][\w-]{0,40}: [^\n]{0,200}\n){1,10}[ \t]*\r?\n")
_ARMOR_REACH = 64_000
_BLANK_LINE = re.compile(r"\n[ \t]*\r?\n")


def _armored(text: str) -> tuple[list[int], list[int]]:
    """The armored blocks' starts and ends, in order, none inside another."""
    starts: list[int] = []
    ends: list[int] = []
    if "-----BEGIN " not in text:
        return starts, ends
    for header in _ARMOR_HEADER.finditer(text):
        if ends and header.start() < ends[-1]:
            continue  # a header inside the block before: its body
        body = header.end()
        fields = _ARMOR_FIELDS.match(text, body)
        body = fields.end() if fields else body
        # a body holds no blank line: END is looked for only up to the first (so that each stretch
        # of the text is searched for one block only, however many headers it holds)
        blank = _BLANK_LINE.search(text, body, min(len(text), body + _ARMOR_REACH))
        limit = blank.start() if blank else min(len(text), body + _ARMOR_REACH)
        end_line = f"-----END {header.group(1)}-----"
        found = text.find(end_line, body, limit + len(end_line))
        end = found + len(end_line) if found >= 0 else limit
        starts.append(header.start())
        ends.append(end)
    return starts, ends


def _inside(blocks: tuple[list[int], list[int]], position: int) -> bool:
    starts, ends = blocks
    index = bisect.bisect_right(starts, position) - 1
    return index >= 0 and position < ends[index]


def _ciphertext(text: str, token: re.Match[str]) -> bool:
    """A token right after a ciphertext mark, the two ciphertext's whole shape."""
    mark = _CIPHERTEXT_MARK.search(text, max(0, token.start() - 12), token.start())
    return mark is not None and CIPHERTEXT.fullmatch(text, mark.start(), token.end()) is not None


def find_near_the_word(text: str, lowered: str) -> Iterator[Finding]:
    """Made-up passwords near a credential's word in `text`, and (less sure) elsewhere in it;
    `lowered` is text.lower() with the text's offsets. The words' reaches are merged first, so that
    each stretch of the text is read once however many words stand in it; a token found there
    counts where a word on its line reaches it. Elsewhere only tokens of ten or more characters
    in both cases are judged (judging every token of a long prompt took 1.8 ms)."""
    if not _GATE.open(lowered):
        return
    words = _LOWER_WORDS.finditer(lowered) if case_aligned(text, lowered) else _WORD.finditer(text)
    spans = [word.span() for word in words]
    if not spans:
        return
    examples = [m.start() for m in _EXAMPLES.finditer(lowered)] if _EXAMPLE_GATE.open(lowered) else []
    armored = _armored(text)
    starts = [start for start, _ in spans]
    near: set[int] = set()
    for low, high in _stretches(text, spans):
        for token in _TOKEN.finditer(text, low, high):
            value = made_up(token.group())
            if (
                value is not None
                and not _ciphertext(text, token)
                and not _inside(armored, token.start())
                and _reached(text, spans, starts, token.start(), token.end())
                and not _near_an_example(text, examples, token.start())
            ):
                near.add(token.start())
                yield Finding("secret", token.start(), token.start() + len(value), 0.7, "password")
    for token in _ELSEWHERE.finditer(text):
        whole = token.group()
        if token.start() in near or whole.islower() or whole.isupper() or whole.isalpha():
            continue  # (cheap tests first: _scrambled asks for both cases and made_up for a digit)
        if _ciphertext(text, token) or _inside(armored, token.start()):
            continue
        value = made_up(whole)
        if value is not None and _scrambled(value) and not _near_an_example(text, examples, token.start()):
            yield Finding("secret", token.start(), token.start() + len(value), 0.6, "password")


def _scrambled(value: str) -> bool:
    """A made-up value that reads as a password wherever it stands: ten or more characters, both
    cases, and no arithmetic (x**2, 2^n, 3*Rational)."""
    return (
        len(value) >= _ELSEWHERE_SHORTEST
        and any(char.isupper() for char in value)
        and any(char.islower() for char in value)
        and _ARITHMETIC.search(value) is None
    )


def _stretches(text: str, spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """The words' reaches, merged, each edge moved out to the end of a token it cuts."""
    low, high = -1, -1
    for start, end in spans:
        reach_low, reach_high = max(0, start - _BEFORE), min(len(text), end + _AFTER)
        if reach_low > high:
            if high >= 0:
                yield _whole_tokens(text, low, high)
            low = reach_low
        high = max(high, reach_high)
    yield _whole_tokens(text, low, high)


def _whole_tokens(text: str, low: int, high: int) -> tuple[int, int]:
    cut_low = 0 < low < len(text) and not text[low - 1].isspace() and not text[low].isspace()
    if cut_low and (edge := _TOKEN_START.search(text, max(0, low - 64), low)) is not None:
        low = edge.start()
    cut_high = 0 < high < len(text) and not text[high - 1].isspace() and not text[high].isspace()
    if cut_high and (rest := _TOKEN_REST.match(text, high)) is not None:
        high = rest.end()
    return low, high


def _reached(text: str, spans: list[tuple[int, int]], starts: list[int], start: int, end: int) -> bool:
    """Whether text[start:end] reaches into a word's reach (60 characters before it, 120 after)
    with no line break between them."""
    for index in range(
        bisect.bisect_left(starts, start - _AFTER - 32), len(spans)
    ):  # no word is longer than 32
        word_start_at, word_end = spans[index]
        if word_start_at >= end + _BEFORE:
            return False
        if end > word_start_at - _BEFORE and start < word_end + _AFTER:
            low, high = (word_end, start) if word_end <= start else (end, word_start_at)
            if "\n" not in text[low:high]:
                return True
    return False


def _near_an_example(text: str, examples: list[int], position: int) -> bool:
    """Whether an example phrase stands on the line of `position`, within _LINE_REACH of it."""
    at = bisect.bisect_left(examples, position - _LINE_REACH)
    while at < len(examples) and examples[at] < position + _LINE_REACH:
        low, high = sorted((examples[at], position))
        if "\n" not in text[low:high]:
            return True
        at += 1
    return False
