"""Grounded answers through the running gateway: `ingest` then chat with retrieval, on pgvector (the
session gateway's database) and on Qdrant local mode (a second gateway whose routes retrieve), with
sources in the body and the header, private collections kept on private backends, /v1/retrieve and
`turnout search`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from tests.conftest import ADMIN_KEY, ROOT, Emulators, free_port, provider_settings, run, serve_in_thread
from tests.conftest import test_policy as make_test_policy

SAMPLES = ROOT / "ingest" / "samples"
QUESTION = "Who gets paged for a Sev1 outage, and how fast must the bridge open?"


async def _ingest(url: str, collection: str, root: Path) -> int:
    from ingest.pipeline import IngestOptions, Ingestor
    from rag.embed import SentenceTransformerEmbedder
    from rag.stores import open_store

    store = await open_store(url)
    try:
        report = await Ingestor(
            store, SentenceTransformerEmbedder(), IngestOptions(collection=collection)
        ).run(root)
    finally:
        await store.close()
    assert report.ok, report.failures
    return report.chunks


@pytest.fixture(scope="module")
def collections(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    private = tmp_path_factory.mktemp("hr")
    (private / "salaries.md").write_text(
        "# Salary bands 2026\n\nStaff engineers in Berlin earn between 98,000 and 121,000 EUR. "
        "Principal engineers earn between 125,000 and 150,000 EUR.\n"
    )
    contacts = tmp_path_factory.mktemp("contacts")  # not marked private, but its passages hold personal data
    (contacts / "billing.md").write_text(
        "# Billing escalations\n\nEscalations go to priya.raman@northwind-billing.test, phone +1 415 555 0199.\n"
    )
    return {
        "docs": run(_ingest(pg_url, "docs", SAMPLES)),
        "hr-private": run(_ingest(pg_url, "hr-private", private)),
        "contacts": run(_ingest(pg_url, "contacts", contacts)),
    }


def _system_text(body: dict[str, Any]) -> str:
    first = body["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def test_chat_with_retrieval_returns_its_sources(
    gateway: Any, emulators: Emulators, collections: Any
) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="gpt-4", messages=[{"role": "user", "content": QUESTION}], extra_body={"turnout": {"rag": True}}
    )
    header = json.loads(raw.headers["x-turnout-sources"])
    assert header[0]["source"] == "handbook/on-call.md" and header[0]["n"] == 1
    body = raw.http_response.json()
    sources = body["turnout"]["sources"]
    assert [s["chunk_id"] for s in sources] == [h["chunk_id"] for h in header]
    assert sources[0]["headings"] and sources[0]["score"] > 0
    assert raw.parse().choices[0].message.content
    sent = emulators.openai.received[-1]
    assert "turnout" not in sent
    context = _system_text(sent)
    assert "[1]" in context and "incident commander" in context
    assert sent["messages"][-1]["content"] == QUESTION


def test_streamed_chat_with_retrieval(gateway: Any, emulators: Emulators, collections: Any) -> None:
    with gateway.client().chat.completions.with_streaming_response.create(
        model="claude",
        messages=[{"role": "user", "content": "What is the hotel limit per night in London?"}],
        stream=True,
        extra_body={"turnout": {"rag": True, "top_k": 2}},
    ) as response:
        header = json.loads(response.headers["x-turnout-sources"])
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse() if chunk.choices)
    assert text and len(header) <= 2 and header[0]["source"] == "handbook/expenses.md"
    sent = emulators.anthropic.received[-1]
    assert "250 EUR in London" in sent["system"]


def test_concurrent_retrievals_all_answer_with_their_sources(gateway: Any, collections: Any) -> None:
    """Queries that arrive while the embedder runs join its next pass (the micro-batcher); each
    gets its own sources, and none is left waiting."""
    import asyncio

    import httpx

    questions = {
        QUESTION: "handbook/on-call.md",
        "What is the hotel limit per night in London?": ("handbook/expenses.md"),
    }

    async def main() -> list[tuple[int, str, str]]:
        headers = {"authorization": f"Bearer {gateway.admin_key}"}
        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30, headers=headers) as client:

            async def ask(question: str) -> tuple[int, str, str]:
                body = {
                    "model": "gpt-4",
                    "messages": [{"role": "user", "content": question}],
                    "turnout": {"rag": True},
                }
                response = await client.post("/v1/chat/completions", json=body)
                sources = response.json().get("turnout", {}).get("sources", [{}])
                return response.status_code, question, sources[0].get("source", "")

            asks = [ask(question) for _ in range(8) for question in questions]
            return list(await asyncio.wait_for(asyncio.gather(*asks), 60))

    answers = asyncio.run(main())
    assert len(answers) == 16
    assert all(status == 200 and source == questions[question] for status, question, source in answers)


@pytest.mark.parametrize(
    ("collection", "question", "passage"),
    [
        ("hr-private", "What do principal engineers earn?", "125,000"),
        # not marked private, but its passages hold personal data: a trial's went to the external
        # backend unscanned; every string sent upstream is scanned
        ("contacts", "Who handles billing escalations?", "priya.raman@"),
    ],
)
def test_passages_that_may_not_leave_stay_on_private_backends(
    gateway: Any, emulators: Emulators, collections: Any, collection: str, question: str, passage: str
) -> None:
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="gpt-4",
        messages=[{"role": "user", "content": question}],
        extra_body={"turnout": {"rag": True, "collection": collection}},
    )
    assert raw.headers["x-turnout-backend"] == "llama"
    assert raw.headers["x-turnout-sensitive"] == "reroute"
    assert emulators.openai.received == [] and emulators.anthropic.received == []
    assert passage in _system_text(emulators.vllm.received[-1])


def test_passages_with_nothing_sensitive_leave_as_asked(gateway: Any, collections: Any) -> None:
    clean = gateway.client().chat.completions.with_raw_response.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "When are expense reports due?"}],
        extra_body={"turnout": {"rag": True, "collection": "docs"}},
    )
    assert clean.headers["x-turnout-backend"] == "gpt-4" and clean.headers["x-turnout-sensitive"] == "none"


def test_retrieval_errors_are_openai_errors(gateway: Any, collections: Any) -> None:
    client = gateway.client()
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(
            model="gpt-4",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"turnout": {"rag": True, "collection": "never-ingested"}},
        )
    assert missing.value.code == "collection_not_found" and "ingest" in missing.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="gpt-4",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"turnout": {"rag": "yes"}},
        )
    assert "turnout.rag" in bad.value.message


def test_retrieve_endpoint(gateway: Any, collections: Any) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    url = gateway.base_url + "/v1/retrieve"
    found = httpx.post(url, json={"query": "rotate provider keys", "top_k": 3}, headers=headers).json()
    assert found["collection"] == "docs" and len(found["data"]) == 3
    first = found["data"][0]
    assert first["source"] == "runbooks/gateway.rst" and first["headings"][-1] == "Rotating provider keys"
    assert first["rank"] == 1 and first["chunk_id"] and "llm-provider-keys" in first["text"]
    under = httpx.post(url, json={"query": "limits", "path_prefix": "handbook/"}, headers=headers).json()
    assert under["data"] and all(p["source"].startswith("handbook/") for p in under["data"])
    bad = httpx.post(url, json={"query": "x", "top_k": 0}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "top_k"
    assert httpx.post(url, json={"query": "x"}).status_code == 401
    gone = httpx.post(url, json={"query": "x", "collection": "nope"}, headers=headers)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "collection_not_found"


def test_turnout_search_cli(pg_url: str, collections: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "router.cli", "search", "expense receipts deadline", "--json", "-k", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "TURNOUT_STORE_URL": pg_url, "HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)["data"]
    assert len(rows) == 2 and rows[0]["source"] == "handbook/expenses.md"

    def search_in(collection: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "router.cli",
                "search",
                "x",
                "--collection",
                collection,
                "--store",
                pg_url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=False,
        )

    missing = search_in("nope")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    bad = search_in("bad name!")  # a trial's bad name printed a traceback; ingest said it in one line
    assert bad.returncode == 2 and bad.stderr.splitlines() == [
        "turnout: bad collection name 'bad name!': use 1-63 letters, digits, '_', '-' or '.', "
        "starting with a letter or digit and not ending in '__manifest'"
    ]


@pytest.fixture(scope="module")
def qdrant_gateway(
    pg_url: str, emulators_session: Emulators, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """A second gateway whose every route retrieves from a Qdrant collection on disk."""
    from router.http.app import create_app
    from router.settings import Settings

    home = tmp_path_factory.mktemp("qdrant-home")
    store = f"qdrant+local://{home / 'qdrant'}"
    run(_ingest(store, "kb", SAMPLES))
    policy_path = make_test_policy(emulators_session, home / "policy.yaml")
    policy = yaml.safe_load(policy_path.read_text())
    for route in policy["routes"]:
        route["retrieval"] = {"collection": "kb", "top_k": 3}
    policy_path.write_text(yaml.safe_dump(policy, sort_keys=False))
    settings = Settings(
        database_url=pg_url,
        store_url=store,
        admin_key=ADMIN_KEY,
        policy=policy_path,
        home=home,
        **provider_settings(emulators_session),
    )
    app = create_app(settings)
    server, thread = serve_in_thread(app, port := free_port())
    yield openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=ADMIN_KEY, max_retries=0, timeout=30)
    server.should_exit = True
    thread.join(15)


def test_route_retrieval_on_qdrant(qdrant_gateway: Any, emulators: Emulators) -> None:
    raw = qdrant_gateway.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "How do I get an API key for my team?"}]
    )
    sources = json.loads(raw.headers["x-turnout-sources"])
    assert sources[0]["source"] == "faq.html" and len(sources) <= 3
    assert raw.http_response.json()["turnout"]["sources"][0]["source"] == "faq.html"
    received = [*emulators.openai.received, *emulators.anthropic.received, *emulators.vllm.received]
    assert len(received) == 1
    sent = received[0]
    context = sent.get("system") or _system_text(sent)
    assert "turnout keys create" in str(context)
    opted_out = qdrant_gateway.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "How do I get an API key for my team?"}],
        extra_body={"turnout": {"rag": False}},
    )
    assert "x-turnout-sources" not in opted_out.headers
    emulators.clear()
    missing = qdrant_gateway.chat.completions.with_raw_response.create(  # the route's retrieval fails
        model="auto",
        messages=[{"role": "user", "content": "How do I get an API key for my team?"}],
        extra_body={"turnout": {"collection": "never-ingested"}},
    )
    assert missing.headers["x-turnout-sources"] == "[]" and missing.parse().choices[0].message.content
    received = [*emulators.openai.received, *emulators.anthropic.received, *emulators.vllm.received]
    assert len(received) == 1 and "turnout keys create" not in json.dumps(received[0])


def test_redacted_request_gets_context_after_redaction(tmp_path: Path) -> None:
    """Under `redact`, findings point into the caller's messages: the context block must not shift them."""
    from ingest.pipeline import IngestOptions, Ingestor
    from rag.embed import make_embedder
    from rag.stores import open_store
    from router.accounts.auth import Principal
    from router.backends.http import HttpClient
    from router.pipeline.gateway import Gateway
    from router.schema import parse_chat_request
    from router.settings import Settings

    store_url = f"qdrant+local://{tmp_path / 'qdrant'}"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "mail.md").write_text("# Mail\n\nSupport mail is answered within one working day.\n")

    async def ingest() -> None:
        store = await open_store(store_url)
        try:
            await Ingestor(store, make_embedder("hash-64"), IngestOptions(collection="docs")).run(docs)
        finally:
            await store.close()

    run(ingest())
    policy = tmp_path / "policy.yaml"
    policy.write_text((ROOT / "policies" / "privacy-first.yaml").read_text())
    settings = Settings(
        policy=policy,
        home=tmp_path,
        store_url=store_url,
        embedder="hash-64",
        anthropic_api_key="k",
        vllm_base_url="http://127.0.0.1:9/v1",
    )
    gateway = Gateway(settings, HttpClient())
    body = {
        "model": "claude",
        "messages": [
            {"role": "user", "content": "How fast is support mail answered? I am jonas.berg@fastmail.fm"}
        ],
        "turnout": {"rag": True},
    }

    async def plan() -> Any:
        try:
            return await gateway.plan(
                parse_chat_request(json.dumps(body).encode()), Principal("a", "a", admin=True)
            )
        finally:
            await gateway.rag.close()

    planned = run(plan())
    assert planned.decision.action == "redact" and planned.sources[0]["source"] == "mail.md"
    system, user = planned.request.messages
    assert system.role == "system" and "one working day" in system.text()
    assert "jonas.berg" not in user.text() and "[EMAIL_1]" in user.text()
    assert planned.redactor.restore(user.text()).endswith("jonas.berg@fastmail.fm")
