"""ModelEntry: resolve what the model is and needs, and list the endpoints serving it."""

from __future__ import annotations

import json
import logging
from typing import Any

import pydantic

from modelyard import api
from modelyard.controllers import cluster, conditions, context
from modelyard.registry import manifests, resolve

log = logging.getLogger(__name__)


def parse(body: dict[str, Any]) -> api.ModelEntry:
    return api.ModelEntry.model_validate({k: v for k, v in body.items() if k != "status"})


async def fetch_config(
    ctx: context.Context, entry: api.ModelEntry
) -> tuple[dict[str, Any] | None, str | None]:
    """The entry's config.json from its ConfigMap: (config, problem).

    Only ConfigMaps in the operator's own namespace are read (the chart grants ConfigMap reads
    there and nowhere else): a ModelEntry is cluster-scoped, and a reference into another
    namespace would let whoever writes entries read any ConfigMap through the operator."""
    ref = entry.spec.config.config_map_ref if entry.spec.config else None
    if ref is None:
        return None, None
    namespace = ref.namespace or ctx.namespace
    if namespace != ctx.namespace:
        return None, (
            f"ConfigMap {namespace}/{ref.name} (spec.config.configMapRef.namespace): the operator reads "
            f"entry ConfigMaps only in its own namespace {ctx.namespace!r}; put the ConfigMap there"
        )
    found = await ctx.cluster.get(cluster.CONFIG_MAP, ref.name, namespace)
    if found is None:
        return None, f"ConfigMap {namespace}/{ref.name} (spec.config.configMapRef) does not exist"
    text = (found.get("data") or {}).get(ref.key)
    if text is None:
        return None, f"ConfigMap {namespace}/{ref.name} has no key {ref.key!r} (spec.config.configMapRef.key)"
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"ConfigMap {namespace}/{ref.name} key {ref.key}: not JSON ({exc})"
    return (loaded, None) if isinstance(loaded, dict) else (None, f"{ref.key}: config.json must be an object")


async def resolved(ctx: context.Context, entry: api.ModelEntry) -> resolve.Resolution:
    config, problem = await fetch_config(ctx, entry)
    if problem:
        return resolve.Resolution(
            ok=False, reason=problem, served_name=entry.spec.resolved_served_name or entry.name
        )
    return resolve.resolve(entry, config)


async def reconcile(ctx: context.Context, name: str) -> None:
    """Write the entry's resolved status and its endpoint list (only what changed, compared with
    the status the watch, or our last write, has); wake its endpoints."""
    body = await ctx.informer.read(ctx.cluster, cluster.MODEL_ENTRY, name)
    if body is None:
        ctx.entry_versions.pop(name, None)
        for namespace, endpoint in ctx.endpoints_of(name):
            ctx.touch_endpoint(namespace, endpoint)
        return
    generation = int(body["metadata"].get("generation", 0))
    previous = (body.get("status") or {}).get("conditions") or []
    try:
        entry = parse(body)
    except pydantic.ValidationError as exc:
        reason = "; ".join(manifests.field_errors(exc))
        status: dict[str, Any] = {"phase": "Invalid", "reason": reason}
    else:
        result = await resolved(ctx, entry)
        status = {
            "phase": "Valid" if result.ok else "Invalid",
            "reason": result.reason,
            "servedName": result.served_name,
            "architecture": result.architecture,
            "family": result.family,
            "category": result.category,
            "estimate": result.estimate.to_wire() if result.estimate else None,
            "requirements": result.requirements.to_wire(),
            "capabilities": result.capabilities.to_wire(),
        }
    ok = status["phase"] == "Valid"
    status["endpoints"] = [
        {"namespace": ns, "name": ep, "ready": ctx.endpoints[(ns, ep)].ready}
        for ns, ep in ctx.endpoints_of(name)
    ]
    status["conditions"] = [
        conditions.condition(
            "Ready", ok, "Valid" if ok else "Invalid", status.get("reason") or "", generation, previous
        )
    ]
    status["observedGeneration"] = generation
    ctx.metrics.reconciles.labels("ModelEntry", status["phase"]).inc()
    if conditions.status_changed(body.get("status") or {}, status):
        ctx.informer.wrote(await ctx.cluster.patch_status(cluster.MODEL_ENTRY, name, None, status))
    # Wake the endpoints only when what they build from changed (not for list updates, which
    # the endpoints themselves cause).
    seen = ctx.entry_versions.get(name)
    ctx.entry_versions[name] = (generation, status["phase"])
    if seen != (generation, status["phase"]):
        for namespace, endpoint in ctx.endpoints_of(name):
            ctx.touch_endpoint(namespace, endpoint)
