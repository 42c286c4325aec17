"""API keys: the `Authenticator` seam, the Postgres key store, and key generation.

A key is `tnt_` + 43 url-safe characters (256 bits). Only its SHA-256 is stored: keys are random,
so a slow password hash would add latency and no safety. Lookups are cached briefly; `keys create`
and `keys revoke` NOTIFY the gateway, which drops its cache at once. This module must never log a
key or a key's hash.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from router.db import KEYS_CHANNEL
from router.errors import AuthenticationFailed

KEY_PREFIX = "tnt_"
KEY_PATTERN = re.compile(r"^tnt_[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    name: str
    admin: bool = False
    allowed_models: frozenset[str] | None = None  # None: every model

    def may_use(self, model: str) -> bool:
        return self.admin or self.allowed_models is None or model in self.allowed_models


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
    """Keys in Postgres (table turnout_keys). Takes an asyncpg pool."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    async def create(self, name: str, allowed_models: list[str] | None = None) -> tuple[str, str]:
        key_id, key = new_key()
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO turnout_keys (id, name, key_hash, prefix, allowed_models) VALUES ($1, $2, $3, $4, $5)",
                key_id,
                name,
                hash_key(key),
                key[: len(KEY_PREFIX) + 6],
                allowed_models or None,
            )
            await connection.execute(f"NOTIFY {KEYS_CHANNEL}")
        return key_id, key

    async def revoke(self, key_id: str) -> bool:
        async with self.pool.acquire() as connection, connection.transaction():
            status = await connection.execute(
                "UPDATE turnout_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
            )
            await connection.execute(f"NOTIFY {KEYS_CHANNEL}")
        return bool(status.endswith(" 1"))

    async def list(self) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, name, prefix, allowed_models, created_at, revoked_at FROM turnout_keys ORDER BY created_at"
        )
        return [dict(row) for row in rows]

    async def count_active(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM turnout_keys WHERE revoked_at IS NULL"))

    async def find(self, key_hash: str) -> Principal | None:
        row = await self.pool.fetchrow(
            "SELECT id, name, allowed_models FROM turnout_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            key_hash,
        )
        if row is None:
            return None
        models = row["allowed_models"]
        return Principal(row["id"], row["name"], allowed_models=frozenset(models) if models else None)


class KeyAuthenticator:
    """Bearer or x-api-key → Principal: the admin key from settings, else the key store (cached)."""

    def __init__(self, store: KeyStore, admin_key: str | None, cache_seconds: float) -> None:
        self.store = store
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def invalidate(self, *_: object) -> None:
        self._cache.clear()

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
            principal = await self.store.find(digest)
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        if principal is None:
            raise AuthenticationFailed("Unknown or revoked API key.")
        return principal
