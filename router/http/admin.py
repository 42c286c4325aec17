"""Keys and teams over HTTP for admin keys: what `turnout keys` and `turnout teams` do.

GET/POST /v1/admin/keys, PATCH/DELETE /v1/admin/keys/{key_id}, GET /v1/admin/teams and
PUT /v1/admin/teams/{name}. Bodies are pydantic models (router.http.openapi documents them); a
limit of 0 removes it, as the CLI's does. A new key is shown once, in the answer that creates it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from router.accounts.auth import KeyStore, OnBudget, Principal, limits_from_dict, limits_to_dict
from router.accounts.limits import MAX_CONCURRENT, MAX_RPM, MAX_TPM, MAX_USD, Limits
from router.http.errors import TurnoutError, admin_only
from router.http.services import read_body, services_of
from router.schema import parse_model

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00]+$")]


class NotFound(TurnoutError):
    status_code = 404
    type = "invalid_request_error"
    code = "not_found"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class LimitsBody(_Body):
    """Limits of a key or team; 0 removes a limit, a missing one stays as it is."""

    rpm: Annotated[int, Field(ge=0, le=MAX_RPM)] | None = None
    tpm: Annotated[int, Field(ge=0, le=MAX_TPM)] | None = None
    concurrent: Annotated[int, Field(ge=0, le=MAX_CONCURRENT)] | None = None
    usd_day: Annotated[float, Field(ge=0, le=MAX_USD)] | None = None
    usd_month: Annotated[float, Field(ge=0, le=MAX_USD)] | None = None

    def changes(self) -> dict[str, Any]:
        return {name: (value or None) for name, value in self.model_dump(exclude_unset=True).items()}


class KeyCreate(_Body):
    name: Name
    models: Annotated[list[Name], Field(min_length=1, max_length=256)] | None = None  # None: every model
    team: Name | None = None
    limits: LimitsBody | None = None
    on_budget: Literal["refuse", "downgrade"] = "refuse"
    private: bool = False


class KeyUpdate(_Body):
    models: Annotated[list[Name], Field(min_length=1, max_length=256)] | None = None
    team: Name | None = None
    no_team: bool = False  # true: the key leaves its team
    limits: LimitsBody | None = None
    on_budget: Literal["refuse", "downgrade"] | None = None
    private: bool | None = None


class TeamPut(_Body):
    limits: LimitsBody


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json")


async def _admin(request: Request) -> tuple[Any, Principal]:
    services = services_of(request)
    principal = await services.auth.authenticate(request.headers)
    if not principal.admin:
        raise admin_only("manage keys and teams")
    return services, principal


def key_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "key",
        "name": row["name"],
        "prefix": row["prefix"],
        "models": row["allowed_models"],
        "team": row["team"],
        "limits": limits_to_dict(limits_from_dict(row["limits"])),
        "on_budget": row["on_budget"],
        "private": row["private"],
        "created_at": int(row["created_at"].timestamp()),
        "revoked_at": int(row["revoked_at"].timestamp()) if row["revoked_at"] else None,
    }


async def _key_row(store: KeyStore, key_id: str) -> dict[str, Any]:
    row = next((row for row in await store.list() if row["id"] == key_id), None)
    if row is None:
        raise NotFound(f"No key found with id '{key_id}'.", param="key_id")
    return row


async def list_keys(request: Request) -> Response:
    services, _ = await _admin(request)
    rows = await KeyStore(services.pool).list()
    return _json({"object": "list", "data": [key_object(row) for row in rows]})


async def create_key(request: Request) -> Response:
    services, _ = await _admin(request)
    asked = parse_model(KeyCreate, await read_body(request, services.settings))
    limits = Limits(**{k: v for k, v in (asked.limits.changes() if asked.limits else {}).items() if v})
    store = KeyStore(services.pool)
    key_id, key = await store.create(
        asked.name,
        asked.models,
        team=asked.team,
        limits=limits,
        on_budget=OnBudget(asked.on_budget),
        private=asked.private,
    )
    return _json({**key_object(await _key_row(store, key_id)), "key": key})


async def update_key(request: Request) -> Response:
    services, _ = await _admin(request)
    asked = parse_model(KeyUpdate, await read_body(request, services.settings))
    store = KeyStore(services.pool)
    key_id = request.path_params["key_id"]
    updated = await store.update(
        key_id,
        limits=asked.limits.changes() if asked.limits else None,
        team=asked.team,
        clear_team=asked.no_team,
        on_budget=OnBudget(asked.on_budget) if asked.on_budget else None,
        allowed_models=asked.models,
        private=asked.private,
    )
    if not updated:
        raise NotFound(f"No active key with id '{key_id}'.", param="key_id")
    return _json(key_object(await _key_row(store, key_id)))


async def revoke_key(request: Request) -> Response:
    services, _ = await _admin(request)
    key_id = request.path_params["key_id"]
    if not await KeyStore(services.pool).revoke(key_id):
        raise NotFound(f"No active key with id '{key_id}'.", param="key_id")
    return _json({"id": key_id, "object": "key", "revoked": True})


def team_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "object": "team",
        "limits": limits_to_dict(limits_from_dict(row["limits"])),
        "keys": int(row["keys"]),
    }


async def list_teams(request: Request) -> Response:
    services, _ = await _admin(request)
    rows = await KeyStore(services.pool).teams()
    return _json({"object": "list", "data": [team_object(row) for row in rows]})


async def put_team(request: Request) -> Response:
    services, _ = await _admin(request)
    asked = parse_model(TeamPut, await read_body(request, services.settings))
    name = request.path_params["name"]
    if not name.strip() or len(name) > 100:  # a NUL never gets here (TurnoutApp._dispatch)
        raise NotFound(f"No team can be named {name!r}.", param="name")
    store = KeyStore(services.pool)
    await store.set_team(name, asked.limits.changes())
    row = next(row for row in await store.teams() if row["name"] == name)
    return _json(team_object(row))
