"""Secrets: a random credential named by a label in words ("API Key: ...", "my secret key is ...",
"token ..."), router.signals.sensitivity.labelled. Every sentence here was written for this file;
the values are made up."""

from __future__ import annotations

import pytest

from router.signals.sensitivity.detector import SensitivityDetector

DETECTOR = SensitivityDetector(labelled_secrets=True)  # the policy's sensitivity.labelled_secrets
MIXED = "Qm4Tz8vLr2Xk9PwN3bYh7JcD5sGf"  # 28 letters of both cases and digits
HEX = "9c1f4e7a2b8d3f6051e9a7c4d2b8f0e3"  # 32 hex digits


def labelled(text: str) -> list[str]:
    return [text[f.start : f.end] for f in DETECTOR.scan(text) if f.detail == "labelled_secret"]


def secret_found(text: str, value: str) -> bool:
    start = text.index(value)
    return any(f.type == "secret" and f.start <= start < f.end for f in DETECTOR.scan(text))


@pytest.mark.parametrize(
    "text",
    [
        f"my aws secret {MIXED} and boto still says access denied",
        f"AWS Secret Access Key: {MIXED}",
        f"the secret key {MIXED} stopped working yesterday",
        f"api key {HEX} returns 401 on every call",
        f"our API Key: {HEX}",
        f"my api key is {HEX}.",
        f"the client secret for the staging app is {MIXED}",
        f"here's the webhook secret ({MIXED}) from the dashboard",
        f"| staging | api key | {HEX} |",
        f"mi API key es {HEX}, ¿por qué falla?",
        f"- Signing Key → {MIXED}",
    ],
)
def test_a_random_value_a_label_names_is_a_secret(text: str) -> None:
    """Each was missed: the assignment rules read a key written as one name (api_key=...)."""
    value = MIXED if MIXED in text else HEX
    assert secret_found(text, value)


@pytest.mark.parametrize(
    "text",
    [
        f"commit {HEX} fixed the token refresh",  # no label before the value
        f"the api key id is {HEX}",  # an id of the key, not the key
        f"secret hash: {HEX}",
        f"fetch the next page token {MIXED}",  # a page token opens nothing
        f"the public key {MIXED} is on the website",
        f"the key {HEX} sorts first",  # "key" alone: an index's, a map's
        "api key: YOUR_API_KEY_GOES_HERE_1234",  # a placeholder
        "secret: documentation-example-value-123",
        "token 123e4567-e89b-12d3-a456-426614174000 was the request id",  # a UUID
        "the token count was 1234567890123456789012 at the end",  # digits only
        f"token {MIXED}.{MIXED}",  # a dotted value: another rule's (a JWT), not this one's
    ],
)
def test_not_a_labelled_secret(text: str) -> None:
    assert labelled(text) == []


@pytest.mark.parametrize(
    "text",
    [
        "the token contract is 0x6b175474e89094c44da98b954eedeac495271d0f on mainnet",
        "token: 0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
        f"the encrypted secret {MIXED} is safe to commit",
        f"secret signature: {HEX}",
    ],
)
def test_addresses_hashes_and_ciphertext_a_label_names_are_not_secrets(text: str) -> None:
    assert labelled(text) == []


def test_a_private_key_written_as_a_hex_literal_is_a_secret() -> None:
    key = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
    assert labelled(f"wallet private key: {key}") == [key]


def test_the_default_detector_leaves_labelled_values_to_the_policy() -> None:
    """Off by default: on unread sets it raised recall from 0.45 to 0.89 but flagged more look-alikes
    than the pre-fixed rule allowed (README)."""
    text = f"my api key is {HEX}."
    assert labelled(text) == [HEX]
    assert not any(f.type == "secret" for f in SensitivityDetector().scan(text))


@pytest.mark.parametrize(
    "text",
    [
        f"palabra clave: {MIXED}",  # "keyword" in Spanish, French, Italian, German, Japanese
        f"mot-clé {MIXED}",
        f"parola chiave {MIXED}",
        f"Schlüsselwort: {MIXED}",
        f"キーワード {MIXED}",
        f"キーボードの型番 {MIXED}",  # a keyboard's model number
        f"키보드 모델 {MIXED}",
        f"autoclave serial {MIXED}",
        f"conclave {MIXED}",
    ],
)
def test_other_languages_words_count_as_whole_words_only(text: str) -> None:
    """A review found these read as credentials' labels: a word inside another, a keyword."""
    assert labelled(text) == []


@pytest.mark.parametrize(
    "text",
    [
        f"der API-Schlüssel lautet {MIXED}",
        f"APIキーは {MIXED} です",
        f"API 密钥\uff1a{MIXED}",  # a full-width colon
        f"la clave de acceso: {MIXED}",
        f"klucz API to {MIXED}",
        f"このトークン「{MIXED}」で認証すると401になります",
    ],
)
def test_other_languages_labels_are_read(text: str) -> None:
    assert labelled(text) == [MIXED]


def test_a_dump_of_values_beside_credential_words_stops_after_max_candidates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 1 MB body of "key <value>" pairs: at most MAX_CANDIDATES values are read (each about
    60 us), so one request cannot hold the event loop for seconds."""
    from router.signals.sensitivity import labelled as rule

    read = 0
    window = rule._window

    def counted(lowered: str, start: int) -> tuple[str, str]:
        nonlocal read
        read += 1
        return window(lowered, start)

    monkeypatch.setattr(rule, "_window", counted)
    text = f"key {MIXED[:21]} " * 40_000
    assert list(rule.find_labelled(text, text.lower())) == []
    assert read == rule.MAX_CANDIDATES
    short = f"key {MIXED[:21]} " * 10
    read = 0
    list(rule.find_labelled(short, short.lower()))
    assert read == 10  # below the bound every value is read


def test_the_policy_key_reaches_the_gateways_scan() -> None:
    """`sensitivity.labelled_secrets` as a policy says it (privacy-first.yaml on, default.yaml off),
    through the engine that computes every request's signals."""
    import json
    from pathlib import Path

    from router.policy.model import load_policy
    from router.schema import parse_chat_request
    from router.settings import make_offline
    from router.signals.capability.classifier import CapabilityClassifier
    from router.signals.collect import SignalEngine

    make_offline()
    root = Path(__file__).resolve().parents[1] / "policies"
    body = {"model": "auto", "messages": [{"role": "user", "content": f"my api key is {HEX}, why 401?"}]}
    request = parse_chat_request(json.dumps(body).encode())
    classifier = CapabilityClassifier.load()
    found = {}
    for name in ("default", "privacy-first"):
        engine = SignalEngine(load_policy(root / f"{name}.yaml").policy, classifier)
        found[name] = [f.finding.detail for f in engine.compute(request).findings]
    assert found == {"default": [], "privacy-first": ["labelled_secret"]}
