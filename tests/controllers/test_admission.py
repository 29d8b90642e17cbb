"""The webhook denies contradictions with a clear message and warns where ordering may fix things."""

from __future__ import annotations

from typing import Any

from opkit import apply, status_of

from kit import wait_for


def _entry(name: str, **extra: str) -> str:
    fields = "".join(f"\n  {k}: {v}" for k, v in extra.items())
    return f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEntry
metadata: {{name: {name}}}
spec:
  source: {{provider: local, uri: "file:///nonexistent"}}{fields}
"""


def _endpoint(namespace: str, model: str, name: str = "ep", resources: str = "{gpus: 0}") -> str:
    return f"""
apiVersion: modelyard.io/v1alpha1
kind: ModelEndpoint
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{model: {model}, resources: {resources}}}
"""


def test_endpoint_of_an_entry_that_cannot_serve_is_denied(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"noinf-{namespace}"
    assert (
        apply(
            local_cluster, _entry(model, category="embedding", capabilities="{inference: false}")
        ).returncode
        == 0
    )
    result = apply(local_cluster, _endpoint(namespace, model))
    assert result.returncode != 0
    assert "denied the request" in result.stderr
    assert (
        f"spec.model: ModelEntry '{model}' cannot serve inference (capabilities.inference is false)"
        in result.stderr
    )
    local_cluster.kubectl("delete", "modelentry", model)


def test_gpu_type_too_small_for_the_model_is_denied(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"big-{namespace}"
    entry = _entry(
        model, category="text-llm", requirements="{minVramGb: 60}", inferenceDefaults="{maxModelLen: 32768}"
    )
    assert apply(local_cluster, entry).returncode == 0
    result = apply(local_cluster, _endpoint(namespace, model, resources="{gpus: 1, gpuType: NVIDIA-L4}"))
    assert result.returncode != 0
    assert (
        f"spec.resources.gpuType: {model} needs at least 60 GiB of GPU memory (requirements.minVramGb)"
        in result.stderr
    )
    assert "1x NVIDIA-L4 has 22 GiB" in result.stderr
    fits = apply(
        local_cluster, _endpoint(namespace, model, resources="{gpus: 1, gpuType: NVIDIA-H100-80GB-HBM3}")
    )
    assert fits.returncode == 0, fits.stderr
    local_cluster.kubectl("delete", "modelentry", model)


def test_training_job_of_an_untrainable_entry_is_denied(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"emb-{namespace}"
    assert apply(local_cluster, _entry(model, architecture="BertModel")).returncode == 0
    job = f"""
