"""Sensitivity is a hard gate: what the detectors find never reaches an external backend.

Every sentence of the Presidio synthetic set that carries personal data, and generated secrets of
every kind the detectors know, go through the running gateway with the default policy: as `auto`,
with each external model named explicitly, and with the private backend failing. The emulators
record every request they receive. None of the texts the detectors flag may reach an external one,
whatever the route, the model named or the failures; the detectors flag at least 96% of them (a
development figure: the held-out figure, gated at 0.95, is evals' `heldout.recall`). A caller that
marks its requests private (x-turnout-private, turnout.private, a --private key) is kept inside
whatever the detectors find.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import string

import httpx
import pytest

from evals.datasets import DatasetError, resolve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# The Presidio entity types the gate is for; quasi-identifiers (places, dates, ages, organisations)
# alone do not make a sentence personal data (README, "How well it routes").
GATE_TYPES = {
    "PERSON", "STREET_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER", "EMAIL_ADDRESS",
    "IBAN_CODE", "US_SSN", "IP_ADDRESS", "US_DRIVER_LICENSE",
}  # fmt: skip


def pii_sentences() -> list[str]:
    try:
        path = resolve("presidio-synth-v2", download=False)
    except DatasetError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(error))
    rows = json.loads(path.read_text())
    return [
        row["full_text"] for row in rows if any(span["entity_type"] in GATE_TYPES for span in row["spans"])
    ]


def _token(alphabet: str, n: int, rng: random.Random) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def generated_secrets(seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    upper_digits = string.ascii_uppercase + string.digits
    alnum = string.ascii_letters + string.digits
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
    claims = (
        base64.urlsafe_b64encode(json.dumps({"sub": _token(alnum, 8, rng)}).encode()).rstrip(b"=").decode()
    )
    pem = "\n".join(_token(alnum + "+/", 64, rng) for _ in range(3))
    return [
        f"my aws key is AKIA{_token(upper_digits, 16, rng)}, can you check the IAM policy?",
        f"export GITHUB_TOKEN=ghp_{_token(alnum, 36, rng)} then run the workflow",
        f"Slack bot token xoxb-{rng.randint(10**11, 10**12)}-{rng.randint(10**11, 10**12)}-{_token(alnum, 24, rng)} fails",
        f"why does stripe reject sk_live_{_token(alnum, 24, rng)}?",
        f"google maps key AIza{_token(alnum + '-_', 35, rng)} quota exceeded",
        f"use OPENAI_API_KEY=sk-proj-{_token(alnum, 48, rng)} in the config",
        f"my anthropic key sk-ant-api03-{_token(alnum + '-_', 90, rng)} stopped working",
        f"-----BEGIN RSA PRIVATE KEY-----\n{pem}\n-----END RSA PRIVATE KEY-----\nwhy won't ssh accept this?",
        f"decode this token {header}.{claims}.{_token(alnum + '-_', 43, rng)}",
        f"db password={_token(alnum, 14, rng)} and it still says auth failed",
        f"connect with postgres://admin:{_token(alnum, 12, rng)}@db.internal:5432/prod please",
    ]


async def _send_all(
    base_url: str, key: str, texts: list[str], model: str, stream: bool, private: bool = False
) -> list[int]:
    limits = httpx.Limits(max_connections=8)
    headers = {"authorization": f"Bearer {key}", **({"x-turnout-private": "true"} if private else {})}
    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
        semaphore = asyncio.Semaphore(8)

        async def one(text: str) -> int:
            body = {"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}
            async with semaphore:
                response = await client.post("/v1/chat/completions", json=body, headers=headers)
                return response.status_code

        return await asyncio.gather(*(one(text) for text in texts))


def _external_texts(emulators) -> list[str]:
    """The user text of every request an external emulator received."""
    received = emulators.openai.received + emulators.anthropic.received
    texts = []
    for body in received:
        content = body["messages"][-1]["content"]
        texts.append(
            content if isinstance(content, str) else "".join(block.get("text", "") for block in content)
        )
    return texts


@pytest.fixture(scope="module")
def flagged_split() -> tuple[list[str], list[str]]:
    """(flagged, missed): the PII sentences and secrets as the default policy's detectors see them."""
    from router.policy.model import load_policy
    from router.signals.sensitivity.detector import SensitivityDetector
    from tests.conftest import ROOT

    rule = load_policy(ROOT / "policies" / "default.yaml").policy.sensitivity
    detector = SensitivityDetector(
        terms=rule.terms, patterns=rule.patterns, types=rule.types, min_confidence=rule.min_confidence
    )
    texts = pii_sentences() + generated_secrets()
    flagged = [text for text in texts if detector.scan(text)]
    missed = [text for text in texts if not detector.scan(text)]
    return flagged, missed


