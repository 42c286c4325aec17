"""The generated secret sets of evals.secrets_eval: tokens of each provider's documented shape, the
project's own plaintext-credential templates and look-alikes, and the rows they fill.

Each provider value is drawn at random from the provider's documented shape (prefix, alphabet,
length); the generators were written from the providers' token documentation, not from any
detector's regular expression, then put in a sentence, a shell line, an env file, JSON or code. The
plaintext templates and the look-alikes are split in two by a seeded hash (template_half): rules may
be written reading the development half only; the held-out half is the figure to quote.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from typing import Any

from evals.pii_fresh import seeded_half

ALNUM = string.ascii_letters + string.digits
LOWER_ALNUM = string.ascii_lowercase + string.digits
HEX = "0123456789abcdef"
B64URL = ALNUM + "-_"
SPLIT_SEED = "turnout-secrets-1"
USERS = ("admin", "app", "svc_backup", "deploy", "jdoe")  # who a plaintext template's {user} is
HOSTS = ("db.internal", "10.0.3.7", "prod-db-01", "cache.corp.example")


def _r(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _jwt_like(rng: random.Random, payload: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.{_r(rng, B64URL, 43)}"


# family -> generator of one live-looking token of that provider's documented shape
FAMILIES: dict[str, Callable[[random.Random], str]] = {
    "github-classic-pat": lambda r: "ghp_" + _r(r, ALNUM, 36),
    "github-fine-grained-pat": lambda r: "github_pat_" + _r(r, ALNUM, 22) + "_" + _r(r, ALNUM, 59),
    "github-oauth": lambda r: "gho_" + _r(r, ALNUM, 36),
    "github-app": lambda r: "ghs_" + _r(r, ALNUM, 36),
    "gitlab-pat": lambda r: "glpat-" + _r(r, ALNUM + "-_", 20),
    "gitlab-runner": lambda r: "glrt-" + _r(r, ALNUM + "-_", 20),
    "gitlab-deploy": lambda r: "gldt-" + _r(r, ALNUM + "-_", 20),
    "slack-bot": lambda r: f"xoxb-{_r(r, string.digits, 12)}-{_r(r, string.digits, 13)}-{_r(r, ALNUM, 24)}",
    "slack-user": lambda r: f"xoxp-{_r(r, string.digits, 12)}-{_r(r, string.digits, 12)}-{_r(r, string.digits, 13)}-{_r(r, HEX, 32)}",
    "stripe-secret": lambda r: "sk_live_" + _r(r, ALNUM, 24),
    "stripe-restricted": lambda r: "rk_live_" + _r(r, ALNUM, 24),
    "aws-access-key-id": lambda r: "AKIA" + _r(r, string.ascii_uppercase + "234567", 16),
    "google-api-key": lambda r: "AIza" + _r(r, ALNUM + "-_", 35),
    "openai-project-key": lambda r: "sk-proj-" + _r(r, ALNUM + "-_", 64) + "T3BlbkFJ" + _r(r, ALNUM + "-_", 64),
    "anthropic-key": lambda r: "sk-ant-api03-" + _r(r, ALNUM + "-_", 93) + "AA",
    "huggingface-token": lambda r: "hf_" + _r(r, string.ascii_letters, 34),
    "pypi-token": lambda r: "pypi-AgEIcHlwaS5vcmc" + _r(r, ALNUM + "-_", 70),
    "npm-token": lambda r: "npm_" + _r(r, ALNUM, 36),
    "grafana-service-account": lambda r: "glsa_" + _r(r, ALNUM, 32) + "_" + _r(r, HEX, 8),
    "grafana-cloud": lambda r: "glc_" + _r(r, ALNUM + "+/", 32) + "==",
    "notion-integration": lambda r: "ntn_" + _r(r, string.digits, 11) + _r(r, ALNUM, 35),
    "mapbox-secret": lambda r: "sk.eyJ1Ijoi" + _r(r, ALNUM, 20) + "." + _r(r, ALNUM + "-_", 22),
    "onepassword-service-account": lambda r: "ops_eyJ" + _r(r, ALNUM, 250),
    "sourcegraph-access": lambda r: "sgp_" + _r(r, HEX, 16) + "_" + _r(r, HEX, 40),
    "vault-service": lambda r: "hvs." + _r(r, ALNUM + "_-", 95),
    "sendgrid": lambda r: "SG." + _r(r, ALNUM + "-_", 22) + "." + _r(r, ALNUM + "-_", 43),
    "twilio-api-key": lambda r: "SK" + _r(r, HEX, 32),
    "digitalocean-pat": lambda r: "dop_v1_" + _r(r, HEX, 64),
    "shopify-access": lambda r: "shpat_" + _r(r, HEX, 32),
    "databricks-pat": lambda r: "dapi" + _r(r, HEX, 32),
    "jwt": lambda r: _jwt_like(r, {"sub": _r(r, LOWER_ALNUM, 10), "exp": r.randint(1_700_000_000, 1_900_000_000)}),
    "private-key": lambda r: "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_r(r, ALNUM + "+/", 64) for _ in range(4)) + "\n-----END RSA PRIVATE KEY-----",
}  # fmt: skip
CONTEXTS = (
    "export {name}={value}",
    'Here is my key, please debug why the call fails: "{value}"',
    '{{"{name}": "{value}"}}',
    "client = Client(token='{value}')",
    "{name}: {value}",
)


def generated_password(rng: random.Random) -> str:
    return (
        _r(rng, string.ascii_letters, 3)
        + _r(rng, string.digits, 3)
        + rng.choice("!#%&*+-")
        + _r(rng, ALNUM, 5)
    )


def generic_token(rng: random.Random) -> str:
    """A credential with no vendor prefix, in one of the shapes services issue: 32, 40 or 64
    lowercase hex digits, 20-48 letters of both cases and digits, or 40 characters of base64."""
    shape = rng.randrange(5)
    if shape < 3:
        return _r(rng, "0123456789abcdef", (32, 40, 64)[shape])
    if shape == 3:
        return _r(rng, ALNUM, rng.randint(20, 48))
    return _r(rng, ALNUM + "+/", 40)


# kind -> templates for a plaintext credential ({user}, {pw}, {host}; {pw} is the secret)
PLAINTEXT: dict[str, tuple[str, ...]] = {
    "prose": (
        "my password is {pw}, can you help me reset the 2FA?",
        "The admin login is {user} / {pw} if you need to check the dashboard.",
        "I set the wifi passphrase to {pw} but the printer will not connect.",
        "use the password {pw} for the staging database",
        "our shared account password: {pw}",
        "The root password on that box is {pw}, why does sudo still fail?",
        "I changed my pw to {pw} yesterday and now the app will not log in",
        "Can you check whether {pw} is a strong enough password?",
        "Her email password ({pw}) stopped working after the migration.",
        "login: {user}\npass: {pw}",
        "the password we agreed on for the shared drive is {pw}",
        "try logging in with password {pw} and tell me what error you get",
        "Username {user}, password {pw}. Why does the VPN client reject them?",
        # more ways people say it (2026-12-05, nineteenth session, second round)
        "the guest wifi is {pw}, can you write a sign for the lobby?",
        "I log in with {user} and {pw} but it says invalid credentials",
        "creds for staging: {user} {pw}",
        "Here's the login for the router - {user}, {pw}",
        "it keeps rejecting {pw} even though that is definitely my password",
        "the password? it's {pw}",
        "pass for the shared mailbox = {pw}",
        "New hire account: {user}, temp password {pw} (must change at first login)",
        # third round (2026-12-05, nineteenth session)
        "Use {pw} to unlock the shared laptop, then change it",
        "they gave us {pw} as the temporary password for the portal",
        "here's the admin pass {pw}, don't lose it",
        "Wi-Fi: {pw} (the network is CorpGuest)",
        "Password - {pw}",
        "sent you the password by text: {pw}",
        "the passphrase for the ssh key is '{pw}'",
        "login {user} pwd {pw} on the old jenkins box",
        "My bank pin and password are 4821 and {pw}, is that safe to keep in notes?",
        "for the record the wifi key is {pw}",
        "Forgot my password again. It was {pw} last week, I think",
        "the new password will be {pw}; please update the runbook",
    ),
    # hard-coded in code through each library's documented call (2026-12-05, nineteenth session)
    "code": (
        'requests.get("https://{host}/api/v1/jobs", auth=("{user}", "{pw}"))',
        'server = smtplib.SMTP_SSL("{host}", 465)\nserver.login("{user}@corp.example", "{pw}")',
        'Connection conn = DriverManager.getConnection("jdbc:postgresql://{host}/app", "{user}", "{pw}");',
        "$pdo = new PDO('mysql:host={host};dbname=app', '{user}', '{pw}');",
        "$link = mysqli_connect('{host}', '{user}', '{pw}', 'app');",
        'client.Credentials = new NetworkCredential("{user}", "{pw}");',
        'dataSource.setPassword("{pw}");',
        'db, err := sql.Open("mysql", "{user}:{pw}@tcp({host}:3306)/app")',
        'auth := smtp.PlainAuth("", "{user}@corp.example", "{pw}", "{host}")',
        'ftp = FTP("{host}")\nftp.login("{user}", "{pw}")',
        'return new PasswordAuthentication("{user}", "{pw}".toCharArray());',
        'conn = pymssql.connect("{host}", "{user}", "{pw}", "app")',
        "Net::SMTP.start('{host}', 25, 'corp.example', '{user}', '{pw}', :plain)",
        'factory.setUsername("{user}");\nfactory.setPassword("{pw}");',
        'keyring.set_password("backup", "{user}", "{pw}")',
        'let opts = Opts::from_url("mysql://{user}:{pw}@{host}:3306/app")?;',
    ),
    "cli-flag": (
        "mysql -u {user} -p{pw} -h {host} shop",
        "psql -h {host} -U {user} --password={pw} app",
        "sshpass -p '{pw}' ssh {user}@{host}",
        "redis-cli -h {host} -a {pw} ping",
        "curl -u {user}:{pw} https://{host}/api/status",
        "mongosh --username {user} --password {pw} --host {host}",
        # written from each client's manual page or documentation (2026-12-05, nineteenth session)
        "docker login -u {user} -p {pw} registry.{host}",
        'sqlcmd -S {host} -U {user} -P {pw} -d app -Q "SELECT 1"',
        'ldapsearch -x -H ldap://{host} -D "cn={user},dc=corp,dc=example" -w {pw} "(uid=*)"',
        "oc login -u {user} -p {pw} https://{host}:6443",
        "az login -u {user}@corp.example -p {pw}",
        "smbclient //{host}/backups -U {user}%{pw}",
        "net use Z: \\\\{host}\\share /user:CORP\\{user} {pw}",
        "openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{pw}",
        "keytool -importcert -file ca.crt -keystore truststore.jks -storepass {pw} -noprompt",
        "htpasswd -b /etc/nginx/.htpasswd {user} {pw}",
        "rabbitmqctl add_user {user} {pw}",
        "echo '{user}:{pw}' | sudo chpasswd",
        "wget --user={user} --password={pw} https://{host}/backup.tar.gz",
        "sqlplus {user}/{pw}@{host}:1521/ORCL",
        'psql "host={host} user={user} password={pw} dbname=app"',
        "ipmitool -I lanplus -H {host} -U {user} -P {pw} chassis power status",
        "mongodump --host {host} -u {user} -p {pw} --authenticationDatabase admin",
    ),
    "env-compose": (
        "POSTGRES_PASSWORD={pw}\nPOSTGRES_USER={user}",
        "services:\n  db:\n    environment:\n      MYSQL_ROOT_PASSWORD: {pw}",
        "DB_PASS={pw}",
        "RABBITMQ_DEFAULT_PASS={pw}",
        "spring.datasource.password={pw}",
        "SMTP_PASSWORD='{pw}'",
    ),
    "url": (
        "postgresql://{user}:{pw}@{host}:5432/app",
        "jdbc:mysql://{host}:3306/shop?user={user}&password={pw}",
        "Server={host};Database=app;User Id={user};Password={pw};",
        "mongodb+srv://{user}:{pw}@{host}/prod?retryWrites=true",
        "amqp://{user}:{pw}@{host}:5672/",
        "redis://:{pw}@{host}:6379/0",
    ),
    "config-file": (
        "<server>\n  <id>nexus</id>\n  <username>{user}</username>\n  <password>{pw}</password>\n</server>",
        "define( 'DB_PASSWORD', '{pw}' );",
        "# redis.conf\nbind 127.0.0.1\nrequirepass {pw}",
        "masterauth {pw}",
        'network={{\n    ssid="HomeNet"\n    psk="{pw}"\n}}',
        "machine {host} login {user} password {pw}",
        '[client]\nuser={user}\npassword="{pw}"',
        "web1 ansible_host={host} ansible_user={user} ansible_password={pw}",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  username: {user}\n  password: {pw}",
        "$db_pass = '{pw}';",
        '<add name="Main" connectionString="Data Source={host};Initial Catalog=app;User ID={user};Password={pw}" />',
        "conn = psycopg2.connect(host='{host}', user='{user}', password='{pw}', dbname='app')",
    ),
    "sql": (
        "CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}';",
        "ALTER USER '{user}'@'localhost' IDENTIFIED BY '{pw}';",
        "CREATE ROLE {user} WITH LOGIN PASSWORD '{pw}';",
        "ALTER ROLE {user} WITH PASSWORD '{pw}';",
        "CREATE LOGIN {user} WITH PASSWORD = '{pw}';",
        "SET PASSWORD FOR '{user}'@'localhost' = '{pw}';",
        "GRANT ALL PRIVILEGES ON shop.* TO '{user}'@'%' IDENTIFIED BY '{pw}';",
    ),
    "pgpass": (
        "{host}:5432:app:{user}:{pw}",
        "*:*:*:{user}:{pw}",
    ),
    "aws-secret": (
        "[default]\naws_access_key_id = AKIA{akid}\naws_secret_access_key = {aws}",
        "AWS_SECRET_ACCESS_KEY={aws}",
        "aws_secret_access_key: {aws}",
    ),
}
LOOKALIKES = (
    "export GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "SLACK_BOT_TOKEN=xoxb-xxx",
    "OPENAI_API_KEY=YOUR_API_KEY",
    "api_key = '<your-api-key>'",
    "API_KEY=",
    "password: ${DB_PASSWORD}",
    "DB_PASS={{ vault_db_password }}",
    "set the password to changeme for now",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "token = os.environ['HF_TOKEN']",
    "Your order #448-213-9902 has shipped.",
    "The password field must be at least 12 characters long.",
    "Reset your password at https://example.com/reset",
    "Bearer <token>",
    "const secret = process.env.SECRET;",
    "Use sk-... as the placeholder for the OpenAI key in the docs.",
    "PASSWORD=********",
    "curl -u user:password https://api.example.com",
    "mysql -u root -p",
    # documented placeholders and defaults of the clients and files above (2026-12-05, nineteenth session)
    "define( 'DB_PASSWORD', 'password_here' );",
    "<password>${env.NEXUS_PASSWORD}</password>",
    "# requirepass foobared",
    "docker login -u $DOCKER_USER -p $DOCKER_PASS ghcr.io",
    "CREATE USER 'app'@'localhost' IDENTIFIED BY 'password';",
    'psk="your_wifi_password"',
    'sqlcmd -S localhost -U sa -P "<YourStrong@Passw0rd>"',
    "keytool -list -keystore cacerts -storepass changeit",
    "machine api.example.com login USERNAME password PASSWORD",
    "ALTER ROLE postgres WITH PASSWORD 'new_password';",
    "htpasswd -c /etc/nginx/.htpasswd admin",
    "smbclient //server/share -U username%password",
    "The password must contain 8 characters, an uppercase letter and a digit.",
    "oc login -u developer -p developer https://api.crc.testing:6443",
)


def template_half(text: str) -> str:
    return seeded_half(text, SPLIT_SEED)


def provider_rows(rng: random.Random, per_family: int) -> list[tuple[str, str, str]]:
    rows = []
    for family, make in FAMILIES.items():
        for index in range(per_family):
            value = make(rng)
            context = CONTEXTS[index % len(CONTEXTS)]
            rows.append((family, value, context.format(name=family.upper().replace("-", "_"), value=value)))
    return rows


def plaintext_rows(rng: random.Random, per_template: int, half: str) -> list[tuple[str, str, str]]:
    rows = []
    for kind, templates in PLAINTEXT.items():
        for template in templates:
            if half != "all" and template_half(template) != half:
                continue
            for _ in range(per_template):
                secret = _r(rng, ALNUM + "/+", 40) if kind == "aws-secret" else generated_password(rng)
                text = template.format(
                    user=rng.choice(USERS),
                    pw=secret,
                    aws=secret,
                    akid=_r(rng, string.ascii_uppercase + "234567", 16),
                    host=rng.choice(HOSTS),
                )
                rows.append((kind, secret, text))
    return rows
