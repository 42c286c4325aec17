"""A random credential that words around it name: "API Key: ...", "my secret key is ...", "the
client secret, ..., was rotated", "Set the sandbox API token to ...", "use ... as the auth token",
"der API-Schlüssel lautet ...", "APIキーは ... です".

The assignment rules (router.signals.sensitivity.secrets) read a key written as one name
(api_key=..., "token": ...); people also name a credential in words, before its value in the same
sentence or just after it. Here the value comes first: 20 characters or more of letters, digits and
+ / = _ -, holding letters and digits, of Shannon entropy 3.5 bits or more per character, passing the
same placeholder, digest, path and example checks as an assigned value
(secret_values.value_confidence), holding no UUID (request, trace and order ids are written so) and,
unless a private key is named, not a hex literal (0x...: a contract's or a wallet's address, a
transaction's hash). Then a label: in the same line and sentence, at most LOOK_BACK characters
before it, the last word naming a credential ("token", "secret", "API key", "key" after a word that
makes it a credential's (api, access, client, signing, ...) or close before the value ("my new key
..."), and the same words in some other languages); or, just after the value, "as the ... token".

A word that makes the value something about a credential rather than one keeps it out: before the
label ("page token", "public key", "idempotency key", "encrypted secret"), between the label and the
value ("token id", "key fingerprint", "secret's hash", "example"), or just after the value ("...
(commit)", "... is the checksum").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.secret_values import value_confidence

CONFIDENCE = 0.8
LOOK_BACK = 120  # characters before a value where its label is looked for
# values read in one text at most: about 60 us each, so a 4 MB body of "key <value>" pairs
# cannot hold the event loop for seconds (1,000: about 60 ms)
MAX_CANDIDATES = 1000
MAX_WORDS_BETWEEN = 10  # "the app secret for the social login integration is X"
# Credentials' words in other languages: key (Schlüssel, clave, clé, chave, chiave, sleutel, klucz,
# ключ, キー, 密钥/秘钥, 키), token (jeton, トークン, токен, 令牌, 토큰), secret (secreto, segreto).
_FOREIGN = (
    "schlüssel", "schluessel", "clave", "clé", "chave", "chiave", "sleutel", "klucz", "ключ",
    "jeton", "токен", "secreto", "segreto",
)  # fmt: skip
_CJK = ("キー", "密钥", "秘钥", "키", "トークン", "令牌", "토큰")  # written without spaces: "APIキーは"
_GATE = Gate(("key", "token", "secret", "bearer", *_FOREIGN, *_CJK))
# not part of a longer word, a crypt string or variable ($1$salt$hash, $TOKEN), a domain or a path,
# nor cut short where it was shown ("eyJhbGciOi...", "a1b2c3…")
_VALUE_MAX = 200
_VALUE = re.compile(
    rf"(?<![\w+/.@:$%#-])[A-Za-z0-9+/_-]{{20,{_VALUE_MAX}}}={{0,2}}(?![\w+/=$-]|\.\w|\.\.|\u2026)"
)
_AFTER_REACH = 120  # characters before a label where "X as the token"'s value may start
_LABEL = re.compile(
    # a word of its own or a part of a name (api_key, --token, X-Api-Key, _authToken), not of a word
    # ("Schlüsselwort", "autoclave", "キーワード", "키보드": keyword, keyboard)
    r"(?<![^\W_])(?:(?P<head>api[ _-]?keys?|apikeys?|keys?|tokens?|authtoken|secrets?|bearer)|"
    + "|".join(re.escape(word) for word in _FOREIGN)
    + r")(?![^\W_])|(?:"
    + "|".join(re.escape(word) for word in _CJK)
    + r")(?![\u30a0-\u30ff\uac00-\ud7af])"  # not inside a longer katakana or hangul word
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # api_key_id: "api", "key", "id"
_WORD_BEFORE = re.compile(r"([^\W_]+)[ _-]+\Z")
_NAME_BEFORE = re.compile(r"(?:[^\W_]+[_-])+\Z")  # the parts of a name the label ends
# a line that holds only "value:" (Kubernetes' env entries, "- name: API_TOKEN" on the line before)
_VALUE_KEY = re.compile(r"[ \t-]*[\"']?value[\"']?[ \t]*[:=][ \t]*[\"']?")
# the line before a key's line that opens its section: "cache:", "  stripe:", "[redis]"
_SECTION = re.compile(r"(?:^|\n)[ \t-]*\[?[\w.-]*?([^\W_]+)[\]:]?[ \t]*\Z")
# a sentence's or a line's end: the label is looked for after the last one before the value
_BOUNDARY = re.compile(r"[.!?](?:\s|$)|\n")
# "use X as the auth token", "X is my api key"
_LABEL_AFTER = re.compile(
    r"[\"')\]]?[ \t]+(?:(?:as|is)[ \t]+|\([ \t]*)(?:(?:the|my|our|your|an?|new)[ \t]+)?(?:[\w-]+[ \t]+){0,2}?"
    r"(?:api[ _-]?key|key|token|secret)\b"
)  # "X as the auth token", "X is my api key", "X (our bearer token)"
# The words before "key" that make it a credential's.
_KEY_KINDS = frozenset(
    ("api", "access", "secret", "auth", "authentication", "authorization", "client", "app",
     "application", "signing", "private", "encryption", "hmac", "master", "admin", "service",
     "integration", "developer", "subscription", "account", "webhook", "session", "shared",
     "consumer", "bot", "server", "sandbox", "production", "prod", "staging", "live", "license",
     "secret's")
)  # fmt: skip
# The word before the label that makes it not a credential's.
_NOT_CREDENTIAL = frozenset(
    ("page", "pagination", "continuation", "next", "sync", "cursor", "cancellation", "idempotency",
     "request", "trace", "correlation", "csrf", "xsrf", "public", "publishable", "top", "trade",
     "open", "design", "input", "output", "max", "special", "end", "start", "eos", "bos", "pad",
     "unk", "mask", "sep", "cls", "encrypted", "hashed", "sealed", "masked", "redacted", "sort",
     "primary", "foreign", "partition", "cache", "row", "object", "dedup", "deduplication",
     "routing", "lookup", "hash", "composite", "unique", "registry", "map", "dictionary", "dict",
     "music", "piano", "answer", "ssh", "gpg", "pgp", "host", "wrapped", "example", "sample",
     "dummy", "fake", "mock", "old", "previous", "revoked", "expired", "rotated", "deleted",
     "rsa", "dsa", "ecdsa", "ed25519", "elgamal", "not", "non", "no",
     "palabra", "mot", "parola", "palavra")  # "palabra clave", "mot-clé": a keyword
)  # fmt: skip
_OWNED = frozenset(("my", "our", "your", "new", "his", "her", "their", "this"))
_SET_TO = re.compile(r"[\"'`]?[ \t]*(?:[:=|]|->|=>|\u2192|(?:is|was|es|ist|est|é|è)\b)")
# Words between the label and the value, or just after it, that make the value something about the
# credential rather than the credential.
_ABOUT = frozenset(
    ("id", "ids", "name", "names", "hash", "hashes", "digest", "fingerprint", "checksum", "sha",
     "sha1", "sha256", "md5", "length", "count", "counts", "type", "url", "uri", "path", "file",
     "prefix", "suffix", "format", "version", "expiry", "expires", "header", "endpoint", "limit",
     "limits", "usage", "ttl", "index", "ref", "reference", "arn", "alias", "label", "number",
     "example", "examples", "placeholder", "pattern", "regex", "field", "column", "variable", "env",
     "address", "contract", "wallet", "tx", "transaction", "signature", "encrypted", "hashed",
     "masked", "redacted", "ciphertext", "commit", "uuid", "nonce", "fake", "dummy", "sample",
     "mock", "like", "looks", "kid", "jti", "public", "safe", "expose", "exposed")
)  # fmt: skip
_AFTER_WORDS = 3  # words after the value read for _ABOUT
_CLAUSE_END = re.compile(r"\n|[ \t]--?\w|[=,;|&\"'`]")
_HEX_LITERAL = re.compile(r"0[xX][0-9a-fA-F]+")
# a ciphertext's wrapper just before the value: jasypt's ENC(...), SOPS' ENC[...], Spring Cloud
# Config's {cipher}, Vault transit's vault:v1:
_ENCRYPTED_BEFORE = re.compile(r"(?:enc[(\[]|\{cipher\}|vault:v\d+:)\Z")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def find_labelled(text: str, lowered: str) -> Iterator[Finding]:
    """`lowered` is text.lower() with the text's offsets."""
    words = _GATE.found(lowered)
    if not words:
        return
    for read, match in enumerate(_candidates(text, lowered, words)):
        if read == MAX_CANDIDATES:
            return  # a dump of values beside credential words: the other rules still read it
        start, stop = match.span()
        value = match.group()
        if (
            not _mixed(value)
            or _about_after(lowered, stop)
            or _ENCRYPTED_BEFORE.search(lowered, max(0, start - 12), start)
        ):
            continue
        window, parent = _window(lowered, start)
        if not (_labelled_before(window, parent) or _labelled_after(lowered, stop)):
            continue
        if _random_credential(value, "private" in window):  # the costly check last
            yield Finding("secret", start, stop, CONFIDENCE, "labelled_secret")


