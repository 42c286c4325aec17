"""Secrets in SQL rows: INSERT INTO t (..., password, ...) VALUES (..., '...', ...), the literal in
a secret column's place in each row. router.signals.sensitivity.secrets runs `find_in_sql_rows`
beside its own rules; the values are read with calls' argument reader (bounded to 400
characters a row, 50 rows a statement).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from router.signals.sensitivity.calls import LITERAL, arguments_of
from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.secret_values import strong, value_confidence

# SQL's INSERT INTO t (..., password, ...) VALUES (..., 'PASSWORD', ...): the literal in a secret
# column's place, in each row (at most 50). A column that holds a hash, a salt or something about the
# secret (password_hash, hashed_password, token_type, password_changed_at) is not one; nor is a value
# in a hash's format ($2b$12$..., {SSHA}..., 64 hex digits where a password would be).
_INSERT = re.compile(
    r"(?i)\binsert\s+(?:ignore\s+)?into\s+[\w.`\"\[\]]{1,100}\s*\(([^()]{1,300})\)\s*values\s*\("
)
_NEXT_ROW = re.compile(r"\s*,\s*\(")
# A password's column ("pass" alone too), or a key's or token's named as such; and columns that may
# hold a secret or something else ("token", an NLP table's word; "secret", a setting's value;
# "season_pass", "boarding_pass"), where only a strong value counts.
_SECRET_COLUMN = re.compile(
    r"(?:password|passwd|pwd|pass_?word|passphrase|psk|(?:api|secret|access|private|signing)_?key"
    r"|client_?secret|(?:access|refresh|auth|api|bearer|session)_?token)$|^pass$"
)
_MAYBE_SECRET_COLUMN = re.compile(r"(?:^|_)(?:pass|secret|token)$")
# in such a column a value counts when strong and long (12 or more) or holding a symbol other than
# - _ . (a model's or a product's name is short and plain: GPT-4o, mRNA-1273)
_SYMBOL = re.compile(r"[^\w.-]")
_NOT_SECRET_COLUMN = re.compile(
    r"hash|crypt|digest|salt|type|_at$|_on$|expir|length|hint|policy|reset_|changed"
)
_HASH_FORMAT = re.compile(
    r"^(?:\$[\w-]+\$|\{\w+\}|pbkdf2|(?:sha\d*|md5|scrypt|bcrypt|argon2\w*)[:$]|[0-9a-fA-F]{32,}$"
    # or where a secret is kept: vault:kv/db-prod, arn:aws:secretsmanager:..., env:DB_PASSWORD
    r"|(?:vault|secrets?|env|arn|ssm|kv|keyvault|op|aws|gcp|azure)[:/])",
    re.IGNORECASE,
)


def _insert_columns(columns: str) -> list[int]:
    """For each of an INSERT's columns: 2 if it holds a secret in plain text, 1 if it may (a strong
    value there is one), 0 if not."""
    names = [name.strip().strip('`"[]').lower() for name in columns.split(",")]
    return [
        0
        if _NOT_SECRET_COLUMN.search(name)
        else 2
        if _SECRET_COLUMN.search(name)
        else 1
        if _MAYBE_SECRET_COLUMN.search(name)
        else 0
        for name in names
    ]


_INSERT_GATE = Gate(("insert",))


def find_in_sql_rows(text: str, lowered: str) -> Iterator[Finding]:
    """Secrets in the rows of INSERT statements; `lowered` is text.lower() with the text's offsets."""
    if not _INSERT_GATE.open(lowered) or "(" not in text:
        return
    for match in _INSERT.finditer(text):
        secret = _insert_columns(match.group(1))
        if not any(secret):
            continue
        start = match.end()
        for _ in range(50):
            values = arguments_of(text, start, reach=400)
            for kind, span in zip(secret, values, strict=False):
                literal = LITERAL.match(text, *span) if kind else None
                if literal is None:
                    continue
                group = 1 if literal.group(1) is not None else 2
                value = literal.group(group)
                if kind == 1 and not (strong(value) and (len(value) >= 12 or _SYMBOL.search(value))):
                    continue  # token 'New-York', 'GPT-4o', 'Llama3.1'; season_pass 'Gold-Tier'
                if not _HASH_FORMAT.match(value) and value_confidence(value, quoted=False):
                    yield Finding("secret", literal.start(group), literal.end(group), 0.85, "password")
            if not values or (row := _NEXT_ROW.match(text, values[-1][1] + 1)) is None:
                break
            start = row.end()
