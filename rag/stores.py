"""Choosing a vector store from one URL, and the checks every store applies before it writes.

`open_store(url)` is the only way callers get a `VectorStore`: the scheme picks pgvector or Qdrant,
and each backend module is imported only when its scheme is asked for (qdrant_client takes over a
second to import). Nothing here may talk to a database itself, or print a URL's password or API key.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from rag.types import Chunk, FileRecord, StoreError, VectorStore

ACCEPTED = (
    "postgresql://user:pass@host:5432/db, qdrant://host:6333 (qdrants:// for https, ?api_key= or "
    "QDRANT_API_KEY), qdrant+local://./relative/path, qdrant+local:///abs/path, qdrant+local://:memory:"
)

# Starts with a letter or digit so that no name is "." or ".." (Qdrant local mode makes a folder of it).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_SECRET = re.compile(r"key|password|token|secret", re.IGNORECASE)
RESERVED_SUFFIX = "__manifest"  # Qdrant keeps each collection's manifest in `<name>__manifest`


async def open_store(url: str) -> VectorStore:
    """The store a URL names, connected and ready; StoreError for a URL of no known form."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        from rag.pgvector import PgVectorStore

        return await PgVectorStore.connect(url)
    if scheme in ("qdrant", "qdrants", "qdrant+local"):
        from rag.qdrant import QdrantStore

        return await QdrantStore.connect(url)
    raise StoreError(f"unknown vector store URL {redact_url(url)!r}; accepted: {ACCEPTED}")


def name_problem(name: str) -> str | None:
    """What is wrong with a collection name, or None: both engines take 1-63 ASCII letters, digits,
    `_-.`, starting with a letter or digit and not ending in the manifest suffix."""
    if isinstance(name, str) and _NAME.fullmatch(name) and not name.endswith(RESERVED_SUFFIX):
        return None
    return (
        f"bad collection name {name!r}: use 1-63 letters, digits, '_', '-' or '.', starting with a "
        f"letter or digit and not ending in {RESERVED_SUFFIX!r}"
    )


def validate_name(name: str) -> str:
    """The name, if both engines accept it as is; else StoreError."""
    problem = name_problem(name)
    if problem is not None:
        raise StoreError(problem, {"collection": str(name)})
    return name


def check_batch(record: FileRecord, chunks: Sequence[Chunk], vectors: np.ndarray, dim: int) -> np.ndarray:
    """Refuse a write that would corrupt the collection; return the vectors as float32 rows."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape != (len(chunks), dim):
        raise StoreError(
            f"expected vectors of shape ({len(chunks)}, {dim}), got {tuple(array.shape)}",
            {"source": record.source},
        )
    if not np.isfinite(array).all():
        raise StoreError("vectors contain NaN or infinity", {"source": record.source})
    seen: set[str] = set()
    for chunk in chunks:
        if chunk.source != record.source:
            raise StoreError(
                f"chunk {chunk.id} belongs to {chunk.source!r}, not {record.source!r}",
                {"source": record.source},
            )
        try:
            canonical = str(uuid.UUID(chunk.id)) == chunk.id  # both engines hand ids back in this form
        except ValueError:
            canonical = False
        if not canonical:
            raise StoreError(f"chunk id {chunk.id!r} is not a lowercase UUID", {"source": record.source})
        if chunk.id in seen:
            raise StoreError(f"chunk id {chunk.id} appears twice", {"source": record.source})
        seen.add(chunk.id)
    return array


def redact_url(url: str) -> str:
    """The URL with its password and any secret-looking query value (api_key, ...) as `***`."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password:
            netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
        query = [(k, "***" if _SECRET.search(k) else v) for k, v in parse_qsl(parts.query, True)]
        return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="/*:"), parts.fragment))
    except ValueError:
        return url.split("://", 1)[0] + "://***"
