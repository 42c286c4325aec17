"""Detects credentials in prompt text: provider API keys, tokens, private keys, passwords in config.

Offline and regex-only. A known key format (AWS, GitHub, Slack, Stripe, Google, OpenAI, Anthropic,
JWT, PEM private keys) is reported on shape alone; free-form values (password=..., TOKEN=...) only
when they look like real secrets rather than placeholders, variable names or type annotations, so
ordinary code does not trip the privacy gate. It must never report the secret's value anywhere but
as offsets.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.scanning import LineStarts, case_aligned, lead, word_start

# Substrings (of the lowercased text) that each pattern needs; a prompt holding none of them skips
# the pattern entirely, and most chat prompts hold none of any.
_ASSIGNED_HINTS = ("pass", "pw", "psk", "secret", "token", "key", "auth", "credential")
_SPOKEN_HINTS = ("password", "passcode", "passphrase", "pin", "pwd", "pw")
_FLAG_HINTS = ("--pass", "mysql", "mariadb", "redis-cli", "sshpass", "curl")
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

_CONNECTION = re.compile(
    r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|oracle|"
    r"jdbc:[a-z]+|s?ftp|smtps?|ldaps?|https?)://([^\s:/@'\"]*):([^\s/@'\"]+)@[^\s/'\"]+"
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
# define('DB_PASSWORD', '...'), setenv("API_TOKEN", "..."), config.set('secret', '...').
_ASSIGNMENT = re.compile(
    r"(?P<rest>[A-Za-z0-9_.-]*)(?:[\"']?\s*(?:=>|:=|=|:)|[\"']\s*(?P<comma>,)(?=\s*[\"'][^\s\"']{4,200}[\"']))\s*"
    r"(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})'|([^\s\"',;)}\]]{4,200}))"
)
# A password said in a sentence: the word, up to seven words about whose it is ("the password we
# agreed on for the shared drive is ..."), a verb or a colon, perhaps "now", "still" or "currently",
# then the value ("the root password on that box is ...", "set the passphrase to ...", "use the
# password ... for"); the value must still look like a secret (two kinds of character, no placeholder).
_SPOKEN_WORDS = ("password", "passcode", "passphrase", "pin", "pwd", "pw")
_SPOKEN_REST = (
    r"\b(?:\??\s+(?:[a-z]+\s+){0,7}?(?:is|was|to|as|it's|it\u2019s|=|:)\s*(?:now\s+|still\s+|currently\s+)?"
    r"|\s*[:=]\s*|\s+)"
    r"(?:-\s*)?[\"']?([^\s\"']{4,100})"
)
_SPOKEN = re.compile(r"(?i)\b(?:" + "|".join(_SPOKEN_WORDS) + ")" + _SPOKEN_REST)
# The same on lowercase text (scanning.case_aligned), each word with its \b after it, so that `re`
# skips ahead to the words' first letters instead of trying the pattern at every position.
_LOWER_SPOKEN = re.compile("(?:" + "|".join(map(word_start, _SPOKEN_WORDS)) + ")" + _SPOKEN_REST)
# A command's options are looked for at most 300 characters after its name, and at most eight are
# skipped, so that text made of a command's name over and over costs linear time, not quadratic.
# Passwords given to a client on its command line: --password=X or --password X (any program),
# mysql's -pX (no space), redis-cli's -a X, sshpass -p X, curl's -u/--user user:X (basic auth).
_FLAGS = re.compile(
    r"(?:--pass(?:word|wd)?(?:=|\s+)|\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n]{0,300}?\s-p(?=\S)"
    r"|\bredis-cli\b[^\n]{0,300}?\s-a\s+|\bsshpass\s+-p\s*"
    r"|\bcurl\b[^\n]{0,300}?\s(?:-u\s*|--user[=\s]+)[\"']?[^\s:\"']+:)[\"']?([^\s\"']{4,200})"
)
# Passwords that other documented clients take on their command line, and that servers and
# databases are given in their own syntax: (hints, pattern, detail), the password in the pattern's
# first group that matched; a pattern runs only on a text that holds one of its hints, lowercased.
_VALUE = r"[\"']?([^\s\"']{4,200})"
_LOGIN_CLIENTS = (
    "docker",
    "podman",
    "buildah",
    "skopeo",
    "nerdctl",
    "oc",
    "az",
    "cf",
    "helm",
    "oras",
    "crane",
)
_CLIENTS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = (
    # Microsoft's SQL Server tools take the password as -P (sqlcmd, bcp, osql, mssql-cli)
    (
        ("sqlcmd", "bcp", "osql", "mssql"),
        re.compile(r"\b(?:sqlcmd|bcp|osql|mssql-cli)\b[^\n]{0,300}?\s-P\s*" + _VALUE),
        "password_flag",
    ),
    # OpenLDAP's clients take the bind password as -w (-W asks for it)
    (
        ("ldap",),
        re.compile(
            r"\bldap(?:search|modify|add|delete|passwd|whoami|compare|modrdn|exop)\b[^\n]{0,300}?\s-w\s+" + _VALUE
        ),
        "password_flag",
    ),
    # registry and cluster logins: docker, podman, oc, az, cf, helm ... login -p PASSWORD
    (
        ("login",),
        re.compile(
            "(?:" + "|".join(map(word_start, _LOGIN_CLIENTS)) + r")\b(?>[^\n]{0,300}?\blogin\b)[^\n]{0,300}?\s-p(?:=|\s+)" + _VALUE
        ),
        "password_flag",
    ),
    # Samba's clients take -U USER%PASSWORD
    (
        ("smb", "rpcclient"),
        re.compile(
            r"\b(?:smbclient|rpcclient|smbcacls|smbget)\b[^\n]{0,300}?\s(?:-U\s*|--user(?:name)?=)[\"']?[^\s%\"']+%"
            r"([^\s\"']{4,200})"
        ),
        "password_flag",
    ),
    # Java's keytool and jarsigner: -storepass, -keypass and their -src/-dest forms (the :env and
    # :file forms name where the password is, and do not match)
    (("storepass", "keypass"), re.compile(r"\s-(?:src|dest)?(?:store|key)pass\s+" + _VALUE), "password_flag"),
    # RabbitMQ: rabbitmqctl add_user NAME PASSWORD, rabbitmqctl change_password NAME PASSWORD
    (
        ("rabbitmq",),
        re.compile(r"\brabbitmqctl\s+(?:add_user|change_password)\s+[\"']?[^\s\"']+[\"']?\s+" + _VALUE),
        "password_flag",
    ),
    # chpasswd reads NAME:PASSWORD lines: echo 'NAME:PASSWORD' | chpasswd
    (
        ("passwd",),
        re.compile(
            r"\becho\s+(?:-e\s+)?[\"']?[^\s:\"']+:([^\s\"']{4,200})[\"']?\s*\|\s*(?:sudo\s+)?chpasswd\b"
        ),
        "password",
    ),
    # Redis's configuration: requirepass PASSWORD, masterauth PASSWORD (a commented line is not set)
    (
        ("requirepass", "masterauth"),
        re.compile(r"(?m)^[ \t]*(?:requirepass|masterauth)[ \t]+" + _VALUE),
        "password",
    ),
    # htpasswd -b FILE NAME PASSWORD and mosquitto_passwd -b FILE NAME PASSWORD (-b: from the command line)
    (
        ("passwd",),
        re.compile(
            r"\b(?:htpasswd|mosquitto_passwd)\s+(?:-\w+\s+){0,8}-[a-zA-Z]*b[a-zA-Z]*\s+(?:-\w+\s+){0,8}"
            r"[^\s-]\S*\s+[\"']?[^\s\"']+[\"']?\s+" + _VALUE
        ),
        "password_flag",
    ),
    # Windows: net use [DEVICE] \\HOST\SHARE PASSWORD /user:NAME, or the password after /user:NAME
    (
        ("net use",),
        re.compile(
            r"(?i)\bnet\s+use\b[^\n]{0,300}?/user:\S+\s+(?![/*])" + _VALUE
            + r"|\bnet\s+use\s+(?:[a-z]:\s+)?\\\\\S+\s+(?![/*])" + _VALUE + r"\s+/user:"
        ),
        "password_flag",
    ),
    # An XML element whose name ends in a secret's: <password>, <clientSecret>, <apiKey> (Maven's
    # settings.xml, ...), not <tokenizer> or <passwordPolicy>
    (
        ("</",),
        re.compile(
            r"<(?:[\w.-]+:)?[\w.-]*(?:password|passwd|secret|token|apikey|api_key|api-key|secretkey|accesskey)>"
            r"[ \t]*([^<\s]{4,200})[ \t]*</",
            re.IGNORECASE,
        ),
        "password",
    ),
    # Oracle's tools take NAME/PASSWORD@DATABASE: sqlplus, expdp, impdp, sqlldr, rman target
    (
        ("sqlplus", "expdp", "impdp", "sqlldr", "rman target"),
        re.compile(
            "(?:" + "|".join(map(word_start, ("sqlplus", "expdp", "impdp", "sqlldr"))) + "|" + word_start("rman") + r"\s+target)\s+(?:-\w+\s+){0,8}[\"']?[^\s/@\"']+/([^\s@\"']{4,200})@"
        ),
        "oracle_login",
    ),
    # SQL: IDENTIFIED BY 'PASSWORD' (MySQL, MariaDB, Oracle), SET PASSWORD [FOR USER] = 'PASSWORD'
    (
        ("identified", "set password"),
        re.compile(
            r"(?i)\bidentified\s+(?:with\s+\w+\s+)?by\s+(?!values\b)" + _VALUE
            + r"|\bset\s+password\b[^=;\n]{0,200}=\s*(?:password\s*\(\s*)?" + _VALUE
        ),
        "password",
    ),
)  # fmt: skip
# Calls that documented libraries give a password as a positional argument: the name before the
# parenthesis, and which argument (from 0; -1: the last) is the password when it is a string literal.
_CALLS: dict[str, int] = {
    "NetworkCredential": 1,  # .NET: (user, password)
    "PasswordAuthentication": 1,  # Java: (user, password chars)
    "UsernamePasswordCredentials": 1,  # Apache HttpClient
    "UsernamePasswordAuthenticationToken": 1,  # Spring Security
    "HTTPBasicAuth": 1,  # requests
    "HTTPDigestAuth": 1,
    "BasicAuth": 1,  # aiohttp
    "BasicAWSCredentials": 1,  # AWS SDK for Java: (access key, secret key)
    "ClientSecretCredential": 2,  # Azure: (tenant, client id, secret)
    "PlainAuth": 2,  # Go net/smtp: (identity, user, password, host)
    "getConnection": 2,  # JDBC DriverManager: (url, user, password)
    "mysqli_connect": 2,  # PHP: (host, user, password, database)
    "mysql_connect": 2,
    "mysqli": 2,
    "PDO": 2,  # PHP: (dsn, user, password)
    "login": 1,  # ftplib, smtplib, imaplib ...: .login(user, password)
    "start": 4,  # Ruby Net::SMTP.start(address, port, helo, user, secret, authtype)
    "set_password": -1,  # keyring.set_password(service, user, password), set_password(password)
    "setPassword": -1,
    "withPassword": -1,
    "password": -1,  # a builder's .password("...")
    "setClientSecret": -1,
    "setSecretKey": -1,
}
# Each name with its lookbehind written after it (scanning.lead), so that `re` skips to first letters:
# the capitalised names (constructors) on every text, the others only where "name(" occurs.
_UPPER_CALLS = sorted((name for name in _CALLS if name[0].isupper()), key=len, reverse=True)
_LOWER_CALLS = sorted((name for name in _CALLS if not name[0].isupper()), key=len, reverse=True)
_UPPER_CALL = re.compile("(" + "|".join(lead(name, r"[\w$]") for name in _UPPER_CALLS) + r")\s*\(")
_LOWER_CALL = re.compile("(" + "|".join(lead(name, r"[\w$]") for name in _LOWER_CALLS) + r")\(")
_LOWER_CALL_HINTS = (
    "connect(",
    "connection(",
    "mysqli(",
    "login(",
    "start(",
    "password(",
    "secret(",
    "secretkey(",
)
# Which libraries' connect() take (host, user, password, ...) positionally.
_CONNECTS = re.compile(
    "(?:"
    + "|".join(lead(name, r"[\w$]") for name in ("pymssql", "pymysql", "MySQLdb", "cx_Oracle", "oracledb"))
    + r")\.connect\("
)
# A string literal alone, or turned into bytes or characters: "...".toCharArray(), '...'.encode()
_LITERAL = re.compile(r"\s*(?:\"([^\"\n\\]*)\"|'([^'\n\\]*)')(?:\.(?:toCharArray|getBytes|encode)\(\))?\s*$")
# A (user, password) tuple given as a keyword: auth=("user", "password"), as requests and httpx take it.
_AUTH_TUPLE = re.compile(
    word_start("auth")
    + r"\s*=\s*\(\s*[\"'][^\"'\n]*[\"']\s*,\s*(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')\s*\)"
)
# A name and a password after "login", "credentials" or "account": "the login is NAME / PASSWORD".
_PAIR_WORDS = ("login", "credential", "creds", "account")
# After a slash the value need only look like a secret; after a comma or a space ("creds for staging:
# NAME PASSWORD", "the login for the router - NAME, PASSWORD") it must also hold a letter and a digit.
_PAIR_REST = r"[^\n.]{0,40}?(?:\bis|\bare|:|\s-)\s+[^\s/,]+(?:\s*(/)\s*|,\s*|\s+)" + _VALUE
_PAIR = re.compile(r"(?i)\b(?:login|credential|creds|account)s?\b" + _PAIR_REST)
# The same on lowercase text (scanning.case_aligned), beginning with the words' first letters.
_LOWER_PAIR = re.compile("(?:" + "|".join(map(word_start, _PAIR_WORDS)) + r")s?\b" + _PAIR_REST)
# A password named after it is given: "whether X is a strong enough password", "X is my password",
# "is X a good password?", "I use X as my password". Read in the words before each such noun.
_NAMED_AFTER = re.compile(r"password|passphrase|passcode")
_BEFORE_NOUN = re.compile(
    r"(?:(?<![^\s\"'(])([^\s\"'(]{6,100}?)[\"')]?\s+(?:is|was|as)"
    r"|\bis\s+[\"']?([^\s\"']{6,100})[\"']?)"
    r"\s+(?:(?:a|an|my|the|our|your|his|her|their|good|strong|weak|secure|safe|valid|new|current|enough)\s+){0,4}$",
    re.IGNORECASE,
)
# After the noun, what makes it something else than the password itself: "a password manager".
_NOT_THE_SECRET = re.compile(
    r"\s*(?:manager|policy|policies|field|reset|hash|generator|vault|rule|strength)\b"
)
# A .pgpass line: host:port:database:user:password, the port a number or *.
_PGPASS = re.compile(r"(?m)^[^\s:]+:(?:\d{1,5}|\*):[^\s:]+:[^\s:]+:(\S{4,})$")
_PGPASS_LINES = LineStarts(_PGPASS)  # found from each line break, as such a line is one line
_PLACEHOLDER = re.compile(
    r"(?i)^(?:<.*>|\{.*\}|\[.*\]|\$.*|%.*%|\*+|x+|\.+|-+|_+|null|none|nil|true|false|undefined|"
    r"(?:your|my|the|some|insert|enter|put|add|replace)[a-z_-]*|\w*(?:here|example|placeholder|changeme|"
    r"dummy|redacted|xxx+)\w*|str|string|int|bool|bytes|optional\[.*|env\b.*|process\.env.*)$"
    r"|^.*xxx"  # ghp_xxxx..., xoxb-xxx: a token shape filled with x's is documentation
)
# A key that names where a secret is kept, or something about it, rather than the secret itself.
_REFERENCE_SUFFIXES = ("file", "path", "dir", "env", "var", "name", "length", "policy", "url", "ref")
_CODE_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*(?:\(.*\)?|\[.*\]?)?[;,]?$")


_SECRET_NOUNS = ("password", "passphrase", "passcode", "token", "secret", "key", "credential")


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in counts.values())


def _character_classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def _value_confidence(value: str, quoted: bool) -> float:
    """How much an assigned value looks like a real secret rather than a name, type or placeholder."""
    lowered = value.lower()
    if _PLACEHOLDER.match(value) or len(set(value)) < 4 or "example" in lowered:
        return 0.0
    if " " in value and any(noun in lowered for noun in _SECRET_NOUNS):
        return 0.0  # "Enter your password", "API key missing": a message about the secret, not it
    if not quoted and _CODE_REFERENCE.match(value) and (not any(c.isdigit() for c in value) or "." in value):
        return 0.0  # password=user_password, token=get_token(): code, not a value
    classes = _character_classes(value)
    if len(value) >= 16 and shannon_entropy(value) >= 3.5 and classes >= 2:
        return 0.9
    if classes >= 2 and len(value) >= 6:
        return 0.75
    return 0.55 if quoted and len(value) >= 6 else 0.0


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
    while position > 0 and text[position - 1] in _KEY_CHARS:
        position -= 1
    return position


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
        if match.group("rest").lower().endswith(_REFERENCE_SUFFIXES):
            continue  # password_file=/run/secrets/db, TOKEN_PATH=...: where the secret is, not it
        group = 3 if match.group(3) is not None else 4 if match.group(4) is not None else 5
        value = match.group(group)
        if hit.group() == "pw" and (match.group("rest") or _MEASUREMENT.fullmatch(value)):
            continue  # PW_TEST_REPORTER=..., PW-1: 4500psi, pw = 2.5e-3: not a password
        if match.group("comma") is not None and value.isalpha():
            continue  # t("password", "Password"): a label in a call, not a value
        # a call's arguments are quoted whatever they hold, so quotes there say nothing of a secret
        confidence = _value_confidence(value, quoted=group != 5 and match.group("comma") is None)
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


def _spoken(text: str, lowered: str) -> Iterator[Finding]:
    if not any(hint in lowered for hint in _SPOKEN_HINTS):
        return
    for match in _case_blind(text, lowered, _LOWER_SPOKEN, _SPOKEN):
        value = text[match.start(1) : match.end(1)].rstrip(".,;!?")
        end = match.start(1) + len(value)
        said = match.group(0).lower()
        if said.startswith("pw") and not said.startswith("pwd") and _MEASUREMENT.fullmatch(value):
            continue  # "pw 2.5ms", "PW: 25nW": a pulse width or a power, not a password
        if _character_classes(value) >= 2 and _value_confidence(value, quoted=False):
            yield Finding("secret", match.start(1), end, 0.8, "password")
        elif (
            value.isdigit()
            and 4 <= len(value) <= 8
            and match.group(0).lower().startswith(("pin", "passcode"))
        ):
            yield Finding("secret", match.start(1), end, 0.7, "pin")


def _connections(text: str) -> Iterator[Finding]:
    if "://" not in text or "@" not in text:
        return
    for match in _CONNECTION.finditer(text):
        password = match.group(2)
        if _PLACEHOLDER.match(password):
            continue
        yield Finding("secret", match.start(), match.end(), 0.95, "connection_string")


def _flags(text: str, lowered: str) -> Iterator[Finding]:
    if any(hint in lowered for hint in _FLAG_HINTS):
        for match in _FLAGS.finditer(text):
            value = match.group(1)
            if _value_confidence(value, quoted=False):
                yield Finding("secret", match.start(1), match.end(1), 0.85, "password_flag")
    if text.count(":") >= 4:
        for match in _PGPASS_LINES.finditer(text):
            if _value_confidence(match.group(1), quoted=False):
                yield Finding("secret", match.start(1), match.end(1), 0.85, "pgpass")


_CLIENT_HINTS = frozenset(hint for hints, _, _ in _CLIENTS for hint in hints)


def _clients(text: str, lowered: str) -> Iterator[Finding]:
    present = {hint for hint in _CLIENT_HINTS if hint in lowered}  # each hint looked for once
    if not present:
        return
    for hints, pattern, detail in _CLIENTS:
        if present.isdisjoint(hints):
            continue
        for match in pattern.finditer(text):
            group = next(index for index, value in enumerate(match.groups(), 1) if value is not None)
            if _value_confidence(match.group(group), quoted=False):
                # NAME/PASSWORD@HOST also reads as an e-mail address: the credential is the surer reading
                confidence = 0.97 if detail == "oracle_login" else 0.85
                yield Finding("secret", match.start(group), match.end(group), confidence, detail)


def _arguments(text: str, start: int) -> list[tuple[int, int]]:
    """The spans of a call's top-level arguments, from just after its "(" to its ")" on the same
    line and within 200 characters; [] when the call does not close there."""
    spans, depth, quote, begin = [], 0, "", start
    for index in range(start, min(len(text), start + 200)):
        char = text[index]
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}" and depth:
            depth -= 1
        elif char == ")":
            spans.append((begin, index))
            return spans
        elif char == "," and not depth:
            spans.append((begin, index))
            begin = index + 1
        elif char == "\n" and not depth:
            return []
    return []


def _call_arguments(text: str, lowered: str) -> Iterator[Finding]:
    """String-literal passwords at the argument positions that documented calls give them."""
    calls = [(m.end(), _CALLS[m.group(1)]) for m in _UPPER_CALL.finditer(text)]
    if any(hint in lowered for hint in _LOWER_CALL_HINTS):
        calls += [(m.end(), _CALLS[m.group(1)]) for m in _LOWER_CALL.finditer(text)]
        calls += [(m.end(), 2) for m in _CONNECTS.finditer(text)]
    for start, position in calls:
        arguments = _arguments(text, start)
        if len(arguments) < (1 if position < 0 else position + 1):
            continue
        begin, end = arguments[position]
        literal = _LITERAL.match(text, begin, end)
        if literal is None:
            continue
        group = 1 if literal.group(1) is not None else 2
        if _value_confidence(literal.group(group), quoted=False):
            yield Finding("secret", literal.start(group), literal.end(group), 0.8, "password")
    for match in _AUTH_TUPLE.finditer(text) if "auth" in lowered else ():
        group = 1 if match.group(1) is not None else 2
        if _value_confidence(match.group(group), quoted=False):
            yield Finding("secret", match.start(group), match.end(group), 0.8, "password")


def _pairs(text: str, lowered: str) -> Iterator[Finding]:
    if not any(word in lowered for word in _PAIR_WORDS):
        return
    for match in _case_blind(text, lowered, _LOWER_PAIR, _PAIR):
        value = text[match.start(2) : match.end(2)].rstrip(".,;!?)")
        loose = match.group(1) is None  # a comma or a space, not a slash, between name and value
        if loose and not (any(c.isalpha() for c in value) and any(c.isdigit() for c in value)):
            continue
        if _value_confidence(value, quoted=False):
            yield Finding("secret", match.start(2), match.start(2) + len(value), 0.8, "password")


def _named_after(text: str, lowered: str) -> Iterator[Finding]:
    if "pass" not in lowered:
        return
    for noun in _NAMED_AFTER.finditer(lowered):
        if _NOT_THE_SECRET.match(lowered, noun.end()):
            continue
        start = max(0, noun.start() - 160)
        match = _BEFORE_NOUN.search(text, start, noun.start())
        if match is None:
            continue
        group = 1 if match.group(1) is not None else 2
        value = match.group(group)
        # a word ("This is a strong password") is not a candidate: a letter and a digit or symbol
        candidate = not value.isalpha() and any(c.isalpha() for c in value)
        if candidate and _value_confidence(value, quoted=False):
            yield Finding("secret", match.start(group), match.end(group), 0.75, "password")


def find_secrets(text: str) -> list[Finding]:
    lowered = text.lower()
    return [
        *_known(text, lowered),
        *_connections(text),
        *_assigned(text, lowered),
        *_spoken(text, lowered),
        *_flags(text, lowered),
        *_clients(text, lowered),
        *_pairs(text, lowered),
        *(_call_arguments(text, lowered) if "(" in text else ()),
        *_named_after(text, lowered),
    ]