apiVersion: modelyard.io/v1alpha1
kind: TrainingJob
metadata: {{name: tune, namespace: {namespace}}}
spec: {{model: {model}, dataset: {{uri: "pvc://data/train.jsonl"}}, output: {{uri: "pvc://out/run"}}}}
"""
    result = apply(local_cluster, job)
    assert result.returncode != 0
    assert "cannot be trained (capabilities.training is false, category embedding)" in result.stderr
    local_cluster.kubectl("delete", "modelentry", model)


def test_deprecated_entry_is_a_warning_not_a_denial(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"old-{namespace}"
    assert apply(local_cluster, _entry(model, category="text-llm", lifecycle="deprecated")).returncode == 0
    result = apply(local_cluster, _endpoint(namespace, model))
    assert result.returncode == 0, result.stderr
    assert f"Warning: ModelEntry '{model}' is deprecated" in result.stderr
    local_cluster.kubectl("delete", "modelentry", model)


def test_endpoint_before_its_entry_is_warned_then_proceeds(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"later-{namespace}"
    result = apply(local_cluster, _endpoint(namespace, model))
    assert result.returncode == 0, result.stderr
    assert (
        f"Warning: ModelEntry '{model}' does not exist yet: the endpoint stays Pending until it is applied"
        in result.stderr
    )
    pending = wait_for(
        lambda: (s := status_of(local_cluster, namespace, "ep")).get("reason") == "EntryNotFound" and s,
        15,
        "EntryNotFound",
    )
    assert pending["phase"] == "Pending" and model in pending["message"]
    assert apply(local_cluster, _entry(model, category="text-llm")).returncode == 0
    proceeded = wait_for(
        lambda: (
            (s := status_of(local_cluster, namespace, "ep")).get("reason") not in (None, "EntryNotFound")
            and s
        ),
        20,
        "the endpoint to proceed once its entry exists",
    )
    assert proceeded["servedName"]
    assert local_cluster.kube.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/ep") is not None
    local_cluster.kubectl("delete", "modelentry", model)


def test_kubectl_get_shows_model_served_weight_ready_scale_phase_age(
    local_cluster: Any, operator: Any, namespace: str
) -> None:
    model = f"cols-{namespace}"
    apply(local_cluster, _entry(model, category="text-llm", servedName="cols"))
    apply(local_cluster, _endpoint(namespace, model))
    wait_for(lambda: status_of(local_cluster, namespace, "ep").get("ready"), 15, "status")
    out = local_cluster.kubectl("get", "modelendpoints", "-n", namespace).stdout.splitlines()
    header = [
        "NAME",
        "MODEL",
        "SERVED",
        "WEIGHT",
        "READY",
        "ADAPTERS",
        "DESIRED",
        "CURRENT",
        "DEMAND",
        "PHASE",
        "AGE",
    ]
    assert out[0].split() == header
    row = out[1].split()
    assert row[:5] == ["ep", model, "cols", "100", "0/1"]
    assert (
        len(row) == len(header) - 4
    )  # no adapters, no spec.autoscaling: Adapters, Desired, Current, Demand blank
    assert local_cluster.kubectl("get", "modelyard", "-n", namespace).returncode == 0
    local_cluster.kubectl("delete", "modelentry", model)


def test_bad_adapters_are_denied_naming_the_field(local_cluster: Any, operator: Any, namespace: str) -> None:
    base, other = f"abase-{namespace}", f"aother-{namespace}"
    plain, misfit, good = f"aplain-{namespace}", f"amisfit-{namespace}", f"agood-{namespace}"
    for name, extra in (
        (base, {}),
        (other, {}),
        (plain, {}),
        (misfit, {"adapter": f'{{baseModel: {other}, uri: "file:///a"}}'}),
        (good, {"adapter": f'{{baseModel: {base}, uri: "file:///a"}}'}),
    ):
        assert apply(local_cluster, _entry(name, category="text-llm", **extra)).returncode == 0
    taken = apply(local_cluster, _endpoint(namespace, base, name="taken"))
    assert taken.returncode == 0, taken.stderr
    served = base  # "taken" serves its entry's name

    def adapters(items: str) -> str:
        return _endpoint(namespace, base, name="ep").replace("resources:", f"adapters: {items}, resources:")

    cases = [
        (f"[{{name: x, entry: nope-{namespace}}}]", "spec.adapters[0].entry: ModelEntry 'nope-"),
        (f"[{{name: x, entry: {plain}}}]", "is not an adapter"),
        (f"[{{name: x, entry: {misfit}}}]", f"adapts '{other}', not this endpoint's base '{base}'"),
        (f"[{{name: {served}, uri: 'file:///a'}}]", "spec.adapters[0].name"),
        ("[{name: x, uri: 'file:///a'}, {name: x, uri: 'file:///b'}]", "adapters must have unique names"),
        ("[{name: x}]", "exactly one of entry or uri"),
    ]
    for items, words in cases:
        result = apply(local_cluster, adapters(items))
        assert result.returncode != 0, items
        assert words in result.stderr, (items, result.stderr)
    ok = apply(local_cluster, adapters(f"[{{name: tuned-{namespace}, entry: {good}}}]"))
    assert ok.returncode == 0, ok.stderr
    local_cluster.kubectl("delete", "modelendpoint", "ep", "taken", "-n", namespace)
    local_cluster.kubectl("delete", "modelentry", base, other, plain, misfit, good)
