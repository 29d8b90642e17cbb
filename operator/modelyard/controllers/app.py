"""The operator process: kopf handlers wired to the reconcilers, the admission webhook, the
Lease that keeps one replica active, and /metrics.

In a pod it logs in with its service account (:mod:`modelyard.incluster`) and, given
``webhook_service``, registers the webhook through a Service (:mod:`.webhook`).

Handlers only translate kopf's events into "reconcile this object soon" (debounced); each
reconcile reads the current object itself, so a burst of pod events costs one reconcile and
a handler that runs twice changes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import kopf
from aiohttp import web

from modelyard import incluster
from modelyard.api import wire
from modelyard.builders import settings
from modelyard.controllers import (
    admission,
    autoscaler,
    catalog_seed,
    cluster,
    context,
    debounce,
    leader,
    leader_label,
    metrics,
    model_endpoint,
    model_entry,
    ownership,
    training_job,
    webhook,
    webhook_certs,
)
from modelyard.statusapi import app as status_app
from modelyard.statusapi import cache
from modelyard.statusapi import settings as status_settings

log = logging.getLogger(__name__)

GROUP = wire.GROUP
MANAGED = {wire.MANAGED_BY: wire.PRODUCT}


FailurePolicy = webhook.FailurePolicy  # the field ``webhook`` shadows the module in the class


@dataclasses.dataclass(frozen=True)
class OperatorOptions:
    namespace: str = "modelyard-system"
    kubeconfig: str | None = None
    webhook: bool = True
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 9443
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 8080
    """Port of /metrics and /healthz (and of the status API when ``status_port`` is None)."""
    status_port: int | None = None
    """Port of the status API, its dashboard and /healthz, apart from /metrics; None: one port."""
    status_token: str | None = None
    """Bearer token the status API requires (none: read-only and open)."""
    leader_election: bool = True
    builder: settings.Settings = dataclasses.field(default_factory=settings.Settings)
    webhook_service: str | None = None
    """``name`` or ``namespace/name`` of the Service the API server reaches the webhook through
    (in a cluster); None: a URL at ``webhook_host`` (kopf manages the configurations)."""
    webhook_configuration: str = "modelyard-webhook"
    """With ``webhook_service``: the ValidatingWebhookConfiguration (made by the chart) to patch."""
    webhook_failure_policy: FailurePolicy | None = None
    """What the API server does when the webhook cannot answer (docs/security.md); None:
    ``Fail`` through a Service (in a cluster), ``Ignore`` at a URL (a process on a laptop or in
    the tests, which a kill must not leave blocking every write of the modelyard kinds)."""

    @property
    def failure_policy(self) -> FailurePolicy:
        if self.webhook_failure_policy is not None:
            return self.webhook_failure_policy
        return "Fail" if self.webhook_service else "Ignore"
    webhook_cert_validity: datetime.timedelta = datetime.timedelta(days=7)
    """Life of each serving certificate the operator issues (renewed two thirds into it)."""
    webhook_ca_validity: datetime.timedelta = datetime.timedelta(days=5 * 365)
    """Life of the webhook CA (replaced two thirds into it; the old one stays in the bundle)."""
    webhook_ca_secret: str | None = None
    """Secret in ``namespace`` that keeps the webhook CA, shared by the replicas (None: in memory)."""
    webhook_cert_dir: pathlib.Path | None = None
    """A mounted cert-manager Secret (tls.crt, tls.key, ca.crt): the operator issues nothing."""
    apply_builtin_catalog: bool = False
    """Apply the built-in catalog's ModelEntries at start (:mod:`.catalog_seed`)."""
    pod_name: str | None = None
    """This replica's pod, labelled while it holds the Lease (:mod:`.leader_label`)."""
    autoscale: autoscaler.Options = dataclasses.field(default_factory=autoscaler.Options)
    """Where the gateways' demand is read, and how often (:mod:`.autoscaler`)."""


