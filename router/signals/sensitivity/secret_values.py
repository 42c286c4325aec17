"""Whether a value found where a secret would be is one: placeholders, references, messages about
the secret, and how much a value looks made up. Shared by every rule that reads a free-form value
(router.signals.sensitivity.secrets, .programs) and by gitleaks' entropy checks."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter

from router.signals.sensitivity.gazetteer import gazetteer

# A value as the rules capture it: perhaps quoted, then 4-200 characters with no space or quote.
VALUE = r"[\"']?([^\s\"']{4,200})"
PLACEHOLDER = re.compile(
    r"(?i)^(?:<.*>|\{.*\}|\[.*\]|\$.*|%.*%|%(?:\([^)]*\))?[a-z]|#\{.*\}#?|\*+|x+|\.+|-+|_+|null|none|nil|true|false|undefined|"
    # your_api_key, mypassword, the-secret, enter_password_here, replaceme, test123, fakekey: an
    # instruction's or a stand-in's words (not theodore1, myspace1, enterprise1, addison12, words a
    # person chose: after your/my/the/some/insert/enter/put/add/replace, a separator or the secret's
    # word must follow)
    r"(?:(?:your|my|the|some|insert|enter|put|add|replace)(?:[_-][a-z_-]*|(?:own)?(?:secret|password|passwd"
    r"|pass|pw|pwd|token|key|api_?key|apikey|credentials?|me|value|here|new|name|user|email|domain|host"
    r"|server|db|database|app|project|company|org|account)[a-z_-]*)?"
    r"|(?:test|fake|mock|sample)[a-z_-]*)(?:[_-]?v?\d+)?"
    r"|&{1,2}\w+|:\w+|@\w+|\w*(?:here|example|placeholder|changeme|"
    r"dummy|redacted|xxx+)\w*|str|string|int|bool|bytes|optional\[.*|env\b.*|process\.env.*"
    # YAML's tags for a value kept elsewhere: db_password: !vault |, key: !Ref ..., !secret db_pw
    r"|!(?:vault|secret|env|ref|sub|getatt|importvalue|ssm|include|encrypted|sops)\b.*"
    # SOPS's encrypted value: ENC[AES256_GCM,data:...,type:str]
    r"|(?-i:ENC)\[.*"
    r"|(?-i:![A-Z_][A-Z0-9_]*!))$"  # (and a Windows batch file's !VARIABLE!, in capitals: not !Passw0rd!)
    # ghp_xxxx..., xoxb-xxx, AKIAXXXX: a token shape filled with x's is documentation (in one case:
    # a random token may hold "XxX")
    r"|^(?-i:.*(?:xxx|XXX))"
    # (&&password, :new_password, @new_pw: SQL*Plus, bind and T-SQL variables; your_api_key_123;
    # #{DbPassword}#: Octopus Deploy's substitution; %s, %(pw)s: a format's or a query's parameter)
)
# A number with a unit, or a run of them: 1500us, 2.5e-3, 25.3nW, 1280px, 0.5ms-2ms, 10^-12 ("pw"
# also names pulse widths, page widths and picowatts: such a value is not a password).
MEASUREMENT = re.compile(
    r"(?i)[-+]?\d[\d.,]*(?:(?:e|\^|\*\*)[-+]?\d+)?[a-zµ°%]{0,4}(?:[-~/x][-+]?\d[\d.,]*(?:(?:e|\^)[-+]?\d+)?[a-zµ°%]{0,4})*"
)
# A key that names where a secret is kept, or something about it, rather than the secret itself.
REFERENCE_SUFFIXES = (
    "file", "path", "dir", "env", "var", "name", "length", "policy", "url", "ref",
    # how it is kept or checked (password_encryption = scram-sha-256, token_type, hash_algorithm)
    "encryption", "algorithm", "method", "mode", "type", "scheme", "cipher", "hashing",
)  # fmt: skip
# The last word of a key's name after the secret's (token_hash, keyFingerprint, token_uri,
# MaxPasswordAge, token_ttl, password_history) or before it (hashed_secret, encryptedPassword,
# sealed_secret): a digest, an address, a setting or a value kept encrypted, not the secret; read as
# whole words of the name (DB_PASSWORD_STAGE is a password, UNENCRYPTED_PASSWORD too).
REFERENCE_AFTER = frozenset(
    ("hash", "hashed", "digest", "checksum", "fingerprint", "uri", "endpoint", "age", "ttl", "history")
)
REFERENCE_BEFORE = frozenset(("hash", "hashed", "encrypted", "sealed"))
# A value masked or cut short where it was shown: a mark of what is missing (eyJ***REDACTED***,
# at_7f3c…(truncated), Terraform's "(sensitive value)"), or an ellipsis after a token's prefix or
# inside the value (sk-..., sk-ant-..., AgBy...truncated..., MIIEv...(redacted)...); not an ellipsis
# a sentence puts after a whole value ("DB_PASSWORD=Xk7#pQ9mZw2... in the .env").
_MASK_MARK = re.compile(
    r"(?i)\*{3}|(?<![a-z])(?:redacted|truncated|masked|omitted|elided)(?![a-z])|\(sensitive\b"
)
# Bullets as password fields and consoles show a value (npm_••••••••••••, sk_live_••••••••4242):
# masked where there are no fewer bullets than visible characters, not a whole key with bullets after it.
_BULLETS = "\u2022\u25cf\u2219"
_ELLIPSIS = re.compile(r"\.{3}|\u2026")
_PREFIX_ONLY = 8  # what stands before an ellipsis, at most, for a value to be a prefix and a mark


def masked(value: str) -> bool:
    """Whether `value` is shown masked or cut short (see _MASK_MARK, _ELLIPSIS)."""
    if _MASK_MARK.search(value):
        return True
    bullets = sum(value.count(char) for char in _BULLETS)
    if bullets >= 3 and bullets >= len(value.strip("\"'`")) - bullets:
        return True
    ellipsis = _ELLIPSIS.search(value)
    if ellipsis is None:
        return False
    rest = value[ellipsis.end() :].strip(".\u2026,;:!?)\"'`")
    return ellipsis.start() <= _PREFIX_ONLY or bool(rest)


# A digest named by its algorithm (Vault's audit log hmac-sha256:..., sha256:..., a Docker digest),
# and a password's stored hash, whole, in a format that names its algorithm: Django's
# (pbkdf2_sha256$ITERATIONS$SALT$HASH, argon2$argon2id$v=19$..., bcrypt_sha256$$2b$...) and
# PostgreSQL's SCRAM-SHA-256$ITERATIONS:SALT$KEY:KEY. Not the password: what a server keeps in its
# place. (Not PostgreSQL's "md5" + 32 hex digits: its md5 login takes that hash itself.)
_DIGEST = re.compile(
    r"(?i)(?:hmac-)?(?:sha-?(?:1|224|256|384|512)|md5|blake2b?)[:$-][0-9a-f]{16,}"
    r"|pbkdf2_sha(?:1|256)\$\d+\$[^$\s]+\$[A-Za-z0-9+/=]{20,}\Z"
    r"|argon2\$argon2(?:id|i|d)\$v=\d+\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{20,}\Z"
    r"|bcrypt(?:_sha256)?\$\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}\Z"
    r"|scram-sha-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{20,}:[A-Za-z0-9+/=]{20,}\Z"
)
# A file's path (the credentials file a variable names, not its contents): /home/u/key.json,
# ~/.config/gcloud/adc.json, ./secrets/db.txt, C:\\keys\\app.pfx: under a system's or a user's root,
# or relative, or ending in a file's extension.
_PATH = re.compile(
    r"(?:~|\.{1,2})/[\w.@-]+(?:/[\w.@-]+)*"
    r"|/(?:home|etc|usr|var|opt|srv|mnt|tmp|root|run|Users|Library|bin|sbin|lib)(?:/[\w.@-]+)+"
    r"|/[\w.@-]+(?:/[\w.@-]+)*\.[A-Za-z][A-Za-z0-9]{1,4}"
    r"|[A-Za-z]:\\[\w .@\\-]+"
)


def _a_path(value: str) -> bool:
    """A path (_PATH) whose parts are names, not made up: an AWS secret key holds slashes too
    ("/k7MDENG/bPxRfiCY..."), its parts mixing both cases and digits."""
    return _PATH.fullmatch(value) is not None and not any(
        any(c.isupper() for c in part) and any(c.islower() for c in part) and any(c.isdigit() for c in part)
        for part in re.split(r"[/\\]", value)
    )


# An instruction where a value should stand: AUTH0_SECRET='use [openssl rand -hex 32] to generate
# ...': a verb first, then a command or a stand-in in brackets or backticks, or "to generate", "your",
# "here" (not "use the force luke always", a passphrase)
_INSTRUCTION = re.compile(
    r"(?i)(?:use|run|generate|replace|enter|insert|paste|fill in|put)\s+\S+(?:\s+\S+){2,}"
)
_INSTRUCTION_MARK = re.compile(r"(?i)[\[<`]|\bto (?:generate|create|get)\b|\byour\b|\bhere\b")


def _an_instruction(value: str) -> bool:
    return (
        _INSTRUCTION.fullmatch(value) is not None
        and _INSTRUCTION_MARK.search(value) is not None
        and not any(strong(word) for word in value.split())
    )


# A connection string's next field after a value: PWD=%SQL_PWD%;TrustServerCertificate=yes.
_NEXT_FIELD = re.compile(r";[ \t]*[A-Za-z][A-Za-z0-9 _]{0,40}=")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{8,}={0,2}")


def field_value(value: str) -> str:
    """`value` up to a connection string's next field (";Key="), if one follows it."""
    found = _NEXT_FIELD.search(value)
    return value[: found.start()] if found else value


