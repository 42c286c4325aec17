"""POST /v1/embeddings: the packaged MiniLM served as `local-minilm`, and providers' embeddings models of
the policy passed through behind the sensitivity gate, spoken to by the openai SDK."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import fetch, wait_for_rows

pytestmark = pytest.mark.integration


def test_the_openai_sdk_embeds_with_the_local_model(gateway: Any) -> None:
    client = gateway.client()
    texts = ["How do I rotate an API key?", "Rotating API keys", "The cat sat on the mat."]
    answer = client.embeddings.create(model="local-minilm", input=texts)  # the SDK asks for base64
    vectors = np.array([item.embedding for item in answer.data], dtype=np.float32)
    assert vectors.shape == (3, 384) and [item.index for item in answer.data] == [0, 1, 2]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > unrelated + 0.3  # meaning, not noise
    assert answer.model == "local-minilm" and answer.usage.prompt_tokens > 0
    floats = httpx.post(
        gateway.base_url + "/v1/embeddings",
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        json={"model": "local-minilm", "input": texts[0], "encoding_format": "float"},
        timeout=60,
    ).json()
    alone = np.array(floats["data"][0]["embedding"], dtype=np.float32)
    assert alone.shape == (384,) and float(alone @ vectors[0]) > 0.999  # alone or in a batch (bf16)
    assert "local-minilm" in [model.id for model in client.models.list()]


def test_embedding_errors_are_openai_errors(gateway: Any) -> None:
    client = gateway.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="text-embedding-3-large", input="hi")
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as ids:
        client.embeddings.create(model="local-minilm", input=[[15339, 1917]])
    assert "token ids" in ids.value.message
    with pytest.raises(openai.BadRequestError) as size:
        client.embeddings.create(model="local-minilm", input="hi", dimensions=64)
    assert size.value.body["param"] == "dimensions"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="local-minilm", input=["fine", ""])
    odd = httpx.post(
        gateway.base_url + "/v1/embeddings",
        headers={"authorization": f"Bearer {gateway.admin_key}"},
        json={"model": "local-minilm", "input": "hi", "encoding_format": "hex", "colour": 1},
        timeout=30,
    )
    assert odd.status_code == 400 and odd.json()["error"]["param"] in ("encoding_format", "colour")


def test_embeddings_are_ledgered(gateway: Any) -> None:
    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    texts = ["one text to ledger", "and another one to ledger"]
    answer = gateway.client().embeddings.create(model="local-minilm", input=texts)
    # rows since the request began (another test's late rows may land beside it): ours has its tokens
    sql = (
        "SELECT backend, model, status, prompt_tokens, completion_tokens FROM turnout_usage "
        f"WHERE route = 'embeddings' AND status = 200 AND id > {before['id']}"
    )
    rows = wait_for_rows(url, sql, lambda r: any(x["prompt_tokens"] == answer.usage.prompt_tokens for x in r))
    ours = [row for row in rows if row["prompt_tokens"] == answer.usage.prompt_tokens]
    assert ours and ours[0]["backend"] == "local-minilm" and ours[0]["completion_tokens"] == 0


def test_a_keys_limits_apply_to_embeddings(gateway: Any) -> None:
    from tests.conftest import run
    from tests.test_limits_gateway import _create

    url = gateway.settings.database_url.get_secret_value()
    _, key = run(_create(url, "embed-rpm", limits={"rpm": 1}))
    statuses = []
    for text in ("first", "second", "third"):  # three in a row: refused even if a window rolls over once
        answer = httpx.post(
            gateway.base_url + "/v1/embeddings",
            json={"model": "local-minilm", "input": text},
            headers={"authorization": f"Bearer {key}"},
        )
        statuses.append(answer.status_code)
        # a trial saw none of OpenAI's rate-limit headers on embeddings, which the key's limits count
        assert answer.headers["x-ratelimit-limit-requests"] == "1", answer.headers
    assert 429 in statuses and 200 in statuses


def test_refused_embeddings_are_ledgered_and_counted(gateway: Any, emulators: Any) -> None:
    """A trial's refusals (an unknown model, sensitive text for an external model) left no ledger
    row and no metric, where a chat request's refusals leave both."""
    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    client = gateway.client()
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-embedder", input="hello")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="mail ann.lee@fastmail.fm")
    sql = f"SELECT model, backend, status, error FROM turnout_usage WHERE route = 'embeddings' AND id > {before['id']}"
    rows = wait_for_rows(url, sql, ready=lambda found: {404, 400} <= {r["status"] for r in found})
    refused = {r["status"]: r for r in rows if r["status"] in (400, 404)}
    assert refused[404]["model"] == "no-such-embedder" and refused[400]["model"] == "text-embedding-3-small"
    assert "sensitive data" in refused[400]["error"]
    assert refused[404]["backend"] is None and refused[400]["backend"] is None  # no model ran, as chat's
    metrics = httpx.get(gateway.base_url + "/metrics").text
    assert any(
        line.startswith("turnout_request_errors_total{")
        and 'api="embeddings"' in line
        and 'error_type="sensitive_data"' in line
        for line in metrics.splitlines()
    )


