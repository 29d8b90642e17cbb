"""kopf's own settings for this operator, and how it logs in to the API server.

Progress and diff-base go in annotations under ``wire.GROUP`` (only TrainingJobs have kopf
change handlers; endpoints and entries are watched only, so kopf writes nothing on them); the
admission server is either behind a Service the chart made (in a cluster, the operator patches the chart's
ValidatingWebhookConfiguration) or at a URL kopf manages (a process on a laptop or in the
tests). Login: the operator's own credentials (:mod:`..credentials`: the pod's service
account, else the kubeconfig).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from modelyard.controllers import context, credentials, options, webhook, webhook_certs
from modelyard.controllers.handlers import common

GROUP = common.GROUP


def register(registry: kopf.OperatorRegistry, ctx: context.Context, opts: options.OperatorOptions) -> None:
    on = kopf.on

    @on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = ChangingKindsOnly(
            prefix=GROUP, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 120
        settings.batching.idle_timeout = 1.0
        if opts.webhook and opts.webhook_service:
            service = webhook.ServiceRef.parse(opts.webhook_service, opts.namespace)
            settings.admission.server = webhook.ServiceWebhookServer(
                service=service, configuration=opts.webhook_configuration, handlers=common.ADMISSION,
                kube=ctx.cluster, addr=opts.webhook_host, port=opts.webhook_port,
                source=certificates(ctx, opts, [*service.dns_names(), opts.webhook_host]),
                failure_policy=opts.failure_policy,
            )  # fmt: skip
        elif opts.webhook:
            settings.admission.server = webhook.RotatingWebhookServer(
                source=certificates(ctx, opts, [opts.webhook_host, "localhost"]),
                addr=opts.webhook_host, port=opts.webhook_port,
            )  # fmt: skip
            settings.admission.managed = GROUP

    @on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(ctx.cluster.credentials)


class ChangingKindsOnly(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base, built only for the kind with change handlers (TrainingJob): kopf builds
    one (a deep copy of the body) for every event of every watched kind, and only change
    handlers read it; in a profile at 150 endpoints the copies of pod, Deployment and endpoint
    events were about a tenth of the operator's event loop."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        if body.get("kind") != "TrainingJob":
            return {}
        return super().build(body=body, extra_fields=extra_fields)


def certificates(
    ctx: context.Context, opts: options.OperatorOptions, hosts: list[str]
) -> webhook_certs.Source:
    """Where the webhook's serving certificate comes from (:mod:`..webhook_certs`)."""
    if opts.webhook_cert_dir is not None:
        return webhook_certs.Mounted(opts.webhook_cert_dir)
    store: webhook_certs.Store = (
        webhook_certs.SecretStore(ctx.cluster, opts.namespace, opts.webhook_ca_secret)
        if opts.webhook_ca_secret
        else webhook_certs.MemoryStore()
    )
    return webhook_certs.Issuing(
        store, hosts, validity=opts.webhook_cert_validity, ca_validity=opts.webhook_ca_validity
    )


def connection_info(creds: credentials.Credentials) -> kopf.ConnectionInfo:
    """kopf's login from the operator's own credentials (:mod:`..credentials`): the same
    server and user as the operator's calls. kopf asks again after a 401, which re-reads a
    rotated service-account token. (kopf's own login would import the ``kubernetes`` package.)"""
    token = creds.bearer_token()
    return kopf.ConnectionInfo(
        server=creds.server,
        ca_path=creds.ca_path,
        insecure=creds.insecure or None,
        username=None if token else creds.username,
        password=None if token else creds.password,
        scheme="Bearer" if token else None,
        token=token or None,
        certificate_path=creds.cert_path,
        private_key_path=creds.key_path,
        default_namespace=creds.namespace,
    )