def variable_field(value: str) -> bool:
    """A variable's reference as a connection string field's value, read with the fields after it:
    PWD=%SQL_PWD%;TrustServerCertificate=yes, Password=${DB_PASS};Encrypt=true."""
    field = field_value(value)
    return field != value and field[:1] in "%$<{!#" and bool(PLACEHOLDER.match(field))


# What a base64 value of documentation decodes to: the stand-ins themselves, not every value the
# PLACEHOLDER pattern reads as one in a text (a decoded "Sphere2024" is a password).
_DECODED_STAND_IN = re.compile(
    r"(?i)(?:changeme|change_me|changeit|placeholder|password|secret|example|dummy|test|x{3,}|\*+"
    r"|your[_-]?[a-z_-]*|<[^>]*>|\$\{[^}]*\}|\{\{[^}]*\}\})"
)


def _encoded_placeholder(value: str) -> bool:
    """A base64 value that decodes to a stand-in (Y2hhbmdlbWU= is "changeme"): a Kubernetes
    Secret's data written as documentation."""
    if len(value) % 4 or not _BASE64.fullmatch(value):
        return False
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return False
    plain = decoded.strip()
    return bool(_DECODED_STAND_IN.fullmatch(plain)) or plain.lower() in DOCUMENTED_DEFAULTS