def test_every_generated_secret_is_found(flagged_split):
    flagged, _ = flagged_split
    assert all(secret in flagged for secret in generated_secrets())


@pytest.mark.parametrize("model", ["auto", "gpt-4", "claude", "haiku"])
def test_no_personal_data_reaches_an_external_backend(gateway, emulators, flagged_split, model):
    flagged, missed = flagged_split
    texts = flagged + missed
    statuses = asyncio.run(
        _send_all(gateway.base_url, gateway.admin_key, texts, model, stream=model == "claude")
    )
    # Detection is measured held out in evals (heldout.recall >= 0.95); on this set, which the rules
    # were once written against, the template-specific rules are gone (issue 13): a few percent go
    # unflagged, and what the detectors flag must never leave.
    assert len(missed) <= 0.04 * len(texts), (
        f"the detectors missed {len(missed)} of {len(texts)}: {missed[:3]}"
    )
    outside = set(_external_texts(emulators))
    leaked = [text for text in flagged if text in outside]
    assert not leaked, f"{len(leaked)} flagged requests reached an external backend: {leaked[:3]}"
    assert statuses.count(200) == len(texts)
    # every flagged one was answered inside the building
    assert emulators.vllm.script.requests >= len(flagged)


def test_a_caller_who_asks_for_privacy_loses_nothing_to_the_detectors_misses(
    gateway, emulators, flagged_split
):
    """A caller that marks its requests private is kept inside whether the detectors flag them or not."""
    flagged, missed = flagged_split
    statuses = asyncio.run(
        _send_all(gateway.base_url, gateway.admin_key, flagged + missed, "gpt-4", stream=False, private=True)
    )
    assert statuses.count(200) == len(flagged + missed)
    assert not _external_texts(emulators)


@pytest.mark.parametrize("fault", ["status", "drop_before"])
def test_private_backend_failing_never_means_falling_back_outside(gateway, emulators, flagged_split, fault):
    flagged, _ = flagged_split
    emulators.vllm.fail_always(fault, status=503)
    for model, stream in (("auto", False), ("gpt-4", True)):
        statuses = asyncio.run(_send_all(gateway.base_url, gateway.admin_key, flagged, model, stream))
        assert set(statuses) <= {502, 503}, set(statuses)
    assert not _external_texts(emulators), "a flagged request fell back to an external backend"


def test_a_caller_who_asks_to_stay_inside_is_kept_inside(gateway, emulators):
    import openai

    client = gateway.client()
    asks = [
        ({"extra_body": {"turnout": {"private": True}}}, "Summarise our roadmap, please.", False),
        ({"extra_headers": {"x-turnout-private": "true"}}, "Summarise our roadmap, please.", True),
        ({}, "Summarise our roadmap. Keep this analysis on-prem, don't send to cloud.", False),
    ]
    for options, text, stream in asks:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4", messages=[{"role": "user", "content": text}], stream=stream, **options
        )
        assert raw.headers["x-turnout-backend"] == "llama" and raw.headers["x-turnout-sensitive"] == "reroute"
        answer = raw.parse()
        if stream:
            assert list(answer)
    assert not _external_texts(emulators), "a request that asked to stay inside reached an external backend"
    assert emulators.vllm.script.requests == len(asks)

    with pytest.raises(openai.BadRequestError, match="x-turnout-private"):
        client.chat.completions.create(
            model="gpt-4",
            messages=[{"role": "user", "content": "hello"}],
            extra_headers={"x-turnout-private": "perhaps"},
        )
    answered = client.chat.completions.with_raw_response.create(
        model="gpt-4", messages=[{"role": "user", "content": "How do I run Llama locally?"}]
    )
    assert answered.headers["x-turnout-backend"] == "gpt-4"  # a question, not an instruction