def test_a_providers_embeddings_model_is_passed_through(gateway: Any, emulators: Any) -> None:
    import struct

    client = gateway.client()
    assert "text-embedding-3-small" in [model.id for model in client.models.list()]
    answer = client.embeddings.create(model="text-embedding-3-small", input=["first text", "second text"])
    assert answer.model == "text-embedding-3-small" and len(answer.data) == 2
    assert len(answer.data[0].embedding) == 8 and answer.data[0].embedding != answer.data[1].embedding
    sent = emulators.openai.received[-1]
    assert sent["model"] == "text-embedding-3-small" and sent["input"] == ["first text", "second text"]
    assert sent["encoding_format"] == "base64"  # the SDK's default, passed on and decoded by the SDK
    short = client.embeddings.create(
        model="text-embedding-3-small", input="one", dimensions=4, encoding_format="float"
    )
    assert len(short.data[0].embedding) == 4
    raw = httpx.post(
        gateway.base_url + "/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": "one", "encoding_format": "base64"},
        headers={"authorization": f"Bearer {gateway.admin_key}"},
    ).json()
    vector = struct.unpack("<8f", base64.b64decode(raw["data"][0]["embedding"]))
    assert abs(sum(v * v for v in vector) - 1) < 1e-5


def test_sensitive_texts_never_reach_an_external_embeddings_model(gateway: Any, emulators: Any) -> None:
    import openai

    client = gateway.client()
    text = "Contact maria.kowalska@gmail.com about the overdue invoice."
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="text-embedding-3-small", input=["fine", text])
    assert refused.value.code == "sensitive_data" and "email" in refused.value.message
    assert emulators.openai.script.requests == 0
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(
            model="text-embedding-3-small", input="fine", extra_headers={"x-turnout-private": "true"}
        )
    kept = client.embeddings.create(model="inhouse-embed", input=text)  # a private model may take it
    assert len(kept.data) == 1 and emulators.vllm.received[-1]["model"] == "bge-small"


def test_provider_embeddings_are_ledgered_with_their_cost(gateway: Any, emulators: Any) -> None:
    url = gateway.settings.database_url.get_secret_value()
    (before,) = fetch(url, "SELECT coalesce(max(id), 0) AS id FROM turnout_usage")
    answer = gateway.client().embeddings.create(model="text-embedding-3-small", input="a b c d")
    sql = (
        "SELECT backend, prompt_tokens, cost_usd, status FROM turnout_usage "
        f"WHERE route = 'embeddings' AND backend = 'text-embedding-3-small' AND id > {before['id']}"
    )
    # rows since the request began (another test's late rows may land beside it): ours has its tokens
    rows = wait_for_rows(url, sql, ready=lambda found: any(r["prompt_tokens"] == 4 for r in found))
    ours = [r for r in rows if r["prompt_tokens"] == 4]
    assert ours and ours[0]["status"] == 200 and answer.usage.prompt_tokens == 4
    assert ours[0]["cost_usd"] == pytest.approx(4 * 20.0 / 1e6)
    emulators.openai.fault("status", status=500)
    with pytest.raises(Exception) as failed:
        gateway.client().embeddings.create(model="text-embedding-3-small", input="again")
    assert getattr(failed.value, "status_code", 0) >= 500
