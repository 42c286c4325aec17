"""The deployment files: Kubernetes manifests (router/deploy/k8s) and the Grafana dashboard.

Every manifest is checked against Kubernetes' own JSON schemas, offline (kubernetes-validate bundles
them), for the oldest and newest versions it carries, strictly (an unknown field is an error). Then
the things the deployment depends on: probes on the gateway's port, the drain on shutdown, the
autoscaler's two metrics, selectors that select something, the GPU for vLLM, and that the
kustomization lists every file. `kubectl kustomize` builds the whole when kubectl is installed; the
listed files are validated either way. The dashboard's queries may only name metrics the gateway
exports (EXPECTED_METRICS), and docker-compose.yml's grafana service mounts files that exist.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes_validate import utils as kube_schemas

from router.policy.model import load_policy
from router.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "router" / "deploy" / "k8s"
GRAFANA = ROOT / "router" / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "turnout.json"
KUBE_VERSIONS = (kube_schemas.all_versions()[0], kube_schemas.latest_version())
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")


def exported_metrics() -> dict[str, str]:
    """The metrics the gateway exports, read from its own registry (router/metrics.py), as their
    samples are named (counters end in _total), and their kind."""
    from router.metrics import Metrics

    registry = Metrics().registry
    assert registry is not None  # one process: the Metrics' own registry
    exported = {}
    for family in registry.collect():
        name = family.name + "_total" if family.type == "counter" else family.name
        exported[name] = family.type
    return exported


EXPECTED_METRICS = exported_metrics()


# --- Kubernetes ---------------------------------------------------------------------------------


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def generated_files() -> list[str]:
    return [name for gen in kustomization().get("configMapGenerator", []) for name in gen.get("files", [])]


def documents() -> list[dict[str, Any]]:
    """Every object in the files the kustomization lists, as written (before kustomize)."""
    docs = []
    for name in kustomization()["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in documents() if doc["kind"] == kind}


def workloads() -> list[dict[str, Any]]:
    return [doc for doc in documents() if doc["kind"] in WORKLOAD_KINDS]


def container(workload: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    containers = workload["spec"]["template"]["spec"]["containers"]
    return next(c for c in containers if name is None or c["name"] == name)


def port_number(cont: dict[str, Any], port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container's number."""
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in cont.get("ports", []) if p.get("name") == port)


def env_names(cont: dict[str, Any]) -> set[str]:
    names = {item["name"] for item in cont.get("env", [])}
    config = objects("ConfigMap")
    for source in cont.get("envFrom", []):
        names |= set(config[source["configMapRef"]["name"]]["data"])
    return names


def test_every_manifest_matches_the_kubernetes_schemas() -> None:
    docs = documents()
    assert len(docs) >= 15
    for version in KUBE_VERSIONS:
        for doc in docs:
            try:
                kube_schemas.validate(doc, version, strict=True)
            except kube_schemas.ValidationError as error:
                pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {error.message}")


