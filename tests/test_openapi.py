"""The control plane described by /openapi.json (FastAPI), fuzzed from that description by schemathesis
with data that fits the schema and data that does not: no answer is a 5xx, and none contradicts the
schema it is described by. /docs serves the description to people."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

from tests.conftest import ADMIN_KEY, RunningGateway

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 12  # per operation and mode: ~28 operations x 2 modes, about a minute here


def _document() -> dict[str, Any]:
    """The description the gateway serves, built from the app itself (no server is needed for it;
    a test below checks that the served one is the same)."""
    from router.http.app import create_app
    from router.settings import Settings

    return create_app(Settings(database_url="postgresql://127.0.0.1:9/unused")).openapi()


schema = schemathesis.openapi.from_dict(_document())
schema.config.generation.update(
    modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    max_examples=MAX_EXAMPLES,
)


@pytest.fixture
def ready(gateway: RunningGateway) -> str:
    deadline = time.monotonic() + 60
    while httpx.get(gateway.base_url + "/readyz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)  # a 503 while retrieval loads is readiness, not a fault
    return gateway.base_url


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=MAX_EXAMPLES)
def test_no_5xx_and_no_answer_contradicts_the_schema(ready: str, case: Any) -> None:
    checks = [not_a_server_error, response_schema_conformance]
    if case.meta is not None and case.meta.generation.mode == schemathesis.GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    case.call_and_validate(base_url=ready, headers=headers, checks=checks, timeout=30)


def test_every_endpoint_is_described_and_docs_are_served(gateway: RunningGateway) -> None:
    document = httpx.get(gateway.base_url + "/openapi.json").json()
    assert document == _document()
    paths = document["paths"]
    for path, method in [
        ("/v1/chat/completions", "post"),
        ("/v1/messages", "post"),
        ("/v1/responses", "post"),
        ("/v1/embeddings", "post"),
        ("/v1/models/{model}", "get"),
        ("/v1/usage", "get"),
        ("/v1/retrieve", "post"),
        ("/v1/route/explain", "post"),
        ("/v1/admin/keys", "post"),
        ("/v1/admin/teams/{name}", "put"),
        ("/v1/admin/usage/series", "get"),
        ("/v1/admin/policy", "get"),
        ("/v1/admin/drift", "get"),
        ("/v1/files", "post"),
        ("/v1/batches/{batch_id}/cancel", "post"),
        ("/readyz", "get"),
    ]:
        assert method in paths[path], (path, method)
    chat = document["components"]["schemas"]["ChatRequest"]
    assert {"model", "messages"} <= set(chat["required"]) and "prompt_cache_key" in chat["properties"]
    docs = httpx.get(gateway.base_url + "/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_keys_and_teams_over_http(gateway: RunningGateway) -> None:
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    base = gateway.base_url + "/v1/admin"
    team = httpx.put(base + "/teams/http-team", json={"limits": {"rpm": 100, "usd_day": 5}}, headers=admin)
    assert team.status_code == 200 and team.json()["limits"] == {"rpm": 100, "usd_day": 5.0}
    created = httpx.post(
        base + "/keys", json={"name": "over-http", "models": ["llama"], "team": "http-team"}, headers=admin
    ).json()
    assert created["key"].startswith("tnt_") and created["models"] == ["llama"]
    client_models = httpx.get(
        gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {created['key']}"}
    )
    assert [model["id"] for model in client_models.json()["data"]][:2] == ["auto", "llama"]
    forbidden = httpx.get(base + "/keys", headers={"authorization": f"Bearer {created['key']}"})
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "admin_only"
    updated = httpx.patch(
        base + f"/keys/{created['id']}", json={"limits": {"rpm": 10}, "private": True}, headers=admin
    )
    assert updated.json()["limits"] == {"rpm": 10} and updated.json()["private"] is True
    assert created["id"] in [key["id"] for key in httpx.get(base + "/keys", headers=admin).json()["data"]]
    assert httpx.delete(base + f"/keys/{created['id']}", headers=admin).json()["revoked"] is True
    gone = httpx.get(gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {created['key']}"})
    deadline = time.monotonic() + 5
    while gone.status_code != 401 and time.monotonic() < deadline:  # the key cache hears NOTIFY
        time.sleep(0.1)
        gone = httpx.get(
            gateway.base_url + "/v1/models", headers={"authorization": f"Bearer {created['key']}"}
        )
    assert gone.status_code == 401
    assert httpx.delete(base + f"/keys/{created['id']}", headers=admin).status_code == 404
    bad = httpx.post(base + "/keys", json={"name": "x", "limits": {"rpm": -1}}, headers=admin)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "limits.rpm"
    nothing = httpx.post(base + "/keys", json={"name": "x", "models": []}, headers=admin)  # not "every model"
    assert nothing.status_code == 400 and nothing.json()["error"]["param"] == "models"
