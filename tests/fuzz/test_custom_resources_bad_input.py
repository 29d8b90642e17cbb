"""Custom resources through ``kubectl apply``: generated bad objects are denied naming the field
and what is allowed; odd but valid objects get a status; the operator never falls over.

Bad objects go through ``kubectl apply --dry-run=server``: the API server still decodes them
strictly, validates the schema and CEL rules and calls the operator's webhook, but stores
nothing. Odd-but-valid endpoints are applied for real so the operator reconciles them.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import crd_rules
import crd_schema
import pytest
from fuzzkit import bounded
from hypothesis import example, given
from hypothesis import strategies as st

from kit import wait_for
from modelyard.registry import gpus

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

GROUP_PATH = "/apis/modelyard.io/v1alpha1"


def _apply(cluster: Any, manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("apply", *extra, "-f", "-", input=manifest, check=False)  # type: ignore[no-any-return]


def _dry_run(cluster: Any, manifest: str) -> subprocess.CompletedProcess[str]:
    return _apply(cluster, manifest, "--dry-run=server")


def _manifest(kind: str, name: str, namespace: str, spec: Any, labels: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": name, "labels": labels or {}}
    if crd_schema.SCHEMAS[kind][1]:
        meta["namespace"] = namespace
    return json.dumps({"apiVersion": "modelyard.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec})


class Fixture:
    """A namespace and the real entries the webhook cases refer to (all deleted afterwards)."""

    def __init__(self, cluster: Any, operator: Any) -> None:
        self.cluster = cluster
        self.operator = operator
        self.suffix = uuid.uuid4().hex[:6]
        self.namespace = f"fuzz-{self.suffix}"
        self.labels = {"modelyard.io/fuzz": self.suffix}
        self.noinf = f"fuzz-noinf-{self.suffix}"
        self.big = f"fuzz-big-{self.suffix}"
        self.needs100 = f"fuzz-100gib-{self.suffix}"
        self.bert = f"fuzz-bert-{self.suffix}"
        self.llama = f"fuzz-llama-{self.suffix}"

    def entries(self) -> str:
        local = {"provider": "local", "uri": "file:///nonexistent/fuzz"}
        specs = {
            self.noinf: {"source": local, "category": "embedding", "capabilities": {"inference": False}},
            self.big: {"source": local, "category": "text-llm", "requirements": {"minVramGb": 100000}},
            self.needs100: {"source": local, "category": "text-llm", "requirements": {"minVramGb": 100}},
            self.bert: {"source": local, "architecture": "BertModel"},
            self.llama: {"source": local, "architecture": "LlamaForCausalLM", "servedName": self.llama},
        }
        return "\n".join(_manifest("ModelEntry", n, "", s, self.labels) for n, s in specs.items())

    def log(self) -> str:
        return str(self.operator.log.read_text(errors="replace"))


@pytest.fixture(scope="module")
def fx(operator_ready_cluster: Any, operator: Any) -> Iterator[Fixture]:
    cluster = operator_ready_cluster
    f = Fixture(cluster, operator)
    cluster.kubectl("create", "namespace", f.namespace)
    wait_for(
        lambda: cluster.kube.get(f"/api/v1/namespaces/{f.namespace}/serviceaccounts/default"),
        60,
        "the default ServiceAccount",
    )
    result = _apply(cluster, f.entries())
    assert result.returncode == 0, result.stderr
    f.log_start = len(f.log())  # type: ignore[attr-defined]
    yield f
    cluster.kubectl("delete", "namespace", f.namespace, "--wait=false", check=False)
    selector = f"modelyard.io/fuzz={f.suffix}"
    cluster.kubectl("delete", "modelentries", "-l", selector, "--wait=false", check=False)


@bounded(150)
@given(mutation=crd_schema.schema_mutations())
def test_a_field_against_its_schema_is_denied_naming_it(fx: Fixture, mutation: crd_schema.Mutation) -> None:
    result = _dry_run(fx.cluster, mutation.manifest("fuzz-dry", fx.namespace))
    denial = result.stderr
    assert result.returncode != 0, f"{mutation.path} ({mutation.what}) was accepted:\n{result.stdout}"
    assert mutation.path in denial, f"{mutation.path} ({mutation.what}) not named in:\n{denial}"
    assert any(word in denial for word in mutation.allowed), (
        f"{mutation.path} ({mutation.what}): none of {mutation.allowed} in:\n{denial}"
    )


def test_every_cel_rule_has_a_violation_strategy() -> None:
    covered = [rule for _, _, rule, _ in crd_rules.CASES]
    missing = [rule.message for rule in crd_rules.all_rules() if rule not in covered]
    assert not missing, f"rules without a violation strategy in crd_rules.CASES: {missing}"


@bounded(40)
@given(violation=crd_rules.violations())
def test_a_cel_rule_broken_is_denied_with_its_message(fx: Fixture, violation: crd_rules.Violation) -> None:
    result = _dry_run(fx.cluster, _manifest(violation.kind, "fuzz-cel", fx.namespace, violation.spec))
    assert result.returncode != 0, f"{violation.rule.message!r} not enforced for {violation.spec}"
    assert f"{violation.path}: Invalid value" in result.stderr, result.stderr
    assert violation.rule.message in result.stderr, result.stderr


GPU_TYPES = sorted(gpus.MEMORY_GIB) + sorted(gpus.ALIASES)


def _case_mangled(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.upper()])


@bounded(30)
@given(
    gpu_type=st.sampled_from(GPU_TYPES).flatmap(_case_mangled),
    count=st.integers(1, 8),
    weight=st.integers(0, 1000),
)
def test_the_webhook_denies_a_gpu_too_small_and_allows_one_big_enough(
    fx: Fixture, gpu_type: str, count: int, weight: int
) -> None:
    spec = {"model": fx.needs100, "replicas": 0, "weight": weight,
            "resources": {"gpus": count, "gpuType": gpu_type}}  # fmt: skip
    result = _dry_run(fx.cluster, _manifest("ModelEndpoint", "fuzz-gpu", fx.namespace, spec))
    available = gpus.memory_gib(gpu_type) * count
    if available < 100:
        assert result.returncode != 0, f"{count}x {gpu_type} ({available} GiB) accepted for 100 GiB"
        assert "spec.resources.gpuType: " in result.stderr
        assert "needs at least 100 GiB of GPU memory (requirements.minVramGb)" in result.stderr
        assert f"has {available:g} GiB" in result.stderr
    else:
        assert result.returncode == 0, result.stderr


@bounded(30)
@given(
    case=st.sampled_from(["noinf", "big", "unknown-gpu", "untrainable"]),
    gpu_count=st.integers(0, 64),
    junk=st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1, max_size=20),
    method=st.sampled_from(["lora", "qlora", "full"]),
)
def test_the_webhook_denies_contradictions_with_other_objects(
    fx: Fixture, case: str, gpu_count: int, junk: str, method: str
) -> None:
    if case == "untrainable":
        spec: dict[str, Any] = {"model": fx.bert, "method": method, "dataset": {"uri": "file:///d.jsonl"},
                                "output": {"uri": "file:///out"}}  # fmt: skip
        kind, field = "TrainingJob", "spec.model: "
    elif case == "noinf":
        spec = {"model": fx.noinf, "replicas": 0, "resources": {"gpus": gpu_count}}
        kind, field = "ModelEndpoint", f"spec.model: ModelEntry '{fx.noinf}' cannot serve inference"
    elif case == "big":
        spec = {"model": fx.big, "replicas": 0, "resources": {"gpus": gpu_count, "gpuType": "H100"}}
        kind, field = "ModelEndpoint", "spec.resources.gpuType: "
    else:
        known = {t.lower() for t in GPU_TYPES}
        gpu_type = junk if junk.lower() not in known else junk + "-x"
        spec = {"model": fx.llama, "replicas": 0, "resources": {"gpus": 1, "gpuType": gpu_type}}
        kind, field = "ModelEndpoint", "spec.resources.gpuType: unknown gpuType"
    result = _dry_run(fx.cluster, _manifest(kind, "fuzz-webhook", fx.namespace, spec))
    assert result.returncode != 0, f"{case} accepted: {spec}"
    assert "denied the request" in result.stderr, result.stderr
    assert field in result.stderr, result.stderr


def _status(fx: Fixture, name: str) -> dict[str, Any]:
    found = fx.cluster.kube.get(f"{GROUP_PATH}/namespaces/{fx.namespace}/modelendpoints/{name}") or {}
    status = found.get("status") or {}
    generation = found.get("metadata", {}).get("generation")
    return dict(status) if status.get("observedGeneration") == generation and status.get("phase") else {}


@bounded(16, shrink=False)
@given(data=st.data())
def test_odd_but_valid_endpoints_get_a_status(fx: Fixture, data: st.DataObject) -> None:
    models = [fx.llama, fx.needs100, f"fuzz-absent-{fx.suffix}"]
    spec = data.draw(crd_rules.odd_endpoints(models))
    name = f"odd-{uuid.uuid4().hex[:8]}"
    result = _apply(fx.cluster, _manifest("ModelEndpoint", name, fx.namespace, spec))
    assert result.returncode == 0, result.stderr
    status = wait_for(lambda: _status(fx, name), 60, f"a status on {name} ({spec})")
    assert status["phase"] in ("Pending", "Progressing", "Ready", "Degraded", "Failed")
    if spec["model"].startswith("fuzz-absent-"):
        assert status["phase"] == "Pending"


def _entry_status(fx: Fixture, name: str) -> dict[str, Any]:
    found = fx.cluster.kube.get(f"{GROUP_PATH}/modelentries/{name}") or {}
    status = found.get("status") or {}
    generation = found.get("metadata", {}).get("generation")
    return dict(status) if status.get("observedGeneration") == generation and status.get("phase") else {}


@bounded(12, shrink=False)
@given(spec=crd_rules.odd_entries())
@example(  # found by this test: the registry indexed 'architectures' before checking it is a list
    spec={"source": {"provider": "local", "uri": "file:///x"}, "architecture": "LlamaForCausalLM",
          "config": {"inline": {"architectures": {"a": 1}}}},
)  # fmt: skip
def test_entries_with_a_junk_config_get_a_status_and_the_webhook_still_answers(
    fx: Fixture, spec: dict[str, Any]
) -> None:
    name = f"fuzz-odd-{uuid.uuid4().hex[:8]}"
    result = _apply(fx.cluster, _manifest("ModelEntry", name, "", spec, fx.labels))
    assert result.returncode == 0, result.stderr
    status = wait_for(lambda: _entry_status(fx, name), 60, f"a status on {name} ({spec})")
    assert status["phase"] in ("Valid", "Invalid")
    if status["phase"] == "Invalid":
        assert status.get("reason"), status
    endpoint = {"model": name, "replicas": 0, "resources": {"gpus": 1, "gpuType": "NVIDIA-L4"}}
    checked = _dry_run(fx.cluster, _manifest("ModelEndpoint", "fuzz-on-odd", fx.namespace, endpoint))
    assert "failed calling webhook" not in checked.stderr, checked.stderr
    assert checked.returncode == 0 or "denied the request: spec." in checked.stderr, checked.stderr


@bounded(10, shrink=False)
@given(data=st.data())
def test_odd_but_valid_training_jobs_get_a_status(fx: Fixture, data: st.DataObject) -> None:
    spec = data.draw(crd_rules.odd_training_jobs([fx.llama, f"fuzz-absent-{fx.suffix}"]))
    name = f"odd-{uuid.uuid4().hex[:8]}"
    result = _apply(fx.cluster, _manifest("TrainingJob", name, fx.namespace, spec))
    if result.returncode != 0:  # the webhook may refuse a method the entry cannot take
        assert "denied the request: spec." in result.stderr, result.stderr
        return
    path = f"{GROUP_PATH}/namespaces/{fx.namespace}/trainingjobs/{name}"
    status = wait_for(
        lambda: (
            (fx.cluster.kube.get(path) or {}).get("status", {}).get("phase")
            and fx.cluster.kube.get(path)["status"]
        ),
        60,
        f"a status on {name} ({spec})",
    )
    assert status["phase"] in ("Pending", "Running", "Succeeded", "Failed"), status


def test_the_operator_is_alive_and_still_reconciling(fx: Fixture) -> None:
    """Runs last in the module: after everything above, a fresh endpoint still gets its Deployment."""
    assert fx.operator.process is not None and fx.operator.process.poll() is None, "the operator exited"
    spec = {"model": fx.llama, "replicas": 0, "resources": {"gpus": 0}}
    assert _apply(fx.cluster, _manifest("ModelEndpoint", "fresh", fx.namespace, spec)).returncode == 0
    wait_for(
        lambda: fx.cluster.kube.get(f"/apis/apps/v1/namespaces/{fx.namespace}/deployments/fresh"),
        60,
        "the fresh endpoint's Deployment",
    )
    assert wait_for(lambda: _status(fx, "fresh"), 60, "the fresh endpoint's status")
    new_log = fx.log()[fx.log_start :]  # type: ignore[attr-defined]
    assert "Traceback" not in new_log, new_log[new_log.index("Traceback") - 2000 :][:6000]