# A bracketed placeholder on one line ([REDACTED per policy], <your token>, {secret}, Octopus
# Deploy's #{DbPassword}#): a rule that
# reads a bare value stops at its first blank or bracket and sees only "[REDACTED".
_BRACKETED = re.compile(r"\[[^\]\n]{0,80}\]|<[^>\n]{0,80}>|#?\{[^}\n]{0,80}\}")


def bracketed_at(text: str, position: int) -> bool:
    """Whether a bracketed placeholder begins at text[position]."""
    return _BRACKETED.match(text, position) is not None


_REGEX_CLASS = re.compile(r"\[[^\]]*(?:a-z|A-Z|0-9)[^\]]*\]")
_CODE_REFERENCE = re.compile(
    r"^[A-Za-z_][\w]*(?:(?:\.|::)[A-Za-z_]\w*)*(?:!?\(.*\)?|!?\[.*\]?)?[;,]?$"  # (Rust's a::b(, format!()
)
# A PowerShell cmdlet, Verb-Noun: $password = Read-Host -AsSecureString, $pw = Get-Content ...
# (PowerShell's common verbs only: Correct-Horse, Tiger-Lily are passwords)
_CMDLET = re.compile(
    r"^(?:Get|Set|New|Read|Import|Export|ConvertTo|ConvertFrom|Invoke|Select|Join|Out|Add|Test|Resolve"
    r"|Format|Find|Request|Protect|Unprotect|Start|Write)-[A-Z][A-Za-z]+$"
)