def _candidates(text: str, lowered: str, words: frozenset[str]) -> Iterator[re.Match[str]]:
    """The values near a gate word: up to LOOK_BACK characters after it (a value it may name) or
    _AFTER_REACH before it ("X as the token"). Only there is the text read for values, which is
    most of this rule's cost on a long text."""
    regions = []
    for word in words:
        at = lowered.find(word)
        while at >= 0:
            regions.append((max(0, at - _AFTER_REACH), at + len(word) + LOOK_BACK + _VALUE_MAX))
            at = lowered.find(word, at + 1)
    regions.sort()
    merged: list[list[int]] = []
    for start, stop in regions:  # overlapping regions read once ("key key key ...": one region)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    for start, stop in merged:
        for match in _VALUE.finditer(text, start, stop):
            if match.end() < stop or stop >= len(text):  # not cut short by the region's end
                yield match


def _window(lowered: str, start: int) -> tuple[str, str]:
    """The text before a value in its line and sentence, at most LOOK_BACK characters; and where
    that is its line's start and the line before opens a section ("cache:", "[redis]"), the
    section's last word: the word before a label that a key's name alone would not show
    ("cache:\n  key: ...")."""
    window = lowered[max(0, start - LOOK_BACK) : start]
    ends = list(_BOUNDARY.finditer(window))
    if not ends:
        return window, ""
    cut = ends[-1]
    if cut.group() == "\n" and _VALUE_KEY.fullmatch(window, cut.end()) and len(ends) > 1:
        return window[ends[-2].end() : cut.start()], ""  # its name is the line before's
    parent = ""
    if cut.group() == "\n":
        line_start = start - len(window) + cut.start()
        above = _SECTION.search(lowered, max(0, line_start - 80), line_start)
        parent = above.group(1) if above else ""
    return window[cut.end() :], parent


