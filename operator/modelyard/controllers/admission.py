"""Admission: deny contradictions that need other objects to see, warn where GitOps ordering
may still make things right. CEL in the CRDs covers what one object says about itself.

    ModelEndpoint  deny: its served name belongs to another namespace or to the platform, its
                         entry's servingNamespaces leave its namespace out, or its fallback
                         names another namespace's served name (api/served_names.py);
                         spec.image outside allowedImagePrefixes; trust-changing engineArgs
                         the entry does not allow (:mod:`modelyard.builders.trust`);
                         the entry cannot serve inference, is invalid, or does not fit
                         spec.resources.gpuType at its maxModelLen; an adapter
                         entry that does not exist, is no adapter or adapts another base;
                         an adapter name another endpoint serves or another namespace owns
                   warn: the entry does not exist yet; the entry is deprecated
    TrainingJob    deny: spec.image outside allowedImagePrefixes;
                         the entry cannot be trained (capabilities, upstream, deprecated),
                         or the GPU type is too small for the method
                   warn: the entry does not exist yet; output.serveOn's endpoint does not
    ModelEntry     warn: the registry cannot resolve it (its status will say Invalid); its
                         servingNamespaces shut endpoints out (they go to ServedNameConflict)

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
* **The endpoint's own entry is read** (one GET, as the other checks need it anyway): its
  served name and a ``servingNamespaces`` claim made a moment ago count at once.
* **A denial is confirmed by a listing** (:func:`_listed`, whose words the denial gives): an
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

from typing import Any, TypeVar

import kopf
import pydantic

from modelyard import api
from modelyard.api import served_names, wire
from modelyard.builders import adapters, deployment, registration, runtime_args, trust
from modelyard.controllers import cluster, context, model_entry, ownership
from modelyard.registry import gpus, manifests, resolve, verdicts

T = TypeVar("T", bound=pydantic.BaseModel)


def _parse(model: type[T], body: dict[str, Any]) -> T:
    try:
        return model.model_validate({k: v for k, v in body.items() if k != "status"})
    except pydantic.ValidationError as exc:
        raise kopf.AdmissionError("; ".join(manifests.field_errors(exc)), code=422) from None


def _deny(problem: str | None) -> None:
    if problem is not None:
        raise kopf.AdmissionError(problem, code=403)


async def _entry(ctx: context.Context, name: str) -> api.ModelEntry | None:
    body = await ctx.cluster.get(cluster.MODEL_ENTRY, name)
    return model_entry.parse(body) if body is not None else None


def _parsed_entry(body: dict[str, Any] | None) -> api.ModelEntry | None:
    """The entry, or None when it is absent or invalid (an invalid entry serves no name)."""
    try:
        return model_entry.parse(body) if body is not None else None
    except pydantic.ValidationError:
        return None


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


async def _check_ownership(
    ctx: context.Context, endpoint: api.ModelEndpoint, body: dict[str, Any], entry: api.ModelEntry | None
) -> None:
    """Deny what served-name ownership forbids (:mod:`modelyard.api.served_names`), for the
    endpoint's served name and for its adapters' names (``entry``: its entry as just read).
    Judged from the ownership index once the watches report; a denial is confirmed against
    the API (the index may be a moment behind an owner that just left or shared)."""
    key = (endpoint.namespace or "", endpoint.name)
    created = (body.get("metadata") or {}).get("creationTimestamp")
    live = _live(ctx)
    if live is not None:
        names = [adapter.name for adapter in endpoint.spec.adapters or ()]
        fact = served_names.facts_of(endpoint, entry, created)
        ownership = live.with_endpoint(key, fact, (endpoint.spec.model, entry), names)
        if ownership_problem(endpoint, ownership, _served_by_others(live, key, names)) is None:
            return
    problem = ownership_problem(endpoint, *await _listed(ctx, endpoint, key, created))
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


async def _listed(
    ctx: context.Context, endpoint: api.ModelEndpoint, key: tuple[str, str], created: str | None
) -> tuple[served_names.Ownership, dict[str, str]]:
    """:func:`_check_ownership`'s reading from the API (before the watches report, and to
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


def _served_by_others(live: ownership.Index, key: tuple[str, str], names: list[str]) -> dict[str, str]:
    """Which other endpoint (``namespace/name``) has each of ``names`` (the endpoint's adapters')
    as its own served name; of several, the last in the API's order, as :func:`_listed` says."""
    served: dict[str, str] = {}
    for name in names:
        others = (f for f in live.serving(name) if f.key != key and f.served_name == name)
        found = [f"{f.namespace}/{f.name}" for f in others]
        if found:
            served[name] = max(found)
    return served


async def _check_adapter_entries(ctx: context.Context, endpoint: api.ModelEndpoint, base: str | None) -> None:
    """Each ``spec.adapters[].entry`` must be an adapter over the endpoint's base (``base``:
    None while the endpoint's own entry does not exist, so the base is not known yet)."""
    for i, adapter in enumerate(endpoint.spec.adapters or ()):
        if adapter.entry is None:
            continue
        problem = adapters.entry_problem(adapter.entry, await _entry(ctx, adapter.entry), base or "")
        if problem is not None and (base is not None or problem[0] != "WrongBase"):
            raise kopf.AdmissionError(f"spec.adapters[{i}].entry: {problem[1]}", code=422)


async def _warn_shut_out(ctx: context.Context, entry: api.ModelEntry, warnings: list[str]) -> None:
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