# A secret's name as a word in a value: a message or a label about the secret, not the secret
# ("Orbit monkey 42 lantern!" is a passphrase: "monkey" holds "key" but is not the word).
_SECRET_NOUN = re.compile(
    r"(?i)(?<![a-z])(?:password|passwort|passphrase|passcode|pin|token|secret|key|credential|api[-_ ]?key)s?(?![a-z])"
)


# A compound name's parts (storePassword: store, Password; DB_PASSWORD_FILE: DB, PASSWORD, FILE)
_NAME_PARTS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
# The words that name a password in keys, options and values, shared by the rules that read them
PASSWORD_WORDS = ("password", "passwd", "passphrase", "pwd")


def names_secret(value: str) -> bool:
    """A name one of whose parts is a secret's word (storePassword, newPassword, tokenValue,
    SecretStr), not a word that holds one (topsecret, secretariat)."""
    return any(_SECRET_NOUN.fullmatch(part) for part in _NAME_PARTS.findall(value))


def mentions_secret(value: str) -> bool:
    return _SECRET_NOUN.search(value) is not None


def shannon_entropy(value: str) -> float:
    counts = Counter(value)
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in counts.values())


def character_classes(value: str) -> int:
    return (
        any(c.islower() for c in value)
        + any(c.isupper() for c in value)
        + any(c.isdigit() for c in value)
        + any(not c.isalnum() for c in value)
    )


def strong(value: str) -> bool:
    """A value that reads as a made-up password rather than a name, version or region: a letter
    and a digit, and both cases or a symbol other than - _ . ("Lz3#kX6cVb", not "us-east-2",
    "v1.2.3" or "GPIO17"). The rules that read a value far from its key ask for it."""
    letters = [c for c in value if c.isalpha()]
    if not letters or not any(c.isdigit() for c in value):
        return False
    mixed = any(c.isupper() for c in letters) and any(c.islower() for c in letters)
    return mixed or any(not c.isalnum() and c not in "-_." for c in value)


def _called(value: str) -> bool:
    """A call: a name that does not read as a password before "(" (MD5(, PulseWidth(; not Xk7pQ2(wz9)."""
    name, parenthesis, _ = value.partition("(")
    return bool(parenthesis) and not strong(name)


# Passwords that software documents as its default or its examples' (every install or tutorial has
# them, so they protect nothing): the JDK's cacerts store (changeit), RabbitMQ's guest, the Docker
# images' and tutorials' postgres / mysql / root / admin, Oracle's sample schemas (scott/tiger,
# system/manager), OpenShift Local's developer/developer and kubeadmin, Raspberry Pi OS's old
# pi/raspberry, Vagrant's base boxes, MinIO's minioadmin, Neo4j's neo4j, Dell iDRAC's root/calvin.
# Read only where a word a person chose would otherwise count (a random-looking value is never one).
DOCUMENTED_DEFAULTS = frozenset(
    ("changeit", "guest", "postgres", "mysql", "root", "admin", "administrator", "tiger", "manager",
     "developer", "kubeadmin", "raspberry", "vagrant", "minioadmin", "neo4j", "calvin", "default",
     # Airflow's and WordPress's compose files (Docker's WordPress sample's somewordpress too),
     # osixia/openldap's config password, the Android debug
     # keystore, the malware-sample archives' convention, Redis's documented example, the device
     # images' logins (Ubuntu cloud images, pfSense, DietPi, openmediavault)
     "airflow", "wordpress", "somewordpress", "config", "android", "infected", "foobared", "ubuntu", "pfsense", "dietpi",
     "openmediavault",
     # Oracle's sample schemas' and its Express Edition images' (system/oracle)
     "oracle")
)  # fmt: skip


