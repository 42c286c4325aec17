"""Credentials in connection URLs and strings: a URL's user information (scheme://user:password@host),
Oracle's JDBC connect identifier (NAME/PASSWORD@SERVICE), and the password fields of ADO.NET, ODBC and
JDBC connection strings and of URL queries. router.signals.sensitivity.secrets runs
`find_in_connections` beside its own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.secret_values import (
    DOCUMENTED_DEFAULTS,
    PASSWORD_WORDS,
    PLACEHOLDER,
    STAND_IN,
    mentions_secret,
    shannon_entropy,
    strong,
    value_confidence,
)

# A URL's user information with a password, in any scheme (RFC 3986: scheme://user:password@host):
# postgres://, mysql+pymysql:// (SQLAlchemy's dialect+driver), jdbc:mysql://, git+https://, amqps://.
# Read from each "://": the scheme back to where its characters end, then this after the "://".
_USERINFO = re.compile(r"([^\s:/@'\"]*):([^\s/@'\"]+)@[^\s/'\"]+")
# Oracle's JDBC URLs, thin and OCI, which give the connect identifier NAME/PASSWORD@SERVICE with no
# "://" (its tools' command lines are programs.py's). Run on the lowercased text, led by its literal.
_ORACLE_JDBC = re.compile(r"jdbc:oracle:(?:thin|oci):([\w$#]+)/([^\s@/\"']{4,200})@")
_ORACLE_GATE = Gate(("jdbc:oracle:",))
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
# A user's name given as a key's value: user=, username:, login=, uid=, User Id= (ADO.NET)
_USER_KEY = re.compile(
    r"(?i)(?:user(?:name)?(?:[ _]?id)?|login|uid)[\"']?[ \t]*[=:][ \t]*[\"']?([^\s\"',;]+)"
)


def same_as_user(text: str, begin: int, end: int, value: str) -> bool:
    """Whether a user's name given in text[begin:end] is `value` itself (a default: guest/guest)."""
    return any(match.group(1) == value for match in _USER_KEY.finditer(text, begin, end))


# Schemes whose user information is a login for certain (databases, queues, mail, directories, the
# web), with or without a driver ("mysql+pymysql"); in any other (spotify://track:ID@..., s3a://
# bucket:prefix@...) a colon and an @ may mean something else, and the password must look made up.
_LOGIN_SCHEMES = frozenset(
    ("postgres", "postgresql", "mysql", "mariadb", "mongodb", "redis", "rediss", "amqp", "amqps", "mssql",
     "sqlserver", "oracle", "ftp", "sftp", "ftps", "smtp", "smtps", "ldap", "ldaps", "http", "https",
     "imap", "imaps", "pop3", "pop3s",
     # and the other protocols whose URLs carry a login: cameras' RTSP, SMB/CIFS shares, WebDAV,
     # SSH, Subversion, Telnet, VNC, MQTT, WebSockets behind basic auth, SOCKS proxies
     "rtsp", "rtsps", "smb", "cifs", "dav", "davs", "webdav", "webdavs", "ssh", "svn", "telnet",
     "vnc", "mqtt", "mqtts", "ws", "wss", "socks", "socks4", "socks5", "socks5h")
)  # fmt: skip


def _url_password(value: str, scheme: str, user: str = "") -> bool:
    """Not a placeholder (user:${DB_PASS}@, user:<password>@, user:%s@, user:{pw}@), not the word itself
    (user:password@, user:pass@), not more of the user information (cvs://:pserver:anoncvs@: a method
    and a name), not a documented default or the user's own name (guest:guest@, vagrant:vagrant@), and
    outside the login schemes a value that looks made up."""
    if PLACEHOLDER.match(value) or ":" in value or len(set(value)) < 4:
        return False  # (admin:1111@, user:aaaa@: as few distinct characters as value_confidence refuses)
    if mentions_secret(value) and not strong(value):
        return False
    lowered = value.lower()
    if (
        lowered in DOCUMENTED_DEFAULTS
        or lowered in (*PASSWORD_WORDS, "pass", "pw")
        or lowered == user.lower()
    ):
        return False
    return scheme.split("+")[0].lower() in _LOGIN_SCHEMES or value_confidence(value, quoted=False) > 0


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
        if (
            start == separator
            or match is None
            or not _url_password(match.group(2), text[start:separator], match.group(1))
        ):
            continue
        yield Finding("secret", start, match.end(), 0.95, "connection_string")
        position = match.end()


