"""Passwords people chose, where a device's or server's configuration syntax, a connection string's
password field or a sentence gives one (thirty-second session), and what those rules must not read."""

from __future__ import annotations

import pytest

from tests.test_secrets_plaintext import found, secrets_in


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # Cisco IOS: a user's or enable password or secret, type 0 (itself) or 7 (reversible), a
        # device's prompt before it in a pasted session
        ("hostname core-sw01\n!\nusername netops privilege 15 password 0 princess\n!", "princess"),
        ("Router(config)#username netops privilege 15 secret sunshine1\nRouter(config)#end", "sunshine1"),
        ("enable secret baseball1", "baseball1"),
        ("username backup password 7 0822455D0A16", "0822455D0A16"),
        # HAProxy's stats page and a userlist
        ("listen stats\n    bind *:8404\n    stats auth admin:football\n", "football"),
        ("userlist ops\n    user dana insecure-password football\n", "football"),
        # DB2's command line processor
        ("db2 => CONNECT TO SAMPLE USER db2inst1 USING princess;", "princess"),
        ('db2 "connect to sample user db2inst1 using sunshine1"', "sunshine1"),
        # ipsec.secrets
        ('# /etc/ipsec.secrets\n10.0.3.7 %any : PSK "sunshine1"', "sunshine1"),
        ('carol : EAP "football"', "football"),
        # Redis's ACL, in a users.acl line or a session's ACL SETUSER
        ("user default off\nuser sidekiq on >princess ~jobs:* +@all", "princess"),
        ("127.0.0.1:6379> ACL SETUSER alice on >sunshine1 ~cached:* +get", "sunshine1"),
        ("redis-cli -h db ACL SETUSER alice on '>Xk7pQ9mZw2' ~* +@all", "Xk7pQ9mZw2"),
        ("> ACL SETUSER alice on >p1firstpw >Zq8secondpw ~*", "Zq8secondpw"),
        ("user\talice on >Xk7pQ9mZw2 ~* +@all", "Xk7pQ9mZw2"),
        # htpasswd in batch mode takes the password last
        ("sudo htpasswd -b -c /etc/nginx/.htpasswd prometheus 'princess'", "princess"),
        ("htpasswd -bc .htpasswd admin sunshine1", "sunshine1"),
        ("htpasswd -bBC 12 /etc/nginx/.htpasswd deploy01 Xk7pQ9mZw2", "Xk7pQ9mZw2"),  # -C's cost
        ("htpasswd -nbB admin Xk7pQ9mZw2 > auth/htpasswd", "Xk7pQ9mZw2"),  # -n: no file
        ("mosquitto_passwd -b -H sha512 /etc/mosquitto/passwd sensor1 sunshine1", "sunshine1"),
        # aws configure's prompt, as a pasted session shows it
        (
            "$ aws configure\nAWS Access Key ID [None]: AKIAXIIXWAT4YYQM7JJ4\n"
            "AWS Secret Access Key [None]: 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\n",
            "e4BCuw3+rnnID6GvAIUfcq2GlTu5gs12xAq63C1J",
        ),
        # an Oracle thin URL's user/password@: the password, though it reads as an e-mail address
        ("jdbc:oracle:thin:app/sunshine1@db.internal:1521/ORCLPDB1", "sunshine1"),
        # a sentence's "is", words about whose it is between (up to seven), and a value of letters
        # and digits or of digits alone
        ("the new password for the 3rd floor guest wifi is baseball1 - don't post it", "baseball1"),
        ("FYI the password for the alarm panel is 73910462.", "73910462"),
    ],
)
def test_a_password_a_person_chose_where_the_syntax_gives_one(text: str, secret: str) -> None:
    assert found(text, secret), text


@pytest.mark.parametrize(
    "text",
    [
        "username netops privilege 15 secret 5 $1$mERr$hx5rVt7rPNoS4wqbXKX7m0",  # a one-way hash
        "username netops secret 9 $9$nhEmQVczB7dqsO$X.HsgL6x1il0RxkOSSvyQYwucySCt7qFm4v7pqCxkKM",
        "enable secret <your-enable-secret>",  # a placeholder
        "enable password required",  # a state, not a value
        "    stats auth admin:${STATS_PASSWORD}",
        'conn home\n    left=%defaultroute\n: PSK "<pre-shared key here>"',
        "CONNECT TO SAMPLE USER db2inst1 USING :hostpass;",  # a host variable
        "db2 connect to sample user db2inst1 using $DB2PASS",  # the shell's variable
        "the password for the admin account on the old server is incorrect",
        "The password to the wifi is on the whiteboard.",
        "the password manager for the whole team is bitwarden2",  # another noun's value
        # a checklist's or a settings page's lines and a log's, not a device's configuration
        "Enable secret scanning",
        "enable password writeback",
        "username alice password locked",
        # IOS's hashed (4, 5, 8, 9) and encrypted (6) types
        "username admin secret 4 Tnhtc92DXBhelxjYk8LWJrPV36S2i4ntXrpb4RFmfqY",
        "username admin password 6 FLgBaJHXdYY_AVvjWWHbVBIdfYcSVdHsd",
        # the user's own name, a default
        "db2 connect to sample user db2inst1 using db2inst1",
        "    stats auth monitor:monitor",
        "jdbc:oracle:thin:appuser/appuser@db.internal:1521/ORCLPDB1",
        "jdbc:oracle:thin:system/oracle@localhost:1521:xe",
        # not ipsec.secrets, not DB2
        'Security: PSK "WPA2-Personal" or EAP for the office network',
        "connect to server user interface using keyboard shortcuts",
        # a Redis ACL's stored hash, a placeholder; a shell's redirection; htpasswd asking
        "user alice on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~* +@all",
        "user alice on >${REDIS_PASS} ~* +@all",
        "ACL SETUSER alice on >passwd ~* +@all",  # the documentation's word
        # a line beginning "user" whose words are no ACL rules
        "User menu >Account >API Keys",
        "User journey: Home >Products2 >Cart",
        "user alice ran: curl example.com >page1.html",
        "htpasswd -bBC 12 /etc/nginx/.htpasswd deploy01",  # no password after the user
        # without -b it asks (the "b" of the hash's name -H sha512-pbkdf2 is no option)
        "mosquitto_passwd -c -H sha512-pbkdf2 /etc/mosquitto/passwd alice Xk7pQ9mZw2",
        "The user can pipe output with >results.txt",
        "htpasswd -c /etc/nginx/.htpasswd admin",
        "AWS Secret Access Key [****************cD1J]: ",
        # a digest's hex after "the password ... is"
        "the password for admin in the dump is 5f4dcc3b5aa765d61d327deb882cf99b",
    ],
)
def test_what_those_rules_leave_alone(text: str) -> None:
    assert not secrets_in(text), text
