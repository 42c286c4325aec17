"""Detects credentials in prompt text: provider API keys, tokens, private keys, passwords in config.

Offline and regex-only. A known key format (AWS, GitHub, Slack, Stripe, Google, OpenAI, Anthropic,
JWT, PEM private keys) is reported on shape alone; free-form values (password=..., TOKEN=...) only
when they look like real secrets rather than placeholders, variable names or type annotations, so
ordinary code does not trip the privacy gate. It must never report the secret's value anywhere but
as offsets.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

from router.signals.sensitivity.connections import find_in_connections, same_as_user
from router.signals.sensitivity.credential_files import find_in_credential_files
from router.signals.sensitivity.device_configs import find_in_device_configs
from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.labelled import find_labelled
from router.signals.sensitivity.nearby import find_near_the_word
from router.signals.sensitivity.programs import find_in_programs
from router.signals.sensitivity.prose import find_in_prose
from router.signals.sensitivity.scanning import word_start
from router.signals.sensitivity.secret_values import (
    MEASUREMENT,
    PASSWORD_WORDS,
    PLACEHOLDER,
    REFERENCE_AFTER,
    REFERENCE_BEFORE,
    REFERENCE_SUFFIXES,
    bracketed_at,
    frame_without_key,
    last_name_part,
    mentions_secret,
    shannon_entropy,
    shown_not_secret,
    strong,
    value_confidence,
)
from router.signals.sensitivity.sql_rows import find_in_sql_rows

# Substrings (of the lowercased text) that each pattern needs; a prompt holding none of them skips
# the pattern entirely, and most chat prompts hold none of any.
_ASSIGNED_GATE = Gate(("pass", "pw", "psk", "secret", "token", "key", "auth", "credential"))
# Only Stripe's key patterns, which begin with [sr] (frequent letters), are gated by hints. Every
# other known format begins with a literal, its \b written after it (scanning.word_start), which
# `re` finds as fast as a substring test finds a hint, so those run on every text; each of their
# matches holds, lowercased, a hint of its kind (AKIA holds akia, eyJ eyj), so gating them by such
# hints would find the same.
_KNOWN_GATES = {"stripe_key": Gate(("k_live_", "k_test_"))}

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
        # the header, and the rest of its line: _key_block reads on to the block's end
        re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[^\n]*"),
        0.99,
    ),
)

# Matched against the lowercased text: a case-sensitive alternation is several times faster.
_KEY_WORD = re.compile(
    r"password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth[_-]?key"
    r"|private[_-]?key|credential|signing[_-]?key|encryption[_-]?key"
    # DB_PASS=, RABBITMQ_DEFAULT_PASS=: a key that ends in "pass", no letter before or after it (the
    # lookbehind written after the word, so that every alternative begins with a letter `re` skips to)
    r"|pass(?<![a-z]pass)(?![a-z])"
    # PW=, db_pw:, "ID:admin PW:...": the common short form, no letter before or after it; since
    # "pw" also names pulse widths, page widths and picowatts, it must end the key (not PW_TEST_...
    # or PW-1) and its value must not be a measurement (MEASUREMENT)
    r"|pw(?<![a-z]pw)(?![a-z])"
    # psk="...": a Wi-Fi pre-shared key (wpa_supplicant), no letter before or after it
    r"|psk(?<![a-z]psk)(?![a-z])"
)
# _spaced's: the secret's word (in the lowercased text), and after it the rest of the key, blanks
# and a quoted value ending the statement or followed by a blank.
_SPACED_WORDS = ("password", "passwd", "passphrase", "secret", "pwd")
_SPACED_WORD = re.compile("|".join(_SPACED_WORDS))
_SPACED_GATE = Gate(_SPACED_WORDS)
_SPACED_VALUE = re.compile(r"[\w-]{0,20}[ \t]+[\"']([^\"'\n]{4,200})[\"'](?=[ \t;,)]|$)", re.MULTILINE)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# A declared type between a name and its "=": password: string = ..., val pw: String? = ...,
# password: Optional[str] = ..., let pw: &str = ..., Const PW As String = ..., const pw string = ...
# (TypeScript, Kotlin, Swift, Python, Rust, VB, Go)
_TYPED = (
    r"[ \t]*:[ \t]*&?(?:'\w+[ \t]+)?[A-Za-z_][\w.]*(?:<[^<>\n]{0,60}>|\[[^\[\]\n]{0,60}\])?\??(?:[ \t]+(?==(?![=>]))|(?==[ \t\"'`]))"
    r"|[ \t]+[Aa]s[ \t]+[A-Za-z_]\w*[ \t]*(?==(?![=>]))|[ \t]+(?:string|\[\]byte)[ \t]*(?==(?![=>]))"
)
_TYPED_AT = re.compile(_TYPED)
# From the end of the key word: rest of the key, perhaps a declared type, then = : => := and the
# value, quoted or bare.
# A quoted key and a quoted value as a call's first two arguments count as an assignment too:
# define('DB_PASSWORD', '...'), setenv("API_TOKEN", "..."), config.set('secret', '...'); the key
# must be the whole first argument and end in the secret's word (not "tokenizers", "token_type").
# The rest of a key is read for at most 100 characters: from every key word in a long run of key
# characters ("tokentoken...") an unbounded read made the scan quadratic.
_ASSIGNMENT = re.compile(
    r"(?P<rest>[A-Za-z0-9_.-]{0,100})"
    "(?P<typed>" + _TYPED + ")?"
    r"(?:[\"']?\s*(?:=>|:=|=|:)|[\"']\s*(?P<comma>,)(?=\s*[\"'][^\s\"']{4,200}[\"']))"
    # the value on the key's line ("DB_PASSWORD=" and a line break: empty, not the next line's
    # DB_NAME=...), but a quoted value or a call's second argument may follow a break
    r"(?:\s*(?=[\"']|N')|[ \t]*)"
    # a quoted value may carry T-SQL's N (Unicode) prefix: PASSWORD = N'...', @rmtpassword = N'...'
    r"(?:\"(?P<double>[^\"\n]{4,200})\"|N?'(?P<single>[^'\n]{4,200})'|(?P<bare>[^\s\"',;)}\]]{4,200}))"
)


def _known(text: str, lowered: str) -> Iterator[Finding]:
    hinted = {detail: gate.open(lowered) for detail, gate in _KNOWN_GATES.items()}
    for detail, pattern, confidence in _KNOWN:
        if not hinted.get(detail, True):
            continue
        for match in pattern.finditer(text):
            if detail == "private_key":
                block_end = _key_block_end(text, match)
                end = match.end() if block_end is None else block_end
                if not frame_without_key(text, match.start(), end, complete=block_end is not None):
                    yield Finding("secret", match.start(), end, confidence, detail)
                continue
            value = match.group(0)
            if "EXAMPLE" in value.upper() or "xxxx" in value.lower() or shannon_entropy(value) < 3.0:
                continue  # documentation examples (AKIAIOSFODNN7EXAMPLE, ghp_xxxx...) are nobody's secret
            if shown_not_secret(value) or PLACEHOLDER.match(_AFTER_PREFIX.split(value, maxsplit=1)[-1]):
                continue  # xoxb-your-token, sk-...: the format's prefix before a placeholder
            yield Finding("secret", match.start(), match.end(), confidence, detail)
            if detail == "aws_access_key":
                yield from _aws_secret_near(text, match.start(), match.end())


# An AWS secret access key is 40 characters of base64's alphabet; its access key ID is written
# beside it, and alone it is the part that matters ("my key is AKIA... and the secret key is ...",
# which a trial sent out in clear under `redact`).
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_REACH = 300  # characters around the ID where its secret is looked for


def _aws_secret_near(text: str, start: int, end: int) -> Iterator[Finding]:
    for match in _AWS_SECRET.finditer(text, max(0, start - _AWS_REACH), end + _AWS_REACH):
        value = match.group(0)
        mixed = any(c.isupper() for c in value) and any(c.islower() for c in value)
        if (
            mixed
            and any(c.isdigit() for c in value)
            and not shown_not_secret(value)
            and "EXAMPLE" not in value
        ):
            yield Finding("secret", match.start(), match.end(), 0.9, "aws_secret_key")


# A private key's block ends at its END line, read at most 12,000 characters on (a PGP block of a
# 4096-bit key is about 7,000); without one, the finding is the header's line (a key cut short).
_KEY_END = re.compile(r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
_KEY_BLOCK = 12_000


def _key_block_end(text: str, header: re.Match[str]) -> int | None:
    """Where the block whose header `header` matched ends, after its END line; None without one."""
    found = _KEY_END.search(text, header.end(), header.end() + _KEY_BLOCK)
    return found.end() if found else None


_AFTER_PREFIX = re.compile(r"[-_]")  # a token's prefix ends at its first separator (xoxb-, ghp_)


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
    value = match.group("double") or match.group("single") or ""
    return strong(value) and not mentions_secret(value)


def _spaced(text: str, lowered: str) -> Iterator[Finding]:
    """A secret-named key, blanks and a quoted value, with no "=" or ":" between them: Gradle's
    storePassword '...', Apache's AuthLDAPBindPassword "...", fetchmail's password "...", rclone's
    secret_access_key '...'. The key begins with a letter or "_" after no word character or dot."""
    if not _SPACED_GATE.open(lowered):
        return
    for hit in _SPACED_WORD.finditer(lowered):
        start = hit.start()
        while start > hit.start() - 40 and start > 0 and text[start - 1] in _KEY_CHARS:
            start -= 1
        if (start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.")) or not (
            text[start].isalpha() or text[start] == "_"
        ):
            continue
        match = _SPACED_VALUE.match(text, hit.end())
        if match is None:
            continue
        value = match.group(1)
        # a key that begins its line and ends in "password" or "passphrase": its quoted value is one,
        # whatever it looks like (AuthLDAPBindPassword "hunter22", storePassword 'hunter22'); elsewhere
        # the word may be prose or a command (the password "Settings" page, sudo passwd 'appuser',
        # Join-Path $PWD "reports") and a secret's key may name one (kubectl get secret 'db-creds-v2')
        keyed = hit.group() in ("password", "passphrase") and _begins_line(text, start)
        if (
            " " in value
            or "/" in value
            or not (strong(value) or keyed)
            or mentions_secret(value)
            or PLACEHOLDER.match(value)
        ):
            continue  # kubectl get secret 'db-creds-v2', vault kv get secret 'prod/db2': a name, a path
        if value_confidence(value, quoted=keyed):
            yield Finding("secret", match.start(1), match.end(1), 0.8, "password")


# Where a bare value is a literal by the syntax, not a name in code: a shell or env file's
# NAME=value (the name in capitals, "=" with no blank, at a line's start perhaps after a prompt,
# export or set, or after docker's -e or --env, or inside systemd's Environment="...":
# DB_PASSWORD=hunter22, PGPASSWORD=... pg_dump ..., -e POSTGRES_PASSWORD=...), a properties file's
# dotted key at a line's start (spring.datasource.password=...), a YAML mapping's plain scalar on
# its own line or a list item's, in a text with no code (password: hunter22), or an INI file's
# key = value under a [section] header with only keys, comments and blank lines between. There a
# word a person chose is a password like any other; in code an unquoted word is a variable's name
# and must look made up. The key must end in a password's word (not "pass" or "pw": render_pass,
# RENDER_PASS=deferred). What comes before a key is read at most _LOOK_BACK characters back, and
# what concerns the whole text (code in it, INI sections) once per text (_Layout), so that a text
# of many keys costs linear time.
_LITERAL_WORDS = frozenset(PASSWORD_WORDS)
_LOOK_BACK = 40
_ENV_KEY_BEFORE = re.compile(
    r"(?:^[ \t]*(?:[$>#%][ \t]*)?(?:(?:export|set|SET|ENV)[ \t]+)?|(?:^|[ \t])(?:-e[ \t]+|--env[ \t=])"
    r"|Environment=\")\Z"
)
_PROPERTIES_KEY = re.compile(r"[ \t]*[A-Za-z][\w-]*(?:\.[\w-]+)+\Z")
_PLAIN_SCALAR = re.compile(r"[^\s\[\](){}<>]+")
# not a literal: a type's name (SecretStr, HttpUrl), a member (args.pw), a camelCase name (pwInput)
_NOT_LITERAL = re.compile(r"(?:[A-Z][a-z]+){2,}|[A-Za-z_]\w*\.[A-Za-z_][\w.]*|[a-z]+[A-Z][A-Za-z]*")
_INI_SECTION = re.compile(r"^[ \t]*\[[\w .:-]+\][ \t]*$")
_INI_LINE = re.compile(r"[ \t]*(?:[#;].*|[\w.-]+[ \t]*[=:].*)?")
# What code holds and a YAML file does not: a line ending in ";" or "{" or beginning with "}", an
# arrow, a line led by a declaration's or a statement's keyword (a YAML flow mapping such as
# resources: {} is none of them)
_CODE_MARK = re.compile(
    r"=>|[;{][ \t]*$|^[ \t]*(?:\}|(?:function|const|let|var|import|export|def|return|class)\b)", re.MULTILINE
)


def _line_start(text: str, position: int) -> int | None:
    """Where the line holding `position` begins, if within _LOOK_BACK characters; else None."""
    line_start = text.rfind("\n", max(0, position - _LOOK_BACK), position) + 1
    return line_start if line_start > 0 or position <= _LOOK_BACK else None


def _begins_line(text: str, position: int) -> bool:
    """Whether only blanks stand between the line's start and `position` (read a bounded stretch back)."""
    line_start = _line_start(text, position)
    return line_start is not None and not text[line_start:position].strip(" \t")