def _oracle_urls(text: str, lowered: str) -> Iterator[Finding]:
    if not _ORACLE_GATE.open(lowered):
        return
    for match in _ORACLE_JDBC.finditer(lowered):
        value = text[match.start(2) : match.end(2)]  # the text's, not lowercased
        if value.lower() == match.group(1):
            continue  # appuser/appuser: the user's own name, a default
        # the syntax's password field (user/password@): a word a person chose counts there, and
        # as a URL's user information it outweighs the e-mail address it looks like ("sunshine1@db")
        if not PLACEHOLDER.match(value) and value_confidence(value, quoted=True):
            yield Finding("secret", match.start(2), match.end(2), 0.95, "connection_string")


# A connection string's or a URL query's password field: ADO.NET and ODBC's "Server=db;User
# Id=app;Password=...;", JDBC's "jdbc:sqlserver://db;user=sa;password=...", a query's
# "?user=app&password=...". The field follows ";", "?" or "&", and a connection's own key (a server,
# host, user or database) stands before it on its line: there the value is a literal by the syntax,
# and a word a person chose is a password.
_FIELD_GATE = Gate(("password", "pwd", "passwd"))
_FIELD = re.compile(r"[;?&][ \t]*(?:password|pwd|passwd)[ \t]*=[ \t]*([^;&\s\"'<>]{1,200})")
_FIELD_REACH = 300  # how far back a field's line is read for a connection's key
_CONNECTION_KEY = re.compile(
    r"(?:^|[;?&\"'\s])(?:server|data source|host|hostname|address|addr|user id|userid|uid|user|username"
    r"|database|databasename|dbname|initial catalog|driver|provider|dsn)[ \t]*="
)
_MEMBER = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")  # settings.Value, cfg.db.pw: code
# a database's URL (JDBC's and the drivers' schemes): its query's fields are the connection's
_DATABASE_URL = re.compile(
    r"jdbc:|odbc:|(?:postgres|postgresql|mysql|mariadb|sqlserver|mssql|mongodb|mongodb\+srv|redis|rediss"
    r"|oracle|db2|snowflake|clickhouse|cockroachdb)://"
)


def _connection_fields(text: str, lowered: str) -> Iterator[Finding]:
    if not _FIELD_GATE.open(lowered):
        return
    for match in _FIELD.finditer(lowered):  # the words in lowercase, the offsets the text's
        # its line, read at most _FIELD_REACH characters back (so that many fields cost linear time)
        reach = max(0, match.start() - _FIELD_REACH)
        line_start = max(reach, text.rfind("\n", reach, match.start()) + 1)
        if _CONNECTION_KEY.search(lowered, line_start, match.start() + 1) is None:
            continue  # "a;pwd=..." with no server, host, user or database before it: not a connection
        start, end = match.span(1)
        value = text[start:end]
        if same_as_user(text, line_start, match.start(), value):
            continue  # "User Id=guest;Password=guest": a default, as guest:guest@ is
        if (
            value[:1] in "/%"
            or "(" in value
            or "[" in value
            or _MEMBER.fullmatch(value)
            or STAND_IN.fullmatch(value)
        ):
            continue  # a path (&pwd=/home/...), code (getpass.getpass(), settings.Value), a stand-in
        if (
            lowered[match.start()] in "?&"
            and value.isalpha()
            and _DATABASE_URL.search(lowered, line_start, match.start()) is None
        ):
            continue  # a web page's state word in its query (?user=42&password=forgot), any language
        if value_confidence(value, quoted=True):
            yield Finding("secret", start, end, 0.9, "connection_string")


# Azure's connection strings: a storage account's AccountKey=, Service Bus's and Event Hubs'
# SharedAccessKey=: a base64 key, the connection's secret. Not the storage emulator's (Azurite's)
# account key, which Microsoft's documentation publishes for every developer's machine.
_AZURE_GATE = Gate(("accountkey", "sharedaccesskey"))
_AZURE_KEY = re.compile(r"(?:accountkey|sharedaccesskey)[ \t]*=[ \t]*([a-z0-9+/]{20,}={0,2})")
_AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azure_keys(text: str, lowered: str) -> Iterator[Finding]:
    if not _AZURE_GATE.open(lowered):
        return
    for match in _AZURE_KEY.finditer(lowered):  # the words in lowercase, the offsets the text's
        value = text[match.start(1) : match.end(1)]
        if value != _AZURITE_KEY and shannon_entropy(value) >= 3.5 and not PLACEHOLDER.match(value):
            yield Finding("secret", match.start(1), match.end(1), 0.9, "connection_string")


def find_in_connections(text: str, lowered: str) -> Iterator[Finding]:
    """Passwords in connection URLs and strings; `lowered` is text.lower() with the text's offsets."""
    yield from _connections(text)
    yield from _oracle_urls(text, lowered)
    yield from _connection_fields(text, lowered)
    yield from _azure_keys(text, lowered)
