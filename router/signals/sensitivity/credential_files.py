"""Credentials in the files that clients read their logins from: a .pgpass line (psql, pg_dump) and a
.netrc entry (ftp, curl, git, fetchmail), pasted whole or in part. Each is a syntax whose password
field is a literal, so a word a person chose counts there; router.signals.sensitivity.secrets runs
`find_in_credential_files` beside its own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.gazetteer import gazetteer
from router.signals.sensitivity.scanning import LineStarts
from router.signals.sensitivity.secret_values import STAND_IN, value_confidence

# A .pgpass line: host:port:database:user:password, the port a number or *.
_PGPASS = re.compile(r"(?m)^[^\s:]+:(?:\d{1,5}|\*):[^\s:]+:[^\s:]+:(\S{4,})$")
_PGPASS_LINES = LineStarts(_PGPASS)  # found from each line break, as such a line is one line


def _pgpass(text: str) -> Iterator[Finding]:
    if text.count(":") < 4:
        return
    for match in _PGPASS_LINES.finditer(text):
        # a word a person chose counts where the line reads as host:port:db:user (a letter in the
        # host or *, and in the user), not a time or a log's fields (12:30:45:678:processing)
        host, _, _, user, _ = match.group(0).split(":", 4)
        literal = (host == "*" or any(c.isalpha() for c in host)) and any(c.isalpha() for c in user)
        if value_confidence(match.group(1), quoted=literal):
            yield Finding("secret", match.start(1), match.end(1), 0.85, "pgpass")


# A .netrc entry (ftp, curl, git and fetchmail read the file): machine HOST (or default), login NAME,
# password PASSWORD, each beginning its line, or on one line that they end (perhaps before account
# or macdef). Not anonymous FTP's login, nor a password that is the login's name; where the machine
# is not a host's name (no dot: "machine learning / login security / password hashing"), not an
# English word either.
_NETRC_GATE = Gate(("machine", "default login"))
_NETRC = re.compile(
    r"(?m)^[ \t]*(?:machine[ \t]+(?P<host>\S{1,200})|default)(?:[ \t]*\r?\n[ \t]*|[ \t]+)"
    r"login[ \t]+(?P<login>\S{1,200})(?:[ \t]*\r?\n[ \t]*password[ \t]+(?P<below>\S{1,200})"
    r"|[ \t]+password[ \t]+(?P<beside>\S{1,200})(?=[ \t]*(?:(?:account|macdef)\b[^\n]{0,200})?\r?$))"
)
_ANONYMOUS = frozenset(("anonymous", "ftp"))


def _netrc(text: str, lowered: str) -> Iterator[Finding]:
    if not _NETRC_GATE.open(lowered):
        return
    for match in _NETRC.finditer(text):
        group = "below" if match.group("below") is not None else "beside"
        value, login, host = match.group(group), match.group("login"), match.group("host")
        if login.lower() in _ANONYMOUS or value == login or STAND_IN.fullmatch(value):
            continue  # anonymous FTP; a default; where the secret is kept ("password apitoken")
        named = host is None or "." in host or host.lower() == "localhost"
        if not named and gazetteer().reads_english(value.lower()):
            continue  # "machine db01 login admin password mismatch": a log's words
        if value_confidence(value, quoted=True):
            yield Finding("secret", match.start(group), match.end(group), 0.85, "password")


def find_in_credential_files(text: str, lowered: str) -> Iterator[Finding]:
    """Passwords in .pgpass lines and .netrc entries; `lowered` is text.lower() with the text's offsets."""
    yield from _pgpass(text)
    yield from _netrc(text, lowered)