ADMISSION = (
    webhook.Handler("validate-endpoint", wire.MODEL_ENDPOINTS),
    webhook.Handler("validate-training-job", wire.TRAINING_JOBS),
    webhook.Handler("validate-entry", wire.MODEL_ENTRIES),
)
"""The validating handlers: kopf ids (the webhook URL paths) and what each checks."""


def build_registry(
    ctx: context.Context, options: OperatorOptions, status_cache: cache.Cache | None = None
) -> kopf.OperatorRegistry:
    """Every handler of the operator, registered on a registry of its own."""
    registry = kopf.OperatorRegistry()
    on = kopf.on

    @on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix=GROUP, key="last-handled-configuration"
        )
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 120
        if options.webhook and options.webhook_service:
            service = webhook.ServiceRef.parse(options.webhook_service, options.namespace)
            settings.admission.server = webhook.ServiceWebhookServer(
                service=service, configuration=options.webhook_configuration, handlers=ADMISSION,
                kube=ctx.cluster, addr=options.webhook_host, port=options.webhook_port,
                source=_certificates(ctx, options, [*service.dns_names(), options.webhook_host]),
                failure_policy=options.failure_policy,
            )  # fmt: skip
        elif options.webhook:
            settings.admission.server = webhook.RotatingWebhookServer(
                source=_certificates(ctx, options, [options.webhook_host, "localhost"]),
                addr=options.webhook_host, port=options.webhook_port,
            )  # fmt: skip
            settings.admission.managed = GROUP

    @on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if options.kubeconfig is not None:
            return _kubeconfig_login(ctx.cluster.api.configuration)
        account = incluster.detect()
        if account is None:
            return kopf.login_via_client(**kwargs)
        return kopf.ConnectionInfo(
            server=account.server,
            ca_path=str(account.ca_file),
            scheme="Bearer",
            token=account.token(),
            default_namespace=account.namespace(),
        )

    # -- ModelEntry ----------------------------------------------------------------------
    @on.resume(GROUP, wire.MODEL_ENTRIES, registry=registry)
    @on.create(GROUP, wire.MODEL_ENTRIES, registry=registry)
    @on.update(GROUP, wire.MODEL_ENTRIES, registry=registry)
    async def entry_changed(name: str, **_: Any) -> None:
        ctx.touch_entry(name, delay=0)

    @on.delete(GROUP, wire.MODEL_ENTRIES, registry=registry, optional=True)
    async def entry_deleted(name: str, **_: Any) -> None:
        ctx.touch_entry(name, delay=0)

    # -- served-name ownership: every endpoint and entry, as the watches see them -------------
    @on.event(GROUP, wire.MODEL_ENTRIES, registry=registry)
    async def entry_seen(type: str | None, body: Any, **_: Any) -> None:
        ctx.touch_endpoints(ctx.ownership.entry_event(ownership.plain(body), deleted=type == "DELETED"))

    @on.event(GROUP, wire.MODEL_ENDPOINTS, registry=registry)
    async def endpoint_seen(type: str | None, body: Any, **_: Any) -> None:
        ctx.touch_endpoints(ctx.ownership.endpoint_event(ownership.plain(body), deleted=type == "DELETED"))

    # -- ModelEndpoint -------------------------------------------------------------------
    @on.resume(GROUP, wire.MODEL_ENDPOINTS, registry=registry)
    @on.create(GROUP, wire.MODEL_ENDPOINTS, registry=registry)
    @on.update(GROUP, wire.MODEL_ENDPOINTS, registry=registry)
    async def endpoint_changed(namespace: str | None, name: str, **_: Any) -> None:
        ctx.touch_endpoint(namespace or "", name, delay=0)

    @on.delete(GROUP, wire.MODEL_ENDPOINTS, registry=registry, optional=True)
    async def endpoint_deleted(namespace: str | None, name: str, **_: Any) -> None:
        ctx.touch_endpoint(namespace or "", name, delay=0)

    for group_version, plural in (("apps/v1", "deployments"), ("v1", "services"), ("v1", "pods")):

        @on.event(group_version, plural, labels={**MANAGED, wire.ENDPOINT: kopf.PRESENT}, registry=registry)
        async def child_event(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
            ctx.touch_endpoint(namespace or "", labels[wire.ENDPOINT], delay=0.3)

    # -- TrainingJob ---------------------------------------------------------------------
    @on.resume(GROUP, wire.TRAINING_JOBS, registry=registry)
    @on.create(GROUP, wire.TRAINING_JOBS, registry=registry)
    @on.update(GROUP, wire.TRAINING_JOBS, registry=registry)
    async def training_changed(namespace: str | None, name: str, **_: Any) -> None:
        ctx.touch_training(namespace or "", name, delay=0)

    for group_version, plural in (("batch/v1", "jobs"), ("v1", "pods")):

        @on.event(
            group_version, plural, labels={**MANAGED, wire.TRAINING_JOB: kopf.PRESENT}, registry=registry
        )
        async def training_child_event(namespace: str | None, labels: Mapping[str, str], **_: Any) -> None:
            ctx.touch_training(namespace or "", labels[wire.TRAINING_JOB], delay=0.3)

    # -- the status API's cache of the three kinds ------------------------------------------
    if status_cache is not None:
        for plural in (wire.MODEL_ENTRIES, wire.MODEL_ENDPOINTS, wire.TRAINING_JOBS):

            @on.event(GROUP, plural, registry=registry)
            async def mirror(type: str | None, body: Any, **_: Any) -> None:
                obj = dict(body)
                if type == "DELETED":
                    meta = obj.get("metadata") or {}
                    status_cache.delete(str(obj.get("kind")), meta.get("namespace"), str(meta.get("name")))
                else:
                    status_cache.upsert(obj)

    # -- admission -----------------------------------------------------------------------
    if options.webhook:
        checks = {
            wire.MODEL_ENDPOINTS: admission.validate_endpoint,
            wire.TRAINING_JOBS: admission.validate_training_job,
            wire.MODEL_ENTRIES: admission.validate_entry,
        }
        for handler in ADMISSION:
            check = checks[handler.plural]

            @on.validate(
                GROUP, handler.plural, id=handler.id, operations=list(handler.operations),
                ignore_failures=options.failure_policy == "Ignore", registry=registry,
            )  # fmt: skip
            async def validate(
                body: Any, warnings: list[str], old: Any = None, check: Any = check, **_: Any
            ) -> None:
                if old is not None and ownership.plain(old.get("spec")) == ownership.plain(body.get("spec")):
                    return  # labels, annotations, finalizers: never deny them (kopf's own, a deletion's)
                await check(ctx, dict(body), warnings)

    return registry


async def _seed_ownership(ctx: context.Context) -> None:
    """Know every endpoint and entry before the first reconcile judges served-name ownership
    (one listing of each; the watches keep the index current from then on)."""
    try:
        endpoints = await ctx.cluster.list(cluster.MODEL_ENDPOINT)
        entries = await ctx.cluster.list(cluster.MODEL_ENTRY)
    except Exception:  # the watches still fill the index; the verdicts settle as they report
        log.warning("could not list endpoints and entries for served-name ownership", exc_info=True)
        return
    ctx.ownership.seed(endpoints, entries)
def _certificates(
    ctx: context.Context, options: OperatorOptions, hosts: list[str]
) -> webhook_certs.Source:
    """Where the webhook's serving certificate comes from (:mod:`.webhook_certs`)."""
    if options.webhook_cert_dir is not None:
        return webhook_certs.Mounted(options.webhook_cert_dir)
    store: webhook_certs.Store = (
        webhook_certs.SecretStore(ctx.cluster, options.namespace, options.webhook_ca_secret)
        if options.webhook_ca_secret
        else webhook_certs.MemoryStore()
    )
    return webhook_certs.Issuing(
        store, hosts, validity=options.webhook_cert_validity, ca_validity=options.webhook_ca_validity
    )


def _kubeconfig_login(configuration: Any) -> kopf.ConnectionInfo:
    """kopf's credentials from the client configuration ``--kubeconfig`` loaded. kopf's own
    login reads ``$KUBECONFIG`` through the kubernetes package, which fixes that path when it is
    first imported: a later ``--kubeconfig`` would be ignored (or another cluster's used)."""
    header = configuration.get_api_key_with_prefix("BearerToken") or configuration.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


async def _serve_http(
    ctx: context.Context, options: OperatorOptions, status_cache: cache.Cache
) -> list[web.AppRunner]:
    """The status API and dashboard, and /metrics, each with /healthz: on one port, or on two
    when ``status_port`` is given (the chart's way: a scraper needs no status token, and a
    NetworkPolicy can let it reach /metrics and nothing else)."""

    async def render(_: web.Request) -> web.Response:
        return web.Response(body=ctx.metrics.render(), content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    config = status_settings.StatusApiSettings(token=options.status_token)
    status = status_app.create_app(config, status_cache)
    status.router.add_get("/healthz", healthz)
    sites: list[tuple[web.Application, int]] = [(status, options.metrics_port)]
    if options.status_port is not None and options.status_port != options.metrics_port:
        metrics_only = web.Application()
        metrics_only.router.add_get("/healthz", healthz)
        sites = [(status, options.status_port), (metrics_only, options.metrics_port)]
    sites[-1][0].router.add_get("/metrics", render)
    runners: list[web.AppRunner] = []
    for app, port in sites:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, options.metrics_host, port).start()
        runners.append(runner)
    return runners


def make_context(options: OperatorOptions) -> context.Context:
    api = cluster.api_client(options.kubeconfig)
    ctx = context.Context(
        cluster=cluster.Cluster(api),
        settings=options.builder,
        metrics=metrics.Metrics.create(),
        namespace=options.namespace,
    )

    async def run_endpoint(key: Any) -> None:
        await model_endpoint.reconcile(ctx, key)

    async def run_entry(key: Any) -> None:
        await model_entry.reconcile(ctx, key)

    async def run_training(key: Any) -> None:
        await training_job.reconcile(ctx, key)

    def failed(kind: str) -> Any:
        return lambda _key: ctx.metrics.errors.labels(kind).inc()

    ctx.endpoint_queue = debounce.Debouncer(run_endpoint, failed("ModelEndpoint"))
    ctx.entry_queue = debounce.Debouncer(run_entry, failed("ModelEntry"))
    ctx.training_queue = debounce.Debouncer(run_training, failed("TrainingJob"))
    return ctx


async def run(options: OperatorOptions) -> None:
    """Run until stopped (or until the Lease is lost)."""
    if options.kubeconfig:
        os.environ["KUBECONFIG"] = options.kubeconfig  # kopf's own login reads it
    ctx = make_context(options)
    stop = asyncio.Event()
    lease = leader.Lease(ctx.cluster.api, options.namespace) if options.leader_election else None
    status_cache = cache.Cache()
    runners = await _serve_http(ctx, options, status_cache)  # /healthz answers while a standby waits
    await leader_label.mark(ctx.cluster, options.namespace, options.pod_name, False)
    if lease is not None:
        await lease.acquire()
    await leader_label.mark(ctx.cluster, options.namespace, options.pod_name, True)
    leading = asyncio.Event()  # cleared while the Lease may have lapsed (the API server away)
    leading.set()
    for queue in (ctx.endpoint_queue, ctx.entry_queue, ctx.training_queue):
        if queue is not None:
            queue.gate = leading
    keeper = asyncio.create_task(lease.keep(stop, leading)) if lease is not None else None
    seeding = asyncio.create_task(catalog_seed.seed(ctx.cluster)) if options.apply_builtin_catalog else None
    scaling = autoscaler.start(ctx, options.autoscale, leading)
    await _seed_ownership(ctx)
    try:
        await kopf.operator(
            registry=build_registry(ctx, options, status_cache),
            clusterwide=True,
            standalone=True,
            stop_flag=stop,
        )
    finally:
        for task in (keeper, seeding, scaling):
            if task is not None:
                task.cancel()
        await leader_label.mark(ctx.cluster, options.namespace, options.pod_name, False)
        if lease is not None:
            await asyncio.to_thread(lease.release)
        for runner in runners:
            await runner.cleanup()
