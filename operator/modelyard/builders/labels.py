"""The labels and owner references of everything the operator creates (the keys themselves are
:mod:`modelyard.api.wire`'s: the gateway reads them too)."""

from __future__ import annotations

from modelyard.api import wire

FIELD_MANAGER = "modelyard-operator"
"""The operator's field manager in server-side apply."""


def endpoint_labels(endpoint_name: str, model: str) -> dict[str, str]:
    """Labels of an endpoint's Deployment, pods and Service."""
    return _labels(endpoint_name, "modelyard-runtime", wire.ENDPOINT, model)


def selector(endpoint_name: str) -> dict[str, str]:
    return {wire.ENDPOINT: endpoint_name}


def selector_text(endpoint_name: str) -> str:
    """:func:`selector` as a label-selector string: ``status.selector``, which the /scale
    subresource hands an HPA."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector(endpoint_name).items()))


def training_labels(job_name: str, model: str) -> dict[str, str]:
    """Labels of a training job's batch Job, pods and NetworkPolicy."""
    return _labels(job_name, "modelyard-trainer", wire.TRAINING_JOB, model)


def _labels(owner_name: str, app: str, owner_key: str, model: str) -> dict[str, str]:
    return {
        wire.INSTANCE: owner_name,
        wire.MANAGED_BY: wire.PRODUCT,
        wire.NAME: app,
        wire.PART_OF: wire.PRODUCT,
        owner_key: owner_name,
        wire.MODEL: _label_value(model),
    }


def owner_reference(kind: str, name: str, uid: str) -> dict[str, object]:
    return {
        "apiVersion": wire.API_VERSION,
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