class _Layout:
    """What a text's lines are, read once per text and only when a key needs it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._code: bool | None = None
        self._ini: list[tuple[int, int]] | None = None

    @property
    def code(self) -> bool:
        if self._code is None:
            self._code = _CODE_MARK.search(self.text) is not None
        return self._code

    def in_ini_section(self, line_start: int) -> bool:
        """Whether the line at line_start is in an INI section: after a [section] header, with only
        key lines, comments and blank lines from the header to it."""
        if self._ini is None:
            self._ini = []
            position, section = 0, -1
            for line in self.text.splitlines(keepends=True):
                if _INI_SECTION.match(line):
                    if section >= 0:
                        self._ini.append((section, position))
                    section = position + len(line)
                elif section >= 0 and not _INI_LINE.fullmatch(line.rstrip("\r\n")):
                    self._ini.append((section, position))
                    section = -1
                position += len(line)
            if section >= 0:
                self._ini.append((section, position + 1))
        # the spans are in order and apart: the one that may hold line_start is the last to begin
        # at or before it (a bisection, so that many sections and keys cost no more than their count)
        index = bisect.bisect_right(self._ini, (line_start, len(self.text) + 2)) - 1
        return index >= 0 and self._ini[index][0] <= line_start < self._ini[index][1]


def _literal_position(layout: _Layout, key_start: int, key_end: int, word: str, match: re.Match[str]) -> bool:
    """Whether the bare value after the key at text[key_start:key_end] is a literal (above)."""
    text = layout.text
    if word not in _LITERAL_WORDS or match.group("rest") or match.group("typed") is not None:
        return False
    value = match.group("bare")
    after = text[match.end("bare") : match.end("bare") + 1]
    found_start = _line_start(text, key_start)
    at_line_start = found_start is not None
    line_start = found_start if found_start is not None else key_start - _LOOK_BACK
    before = text[line_start:key_start]
    joint = text[key_end : match.start("bare")]
    if joint == "=" and text[key_start:key_end].isupper():
        # a blank or the line's end after it (PASSWORD=pw; is a statement)
        found = _ENV_KEY_BEFORE.search(before)
        return (
            after in ("", "\r", "\n", " ", "\t", '"')
            and found is not None
            and (at_line_start or found.group().startswith((" ", "\t", "-", "E")))
        )
    if after not in ("", "\r", "\n") or not at_line_start:
        return False  # the rest end their line with the value, and begin it with the key
    if joint == "=" and _PROPERTIES_KEY.match(text, line_start, key_end) is not None:
        return _NOT_LITERAL.fullmatch(value) is None  # a properties line (code writes a.password = value)
    if not _PLAIN_SCALAR.fullmatch(value) or _NOT_LITERAL.fullmatch(value):
        return False  # password: Annotated[str, ...], password: SecretStr, password: pwInput
    own_line = _begins_line(text, key_start)
    if joint.startswith(":") and joint[1:] and not joint[1:].strip():  # "key: value", YAML's mapping
        title = text[key_start:key_end].istitle()  # "- Password: changed": a checklist's line
        return (own_line or before.strip() == "-") and not title and not layout.code
    return own_line and joint.strip() == "=" and layout.in_ini_section(line_start)


def _named_otherwise(text: str, hit: re.Match[str], match: re.Match[str]) -> bool:
    """Whether the key word at `hit` is not a secret's key: its name's last word after it or before
    it says the value is derived or kept otherwise (token_hash, hashed_secret; REFERENCE_AFTER,
    REFERENCE_BEFORE), a Helm chart's existingSecret (the name of a Kubernetes Secret), the shell's
    $PWD (the working directory), or the word is inside an AWS ARN (arn:aws:secretsmanager:...:
    secret:prod/db, the secret's name)."""
    rest = match.group("rest")
    if rest.lower().endswith(REFERENCE_SUFFIXES) or last_name_part(rest) in REFERENCE_AFTER:
        return True  # where it is kept (password_file, TOKEN_PATH) or what derives from it
    before = last_name_part(text[_key_start(text, hit.start()) : hit.start()])
    if before in REFERENCE_BEFORE:
        return True
    if (before == "existing" and hit.group() == "secret") or (
        hit.group() == "pwd" and text[hit.start() - 1 : hit.start()] == "$"
    ):
        return True
    # the ARN's own stretch: back to the quote, comma, brace, "=" or blank that begins it
    segment = _ARN_BOUNDARY.split(text[max(0, hit.start() - 200) : hit.start()])[-1]
    return segment.lower().startswith("arn:")


_ARN_BOUNDARY = re.compile(r"[\"',{}=\s\[\]]")


def _assigned(text: str, lowered: str) -> Iterator[Finding]:
    """key = value, "key": "value", key: value, export KEY=value, where the key names a secret."""
    if not _ASSIGNED_GATE.open(lowered):
        return
    end = 0
    layout: _Layout | None = None
    for hit in _KEY_WORD.finditer(lowered):
        if hit.start() < end:
            continue
        match = _ASSIGNMENT.match(text, hit.end())
        if match is None:
            continue
        end = match.end()
        if _named_otherwise(text, hit, match):
            continue  # password_file=/run/secrets/db, TOKEN_PATH=..., token_hash: not the secret
        typed = match.group("typed") is not None
        if typed and match.group("rest"):
            continue  # token_index: int = 255_999, TOKEN_PREFIX: Final = ...: a declared name must end in the word
        if not typed and _TYPED_AT.match(text, match.end("rest")):
            continue  # secret: Uint8Array = new ...: a declaration whose value is not one (not its type)
        group = next(name for name in ("double", "single", "bare") if match.group(name) is not None)
        value = match.group(group)
        if typed and group == "bare" and not (len(value) > 2 and value[0] == value[-1] == "`"):
            continue  # let password: &str = &args[2]: an expression, not a literal
        if group == "bare" and bracketed_at(text, match.start(group)):
            continue  # Password: [REDACTED per policy], token=<hidden>: the bare value stops at "]" or a space
        if hit.group() == "pw" and (match.group("rest") or MEASUREMENT.fullmatch(value)):
            continue  # PW_TEST_REPORTER=..., PW-1: 4500psi, pw = 2.5e-3: not a password
        if hit.group() == "psk" and match.group("rest"):
            continue  # HAS_PSK_TLSv1_3: a name that holds "psk", not a pre-shared key
        if match.group("comma") is not None and not _first_argument_key(text, hit.start(), match):
            continue  # ["tokenizers", "..."], hset('user:1', 'password_changed_at', ...): no key
        # a call's arguments are quoted whatever they hold, so quotes there say nothing of a secret
        quoted = group != "bare" and match.group("comma") is None
        if group == "bare":
            layout = layout or _Layout(text)
            key_start = _key_start(text, hit.start())
            # (POSTGRES_USER=keycloak, POSTGRES_PASSWORD=keycloak: a default, as guest:guest@ is)
            quoted = _literal_position(layout, key_start, hit.end(), hit.group(), match) and not same_as_user(
                text, max(0, key_start - 300), key_start, value
            )
        confidence = value_confidence(value, quoted=quoted)
        if confidence:
            name = lowered[_key_start(text, hit.start()) : hit.end()]
            detail = (
                "password" if "pass" in name or "pwd" in name or name.endswith("pw") else "assigned_secret"
            )
            yield Finding("secret", match.start(group), match.end(group), confidence, detail)


def find_secrets(text: str, labelled: bool = False) -> list[Finding]:
    """`labelled`: also a random value that words name as a credential (router.signals.sensitivity
    .labelled; the policy's `sensitivity.labelled_secrets`, off by default)."""
    lowered = text.lower()
    if len(lowered) != len(text):  # "İ" lowers to two characters: keep every offset the text's
        lowered = "".join(char.lower()[0] for char in text)
    return [
        *(find_labelled(text, lowered) if labelled else ()),
        *_known(text, lowered),
        *find_in_connections(text, lowered),
        *_assigned(text, lowered),
        *_spaced(text, lowered),
        *find_in_programs(text, lowered),
        *find_in_credential_files(text, lowered),
        *find_in_device_configs(text, lowered),
        *find_in_sql_rows(text, lowered),
        *find_in_prose(text, lowered),
        *find_near_the_word(text, lowered),
    ]
