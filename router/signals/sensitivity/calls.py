"""Passwords given to documented library calls: the argument position each call gives its password
(getConnection(url, user, password), NetworkCredential(user, password), .login(user, password),
keyring.set_password(service, user, password), DBI->connect(dsn, user, password), ...) when it holds
a string literal, and requests' and httpx's auth=(user, password). A call's arguments are read at
most 200 characters after its "(", so that text made of a call's name over and over costs linear
time; router.signals.sensitivity.programs runs `find_in_calls`, and sql_rows reads INSERT rows with
the same argument reader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.scanning import lead, word_start
from router.signals.sensitivity.secret_values import mentions_secret, value_confidence

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
    "mysql_real_connect": 3,  # MySQL's C API: (connection, host, user, password, ...)
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
# Each lowercase name's "name(", and "connect(" for _CONNECTS: cheap tests that gate _LOWER_CALL.
_LOWER_CALL_GATE = Gate({name.lower() + "(" for name in _LOWER_CALLS} | {"connect("})
_AUTH_GATE = Gate(("auth",))
# Which libraries' connect() take the password positionally, and where: pymssql (server, user,
# password, ...), MySQLdb (host, user, passwd, ...), cx_Oracle (user, password, dsn), Perl's DBI. PyMySQL 1.0
# and python-oracledb take keywords only, which the assignment rule reads (password="...").
_CONNECT_POSITIONS = {
    "pymssql": 2,
    "MySQLdb": 2,
    "cx_Oracle": 1,
    "DBI": 2,
}  # Perl: DBI->connect(dsn, user, password)
_CONNECTS = re.compile(
    "(" + "|".join(lead(name, r"[\w$]") for name in _CONNECT_POSITIONS) + r")(?:\.|->)connect\("
)
# One argument of a call and what ends it (a comma or the closing parenthesis): string literals
# with their escapes, a bracketed part one level deep, anything else but a line end. Read in C, and
# never more than 200 characters from the "(".
_ARGUMENT = re.compile(
    r"\s*((?:\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'"
    r"|\((?:[^()\"'\n]|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*')*\)"
    r"|\[[^\[\]\n]*\]|\{[^{}\n]*\}|[^,()\[\]{}\"'\n])*)([,)])"
)
# A string literal alone, or turned into bytes or characters: "...".toCharArray(), '...'.encode(),
# SQL's N'...' and E'...'.
LITERAL = re.compile(
    r"\s*(?:\"([^\"\n\\]*)\"|[NE]?'([^'\n\\]*)')(?:\.(?:toCharArray|getBytes|encode)\(\))?\s*$"
)
# A (user, password) tuple given as a keyword: auth=("user", "password"), as requests and httpx take it.
_AUTH_TUPLE = re.compile(
    word_start("auth")
    + r"\s*=\s*[(\[]\s*[\"'][^\"'\n]*[\"']\s*,\s*(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')\s*[)\]]"
)


def arguments_of(text: str, start: int, reach: int = 200, closed: bool = True) -> list[tuple[int, int]]:
    """The spans of a call's top-level arguments, from just after its "(" to its ")" within `reach`
    characters, each on one line; [] when the call does not close there, unless not `closed`: then
    the arguments read before the first that could not be ("new PDO($dsn, 'u', 'pw', [" and an
    options array over the next lines)."""
    spans: list[tuple[int, int]] = []
    position, end = start, min(len(text), start + reach)
    while (argument := _ARGUMENT.match(text, position, end)) is not None:
        spans.append(argument.span(1))
        if argument.group(2) == ")":
            return spans
        position = argument.end()
    return [] if closed else spans


def find_in_calls(text: str, lowered: str) -> Iterator[Finding]:
    """String-literal passwords at the argument positions that documented calls give them, and in
    auth=(user, password) tuples; `lowered` is text.lower() with the text's offsets."""
    if "(" not in text:
        return
    calls = [(m.end(), m.group(1), _CALLS[m.group(1)]) for m in _UPPER_CALL.finditer(text)]
    if _LOWER_CALL_GATE.open(lowered):
        calls += [(m.end(), m.group(1), _CALLS[m.group(1)]) for m in _LOWER_CALL.finditer(text)]
        calls += [(m.end(), "connect", _CONNECT_POSITIONS[m.group(1)]) for m in _CONNECTS.finditer(text)]
    for start, name, position in calls:
        # a password at a fixed position may come before an argument that runs over the line
        # ("new PDO($dsn, 'u', 'pw', ["); the last argument is known only where the call closes
        arguments = arguments_of(text, start, closed=position < 0)
        if len(arguments) < (1 if position < 0 else position + 1):
            continue
        literal = LITERAL.match(text, *arguments[position])
        if literal is None:
            continue
        group = 1 if literal.group(1) is not None else 2
        value = literal.group(group)
        if mentions_secret(value) or (position < 0 and " " in value):
            continue  # password("Password:"), .password("PIN (4-8 digits)"): a prompt, not a value
        if name == "login" and text[slice(*arguments[0])].strip("\"' ") == "anonymous":
            continue  # ftp.login("anonymous", "guest@"): anonymous FTP's documented convention
        # the call's documented password position holds a string literal: a word a person chose
        # is a password there (read as quoted)
        if value_confidence(value, quoted=True):
            yield Finding("secret", literal.start(group), literal.end(group), 0.8, "password")
    for match in _AUTH_TUPLE.finditer(text) if _AUTH_GATE.open(lowered) else ():
        group = 1 if match.group(1) is not None else 2
        if value_confidence(match.group(group), quoted=True):
            yield Finding("secret", match.start(group), match.end(group), 0.8, "password")
