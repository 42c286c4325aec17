"""The backend registry: a policy's `provider` name → the adapter that speaks its wire protocol.

Credentials are resolved here, once, when a policy is (re)loaded. Known providers have native
adapters; any other provider name goes to litellm. A backend whose key or address is missing is
reported (name → reason) and left out; routing then skips it. Nothing here branches on a
backend's name at request time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from router.backends.base import Backend
from router.backends.http import HttpClient
from router.policy.model import BackendSpec, Policy
from router.settings import Settings

Protocol = Literal["openai", "anthropic", "litellm"]


@dataclass(frozen=True)
class Provider:
    protocol: Protocol
    key_env: str | None
    key_required: bool
    default_base_url: str | None  # a Settings attribute name, resolved per Settings


PROVIDERS: dict[str, Provider] = {
    "openai": Provider("openai", "OPENAI_API_KEY", True, "openai_base_url"),
    "anthropic": Provider("anthropic", "ANTHROPIC_API_KEY", True, "anthropic_base_url"),
    "vllm": Provider("openai", "VLLM_API_KEY", False, "vllm_base_url"),
    "openai_compatible": Provider("openai", None, False, None),
}


def _settings_key(settings: Settings, env_name: str | None) -> str | None:
    """Keys of the conventional variables come through Settings; others are read by name."""
    if env_name is None:
        return None
    field = env_name.lower()
    secret = getattr(settings, field, None) if field in Settings.model_fields else None
    if secret is not None:
        return str(secret.get_secret_value())
    return os.environ.get(env_name) or None


@dataclass
class BuiltBackends:
    ready: dict[str, Backend]
    unavailable: dict[str, str]  # backend name → why it is left out


def build_backend(name: str, spec: BackendSpec, settings: Settings, http: HttpClient) -> Backend:
    """Build one adapter; raise ValueError with the reason when its key or address is missing."""
    provider = PROVIDERS.get(spec.provider)
    key_env = spec.api_key_env or (provider.key_env if provider else None)
    api_key = _settings_key(settings, key_env)
    if provider is None:
        from router.backends.litellm_backend import LiteLLMBackend, missing_keys

        missing = missing_keys(spec, api_key)
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        return LiteLLMBackend(name, spec, spec.base_url, api_key)
    # a variable the policy names is a key the operator means to send (an unset one went out empty)
    if (provider.key_required or spec.api_key_env) and not api_key:
        raise ValueError(f"missing {key_env}")
    base_url = spec.base_url or (
        getattr(settings, provider.default_base_url) if provider.default_base_url else None
    )
    if not base_url:
        raise ValueError("missing base_url")
    if provider.protocol == "anthropic":
        from router.backends.anthropic import AnthropicBackend

        return AnthropicBackend(name, spec, base_url, api_key, http)
    from router.backends.openai import OpenAIBackend

    return OpenAIBackend(name, spec, base_url, api_key, http)


def build_backends(policy: Policy, settings: Settings, http: HttpClient) -> BuiltBackends:
    built = BuiltBackends({}, {})
    for name, spec in policy.backends.items():
        try:
            built.ready[name] = build_backend(name, spec, settings, http)
        except ValueError as error:
            built.unavailable[name] = str(error)
    return built
