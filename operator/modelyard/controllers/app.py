"""The operator process: the reconcilers behind debounced queues, the Lease that keeps one
replica active, the status API and /metrics, the operator's own watches (of the custom kinds and
of the children), and kopf running the TrainingJob handlers and the admission webhook.

==========================  ============================================================
module                      concern
==========================  ============================================================
:mod:`.options`             the flags of ``modelyard operator`` as one value
:mod:`.handlers`            kopf's settings, login and handlers, one ``register`` per kind
:mod:`.custom_watches`      the watches of entries, endpoints and TrainingJobs
:mod:`.child_watches`       the watches of children, and what their events wake
:mod:`.status_server`       the status API, /metrics, /healthz
this module                 the context and its queues; the run loop
==========================  ============================================================

In a pod it logs in with its service account (:mod:`modelyard.incluster`) and, given
``webhook_service``, registers the webhook through a Service (:mod:`.webhook`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from modelyard.controllers import (
    autoscaler,
    catalog_seed,
    child_watches,
    cluster,
    context,
    custom_watches,
    debounce,
    events,
    handlers,
    leader,
    leader_label,
    metrics,
    model_endpoint,
    model_entry,
    options,
    status_server,
    training_job,
)
from modelyard.statusapi import cache

log = logging.getLogger(__name__)


def make_context(opts: options.OperatorOptions) -> context.Context:
    """The context every reconcile shares, with a debounced queue per kind (a failed reconcile
    counts in ``modelyard_reconcile_errors_total``)."""
    kube = cluster.Cluster(cluster.api_client(opts.kubeconfig))
    ctx = context.Context(
        cluster=kube,
        settings=opts.builder,
        metrics=metrics.Metrics.create(),
        namespace=opts.namespace,
        events=events.Poster(kube),
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


SWEEP_SECONDS = 10.0
"""How often the informer drops the copies of our writes that the watch has since reported."""


async def _sweep(ctx: context.Context) -> None:
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        ctx.informer.sweep()


async def run(opts: options.OperatorOptions) -> None:
    """Run until stopped (or until the Lease is lost)."""
    ctx = make_context(opts)
    stop = asyncio.Event()
    lease = leader.Lease(ctx.cluster, opts.namespace) if opts.leader_election else None
    status_cache = cache.Cache()
    # /healthz answers while a standby waits
    runners, traffic = await status_server.serve(ctx, opts, status_cache)
    await leader_label.mark(ctx.cluster, opts.namespace, opts.pod_name, False)
    if lease is not None:
        await lease.acquire()
    await leader_label.mark(ctx.cluster, opts.namespace, opts.pod_name, True)
    leading = asyncio.Event()  # cleared while the Lease may have lapsed (the API server away)
    leading.set()
    for queue in (ctx.endpoint_queue, ctx.entry_queue, ctx.training_queue):
        if queue is not None:
            queue.gate = leading
    keeper = asyncio.create_task(lease.keep(stop, leading)) if lease is not None else None
    seeding = asyncio.create_task(catalog_seed.seed(ctx.cluster)) if opts.apply_builtin_catalog else None
    sweeping = asyncio.create_task(_sweep(ctx))
    scaling = autoscaler.start(ctx, opts.autoscale, leading, on_scrape=traffic.record)
    watching = child_watches.start(ctx, opts.builder.adapter_config_maps)
    await _seed_ownership(ctx)
    try:
        watching += await custom_watches.start(ctx, status_cache)
        await kopf.operator(
            registry=handlers.build_registry(ctx, opts, status_cache),
            clusterwide=True,
            standalone=True,
            stop_flag=stop,
        )
    finally:
        for task in (keeper, seeding, scaling, sweeping, *watching):
            if task is not None:
                task.cancel()
        await leader_label.mark(ctx.cluster, opts.namespace, opts.pod_name, False)
        if lease is not None:
            await lease.release()
        for runner in runners:
            await runner.cleanup()
        await ctx.cluster.close()
