"""spec.autoscaling: bounds and minReplicas <= maxReplicas, in pydantic and in the CRD (CEL),
and the /scale subresource an HPA or KEDA drives an endpoint through."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from modelyard import api
from modelyard.api import crd
from modelyard.registry import manifests


def _endpoint(autoscaling: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": "ModelEndpoint",
        "metadata": {"name": "e"},
        "spec": {"model": "m", "autoscaling": autoscaling},
    }


def test_defaults_fill_what_is_left_out() -> None:
    endpoint = api.ModelEndpoint.model_validate(_endpoint({"maxReplicas": 4}))
    scaling = endpoint.spec.autoscaling
    assert scaling is not None
    assert (scaling.min_replicas, scaling.max_replicas, scaling.target_requests) == (1, 4, 8)
    assert scaling.scale_down_delay_seconds == 300
    assert endpoint.to_wire()["spec"]["autoscaling"]["minReplicas"] == 1


def test_scale_to_zero_is_allowed() -> None:
    endpoint = api.ModelEndpoint.model_validate(_endpoint({"minReplicas": 0, "maxReplicas": 1}))
    assert endpoint.spec.autoscaling is not None and endpoint.spec.autoscaling.min_replicas == 0


@pytest.mark.parametrize(
    ("autoscaling", "field", "words"),
    [
        ({"minReplicas": 5, "maxReplicas": 2}, "spec.autoscaling", "minReplicas must be less than or equal"),
        ({"maxReplicas": 0}, "spec.autoscaling.maxReplicas", "greater than or equal to 1"),
        ({"maxReplicas": 2000}, "spec.autoscaling.maxReplicas", "less than or equal to 1000"),
        ({"minReplicas": -1, "maxReplicas": 2}, "spec.autoscaling.minReplicas", "greater than or equal to 0"),
        (
            {"maxReplicas": 2, "targetRequests": 0},
            "spec.autoscaling.targetRequests",
            "greater than or equal to 1",
        ),
        ({"maxReplicas": 2, "scaleDownDelaySeconds": -5}, "spec.autoscaling.scaleDownDelaySeconds", ">= 0"),
        ({"minReplicas": 1}, "spec.autoscaling.maxReplicas", "Field required"),
    ],
)
def test_bad_values_name_the_field(autoscaling: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        api.ModelEndpoint.model_validate(_endpoint(autoscaling))
    lines = manifests.field_errors(caught.value)
    assert any(line.startswith(f"{field}:") for line in lines), lines
    wanted = words.replace(">= 0", "greater than or equal to 0")
    assert any(wanted in line for line in lines), lines


def _crd() -> dict[str, Any]:
    kind = next(k for k in crd.KINDS if k.model is api.ModelEndpoint)
    return crd.crd_for(kind)


def test_crd_carries_the_cel_rule_with_its_field_path() -> None:
    schema = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    autoscaling = schema["properties"]["spec"]["properties"]["autoscaling"]
    rules = autoscaling["x-kubernetes-validations"]
    assert [r["fieldPath"] for r in rules] == [".minReplicas"]
    assert "minReplicas <= self.maxReplicas" in rules[0]["rule"]
    assert autoscaling["required"] == ["maxReplicas"]
    assert autoscaling["properties"]["maxReplicas"]["minimum"] == 1


def test_scale_subresource_and_columns() -> None:
    version = _crd()["spec"]["versions"][0]
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["selector"]["type"] == "string"
    assert set(status["autoscaling"]["properties"]) == {
        "desiredReplicas",
        "currentReplicas",
        "demand",
        "lastScaleTime",
        "lastScaleReason",
    }
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Desired"] == ".status.autoscaling.desiredReplicas"
    assert columns["Current"] == ".status.autoscaling.currentReplicas"
    assert columns["Demand"] == ".status.autoscaling.demand"
