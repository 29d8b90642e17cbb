"""The admission webhook as the API server reaches it: a URL on this machine, or a Service.

Out of a cluster (``modelyard operator`` on a laptop or in the tests) kopf manages the webhook
configurations itself (``settings.admission.managed``) and registers a URL client config at
``--webhook-host``. In a cluster (the Helm chart) the API server must reach the operator
through its Service, with a certificate for the Service's DNS names, and the operator should
not need the right to *create* webhook configurations (it cannot be narrowed to one name). So
the chart owns an empty ValidatingWebhookConfiguration and :class:`ServiceWebhookServer`
only patches its ``webhooks`` (``get``/``patch`` on that one name): Helm deletes it on
uninstall, so nothing is left pointing at a Service that is gone, and the operator empties it
on a clean stop. Every webhook keeps ``failurePolicy: Ignore``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import kopf

from modelyard.builders import labels
from modelyard.controllers import cluster, tls

log = logging.getLogger(__name__)

VALIDATING = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")


Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


@dataclasses.dataclass(frozen=True)
class Handler:
    """One validating handler: its kopf id (also its URL path) and the plural it checks."""

    id: str
    plural: str
    operations: tuple[Operation, ...] = ("CREATE", "UPDATE")


@dataclasses.dataclass(frozen=True)
class ServiceRef:
    name: str
    namespace: str
    port: int = 443

    @classmethod
    def parse(cls, text: str, default_namespace: str) -> ServiceRef:
        """``name`` or ``namespace/name``."""
        namespace, _, name = text.rpartition("/")
        return cls(name=name, namespace=namespace or default_namespace)

    def dns_names(self) -> list[str]:
        """The names the API server may dial: the ``.svc`` one first (it is what it uses)."""
        base = f"{self.name}.{self.namespace}"
        return [f"{base}.svc", self.name, base, f"{base}.svc.cluster.local"]


def build_webhooks(handlers: Sequence[Handler], service: ServiceRef, ca_bundle: str) -> list[dict[str, Any]]:
    """The ``webhooks`` of the configuration, one per handler, as kopf would build them."""
    return [
        {
            "name": f"{h.id}.{labels.GROUP}",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "service": {
                    "name": service.name,
                    "namespace": service.namespace,
                    "port": service.port,
                    "path": f"/{h.id}",
                },
                "caBundle": ca_bundle,
            },
            "failurePolicy": "Ignore",
            "matchPolicy": "Equivalent",
            "rules": [
                {
                    "apiGroups": [labels.GROUP],
                    "apiVersions": [labels.VERSION],
                    "operations": list(h.operations),
                    "resources": [h.plural],
                    "scope": "*",
                }
            ],
            "sideEffects": "None",
            "timeoutSeconds": 10,
        }
        for h in handlers
    ]


class ServiceWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS webhook server, registered as a Service client config in a configuration
    the chart owns (see the module docstring)."""

    def __init__(
        self,
        *,
        service: ServiceRef,
        configuration: str,
        handlers: Sequence[Handler],
        kube: cluster.Cluster,
        addr: str,
        port: int,
        cert_dir: pathlib.Path,
    ) -> None:
        ca, cert, key = tls.make_webhook_certs(cert_dir, [*service.dns_names(), addr])
        super().__init__(
            addr=addr, port=port, host=addr, cafile=str(ca), certfile=str(cert), pkeyfile=str(key)
        )
        self.service = service
        self.configuration = configuration
        self.handlers = tuple(handlers)
        self.kube = kube

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        registered = False
        try:
            async for config in super().__call__(fn):
                ca_bundle = str(config.get("caBundle") or "")
                await self._patch(build_webhooks(self.handlers, self.service, ca_bundle))
                registered = True
                yield kopf.WebhookClientConfig(
                    service=kopf.WebhookClientConfigService(
                        name=self.service.name, namespace=self.service.namespace, port=self.service.port
                    ),
                    caBundle=ca_bundle,
                )
        finally:
            if registered:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._patch([]), timeout=5)

    async def _patch(self, webhooks: list[dict[str, Any]]) -> None:
        found = await self.kube.merge_patch(VALIDATING, self.configuration, None, {"webhooks": webhooks})
        if not found:
            log.error(
                "ValidatingWebhookConfiguration %s does not exist: admission checks are off "
                "(the Helm chart creates it; out of a cluster, drop --webhook-service)",
                self.configuration,
            )
        else:
            log.info("webhook configuration %s: %d webhooks", self.configuration, len(webhooks))
