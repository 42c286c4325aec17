"""Every provider without a native adapter, through litellm (imported on first use: ~5 s on 2 cores).

litellm's per-call cost (~8-10 ms here) is why OpenAI-wire and Anthropic backends never come
through this module. Its exceptions are translated into router.http.errors here and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from router.backends.base import SSE_DONE, Completion, Usage
from router.backends.params import accepted, fit
from router.http.errors import UpstreamError, UpstreamStatus, UpstreamTimeout
from router.policy.model import BackendSpec, Timeouts
from router.schema import ChatRequest


def litellm_model(spec: BackendSpec) -> str:
    return spec.model if spec.model.startswith(spec.provider + "/") else f"{spec.provider}/{spec.model}"


def unknown_provider(provider: str) -> str | None:
    """Why litellm cannot serve this provider name (a typo such as "opneai"), or None."""
    import litellm

    known = {getattr(name, "value", name) for name in litellm.provider_list}
    if provider in known:
        return None
    return f"unknown provider {provider!r}: not turnout's own (openai, anthropic, vllm, openai_compatible) nor litellm's"


def missing_keys(spec: BackendSpec, api_key: str | None) -> list[str]:
    """The environment variables litellm says this provider still needs."""
    if api_key:
        return []
    import litellm

    report = litellm.validate_environment(model=litellm_model(spec))
    return list(report.get("missing_keys") or [])


def _translate(backend: str, error: Exception) -> UpstreamError:
    import litellm

    if isinstance(error, litellm.Timeout | asyncio.TimeoutError):
        return UpstreamTimeout(f"{backend} timed out: {error}", backend=backend)
    if isinstance(error, litellm.APIConnectionError):
        return UpstreamError(f"{backend} is unreachable: {error}", backend=backend)
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return UpstreamStatus(backend, status, str(getattr(error, "message", error)))
    return UpstreamError(f"{backend} failed: {error!r}", backend=backend)


class LiteLLMStream:
    def __init__(self, backend: str, iterator: Any, keep_usage_chunk: bool, upstream_s: float) -> None:
        self._backend = backend
        self._iterator = iterator
        self._keep_usage_chunk = keep_usage_chunk
        self._done = False
        self.usage = Usage()
        self._upstream_s = upstream_s

    @property
    def upstream_s(self) -> float:
        return self._upstream_s

    def __aiter__(self) -> LiteLLMStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._done:
            started = time.perf_counter()
            try:
                chunk = await self._iterator.__anext__()
            except StopAsyncIteration:
                self._done = True
                return SSE_DONE
            except Exception as error:
                self._done = True
                raise _translate(self._backend, error) from None
            finally:
                self._upstream_s += time.perf_counter() - started
            payload = chunk.model_dump(exclude_none=True)
            if payload.get("usage"):
                self.usage = Usage.from_openai(payload["usage"])
                if not payload.get("choices") and not self._keep_usage_chunk:
                    continue
            return b"data: " + orjson.dumps(payload) + b"\n\n"
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._done = True
        close = getattr(self._iterator, "aclose", None)
        if close is not None:
            await close()


class LiteLLMBackend:
    def __init__(self, name: str, spec: BackendSpec, base_url: str | None, api_key: str | None) -> None:
        self.name = name
        self.spec = spec
        self._base_url = base_url
        self._api_key = api_key
        self._takes = accepted(spec)

    def _kwargs(self, request: ChatRequest, timeouts: Timeouts, stream: bool) -> dict[str, Any]:
        params = fit(
            request.model_dump(exclude_unset=True, exclude={"model", "stream", "stream_options", "turnout"}),
            self._takes,
            self.name,
        )
        params.update(
            model=litellm_model(self.spec), timeout=timeouts.total_s, max_retries=0, drop_params=True
        )
        if self._base_url:
            params["api_base"] = self._base_url
        if self._api_key:
            params["api_key"] = self._api_key
        if stream:
            params.update(stream=True, stream_options={"include_usage": True})
        return params

    async def complete(self, request: ChatRequest, timeouts: Timeouts) -> Completion:
        import litellm

        started = time.perf_counter()
        try:
            response = await litellm.acompletion(**self._kwargs(request, timeouts, stream=False))
        except Exception as error:
            raise _translate(self.name, error) from None
        payload = response.model_dump(exclude_none=True)
        return Completion(
            orjson.dumps(payload), Usage.from_openai(payload.get("usage")), time.perf_counter() - started
        )

    async def stream(self, request: ChatRequest, timeouts: Timeouts) -> LiteLLMStream:
        import litellm

        started = time.perf_counter()
        try:
            iterator = await litellm.acompletion(**self._kwargs(request, timeouts, stream=True))
        except Exception as error:
            raise _translate(self.name, error) from None
        return LiteLLMStream(self.name, iterator, request.wants_usage_chunk, time.perf_counter() - started)
