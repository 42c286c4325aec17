"""One settings object, read from the environment once and passed down; no module reads env itself.

Secrets are `SecretStr` so that printing a Settings never shows a key. Provider credentials keep
their conventional names (OPENAI_API_KEY, ANTHROPIC_BASE_URL, VLLM_BASE_URL, ...); everything of
turnout's own is `TURNOUT_*`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
}


def make_offline() -> None:
    """Nothing may download at run time: hubs offline, litellm's price map local, tiktoken's BPE
    files from litellm's bundled copy unless the operator points TIKTOKEN_CACHE_DIR elsewhere."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    if "TIKTOKEN_CACHE_DIR" not in os.environ:
        from importlib.util import find_spec

        spec = find_spec("litellm")
        if spec is not None and spec.origin:
            bundled = Path(spec.origin).parent / "litellm_core_utils" / "tokenizers"
            if bundled.is_dir():
                os.environ["TIKTOKEN_CACHE_DIR"] = str(bundled)


DEFAULT_POLICY = Path("policies/default.yaml")
# The same file, installed with the package (router/policy/default.yaml links to it in a checkout).
PACKAGED_POLICY = Path(__file__).resolve().parent / "policy" / "default.yaml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TURNOUT_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    shutdown_grace_s: float = Field(
        10.0, ge=0, description="on SIGTERM, how long open requests and streams may take to finish"
    )
    policy: Path = Field(DEFAULT_POLICY, validate_default=True)
    home: Path = Field(Path(".turnout"), description="state folder: embedded Postgres data, caches")
    database_url: SecretStr | None = Field(None, description="Postgres URL; unset = embedded Postgres")
    admin_key: SecretStr | None = None
    max_body_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="largest request line plus headers")
    header_timeout_s: float = Field(10.0, gt=0, description="time a client has to send a request's head")
    body_timeout_s: float = Field(30.0, gt=0, description="time a client has to send a request's body")
    usage_flush_seconds: float = Field(1.0, gt=0)
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1024, description="largest file POST /v1/files takes")
    batch_max_lines: int = Field(100_000, ge=1, description="most requests one batch may hold")
    batch_concurrency: int = Field(
        2, ge=0, description="batch lines the gateway runs at once (0: none; `turnout worker` runs them)"
    )
    batch_lease_s: float = Field(
        60.0, ge=1, description="how long a batch line stays claimed by a worker that stopped renewing it"
    )
    batch_yield_at: int = Field(
        4,
        ge=1,
        description="interactive requests in flight at which the gateway's batch worker stops claiming",
    )
    usage_batch_size: int = Field(500, ge=1)
    gauges_seconds: float = Field(
        300.0, ge=0, description="how often the batch-queue and drift gauges are measured (0: never)"
    )
    drift_reference_days: float = Field(7.0, gt=0, description="live drift: the reference window, in days")
    drift_current_days: float = Field(1.0, gt=0, description="live drift: the current window, in days")
    trace_prompts: bool = Field(
        False, description="record the messages on request spans (gen_ai.input.messages) when tracing is on"
    )
    key_cache_seconds: float = Field(30.0, ge=0)
    policy_reload_seconds: float = Field(1.0, gt=0)
    log_level: str = "info"

    store_url: SecretStr | None = Field(
        None,
        description="vector store: postgresql://..., qdrant://host:6333, qdrant+local://PATH; unset = the database",
    )
    collection: str = Field(
        "docs", description="collection that ingest writes and retrieval reads by default"
    )
    embedder: str = Field("all-MiniLM-L6-v2", description="sentence-transformers model name or path")
    embed_precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="embedder arithmetic: bf16 where the CPU has it natively (auto), or forced"
    )
    embed_runtime: Literal["auto", "openvino", "torch"] = Field(
        "auto",
        description="what runs batch embeddings (ingest): OpenVINO when it gives the same vectors (auto), or forced",
    )
    redis_url: SecretStr | None = Field(
        None, description="Redis for limits shared by replicas; unset = in-process"
    )
    limits_on_failure: Literal["open", "closed"] = Field(
        "open", description="while Redis is unreachable: admit every request (open) or refuse (closed)"
    )
    limits_window_s: float = Field(60.0, gt=0, description="length of the rpm/tpm windows")
    limits_redis_timeout_s: float = Field(
        0.5, gt=0, description="a Redis call slower than this counts as Redis being down"
    )

    openai_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("OPENAI_API_KEY"))
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=AliasChoices("OPENAI_BASE_URL")
    )
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("ANTHROPIC_API_KEY"))
    anthropic_base_url: str = Field(
        "https://api.anthropic.com", validation_alias=AliasChoices("ANTHROPIC_BASE_URL")
    )
    vllm_base_url: str = Field("http://127.0.0.1:8000/v1", validation_alias=AliasChoices("VLLM_BASE_URL"))
    vllm_api_key: SecretStr | None = Field(None, validation_alias=AliasChoices("VLLM_API_KEY"))

    @field_validator("policy")
    @classmethod
    def _packaged_default(cls, value: Path) -> Path:
        """The default policy path names the checkout's file; run elsewhere (an installed turnout, another
        working folder), the same policy installed with the package stands in for it."""
        if value == DEFAULT_POLICY and not value.exists() and PACKAGED_POLICY.is_file():
            return PACKAGED_POLICY
        return value

    def pg_data_dir(self) -> Path:
        return self.home.resolve() / "pgdata"


def describe_invalid(error: ValidationError) -> str:
    """A bad setting on one line, under the variable's own name:
    `TURNOUT_PORT: Input should be less than or equal to 65535 (got 70000)`; secrets not echoed."""
    parts = []
    for item in error.errors():
        where = str(item["loc"][0]) if item["loc"] else ""
        name, secret = f"TURNOUT_{where.upper()}" if where else "settings", False
        for field, info in Settings.model_fields.items():
            alias = info.validation_alias
            aliases = [str(choice) for choice in alias.choices] if isinstance(alias, AliasChoices) else []
            if where == field or where in aliases:
                name = aliases[0] if aliases else f"TURNOUT_{field.upper()}"
                secret = "SecretStr" in str(info.annotation)
        shown = "" if secret or "input" not in item else f" (got {item['input']!r})"
        parts.append(f"{name}: {item['msg']}{shown}")
    return "; ".join(parts)


def from_command_line(values: dict[str, Any]) -> Settings:
    """Settings from the environment, with the command line's --host, --port and --policy on top
    (a `vars(args)` of the verb; absent or None ones are left to the environment)."""
    overrides = {name: values[name] for name in ("host", "port", "policy") if values.get(name) is not None}
    return Settings(**overrides)