def test_the_schema_check_refuses_a_misspelt_field() -> None:
    gateway = objects("Deployment")["turnout-gateway"]
    container(gateway)["readinessProbe"]["httpGet"]["pathh"] = "/readyz"
    with pytest.raises(kube_schemas.ValidationError):
        kube_schemas.validate(gateway, KUBE_VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_file_and_only_files_that_exist() -> None:
    listed = {*kustomization()["resources"], *generated_files()}
    on_disk = {str(path.relative_to(K8S)) for path in K8S.rglob("*.y*ml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert kustomization()["namespace"] == next(iter(objects("Namespace")))


def test_kubectl_kustomize_builds_valid_objects() -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed: the listed files are validated one by one instead")
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    built = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    written = {(doc["kind"], doc["metadata"]["name"]) for doc in documents()}
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in built} == written | {
        ("ConfigMap", "turnout-policies")
    }
    namespace = kustomization()["namespace"]
    for doc in built:
        kube_schemas.validate(doc, KUBE_VERSIONS[-1], strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == namespace, doc["metadata"]["name"]
    policies = next(doc for doc in built if doc["metadata"]["name"] == "turnout-policies")
    assert policies["data"]["default.yaml"] == (ROOT / "policies" / "default.yaml").read_text()


def test_gateway_probes_drain_and_scrape_on_its_port() -> None:
    gateway = objects("Deployment")["turnout-gateway"]
    pod = gateway["spec"]["template"]
    cont = container(gateway)
    assert cont["command"][:2] == ["turnout", "serve"]
    port = int(cont["command"][cont["command"].index("--port") + 1])
    assert port == 8080 and port_number(cont, "http") == port
    ready, live = cont["readinessProbe"]["httpGet"], cont["livenessProbe"]["httpGet"]
    assert (ready["path"], port_number(cont, ready["port"])) == ("/readyz", port)
    assert (live["path"], port_number(cont, live["port"])) == ("/healthz", port)
    grace = pod["spec"]["terminationGracePeriodSeconds"]
    pre_stop = cont["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep" and 0 < int(pre_stop[1]) < grace
    assert grace >= 60
    # uvicorn lets streams finish for this long after SIGTERM: inside the pod's grace, after preStop
    drain = float(objects("ConfigMap")["turnout-config"]["data"]["TURNOUT_SHUTDOWN_GRACE_S"])
    assert drain >= 30 and int(pre_stop[1]) + drain < grace
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port and annotations["prometheus.io/path"] == "/metrics"


def test_gateway_runs_as_non_root_on_a_read_only_root() -> None:
    gateway = objects("Deployment")["turnout-gateway"]
    spec = gateway["spec"]["template"]["spec"]
    cont = container(gateway)
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0
    assert cont["securityContext"]["readOnlyRootFilesystem"] is True
    assert cont["securityContext"]["allowPrivilegeEscalation"] is False
    # what the gateway writes (library caches under HOME, uploads spooled to /tmp) has an emptyDir
    mounts = {m["mountPath"]: m["name"] for m in cont["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    env = {item["name"]: item.get("value") for item in cont["env"]}
    assert env["HOME"] == "/tmp"
    assert objects("ConfigMap")["turnout-config"]["data"]["TURNOUT_HOME"].startswith("/tmp/")


def test_gateway_and_worker_read_the_same_settings_and_policy() -> None:
    deployments = objects("Deployment")
    gateway, worker = container(deployments["turnout-gateway"]), container(deployments["turnout-worker"])
    assert worker["command"][:2] == ["turnout", "worker"] and worker["image"] == gateway["image"]
    metrics_port = int(worker["command"][worker["command"].index("--metrics-port") + 1])
    assert port_number(worker, "metrics") == metrics_port
    assert worker["command"][worker["command"].index("--metrics-host") + 1] == "0.0.0.0"  # not loopback
    annotations = deployments["turnout-worker"]["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == metrics_port
    assert worker["envFrom"] == gateway["envFrom"]
    secrets = {item["name"]: item for item in gateway["env"] if "valueFrom" in item}
    assert {item["name"]: item for item in worker["env"] if "valueFrom" in item} == secrets
    names = env_names(gateway)
    needed = {"TURNOUT_DATABASE_URL", "TURNOUT_REDIS_URL", "TURNOUT_ADMIN_KEY", "TURNOUT_POLICY"}
    assert needed | {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "VLLM_BASE_URL"} <= names
    fields = Settings.model_fields
    aliases = {name.upper() for name, field in fields.items() if field.validation_alias}
    for name in names - {"HOME"}:
        if name.startswith("TURNOUT_"):
            assert name.removeprefix("TURNOUT_").lower() in fields, name
        else:
            assert name in aliases, f"{name} is read by no setting"
    for key in ("TURNOUT_DATABASE_URL", "TURNOUT_ADMIN_KEY"):
        assert not secrets[key]["valueFrom"]["secretKeyRef"].get("optional"), key
    # the policy: the generated ConfigMap, mounted where TURNOUT_POLICY points
    policy = Path(objects("ConfigMap")["turnout-config"]["data"]["TURNOUT_POLICY"])
    for cont in (gateway, worker):
        mount = next(m for m in cont["volumeMounts"] if m["name"] == "policies")
        assert Path(mount["mountPath"]) == policy.parent and mount["readOnly"] is True
    assert policy.name in {Path(name).name for name in generated_files()}


def test_the_policy_copy_is_the_default_policy_and_names_the_vllm_model() -> None:
    copy = K8S / "policies" / "default.yaml"
    assert copy.read_text() == (ROOT / "policies" / "default.yaml").read_text(), (
        "copy policies/default.yaml to router/deploy/k8s/policies/ (kustomize reads nothing above its folder)"
    )
    loaded = load_policy(copy)
    served = container(objects("Deployment")["vllm"])["args"]
    vllm_models = {b.model for b in loaded.policy.backends.values() if b.provider == "vllm"}
    assert served[served.index("--model") + 1] in vllm_models


def test_the_autoscaler_scales_the_gateway_on_cpu_and_requests_in_flight() -> None:
    (hpa,) = objects("HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "turnout-gateway")
    metrics = hpa["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    pods = [m["pods"] for m in metrics if m["type"] == "Pods"]
    assert [p["metric"]["name"] for p in pods] == ["turnout_inflight_requests"]
    assert "turnout_inflight_requests" in EXPECTED_METRICS
    assert hpa["spec"]["minReplicas"] >= 2
    # an apply must not reset the count the autoscaler chose; CPU utilisation needs a request
    gateway = objects("Deployment")["turnout-gateway"]
    assert "replicas" not in gateway["spec"]
    assert container(gateway)["resources"]["requests"]["cpu"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def test_the_disruption_budget_selects_the_gateway_pods() -> None:
    (pdb,) = objects("PodDisruptionBudget").values()
    gateway = objects("Deployment")["turnout-gateway"]
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(gateway))
    others = [w for w in workloads() if w["metadata"]["name"] != "turnout-gateway"]
    assert not any(selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(w)) for w in others)


def test_every_service_selects_a_workload_and_its_ports() -> None:
    for name, service in objects("Service").items():
        selector = service["spec"]["selector"]
        matched = [w for w in workloads() if selects(selector, pod_labels(w))]
        assert len(matched) == 1, f"Service {name} selects {len(matched)} workloads"
        for port in service["spec"]["ports"]:
            assert port_number(container(matched[0]), port.get("targetPort", port["port"])), (name, port)
        assert selects(matched[0]["spec"]["selector"]["matchLabels"], pod_labels(matched[0]))
    for workload in objects("StatefulSet").values():
        assert workload["spec"]["serviceName"] in objects("Service")


def test_the_settings_urls_reach_services() -> None:
    data = objects("ConfigMap")["turnout-config"]["data"]
    ports = {
        (name, port["port"])
        for name, service in objects("Service").items()
        for port in service["spec"]["ports"]
    }
    for key in ("VLLM_BASE_URL", "TURNOUT_REDIS_URL"):
        url = urlsplit(data[key])
        assert (url.hostname, url.port) in ports, key
    assert ("postgres", 5432) in ports  # TURNOUT_DATABASE_URL (a secret) names postgres:5432


def test_vllm_runs_on_a_gpu_node() -> None:
    vllm = objects("Deployment")["vllm"]
    spec = vllm["spec"]["template"]["spec"]
    cont = container(vllm)
    assert cont["image"] == "vllm/vllm-openai:v0.6.4"
    assert cont["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert spec["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    ready = cont["readinessProbe"]["httpGet"]
    assert ready["path"] == "/health" and port_number(cont, ready["port"]) == 8000
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["vllm"]
    assert cont["args"] == compose["command"]


def test_stores_match_docker_compose_and_keep_their_data() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    by_name = {w["metadata"]["name"]: w for w in workloads()}
    for name in ("postgres", "qdrant", "redis", "vllm"):
        assert container(by_name[name])["image"] == compose[name]["image"], name
    postgres = by_name["postgres"]
    assert postgres["kind"] == "StatefulSet" and postgres["spec"]["volumeClaimTemplates"]
    assert container(postgres)["readinessProbe"]["exec"]["command"][0] == "pg_isready"
    assert by_name["qdrant"]["kind"] == "StatefulSet" and by_name["qdrant"]["spec"]["volumeClaimTemplates"]


# --- Grafana ------------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def queries() -> Iterator[tuple[str, str]]:
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def metric_names(expr: str) -> set[str]:
    """The turnout_/gen_ai_ names an expression selects: label names in `by (...)` and in `{...}`
    matchers are removed first, so `by (gen_ai_token_type)` is not taken for a metric."""
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)
    return set(re.findall(r"\b((?:turnout|gen_ai)_[a-z0-9_]+)\s*(?=[{\[)\s]|$)", bare))


def sample_names() -> dict[str, str]:
    """Every series name the gateway exports, mapped to its metric (a histogram's _bucket, _sum, _count)."""
    names = {}
    for name, kind in EXPECTED_METRICS.items():
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        names |= {name + suffix: name for suffix in suffixes}
    return names


def test_metric_names_are_found_in_expressions() -> None:
    expr = 'sum by (backend, gen_ai_token_type) (rate(gen_ai_client_token_usage_sum{route="x"}[5m]))'
    assert metric_names(expr) == {"gen_ai_client_token_usage_sum"}
    assert metric_names("min by (limiter) (turnout_limiter_store_up)") == {"turnout_limiter_store_up"}


def test_dashboard_panels_have_unique_ids_a_datasource_and_no_overlap() -> None:
    board = dashboard()
    assert board["uid"] == "turnout" and 36 <= board["schemaVersion"] <= 41
    panels = board["panels"]
    ids = Counter(panel["id"] for panel in panels)
    assert all(count == 1 for count in ids.values()), ids
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area
        if panel["type"] == "row":  # a row only groups; it queries nothing
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "prometheus" and target["expr"].strip(), panel["title"]
    rows = [panel["title"] for panel in panels if panel["type"] == "row"]
    assert rows == [
        "Traffic",
        "Latency",
        "Tokens and cost",
        "Routing",
        "Sensitivity",
        "Retrieval",
        "Limits and batches",
        "Drift",
    ]


def test_dashboard_queries_name_only_the_gateways_metrics_and_all_of_them() -> None:
    known = sample_names()
    used: set[str] = set()
    for title, expr in queries():
        names = metric_names(expr)
        assert names, f"{title}: {expr} selects no turnout metric"
        assert names <= set(known), f"{title}: unknown {names - set(known)}"
        used |= {known[name] for name in names}
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
    assert used == set(EXPECTED_METRICS), f"not on the dashboard: {set(EXPECTED_METRICS) - used}"


def test_quantiles_come_from_bucket_rates_summed_by_le() -> None:
    quantiles = [(title, expr) for title, expr in queries() if "histogram_quantile" in expr]
    assert len(quantiles) >= 8
    for title, expr in quantiles:
        assert re.search(
            r"histogram_quantile\(0\.\d+, sum by \(le\b[^)]*\) \(rate\(\w+_bucket\[5m\]\)\)\)", expr
        ), (
            title,
            expr,
        )


def test_the_drift_panel_draws_both_psi_thresholds() -> None:
    (drift,) = [p for p in dashboard()["panels"] if "turnout_drift_psi" in json.dumps(p.get("targets", []))]
    defaults = drift["fieldConfig"]["defaults"]
    steps = [step["value"] for step in defaults["thresholds"]["steps"]]
    assert steps == [None, 0.1, 0.25]
    assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"


def test_provisioning_names_the_dashboards_datasource_and_folder() -> None:
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"]) == ("prometheus", "prometheus")
    assert urlsplit(source["url"]).hostname == "prometheus"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "turnout.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"


def compose_config() -> dict[str, Any]:
    if shutil.which("docker-compose") is None:
        if os.environ.get("CI"):
            raise RuntimeError("CI must install docker-compose (make system-deps)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={**os.environ, "TURNOUT_ADMIN_KEY": "compose-check"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_runs_grafana_with_its_files_mounted_read_only() -> None:
    services = compose_config()["services"]
    grafana = services["grafana"]
    assert grafana["image"] == "grafana/grafana:11.3.0"
    assert "prometheus" in grafana["depends_on"]
    assert any(port["target"] == 3000 for port in grafana["ports"])
    mounts = {}
    for volume in grafana["volumes"]:
        source, target, *mode = volume.split(":")  # Compose v1 writes each as SOURCE:TARGET:MODE
        if source.startswith("/"):
            assert Path(source).exists(), source
            assert mode == ["ro"], volume
            mounts[target] = Path(source)
    assert mounts["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    dashboards = mounts["/etc/grafana/dashboards"]
    assert (dashboards / DASHBOARD.name).is_file()
    prometheus_port = services["prometheus"]["ports"][0]["target"]
    datasources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert urlsplit(datasources["datasources"][0]["url"]).port == prometheus_port
