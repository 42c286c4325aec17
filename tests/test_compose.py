"""docker-compose.yml is valid for Compose v1.29 (profiles included) and agrees with the settings."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from router.settings import Settings

ROOT = Path(__file__).resolve().parents[1]

if shutil.which("docker-compose") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI must install docker-compose (make system-deps)")
    pytest.skip("docker-compose is not installed (apt-get install docker-compose)", allow_module_level=True)


def config(*args: str) -> dict:
    env = {**os.environ, "TURNOUT_ADMIN_KEY": "compose-check"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), *args, "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_services_and_the_gpu_profile():
    services = config("--profile", "gpu")["services"]
    assert set(services) == {
        "gateway",
        "postgres",
        "qdrant",
        "redis",
        "prometheus",
        "grafana",
        "vllm",
        "jaeger",
    }
    # Compose v1's `config` lists every service; `up` without --profile gpu leaves vLLM out
    assert {name for name, service in services.items() if service.get("profiles")} == {"vllm", "jaeger"}
    assert services["vllm"]["profiles"] == ["gpu"] and services["jaeger"]["profiles"] == ["tracing"]
    # tracing stays off unless asked for, and Jaeger takes OTLP where the gateway would send it
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    assert config()["services"]["gateway"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == ""
    assert services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]


def test_gateway_environment_is_what_the_settings_read():
    environment = config()["services"]["gateway"]["environment"]
    fields = Settings.model_fields
    own = {name for name in environment if name.startswith("TURNOUT_")}
    assert {name.removeprefix("TURNOUT_").lower() for name in own} <= set(fields)
    # OTEL_* are read by OpenTelemetry's exporter (router/tracing.py), not by the settings
    providers = {name for name in environment if not name.startswith(("TURNOUT_", "OTEL_"))}
    assert providers == {name.upper() for name, field in fields.items() if field.validation_alias}
    assert environment["VLLM_BASE_URL"] == "http://vllm:8000/v1"
    assert (
        environment["TURNOUT_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:5432/" in environment["TURNOUT_DATABASE_URL"]
    )


def test_prometheus_scrapes_the_gateway_port():
    gateway = config()["services"]["gateway"]
    scrape = yaml.safe_load((ROOT / "router" / "deploy" / "prometheus.yml").read_text())
    target = scrape["scrape_configs"][0]["static_configs"][0]["targets"][0]
    assert target == f"gateway:{gateway['environment']['TURNOUT_PORT']}"


def test_compose_refuses_to_start_without_an_admin_key():
    env = {k: v for k, v in os.environ.items() if k != "TURNOUT_ADMIN_KEY"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "TURNOUT_ADMIN_KEY" in result.stderr
