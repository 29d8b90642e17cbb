"""Live adapters of a ModelEndpoint: keep the ConfigMap, push load/unload to each ready pod,
and report per adapter which pods have it (:mod:`modelyard.builders.adapters` decides what).

One :func:`sync` per endpoint reconcile, after its Deployment is applied:

1. the effective set: ``spec.adapters`` (their entries read) plus the namespace's Succeeded
   TrainingJobs whose ``output.serveOn`` names the endpoint;
2. the ConfigMap ``<endpoint>-adapters`` applied when its content changed (the runtime re-reads
   it, and a new replica loads it before it turns Ready);
3. for each ready pod (its IP and the runtime port, as the gateway reaches it): what it has
   loaded (transformers: ``GET /v1/adapters``; vLLM: ``GET /v1/models``, entries with a
   ``parent``), then ``POST /v1/unload_lora_adapter`` and ``/v1/load_lora_adapter`` for the
   difference, then what it has loaded now;
4. ``status.adapters`` and ``status.adaptersReady``; a serveOn job whose adapter is loaded gets
   ``status.servedAt`` once.

An adapter not yet everywhere, or a pod that did not answer, looks again after
:data:`.context.RETRY_SECONDS` doubling up to :data:`RETRY_MAX_SECONDS` (kopf's timers in the debounced
queue, like every other recheck); a settled set is rechecked every :data:`RESYNC_SECONDS`.
A refused load is not sent again for the same path until the pod unloads something (room for
one refused at ``maxAdapters``): the runtime's error stays in the status until then, or until
the adapter's path changes. The calls themselves are :mod:`.adapter_client`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable
from typing import Any

import aiohttp
import pydantic

from modelyard import api
from modelyard.builders import adapters, children
from modelyard.controllers import adapter_client, cluster, conditions, context, model_entry

log = logging.getLogger(__name__)

RETRY_MAX_SECONDS = 30.0
RESYNC_SECONDS = 60.0
TIMEOUT_SECONDS = 10.0
"""One call to a pod (a load reads the adapter's files: seconds, not minutes)."""


def ready_pods(pods: Iterable[dict[str, Any]], port: int) -> dict[str, str]:
    """Pod name -> base URL of each Ready, not terminating pod with an IP."""
    found: dict[str, str] = {}
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ip = status.get("podIP")
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
        )
        if ip and ready and not meta.get("deletionTimestamp"):
            host = f"[{ip}]" if ":" in ip else ip
            found[str(meta.get("name"))] = f"http://{host}:{port}"
    return found


async def _wanted(
    ctx: context.Context, endpoint: api.ModelEndpoint, entry: api.ModelEntry
) -> tuple[list[adapters.Wanted], list[api.TrainingJob]]:
    entries: dict[str, api.ModelEntry | None] = {}
    for adapter in endpoint.spec.adapters or ():
        if adapter.entry is not None and adapter.entry not in entries:
            body = await ctx.informer.read(ctx.cluster, cluster.MODEL_ENTRY, adapter.entry)
            entries[adapter.entry] = model_entry.parse(body) if body is not None else None
    jobs: list[api.TrainingJob] = []
    found = ctx.informer.serving_jobs(endpoint.namespace or "", endpoint.name)
    if found is None:  # before the watches' indices are attached
        found = await ctx.cluster.list(cluster.TRAINING_JOB, endpoint.namespace)
    for body in found:
        serve_on = ((body.get("spec") or {}).get("output") or {}).get("serveOn") or {}
        if serve_on.get("endpoint") != endpoint.name:
            continue
        try:
            jobs.append(api.TrainingJob.model_validate(body))
        except pydantic.ValidationError:
            continue
    wanted = adapters.effective(endpoint, entry, entries, jobs, ctx.settings)
    ownership = ctx.ownership.decide()
    namespace = endpoint.namespace or ""
    for i, w in enumerate(wanted):
        if w.problem is None and not ownership.may_serve(namespace, w.name):
            owner = ownership.owners[w.name].describe()
            message = f"served name {w.name!r} belongs to {owner}; this namespace may not serve it"
            wanted[i] = dataclasses.replace(w, problem=("NameNotAllowed", message))
    return wanted, jobs


async def _apply_config_map(
    ctx: context.Context,
    endpoint: api.ModelEndpoint,
    wanted: list[adapters.Wanted],
    uid: str,
    memory: context.AdapterMemory,
) -> str | None:
    """Apply the ConfigMap when its content changed; why not, when its name is someone else's."""
    built = adapters.build_config_map(endpoint, wanted, owner_uid=uid)
    content = json.dumps(built, sort_keys=True)
    if memory.config_map == content:
        return None
    name = built["metadata"]["name"]
    live = await ctx.cluster.get(cluster.CONFIG_MAP, name, endpoint.namespace)
    taken = children.conflict(live, "ModelEndpoint", endpoint.name, uid)
    if taken:
        return taken
    await ctx.cluster.apply(built)
    memory.config_map = content
    return None


@dataclasses.dataclass
class Prepared:
    """The effective set and the serveOn jobs read for it."""

    wanted: list[adapters.Wanted]
    jobs: list[api.TrainingJob]


