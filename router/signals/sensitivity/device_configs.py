"""Passwords in the configuration syntax of network devices and servers, each a syntax whose field
is a literal password, so that a word a person chose counts there (read as quoted), but not the
user's own name (a default: `monitor:monitor`):

- Cisco IOS and the CLIs that copy it (NX-OS, Arista EOS), in their lowercase: `username NAME
  [privilege N] password|secret [0|7] VALUE` and `enable password|secret [0|7] VALUE`, on a line of
  their own, perhaps after the device's prompt (`Router(config)#`). Type 0 is the password itself
  and type 7 a reversible encoding of it; types 4, 5, 8 and 9 are one-way hashes and 6 an
  encryption with the device's key, not read. Without a prompt, a type or a privilege level
  ("Enable secret scanning", "username jdoe password mismatch" in a checklist or a log) the value
  must hold two kinds of character (letters and digits, ...), as a made-up one does.
- HAProxy: `stats auth USER:PASSWORD`, and a userlist's `user NAME insecure-password PASSWORD`.
- DB2's command line: `CONNECT TO DATABASE USER NAME USING PASSWORD` in capitals, or after the
  `db2` command, its `db2 =>` prompt or `EXEC SQL` (not "connect to server user interface using
  keyboard").
- strongSwan's and Libreswan's ipsec.secrets: `SELECTORS : PSK "SECRET"`, `NAME : EAP|XAUTH
  "PASSWORD"`, the colon beginning the line or after a blank (not "Security: PSK ...").
- Redis's ACL: `user NAME RULES >PASSWORD` in a users.acl line (every word before it a rule) or
  after `ACL SETUSER` (`#HASH` is a hash, not read), each `>PASSWORD` of the rules.
- Apache's htpasswd and Mosquitto's mosquitto_passwd in batch mode, which takes the password on the
  command line: `htpasswd -b [-c] [-C COST] FILE USER PASSWORD`, or `htpasswd -nb USER PASSWORD`,
  which prints the line.
- The AWS CLI's `aws configure` prompts as a pasted session shows them: `AWS Secret Access Key
  [None]: SECRET`.

router.signals.sensitivity.secrets runs `find_in_device_configs` beside its own rules. Every
pattern is gated by the words it needs and bounded to one line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.secret_values import (
    PASSWORD_WORDS,
    PLACEHOLDER,
    character_classes,
    mentions_secret,
    value_confidence,
)

_IOS_GATE = Gate(("username", "enable"))
_IOS = re.compile(
    r"(?m)^[ \t]*(?P<prompt>[\w.-]{1,64}(?:\([\w-]{1,32}\))?#[ \t]*)?"
    r"(?:username[ \t]+(?P<user>\S{1,64})(?P<privilege>[ \t]+privilege[ \t]+\d{1,2})?|enable)"
    r"[ \t]+(?:password|secret)(?:[ \t]+(?P<type>\d))?[ \t]+(?P<value>\S{4,200})[ \t]*\r?$"
)
_NOT_PLAINTEXT_TYPES = frozenset(("4", "5", "6", "8", "9"))
_HAPROXY_GATE = Gate(("stats auth", "insecure-password"))
_HAPROXY = re.compile(
    r"(?m)^[ \t]*(?:stats[ \t]+auth[ \t]+(?P<user>[^\s:]{1,64}):"
    r"|user[ \t]+(?P<name>\S{1,64})[ \t]+insecure-password[ \t]+)(?P<value>\S{4,200})"
)
_DB2_GATE = Gate(("connect to",))
_DB2 = re.compile(
    r"(?m)^[ \t]*(?:(?:db2[ \t]*=>|EXEC[ \t]+SQL)[ \t]*(?:CONNECT|connect)|db2[ \t]+[\"']?(?:CONNECT|connect)|CONNECT)"
    r"[ \t]+(?:TO|to)[ \t]+[\w$#@.-]{1,64}[ \t]+(?:USER|user)[ \t]+(?P<user>[^\s\"';]{1,64})[ \t]+(?:USING|using)"
    r"[ \t]+[\"']?(?P<value>[^\s;\"']{4,200})"
)
_IPSEC_GATE = Gate(("psk", "eap", "xauth"))
_IPSEC = re.compile(
    r"(?m)^(?:[^\n:#\"]{0,200}[ \t])?:[ \t]*(?:PSK|EAP|XAUTH)[ \t]+\"(?P<value>[^\"\n]{4,200})\""
)

# Redis's ACL rules: a users.acl line ("user NAME" and rules, lowercase) or ACL SETUSER (perhaps
# after redis-cli or a prompt, "127.0.0.1:6379>"), and each >PASSWORD among the rules, perhaps
# quoted ('>pw', as a shell needs it). In a users.acl line every word before it must be a rule.
_ACL_RULE = (
    r"(?:on|off|nopass|resetpass|reset|resetkeys|resetchannels|allkeys|allchannels|allcommands|nocommands"
    r"|skip-sanitize-payload|sanitize-payload|[~%&+<#!-]\S{0,200}|['\"]?>\S{1,200}|\([^)\n]{0,200}\))"
)
_REDIS_ACL_GATE = Gate(("user", "setuser"))
_REDIS_ACL = re.compile(
    r"(?m)^[ \t]*(?:(?P<setuser>(?i:(?:redis-cli[^\n]{0,200}?[ \t]|[\w.:-]{0,64}>[ \t]?)?acl[ \t]+setuser))|user)"
    r"[ \t]+\S{1,64}(?P<rules>(?:[ \t]+" + _ACL_RULE + r"){1,30})"
)
_ACL_PASSWORD = re.compile(r"(?:^|[ \t])['\"]?>(?P<value>[^\s>#'\"]\S{3,199})")
_HTPASSWD_GATE = Gate(("htpasswd", "mosquitto_passwd"))
# htpasswd's and mosquitto_passwd's options (-C takes a cost, -H a hash's name), then FILE (not with
# -n, which prints the line instead), USER and PASSWORD (with -b, batch mode, which takes it on the
# command line)
_HTPASSWD = re.compile(
    r"\b(?:htpasswd|mosquitto_passwd)(?P<options>(?:[ \t]+-[A-Za-z]{1,8}(?:[ \t]+(?:\d{1,3}|sha512(?:-pbkdf2)?))?){1,6})"
    r"(?P<rest>(?:[ \t]+[^\s|;&>`]{1,200}){2,3})"
)
_SHELL_WORD = re.compile(r"[^\s]+")
_OPTION_LETTERS = re.compile(r"(?:^|[ \t])-([A-Za-z]{1,8})")  # not sha512-pbkdf2's "b"
_AWS_PROMPT_GATE = Gate(("aws secret access key [",))
_AWS_PROMPT = re.compile(r"(?m)^[ \t]*AWS Secret Access Key \[[^\]\n]{0,64}\]:[ \t]*(?P<value>\S{16,200})")

_RULES = (
    (_IOS_GATE, _IOS),
    (_HAPROXY_GATE, _HAPROXY),
    (_DB2_GATE, _DB2),
    (_IPSEC_GATE, _IPSEC),
    (_AWS_PROMPT_GATE, _AWS_PROMPT),
)
_TRAILING = ".,;:`)\"'"


def _user(match: re.Match[str]) -> str | None:
    names = [name for name in ("user", "name") if name in match.re.groupindex]
    return next((match.group(name) for name in names if match.group(name) is not None), None)


def find_in_device_configs(text: str, lowered: str) -> Iterator[Finding]:
    """Passwords in devices' and servers' configuration syntax; `lowered` is text.lower() with the
    text's offsets (the gates read it; the patterns read the text, these syntaxes' own case)."""
    for gate, pattern in _RULES:
        if not gate.open(lowered):
            continue
        for match in pattern.finditer(text):
            value = match.group("value")
            if pattern is _IOS:
                if match.group("type") in _NOT_PLAINTEXT_TYPES:
                    continue  # secret 5 $1$...: a hash of the password, or its encryption
                context = match.group("prompt") or match.group("type") or match.group("privilege")
                if not context and character_classes(value) < 2:
                    continue  # "enable secret scanning", "enable password writeback": words
            if not _literal(value, _user(match)):
                continue  # monitor:monitor, a placeholder, a variable, a state
            yield Finding("secret", match.start("value"), match.end("value"), 0.85, "password")
    yield from _redis_acl(text, lowered)
    yield from _htpasswd(text, lowered)


def _literal(value: str, user: str | None) -> bool:
    """A password a person chose where a syntax gives a literal: not the user's name (a default),
    a placeholder, a variable, a state or a word about a password (">passwd" in Redis's
    documentation)."""
    return (
        value != user
        and not PLACEHOLDER.match(value)
        and not mentions_secret(value)
        and value.lower() not in PASSWORD_WORDS
        and value_confidence(value, quoted=True) > 0
    )


def _redis_acl(text: str, lowered: str) -> Iterator[Finding]:
    if not _REDIS_ACL_GATE.open(lowered) or ">" not in text:
        return
    for match in _REDIS_ACL.finditer(text):
        start = match.start("rules")
        for password in _ACL_PASSWORD.finditer(match.group("rules")):
            value = password.group("value").rstrip(_TRAILING)
            if _literal(value, None):
                begin = start + password.start("value")
                yield Finding("secret", begin, begin + len(value), 0.85, "password")


def _htpasswd(text: str, lowered: str) -> Iterator[Finding]:
    if not _HTPASSWD_GATE.open(lowered):
        return
    for match in _HTPASSWD.finditer(text):
        options = "".join(_OPTION_LETTERS.findall(match.group("options")))
        if "b" not in options:
            continue  # without -b htpasswd asks for the password: no word of the line is one
        words = list(_SHELL_WORD.finditer(match.group("rest")))
        first = 0 if "n" in options else 1  # -n prints the line: no FILE
        if len(words) < first + 2:
            continue
        user, password = words[first].group().strip("\"'"), words[first + 1]
        value = password.group().strip("\"'").rstrip(_TRAILING)
        if _literal(value, user):
            begin = match.start("rest") + password.start() + (1 if password.group()[0] in "\"'" else 0)
            yield Finding("secret", begin, begin + len(value), 0.85, "password")
