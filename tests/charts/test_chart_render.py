"""charts/modelyard renders what the issue asks, lints clean, and pins its output in golden files.

Regenerate the golden files after an intended change with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/charts/test_chart_render.py`` and review the diff.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import chartkit
import pytest

from modelyard.api import crd_cli


@pytest.mark.parametrize("values", [None, chartkit.ALL_OPTIONS], ids=["default", "all-options"])
def test_helm_lint_is_clean(values: Any) -> None:
    extra = ["--values", str(values)] if values else []
    result = chartkit.helm("lint", "--strict", str(chartkit.CHART), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


@pytest.mark.parametrize("name", ["default", "all-options"])
def test_rendered_manifests_match_the_golden_files(name: str) -> None:
    extra = ["--values", str(chartkit.ALL_OPTIONS)] if name == "all-options" else []
    rendered = chartkit.masked(chartkit.template(*extra))
    golden = chartkit.GOLDEN / f"{name}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
    assert golden.read_text() == rendered, (
        f"{golden.name} is stale: if the change is intended, run UPDATE_GOLDEN=1 pytest {__file__}"
    )


def test_default_object_names_are_the_contract_other_tools_use() -> None:
    docs = chartkit.documents(chartkit.template())
    for kind, name in [
        ("Deployment", "modelyard-operator"), ("ServiceAccount", "modelyard-operator"),
        ("Deployment", "modelyard-gateway"), ("Service", "modelyard-gateway"),
        ("Service", "modelyard-status-api"), ("Service", "modelyard-webhook"),
        ("ValidatingWebhookConfiguration", "modelyard-webhook"),
    ]:  # fmt: skip
        chartkit.find(docs, kind, name)
    ports = {
        name: chartkit.find(docs, "Service", name)["spec"]["ports"][0]
        for name in ("modelyard-gateway", "modelyard-status-api", "modelyard-webhook")
    }
    assert ports["modelyard-gateway"]["port"] == 8000
    assert ports["modelyard-status-api"]["port"] == 8080
    assert (ports["modelyard-webhook"]["port"], ports["modelyard-webhook"]["targetPort"]) == (443, "webhook")
    operator = chartkit.find(docs, "Deployment", "modelyard-operator")["spec"]["template"]["spec"]
    container = operator["containers"][0]
    assert container["command"] == ["modelyard", "operator"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "http": 8080, "metrics": 9090, "webhook": 9443,
    }  # fmt: skip
    assert "--webhook-service=modelyard-system/modelyard-webhook" in container["args"]
    assert "--runtime-image=ghcr.io/modelyard/runtime:0.1.0" in container["args"]
    assert container["image"] == "ghcr.io/modelyard/modelyard:0.1.0"


def test_crds_are_templates_kept_on_uninstall_and_can_be_left_out() -> None:
    docs = chartkit.documents(chartkit.template())
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    assert sorted(c["metadata"]["name"] for c in crds) == [
        "modelendpoints.modelyard.io", "modelentries.modelyard.io", "trainingjobs.modelyard.io",
    ]  # fmt: skip
    assert all(c["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"} for c in crds)
    unkept = chartkit.documents(chartkit.template("--set", "crds.keep=false"))
    unkept_crds = [d for d in unkept if d["kind"] == "CustomResourceDefinition"]
    assert unkept_crds and all(not d["metadata"].get("annotations") for d in unkept_crds)
    without = chartkit.documents(chartkit.template("--set", "crds.enabled=false"))
    assert not [d for d in without if d["kind"] == "CustomResourceDefinition"]


def test_chart_crds_are_generated_from_the_api_models() -> None:
    directory = chartkit.CHART / "templates" / "crds"
    on_disk = {p.name: p.read_text() for p in directory.glob("*.yaml")}
    assert on_disk == crd_cli.chart_templates(), "run `modelyard crds generate` (it writes the chart too)"


def test_crds_check_covers_the_chart(tmp_path: Path) -> None:
    check = [sys.executable, "-m", "modelyard", "crds", "check"]
    clean = subprocess.run(check, cwd=chartkit.ROOT, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout
    chart = tmp_path / "chart"
    shutil.copytree(chartkit.CHART, chart)
    victim = chart / "templates" / "crds" / "modelyard.io_modelendpoints.yaml"
    victim.write_text(victim.read_text().replace("minimum: 0", "minimum: 1"))
    stale = subprocess.run([*check, "--chart", str(chart)], cwd=chartkit.ROOT, capture_output=True, text=True)
    assert stale.returncode == 1
    assert f"{victim}: differs from the API models" in stale.stdout


def test_optional_objects_appear_only_when_enabled() -> None:
    default = {(d["kind"], d["metadata"]["name"]) for d in chartkit.documents(chartkit.template())}
    full = {
        (d["kind"], d["metadata"]["name"])
        for d in chartkit.documents(chartkit.template("--values", str(chartkit.ALL_OPTIONS)))
    }
    optional = {
        ("HorizontalPodAutoscaler", "modelyard-gateway"), ("PodDisruptionBudget", "modelyard-gateway"),
        ("ServiceMonitor", "modelyard-operator"), ("ServiceMonitor", "modelyard-gateway"),
        ("ConfigMap", "modelyard-dashboard"),
    }  # fmt: skip
    assert optional <= full
    assert not optional & default
    no_gateway = chartkit.documents(chartkit.template("--set", "gateway.enabled=false"))
    assert not [d for d in no_gateway if d["metadata"]["name"].startswith("modelyard-gateway")]


def test_gateway_key_secret_from_values_or_an_existing_secret() -> None:
    docs = chartkit.documents(chartkit.template("--set", "gateway.auth.keys.alice=sk-alice"))
    secret = chartkit.find(docs, "Secret", "modelyard-gateway-keys")
    assert secret["data"] == {"alice": "c2stYWxpY2U="}
    docs = chartkit.documents(chartkit.template("--set", "gateway.auth.existingSecret=my-keys"))
    secrets = [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"]
    assert not [name for name in secrets if name.startswith("modelyard-gateway")]
    args = chartkit.find(docs, "Deployment", "modelyard-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert "--keys-secret=my-keys" in args["args"]
    role = chartkit.find(docs, "Role", "modelyard-gateway")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["my-keys"],
         "verbs": ["get", "list", "watch"]},
    ]  # fmt: skip
    off = chartkit.documents(chartkit.template("--set", "gateway.auth.enabled=false"))
    gateway = chartkit.find(off, "Deployment", "modelyard-gateway")["spec"]["template"]["spec"]
    assert "--no-auth" in gateway["containers"][0]["args"]
    assert not [a for a in gateway["containers"][0]["args"] if a.startswith("--keys-secret")]
    assert not [d for d in off if d["kind"] == "Role" and d["metadata"]["name"] == "modelyard-gateway"]


def test_default_values_render_a_generated_key_and_no_open_gateway(tmp_path: Path) -> None:
    """No keys given: the chart's Secret holds one random key (a new one each render, since
    ``helm template`` cannot look up the live Secret; ``helm upgrade`` keeps the live one)."""
    first, second = chartkit.template(), chartkit.template()
    keys = []
    for text in (first, second):
        docs = chartkit.documents(text)
        secret = chartkit.find(docs, "Secret", "modelyard-gateway-keys")
        assert list(secret["data"]) == ["default"]
        key = base64.b64decode(secret["data"]["default"]).decode()
        assert re.fullmatch(r"sk-[A-Za-z0-9]{48}", key), key
        keys.append(key)
        args = chartkit.find(docs, "Deployment", "modelyard-gateway")["spec"]["template"]["spec"][
            "containers"
        ][0]["args"]
        assert "--keys-secret=modelyard-gateway-keys" in args and "--no-auth" not in args
    assert keys[0] != keys[1]
    assert chartkit.masked(first) == chartkit.masked(second)
    notes = chartkit.notes(tmp_path / "default")
    read = "get secret modelyard-gateway-keys -o jsonpath='{.data.default}' | base64 -d"
    assert f"kubectl -n {chartkit.NAMESPACE} {read}" in notes
    assert "WARNING" not in notes
    opened = chartkit.notes(tmp_path / "open", "--set", "gateway.auth.enabled=false")
    assert "WARNING: gateway.auth.enabled=false" in opened


def test_pods_run_non_root_with_read_only_root_and_resource_requests() -> None:
    docs = chartkit.documents(chartkit.template())
    for name in ("modelyard-operator", "modelyard-gateway"):
        pod = chartkit.find(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"]["cpu"]
        assert container["readinessProbe"]["httpGet"]["port"] == "http"
        env = {e["name"]: e for e in container["env"]}
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        service_account = env["MODELYARD_SERVICE_ACCOUNT_DIR"]["value"]
        assert service_account == "/var/run/secrets/kubernetes.io/serviceaccount"
        assert "--host=$(POD_IP)" in container["args"]


def test_bind_pod_ip_or_all_addresses() -> None:
    for value, address in (("true", "$(POD_IP)"), ("false", "0.0.0.0")):
        docs = chartkit.documents(chartkit.template("--set", f"bindPodIP={value}"))
        for name in ("modelyard-operator", "modelyard-gateway"):
            pod = chartkit.find(docs, "Deployment", name)["spec"]["template"]["spec"]
            assert f"--host={address}" in pod["containers"][0]["args"]
        operator = chartkit.find(docs, "Deployment", "modelyard-operator")
        assert f"--webhook-host={address}" in operator["spec"]["template"]["spec"]["containers"][0]["args"]


def _metric_names() -> set[str]:
    from modelyard.controllers import metrics as operator_metrics
    from modelyard.gateway import metrics as gateway_metrics

    names: set[str] = set()
    gateway = gateway_metrics.Metrics()
    gateway.watch_spills(dict)  # the collector of the balancer's PrefixHash spills
    registries = [operator_metrics.Metrics.create().registry, gateway.registry]
    by_type = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
    for registry in registries:
        for family in registry.collect():
            suffixes = by_type.get(family.type, [""])
            names.update(family.name + s for s in suffixes)
    return names


def test_grafana_dashboard_queries_only_metrics_the_code_exports() -> None:
    docs = chartkit.documents(chartkit.template("--values", str(chartkit.ALL_OPTIONS)))
    config_map = chartkit.find(docs, "ConfigMap", "modelyard-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["namespace"] == "monitoring"
    dashboard = json.loads(config_map["data"]["modelyard.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\bmodelyard_[a-z_]+", e)}
    exported = _metric_names()
    assert used, "the dashboard queries nothing"
    assert used <= exported, f"not exported by the code: {sorted(used - exported)}"
    families = {n.removesuffix("_total").removesuffix("_bucket") for n in used}
    every = {n.removesuffix("_total").removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
             for n in exported}  # fmt: skip
    assert every <= families, f"metrics without a panel: {sorted(every - families)}"


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("gateway.replicas=many", "/gateway/replicas"),
        ("gateway.service.type=Ingress", "/gateway/service/type"),
        ("operator.webhook.port=70000", "/operator/webhook/port"),
        ("gateway.autoscaling.targetCPUUtilizationPercentage=0", "targetCPUUtilizationPercentage"),
        ("gateway.sevice.port=1", "sevice"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("crds.enabled=maybe", "/crds/enabled"),
        ("operator.registration.mode=overwrite", "/operator/registration/mode"),
    ],
)
def test_schema_rejects_bad_values_naming_the_value(setting: str, named: str) -> None:
    result = chartkit.helm("template", "modelyard", str(chartkit.CHART), "--set", setting)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr, result.stderr
