"""Passwords in the configuration syntax of network devices and servers, each a syntax whose field
is a literal password, so that a word a person chose counts there (read as quoted):

- Cisco IOS and the CLIs that copy it (NX-OS, Arista EOS): `username NAME [privilege N] password|secret
  [0|7] VALUE` and `enable password|secret [0|7] VALUE`, on a line of their own, perhaps after the
  device's prompt (`Router(config)#`). Type 0 is the password itself and type 7 a reversible
  encoding of it; types 5, 8 and 9 are one-way hashes, not read.
- HAProxy: `stats auth USER:PASSWORD`, and a userlist's `user NAME insecure-password PASSWORD`.
- DB2's command line: `CONNECT TO DATABASE USER NAME USING PASSWORD`.
- strongSwan's and Libreswan's ipsec.secrets: `... : PSK "SECRET"`, `NAME : EAP|XAUTH "PASSWORD"`.

router.signals.sensitivity.secrets runs `find_in_device_configs` beside its own rules. Every
pattern is gated by the words it needs, bounded to one line, and run on the lowercased text (whose
offsets are the text's), the value read from the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.secret_values import PLACEHOLDER, value_confidence

_IOS_GATE = Gate(("username", "enable"))
# the device's prompt, as a pasted session shows it: "Router(config)#", "sw01#"
_IOS_PROMPT = r"(?:[\w.-]{1,64}(?:\([\w-]{1,32}\))?#[ \t]*)?"
_IOS = re.compile(
    r"(?m)^[ \t]*" + _IOS_PROMPT
    + r"(?:username[ \t]+\S{1,64}(?:[ \t]+privilege[ \t]+\d{1,2})?|enable)"
    r"[ \t]+(?:password|secret)(?:[ \t]+(?P<type>\d))?[ \t]+(?P<value>\S{4,200})[ \t]*\r?$"
)  # fmt: skip
_HASHED_TYPES = frozenset(("5", "8", "9"))
_HAPROXY_GATE = Gate(("stats auth", "insecure-password"))
_HAPROXY = re.compile(
    r"(?m)^[ \t]*(?:stats[ \t]+auth[ \t]+[^\s:]{1,64}:|user[ \t]+\S{1,64}[ \t]+insecure-password[ \t]+)"
    r"(?P<value>\S{4,200})"
)
_DB2_GATE = Gate(("connect to",))
_DB2 = re.compile(
    r"\bconnect[ \t]+to[ \t]+[\w$#@.-]{1,64}[ \t]+user[ \t]+\S{1,64}[ \t]+using[ \t]+(?P<value>[^\s;]{4,200})"
)
_IPSEC_GATE = Gate(("psk", "eap", "xauth"))
_IPSEC = re.compile(r":[ \t]*(?:psk|eap|xauth)[ \t]+\"(?P<value>[^\"\n]{4,200})\"")

_RULES = (
    (_IOS_GATE, _IOS),
    (_HAPROXY_GATE, _HAPROXY),
    (_DB2_GATE, _DB2),
    (_IPSEC_GATE, _IPSEC),
)


def find_in_device_configs(text: str, lowered: str) -> Iterator[Finding]:
    """Passwords in devices' and servers' configuration syntax; `lowered` is text.lower() with the
    text's offsets."""
    for gate, pattern in _RULES:
        if not gate.open(lowered):
            continue
        for match in pattern.finditer(lowered):
            if "type" in pattern.groupindex and match.group("type") in _HASHED_TYPES:
                continue  # secret 5 $1$...: a one-way hash of the password, not the password
            value = text[match.start("value") : match.end("value")]
            if PLACEHOLDER.match(value) or not value_confidence(value, quoted=True):
                continue
            yield Finding("secret", match.start("value"), match.end("value"), 0.85, "password")
