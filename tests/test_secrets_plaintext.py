"""Secrets: turnout's own rules for passwords and credentials in prose, command lines, config
files, code, URLs and SQL, and what is not one. Every sentence here was written for this file."""

from __future__ import annotations

import pytest

from router.signals.sensitivity.detector import Finding, SensitivityDetector

DETECTOR = SensitivityDetector()


def secrets_in(text: str) -> list[Finding]:
    """The text's secret findings, by the default detector."""
    return [f for f in DETECTOR.scan(text) if f.type == "secret"]


def found(text: str, secret: str) -> bool:
    """Whether a secret finding covers the first character of `secret` in `text`."""
    start = text.index(secret)
    return any(f.start <= start < f.end for f in secrets_in(text))


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("mysqldump -u backup -pQ7r!x2Lm9 orders > orders.sql", "Q7r!x2Lm9"),
        ("pgcli --password=Zq3!u8Rk2x -h db1 app", "Zq3!u8Rk2x"),
        ("run redis-cli -a N4b!xq92Lk info", "N4b!xq92Lk"),
        ("sshpass -p 'V7w#k2Ls9p' scp dump.tar backup@vault1:", "V7w#k2Ls9p"),
        ("db1.lan:5433:payroll:finance:M3t!9qXz2w", "M3t!9qXz2w"),
        ("KAFKA_PASS=Tz8!mQ2xR7", "Tz8!mQ2xR7"),
        ("the vpn password for the lab is H6y!q2Lz8w, do not share it", "H6y!q2Lz8w"),
        ("please set the passcode to Lk29!vQx", "Lk29!vQx"),
        ("curl -s -u ops:W4e!r7Tq2z https://metrics.internal/api", "W4e!r7Tq2z"),
        ("curl --user 'ci:P9k#m2Xw4r' -X POST https://build/hook", "P9k#m2Xw4r"),
        ("router login ID:admin PW:Rt7#kq2Lmw (change it after setup)", "Rt7#kq2Lmw"),
        ("DB_PW=Hq8!vT3xLp", None),
        # other clients' documented password options, servers' and databases' own syntax
        ("sqlcmd -S sql01 -U etl -P Rw7#kq2Lzx -i load.sql", "Rw7#kq2Lzx"),
        ('ldapwhoami -x -D "uid=ops,ou=people,dc=lab" -w Gt5!pq8Wmz', "Gt5!pq8Wmz"),
        ("podman login --username ci -p Jx4%rT8wQm quay.io", "Jx4%rT8wQm"),
        ("rpcclient -U 'backup%Nc6&yU2qLp' 10.1.1.5", "Nc6&yU2qLp"),
        ("jarsigner -keystore rel.jks -storepass Vb3*nM7xQe app.apk release", "Vb3*nM7xQe"),
        ("rabbitmqctl change_password orders Kp9!wE4zRt", "Kp9!wE4zRt"),
        ('echo "ubuntu:Ys2#hG6vNc" | chpasswd', "Ys2#hG6vNc"),
        ("port 6380\nmasterauth Qe8&zX3cVb\n", "Qe8&zX3cVb"),
        ("ALTER USER ops IDENTIFIED WITH mysql_native_password BY 'Lm4!tY9pWq';", "Lm4!tY9pWq"),
        ("SET PASSWORD = PASSWORD('Hz6#uJ2kDs');", "Hz6#uJ2kDs"),
        ("htpasswd -cb users.htpasswd alice Wq3!zR8mKt", "Wq3!zR8mKt"),
        ("net use \\\\files01\\public Tn5#vB8cXz /user:LAB\\bob", "Tn5#vB8cXz"),
        (
            "<settings><servers><server><password>Fd7!kL2pQw</password></server></servers></settings>",
            "Fd7!kL2pQw",
        ),
        ("<clientSecret>Zx9#mN4bVc</clientSecret>", "Zx9#mN4bVc"),
        ('setenv("SMTP_PASSWORD", "Pw6!rT3yUi", 1);', "Pw6!rT3yUi"),
        ('psk="Mn8&bV5cXz"', "Mn8&bV5cXz"),
        ("my pw is now Cv2#xZ9qWe", "Cv2#xZ9qWe"),
        ("Is Ab3$dE6fGh a good password?", "Ab3$dE6fGh"),
        ("I picked Qw7!eR4tYu as my new password", "Qw7!eR4tYu"),
        ("the credentials are ops / Jk8%lM2nBv", "Jk8%lM2nBv"),
        ("the password I gave the contractor for the wiki is Ui4#oP7aSd", "Ui4#oP7aSd"),
        # positional passwords of documented calls, Oracle's NAME/PASSWORD@DB, looser name-password pairs
        ('con = DriverManager.getConnection(url, "etl", "Qa5!zW8xEd");', "Qa5!zW8xEd"),
        ('var c = new NetworkCredential(user, "Rf4#tG7yHn", "CORP");', "Rf4#tG7yHn"),
        ('imap.login("ops@lab.example", "Uj6%iK9oLp")', "Uj6%iK9oLp"),
        ("r = httpx.get(url, auth=('ci', 'Mh3&nB6vCx'))", "Mh3&nB6vCx"),
        ('builder.password("Wd2*eF5gTh").build()', "Wd2*eF5gTh"),
        ('new PasswordAuthentication("svc", "Kl7!mN0bVc".toCharArray())', "Kl7!mN0bVc"),
        ("conn = MySQLdb.connect('db1', 'report', 'Zs4#xD7cFv', 'sales')", "Zs4#xD7cFv"),
        ("conn = cx_Oracle.connect('scott', 'Tg6!yH9uJk', 'db1/orcl')", "Tg6!yH9uJk"),
        ("expdp hr/Pq9%wE2rTy@orcl schemas=HR", "Pq9%wE2rTy"),
        ("the vpn password? it's Gb5!hN8jMk", "Gb5!hN8jMk"),
        ("creds for the test box: tester Lz3#kX6cVb", "Lz3#kX6cVb"),
        ("my backup password is mYZ577-INfZm", "mYZ577-INfZm"),  # begins like "my..." yet is no placeholder
        # forms a review found missed, and passphrases whose words hold "key" or "token"
        ('GPG_PASSPHRASE="Orbit monkey 42 lantern!"', "Orbit monkey 42 lantern!"),
        ("ldapsearch -x -D cn=admin -wQe4#rT6yU -b dc=lab", "Qe4#rT6yU"),
        ("rabbitmqctl -n rabbit@node1 add_user ops Wz5!xC8vBn", "Wz5!xC8vBn"),
        ("htpasswd -bB -C 12 users.htpasswd alice Hn7%jM2kLo", "Hn7%jM2kLo"),
        ('<password type="plain">Yt6&uI9oPa</password>', "Yt6&uI9oPa"),
        ("<password><![CDATA[Gf3!hJ6kLz]]></password>", "Gf3!hJ6kLz"),
        ("redis-cli CONFIG SET requirepass Sd4#fG7hJk", "Sd4#fG7hJk"),
        ("printf 'deploy:Ax2!sD5fGh\\n' | chpasswd", "Ax2!sD5fGh"),
        ("chpasswd <<< 'deploy:Zc3%vB6nMq'", "Zc3%vB6nMq"),
        ("r = requests.get(url, auth=['bot', 'Rt8*yU1iOp'])", "Rt8*yU1iOp"),
        ("docker -H tcp://10.0.0.2:2376 login -u ci -p Lk9!jH3gFd", "Lk9!jH3gFd"),
        ("create user bob identified by Mn4#bV7cXz;", "Mn4#bV7cXz"),
        ("dgmgrl sys/Pl0!oK9iJu@prim", "Pl0!oK9iJu"),
        ("SQL> connect scott/Tg6!yH9uJk@orcl", "Tg6!yH9uJk"),
        ('new NetworkCredential("CORP\\\\", "Bv5#nM8qWe")', "Bv5#nM8qWe"),  # a literal ending in \\
        ("\u0130 Xk7#mQ2vLp is my password", "Xk7#mQ2vLp"),  # "İ" lowers to two characters
        ("MAPBOX=sk.eyJ1IjoiYWNtZSIsImEiOiJjbDl4In0.Qw3rTy7uIoPaSdFgHjKlZx", None),
    ],
)
def test_plaintext_credentials(text: str, secret: str | None) -> None:
    found = [text[f.start : f.end] for f in secrets_in(text)]
    assert found == [secret or text.split("=", 1)[1]]


