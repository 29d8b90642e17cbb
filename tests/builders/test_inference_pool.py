"""The InferencePool of a served name: its name, its selector's label, and what it points at.

Served names are not always names or label values (``Qwen/Qwen3-4B``, 80 characters, emoji):
both are then a safe prefix plus a hash of the whole name, so two served names never share a
pool or a label value, and a name that is already valid is kept as it is.
"""

from __future__ import annotations

import re

from factories import endpoint, entry

from modelyard.api import wire
from modelyard.builders import deployment, inference_pool, settings

POOLS = settings.InferencePools()
CFG = settings.Settings(inference_pools=POOLS)
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
AWKWARD = ["Qwen/Qwen3-4B", "meta-llama/Llama-3.2-1B-Instruct", "x" * 80, "chat:latest", "🦙", "-a-", "7b"]


def test_a_valid_served_name_is_its_own_label_and_pool_name() -> None:
    assert inference_pool.served_name_label("Llama-3.2_1B") == "Llama-3.2_1B"
    assert inference_pool.pool_name("llama-3-8b") == "llama-3-8b"


def test_other_served_names_get_a_safe_prefix_and_a_hash() -> None:
    labels = [inference_pool.served_name_label(n) for n in AWKWARD]
    names = [inference_pool.pool_name(n) for n in AWKWARD]
    assert all(LABEL_VALUE.fullmatch(v) and len(v) <= 63 for v in labels), labels
    # <pool>-epp must be a Service name too: a DNS label of at most 63 characters
    assert all(DNS_LABEL.fullmatch(n) and len(n + "-epp") <= 63 for n in names), names
    assert len(set(labels)) == len(set(names)) == len(AWKWARD)
    assert names[0].startswith("qwen-qwen3-4b-") and labels[0].startswith("Qwen-Qwen3-4B-")
    # case matters to the gateway, so "Llama" and "llama" are two pools
    assert inference_pool.pool_name("Llama") != inference_pool.pool_name("llama")


def test_the_pool_selects_the_runtime_pods_of_the_served_name_on_the_runtime_port() -> None:
    pool = inference_pool.build_pool("ml", "Qwen/Qwen3-4B", [("b", "uid-b"), ("a", "uid-a")], CFG, POOLS)
    name = inference_pool.pool_name("Qwen/Qwen3-4B")
    label = inference_pool.served_name_label("Qwen/Qwen3-4B")
    assert (pool["apiVersion"], pool["kind"]) == ("inference.networking.k8s.io/v1", "InferencePool")
    assert pool["metadata"]["name"] == name and pool["metadata"]["namespace"] == "ml"
    assert pool["metadata"]["annotations"] == {wire.SERVED_NAME: "Qwen/Qwen3-4B"}
    assert [r["name"] for r in pool["metadata"]["ownerReferences"]] == ["a", "b"]
    assert not any(r.get("controller") for r in pool["metadata"]["ownerReferences"])
    spec = pool["spec"]
    assert spec["selector"] == {
        "matchLabels": {"app.kubernetes.io/name": "modelyard-runtime", wire.SERVED_NAME: label}
    }
    assert spec["targetPorts"] == [{"number": CFG.runtime_port}]
    assert spec["endpointPickerRef"] == {
        "kind": "Service",
        "name": f"{name}-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }
    assert inference_pool.ours(pool, "Qwen/Qwen3-4B") and not inference_pool.ours(pool, "other")


def test_the_endpoint_picker_is_named_by_the_settings() -> None:
    pools = settings.InferencePools(endpoint_picker="shared-epp", port=9102, failure_mode="FailOpen")
    ref = inference_pool.build_pool("ml", "chat", [("a", "u")], CFG, pools)["spec"]["endpointPickerRef"]
    assert (ref["name"], ref["port"], ref["failureMode"]) == ("shared-epp", {"number": 9102}, "FailOpen")


def test_runtime_pods_carry_the_served_name_label_only_with_pools_on() -> None:
    e = entry(servedName="Qwen/Qwen3-4B")
    on = deployment.build_deployment(endpoint(), e, CFG, owner_uid="u")
    off = deployment.build_deployment(endpoint(), e, settings.Settings(), owner_uid="u")
    label = on["spec"]["template"]["metadata"]["labels"][wire.SERVED_NAME]
    assert label == inference_pool.served_name_label("Qwen/Qwen3-4B")
    assert wire.SERVED_NAME not in off["spec"]["template"]["metadata"]["labels"]
    assert on["spec"]["selector"] == off["spec"]["selector"]  # the Deployment's selector is unchanged
