"""Values that stand where a secret would and are not one (thirty-second session): ciphertext, a
stored hash, a public token, a vendor's documented test key, a path, an instruction, a masked value;
and the secrets beside them that must still be found."""

from __future__ import annotations

import pytest

from tests.test_secrets_plaintext import found, secrets_in


@pytest.mark.parametrize(
    "text",
    [
        # ciphertext only a key service opens
        "password: vault:v1:8SDd3WHDOjf7mq69CyCqYjBXAiQQAVZRkFM13ok481zoCmHnSeDX9vyf7w==",
        "spring.datasource.password={cipher}AQA2dB8sYz+9lT3mK0wXr7vN5pQ1uE4c7a9f1e2b3d4",
        "-----BEGIN AGE ENCRYPTED FILE-----\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB3djkzZUZqK3\n"
        "S1U8HRisRvVTQa9XY5foGhimVu6GrRP+mBkuKcsU+F5DEzSYUf\n-----END AGE ENCRYPTED FILE-----\n"
        "the backup passphrase, encrypted for the team",
        # a token public by design (Mapbox's pk. tokens ship in web pages)
        "mapboxgl.accessToken = 'pk.eyJ1IjoiYWNtZS1tYXBzIiwiYSI6ImNrN3F6dGl4ZzBhbmozbG1tY2Y1In0.Tm9zb1dbQxRhcXVFb2lhWA';",
        # a password's stored hash in a format that names its algorithm
        '{"model": "auth.user", "fields": {"password": "pbkdf2_sha256$870000$YPX60S2mOxUQv9u6OoATtK$Aln2U2ijzv1lmC7BNGkRAPk5rAcYY7Vs"}}',
        "ALTER ROLE app WITH PASSWORD 'SCRAM-SHA-256$4096:aGVsbG9zYWx0$OZtQ1WJjXrB9vJpYk0mQ6cRzT3uFhS2dLa8e7nVw9Ko=:"
        "Hk3pQ8rT1vY6wZ0aB4cD7eF2gH5iJ9kL3mN6oP0qR4s=';",
        # the CAPTCHA services' documented test keys
        "TURNSTILE_SECRET_KEY=1x0000000000000000000000000000000AA",
        "RECAPTCHA_SECRET=6LeIxAcTAAAAAGG-vFI1TnRWxMZNFuojJ4WifJWe",
        # a path to the credentials, an instruction where the value goes, a value dotted out
        'export GOOGLE_APPLICATION_CREDENTIALS="/home/user/Downloads/service-account-file.json"',
        "AUTH0_SECRET='use [openssl rand -hex 32] to generate a 32 bytes value'",
        "//registry.npmjs.org/:_authToken=npm_\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022",
        'STRIPE_SECRET_KEY="sk_live_\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u20224242"',
        # an armored message with armor headers, and one longer than a screen
        "-----BEGIN PGP MESSAGE-----\nVersion: Keybase OpenPGP v2.0.76\nComment: https://keybase.io/crypto\n\n"
        "wcBMA0X9Kq8mYZ3XAQf/Xk7pQ9mZw2LrT8uVb3nM6lK8jH0gF5dYY2x\nR4tY6uW9aE2sD5fG8hJ1kL3zX6cV9bN2mQ4wE7rT0yU3iO6pA9sD\n"
        "=Ab12\n-----END PGP MESSAGE-----\nthe password for the backup, encrypted",
        "-----BEGIN AGE ENCRYPTED FILE-----\n"
        + "\n".join(f"YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSB3djkzZU{i % 10}Kq" for i in range(200))
        + "\n-----END AGE ENCRYPTED FILE-----\nmy passphrase, encrypted",
    ],
)
def test_what_stands_for_a_secret_is_not_one(text: str) -> None:
    assert not secrets_in(text), text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # Mapbox's secret tokens are sk.
        (
            "MAPBOX_TOKEN=sk.eyJ1IjoiYWNtZS1tYXBzIiwiYSI6ImNrN3F6dGl4ZzBhbmozbG1tY2Y1In0.Tm9zb1dbQxRhcXVFb2lhWA",
            "sk.eyJ1IjoiYWNtZS1tYXBzIiwiYSI6ImNrN3F6dGl4ZzBhbmozbG1tY2Y1In0.Tm9zb1dbQxRhcXVFb2lhWA",
        ),
        # an AWS secret key holds slashes, its parts made up: not a path
        (
            "aws_secret_access_key = /k7MDENG/bPxRfiCY4xZtQ9wLmNvB2cDe1Hj6Ks3",
            "/k7MDENG/bPxRfiCY4xZtQ9wLmNvB2cDe1Hj6Ks3",
        ),
        # a password beside ciphertext, left in the clear
        (
            "db:\n  password: vault:v1:8SDd3WHDOjf7mq69CyCqYjBX\n  replica_password: Xk7#pQ9mZw2Lr",
            "Xk7#pQ9mZw2Lr",
        ),
        # PostgreSQL's md5 login takes the stored hash itself: it is a credential
        (
            "ALTER ROLE app WITH PASSWORD 'md5a3f8c1e2b4d6f7081929a3b4c5d6e7f8';",
            "md5a3f8c1e2b4d6f7081929a3b4c5d6e7f8",
        ),
        # slashes in a password, no root, no extension, or made-up parts: not a path
        ('password = "correct/horse/battery/staple"', "correct/horse/battery/staple"),
        ('password: "/xk7pq9mzw2lr/qq"', "/xk7pq9mzw2lr/qq"),
        (
            "aws_secret_access_key = /uhweaKTVjZRvrSFwFNasovwEERrQadPxn/fAToJ",
            "/uhweaKTVjZRvrSFwFNasovwEERrQadPxn/fAToJ",
        ),
        # an armored header in a sentence opens no block
        (
            "Why does -----BEGIN PGP MESSAGE----- fail to decrypt? I asked for the password and he sent Xk7#pQ9mZw2Lr",
            "Xk7#pQ9mZw2Lr",
        ),
        # a passphrase that begins with a verb, a strong value beginning with one
        ('password: "use the force luke always"', "use the force luke always"),
        ("DB_PASSWORD='Use Xk7#pQ9 mZw2Lr 8Tq!'", "Xk7#pQ9"),
        # a whole value with bullets after it
        ('password: "Xk7pQ9mZw2Lr\u2022\u2022\u2022"', "Xk7pQ9mZw2Lr"),
        # a hash format's name before a password, not a hash
        ('password: "bcrypt$Xk7pQ9mZw2Lr"', "Xk7pQ9mZw2Lr"),
        ('password: "pbkdf2_sha256$Summer2024!"', "Summer2024!"),
        # a ciphertext mark or a public token's prefix before what is no ciphertext nor public token
        ('password: "ENC(hunter2isbest)"', "hunter2isbest"),
        ("the password is {cipher}Xk7#pQ9mZw2Lr", "Xk7#pQ9mZw2Lr"),
        ('client_secret: "pk.eyJ0eXAiOiJKV1QifQ.Xk7pQ9mZw2LrT8uV"', "pk.eyJ0eXAiOiJKV1QifQ.Xk7pQ9mZw2LrT8uV"),
    ],
)
def test_the_secret_beside_them_is_still_found(text: str, secret: str) -> None:
    assert found(text, secret), text
