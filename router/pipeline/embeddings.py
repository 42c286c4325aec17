"""POST /v1/embeddings on the gateway's own embedder: parse, admit, embed, settle.

The local embedder (the one retrieval uses, `TURNOUT_EMBEDDER`) is served as a model of its own,
`local-minilm` for the packaged all-MiniLM-L6-v2 (`local-<name>` for another), through retrieval's
micro-batcher, so that its queries and these texts share forward passes. The texts never leave the
machine, so no sensitivity gate applies; the key's models, limits and the usage ledger do, as for a
chat request. Token arrays are refused (they are another tokenizer's ids), and so is a `dimensions`
other than the embedder's own. Embeddings models of providers are not served here yet.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.embed import DEFAULT_MODEL
from router import tokens
from router.accounts.admission import Admissions, Estimate
from router.accounts.auth import Principal
from router.accounts.usage import UsageRecord, UsageRecorder
from router.http.errors import InvalidRequest, ModelNotFound, PermissionDenied
from router.pipeline.retrieval import RagService
from router.schema import EmbeddingRequest


def local_model_id(embedder: str) -> str:
    """The model name the local embedder answers to: `local-minilm` for the packaged MiniLM."""
    if embedder in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return "local-minilm"
    return "local-" + Path(embedder).name.lower()


@dataclass
class Embeddings:
    """What the endpoint needs of the gateway's services."""

    rag: RagService
    admissions: Admissions
    usage: UsageRecorder | None
    embedder_name: str

    @property
    def model_id(self) -> str:
        return local_model_id(self.embedder_name)

    async def answer(self, principal: Principal, request: EmbeddingRequest) -> dict[str, Any]:
        started = time.perf_counter()
        if request.model not in (self.model_id, self.embedder_name):
            raise ModelNotFound(
                f"The embeddings model '{request.model}' does not exist. Use: {self.model_id}.", param="model"
            )
        if not principal.may_use(self.model_id):
            raise PermissionDenied(f"This API key may not use the model '{self.model_id}'.")
        texts = request.texts()
        prompt_tokens = sum(tokens.count_text(text) for text in texts)
        admission = await self.admissions.admit(principal, Estimate(prompt_tokens, 0.0))
        if admission is not None and not admission.allowed:
            raise admission.error()
        reservation = admission.reservation if admission is not None else None
        status = 500
        try:
            batcher = await self.rag.batcher()
            dim = int(batcher.embedder.dim)
            if request.dimensions is not None and request.dimensions != dim:
                status = 400
                raise InvalidRequest(
                    f"'dimensions' must be {dim} for {self.model_id} (it does not shorten its vectors).",
                    param="dimensions",
                )
            vectors = await asyncio.gather(*(batcher.embed_one(text) for text in texts))
            status = 200
        finally:
            self.admissions.settle(reservation, prompt_tokens if status == 200 else 0, 0.0)
            self._record(principal, request, status, prompt_tokens if status == 200 else 0, started)
        data = [
            {"object": "embedding", "index": index, "embedding": _encoded(vector, request.encoding_format)}
            for index, vector in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": self.model_id,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }

    def _record(
        self, principal: Principal, request: EmbeddingRequest, status: int, prompt_tokens: int, started: float
    ) -> None:
        if self.usage is None:
            return
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.usage.record(
            UsageRecord(
                ts=datetime.now(UTC),
                key_id=principal.key_id,
                team=principal.team,
                route="embeddings",
                backend=self.model_id,
                model=request.model,
                stream=False,
                status=status,
                prompt_tokens=prompt_tokens,
                completion_tokens=0,
                cost_usd=0.0,
                latency_ms=elapsed_ms,
                overhead_ms=elapsed_ms,
                error=None
                if status == 200
                else "invalid dimensions"
                if status == 400
                else "embedding failed",
            )
        )


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    values = np.asarray(vector, dtype="<f4")
    if encoding == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(values.tobytes()).decode("ascii")
    return [float(value) for value in values]
