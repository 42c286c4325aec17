"""API keys: the `Authenticator` seam, the Postgres key store, and key generation.

A key is `tnt_` + 43 url-safe characters (256 bits). Only its SHA-256 is stored: keys are random,
so a slow password hash would add latency and no safety. Lookups are cached briefly; `keys create`
and `keys revoke` NOTIFY the gateway, which drops its cache at once. This module must never log a
key or a key's hash.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol

from router.accounts.limits import Limits, Scope
from router.db import KEYS_CHANNEL, Pool
from router.http.errors import AuthenticationFailed, KeyStoreUnavailable

KEY_PREFIX = "tnt_"
KEY_PATTERN = re.compile(r"^tnt_[A-Za-z0-9_-]{43}$")

log = logging.getLogger("turnout.auth")


NO_LIMITS = Limits()


class OnBudget(StrEnum):
    """What a key's request gets when a USD budget would be exceeded."""

    refuse = "refuse"  # 429
    downgrade = "downgrade"  # the cheapest backend the request may use, if that fits the budget


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    admin: bool = False
    allowed_models: frozenset[str] | None = None  # None: every model
    team: str | None = None
    limits: Limits = NO_LIMITS
    team_limits: Limits = NO_LIMITS
    on_budget: OnBudget = OnBudget.refuse
    private: bool = False  # every request of this key stays on private backends

    def may_use(self, model: str) -> bool:
        return self.admin or self.allowed_models is None or model in self.allowed_models

    def scopes(self) -> list[Scope]:
        """The limiter scopes of this key's requests: the key, and its team when it has one."""
        scopes = [Scope(f"key:{self.key_id}", self.limits)] if self.limits != NO_LIMITS else []
        if self.team is not None and self.team_limits != NO_LIMITS:
            scopes.append(Scope(f"team:{self.team}", self.team_limits))
        return scopes


LIMIT_FIELDS = ("rpm", "tpm", "concurrent", "usd_day", "usd_month")


def limits_from_dict(data: dict[str, Any] | None) -> Limits:
    """Limits from a jsonb column (psycopg hands it over as a dict; NULL as None)."""
    data = data or {}
    return Limits(**{name: data[name] for name in LIMIT_FIELDS if data.get(name) is not None})


def limits_to_dict(limits: Limits) -> dict[str, Any]:
    return {name: getattr(limits, name) for name in LIMIT_FIELDS if getattr(limits, name) is not None}


def limits_jsonb(limits: Limits) -> Any:
    """The jsonb parameter for a limits column (psycopg imported here: `turnout explain` never needs it)."""
    from psycopg.types.json import Jsonb

    return Jsonb(limits_to_dict(limits))


class Authenticator(Protocol):
    """Headers → Principal, or AuthenticationFailed (401). Never calls a backend."""

    async def authenticate(self, headers: Any) -> Principal: ...


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """(key id, key). The key is shown once; only its hash is kept."""
    return "key_" + secrets.token_hex(6), KEY_PREFIX + secrets.token_urlsafe(32)


def presented_key(headers: Any) -> str:
    authorization = headers.get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <key>'.")
        return value.strip()
    key = headers.get("x-api-key")
    if key:
        return str(key).strip()
    raise AuthenticationFailed(
        "Missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'.", code="missing_api_key"
    )