# A setting's state where a configuration could hold a password (password: required, PASSWORD=disabled)
SETTING_WORDS = frozenset(
    ("required", "optional", "enabled", "disabled", "enable", "disable", "hidden", "masked", "generated",
     "random", "prompt", "inherit", "inherited", "ignore", "ignored", "unset", "blank", "empty",
     "missing", "invalid", "expired", "unknown", "encrypted", "hashed", "plaintext", "notset",
     # Ansible's update_password, a store's kind; a hand redaction or a ticket's note; a test's wrong one
     "always", "never", "on_create", "keyring", "removed", "scrubbed", "censored", "omitted", "withheld",
     "unchanged", "unused", "emailed", "incorrect", "wrong",
     # a checklist's or a form's states; how a password is hashed
     "correct", "changed", "verified", "rotated", "protected", "migrated", "strong", "weak", "updated",
     "confirmed", "confirm", "valid", "visible", "interactive", "bcrypt", "argon2", "argon2id",
     "scrypt", "pbkdf2", "sha256", "sha512")
)  # fmt: skip
# A constant's or a placeholder's name in capitals (CHANGE_ME, NOT_SET, SET_IN_VAULT, NOVA_PASS,
# FORCE_PLUS_PERMANENT, __REPLACE__): not how people write a password they chose
# (a random key in capitals and digits, X7K9P2M4Q8R3, is not one: its first part must be letters)
_CAPITALS_NAME = re.compile(r"_*[A-Z]+(?:_+[A-Z0-9]+)*_*")


# A documentation's stand-in or where a secret is kept, written as one lowercase word: dbpassword,
# userpass, fromvault, keyvault, apitoken
STAND_IN = re.compile(r"[a-z]{0,10}(?:password|passwd|pass|pwd|pw|vault|token|secret)[a-z]{0,10}")


def chosen_word(value: str) -> bool:
    """A word a person chose as a password rather than one of the language's: six or more
    lowercase ASCII letters, not an English dictionary word nor ending like one nor one mistyped
    ("iloveyou", "gerasimova"; not "incorrect", "football", "hardcoded", "incorect"), and not a
    placeholder, a documented default, a setting's state or a value of fewer than four distinct
    letters (value_confidence's checks for a literal)."""
    return (
        len(value) >= 6
        and value.isascii()
        and value.isalpha()
        and value.islower()
        and not gazetteer().reads_english(value)
        and not gazetteer().near_english(value)
        and value_confidence(value, quoted=True) > 0
    )


