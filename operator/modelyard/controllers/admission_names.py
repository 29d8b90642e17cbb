"""Served-name ownership at admission (:mod:`.admission`'s ModelEndpoint and ModelEntry checks).

Served-name ownership is judged from what the operator already knows from its watches: the
ownership index (:mod:`.ownership`) is asked what the rule would answer if the request's
endpoint or entry were recorded (:meth:`.ownership.Index.with_endpoint`,
:meth:`~.ownership.Index.with_entry`), which costs the names the request touches, not a
listing and a parse of every entry and endpoint (issue #22: creating N endpoints listed N times).

Where staleness could do harm, the read is fresh or the webhook lists as before:

* **Before the watches report, the API is listed.** A replica whose kopf indices are not
  attached yet, or whose ownership index no listing has filled (:func:`_live`), lists every
  entry and endpoint per request, so nothing is admitted unchecked while it starts. Only the
  replica holding the Lease runs kopf, and the webhook Service selects only that replica's
  pod (:mod:`.leader_label`): a standby, whose index is empty, answers no admission.
* **The endpoint's own entry comes from the watches too** (:func:`.admission.validate_endpoint`;
  a miss is a GET, so an entry applied just before its endpoint counts at once), and any
  denial is judged again from a fresh read of it: a claim a moment old may let an endpoint
  through, as it could when made just after the admission.
* **A denial is confirmed by a listing** (:func:`listed`, whose words the denial gives): an
  index a moment behind must not refuse a name its owner just gave up or shared. Only a
  refused request pays for it.
* **The other endpoints and entries may be a moment behind** (the watch latency). That lets
  through what two concurrent requests could always let through with a listing (two endpoints
  of different namespaces created together with one served name, an endpoint created just
  before an entry's claim shuts it out), in a window that grows from one admission's length to
  that plus the watch latency. Admission is the early denial, not the authority: the operator
  applies the same rule to what it watches, oldest creationTimestamp first, and reports the
  later one ``ServedNameConflict``/``NameNotAllowed`` (:mod:`.ownership`), and the gateway
  routes a served name only to endpoints the rule lets serve it (fail-closed). A name owned
  for longer than its watch event takes to arrive is never taken over at admission.
"""

from __future__ import annotations

from typing import Any

import kopf
import pydantic

from modelyard import api
from modelyard.api import served_names
from modelyard.controllers import cluster, context, model_entry, ownership


async def _cluster_now(
    ctx: context.Context,
) -> tuple[dict[str, api.ModelEntry], list[tuple[api.ModelEndpoint, str | None]]]:
    """Every entry and endpoint (with its creationTimestamp) as the API has them now: read from
    the API, not the watch caches, so that a name taken a moment ago counts."""
    entries: dict[str, api.ModelEntry] = {}
    for item in await ctx.cluster.list(cluster.MODEL_ENTRY):
        try:
            parsed = model_entry.parse(item)
        except pydantic.ValidationError:
            continue
        entries[parsed.name] = parsed
    endpoints: list[tuple[api.ModelEndpoint, str | None]] = []
    for item in await ctx.cluster.list(cluster.MODEL_ENDPOINT):
        meta = item.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        try:
            other = api.ModelEndpoint.model_validate({k: v for k, v in item.items() if k != "status"})
        except pydantic.ValidationError:
            continue
        endpoints.append((other, meta.get("creationTimestamp")))
    return entries, endpoints


def _ownership(
    entries: dict[str, api.ModelEntry], endpoints: list[tuple[api.ModelEndpoint, str | None]]
) -> served_names.Ownership:
    facts = [served_names.facts_of(e, entries.get(e.spec.model), created) for e, created in endpoints]
    claims = [c for c in map(served_names.claim_of, entries.values()) if c is not None]
    return served_names.decide([f for f in facts if f is not None], claims)


def _live(ctx: context.Context) -> ownership.Index | None:
    """The operator's ownership index, once a listing filled it and the watches keep it current;
    None before (the watches have not reported yet: read the API)."""
    watched = all(ctx.informer.attached(kind) for kind in (cluster.MODEL_ENTRY, cluster.MODEL_ENDPOINT))
    return ctx.ownership if watched and ctx.ownership.complete else None


