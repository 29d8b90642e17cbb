"""The admission webhook as the API server reaches it: a URL on this machine, or a Service.

Out of a cluster (``modelyard operator`` on a laptop or in the tests) kopf manages the webhook
configurations itself (``settings.admission.managed``) and registers a URL client config at
``--webhook-host``; it removes them on a clean stop. In a cluster (the Helm chart) the API
server must reach the operator through its Service, with a certificate for the Service's DNS
names, and the operator should not need the right to *create* webhook configurations (it
cannot be narrowed to one name). So the chart owns an empty ValidatingWebhookConfiguration and
:class:`ServiceWebhookServer` only patches its ``webhooks`` (``get``/``patch`` on that one
name). It never empties them: a replica that steps down leaves the configuration to the next
leader (same CA, same Service), so a leader change never opens admission; Helm deletes the
object on uninstall.

Both servers are a :class:`RotatingWebhookServer`: the serving certificate comes from a
:mod:`.webhook_certs` source and each renewal is loaded into the live SSL context.

``failurePolicy`` is ``Fail`` through a Service (``--webhook-failure-policy``): the modelyard
kinds are not created or changed unchecked while no operator answers (at a URL, out of a
cluster, it is ``Ignore`` unless set: a killed local operator must not block every write).
The webhooks match only the modelyard kinds, and a ``namespaceSelector`` leaves out
:data:`EXEMPT_NAMESPACES`, so the webhook can never block the cluster's own workloads.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import logging
import pathlib
import ssl
import tempfile
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import aiohttp.web
import kopf

from modelyard import certs
from modelyard.api import wire
from modelyard.controllers import cluster, webhook_certs

log = logging.getLogger(__name__)

VALIDATING = ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")


Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
FailurePolicy = Literal["Fail", "Ignore"]

EXEMPT_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
"""Namespaces the webhooks never see (ModelEntry is cluster-scoped: it is always checked)."""


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


def namespace_selector() -> dict[str, Any]:
    return {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(EXEMPT_NAMESPACES)}
        ]
    }


def build_webhooks(
    handlers: Sequence[Handler], service: ServiceRef, ca_bundle: str, failure_policy: FailurePolicy = "Fail"
) -> list[dict[str, Any]]:
    """The ``webhooks`` of the configuration, one per handler, as kopf would build them."""
    return [
        {
            "name": f"{h.id}.{wire.GROUP}",
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
            "failurePolicy": failure_policy,
            "matchPolicy": "Equivalent",
            "namespaceSelector": namespace_selector(),
            "rules": [
                {
                    "apiGroups": [wire.GROUP],
                    "apiVersions": [wire.VERSION],
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


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _load(context: ssl.SSLContext, serving: certs.Issued) -> None:
    """Put a serving certificate into ``context``: connections after this see it."""
    with tempfile.TemporaryDirectory(prefix="modelyard-tls-") as directory:
        cert, key = pathlib.Path(directory, "tls.crt"), pathlib.Path(directory, "tls.key")
        cert.write_bytes(serving.cert_pem)
        key.touch(0o600)
        key.write_bytes(serving.key_pem)
        context.load_cert_chain(cert, key)


class RotatingWebhookServer(kopf.WebhookServer):
    """kopf's webhook server whose certificate is renewed in place: a new serving certificate
    goes into the live SSL context, a new CA bundle is yielded as a new client config (kopf, or
    :class:`ServiceWebhookServer`, patches the configuration with it)."""

    def __init__(
        self, *, source: webhook_certs.Source, addr: str, port: int, host: str | None = None
    ) -> None:
        super().__init__(addr=addr, port=port, host=host or addr)
        self.source = source
        self.rotations = 0

    def _client_config(self, bundle: bytes) -> kopf.WebhookClientConfig:
        config = kopf.WebhookClientConfig(url=self._build_url("https", self.host or "", self.port or 443, ""))
        if bundle:
            config["caBundle"] = base64.b64encode(bundle).decode("ascii")
        return config

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            return await self._serve(fn, request)

        material = await self.source.load(_now())
        context = ssl.create_default_context(purpose=ssl.Purpose.CLIENT_AUTH)
        _load(context, material.serving)
        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.post("/{id:.*}", serve)])
        runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            # reuse_port: a new leader may bind while the old one is still closing (as kopf does)
            site = aiohttp.web.TCPSite(
                runner, self.addr, self.port, ssl_context=context, reuse_address=True, reuse_port=True
            )
            await site.start()
            yield self._client_config(material.ca_bundle)
            while True:
                wait = (material.next_check - _now()).total_seconds()
                await asyncio.sleep(min(max(wait, 1.0), 3600.0))
                try:
                    fresh = await self.source.load(_now())
                except Exception as exc:  # the API server away, a file half-written: later
                    log.warning("could not renew the webhook certificate (%s); retrying in 10s", exc)
                    later = _now() + datetime.timedelta(seconds=10)
                    material = dataclasses.replace(material, next_check=later)
                    continue
                if fresh.ca_bundle != material.ca_bundle:
                    yield self._client_config(fresh.ca_bundle)
                if fresh.serving != material.serving:
                    _load(context, fresh.serving)
                    self.rotations += 1
                    cert = fresh.serving.cert
                    log.info("webhook serving certificate renewed: serial %x, valid until %s",
                             cert.serial_number, cert.not_valid_after_utc)  # fmt: skip
                material = fresh
        finally:
            await runner.cleanup()


class ServiceWebhookServer(RotatingWebhookServer):
    """The rotating server, registered as a Service client config in a configuration the chart
    owns (see the module docstring)."""

    def __init__(
        self,
        *,
        service: ServiceRef,
        configuration: str,
        handlers: Sequence[Handler],
        kube: cluster.Cluster,
        addr: str,
        port: int,
        source: webhook_certs.Source,
        failure_policy: FailurePolicy = "Fail",
    ) -> None:
        super().__init__(source=source, addr=addr, port=port)
        self.service = service
        self.configuration = configuration
        self.handlers = tuple(handlers)
        self.kube = kube
        self.failure_policy: FailurePolicy = failure_policy

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[kopf.WebhookClientConfig]:
        async for config in super().__call__(fn):
            ca_bundle = str(config.get("caBundle") or "") or await self._current_bundle()
            await self._patch(build_webhooks(self.handlers, self.service, ca_bundle, self.failure_policy))
            yield kopf.WebhookClientConfig(
                service=kopf.WebhookClientConfigService(
                    name=self.service.name, namespace=self.service.namespace, port=self.service.port
                ),
                caBundle=ca_bundle,
            )

    async def _current_bundle(self) -> str:
        """The caBundle already there (cert-manager's CA injector wrote it)."""
        found = await self.kube.get(VALIDATING, self.configuration)
        for hook in (found or {}).get("webhooks") or []:
            bundle = (hook.get("clientConfig") or {}).get("caBundle")
            if bundle:
                return str(bundle)
        return ""

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