class KeyStore:
    """Keys in Postgres (table turnout_keys). Takes a pool from `router.db.open_pool`."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def create(
        self,
        name: str,
        allowed_models: list[str] | None = None,
        *,
        team: str | None = None,
        limits: Limits = NO_LIMITS,
        on_budget: OnBudget = OnBudget.refuse,
        private: bool = False,
    ) -> tuple[str, str]:
        key_id, key = new_key()
        async with self.pool.connection() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO turnout_keys "
                "(id, name, key_hash, prefix, allowed_models, team, limits, on_budget, private) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    key_id,
                    name,
                    hash_key(key),
                    key[: len(KEY_PREFIX) + 6],
                    allowed_models or None,
                    team,
                    limits_jsonb(limits),
                    on_budget.value,
                    private,
                ),
            )
            await connection.execute(f"NOTIFY {KEYS_CHANNEL}")
        return key_id, key

    async def update(
        self,
        key_id: str,
        *,
        limits: dict[str, Any] | None = None,
        team: str | None = None,
        clear_team: bool = False,
        on_budget: OnBudget | None = None,
        allowed_models: list[str] | None = None,
        private: bool | None = None,
    ) -> bool:
        """Change a live key's limits (None in `limits` removes that limit), team, budget rule, models
        or privacy; what is not given stays as it is."""
        async with self.pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "SELECT limits, team, on_budget, allowed_models, private FROM turnout_keys "
                "WHERE id = %s AND revoked_at IS NULL FOR UPDATE",
                (key_id,),
            )
            row = await cursor.fetchone()
            if row is None:
                return False
            current = limits_from_dict(row["limits"])
            merged = replace(current, **(limits or {})) if limits else current
            await connection.execute(
                "UPDATE turnout_keys SET limits = %s, team = %s, on_budget = %s, allowed_models = %s, "
                "private = %s WHERE id = %s",
                (
                    limits_jsonb(merged),
                    None if clear_team else (team if team is not None else row["team"]),
                    (on_budget or OnBudget(row["on_budget"])).value,
                    allowed_models if allowed_models is not None else row["allowed_models"],
                    private if private is not None else row["private"],
                    key_id,
                ),
            )
            await connection.execute(f"NOTIFY {KEYS_CHANNEL}")
        return True

    async def set_team(self, name: str, limits: dict[str, Any]) -> None:
        async with self.pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "SELECT limits FROM turnout_teams WHERE name = %s FOR UPDATE", (name,)
            )
            row = await cursor.fetchone()
            merged = replace(limits_from_dict(row["limits"]) if row else NO_LIMITS, **limits)
            await connection.execute(
                "INSERT INTO turnout_teams (name, limits) VALUES (%s, %s) "
                "ON CONFLICT (name) DO UPDATE SET limits = EXCLUDED.limits, updated_at = now()",
                (name, limits_jsonb(merged)),
            )
            await connection.execute(f"NOTIFY {KEYS_CHANNEL}")

    async def teams(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch_all(
            "SELECT t.name, t.limits, t.updated_at, count(k.id) FILTER (WHERE k.revoked_at IS NULL) AS keys "
            "FROM turnout_teams t LEFT JOIN turnout_keys k ON k.team = t.name GROUP BY t.name ORDER BY t.name",
        )
        return rows

    async def revoke(self, key_id: str) -> bool:
        async with self.pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(
                "UPDATE turnout_keys SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (key_id,)
            )
            await connection.execute(f"NOTIFY {KEYS_CHANNEL}")
        return cursor.rowcount == 1

    async def list(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch_all(
            "SELECT id, name, prefix, allowed_models, team, limits, on_budget, private, created_at, revoked_at "
            "FROM turnout_keys ORDER BY created_at",
        )
        return rows

    async def count_active(self) -> int:
        row = await self.pool.fetch_one("SELECT count(*) AS n FROM turnout_keys WHERE revoked_at IS NULL")
        return int(row["n"]) if row else 0

    async def find(self, key_hash: str) -> Principal | None:
        return await self._principal("k.key_hash = %s", key_hash)

    async def find_id(self, key_id: str) -> Principal | None:
        """The key's principal by its id (batch jobs run as the key that created them); None if revoked."""
        return await self._principal("k.id = %s", key_id)

    async def _principal(self, where: str, value: str) -> Principal | None:
        row = await self.pool.fetch_one(
            "SELECT k.id, k.name, k.allowed_models, k.team, k.limits, k.on_budget, k.private, "
            "t.limits AS team_limits "
            "FROM turnout_keys k LEFT JOIN turnout_teams t ON t.name = k.team "
            f"WHERE {where} AND k.revoked_at IS NULL",
            (value,),
        )
        if row is None:
            return None
        models = row["allowed_models"]
        return Principal(
            row["id"],
            row["name"],
            allowed_models=frozenset(models) if models else None,
            team=row["team"],
            limits=limits_from_dict(row["limits"]),
            team_limits=limits_from_dict(row["team_limits"]),
            on_budget=OnBudget(row["on_budget"]),
            private=row["private"],
        )


class KeyAuthenticator:
    """Bearer or x-api-key → Principal: the admin key from settings, else the key store (cached)."""

    def __init__(self, store: KeyStore, admin_key: str | None, cache_seconds: float) -> None:
        self.store = store
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._store_down = False

    def invalidate(self, *_: object) -> None:
        self._cache.clear()

    def _stale(self, principal: Principal | None, error: BaseException) -> Principal:
        """While the key store is down: the last answer for this key, which its cache still holds
        (a revocation made meanwhile is heard when the database answers again)."""
        if principal is None:
            raise AuthenticationFailed("Unknown or revoked API key.")
        if not self._store_down:
            log.warning(
                "key store unavailable (%s); keys seen before are served from cache", type(error).__name__
            )
            self._store_down = True
        return principal

    async def authenticate(self, headers: Any) -> Principal:
        key = presented_key(headers)
        digest = hash_key(key)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return Principal("admin", "admin", admin=True)
        if not KEY_PATTERN.match(key):
            raise AuthenticationFailed(
                "Malformed API key: turnout keys look like 'tnt_' followed by 43 characters."
            )
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._cache_seconds:
            principal = cached[1]
        else:
            try:
                principal = await self.store.find(digest)
            except Exception as error:  # Postgres is away: a key seen before keeps working, no other
                if cached is None:
                    log.warning("key lookup failed (%s: %s)", type(error).__name__, str(error)[:200])
                    raise KeyStoreUnavailable(
                        "The gateway cannot check API keys right now (its database is unavailable); retry shortly."
                    ) from None
                return self._stale(cached[1], error)
            if self._store_down:
                log.info("key store reachable again")
                self._store_down = False
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        if principal is None:
            raise AuthenticationFailed("Unknown or revoked API key.")
        return principal
