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
_SPOKEN_WORDS = ("password", "passcode", "passphrase", "pin", "pwd", "pw")
_SPOKEN_REST = (
    r"\b(?:\??\s+(?P<words>(?:[a-z]+\s+){0,7}?)(?:is|was|to|as|it's|it\u2019s|=|:)\s*(?P<adverb>now\s+|still\s+|currently\s+)?"
    r"|\s*[:=]\s*|\s+)"
    r"(?:-\s*)?[\"']?(?P<value>[^\s\"']{4,100})"
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
# The rest of one command: at most 300 characters, not past a line end, ; & | (the next command)
# or a backtick (the end of a command quoted in prose).
_SAME_COMMAND = r"[^\n;&|`]{0,300}?"
# Options before an argument: at most eight, each perhaps with a value ("-C 12", "-n rabbit@node1").
_OPTIONS = r"(?:--?\w[\w-]*(?:[= ][^\s-]\S*)?\s+){0,8}"
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
        re.compile(r"\b(?:sqlcmd|bcp|osql|mssql-cli)\b" + _SAME_COMMAND + r"\s-P\s*" + _VALUE),
        "password_flag",
    ),
    # OpenLDAP's clients take the bind password as -w (-W asks for it)
    (
        ("ldap",),
        re.compile(
            r"\bldap(?:search|modify|add|delete|passwd|whoami|compare|modrdn|exop)\b" + _SAME_COMMAND + r"\s-w\s*" + _VALUE
        ),
        "password_flag",
    ),
    # registry and cluster logins: docker login, podman login, helm registry login ... -p PASSWORD
    (
        ("login",),
        re.compile(
            "(?:" + "|".join(map(word_start, _LOGIN_CLIENTS)) + r")\s+" + _OPTIONS + r"(?:registry\s+)?login\b"
            + _SAME_COMMAND
            + r"\s-p(?:=|\s+)" + _VALUE
        ),
        "password_flag",
    ),
    # Samba's clients take -U USER%PASSWORD
    (
        ("smb", "rpcclient"),
        re.compile(
            r"\b(?:smbclient|rpcclient|smbcacls|smbget)\b" + _SAME_COMMAND + r"\s(?:-U\s*|--user(?:name)?=)[\"']?[^\s%\"']+%"
            r"([^\s\"']{4,200})"
        ),
        "password_flag",
    ),
    # Java's keytool and jarsigner: -storepass, -keypass and their -src/-dest forms (the :env and
    # :file forms name where the password is, and do not match)
    (("storepass", "keypass"), re.compile(r"\s-(?:src|dest)?(?:store|key)pass\s+" + _VALUE), "password_flag"),
    # RabbitMQ: rabbitmqctl [OPTIONS] add_user NAME PASSWORD, ... change_password NAME PASSWORD
    (
        ("rabbitmq",),
        re.compile(
            r"\brabbitmqctl\s+" + _OPTIONS + r"(?:add_user|change_password)\s+[\"']?[^\s\"']+[\"']?\s+" + _VALUE
        ),
        "password_flag",
    ),
    # chpasswd reads NAME:PASSWORD lines: echo 'NAME:PASSWORD' | chpasswd, printf ..., chpasswd <<< ...
    (
        ("passwd",),
        re.compile(
            r"\b(?:echo\s+(?:-e\s+)?|printf\s+)[\"']?[^\s:\"']+:([^\s\"'\\]{4,200})(?:\\n)?[\"']?\s*\|\s*(?:sudo\s+)?chpasswd\b"
            r"|\bchpasswd\s*<<<\s*[\"']?[^\s:\"']+:([^\s\"']{4,200})"
        ),
        "password",
    ),
    # Redis's configuration: requirepass PASSWORD, masterauth PASSWORD (a commented line is not set)
    (
        ("requirepass", "masterauth"),
        re.compile(r"(?m)(?:^[ \t]*|(?i:config\s+set)\s+)(?:requirepass|masterauth)[ \t]+" + _VALUE),
        "password",
    ),
    # htpasswd -b FILE NAME PASSWORD and mosquitto_passwd -b FILE NAME PASSWORD (-b: from the command line)
    (
        ("passwd",),
        re.compile(
            r"\b(?:htpasswd|mosquitto_passwd)\s+" + _OPTIONS + r"-[a-zA-Z]*b[a-zA-Z]*\s+" + _OPTIONS
            + r"[^\s-]\S*\s+[\"']?[^\s\"']+[\"']?\s+" + _VALUE
        ),
        "password_flag",
    ),
    # Windows: net use [DEVICE] \\HOST\SHARE PASSWORD /user:NAME, or the password after /user:NAME
    (
        ("net use",),
        re.compile(
            r"(?i)\bnet\s+use\b" + _SAME_COMMAND + r"/user:\S+\s+(?![/*])" + _VALUE
            + r"|\bnet\s+use\s+(?:[a-z]:\s+)?\\\\\S+\s+(?![/*])" + _VALUE + r"\s+/user:"
        ),
        "password_flag",
    ),
    # An XML element whose name ends in a secret's: <password>, <clientSecret>, <apiKey> (Maven's
    # settings.xml, ...), not <tokenizer>, <passwordPolicy> or a paging or form token
    (
        ("</",),
        re.compile(
            r"<(?:[\w.-]+:)?(?!\w*(?:continuation|page|next|sync|idempotency|skip|cursor|resumption|form))"
            r"[\w.-]*(?:password|passwd|secret|token|apikey|api_key|api-key|secretkey|accesskey)"
            r"(?:\s[^<>\n]{0,100})?>\s*(?:<!\[CDATA\[)?([^<\s\]]{4,200})(?:\]\]>)?\s*</",
            re.IGNORECASE,
        ),
        "password",
    ),
    # Oracle's tools take NAME/PASSWORD[@DATABASE]: sqlplus, expdp, impdp, sqlldr, rman target, and
    # SQL*Plus's CONNECT at a line's start (after its SQL> prompt), not "connect" in a sentence
    (
        ("sqlplus", "expdp", "impdp", "exp ", "imp ", "sqlldr", "dgmgrl", "rman target", "connect "),
        re.compile(
            "(?:" + "|".join(map(word_start, ("sqlplus", "expdp", "impdp", "exp", "imp", "sqlldr", "dgmgrl")))
            + "|" + word_start("rman") + r"\s+target|(?m:^[ \t]*(?:SQL>[ \t]*)?)(?i:connect))\s+" + _OPTIONS + r"[\"']?[^\s/@\"']+/([^\s@\"'/]{4,200})(?=@|\s|$)"
        ),
        "oracle_login",
    ),
    # SQL: IDENTIFIED BY 'PASSWORD' (MySQL, MariaDB, Oracle; in prose "identified by" names no
    # password, so a bare value needs the keywords in capitals or CREATE/ALTER USER before them),
    # SET PASSWORD [FOR USER] = 'PASSWORD'
    (
        ("identified", "set password"),
        re.compile(
            r"\bIDENTIFIED\s+(?:WITH\s+\w+\s+)?BY\s+(?!VALUES\b)" + _VALUE
            + r"|(?i:\bidentified\s+(?:with\s+\w+\s+)?by)\s+(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')"
            + r"|(?i:\b(?:create|alter)\s+user\b[^;\n]{0,200}?\bidentified\s+by)\s+(?!(?i:values)\b)" + _VALUE
            + r"|(?i:\bset\s+password\b)[^=;\n]{0,200}=\s*(?:(?i:password)\s*\(\s*)?" + _VALUE
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
# Which libraries' connect() take the password positionally, and where: pymssql (server, user,
# password, ...), MySQLdb (host, user, passwd, ...), cx_Oracle (user, password, dsn). PyMySQL 1.0
# and python-oracledb take keywords only, which the assignment rule reads (password="...").
_CONNECT_POSITIONS = {"pymssql": 2, "MySQLdb": 2, "cx_Oracle": 1}
_CONNECTS = re.compile("(" + "|".join(lead(name, r"[\w$]") for name in _CONNECT_POSITIONS) + r")\.connect\(")
# One argument of a call and what ends it (a comma or the closing parenthesis): string literals
# with their escapes, a bracketed part one level deep, anything else but a line end. Read in C, and
# never more than 200 characters from the "(".
_ARGUMENT = re.compile(
    r"\s*((?:\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
    r"|\((?:[^()\"'\n]|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')*\)"
    r"|\[[^\[\]\n]*\]|\{[^{}\n]*\}|[^,()\[\]{}\"'\n])*)([,)])"
)
# A string literal alone, or turned into bytes or characters: "...".toCharArray(), '...'.encode()
_LITERAL = re.compile(r"\s*(?:\"([^\"\n\\]*)\"|'([^'\n\\]*)')(?:\.(?:toCharArray|getBytes|encode)\(\))?\s*$")
# A (user, password) tuple given as a keyword: auth=("user", "password"), as requests and httpx take it.
_AUTH_TUPLE = re.compile(
    word_start("auth")
    + r"\s*=\s*[(\[]\s*[\"'][^\"'\n]*[\"']\s*,\s*(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')\s*[)\]]"
)
# A name and a password after "login", "credentials" or "account": "the login is NAME / PASSWORD".
_PAIR_WORDS = ("login", "credential", "creds", "account")
# Words that stand where a name would and say where the credentials are, not whose they are.
_NOT_NAMES = frozenset(
    ("in", "at", "on", "under", "the", "a", "an", "our", "my", "your", "stored", "kept", "saved", "see", "use", "ask")
)  # fmt: skip
# The value must be _strong, after a slash, a comma or a space ("creds for staging: NAME PASSWORD",
# "the login for the router - NAME, PASSWORD"; not "Account is acme-prod / eu-west-1"). A URL
# ("Login: https://...") and a place ("credentials are in vault2", "creds: see 1Password / ...")
# are not a pair.
_PAIR_REST = r"[^\n.]{0,40}?(?:\bis|\bare|:|\s-)\s+(?P<name>[^\s/,]+)(?:\s*(?P<slash>/)\s*|,\s*|\s+)" + _VALUE
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
# After the noun, what shows that the phrase ends there (not "a password manager"): the text's end,
# punctuation, or a word that starts something else.
_ENDS_THE_PHRASE = re.compile(
    r"s?(?:\s*$|\s*[.,;:!?)\"']|\s+(?:for|to|on|of|at|in|and|but|so|now|then|because|since|again|anymore"
    r"|too|either|yet|right|though|here|there|that|which|i|you|we|it|is|was)\b)"
)
# A .pgpass line: host:port:database:user:password, the port a number or *.
_PGPASS = re.compile(r"(?m)^[^\s:]+:(?:\d{1,5}|\*):[^\s:]+:[^\s:]+:(\S{4,})$")
_PGPASS_LINES = LineStarts(_PGPASS)  # found from each line break, as such a line is one line
_PLACEHOLDER = re.compile(
    r"(?i)^(?:<.*>|\{.*\}|\[.*\]|\$.*|%.*%|\*+|x+|\.+|-+|_+|null|none|nil|true|false|undefined|"
    r"(?:your|my|the|some|insert|enter|put|add|replace|test|fake|mock|sample)[a-z_-]*(?:[_-]?v?\d+)?"
    r"|&{1,2}\w+|:\w+|@\w+|\w*(?:here|example|placeholder|changeme|"
    r"dummy|redacted|xxx+)\w*|str|string|int|bool|bytes|optional\[.*|env\b.*|process\.env.*)$"
    r"|^.*xxx"  # ghp_xxxx..., xoxb-xxx: a token shape filled with x's is documentation
    # (&&password, :new_password, @new_pw: SQL*Plus, bind and T-SQL variables; your_api_key_123)
)
# A key that names where a secret is kept, or something about it, rather than the secret itself.
_REFERENCE_SUFFIXES = ("file", "path", "dir", "env", "var", "name", "length", "policy", "url", "ref")
_CODE_REFERENCE = re.compile(r"^[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*(?:\(.*\)?|\[.*\]?)?[;,]?$")


# A secret's name as a word in a value: a message or a label about the secret, not the secret
# ("Orbit monkey 42 lantern!" is a passphrase: "monkey" holds "key" but is not the word).
_SECRET_NOUN = re.compile(
    r"(?i)(?<![a-z])(?:password|passwort|passphrase|passcode|pin|token|secret|key|credential|api[-_ ]?key)s?(?![a-z])"
)


def _mentions_secret(value: str) -> bool:
    return _SECRET_NOUN.search(value) is not None


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


def _strong(value: str) -> bool:
    """A value that reads as a made-up password rather than a name, version or region: a letter
    and a digit, and both cases or a symbol other than - _ . ("Lz3#kX6cVb", not "us-east-2",
    "v1.2.3" or "GPIO17"). The rules that read a value far from its key ask for it."""
    letters = [c for c in value if c.isalpha()]
    if not letters or not any(c.isdigit() for c in value):
        return False
    mixed = any(c.isupper() for c in letters) and any(c.islower() for c in letters)
    return mixed or any(not c.isalnum() and c not in "-_." for c in value)


def _value_confidence(value: str, quoted: bool) -> float:
    """How much an assigned value looks like a real secret rather than a name, type or placeholder."""
    lowered = value.lower()
    if _PLACEHOLDER.match(value) or len(set(value)) < 4 or "example" in lowered:
        return 0.0
    if _mentions_secret(value) and (" " in value or not _strong(value)):
        return 0.0  # "Enter your password", "API key missing", "new_password", "password-1": about it
    if "placeholder" in lowered:
        return 0.0
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
    """Where the key holding the key word at `position` begins, at most 100 characters back."""
    limit = max(0, position - 100)
    while position > limit and text[position - 1] in _KEY_CHARS:
        position -= 1
    return position


def _first_argument_key(text: str, word_at: int, match: re.Match[str]) -> bool:
    """Whether a quoted key before a comma is a call's whole first argument that ends in its secret
    word, and its value is _strong and does not name the secret: define('DB_PASSWORD', 'Xk7#...'),
    not t("password", "Password"), ("api_key", "API-Key") or setItem('token', 'pending-1')."""
    if match.group("rest"):
        return False
    start = _key_start(text, word_at)
    before = text[max(0, start - 20) : start]
    if not before.endswith(("'", '"')) or not before[:-1].rstrip().endswith("("):
        return False  # define( 'DB_PASSWORD', ...) and define('DB_PASSWORD', ...) alike
    value = match.group(3) or match.group(4) or ""
    return _strong(value) and not _mentions_secret(value)


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
        if hit.group() == "psk" and match.group("rest"):
            continue  # HAS_PSK_TLSv1_3: a name that holds "psk", not a pre-shared key
        if match.group("comma") is not None and not _first_argument_key(text, hit.start(), match):
            continue  # ["tokenizers", "..."], hset('user:1', 'password_changed_at', ...): no key
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
        begin = match.start("value")
        value = text[begin : match.end("value")].rstrip(".,;!?")
        end = begin + len(value)
        said = match.group(0).lower()
        if said.startswith("pw") and not said.startswith("pwd") and _MEASUREMENT.fullmatch(value):
            continue  # "pw 2.5ms", "PW: 25nW": a pulse width or a power, not a password
        far = len((match.group("words") or "").split()) > 4 or match.group("adverb")
        if far and not _strong(value):
            continue  # "the password length limit in our app is 64-chars", "the pin ... is now GPIO17"
        if value[:1] in ")]}>,;":
            continue  # password('Password:').ask(): the code goes on, no value is said
        pin = said.startswith("pin")  # "pin numpy to 1.26.4": only digits are a PIN
        if not pin and _character_classes(value) >= 2 and _value_confidence(value, quoted=False):
            yield Finding("secret", begin, end, 0.8, "password")
        elif (
            value.isdigit()
            and 4 <= len(value) <= 8
            and match.group(0).lower().startswith(("pin", "passcode"))
        ):
            yield Finding("secret", begin, end, 0.7, "pin")


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
            start, end = match.span(group)
            if text[start - 1 : start] not in ("'", '"'):
                end = start + len(text[start:end].rstrip(";,)"))  # "IDENTIFIED BY pw;": not the ";"
            if _value_confidence(text[start:end], quoted=False):
                # NAME/PASSWORD@HOST also reads as an e-mail address: the credential is the surer reading
                confidence = 0.97 if detail == "oracle_login" else 0.85
                yield Finding("secret", start, end, confidence, detail)


def _arguments(text: str, start: int) -> list[tuple[int, int]]:
    """The spans of a call's top-level arguments, from just after its "(" to its ")" on the same
    line and within 200 characters; [] when the call does not close there."""
    spans: list[tuple[int, int]] = []
    position, end = start, min(len(text), start + 200)
    while (argument := _ARGUMENT.match(text, position, end)) is not None:
        spans.append(argument.span(1))
        if argument.group(2) == ")":
            return spans
        position = argument.end()
    return []


def _call_arguments(text: str, lowered: str) -> Iterator[Finding]:
    """String-literal passwords at the argument positions that documented calls give them."""
    calls = [(m.end(), m.group(1), _CALLS[m.group(1)]) for m in _UPPER_CALL.finditer(text)]
    if any(hint in lowered for hint in _LOWER_CALL_HINTS):
        calls += [(m.end(), m.group(1), _CALLS[m.group(1)]) for m in _LOWER_CALL.finditer(text)]
        calls += [(m.end(), "connect", _CONNECT_POSITIONS[m.group(1)]) for m in _CONNECTS.finditer(text)]
    for start, name, position in calls:
        arguments = _arguments(text, start)
        if len(arguments) < (1 if position < 0 else position + 1):
            continue
        literal = _LITERAL.match(text, *arguments[position])
        if literal is None:
            continue
        group = 1 if literal.group(1) is not None else 2
        value = literal.group(group)
        if _mentions_secret(value) or (position < 0 and " " in value):
            continue  # password("Password:"), .password("PIN (4-8 digits)"): a prompt, not a value
        if name == "login" and text[slice(*arguments[0])].strip("\"' ") == "anonymous":
            continue  # ftp.login("anonymous", "guest@"): anonymous FTP's documented convention
        if _value_confidence(value, quoted=False):
            yield Finding("secret", literal.start(group), literal.end(group), 0.8, "password")
    for match in _AUTH_TUPLE.finditer(text) if "auth" in lowered else ():
        group = 1 if match.group(1) is not None else 2
        if _value_confidence(match.group(group), quoted=False):
            yield Finding("secret", match.start(group), match.end(group), 0.8, "password")


def _pairs(text: str, lowered: str) -> Iterator[Finding]:
    if not any(word in lowered for word in _PAIR_WORDS):
        return
    for match in _case_blind(text, lowered, _LOWER_PAIR, _PAIR):
        begin = match.start(3)
        value = text[begin : match.end(3)].rstrip(".,;!?)")
        name = match.group("name").lower()
        if name.endswith(":") or value.startswith("/") or name in _NOT_NAMES:
            continue
        if not _strong(value):
            continue
        if _value_confidence(value, quoted=False):
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
        if _strong(value) and value[-1] not in ",;:." and _value_confidence(value, quoted=False):
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
        *_flags(text, lowered),
        *_clients(text, lowered),
        *_pairs(text, lowered),
        *(_call_arguments(text, lowered) if "(" in text else ()),
        *_named_after(text, lowered),
    ]