# Texts that hold no secret: placeholders, prompts for one, names, messages about one.
_LOOK_ALIKES = [
    "mysql -u root -p",  # asks for it
    "pgcli --password-file=/run/secrets/db app",
    "The password is required and must be long.",
    "Set the PIN to something you remember.",
    "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "SLACK_BOT_TOKEN=xoxb-xxx",
    "redis-cli -a $REDIS_PASSWORD ping",
    "the password field accepts letters and digits",
    "curl -u $API_USER:$API_PASSWORD https://example.com",  # read from the environment
    "curl -u user https://example.com",  # curl asks for the password
    "PW: ********",
    "the pw field and the pwn2own contest",
    # "pw" is also Playwright's prefix, a pulse or page width, a picowatt, a part number
    "PW_TEST_CONNECT_WS_ENDPOINT=ws://playwright_server:3000/ npx playwright test",
    "export PW_TEST_REPORTER=./my-reporter.ts",
    "pw = 2.5e-3  # pulse width in seconds",
    "sensor pw: 25.3nW at 1550nm",
    ":root { --pw: 1280px; }",
    "PW: 0.5ms-2ms",
    "1 pW = 10^-12 W",
    "The PW-7731: 24V12A relay",
    # placeholders, references and labels in the formats the rules above read
    "docker login -u $REGISTRY_USER -p $REGISTRY_PASSWORD",
    "keytool -list -keystore app.jks -storepass:env KEYSTORE_PASS",
    "# requirepass foobared",
    "<tokenizer>bert-base-uncased</tokenizer>",
    "<password>${env.DEPLOY_PASSWORD}</password>",
    "1Password is a password manager for teams.",
    "This is a strong password: long, random and unique.",
    't("password", "Password")',
    'append("password", "foobar")',
    'label = {password: "Enter your password"}',
    "errors.password = 'Password must be at least 12 characters'",
    "pw 2.5ms at 1 kHz",
    "the net user growth was +12,500 this quarter",
    "Accounts: 2024/Q1 and 2025/Q2",
    "CREATE USER reader IDENTIFIED BY VALUES 'S:8F2D...'",
    "con = DriverManager.getConnection(url, user, password);",
    'new NetworkCredential("svc", Environment.GetEnvironmentVariable("SVC_PW"))',
    'smtp.login("me@example.com", "<app-password>")',
    "smtplib.SMTP('localhost').start(25)",
    "creds for staging: see the team vault",
    "the login for the router - admin, then press OK",
    "sqlplus / as sysdba",
    "auth=(user, token)",
    "the password? it's in the vault",
    # what a review found flagged: prose, paging tokens, labels, lists, later commands, versions
    "a relationship identified by `rId` in the part",
    "The user identified by user_id=42 is gone",
    "ALTER USER app IDENTIFIED BY <password>;",
    "CREATE USER app IDENTIFIED BY &&password;",
    "ALTER USER app IDENTIFIED BY :new_password;",
    'deps = ["tokenizers", "safetensors>=0.4"]',
    "r.hset('user:42', 'password_changed_at', '2024-06-01')",
    '("api_key", "API-Key")',
    "fields.append(('password', 'Password:'))",
    "monkeypatch.setenv('API_TOKEN', 'test-token')",
    "localStorage.setItem('token', 'pending-1');",
    "podman login quay.io && podman run -p 8443:8443 quay.io/keycloak/keycloak",
    "docker run --name login -p 5432:5432 postgres:16",
    "First run `oc login`, then `oc port-forward svc/db -p 5432:5432`.",
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>",
    "<pageToken>page-2</pageToken>",
    "Login: https://portal.acme.io/sso",
    "account is prod2 us-east-2",
    "Account is acme-prod / eu-west-1",
    "Credentials are in vault2",
    "the new build is v1.2.3, the password stays the same",
    "Use python3.11 as the password tooling interpreter",
    "The password length limit in our app is 64-chars.",
    "the pin for the LED is now GPIO17",
    "pin numpy to 1.26.4 until the ABI issue is fixed",
    "questionary.password('Password:').ask()",
    "prompt.password('PIN (4-8 digits):')",
    'API_KEY="your_api_key_123"',
    "ftp.login('anonymous', 'guest@')",
    '"Cryptography_HAS_PSK_TLSv1_3": cryptography_has_psk_tlsv13',
    "ALTER USER app IDENTIFIED BY password-1;",
    "we connect 2024/Q1-data feeds to the warehouse",
]


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        # a URL's password in any scheme, SQLAlchemy's dialect+driver included; Go's MySQL DSN
        ("SQLALCHEMY_URL = 'postgresql+psycopg2://etl:Wq4!nB7xZp@warehouse:5432/dw'", ["Wq4!nB7xZp"]),
        ("git remote add origin git+https://bot:Hy6#kL2mNq@git.corp/x.git", ["Hy6#kL2mNq"]),
        # SQL rows: the literal in a secret column's place, in every row
        ("INSERT INTO accounts (login, pwd, created) VALUES ('ops', 'Rt5%yU8iOp', now());", ["Rt5%yU8iOp"]),
        (
            "INSERT INTO t (a, api_key) VALUES (1, 'k8Jd!2mQxZ'), (2, 'P0o#9iUyTr');",
            ["k8Jd!2mQxZ", "P0o#9iUyTr"],
        ),
        # documented calls and clients
        ('$pw = ConvertTo-SecureString -String "Gh7&jK4lMn" -AsPlainText -Force', ["Gh7&jK4lMn"]),
        ("ipmitool -I lanplus -H bmc1 -U root -P Jk8@lM2nBv sensor", ["Jk8@lM2nBv"]),
        ("mongosh --host db -u app -p Nm3!bV6cXz", ["Nm3!bV6cXz"]),
        ("xfreerdp /v:ws12 /u:ops /p:Qa1!sW2eDr", ["Qa1!sW2eDr"]),
        ("plink -batch -pw Zx9&cV8bNm ops@router show run", ["Zx9&cV8bNm"]),
        ("7z a -pTy6^uI9oPl backup.7z ~/docs", ["Ty6^uI9oPl"]),
        ("nmcli device wifi connect Lab5G password Ui8*oP3lKj", ["Ui8*oP3lKj"]),
        # said in a sentence: a name and "pass", a pair after a URL or a dash, later in the sentence
        ("The password to the lab wifi is Df3!gH6jKl", ["Df3!gH6jKl"]),
        ("sent you the password by text: Cv5#bN8mQw", ["Cv5#bN8mQw"]),
        ("my passwd is Lk3!jH6gFd", ["Lk3!jH6gFd"]),
        # in other languages
        ("la contraseña del servidor es Sd4!fG7hJk", ["Sd4!fG7hJk"]),
        ("das Passwort ist Wq1!eR4tYu", ["Wq1!eR4tYu"]),
        ("das Passwort ist Ab3cD4eF9g", ["Ab3cD4eF9g"]),  # strong by its cases: read in the text, not lowered
        ("le mot de passe est : Pl9!oK8iJu", ["Pl9!oK8iJu"]),
        ("密码是Qw2#eR5tYu", ["Qw2#eR5tYu"]),
        ("パスワードはAs3!dF6gHjです", ["As3!dF6gHj"]),
        # T-SQL's N'...' and browser tests (the second round's rules that earned their place on the
        # third set; the others were dropped, 2026-12-06)
        ("CREATE LOGIN [rpt] WITH PASSWORD = N'Gb7!hN3jMk', CHECK_POLICY = OFF;", ["Gb7!hN3jMk"]),
        ("EXEC sp_addlinkedsrvlogin @rmtsrvname = N'ERP', @rmtpassword = N'Vc4#xZ9aSd';", ["Vc4#xZ9aSd"]),
        ("await page.fill('#password', 'Zx5!cV8bNm');", ["Zx5!cV8bNm"]),
        ('driver.find_element(By.ID, "password").send_keys("Mn2#bV5cXz")', ["Mn2#bV5cXz"]),
        ("await page.fill('input[name=\"password\"]', 'Kj7!hG4fDs');", ["Kj7!hG4fDs"]),
        ("cy.get('#password').type('Lp0#oI9uYt', { log: false })", ["Lp0#oI9uYt"]),
        ("mongosh -u admin\u00a0-p Qm4!zX8pLw", ["Qm4!zX8pLw"]),  # a no-break space before the option
        # the third round's (2026-12-06): a password piped to a program that reads it from standard
        # input, and the word right after the noun when the noun's sentence goes on past it
        ("echo 'Wd3!fR6tGy' | sudo -S systemctl restart nginx", ["Wd3!fR6tGy"]),
        ("echo 'Hn8#jU2iKo' | podman login quay.io -u bot --password-stdin", ["Hn8#jU2iKo"]),
        ("echo 'Bv6%nM9qWe' | passwd --stdin jdoe", ["Bv6%nM9qWe"]),
        ("I tried my password Cx4!vB7nMa twice and now the account is locked", ["Cx4!vB7nMa"]),
        # a fourth review's (2026-12-06): a hyphen before "password" is not a file's name; a
        # password wrapped in bangs is not a batch variable
        ("The VPN-password is K9#mzQ2xLp, don't lose it", ["K9#mzQ2xLp"]),
        ("DB_PASSWORD='!Kx92mPq!'", ["!Kx92mPq!"]),
        # a review's misses (2026-12-06)
        ("the password, sent by text: Qm4!zX8pLw", ["Qm4!zX8pLw"]),
        ("PsExec.exe \\\\srv -u CORP\\admin -p Qm4!zX8pLw cmd", ["Qm4!zX8pLw"]),
        ("INSERT IGNORE INTO users (username, password) VALUES ('bob', 'Qm4!zX8pLw');", ["Qm4!zX8pLw"]),
        ("INSERT INTO users (username, password) VALUES ('bob', N'Qm4!zX8pLw');", ["Qm4!zX8pLw"]),
        ("INSERT INTO users (\n  username,\n  password\n) VALUES ('bob', 'Qm4!zX8pLw');", ["Qm4!zX8pLw"]),
        ("INSERT INTO hooks (name, webhook_secret) VALUES ('ci', 'Qm4!zX8pLw');", ["Qm4!zX8pLw"]),
        ("Das Kennwort lautet Qm4!zX8pLw", ["Qm4!zX8pLw"]),
        ("hasło to Qm4!zX8pLw", ["Qm4!zX8pLw"]),
        ("Пароль от вайфая — Qm4!zX8pLw", ["Qm4!zX8pLw"]),
        # the fourth round (2026-12-06): the language's verb a word of its own, a name and a
        # password as fields or with a slash, Oracle's NAME/PASSWORD@SERVICE
        ("Oi Ana, a senha do e-mail da loja é Wq8#rT2!mz. Qualquer coisa me chama.", ["Wq8#rT2!mz"]),
        ("ssh in with user deploy, pass Wq8#rT2!mz and restart nginx", ["Wq8#rT2!mz"]),
        ("the kiosk user is kiosk pass Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("Zugang: Benutzer jdoe, Passwort Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("the kiosk login (user kiosk / Wq8#rT2!mz) stopped working", ["Wq8#rT2!mz"]),
        ("jdbc:oracle:thin:scott/Wq8#rT2!mz@db-prod:1521/ORCL", ["Wq8#rT2!mz"]),
        ("sqlplus -s app_ro/Wq8#rT2!mz@//db-prod:1521/ORCL @report.sql", ["Wq8#rT2!mz"]),
        ("expdp system/Wq8#rT2!mz@ORCL schemas=HR directory=DUMP", ["Wq8#rT2!mz"]),
        ("Das Passwort ist: Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("user deploy, pass hunter2!", ["hunter2!"]),
        # a made-up password on a credential word's line, however it is said (nearby.py)
        ("pw for the NAS, Wq8#rT2!mz, don't share it", ["Wq8#rT2!mz"]),
        ("Hola, te paso la contraseña del router, Wq8#rT2!mz, y el usuario admin", ["Wq8#rT2!mz"]),
        ("guest wifi tonight -> Wq8#rT2!mz (case sensitive)", ["Wq8#rT2!mz"]),
        ("ticket 4471: creds reset, temp one Wq8#rT2!mz until Friday", ["Wq8#rT2!mz"]),
        ("Пароль на сегодня Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        # the fifth round (2026-12-06): "pass" said with its verb, an answer on the line after a
        # question, positional passwords of Perl's DBI and MySQL's C API
        ("fyi the wifi pass at the cabin is Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("[09:14] ana: what's the staging login?\n[09:15] li: deploy / Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("Agent: can you confirm your PIN or password?\nCaller: yes, it's Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ('my $dbh = DBI->connect($dsn, "etl", "Wq8#rT2!mz") or die;', ["Wq8#rT2!mz"]),
        ('mysql_real_connect(&db, "10.0.0.4", "etl", "Wq8#rT2!mz", "crm", 0, NULL, 0);', ["Wq8#rT2!mz"]),
        # the sixth round (2026-12-06): a call's arguments before one that runs over the line, a
        # secret-named key and a quoted value with no "=", a password given to SQL's hash functions
        ("$pdo = new PDO($dsn, 'crm', 'Wq8#rT2!mz', [\n    PDO::ATTR_ERRMODE => 2,\n]);", ["Wq8#rT2!mz"]),
        ("signingConfigs {\n  release {\n    storePassword 'Wq8#rT2!mz'\n  }\n}", ["Wq8#rT2!mz"]),
        ('AuthLDAPBindPassword "Wq8#rT2!mz"', ["Wq8#rT2!mz"]),
        (
            "rclone config create s3 s3 secret_access_key 'Wq8#rT2!mz' endpoint http://minio:9000",
            ["Wq8#rT2!mz"],
        ),
        ("UPDATE wp_users SET user_pass = MD5('Wq8#rT2!mz') WHERE ID = 1;", ["Wq8#rT2!mz"]),
        ("SET @pwd = SHA2('Wq8#rT2!mz', 256);", ["Wq8#rT2!mz"]),
        ("SET user_pass = MD5 ('Wq8#rT2!mz');", ["Wq8#rT2!mz"]),
        ("DB_PASSWORD=Xk7pQ2(wz9", ["Xk7pQ2(wz9"]),
        # the seventh round (2026-12-06): a made-up password whose only symbol is - or +, the
        # credential's word in more languages and forms, codes and keys that open something, an
        # FTP script's user line
        ("pw for the NAS, laF187-4kGX0, don't share it", ["laF187-4kGX0"]),
        ('var token = _auth.Login("admin", "mmW473+Ri2iL");', ["mmW473+Ri2iL"]),
        ("Hej! Lösenordet till routern är Wq8#rT2!mz, det står på lappen.", ["Wq8#rT2!mz"]),
        ("Merhaba, sunucu için şifreniz Wq8#rT2!mz. Lütfen değiştirin.", ["Wq8#rT2!mz"]),
        ("مرحبا، كلمة المرور الجديدة لحسابك هي Wq8#rT2!mz يرجى تغييرها", ["Wq8#rT2!mz"]),
        ("आपका नया पासवर्ड Wq8#rT2!mz है, कृपया इसे साझा न करें।", ["Wq8#rT2!mz"]),
        ("To view the photos, enter the access code Wq8#rT2!mz on the gallery page.", ["Wq8#rT2!mz"]),
        ("Network name: VM4418220\nWireless key: Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        # the eighth round (2026-12-06): a word of a script without spaces after another of its
        # characters, logging in with a made-up value
        ("サーバーのパスワードは ICF405-SK22c です。明日までに変更してください。", ["ICF405-SK22c"]),
        ("I've tried logging in with Wq8#rT2!mz like five times and now I'm locked out", ["Wq8#rT2!mz"]),
        # a declared type between the name and its value (TypeScript, Kotlin, Swift, Python, VB)
        ('const password: string = "Wq8rT2xmz4";', ["Wq8rT2xmz4"]),
        ('var dbPassword: String? = "Wq8rT2xmz4"', ["Wq8rT2xmz4"]),
        ('password: Optional[str] = "Wq8rT2xmz4"', ["Wq8rT2xmz4"]),
        ('Const SHEET_PW As String = "Wq8rT2xmz4"', ["Wq8rT2xmz4"]),
        # the ninth round (2026-12-06): a made-up value of ten or more characters in both cases
        # anywhere in a message that speaks of credentials; "example" in a host's name is no example
        ("Was my old password in a breach?\n\nIt was Wq8#rT2!mzQ for years.", ["Wq8#rT2!mzQ"]),
        ("Login for https://app.example.com is admin / Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        # a review's (2026-12-06): both SNMPv3 passphrases, an option's value after a Turkish "İ"
        # (the lowercased text's offsets), openssl's pass: form, compound option names, Go's and
        # Rust's typed declarations, an FTP session's line, a two-word password unquoted
        (
            "snmpwalk -v3 -l authPriv -u ops -a SHA -A Mn7Bv4Cx1Z -x AES -X Lk9Jh6Gf3D 10.0.0.1",
            ["Mn7Bv4Cx1Z", "Lk9Jh6Gf3D"],
        ),
        (
            "\u0130zmir ve \u0130stanbul sunucular\u0131 i\u00e7in not: ./setup --admin-pass Xk7pQ2wz9L",
            ["Xk7pQ2wz9L"],
        ),
        ("openssl enc -aes-256-cbc -in a.txt -pass pass:Xk7pQ2wz9L", ["Xk7pQ2wz9L"]),
        ("Install-App.ps1 -AdminPassword Qw8Er5Ty2U -Silent", ["Qw8Er5Ty2U"]),
        ('const dbPassword string = "Zq7Xw4Ec1V"', ["Zq7Xw4Ec1V"]),
        ('const DB_PASSWORD: &str = "Tr5Ed2Ws9Q";', ["Tr5Ed2Ws9Q"]),
        ("ftp> user backup Xk7pQ2wz9L\n331 Password required", ["Xk7pQ2wz9L"]),
        ("DB_PASSWORD=Correct-Horse", ["Correct-Horse"]),
        # a second review's (2026-12-06): "=" in an option's value, Markdown's inline code, base64's
        # padding after a key, a letter-only value ending in "!", -U/-P, names starting "ftp",
        # Windows line ends
        ("deploy --client-secret Ab1=Cd2Ef3Gh", ["Ab1=Cd2Ef3Gh"]),
        ("openssl enc -aes-256-cbc -pass pass:R7t=kLp2Zx9", ["R7t=kLp2Zx9"]),
        ("My password is `Xk7pQ2wz9L`, why does the login fail?", ["Xk7pQ2wz9L"]),
        ("client_secret: AbCdEf1234567890xyz=", ["AbCdEf1234567890xyz="]),
        ("DB_PASSWORD=Sunshine!", ["Sunshine!"]),
        ("tsql -S db01 -U sa -P Xk7pQ2wz9L", ["Xk7pQ2wz9L"]),
        ("ftp -n h <<EOF\nuser ftp-admin Xk7pQ2wz9L\nEOF", ["Xk7pQ2wz9L"]),
        ("@echo off\r\nnet user kiosk Mn7Bv4Cx1Z\r\nshutdown /r\r\n", ["Mn7Bv4Cx1Z"]),
        # conventions rather than any set's text: an option named for a secret, -u NAME -p
        # PASSWORD, Windows' net user, wpa_passphrase
        ("mytool deploy --admin-pass Wq8#rT2!mz --region eu", ["Wq8#rT2!mz"]),
        ("app --client-secret=Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("New-Thing -Name web -Token 'Wq8#rT2!mz'", ["Wq8#rT2!mz"]),
        ("vncviewer -passwd Wq8#rT2!mz host:1", ["Wq8#rT2!mz"]),
        ("crackmapexec smb 10.0.0.5 -u bob -p Wq8#rT2!mz", ["Wq8#rT2!mz"]),
        ("C:\\> net user backup Wq8#rT2!mz /add", ["Wq8#rT2!mz"]),
        ('wpa_passphrase "Home Net" Wq8#rT2!mz > /etc/wpa.conf', ["Wq8#rT2!mz"]),
        (
            "ftp -n files.internal <<EOF\nuser backup Wq8#rT2!mz\nbinary\nput db.tar.gz\nbye\nEOF",
            ["Wq8#rT2!mz"],
        ),
    ],
)
def test_passwords_in_urls_rows_clients_and_sentences(text: str, secrets: list[str]) -> None:
    """Each password is covered by a secret finding (a connection string's finding is the URL)."""
    findings = secrets_in(text)
    for secret in secrets:
        start = text.index(secret)
        assert any(f.start <= start and start + len(secret) <= f.end for f in findings), secret


def test_every_foreign_word_holds_a_gate_word() -> None:
    """The gate of _foreign_spoken is sound: each word holds one of its words."""
    from router.signals.sensitivity.prose import _FOREIGN_GATE, _FOREIGN_WORDS

    for word in _FOREIGN_WORDS:
        assert _FOREIGN_GATE.open(word), word


@pytest.mark.parametrize(
    "text",
    [
        *_LOOK_ALIKES,
        "Password: [REDACTED]",
        "smb://workgroup;user:password@server/share",  # documentation's placeholder
        "cvs://:pserver:anoncvs@sources.example.org:/cvs/src",  # a method and a name, no password
        "INSERT INTO users (name, password_hash) VALUES ('bob', 'Zq3!u8Rk2xAbCdEf')",
        "INSERT INTO users (name, password) VALUES ('bob', '$2b$12$Q9xk7LmZaBcDeFgHiJkLmN')",
        "INSERT INTO users (name, token_type) VALUES ('bob', 'Bearer-2x')",
        "7z a -mx=9 archive.7z docs/",
        "unzip -p archive.zip notes.txt",
        "ssh -p 2222 ops@bastion",
        "ConvertTo-SecureString $env:SVC_PW -AsPlainText -Force",
        'ConvertTo-SecureString "01000000d08c9ddf0115d1118c7a00c04fc297eb"',  # encrypted, not plain
        "la contraseña es segura",
        "das Kennwort ist abgelaufen",
        "the password must be at least 12 characters",
        "Reset the password for user jdoe2 to the default",
        "My email is jane@corp.io and my boarding pass is AB12CD",
        "login with your email and pass the token in the header",
        "the password for the island retreat booking",
        "[Unit]\nDescription=agent and passphrase cache (for browsers)\nDocumentation=man:gpg-agent(1)",
        "Passwort vergessen, bitte helfen",
        "credentials are in vault2",
        "What is a strong password? Use at least 12 characters",
        "What's the password?\nA: I don't know, ask IT",
        "wifi network is down, key points: restart the AP",
        "Files: profiles/apparmor.d/usr.lib.dovecot.imap-login profiles/apparmor.d/usr.lib.dovecot.pop3-login",
        "echo $CR_PAT | docker login ghcr.io -u octocat --password-stdin",
        "  AuthLDAPBindPassword exec:/usr/local/bin/get-ldap-pw",
        "await page.fill('#password', process.env.E2E_PASSWORD);",
        "page.fill('#username', 'Zx5!cV8bNm')",
        # a review's (2026-12-06): an option after a bare -p, messages and render passes, format
        # strings, a password's later sentence that goes elsewhere, the shell's pwd, pin numbers,
        # "pass" the verb, Markov decision processes, dashes in menus, columns that are not secrets
        "mongo -u admin -p --authenticationDatabase admin",
        "psexec \\\\host -u user -p -accepteula cmd /c dir",
        "gpg --passphrase --batch -c file",
        "t.pass('callback-called');",
        "gl.pass('Blur-Horizontal')",
        'create_engine("mysql+pymysql://%s:%s@%s/%s" % (user, pw, host, db))',
        "s3a://bucket:prefix@region?",
        'url = f"postgresql://{user}:{pw}@{host}/app"',  # an f-string's fields
        "My password expired yesterday and IT says I have to switch to Windows11 first.",
        "The password can be reset at https://id.acme.io/v2/reset",
        "Forgot your password? Ask the helpdesk to reset it, ticket type is IT-Access2.",
        "Password spraying detected from 10.0.3.7 to DC01-Corp at 04:12.",
        "pwd returns C:\\Users\\Admin2 in Git Bash.",
        "Set pin 13 to 1000 ms blink.",
        "Every user must pass Level2 verification before trading.",
        "except User.DoesNotExist:\n    pass\nsleep(2)",
        "Solve the MDP on FrozenLake-v1 with value iteration.",
        "Login screen: logo - Login-Button2.",
        "The account is billed monthly - plan B2B-Pro3 applies.",
        "INSERT INTO nlp_tokens (sentence_id, token) VALUES (7, 'New-York'), (7, 'City');",
        "INSERT INTO t (id, season_pass) VALUES (1, 'Gold-Tier');",
        "INSERT INTO creds (name, client_secret) VALUES ('db', 'vault:kv/db-prod');",
        "INSERT INTO u (n, password) VALUES ('a', 'sha256:9f86d081884c7d659a2feaa0c55ad015');",
        'The -AsPlainText switch of ConvertTo-SecureString "is insecure" -AsPlainText -Force',
        "value = self.get_input(self.console, prompt, self.password, stream=stream)",
        # a second review's (2026-12-06): typing into another field on a password's line, UI code
        "await page.fill('#password', ''); await page.locator('#email').fill('qa.user+42@acme.io');",
        "cy.get('#password').clear(); cy.get('#username').type('jdoe2024')",
        'passwordHint.setValue("Use 8+ characters, 1 digit");',
        "Q: Which password manager do you recommend?\nA: 1Password, but any will do",
        "The network key is Base64-encoded in the exported profile XML.",
        "jdbc:oracle:thin:scott/tiger@localhost:1521:orcl",
        "INSERT INTO dbo.Tokens (Token, Lang) VALUES (N'GPT-4o', N'en'), (N'Llama3.1', N'en');",
        "HashedControlPassword 16:872860B76453A77D60CA2BB8C1A7042072093276A3D701AD684053EC4C",
        "db_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  62313365396662343061393464336163",
        "Our banned-password list blocks common choices such as 'Password123', 'Welcome1' and 'Summer2024!'.",
        "echo !REG_PW! | docker login registry.local -u ci --password-stdin",
        "echo $SUDO_PASSWORD | sudo -S apt-get update",
        "Files: profiles/apparmor/profiles/extras/usr.bin.passwd\nCopyright: 2006-2009 Novell",
        "The password GPT-4o generated for me is weak, can you suggest a better one?",
        "Password\nArgon2id hashing was enabled in v4.",
        "echo 'vm.swappiness=10' | sudo -S tee -a /etc/sysctl.conf",
        "set PASSWORD=!DB_PW!",
        'def pin(payload):\n    """Pin ``payload["id"]`` to the first call."""',
        # the fourth round's rules (2026-12-06): fields and slashes that are no login, Oracle's
        # placeholders and local logins
        "the username and password fields are required",
        "user guide / password reset page",
        "Use the user / Password2Reset flow",
        "I use src / Main2.java for that",
        "use the HTTP/1.1 / HTTP2.0 comparison",
        "login with user / pass",
        "sqlplus / as sysdba",
        "jdbc:oracle:thin:scott/${DB_PASS}@db:1521/ORCL",
        "jdbc:oracle:thin:scott/<password>@db:1521/ORCL",
        "Herr German Hartmann from the Lehrmann GmbH",
        # a review's (2026-12-06): "pass" the verb and code after a user's word; and what the
        # nearby rule must leave: examples, names, versions, paths, code and columns
        "For the user id, pass userId2 as the second argument",
        "For a service user account, pass --role=Admin2",
        "CREATE TABLE accounts (user VARCHAR(64), pass CHAR(60));",
        "I'm using macOS / Windows11",
        "Passwords like Summer2024! are guessed in minutes",
        "Common passwords such as P@ssw0rd1 are in every wordlist",
        "The error is E1045-denied, password mismatch",
        "Store the new credential in 1Password under 'Prod DB / app_rw'",
        # the fifth round's: "pass" in code, a question nobody answers with a value, a label, a
        # quoted placeholder
        "def disable(self):\n    pass  # TODO(https://github.com/grpc/grpc/issues/4078): design",
        "the season pass is Gold-Tier2 this year",
        "Where do I find the VPN login?\nIn the IT portal under Access2Go.",
        "Output, password removed: Username: admin / Password: ********",
        "CREATE USER 'reporting'@'%' IDENTIFIED BY '<strong password here>';",
        # the sixth round's: an empty value before the next line's key, a redacted value, keys
        # with a quoted word or label after them, a hash function on a column
        "DB_HOST=localhost\nDB_PASSWORD=\nDB_NAME=app_dev",
        "Username: jdoe, Password: [REDACTED per policy]. Account unlocked.",
        'label password "Password:"',
        "storePassword 'storePassword'",
        "UPDATE users SET password_hash = MD5(CONCAT(salt, password));",
        "Raises:\n    APIKeyLimitExceededError:\n        when the key is over its limit",
        # a second review's (2026-12-06): what the made-up-password rule must leave
        "Wi-Fi 6 router, login page shows 8GB+256GB and WPA2+WPA3 support",
        "login bug fixed in fix#1234, see run#8812",
        "password regex: ^[A-Za-z0-9#?!]{8,}$ (character class A-Za-z0-9#?!)",
        '<button class="!bg-blue-600 login-btn">Log in</button>',
        "login retries: failures+=1 then --timeout=3600 before the next",
        "password hashes look like pbkdf2_sha256$600000$salt$hash",
        "login latency 1.5ms±2% over the week",
        "design file: Login&Signup_v3.fig",
        "密码至少8位\uff0c包含大小写字母和数字。",  # a full-width comma
        "Is a password like Tr0ub4dor&3 strong enough?",
        "Avoid passwords such as Tr0ub4dor&3 or P4ssw0rd!23, which make guessing any login easy",
        "Q: which pin is SDA?\nA: IO21(SDA) on the ESP32",
        # a third review's (2026-12-06): a call's last argument where the call runs over the line,
        # names and paths after a secret's key word on a command line
        # (a user's name that reads as made up, "Svc#Deploy42", is taken for a password since the
        # ninth round: a made-up value anywhere in a text that speaks of credentials)
        'keyring.set_password("billing-api", "svc-deploy", getpass.getpass(\n    "Password: "))',
        "kubectl describe secret 'app-tls-2024'",
        "vault kv get secret 'prod/db2'",
        "docker run -e POSTGRES_PASSWORD_FILE=/run/secrets/pg_password postgres:16",
        "PASSWORD_MIN_LENGTH=12\nPASSWORD_REQUIRE_SYMBOL=true",
        'DriverManager.getConnection("jdbc:h2:mem:testdb", "sa", "password")',
        "Login page: see https://id.acme.io/v2/login?next=%2Fhome#x1",
        # the seventh round's (2026-12-06): names and versions with - or + on a credential
        # word's line, a setting of how a password is kept, a cmdlet that asks for one
        "My iPhone-15 won't join the wifi anymore",
        "wifi on the MacBook-Pro16 drops every hour",
        "login page of the GitLab-CE16 instance is slow",
        "credentials are in the KeePassXC-2.7 database",
        "my login stopped working after updating to iOS17-beta",
        "The login form uses reCAPTCHA-v3 now",
        "Security type: WPA2-Personal, password is on the sticker",
        "password_encryption = scram-sha-256",
        '$password = Read-Host -AsSecureString "Enter password"',
        "token_type = Bearer2",
        "ftp> user anonymous",
        "I can't log in since the update to v2.3.1-beta",
        "sign in with your Google account or GitHub2FA",
        "    boi_token_index: int = 255_999",
        'SESSION_TOKEN_PREFIX: Final = "llm_session_"',
        'password: str = os.environ["DB_PASSWORD"]',
        "if (password: string == 'x')",
        "Reset your password here.\n\nThe sum is 3*Rational(1, 2) + x**2 and 2^Nk7a",
        "Passwords like Summer2024!xy are guessed in minutes",
        "For example, a password such as Wq8#rT2!mzQ is strong",
        "e3b0c442 chore: rotate SMTP password (value now lives in Key Vault, not in repo)",
        '<add key="DbPassword" value="#{DbPassword}#" />',
        # a review's (2026-12-06): names with - or + beside logging in, a version in capitals, a
        # quoted path or a reference as an option's value, Maven's -U/-P, the next line read as a
        # command's value, a server's user lines, typed declarations whose value is code
        "Sign in to the portal to see your SARS-CoV-2 test result.",
        "I'm logged in to Hugging Face; how do I run ChatGLM3-6B locally?",
        "Since updating to iOS18-Beta3 I can't sign in to iCloud.",
        "I found this error in the log in /var/log/syslog on my 4TiB-RAID10 array.",
        "debug1: Local version string SSH-2.0-OpenSSH_9.6\ndebug1: Authentications that can continue: publickey,password",
        'deploy --token "/run/secrets/token2"',
        "openssl enc -aes256 -pass file:/root/pass2.txt",
        "docker buildx build --secret id=gh_token2,env=GH_TOKEN .",
        "mvn -U clean -P Release2 install",
        'wpa_passphrase MyHomeWiFi\nnetwork={\n\tssid="MyHomeWiFi"\n}',
        "net user Administrator\nipconfig2 /all",
        "For the FTP server we use vsftpd. Our nginx.conf starts with:\nuser www-data www-data;",
        "ftp -n ftp.gnu.org <<EOF\nuser anonymous anonymous@\nEOF",
        "let mut password: String = String::new();",
        'let token: Option<String> = std::env::var("GITHUB_TOKEN").ok();',
        "const token: string = `Bearer ${accessToken}`;",
        "let secret: Uint8Array = new TextEncoder().encode(x);",
        "My app crashes when the user taps log in: NullPointerException in LoginFragment$2.onClick.",
        "Server=db;User Id=app;Password=#{DbPassword}#;",
        "let password: &str = &args[2];",
        "snmpwalk -v3 host hangs\n-A ufw-user-input2 -p udp --dport 161 -j ACCEPT",
        "Get-Items -ContinuationToken Page2Next -First 50",
        "gcloud list --next-page-token CAEQAhoF2Ab",
        "docker run -u 1000 -p 8080:80 nginx",
        "psql -U postgres -h db -p 5432 app",
        "generate --max-tokens 4096 --token-limit 8000",
        "gh api --token $GITHUB_TOKEN repos/x",
        "run --password-file /run/secrets/pw",
        "proxy --bypass Xk7#abc1.local --verbose",
        "docker build --secret id=npmrc,src=.npmrc .",
        "net user bob * /add",
        "net user administrator /active:yes",
        # masked or cut short where shown; a key's frame with no key in it; a token's prefix before
        # a stand-in; what is derived from a secret or names it elsewhere; a shell variable; an ARN
        'OPENAI_API_KEY="sk-..."',
        'access_token = "eyJ***REDACTED***"',
        'refresh_token: "rt_91ab…(truncated)"',
        "db_password = (sensitive value)",
        "-----BEGIN RSA PRIVATE KEY-----\n<paste your deploy key here>\n-----END RSA PRIVATE KEY-----",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        "SLACK_BOT_TOKEN=xoxb-your-bot-token",
        "api_token_hash = 'a3f5c9e1b7d24680a3f5c9e1b7d24680a3f5c9e1b7d24680a3f5c9e1b7d24680'",
        '{"token_uri": "https://oauth2.googleapis.com/token"}',
        "MaxPasswordAge : 90.00:00:00",
        "redis:\n  auth:\n    existingSecret: redis-auth",
        'docker run --rm -v "$PWD":/backup alpine tar czf /backup/db.tgz /data',
        "arn:aws:secretsmanager:us-east-2:210987654321:secret:staging/payments/api-Xy7Qz9",
        "audit: request.data.password=hmac-sha256:9c1e4b7a2d5f8e3c6b9a0d1e4f7a2c5b8e1d4f7a0c3e6b9d",
        "Driver={ODBC Driver 18 for SQL Server};Server=sql01;Uid=%DB_USER%;Pwd=%DB_PASS%;Encrypt=yes",
        "[client]\nuser=backup\npassword=\nhost=10.1.2.3",
        "apiVersion: v1\nkind: Secret\ndata:\n  password: Y2hhbmdlbWU=",
        'curl -u "api:YOUR_SECRET_KEY" https://api.example.com/v1/items',
    ],
)
def test_look_alikes_are_not_secrets(text: str) -> None:
    assert secrets_in(text) == []


def test_command_patterns_read_a_bounded_stretch() -> None:
    """Every gap a command-line pattern skips is bounded: an unbounded one, read from each of a
    word's thousand repeats, made the scan quadratic."""
    from router.signals.sensitivity import connections, credential_files, programs, secrets

    patterns = [programs._FLAGS.pattern, secrets._ASSIGNMENT.pattern]
    patterns += [rule.pattern.pattern for rule in programs._CLIENTS]
    patterns += [credential_files._NETRC.pattern, connections._FIELD.pattern, connections._USERINFO.pattern]
    for source in patterns:
        assert "*?" not in source.replace("{0,300}?", "") and "[^\\n]*" not in source, source[:60]
    assert "(?P<rest>[A-Za-z0-9_.-]{0,100})" in secrets._ASSIGNMENT.pattern


# One documented command per row of programs._OPTION_CLIENTS, keyed by the row's first name; {pw}
# is the password and {blank} what stands before the option.
_OPTION_COMMANDS = {
    "ipmitool": "ipmitool -I lanplus -H bmc1 -U root{blank}-P {pw} chassis status",
    "mongo": "mongodump --host db1 -u backup{blank}-p {pw} --out /backups",
    "mosquitto_pub": "mosquitto_pub -h broker -u iot{blank}-P {pw} -t t -m 1",
    "zip": "zip -r{blank}-P {pw} docs.zip docs/",
    "7z": "7z a{blank}-p{pw} -mhe=on vault.7z files/",
    "xfreerdp": "xfreerdp /v:ws12 /u:ops{blank}/p:{pw} /cert:ignore",
    "rdesktop": "rdesktop -u ops{blank}-p {pw} ws12",
    "plink": "plink -ssh ops@router{blank}-pw {pw} show run",
    "psexec": "PsExec.exe \\\\srv01 -u CORP\\ops{blank}-p {pw} cmd",
    "schtasks": "schtasks /create /tn job /tr job.bat /ru svc{blank}/rp {pw}",
    "gpg": "gpg --batch{blank}--passphrase {pw} -c report.pdf",
    "ssh-keygen": "ssh-keygen -t ed25519{blank}-N {pw} -f deploy_key",
    "ldappasswd": "ldappasswd -x -D cn=admin -W{blank}-s {pw} uid=bob",
    "rabbitmqadmin": "rabbitmqadmin -u admin{blank}-p {pw} list users",
    "influx": "influx -username admin{blank}-password {pw} -execute 'show users'",
    "hdbsql": "hdbsql -n hana:30015 -u SYSTEM{blank}-p {pw} 'select 1'",
    "nmcli": "nmcli dev wifi connect HomeNet{blank}password {pw}",
    "curl": "curl -x proxy:3128{blank}-U bob:{pw} https://example.org",
    "openssl": "openssl pkcs12 -export -in c.pem -inkey k.pem{blank}-passout pass:{pw} -out b.p12",
}


@pytest.mark.parametrize("blank", [" ", "\t", "\u00a0"])
def test_every_option_client_is_found_through_the_whole_scan(blank: str) -> None:
    """Each documented client's password option, after any blank but a line break, is found by
    the whole scan: a row whose option _OPTION_GATE missed, or whose rule did not match, fails."""
    from router.signals.sensitivity import programs

    assert sorted(names[0] for names, _ in programs._OPTION_CLIENTS) == sorted(_OPTION_COMMANDS)
    for name, command in _OPTION_COMMANDS.items():
        text = command.format(pw="Qm4!zX8pLw", blank=blank)
        start = text.index("Qm4!zX8pLw")
        found = [f for f in secrets_in(text) if f.start <= start < f.end]
        assert found, (name, text)


# A word a person chose is a password where the syntax says the value is one (2026-12-06): each
# text's password is a weak one, of the kind a random-looking-value rule cannot see.
@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("DB_HOST=db.internal\nDB_PASSWORD=hunnybun\nDB_NAME=orders", "hunnybun"),
        ("$ export PGPASSWORD=baseball\n$ pg_dump -h db orders", "baseball"),
        ("PGPASSWORD=sunshine pg_dump -h db -U app orders", "sunshine"),
        ("docker run -d -e POSTGRES_PASSWORD=xcountry -p 5432:5432 postgres:16", "xcountry"),
        ('[Service]\nEnvironment="DB_PASSWORD=immortal"\nExecStart=/opt/app', "immortal"),
        ("spring.datasource.username=admin\nspring.datasource.password=nathanie\n", "nathanie"),
        ("stringData:\n  username: jdoe\n  password: football\n", "football"),
        ("env:\n  - name: x\n  - password: trustno\n", "trustno"),
        ("[security]\nadmin_user = ops\nadmin_password = princess\n", "princess"),
        ("mysql -h db -u app -p'starwars' -e 'SHOW DATABASES;'", "starwars"),
        ("sshpass -p 'baberuth' ssh ops@host uptime", "baberuth"),
        ("redis-cli -h cache -p 6379 -a longjohn INFO", "longjohn"),
        ("mongodump --host db --username admin --password 'bigdaddy' --out /b", "bigdaddy"),
        ("openssl pkcs12 -export -in c.pem -inkey k.pem -out b.p12 -passout pass:buddylee", "buddylee"),
        ("<server>\n  <username>app</username>\n  <password>fullback</password>\n</server>", "fullback"),
        ('AuthLDAPBindDN "cn=admin,dc=corp"\nAuthLDAPBindPassword "birthday"', "birthday"),
        ("# ~/.pgpass\ndb.internal:5432:*:app:daddymac", "daddymac"),
        ("ffplay rtsp://admin:pianoman@10.0.3.7:554/stream1", "pianoman"),
        ("mount -t cifs smb://CORP;ops:talisman@fs01/share /mnt", "talisman"),
        (
            "server = smtplib.SMTP_SSL('smtp.gmail.com', 465)\nserver.login('me@gmail.com', 'sunshine')",
            "sunshine",
        ),
        ('Credentials = new NetworkCredential("deploy", "maverick"),', "maverick"),
        ("requests.get(url, auth=('admin', 'whatever'))", "whatever"),
        ("# let me know if this works\ndb:\n  password: hunnybun\n", "hunnybun"),
        # words a person chose that begin like an instruction's (the, my, enter, add)
        ("DB_USER=teddy\nDB_PASSWORD=theodore1", "theodore1"),
        ("smtp:\n  user: tom@contoso.com\n  password: myspace1\n", "myspace1"),
        ("docker run -d -e MONGO_INITDB_ROOT_PASSWORD=enterprise1 mongo", "enterprise1"),
        ('password = "topsecret"', "topsecret"),  # holds "secret", names none
        # (2026-12-06, twenty-seventh session) MongoDB's tools take --password VALUE
        ("mongodump --host db --username admin --password cobblepot --out /b", "cobblepot"),
        # Ansible's connection variables
        ("[db]\ndb-01 ansible_user=ops ansible_become_pass=quillmoth", "quillmoth"),
        ("[legacy]\nweb-01 ansible_sudo_pass=quillmoth", "quillmoth"),
        ("all:\n  vars:\n    ansible_password: sunflower\n", "sunflower"),
        # .netrc entries, one token a line or one line
        ("machine ftp.corp.example\n  login deploy\n  password gooseberry\n", "gooseberry"),
        ("machine ftp.corp.example\r\n  login deploy\r\n  password gooseberry\r\n", "gooseberry"),
        ("machine ftp.corp.example login deploy password gooseberry", "gooseberry"),
        ("machine ftp.corp.example login deploy password gooseberry account ops", "gooseberry"),
        ("default login deploy password gooseberry", "gooseberry"),
        # Go's ssh.Password, under an alias too
        (
            'cfg := &ssh.ClientConfig{User: "ops", Auth: []ssh.AuthMethod{ssh.Password("gooseberry")}}',
            "gooseberry",
        ),
        ("Auth: []ssh.AuthMethod{ssh.Password(`gooseberry`)}", "gooseberry"),
        ('Auth: []gossh.AuthMethod{gossh.Password("gooseberry")}', "gooseberry"),
        # a connection string's or a URL query's password field is a literal
        ("Server=db01;Database=crm;User Id=app;Password=gooseberry;", "gooseberry"),
        ("Server=db01;Database=crm;User Id=app;Password = gooseberry;", "gooseberry"),
        ("Driver={ODBC Driver 18 for SQL Server};Server=db;Uid=app;Pwd=gooseberry;", "gooseberry"),
        ("jdbc:postgresql://db:5432/sales?user=jdoe&password=gooseberry", "gooseberry"),
        # PostgreSQL's role options take the password as a quoted literal
        ("ALTER USER deploy WITH PASSWORD 'marmalade';", "marmalade"),
        ("ALTER USER app\n  WITH PASSWORD 'gooseberry';", "gooseberry"),
        ("CREATE USER app WITH PASSWORD E'gooseberry';", "gooseberry"),
        (
            "CREATE ROLE app WITH LOGIN ENCRYPTED PASSWORD 'quokkamoon' VALID UNTIL '2030-01-01';",
            "quokkamoon",
        ),
        # in a sentence's "is", a word that is not English is one a person chose
        ("The new wifi password is quokkamoon, tell the guests.", "quokkamoon"),
        ("the wifi password is now kittycatz, tell the guests", "kittycatz"),
        ("FYI my email password was zanzibarr until Monday", "zanzibarr"),
        ("I set the router password to bluefrogz yesterday", "bluefrogz"),
        ("new vpn pw? it's tortellinis", "tortellinis"),
    ],
)
def test_weak_passwords_where_the_syntax_gives_one(text: str, secret: str) -> None:
    start = text.index(secret)
    assert [f for f in secrets_in(text) if f.start <= start < f.end], text


@pytest.mark.parametrize(
    "text",
    [
        "    password=user_password\n",
        "PASSWORD=get_password()",
        "DB_PASSWORD=hunnybun;",  # a statement, not an env file's line
        "config.password = hunnybun",  # code: a variable
        "x = 1\npassword = hunnybun\n",  # no [section]: Python, not INI
        "PASSWORD_HASHERS=default",
        "DB_PASSWORD=${DB_PASS}",
        "POSTGRES_PASSWORD=postgres",  # the image's documented default
        "keytool -list -keystore cacerts -storepass changeit",
        "oc login -u developer -p developer https://api.crc.testing:6443",
        "class Settings(BaseSettings):\n    password: SecretStr\n",
        "class A:\n    password: Annotated[str, Field(min_length=8)]\n",
        "auth:\n  password: required\n  mfa: optional\n",
        "storePassword 'storePassword'",
        "the password: hunnybun",  # prose: a phrase rule's, which asks for a made-up value
        "mysql -u root -p mydb",
        'builder.password("required")',
        "ftp.login('anonymous', 'guest@example')",
        # from a review's benign texts, written against these rules
        "DB_PASSWORD=CHANGE_ME\nDB_NAME=app",
        "ADMIN_PASSWORD=`openssl rand -base64 24`",
        "- name: set user\n  user:\n    name: deploy\n    update_password: on_create\n",
        "passes:\n  render_pass: deferred_geometry\n",
        "const form = {\n  user: name,\n  password: pwField\n};",
        "[tool.poetry]\nname = 'x'\n\nimport keyring\npassword = keyring_pw\n",
        "pg_dump --username=app --password inventory > inventory.sql",
        "docker service create --secret 'pg_creds' postgres",
        "ffplay rtsp://user:pass@192.168.1.64:554/stream",
        "mosquitto_sub -L mqtt://guest:guest@broker:1883/t",
        "7z x -pinfected sample.7z",
        "requirepass foobared",
        # from a second review's texts
        "- Password: correct\n- Login: works",
        "sudo passwd 'appuser'",
        'Join-Path $PWD "reports"',
        'Open the password "Settings" page',
        "username: userInput,\n  password: pwInput",
        "client.password=args.pw",
        "RENDER_PASS=deferred",
        "<showPassword>visible</showPassword>",
        "12:30:45:678:processing\n12:30:46:679:done",
        "--password=interactive",
        'questionary.password("confirm")',
        "hash:\n  password: bcrypt",
        "POSTGRES_USER=keycloak\nPOSTGRES_PASSWORD=keycloak",
        "pg_restore -U app --password --dbname=shop x.dump",
        "rtsp://admin:1111@cam",
        "DB_PASSWORD=your_password_here",
        "password: replaceme",
        "MYSQL_ROOT_PASSWORD: somewordpress",  # Docker's WordPress sample
        # a sentence's "is" before an English word, or one ending like one, says how it is
        "Login fails: the password is incorrect.",
        "the password is football",  # a dictionary word: not told from "the password is strong"
        "Careful, the password is hardcoded in two places.",
        "the password was unencrypted in the backup",
        "the password is plaintext in that file",
        "the password is changeme until first login",  # a documented default
        "the pin is lavender",  # a PIN is digits
        "the password is aaabbb",  # fewer than four distinct letters
        "password = getpass",  # code's "=", not a sentence's
        "the password, as said in the rotation policy and the audit notes, is quokkamoon",  # far
        "ALTER ROLE app PASSWORD NULL;",
        "mongosh --username app --password --authenticationDatabase admin",  # asks for it
        "ansible_become_pass: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  62313365",  # encrypted
        'ansible_password: "{{ vault_ssh_password }}"',  # a variable's reference
        "Server=myServerAddress;Database=myDataBase;User Id=myUsername;Password=myPassword;",
        "Server=db;User Id=guest;Password=guest;",  # the user's own name: a default
        "Server=db;User Id=deploy;Password=deploy;",  # ADO.NET's "User Id" names the user too
        "Data Source=db;Integrated Security=True;Password=;",
        "cd /tmp; pwd=$(pwd)",  # no server, host, user or database before it
        # from a review's benign texts, written against the twenty-seventh session's rules
        "I forgot the password to grafana, how do I reset it?",  # "to": a place, not a value
        "pipe the password to sshpass instead",
        "the password manager we use is bitwarden",  # another noun's sentence
        "the password hash is yescrypt on debian",
        "the password is cleartext in the logs",  # the value does not end its clause
        "mongodump --host db --username admin --password\nmongorestore --drop",
        "ansible_password = os.getenv('ANSIBLE_PASSWORD')",
        "ansible_password: Specifies the password used to authenticate",
        "ansible_password: ENC[AES256_GCM,data:abc,iv:def]",
        "https://shop.example/account?user=42&password=forgot",  # a page's state
        "Server=db;Database=app;User Id=app;Password=dbpassword;",  # a stand-in
        "Server=db;User Id=app;Password=getpass.getpass();",
        "machine ftp.gnu.org login anonymous password anonymous",
        "machine learning\nlogin security\npassword hashing",
        "machine db01 login admin password mismatch",
        "questions = [inquirer.Password('passwd', message='Password')]",
        "cur.execute(\"ALTER USER app WITH PASSWORD '%(pw)s'\", params)",
        # from a second review's benign texts
        "The password is incorect, I triple checked the caps lock.",  # a mistyped word
        "the password is wronggg. i give up",
        "the password is anjali's birthday, she said",  # the quote does not close the value
        "you can't set the password to nullptr, it crashes",
        "https://intranet.example/help?user=jdoe&password=olvidada",  # a page's state, any language
        "Server=db;User Id=app;Password=fromvault;",  # where it is kept
        "Server=db;User Id=app;Password=settings.Value;",
        "mongodump's --password option is deprecated in scripts",
        "inventory = dict(host='web-01', ansible_password=decrypted)",
        "CREATE USER svc_batch NOLOGIN -- TODO: password 'gooseberry' once approved\n;",  # a comment
        "Our machine learning login page has a password reset link.",  # not a .netrc line
        "machine api.github.com login bob password $GITHUB_TOKEN",
        'ssh.Password(os.Getenv("SSH_PASSWORD"))',
        "CREATE USER x WITH PASSWORD '<your password>';",
    ],
)
def test_words_where_the_syntax_gives_no_password(text: str) -> None:
    assert secrets_in(text) == []


@pytest.mark.parametrize(
    "line",
    [
        "password: sunshine\n",
        "[s]\nx y\n[t]\npassword = sunshine\n",  # a section closed by a line, and one by a header
        "PASSWORD=sunshine\n",
        'AuthLDAPBindPassword "sunshine"\n',
        "Server=db;User Id=app;Password=sunshine;\n",
    ],
)
def test_a_text_of_many_literal_keys_costs_linear_time(line: str) -> None:
    """What the literal rules read of a text as a whole (code in it, its INI sections) is read once
    per text, and what comes before a key a bounded stretch back: 200,000 characters of keys take
    well under a second here (reading the text again for each key took minutes)."""
    import time

    text = (line * (200_000 // len(line) + 1))[:200_000]
    started = time.perf_counter()
    found = secrets_in(text)
    assert time.perf_counter() - started < 10.0  # quadratic: minutes; linear: about 1 s on busy cores
    assert len(found) == text[: text.rfind("\n") + 1].count("sunshine")  # each whole line's


def test_connection_fields_read_a_bounded_stretch_back() -> None:
    """A connection field looks for a server, host, user or database key on its line, at most a few
    hundred characters back: a long line of fields with no such key does not read it again for each."""
    import time

    text = ("a;pwd=sunshine " * 20_000)[:200_000]
    started = time.perf_counter()
    assert secrets_in(text) == []
    assert time.perf_counter() - started < 10.0  # quadratic: about 30 s here; linear: well under 1 s


def test_many_sentences_of_chosen_words_cost_linear_time() -> None:
    """Each candidate word after "the password is" is checked against the English list for a typo
    (its one-letter edits): a prompt of thousands of such sentences costs linear time."""
    import time

    text = " ".join("The password is quokkamoonx." for _ in range(3000))  # 87,000 characters
    started = time.perf_counter()
    assert len(secrets_in(text)) == 3000
    assert time.perf_counter() - started < 10.0  # about 1 s here (0.4 ms a word)


def test_an_azure_connection_strings_key_is_a_secret_but_not_the_emulators() -> None:
    """AccountKey= and SharedAccessKey= hold a base64 key; Azurite's published key is nobody's."""
    key = "q8Zr3LwT0vXn5Jc2Hk9Pd4Fs7Gb1Ma6Ye0Ut3Rw8Ki5Oz2Nl7Xv4Cj9Bh1Qe6Sp0Dm3Fa8Gt5Yu2Io7Lk4Jn9Hb6Vc1Wx3Zy=="
    text = f"DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey={key};EndpointSuffix=core.windows.net"
    assert [text[f.start : f.end] for f in secrets_in(text)] == [key]
    bus = "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=Zk3Lp9Qw2Xe7Rt5Yu1Io8Pa4Sd6Fg0Hj3Kl7Zx2Cv5Bn9Mq="
    assert len(secrets_in(bus)) == 1
    azurite = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUz"
        "FT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    )
    assert secrets_in(azurite) == []


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # the look-alike rules stop at what they name: an ellipsis a sentence puts after a whole
        # value, "masked" inside a word, a key whose last word only sounds like a reference's, a
        # secret beside an ARN, a base64 value that decodes to a real password, a key with a
        # header and a narrow body
        ("I put DB_PASSWORD=Xk7#pQ9mZw2... in the .env and it still says denied", "Xk7#pQ9mZw2"),
        ('db_password = "Unmasked#2024!"', "Unmasked#2024!"),
        ("DB_PASSWORD_STAGE=Tr0ub4dor&3xQz", "Tr0ub4dor&3xQz"),
        ("UNENCRYPTED_PASSWORD=Tr0ub4dor&3xQz", "Tr0ub4dor&3xQz"),
        ('change_password(existing_password="OldPass#2023x", new_password=new)', "OldPass#2023x"),
        (
            '{"RoleArn":"arn:aws:iam::123456789012:role/app","api_token":"q8Zr3LwT0vXn5Jc2Hk9Pd4Fs"}',
            "q8Zr3LwT0vXn5Jc2Hk9Pd4Fs",
        ),
        ("apiVersion: v1\nkind: Secret\ndata:\n  password: QFBhc3N3MHJkMjAyNA==", "QFBhc3N3MHJkMjAyNA=="),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nComment: "
            + "exported by the release team " * 12
            + "\n\nlQOYBGV2xQ8BCAC7q9Zr3LwT0vXn5Jc2\nHk9Pd4Fs7Gb1Ma6Ye0Ut3Rw8Ki5Oz2Nl\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBGV2xQ8BCAC7q9Zr3LwT0vXn5Jc2",
        ),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq8ZrXXX3LwT0vXn5Jc2Hk9Pd4Fs7Gb1Ma6Ye0Ut3Rw8Ki5Oz2N\n"
            "-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEAq8ZrXXX3LwT0vXn5Jc2Hk9Pd4Fs7Gb1Ma6Ye0Ut3Rw8Ki5Oz2N",
        ),
    ],
)
def test_look_alike_rules_leave_real_secrets_found(text: str, secret: str) -> None:
    start = text.index(secret)
    assert any(f.start <= start and f.end >= start + len(secret) // 2 for f in secrets_in(text)), text


def test_an_aws_secret_key_beside_its_access_key_id_is_found() -> None:
    """A trial's "My AWS key is AKIA... and the secret key is ..." left with the secret in clear
    under `redact`: only the ID was found. The documentation's example pair is nobody's."""
    text = "My AWS key is AKIAZ3MXQ7RT5LPK2WNB and the secret key is Hq8vT2nR0pLx5sKd9WmZ3yBc7FgJ1aEuV4oNiQ6t"
    assert {f.detail for f in secrets_in(text)} == {"aws_access_key", "aws_secret_key"}
    assert found(text, "Hq8vT2nR0pLx5sKd9WmZ3yBc7FgJ1aEuV4oNiQ6t")
    assert secrets_in("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY") == []
    far = "AKIAZ3MXQ7RT5LPK2WNB" + " lorem" * 80 + " Hq8vT2nR0pLx5sKd9WmZ3yBc7FgJ1aEuV4oNiQ6t"
    assert not found(far, "Hq8vT2nR0pLx5sKd9WmZ3yBc7FgJ1aEuV4oNiQ6t")  # not beside it
    digest = "AKIAZ3MXQ7RT5LPK2WNB built from 9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e"
    assert {f.detail for f in secrets_in(digest)} == {"aws_access_key"}  # one case only: a hex digest
