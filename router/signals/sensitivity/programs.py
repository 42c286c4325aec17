"""Credentials handed to programs: passwords on a client's command line (mysql -p, sqlcmd -P, ldap
-w, docker login -p, smbclient -U user%pw, keytool -storepass, ...), in a server's configuration
(Redis requirepass, an XML element, Ansible's connection variables; the files clients read,
.pgpass and .netrc, are credential_files'), in SQL (IDENTIFIED BY, SET PASSWORD, PostgreSQL's role PASSWORD), and as the password
argument of documented library calls (router.signals.sensitivity.calls; Go's ssh.Password here).

Every gap a pattern skips is bounded (a command's options at most 300 characters after its name),
so that text made of a command's name over and over costs linear time;
router.signals.sensitivity.secrets runs `find_in_programs` beside its own rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from router.signals.sensitivity.calls import find_in_calls
from router.signals.sensitivity.findings import Finding
from router.signals.sensitivity.gates import Gate
from router.signals.sensitivity.scanning import case_aligned, lead, word_start
from router.signals.sensitivity.secret_values import (
    PASSWORD_WORDS,
    PLACEHOLDER,
    VALUE,
    strong,
    value_confidence,
)

# The rest of one command: at most 300 characters, not past a line end, ; & | (the next command)
# or a backtick (the end of a command quoted in prose).
_SAME_COMMAND = r"[^\n;&|`]{0,300}?"
# Substrings (of the lowercased text) that _FLAGS needs; a prompt holding none of them skips it.
_FLAG_GATE = Gate(("--pass", "mysql", "mariadb", "redis-cli", "sshpass", "curl"))
# Passwords given to a client on its command line: --password=X or --password X (any program),
# mysql's -pX (no space), redis-cli's -a X, sshpass -p X, curl's -u/--user user:X (basic auth); the
# value not the next option (pg_restore --password --dbname=shop: --password only asks for one).
_FLAGS = re.compile(
    r"(?:--pass(?:word|wd)?(?:=|\s+)|\b(?:mysql|mysqldump|mysqladmin|mariadb)\b"
    + _SAME_COMMAND
    + r"\s-p(?=\S)"
    r"|\bredis-cli\b" + _SAME_COMMAND + r"\s-a\s+|\bsshpass\s+-p\s*"
    r"|\bcurl\b" + _SAME_COMMAND + r"\s(?:-u\s*|--user[=\s]+)[\"']?[^\s:\"']+:)[\"']?(?!-)([^\s\"']{4,200})"
)
# An option's value: not the next option, a path, a variable or a reference (openssl's file:, env:,
# fd: forms, BuildKit's --secret id=...,src=...); openssl's pass: form is the password after it
# (a base64 value's "=" is part of it).
_OPTION_VALUE = (
    r"[\"']?(?![-/~.$%<{]|(?:file|env|fd|stdin):|(?:id|src|source|env|type|target|required|mode|uid|gid)=)"
    r"(?:pass:)?([^\s\"']{4,200})"
)
# Any program's option named for a secret, by the usual conventions: --admin-pass X, --client-secret
# X, --api-token=X, -Password X (PowerShell), -passwd X; the name's last part the secret's word
# (not --bypass, --password-file, --token-path), the value not the next option, a path or a
# variable (value_confidence). Read on the lowercased text, whose offsets find_secrets keeps the
# text's (a Turkish "İ" lowers to two characters).
_SECRET_OPTION = re.compile(
    lead("-", r"[\w-]")
    + r"-?(?:[a-z][a-z0-9]*[-_])*(?:pass|password|passwd|pwd|passphrase|secret|token)(?:=|[ \t]+)"
    + _OPTION_VALUE
)
# The same in PowerShell's and .NET's compound names, on the text: -AdminPassword X, -ClientSecret X
_CAMEL_SECRET_OPTION = re.compile(
    lead("-", r"[\w-]")
    + r"-?(?:[A-Z][a-z0-9]*)*(?:Password|Passwd|Pwd|Pass|Passphrase|Secret|Token)(?:=|[ \t]+)"
    + _OPTION_VALUE
)
_SECRET_OPTION_GATE = Gate(("pass", "pwd", "secret", "token"))
# an option named for a password, just before its value
_PASSWORD_OPTION = re.compile("(?:pass|" + "|".join(PASSWORD_WORDS) + r")(?:=|[ \t]+)[\"']?\Z")
# a paging or sync token's option is none (-ContinuationToken X, --next-page-token X), as in XML
_PAGING_OPTION = re.compile(
    r"(?i)(?:continuation|page|next|sync|skip|cursor|resumption)[-_]?token(?:=|[ \t]+)[\"']?\Z"
)
# A name and a password as -u NAME -p PASSWORD (or -U/-P: tsql, isql, sqsh), the common pair of
# login options, at most two options between them (not -p alone: a port, mkdir -p; not Maven's -U
# GOAL ... -P PROFILE), and strong (docker run -u 1000 -p 8080:80)
_USER_THEN_PASSWORD = re.compile(
    lead("-", r"\S")
    + r"[uU][ \t]+(?!(?:clean|validate|compile|test|package|verify|install|deploy|site)\b|[a-z-]+:[a-z-]+(?![\w:/]))[^\s-]\S*"
    r"[ \t]+(?:-\w+(?:[ \t]+[^\s-]\S*)?[ \t]+){0,2}-[pP][ \t]+" + _OPTION_VALUE
)
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


# Clients that take a password as an option, by their documentation: the client's names, then the
# option (with what joins it to the value: a space, "=", ":" or nothing), on the same command line.
# The options, after a blank, are what a text must hold before the names are looked for
# (_OPTION_GATE, one scan: far rarer than the names' letters, so most texts are ruled out at once).
_OPTION_CLIENTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("ipmitool",), r"-P\s*"),  # ipmitool -U NAME -P PASSWORD
    (  # MongoDB's shell and tools: -p PASSWORD, --password PASSWORD (a value, unlike psql's)
        ("mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport", "mongostat", "mongotop"),
        # --password's value: followed by another option, a URI or host, a quote or the line's end
        # (not prose: "mongodump's --password option is deprecated")
        r"(?:-p\s+|--password[ \t]+(?=[\"']?[^\s\"']{4,200}(?:[ \t]+-|[ \t]*(?:\r?\n|$)|[\"']|[ \t]+\S*[:/.])))",
    ),
    (("mosquitto_pub", "mosquitto_sub", "mosquitto_rr"), r"-P\s+"),  # MQTT: -u NAME -P PASSWORD
    (("zip", "unzip"), r"-P\s+"),  # an archive's password
    (("7z", "7za", "7zz", "rar", "unrar"), r"-p"),  # 7z a -pPASSWORD, rar a -pPASSWORD
    (("xfreerdp", "wlfreerdp"), r"/p:"),  # FreeRDP: /u:NAME /p:PASSWORD
    (("rdesktop",), r"-p\s+"),
    (("plink", "pscp", "psftp"), r"-pw\s+"),  # PuTTY's command-line tools
    (("psexec", "psexec64", "paexec"), r"-p\s+"),  # Sysinternals: -u NAME -p PASSWORD
    (("schtasks",), r"/rp\s+"),  # a scheduled task's account: /ru NAME /rp PASSWORD
    (("gpg", "gpg2"), r"--passphrase\s+"),
    (("ssh-keygen",), r"-[NP]\s*"),  # a new (-N) or old (-P) key passphrase
    (("ldappasswd",), r"-s\s*"),  # the new password it sets
    (("rabbitmqadmin",), r"-p\s+"),  # rabbitmqadmin -u NAME -p PASSWORD
    (("influx",), r"-password\s+"),  # InfluxDB 1.x's CLI
    (("hdbsql",), r"-p\s+"),  # SAP HANA
    (("nmcli",), r"(?:password|wifi-sec\.psk)\s+"),  # ... connect SSID password PASSWORD
    (("curl",), r"(?:-U\s*|--proxy-user[=\s]+)[\"']?[^\s:\"']+:"),  # a proxy's NAME:PW
    (("openssl",), r"-pass(?:in|out)?\s+[\"']?pass:"),  # openssl's pass:PASSWORD argument form
)  # fmt: skip


def _option_client_rule(names: tuple[str, ...], option: str) -> re.Pattern[str]:
    # the names as whole words (7z, not p7zip; mongo, not mongod) in any case (PsExec.exe, Mongosh),
    # a Windows .exe allowed; the option as documented (-p and -P differ)
    return re.compile(
        "(?i:"
        + "|".join(lead(re.escape(name[0]), r"[\w./-]") + re.escape(name[1:]) for name in names)
        + r")(?i:\.exe)?\b"
        + _SAME_COMMAND
        + r"[^\S\n]"  # what _OPTION_GATE looks for: the option after a blank (a space, a tab, ...)
        + option
        + VALUE,
        re.IGNORECASE if option.startswith("/") else 0,
    )


class _Rule(NamedTuple):
    """Passwords that a documented client takes on its command line, or that a server or database
    is given in its own syntax: the password is in the pattern's first group that matched, and the
    pattern runs only on a text that holds one of its hints, lowercased."""

    hints: tuple[str, ...]
    pattern: re.Pattern[str]
    detail: str
    confidence: float = 0.85
    # an option client's: it runs only where _OPTION_GATE finds an option
    after_option: bool = False
    # the same pattern in lowercase, run on the lowercased text where the offsets agree
    # (scanning.case_aligned), so that `re` skips ahead to its words' first letters
    lower: re.Pattern[str] | None = None


# Every option of _OPTION_CLIENTS, lowercased, after a blank other than a line break (a test runs
# each row's documented command through the whole scan, so a row this gate misses fails it).
_OPTION_GATE = re.compile(r"[^\S\n](?:-(?:-?p|[nsu])|/(?:p:|rp)|password|wifi-sec\.psk)")


# The case-blind SQL forms, in lowercase, each led by its first word: IDENTIFIED BY a quoted value;
# CREATE/ALTER USER ... IDENTIFIED BY any value; SET PASSWORD ... = [PASSWORD(] value.
_IDENTIFIED_BY = (
    "(?:" + word_start("identified") + r"\s+(?:with\s+\w+\s+)?by\s+(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')"
    + "|(?:" + word_start("create") + "|" + word_start("alter") + r")\s+user\b[^;\n]{0,200}?\bidentified\s+by\s+"
    + r"(?!values\b)" + VALUE
    + "|" + word_start("set") + r"\s+password\b[^=;\n]{0,200}=\s*(?:password\s*\(\s*)?" + VALUE + ")"
)  # fmt: skip
# PostgreSQL's role options: CREATE|ALTER USER|ROLE name [WITH] ... [ENCRYPTED] PASSWORD 'literal'
_ROLE_PASSWORD = (
    "(?:" + word_start("create") + "|" + word_start("alter") + r")\s+(?:user|role)\b(?:(?!--)[^;]){0,200}?"
    + r"\bpassword\s+e?'([^'\n]{4,200})'"
)  # fmt: skip
# A password given to SQL's hash functions where a password column or variable is set: UPDATE
# wp_users SET user_pass = MD5('...'), SET @pw = SHA2('...', 256), HASHBYTES('SHA2_256', N'...').
_HASHED = (
    r"(?:pass|pwd|secret)[\w]*[\"'`\]]?\s*=\s*(?:md5|sha1|sha2|sha256|sha|password|old_password|crypt|encrypt|hash"
    r"|hashbytes)\s*\(\s*(?:'sha2_256'\s*,\s*)?n?'([^'\n]{4,200})'"
)
_HASHED_HINTS = ("md5", "sha", "password", "crypt", "hash")  # every function's name holds one
_SNMP = word_start("snmp") + r"(?:walk|bulkwalk|get|getnext|bulkget|set|table|trap)\b" + _SAME_COMMAND
_CLIENTS: tuple[_Rule, ...] = tuple(
    _Rule(
        names,
        _option_client_rule(names, option),
        "password_flag",
        after_option=True,
    )
    for names, option in _OPTION_CLIENTS
) + tuple(_Rule(*entry) for entry in (
    # Microsoft's SQL Server tools take the password as -P (sqlcmd, bcp, osql, mssql-cli)
    (
        ("sqlcmd", "bcp", "osql", "mssql"),
        re.compile(r"\b(?:sqlcmd|bcp|osql|mssql-cli)\b" + _SAME_COMMAND + r"\s-P\s*" + VALUE),
        "password_flag",
    ),
    # OpenLDAP's clients take the bind password as -w (-W asks for it)
    (
        ("ldap",),
        re.compile(
            r"\bldap(?:search|modify|add|delete|passwd|whoami|compare|modrdn|exop)\b" + _SAME_COMMAND + r"\s-w\s*" + VALUE
        ),
        "password_flag",
    ),
    # registry and cluster logins: docker login, podman login, helm registry login ... -p PASSWORD
    (
        ("login",),
        re.compile(
            "(?:" + "|".join(map(word_start, _LOGIN_CLIENTS)) + r")\s+" + _OPTIONS + r"(?:registry\s+)?login\b"
            + _SAME_COMMAND
            + r"\s-p(?:=|\s+)" + VALUE
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
    (("storepass", "keypass"), re.compile(r"\s-(?:src|dest)?(?:store|key)pass\s+" + VALUE), "password_flag"),
    # RabbitMQ: rabbitmqctl [OPTIONS] add_user NAME PASSWORD, ... change_password NAME PASSWORD
    (
        ("rabbitmq",),
        re.compile(
            r"\brabbitmqctl\s+" + _OPTIONS + r"(?:add_user|change_password)\s+[\"']?[^\s\"']+[\"']?\s+" + VALUE
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
    # A browser test typing a password into its field: Playwright's page.fill('#password', '...') and
    # .type(...), the selector perhaps quoting inside ('input[name="password"]'), and a locator for
    # the field with the typing chained to it: Selenium's find_element(By.ID, "password").send_keys("...")
    # and Cypress's cy.get('#password').type('...', { log: false })
    (
        ("passw", "pwd"),
        re.compile(
            r"\.(?:fill|type)\(\s*(?:'[^'\n]{0,80}?(?i:passw(?:or)?d|pwd)[^'\n]{0,40}?'"
            r"|\"[^\"\n]{0,80}?(?i:passw(?:or)?d|pwd)[^\"\n]{0,40}?\")\s*,\s*(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')"
            r"|\b(?:find_element\w*|findElement\w*|get|locator|\$)\([^()\n]{0,80}?(?i:passw(?:or)?d|pwd)[^()\n]{0,40}?\)"
            r"\s*\.\s*(?:send_keys|sendKeys|type|fill)\(\s*(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')\s*[,)]"
        ),
        "password",
        0.8,
    ),
    # FTP: a script's or a session's "user NAME PASSWORD" line (ftp -n <<EOF, ftp> user ...; not
    # anonymous FTP, nor a server's "user www-data www-data;" or "user = www-data")
    (
        ("ftp",),
        re.compile(
            r"(?m)^[ \t]*(?:ftp>[ \t]*)?(?:quote[ \t]+)?user[ \t]+(?!(?:anonymous|ftp)[ \t])[^\s\"'=]+[ \t]+"
            r"[\"']?([^\s\"']{3,199}[^\s\"';])[\"']?[ \t]*\r?$"
        ),
        "password",
    ),
    # Windows: net user NAME PASSWORD [/add] (net user NAME * asks for it); wpa_passphrase SSID PASSPHRASE
    (
        ("net user",),
        re.compile(
            r"(?i)\bnet user[ \t]+(?![/*])[^\s/*]+[ \t]+(?![/*])" + VALUE + r"(?=[\"']?(?:[ \t]+/|[ \t]*\r?$))",
            re.MULTILINE,
        ),
        "password_flag",
    ),
    (
        ("wpa_passphrase",),
        re.compile(r"\bwpa_passphrase[ \t]+(?:\"[^\"\n]+\"|'[^'\n]+'|[^\s\"']+)[ \t]+" + VALUE),
        "password",
    ),
    # Net-SNMP's v3 tools: -A AUTH_PASSPHRASE and -X PRIVACY_PASSPHRASE, each read from the name
    (("snmp",), re.compile("(?i:" + _SNMP + r")[^\S\n]-A\s*" + VALUE), "password_flag"),
    (("snmp",), re.compile("(?i:" + _SNMP + r")[^\S\n]-X\s*" + VALUE), "password_flag"),
    # Redis's configuration: requirepass PASSWORD, masterauth PASSWORD (a commented line is not set)
    (
        ("requirepass", "masterauth"),
        re.compile(r"(?m)(?:^[ \t]*|(?i:config\s+set)\s+)(?:requirepass|masterauth)[ \t]+" + VALUE),
        "password",
    ),
    # (htpasswd -b and mosquitto_passwd -b: device_configs.py)
    # Windows: net use [DEVICE] \\HOST\SHARE PASSWORD /user:NAME, or the password after /user:NAME
    (
        ("net use",),
        re.compile(
            r"(?i)\bnet\s+use\b" + _SAME_COMMAND + r"/user:\S+\s+(?![/*])" + VALUE
            + r"|\bnet\s+use\s+(?:[a-z]:\s+)?\\\\\S+\s+(?![/*])" + VALUE + r"\s+/user:"
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
        0.97,  # NAME/PASSWORD@HOST also reads as an e-mail address: the credential is the surer reading
    ),
    # A password piped into a program that reads it from standard input: echo 'PASSWORD' | sudo -S
    # ..., echo 'PASSWORD' | docker login -u NAME --password-stdin, echo 'PASSWORD' | passwd --stdin NAME
    # (not "| sudo -S tee FILE", which writes the text: a line of a config file)
    (
        ("sudo", "password-stdin", "--stdin"),
        re.compile(
            r"\b(?:echo\s+(?:-[ne]\s+)?|printf\s+(?:'%s(?:\\n)?'\s+|\"%s(?:\\n)?\"\s+)?)" + VALUE
            + r"[\"']?\s*\|\s*(?:sudo\s+(?:-[a-zA-RT-Z]+\s+)*-S\b(?!\s+tee\b)|[^|\n;&]{0,200}?--password-stdin\b"
            r"|(?:sudo\s+)?passwd\s+--stdin\b)"
        ),
        "password",
    ),
    # PowerShell: ConvertTo-SecureString "PASSWORD" -AsPlainText -Force (the plain text is the
    # password; without -AsPlainText the string is an encrypted one, not readable)
    (
        ("convertto-securestring",),
        re.compile(
            r"(?i)\bconvertto-securestring\b(?=[^\n;|]{0,200}?\s-asplaintext\b)(?:\s+-(?:asplaintext|force)\b)*"
            r"(?:\s+-string)?\s+(?:\"([^\"\n]{4,200})\"|'([^'\n]{4,200})')"
        ),
        "password",
    ),
    # SQL: IDENTIFIED BY 'PASSWORD' (MySQL, MariaDB, Oracle; in prose "identified by" names no
    # password, so a bare value needs the keywords in capitals or CREATE/ALTER USER before them),
    # SET PASSWORD [FOR USER] = 'PASSWORD'. The capitals' rule apart from the case-blind one, which
    # runs lowercased (a (?i) group led by \b is tried at every position: 2 ms on a 19k prompt)
    (
        ("identified",),
        re.compile(word_start("IDENTIFIED") + r"\s+(?:WITH\s+\w+\s+)?BY\s+(?!VALUES\b)" + VALUE),
        "password",
    ),
    (
        _HASHED_HINTS,
        re.compile("(?i)" + _HASHED),
        "password",
        0.85,
        False,
        re.compile(_HASHED),
    ),
    (
        ("identified", "set password"),
        re.compile("(?i)" + _IDENTIFIED_BY),
        "password",
        0.85,
        False,
        re.compile(_IDENTIFIED_BY),
    ),
    # Ansible's connection variables (inventory lines, --extra-vars, YAML vars): the value is the
    # password itself, not a reference (!vault, {{ var }}, SOPS's ENC[...]) nor code (os.getenv(...),
    # a call's keyword argument: dict(ansible_password=decrypted));
    # after YAML's ":" the value ends its line (ansible_password: Specifies the password ...: a doc)
    (
        ("ansible_",),
        re.compile(
            word_start("ansible_") + r"(?:ssh_|become_|sudo_|su_)?pass(?:word)?"
            r"(?:[ \t]*=[ \t]*(?![!{\[])[\"']?([^\s\"'(\[,)]{4,200}+)(?![(\[,)])"
            r"|:[ \t]+(?![!{\[])[\"']?([^\s\"'(\[]{4,200})[\"']?[ \t]*(?:#.*)?$)",
            re.MULTILINE,
        ),
        "password",
    ),
    # Go's golang.org/x/crypto/ssh: ssh.Password("...") or with a raw string, the package perhaps
    # imported under another name ending in ssh (gossh, cryptossh)
    (
        ("ssh.password(",),
        re.compile(r"ssh\.Password\(\s*(?:\"([^\"\n]{4,200})\"|`([^`\n]{4,200})`)\s*\)"),
        "password",
    ),
    (
        ("create user", "alter user", "create role", "alter role"),
        re.compile("(?i)" + _ROLE_PASSWORD),
        "password",
        0.85,
        False,
        re.compile(_ROLE_PASSWORD),
    ),
))  # fmt: skip
_CLIENT_GATE = Gate(hint for rule in _CLIENTS for hint in rule.hints)


def _options(text: str, lowered: str) -> Iterator[Finding]:
    """Strong values of options named for a secret, and of -p after -u NAME."""
    spans: list[tuple[int, int]] = []
    if _SECRET_OPTION_GATE.open(lowered):
        spans += [match.span(1) for match in _SECRET_OPTION.finditer(lowered)]
        spans += [match.span(1) for match in _CAMEL_SECRET_OPTION.finditer(text)]
    if " -p" in lowered:
        spans += [match.span(1) for match in _USER_THEN_PASSWORD.finditer(text)]
    for start, end in sorted(set(spans)):
        if _PAGING_OPTION.search(text, max(0, start - 40), start):
            continue
        end = start + len(text[start:end].rstrip(",;)`"))  # `deploy -Password X`, (... --token X)
        value = text[start:end]
        # quoted, a password option's value is a literal: a word a person chose counts (--password
        # 'hunter22'; a secret's or a token's may name one: --secret 'pg_creds')
        quoted = start > 0 and text[start - 1] in "'\"" and text[end : end + 1] == text[start - 1]
        quoted = quoted and _PASSWORD_OPTION.search(lowered, max(0, start - 40), start) is not None
        if (quoted or strong(value)) and value_confidence(value, quoted=quoted):
            yield Finding("secret", start, end, 0.8, "password_flag")


def _flags(text: str, lowered: str) -> Iterator[Finding]:
    # each a place the syntax gives a password: a word a person chose is one (read as quoted), but
    # for --password and a blank, which pg_dump and psql take alone (the next word is the database)
    # and prose and help texts speak of: there an unquoted value is read as before (a word of
    # letters only is none)
    if _FLAG_GATE.open(lowered):
        for match in _FLAGS.finditer(text):
            value = match.group(1)
            joint = text[match.start() : match.start(1)]  # "--password ", "--password='", "-p", ...
            spaced = joint.startswith("--pass") and "=" not in joint
            quoted = joint.endswith(("'", '"'))
            if value_confidence(value, quoted=quoted or not spaced):
                yield Finding("secret", match.start(1), match.end(1), 0.85, "password_flag")


def _clients(text: str, lowered: str) -> Iterator[Finding]:
    present = _CLIENT_GATE.found(lowered)
    aligned = case_aligned(text, lowered)
    options = None
    for rule in _CLIENTS:
        if rule.after_option:
            if options is None:
                options = _OPTION_GATE.search(lowered) is not None
            if not options:
                continue
        if present.isdisjoint(rule.hints):
            continue
        matches = (
            rule.lower.finditer(lowered)
            if rule.lower is not None and aligned
            else rule.pattern.finditer(text)
        )
        for match in matches:
            group = next(index for index, value in enumerate(match.groups(), 1) if value is not None)
            start, end = match.span(group)
            quote = text[start - 1 : start]
            quoted = quote in ("'", '"')
            close = text.find(quote, start, start + 200) if quoted else -1
            if close > 0 and PLACEHOLDER.match(text[start:close]):
                continue  # IDENTIFIED BY '<strong password here>': a bare value stops at the space
            if not quoted:
                end = start + len(text[start:end].rstrip(";,)"))  # "IDENTIFIED BY pw;": not the ";"
                if text[start] == "-":
                    continue  # mongo -u a -p --eval ...: the client asks for it; that is the next option
            value = text[start:end]
            if " " in value and not strong(value):
                continue  # ConvertTo-SecureString "is insecure": words, not a password
            # where the client's syntax takes a password, a word a person chose is one: read as
            # quoted, which only the placeholders, the words about a secret and short values fail
            if value_confidence(value, quoted=True):
                yield Finding("secret", start, end, rule.confidence, rule.detail)


def find_in_programs(text: str, lowered: str) -> Iterator[Finding]:
    """Passwords given to programs in `text`; `lowered` is text.lower() with the text's offsets."""
    yield from _flags(text, lowered)
    yield from _options(text, lowered)
    yield from _clients(text, lowered)
    yield from find_in_calls(text, lowered)
