"""POST /v1/embeddings: the gateway's own embedder, or a provider's embeddings model of the policy.

The local embedder (the one retrieval uses, `TURNOUT_EMBEDDER`) is served as a model of its own,
`local-minilm` for the packaged all-MiniLM-L6-v2 (`local-<name>` for another), through retrieval's
micro-batcher, so that its queries and these texts share forward passes. Its texts never leave the
machine, so no sensitivity gate applies. A model of the policy's `embeddings` section is passed
through to its provider's OpenAI-wire `/embeddings`; when that provider is `external`, texts with
sensitive data (the policy's detectors and threshold), a request that asks to stay inside and a
private key are refused (a vector of another model's space cannot stand in for it, so there is no
rerouting). The key's models, limits and the usage ledger apply to both, as for a chat request.
Token arrays are refused (they cannot be scanned, and for the local embedder they are another
tokenizer's ids), and so is a `dimensions` other than the local embedder's own.
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
import orjson

from rag.embed import DEFAULT_MODEL
from router import tokens
from router.accounts.admission import Admissions, Estimate
from router.accounts.auth import Principal
from router.accounts.limits import Admission
from router.accounts.usage import UsageRecord, UsageRecorder
from router.backends.http import post, read_body
from router.http.errors import (
    InvalidRequest,
    ModelNotFound,
    OverLimit,
    PermissionDenied,
    RateLimited,
    SensitiveDataBlocked,
    UpstreamError,
)
from router.metrics import PROVIDER
from router.pipeline.retrieval import RagService
from router.policy.model import EmbeddingSpec, Price
from router.schema import ChatRequest, EmbeddingRequest, RequestOptions


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
    gateway: Any = None  # router.pipeline.gateway.Gateway: the policy's embeddings models, the HTTP client

    @property
    def model_id(self) -> str:
        return local_model_id(self.embedder_name)

    async def answer(
        self,
        principal: Principal,
        request: EmbeddingRequest,
        options: RequestOptions | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The embeddings; `headers`, when given, gets the key's x-ratelimit-* headers. A request
        refused here (an unknown model, the key's models or limits, the gate) is a ledger row and
        is counted in the metrics too, as a chat request's refusal is."""
        started = time.perf_counter()
        try:
            return await self._answer(principal, request, options or RequestOptions(), headers, started)
        except (ModelNotFound, PermissionDenied, RateLimited, OverLimit, SensitiveDataBlocked) as refused:
            code = refused.code or refused.type
            # refused before any model ran: no backend (and no latency histograms), as a chat refusal
            self._record(
                principal,
                request,
                refused.status_code,
                0,
                started,
                backend="",
                error=refused.message,
                code=code,
            )
            raise

    def _provided(self) -> dict[str, EmbeddingSpec]:
        return self.gateway.runtime.loaded.policy.embeddings if self.gateway is not None else {}

    async def _answer(
        self,
        principal: Principal,
        request: EmbeddingRequest,
        options: RequestOptions,
        headers: dict[str, str] | None,
        started: float,
    ) -> dict[str, Any]:
        provided = self._provided()
        if request.model in provided:
            return await self._provider(principal, request, options, headers, started)
        if request.model not in (self.model_id, self.embedder_name):
            known = ", ".join([self.model_id, *provided])
            raise ModelNotFound(
                f"The embeddings model '{request.model}' does not exist. Use: {known}.", param="model"
            )
        if not principal.may_use(self.model_id):
            raise PermissionDenied(f"This API key may not use the model '{self.model_id}'.")
        texts = request.texts()
        prompt_tokens = sum(tokens.count_text(text) for text in texts)
        admission = _admitted(await self.admissions.admit(principal, Estimate(prompt_tokens, 0.0)), headers)
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

    async def _provider(
        self,
        principal: Principal,
        request: EmbeddingRequest,
        options: RequestOptions,
        headers: dict[str, str] | None,
        started: float,
    ) -> dict[str, Any]:
        """Pass the request through to the policy's embeddings model, after the gate."""
        name = request.model
        spec: EmbeddingSpec = self.gateway.runtime.loaded.policy.embeddings[name]
        if not principal.may_use(name):
            raise PermissionDenied(f"This API key may not use the model '{name}'.")
        texts = request.texts()
        if spec.data == "external":
            self._gate(principal, name, texts, options)
        prompt_tokens = sum(tokens.count_text(text) for text in texts)
        price = spec.price or Price()
        admission = _admitted(
            await self.admissions.admit(principal, Estimate(prompt_tokens, price.cost(prompt_tokens, 0))),
            headers,
        )
        reservation = admission.reservation if admission is not None else None
        status, used, upstream_s = 500, 0, 0.0
        error: str | None = "embedding failed"
        try:
            payload, upstream_s = await self._call(name, spec, request)
            used = int((payload.get("usage") or {}).get("prompt_tokens") or prompt_tokens)
            status, error = 200, None
        except UpstreamError as failure:
            status, error = failure.status_code, failure.message
            raise
        finally:
            cost = price.cost(used, 0)
            self.admissions.settle(reservation, used, cost)
            self._record(
                principal,
                request,
                status,
                used,
                started,
                backend=name,
                cost=cost,
                upstream_s=upstream_s,
                error=error,
            )
        payload["model"] = name
        return payload

    def _gate(self, principal: Principal, name: str, texts: list[str], options: RequestOptions) -> None:
        """Refuse what may not leave for an external model: findings, a private key, a request to stay inside."""
        engine = self.gateway.runtime.engine
        probe = ChatRequest.model_validate(
            {"model": name, "messages": [{"role": "user", "content": text} for text in texts]}
        )
        signals = engine.compute(probe, options, capability=False)
        why = None
        if principal.private:
            why = "this API key keeps its requests on private models"
        elif signals.findings:
            why = f"the input carries sensitive data ({', '.join(sorted(signals.finding_types))})"
        elif signals.kept_inside is not None:
            why = signals.kept_inside
        if why is not None:
            raise SensitiveDataBlocked(
                f"'{name}' is an external embeddings model and {why}: use {self.model_id} or a private model.",
                param="input",
            )

    async def _call(
        self, name: str, spec: EmbeddingSpec, request: EmbeddingRequest
    ) -> tuple[dict[str, Any], float]:
        from router.backends import PROVIDERS, _settings_key

        provider = PROVIDERS[spec.provider]
        settings = self.gateway.settings
        base_url = spec.base_url or (
            getattr(settings, provider.default_base_url) if provider.default_base_url else None
        )
        if not base_url:
            raise UpstreamError(f"{name} has no base_url", backend=name)
        api_key = _settings_key(settings, spec.api_key_env or provider.key_env)
        if spec.api_key_env and not api_key:  # named by the policy, so meant to be sent
            raise UpstreamError(f"{name}: missing {spec.api_key_env}", backend=name)
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        body = request.model_dump(exclude_unset=True)
        body["model"] = spec.model
        if spec.data == "external":
            body.pop("user", None)  # an identifier of the caller's user: not scanned, so not sent out
        timeouts = spec.timeouts or self.gateway.runtime.loaded.policy.defaults.timeouts
        counter = [0.0]
        url = base_url.rstrip("/") + "/embeddings"
        response, deadline = await post(
            self.gateway.http, name, url, orjson.dumps(body), headers, timeouts, counter
        )
        raw = await read_body(response, deadline, name, counter)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise UpstreamError(f"{name} answered with a body that is not JSON", backend=name) from None
        if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            raise UpstreamError(f"{name} answered without data", backend=name)
        return payload, counter[0]

    def _record(
        self,
        principal: Principal,
        request: EmbeddingRequest,
        status: int,
        prompt_tokens: int,
        started: float,
        *,
        backend: str | None = None,
        cost: float = 0.0,
        upstream_s: float = 0.0,
        error: str | None = None,
        code: str | None = None,
    ) -> None:
        """A ledger row and the metrics' count; `code` names a refusal's kind (the metrics' label)."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        if code is None and status != 200:
            code = "invalid_dimensions" if status == 400 else "embedding_failed"
        if self.gateway is not None:  # requests, tokens and spend as chat requests count them
            spec = self.gateway.runtime.loaded.policy.embeddings.get(backend or "")
            provider = PROVIDER.get(spec.provider, spec.provider) if spec is not None else "turnout"
            self.gateway.metrics.observe(
                "embeddings", "embeddings", self.model_id if backend is None else backend, provider,
                spec.model if spec is not None else self.model_id, status,
                elapsed_ms / 1000, elapsed_ms / 1000 - upstream_s, prompt_tokens, 0, cost,
                code, operation="embeddings",
            )  # fmt: skip
        if self.usage is None:
            return
        self.usage.record(
            UsageRecord(
                ts=datetime.now(UTC),
                key_id=principal.key_id,
                team=principal.team,
                route="embeddings",
                backend=(self.model_id if backend is None else backend) or None,  # refused: none, as chat's
                model=request.model,
                stream=False,
                status=status,
                prompt_tokens=prompt_tokens,
                completion_tokens=0,
                cost_usd=cost,
                latency_ms=elapsed_ms,
                overhead_ms=elapsed_ms - upstream_s * 1000,
                error=error if error is not None or code is None else code.replace("_", " "),
            )
        )


def _admitted(admission: Admission | None, headers: dict[str, str] | None) -> Admission | None:
    """The limiter's verdict, its x-ratelimit-* headers put in `headers` (and on its 429)."""
    if admission is None:
        return None
    rate = {name: value for name, value in admission.headers.items() if name.startswith("x-ratelimit-")}
    if headers is not None:
        headers.update(rate)
    if not admission.allowed:
        refused = admission.error()
        refused.rate_headers = rate
        raise refused
    return admission


def _encoded(vector: np.ndarray, encoding: str) -> list[float] | str:
    values = np.asarray(vector, dtype="<f4")
    if encoding == "base64":  # what the openai SDK asks for by default: little-endian float32
        return base64.b64encode(values.tobytes()).decode("ascii")
    return [float(value) for value in values]