async def prepare(ctx: context.Context, endpoint: api.ModelEndpoint, entry: api.ModelEntry) -> Prepared:
    """Read the effective set."""
    return Prepared(*await _wanted(ctx, endpoint, entry))


async def apply_set(ctx: context.Context, endpoint: api.ModelEndpoint, prepared: Prepared, uid: str) -> None:
    """Apply the set's ConfigMap when it changed (called before the Deployment, so a first pod
    starts with the file there, and only once the endpoint's children are known to be its own);
    a ConfigMap of the name that is someone else's marks every adapter."""
    if not ctx.settings.adapter_config_maps:
        return  # pushed to each Ready pod only (:func:`sync`)
    key = (endpoint.namespace or "", endpoint.name)
    memory = ctx.adapters.setdefault(key, context.AdapterMemory())
    taken = await _apply_config_map(ctx, endpoint, prepared.wanted, uid, memory)
    if taken:
        prepared.wanted = [
            dataclasses.replace(w, problem=w.problem or (children.CONFLICT, taken)) for w in prepared.wanted
        ]


async def sync(
    ctx: context.Context,
    endpoint: api.ModelEndpoint,
    prepared: Prepared,
    engine: str,
    pods: list[dict[str, Any]],
    had_adapters: bool,
) -> dict[str, Any]:
    """Bring the pods' adapters to the effective set; the status fields that say how it went
    (``had_adapters``: the status lists some, which may need unloading)."""
    key = (endpoint.namespace or "", endpoint.name)
    memory = ctx.adapters.setdefault(key, context.AdapterMemory())
    wanted, jobs = prepared.wanted, prepared.jobs
    reports: dict[str, adapters.PodReport] = {}
    unsettled = False
    targets = ready_pods(pods, ctx.settings.runtime_port)
    if wanted or had_adapters:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for pod, base in sorted(targets.items()):
                try:
                    reports[pod] = await _sync_pod(session, base, engine, wanted, pod, memory)
                except adapter_client.PodError as exc:
                    log.info("endpoint %s/%s: pod %s: %s", *key, pod, exc)
                    unsettled = True
    items, ready = adapters.status(wanted, reports)
    unsettled |= any(i.get("reason") == "AdapterLoading" for i in items) and bool(targets)
    if unsettled:
        ctx.touch_endpoint(*key, delay=memory.retry)
        memory.retry = min(memory.retry * 2, RETRY_MAX_SECONDS)
    else:
        memory.retry = context.RETRY_SECONDS
        if wanted:
            ctx.touch_endpoint(*key, delay=RESYNC_SECONDS)
    await _mark_served(ctx, endpoint, jobs, items, memory)
    if not wanted:
        return {"adapters": None, "adaptersReady": None}
    return {"adapters": items, "adaptersReady": ready}


async def _sync_pod(
    session: aiohttp.ClientSession,
    base: str,
    engine: str,
    wanted: list[adapters.Wanted],
    pod: str,
    memory: context.AdapterMemory,
) -> adapters.PodReport:
    report = _with_refused(await adapter_client.pod_report(session, base, engine), pod, memory)
    load, unload = adapters.plan(wanted, report)
    if not load and not unload:
        return report
    if unload:  # room was made: what was refused (maxAdapters) may fit now
        for refused_key in [k for k in memory.refused if k[0] == pod]:
            del memory.refused[refused_key]
    refused = await adapter_client.push(session, base, load, unload)
    for name, error in refused.items():
        memory.refused[(pod, name)] = error
    return _with_refused(await adapter_client.pod_report(session, base, engine), pod, memory)


def _with_refused(report: adapters.PodReport, pod: str, memory: context.AdapterMemory) -> adapters.PodReport:
    """The pod's report with the loads it refused to this operator (vLLM lists none itself;
    the transformers runtime may not list a 409) added to its errors."""
    errors = dict(report.errors)
    for (where, name), error in list(memory.refused.items()):
        if where != pod:
            continue
        if name in report.loaded:
            del memory.refused[(where, name)]
        else:
            errors.setdefault(name, error)
    return adapters.PodReport(report.loaded, errors)


async def _mark_served(
    ctx: context.Context,
    endpoint: api.ModelEndpoint,
    jobs: list[api.TrainingJob],
    items: list[dict[str, Any]],
    memory: context.AdapterMemory,
) -> None:
    """Write ``status.servedAt`` (once) on each serveOn job whose adapter a ready pod has loaded
    (the jobs come from the watch, which may not show a servedAt just written: remembered)."""
    loaded = {i["name"] for i in items if i.get("pods")}
    for job in jobs:
        status, uid = job.status, job.metadata.uid or ""
        if status is None or status.served_at is not None or status.phase != "Succeeded":
            continue
        if uid in memory.served:
            continue
        name = adapters.serve_on_name(job, ctx.settings)
        if name in loaded and any(i.get("source") == f"trainingjob {job.name}" for i in items):
            patch = {"servedAt": conditions.now(), "servedName": name}
            await ctx.cluster.patch_status(cluster.TRAINING_JOB, job.name, job.namespace, patch)
            memory.served.add(uid)
            log.info(
                "TrainingJob %s/%s: adapter %s answers on %s", job.namespace, job.name, name, endpoint.name
            )


def forget(ctx: context.Context, key: tuple[str, str]) -> None:
    ctx.adapters.pop(key, None)