async def validate_endpoint(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    endpoint = _parse(api.ModelEndpoint, body)
    _deny(trust.image_problem(endpoint.spec.image, ctx.settings))
    found = await ctx.cluster.get(cluster.MODEL_ENTRY, endpoint.spec.model)
    entry = _parsed_entry(found)
    await _check_ownership(ctx, endpoint, body, entry)
    if found is not None and entry is None:
        entry = model_entry.parse(found)  # invalid: raises, after the ownership check, as before
    _deny(trust.engine_args_problem(endpoint.spec.engine_args, entry))
    await _check_adapter_entries(ctx, endpoint, adapters.base_of(entry) if entry is not None else None)
    if entry is None:
        model = endpoint.spec.model
        warnings.append(
            f"ModelEntry {model!r} does not exist yet: the endpoint stays Pending until it is applied"
        )
        return
    if entry.spec.lifecycle == "deprecated":
        warnings.append(f"ModelEntry {entry.name!r} is deprecated")
    result = await model_entry.resolved(ctx, entry)
    if not result.ok:
        raise kopf.AdmissionError(
            f"spec.model: ModelEntry {entry.name!r} is invalid: {result.reason}", code=422
        )
    if not result.capabilities.inference:
        raise kopf.AdmissionError(
            f"spec.model: ModelEntry {entry.name!r} cannot serve inference (capabilities.inference is false)",
            code=422,
        )
    resources = endpoint.spec.resources
    if (
        resources is None
        or not resources.gpu_type
        or deployment.resolved_engine(entry, endpoint) == "upstream"
    ):
        return
    try:
        gpus.canonical(resources.gpu_type)
    except Exception as exc:
        raise kopf.AdmissionError(f"spec.resources.gpuType: {exc}", code=422) from None
    options = runtime_args.engine_options(entry, endpoint)
    max_len = options.get("max-model-len")
    utilization = options.get("gpu-memory-utilization")
    verdict = verdicts.validate_inference(
        entry,
        gpu_type=resources.gpu_type,
        gpu_count=max(1, deployment.gpu_count(entry, endpoint)),
        max_model_len=int(max_len) if max_len else None,
        gpu_memory_utilization=float(utilization) if utilization else None,
    )
    if not verdict.ok:
        raise kopf.AdmissionError(f"spec.resources.gpuType: {verdict.reason}", code=422)


async def validate_training_job(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    job = _parse(api.TrainingJob, body)
    _deny(trust.image_problem(job.spec.image, ctx.settings))
    await _registration_warnings(ctx, job, str(body.get("metadata", {}).get("uid", "")), warnings)
    await _serve_on_warnings(ctx, job, warnings)
    entry = await _entry(ctx, job.spec.model)
    if entry is None:
        warnings.append(
            f"ModelEntry {job.spec.model!r} does not exist yet: the job waits until it is applied"
        )
        return
    memory = None
    if job.spec.resources is not None and job.spec.resources.gpu_type:
        try:
            memory = gpus.memory_gib(job.spec.resources.gpu_type) * max(1, job.spec.resources.gpus or 1)
        except Exception as exc:
            raise kopf.AdmissionError(f"spec.resources.gpuType: {exc}", code=422) from None
    verdict = verdicts.validate_training(entry, job.spec.method, memory)
    if not verdict.ok:
        raise kopf.AdmissionError(f"spec.model: {verdict.reason}", code=422)


async def _serve_on_warnings(ctx: context.Context, job: api.TrainingJob, warnings: list[str]) -> None:
    """``output.serveOn``: say now when its endpoint is missing or will not see the output."""
    serve_on = job.spec.output.serve_on
    if serve_on is None:
        return
    where = f"spec.output.serveOn.endpoint: ModelEndpoint {serve_on.endpoint!r}"
    body = await ctx.cluster.get(cluster.MODEL_ENDPOINT, serve_on.endpoint, job.namespace)
    if body is None:
        warnings.append(
            f"{where} does not exist (yet) in namespace {job.namespace}: the adapter loads once it does"
        )
        return
    claim = wire.pvc_claim(job.spec.output.uri)
    claims = (body.get("spec") or {}).get("adapterClaims") or []
    if claim is not None and claim not in claims:
        warnings.append(
            f"{where} does not list claim {claim!r} in spec.adapterClaims: unless it is its model's "
            "claim, the adapter will be ClaimNotMounted (add it there: one rollout)"
        )


async def _registration_warnings(
    ctx: context.Context, job: api.TrainingJob, uid: str, warnings: list[str]
) -> None:
    """Say at apply time what ``output.register`` will come to (the status says it again at the
    end): refused by the platform, or a name an entry of someone else's holds."""
    if job.spec.output.register_as is None:
        return
    refused = registration.refusal(job, ctx.settings)
    if refused is not None:
        warnings.append(f"spec.output.register: this job will register nothing: {refused}")
        return
    name = registration.name_for(job, ctx.settings)
    existing = await ctx.cluster.get(cluster.MODEL_ENTRY, name)
    if existing is not None and not registration.made_by(existing, uid):
        warnings.append(
            f"spec.output.register.name: ModelEntry {name} exists and registration never changes an "
            f"entry it did not create: this job will register nothing (RegistrationConflict)"
        )
    elif name != job.spec.output.register_as.name:
        warnings.append(f"spec.output.register.name: the registered ModelEntry will be {name}")


async def validate_entry(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    entry = _parse(api.ModelEntry, body)
    if entry.spec.serving_namespaces is not None:
        await _warn_shut_out(ctx, entry, warnings)
    result = resolve.resolve(entry)
    if not result.ok:
        warnings.append(
            f"the registry cannot resolve this entry (its status will say Invalid): {result.reason}"
        )