def _labelled_before(window: str, parent: str) -> bool:
    labels = list(_LABEL.finditer(window))
    if not labels:
        return False
    label = labels[-1]
    between = _WORD.findall(window[label.end() :])
    if len(between) > MAX_WORDS_BETWEEN or not _ABOUT.isdisjoint(between):
        return False
    head = label.group("head")
    before = _WORD_BEFORE.search(window, 0, label.start())
    word = before.group(1) if before else (parent if not window[: label.start()].strip() else "")
    name = _NAME_BEFORE.search(window, 0, label.start())  # PUBLIC_VAPID_KEY: every part of the name
    if word in _NOT_CREDENTIAL or (name and not _NOT_CREDENTIAL.isdisjoint(re.split(r"[_-]", name.group()))):
        return False
    if head is None:  # another language's word ("palabra clave", "mot-clé": a keyword, above)
        return True
    if head.rstrip("s") != "key":
        return True  # token, secret, api key
    # "key" alone names a credential when it is someone's or new ("my new key X", "our key: X")
    # or set to the value ("key: X", "the key is X"), not "the key X sorts first" (a map's)
    if word in _KEY_KINDS:
        return True
    # ... and nothing just before it says whose key it is ("cache restored from key: ...")
    near = _WORD.findall(window[: label.start()])[-3:]
    return (
        len(between) <= 2
        and _NOT_CREDENTIAL.isdisjoint(near)
        and (word in _OWNED or _SET_TO.match(window, label.end()) is not None)
    )


def _labelled_after(lowered: str, stop: int) -> bool:
    after = _LABEL_AFTER.match(lowered, stop)
    if after is None:
        return False
    words = _WORD.findall(after.group())
    return _NOT_CREDENTIAL.isdisjoint(words) and _ABOUT.isdisjoint(words)


def _about_after(lowered: str, stop: int) -> bool:
    """Whether the words right after the value, in its clause, say what it is about ("... (commit)",
    "... is the checksum"); not the next field's ("--name build-agent", "key=... ip=...")."""
    clause = _CLAUSE_END.split(lowered[stop : stop + 40], maxsplit=1)[0]
    return not _ABOUT.isdisjoint(_WORD.findall(clause)[:_AFTER_WORDS])


def _mixed(value: str) -> bool:
    """Letters and digits both, and no UUID in it: the cheap part of _random_credential."""
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and not _UUID.search(value)


def _random_credential(value: str, private: bool) -> bool:
    """The rest of the value's checks, for a value _mixed passed. `private`: a private key is named,
    which may be written as a hex literal."""
    return (
        (private or not _HEX_LITERAL.fullmatch(value))
        and "insecure" not in value.lower()  # Django's "django-insecure-...": a development key, it says
        and (
            (confidence := value_confidence(value, quoted=False)) >= 0.9
            # 32 hex digits or more: random, though a short run's own entropy may read under 3.5
            or (confidence >= 0.75 and len(value) >= 32 and _HEX.fullmatch(value) is not None)
        )
    )