def value_confidence(value: str, quoted: bool) -> float:
    """How much an assigned value looks like a real secret rather than a name, type or placeholder.
    `quoted`: the value is a literal by the syntax (quoted in the text, or where a format or a
    documented client takes only a password), so a word a person chose counts; else an unquoted
    word may be code's name for a variable and must look made up."""
    lowered = value.lower()
    if (
        shown_not_secret(value)  # a placeholder, masked, a stand-in pair, published, unsigned
        or variable_field(value)
        or len(set(value)) < 4
        or "example" in lowered
        or lowered in DOCUMENTED_DEFAULTS
        or _DIGEST.match(value)
        or _a_path(value.strip("\"'"))
        or _an_instruction(value.strip("\"'"))
        or _encoded_placeholder(value.strip("`"))
    ):
        return 0.0
    if mentions_secret(value) and (" " in value or not strong(value)):
        return 0.0  # "Enter your password", "API key missing", "new_password", "password-1": about it
    if not strong(value) and names_secret(value):
        return 0.0  # storePassword 'storePassword', 'newPassword', 'tokenValue': a name, not a value
    if lowered in SETTING_WORDS:
        return 0.0  # password: required, auth_password: disabled: how a setting is set, not a secret
    if quoted and not strong(value) and (_CAPITALS_NAME.fullmatch(value) or value.startswith("`")):
        return 0.0  # PASSWORD=CHANGE_ME, DB_PASSWORD=`openssl rand ...`: a name or a command, not a value
    if "placeholder" in lowered or _REGEX_CLASS.search(value):
        return 0.0  # ^[A-Za-z0-9#?!]{8,}$: a pattern for passwords, not one
    if (
        not quoted
        and _CODE_REFERENCE.match(value)
        and (not any(c.isdigit() for c in value) or "." in value or _called(value))
    ):
        return 0.0  # password=user_password, token=get_token(), pw = MD5(CONCAT(...: code, not a value
    if not quoted and (
        _CMDLET.match(value)
        or (value.startswith("`") and (len(value) < 3 or not value.endswith("`") or "${" in value))
    ):
        return 0.0  # $pw = Read-Host ...; `Bearer ${token}`: a template literal (`Xk7pQ2wz9L`: inline code, a value)
    classes = character_classes(value)
    if len(value) >= 16 and shannon_entropy(value) >= 3.5 and classes >= 2:
        return 0.9
    if classes >= 2 and len(value) >= 6:
        return 0.75
    return 0.55 if quoted and len(value) >= 6 else 0.0


# A private key's body: a run of base64 as its lines hold it, 24 characters or more (keys are
# wrapped at 64 columns, some at 32), not "...", "MIIEv...(redacted)" or "<paste your key here>";
# read past headers (a PGP block's Comment:, a PEM's DEK-Info:).
_PEM_BODY = re.compile(r"[A-Za-z0-9+/=]{24,}")
_PEM_READ = 3000


def pem_body(text: str, start: int, end: int | None) -> bool:
    """Whether the private key whose header begins at `start` has a body of key material before
    `end`, its block's end (None for a key cut short, with no END line: read 3,000 characters on)."""
    return _PEM_BODY.search(text, start, start + _PEM_READ if end is None else end) is not None


def frame_without_key(text: str, start: int, end: int, complete: bool) -> bool:
    """A private key's block at text[start:end] that holds no key: no key material in it ("...",
    "<paste your key here>"), or masked. `complete`: the block ends at its END line; else it was
    cut short, and its body is looked for 3,000 characters on. Never the placeholder pattern: a
    key's body may hold "XXX"."""
    return not pem_body(text, start, end if complete else None) or masked(text[start:end])


def last_name_part(name: str) -> str:
    """The last word of a compound name, lowercase (storePassword: "password", DB_PASSWORD_FILE:
    "file"); "" for none."""
    parts = _NAME_PARTS.findall(name)
    return parts[-1].lower() if parts else ""


# Keys and tokens that vendors' documentation and standards print (and so tutorials, answers and
# test suites copy): whoever pastes one leaks nothing. Stripe's API reference (three generations of
# its test secret key and its publishable key), the CAPTCHA services' documented test keys
# (Cloudflare Turnstile's, hCaptcha's and Google reCAPTCHA v2's, which always pass or always fail),
# Slack's OAuth documentation (the bot token of its oauth.v2.access example), the GitHub token stand-in that public test suites reuse as a fake
# (ghp_16C7e42F...: a stored index of public code finds it in dozens of tests), and the signatures
# of jwt.io's default token and of RFC 7519's example (a token ending in one was copied from them,
# whatever payload it was given). Each is compared whole: a value that only holds one is read as ever.
PUBLISHED_KEYS = frozenset(
    ("sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
     "sk_test_26PHem9AhJZvU623DfE1x4sd", "pk_test_TYooMQauvdEDq54NiTphI7jx",
     "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
     "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
     "1x0000000000000000000000000000000AA", "2x0000000000000000000000000000000AA",
     "3x0000000000000000000000000000000AA", "1x00000000000000000000AA", "2x00000000000000000000AB",
     "1x00000000000000000000BB", "2x00000000000000000000BB", "3x00000000000000000000FF",
     "0x0000000000000000000000000000000000000000", "10000000-ffff-ffff-ffff-000000000001",
     "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI", "6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe")
)  # fmt: skip
PUBLISHED_JWT_SIGNATURES = (
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",  # jwt.io's HS256 example ("your-256-bit-secret")
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",  # RFC 7519, section 3.1
)


