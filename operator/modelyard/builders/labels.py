"""Names and labels shared by everything the operator creates, and by the gateway that
discovers it (EndpointSlices inherit the Service's labels)."""

from __future__ import annotations

GROUP = "modelyard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
ENDPOINT = "modelyard.io/endpoint"
MODEL = "modelyard.io/model"
TRAINING_JOB = "modelyard.io/training-job"
SPEC_HASH = "modelyard.io/spec-hash"
GPU_PRODUCT = "nvidia.com/gpu.product"
GPU_RESOURCE = "nvidia.com/gpu"
FIELD_MANAGER = "modelyard-operator"


def endpoint_labels(endpoint_name: str, model: str) -> dict[str, str]:
    """Labels of an endpoint's Deployment, pods and Service."""
    return {
        INSTANCE: endpoint_name,
        MANAGED_BY: "modelyard",
        NAME: "modelyard-runtime",
        PART_OF: "modelyard",
        ENDPOINT: endpoint_name,
        MODEL: _label_value(model),
    }


def selector(endpoint_name: str) -> dict[str, str]:
    return {ENDPOINT: endpoint_name}


def training_labels(job_name: str, model: str) -> dict[str, str]:
    return {
        INSTANCE: job_name,
        MANAGED_BY: "modelyard",
        NAME: "modelyard-trainer",
        PART_OF: "modelyard",
        TRAINING_JOB: job_name,
        MODEL: _label_value(model),
    }


def owner_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _label_value(value: str) -> str:
    """Label values: at most 63 characters of [-A-Za-z0-9_.], alphanumeric at both ends."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in value)[:63]
    return cleaned.strip("-_.")
