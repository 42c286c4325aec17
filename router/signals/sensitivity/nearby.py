"""A made-up password on the line of a word that names credentials, however the sentence is put.

The phrase rules (router.signals.sensitivity.prose) read a password where a sentence says it is one
("the password is ...", "login NAME / ..."); people also write "pw for the NAS, Xk7#pQ2!wz, don't
share", "Hola, te paso la clave: ... y el usuario ...", or a line of a ticket. Here the value is
judged instead of the phrasing: a token of 8-64 characters with a letter, a digit and a symbol
other than - _ . (made up, not a word, a version or a name), within 60 characters before or 120
after a credential's word (password, pw, creds, login, Wi-Fi, and the noun in other languages) on
the same line. What it cannot see: a weak or dictionary password ("hunter2", "Summer2024"), which
only a phrase rule reads.

Not a password: a path, URL, e-mail address or anything holding ":" or "@"; a dotted or called
name (a.b.c, f(x)); a KEY=value pair (the assignment rules read those); a value that names a
secret ("Password2Reset") or is a placeholder; and any value on a line that gives examples ("such
as", "e.g.", "passwords like", "banned", xkcd). Each case-insensitive pattern runs lowercased where
the offsets agree (scanning.case_aligned).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.scanning import case_aligned, lead, word_start
from router.signals.sensitivity.secret_values import PLACEHOLDER, mentions_secret, value_confidence

# The words, lowercase, as words: no letter, digit or "_" before or after ("pwd" not in "npwd", not
# the names password_hash or DB_PASSWORD, which the assignment and column rules read). Not "pass"
# or "pin": a Python statement and a verb, a GPIO pin and "pin the version".
_WORDS = (
    "password", "passwords", "passwd", "passphrase", "passphrases", "passcode", "passcodes", "pw", "pwd",
    "pswd", "cred", "creds", "credential", "credentials", "login", "log-in", "logon", "log-on", "signin",
    "sign-in", "wifi", "wi-fi", "wlan", "psk", "kennwort", "passwort", "contraseña", "contrasena", "clave",
    "senha", "mot de passe", "mdp", "wachtwoord", "hasło", "haslo", "lösenord", "losenord", "salasana",
    "heslo", "jelszó", "jelszo", "parola", "şifre", "sifre",
)  # fmt: skip
# Words in scripts without case or spaces: found wherever they stand.
_BARE_WORDS = ("пароль", "パスワード", "密码", "密碼", "비밀번호")
_GATE = Gate((*_WORDS, *_BARE_WORDS))
_WORD_END = r"(?!\w)"
_LOWER_WORD = re.compile(
    "(?:" + "|".join(lead(re.escape(word[0]), r"\w") + re.escape(word[1:]) for word in _WORDS) + ")" + _WORD_END
    + "|" + "|".join(_BARE_WORDS)
)  # fmt: skip
_WORD = re.compile(
    r"(?i)(?<!\w)(?:" + "|".join(map(re.escape, _WORDS)) + ")" + _WORD_END + "|" + "|".join(_BARE_WORDS)
)
_BEFORE, _AFTER = 60, 120  # how far from the word a value may stand, on its line
_TOKEN = re.compile(r"[^\s\"'\u201c\u201d\u2018\u2019`<>()\[\]{}]{8,64}")
_TOKEN_END = re.compile(r"\S+\Z")  # searched in a bounded stretch: the token an edge cuts
_TOKEN_REST = re.compile(r"\S*")
# Said of examples, not of one's own (lowercase, each led by its first letter, on the lowercased text)
_EXAMPLE_PHRASES = (
    r"such as", r"e\.g\.", r"for example", r"for instance", r"banned", r"blocklist", r"blacklist",
    r"common passwords?", r"examples?", r"xkcd", r"passwords?\s+like", r"passphrases?\s+like",
)  # fmt: skip
_EXAMPLES = re.compile(
    "|".join(word_start(phrase[0]) + phrase[1:] + r"(?!\w)" for phrase in _EXAMPLE_PHRASES)
)
_EXAMPLE_GATE = Gate(
    (
        "such as",
        "e.g.",
        "for example",
        "for instance",
        "banned",
        "blocklist",
        "blacklist",
        "common password",
        "example",
        "xkcd",
        "s like",
    )
)
_DOTTED_OR_CALLED = re.compile(r"\w\.\w+\.\w|\w\(|\)$")
_KEY_VALUE = re.compile(r"[A-Za-z_][\w.]*=")


def made_up(token: str) -> str | None:
    """The token, less trailing punctuation, when it reads as a made-up password; else None."""
    value = token.rstrip(".,;?")
    if len(value) < 8 or value[0] in "$%{<&#" or any(mark in value for mark in ("/", "\\", ":", "@")):
        return None
    digit = any(char.isdigit() for char in value)
    letter = any(char.isalpha() for char in value)
    symbol = any(not char.isalnum() and char not in "-_." for char in value)
    if not (digit and letter and symbol) or _DOTTED_OR_CALLED.search(value) or _KEY_VALUE.match(value):
        return None
    if mentions_secret(value) or PLACEHOLDER.match(value) or not value_confidence(value, quoted=False):
        return None
    return value


def find_near_the_word(text: str, lowered: str) -> Iterator[Finding]:
    """Made-up passwords near a credential's word in `text`; `lowered` is text.lower() with the
    text's offsets. Windows of words close together overlap: each part of the text is read once."""
    if not _GATE.open(lowered):
        return
    words = _LOWER_WORD.finditer(lowered) if case_aligned(text, lowered) else _WORD.finditer(text)
    examples = [m.start() for m in _EXAMPLES.finditer(lowered)] if _EXAMPLE_GATE.open(lowered) else []
    read = 0  # where the windows read so far end
    for word in words:
        line_start = text.rfind("\n", max(0, word.start() - _BEFORE), word.start()) + 1
        line_end = text.find("\n", word.end(), word.end() + _AFTER)
        start = max(line_start, word.start() - _BEFORE)
        end = min(len(text), word.end() + _AFTER) if line_end < 0 else line_end
        at = bisect.bisect_left(examples, start)
        if at < len(examples) and examples[at] < end:
            continue  # "passwords such as ...": examples, not one
        if start < read:
            start = read
        elif (edge := _TOKEN_END.search(text, max(line_start, start - 64), start)) is not None:
            start = edge.start()  # whole tokens only: back to the start of one the edge cuts
        if (rest := _TOKEN_REST.match(text, end, end + 64)) is not None:
            end = rest.end()  # and on to the end of one it cuts
        for token in _TOKEN.finditer(text, start, end):
            value = made_up(token.group())
            if value is not None:
                yield Finding("secret", token.start(), token.start() + len(value), 0.7, "password")
        read = max(read, end)