def _token(value: str) -> str:
    """A matched value without its quotes and a "Bearer " or "Basic " prefix."""
    token = value.strip("\"'`")
    scheme, _, rest = token.partition(" ")
    return rest if scheme.lower() in ("bearer", "basic") and rest else token


def _jwt_shaped(token: str) -> bool:
    return token.startswith("ey") and token.count(".") == 2


def published(value: str) -> bool:
    """A key or token that documentation prints (PUBLISHED_KEYS, the whole value), or a JWT signed
    as jwt.io's or RFC 7519's example is; `value` may carry quotes or a "Bearer " prefix."""
    token = _token(value)
    return token in PUBLISHED_KEYS or (_jwt_shaped(token) and token.endswith(PUBLISHED_JWT_SIGNATURES))


def unsigned_jwt(value: str) -> bool:
    """A JSON Web Token with no signature (header.payload. and nothing after the last dot: what
    alg "none" gives), which anyone can write and so proves nothing (gitleaks' jwt rule takes the
    signature as optional)."""
    token = _token(value)
    return _jwt_shaped(token) and token.endswith(".")


# Not the secret but what stands for it, whole: ciphertext that only a key service opens
# (HashiCorp Vault's transit "vault:v1:...", Spring Cloud Config's "{cipher}...", Jasypt's
# "ENC(...)"), and tokens public by design (Mapbox's public "pk.eyJ..." tokens, which web pages
# carry; its secret ones begin "sk.").
CIPHERTEXT = re.compile(
    r"vault:v\d+:[A-Za-z0-9+/=]{20,}|\{cipher\}[A-Za-z0-9+/=]{32,}|ENC\([A-Za-z0-9+/=]{16,}\)"
)
_MAPBOX_PUBLIC = re.compile(r"pk\.(eyJ[A-Za-z0-9_-]+)\.[A-Za-z0-9_-]{10,}")


def _ciphertext_or_public(value: str) -> bool:
    """Ciphertext (CIPHERTEXT) or a Mapbox public token, whose payload names its account ("u")."""
    token = value.strip("\"'`")
    if CIPHERTEXT.fullmatch(token):
        return True
    public = _MAPBOX_PUBLIC.fullmatch(token)
    if public is None:
        return False
    try:
        payload = json.loads(base64.urlsafe_b64decode(public.group(1) + "=" * (-len(public.group(1)) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(payload, dict) and "u" in payload


def shown_not_secret(value: str) -> bool:
    """A value a known format's rule matched that documentation or a log shows in its place: a
    placeholder, a masked or cut value, a user:STAND_IN pair, a key documentation prints, a token
    no key signed, ciphertext or a token public by design."""
    return (
        bool(PLACEHOLDER.match(value))
        or masked(value)
        or stand_in_password(value)
        or published(value)
        or unsigned_jwt(value)
        or _ciphertext_or_public(value)
    )


def stand_in_password(secret: str) -> bool:
    """A user:password pair whose password is a stand-in written in capitals or brackets (curl -u
    "api:YOUR_API_KEY", user:<password>, admin:${DB_PASS}), not a lowercase word someone chose
    ("admin:test1234" is a password people use)."""
    password = secret.strip("\"'").rpartition(":")[2]
    return bool(PLACEHOLDER.match(password)) and (
        bool(_CAPITALS_NAME.fullmatch(password)) or password[:1] in "<$%{"
    )
