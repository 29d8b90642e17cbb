"""ModelEndpoint -> the Service in front of its runtime pods (port ``http``)."""

from __future__ import annotations

from typing import Any

from modelyard import api
from modelyard.api import wire
from modelyard.builders import labels, settings


def build_service(
    endpoint: api.ModelEndpoint, cfg: settings.Settings, *, owner_uid: str, model: str
) -> dict[str, Any]:
    name = endpoint.name
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": endpoint.namespace,
            "labels": labels.endpoint_labels(name, model),
            "ownerReferences": [labels.owner_reference("ModelEndpoint", name, owner_uid)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": labels.selector(name),
            "ports": [
                {
                    "name": wire.HTTP_PORT,
                    "port": cfg.runtime_port,
                    "targetPort": wire.HTTP_PORT,
                    "protocol": "TCP",
                }
            ],
        },
    }


def service_url(endpoint: api.ModelEndpoint, cfg: settings.Settings) -> str:
    return f"http://{endpoint.name}.{endpoint.namespace}.svc.{cfg.cluster_domain}:{cfg.runtime_port}/v1"
