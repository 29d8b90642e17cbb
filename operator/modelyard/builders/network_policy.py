"""ModelEndpoint / TrainingJob -> the NetworkPolicy that lets only the gateway and the operator
reach its pods (pure).

Runtime and trainer pods run images a namespace user chose, in namespaces the chart does not
know, so the operator builds one policy per endpoint and per training job, owned by it (deleted
with it), when ``Settings.network_policy_from`` is set (``--network-policy-from``, the chart's
``networkPolicies.enabled``). Ingress is allowed only

* to the pod's serving port (``http`` of a runtime, ``progress`` of a trainer),
* from pods in ``Settings.network_policy_namespace`` with the ``network_policy_from`` labels.

NetworkPolicies add up: a platform that scrapes runtime pods from elsewhere (Prometheus) adds
its own policy beside this one. Egress is left alone (a runtime downloads its model).
"""

from __future__ import annotations

from typing import Any

from modelyard import api
from modelyard.api import wire
from modelyard.builders import labels, settings

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""Every namespace carries its own name in this label (set by the API server)."""


def _policy(
    name: str,
    namespace: str,
    pod_labels: dict[str, str],
    selector: dict[str, str],
    port: str,
    cfg: settings.Settings,
    owner: dict[str, object],
) -> dict[str, Any]:
    peers = dict(sorted(cfg.network_policy_from or ()))
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": pod_labels,
            "ownerReferences": [owner],
        },
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {NAMESPACE_NAME_LABEL: cfg.network_policy_namespace}
                            },
                            "podSelector": {"matchLabels": peers},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }


def build_endpoint_policy(
    endpoint: api.ModelEndpoint, cfg: settings.Settings, *, owner_uid: str, model: str
) -> dict[str, Any] | None:
    """The endpoint's pods take traffic on ``http`` from the gateway and the operator only;
    None when the operator builds no policies."""
    if cfg.network_policy_from is None:
        return None
    name = endpoint.name
    return _policy(
        name,
        endpoint.namespace or "",
        labels.endpoint_labels(name, model),
        labels.selector(name),
        wire.HTTP_PORT,
        cfg,
        labels.owner_reference("ModelEndpoint", name, owner_uid),
    )


def build_training_policy(
    job: api.TrainingJob, cfg: settings.Settings, *, owner_uid: str
) -> dict[str, Any] | None:
    """The trainer pod takes traffic on ``progress`` from the operator (and gateway) only."""
    if cfg.network_policy_from is None:
        return None
    name = job.name
    return _policy(
        name,
        job.namespace or "",
        labels.training_labels(name, job.spec.model),
        {wire.TRAINING_JOB: name},
        wire.PROGRESS_PORT_NAME,
        cfg,
        labels.owner_reference("TrainingJob", name, owner_uid),
    )