async def check_ownership(
    ctx: context.Context, endpoint: api.ModelEndpoint, body: dict[str, Any], entry: api.ModelEntry | None
) -> None:
    """Deny what served-name ownership forbids (:mod:`modelyard.api.served_names`), for the
    endpoint's served name and for its adapters' names (``entry``: its entry as read).
    Judged from the ownership index once the watches report; a denial is confirmed against
    the API (the index may be a moment behind an owner that just left or shared)."""
    key = (endpoint.namespace or "", endpoint.name)
    created = (body.get("metadata") or {}).get("creationTimestamp")
    live = _live(ctx)
    if live is not None:
        names = [adapter.name for adapter in endpoint.spec.adapters or ()]
        fact = served_names.facts_of(endpoint, entry, created)
        ownership = live.with_endpoint(key, fact, (endpoint.spec.model, entry), names)
        if ownership_problem(endpoint, ownership, served_by_others(live, key, names)) is None:
            return
    problem = ownership_problem(endpoint, *await listed(ctx, endpoint, key, created))
    if problem is not None:
        raise kopf.AdmissionError(problem, code=403)


def ownership_problem(
    endpoint: api.ModelEndpoint, ownership: served_names.Ownership, served: dict[str, str]
) -> str | None:
    """Why served-name ownership forbids the endpoint (the first reason), or None: ``ownership``
    the rule's answer with the endpoint in it, ``served`` the other endpoints' served names."""
    namespace = endpoint.namespace or ""
    verdict = ownership.verdict(namespace, endpoint.name)
    if verdict.conflict is not None:
        return verdict.conflict
    ignored = verdict.fallback_message()
    if ignored is not None:
        return ignored
    for i, adapter in enumerate(endpoint.spec.adapters or ()):
        where = f"spec.adapters[{i}].name"
        if adapter.name in served:
            return (
                f"{where}: {adapter.name!r} is the served name of ModelEndpoint {served[adapter.name]}; "
                "an adapter needs a served name of its own"
            )
        if not ownership.may_serve(namespace, adapter.name):
            owner = ownership.owners[adapter.name].describe()
            return f"{where}: served name {adapter.name!r} belongs to {owner} ({served_names.RULE})"
    return None


async def listed(
    ctx: context.Context, endpoint: api.ModelEndpoint, key: tuple[str, str], created: str | None
) -> tuple[served_names.Ownership, dict[str, str]]:
    """:func:`check_ownership`'s reading from the API (before the watches report, and to
    confirm a denial): the rule over everything it lists, and the served name of every other
    endpoint (``namespace/name``)."""
    entries, endpoints = await _cluster_now(ctx)
    others = [(e, created) for e, created in endpoints if (e.namespace or "", e.name) != key]
    ownership = _ownership(entries, [*others, (endpoint, created)])
    served = {
        f.served_name: f"{f.namespace}/{f.name}"
        for e, when in others
        if (f := served_names.facts_of(e, entries.get(e.spec.model), when)) is not None
    }
    return ownership, served


def served_by_others(live: ownership.Index, key: tuple[str, str], names: list[str]) -> dict[str, str]:
    """Which other endpoint (``namespace/name``) has each of ``names`` (the endpoint's adapters')
    as its own served name; of several, the last in the API's order, as :func:`listed` says."""
    served: dict[str, str] = {}
    for name in names:
        others = (f for f in live.serving(name) if f.key != key and f.served_name == name)
        found = [f"{f.namespace}/{f.name}" for f in others]
        if found:
            served[name] = max(found)
    return served


async def warn_shut_out(ctx: context.Context, entry: api.ModelEntry, warnings: list[str]) -> None:
    """An entry's servingNamespaces may leave running endpoints in conflict: say which."""
    live = _live(ctx)
    if live is None:
        entries, endpoints = await _cluster_now(ctx)
        before = _ownership(entries, endpoints)
        after = _ownership({**entries, entry.name: entry}, endpoints)
    else:
        before, after = live.with_entry(entry)
    shut_out = sorted(
        f"{key[0]}/{key[1]}"
        for key, verdict in after.verdicts.items()
        if verdict.conflict is not None and before.verdict(*key).conflict is None
    )
    if shut_out:
        warnings.append(
            f"spec.servingNamespaces: these ModelEndpoints will be in ServedNameConflict and stop "
            f"serving: {', '.join(shut_out[:20])}{', ...' if len(shut_out) > 20 else ''}"
        )
