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

Served-name ownership: :mod:`.admission_names`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import kopf
import pydantic

from modelyard import api
from modelyard.api import wire
from modelyard.builders import adapters, deployment, registration, runtime_args, trust
from modelyard.controllers import admission_names, cluster, context, informer, model_entry
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


Read = Callable[[str], Awaitable[dict[str, Any] | None]]
"""How an endpoint's check reads an entry by name: from the watches, or fresh."""


async def _entry(ctx: context.Context, name: str) -> api.ModelEntry | None:
    body = await ctx.cluster.get(cluster.MODEL_ENTRY, name)
    return model_entry.parse(body) if body is not None else None


def _parsed_entry(body: dict[str, Any] | None) -> api.ModelEntry | None:
    """The entry, or None when it is absent or invalid (an invalid entry serves no name)."""
    try:
        return model_entry.parse(body) if body is not None else None
    except pydantic.ValidationError:
        return None


async def _check_adapter_entries(read: Read, endpoint: api.ModelEndpoint, base: str | None) -> None:
    """Each ``spec.adapters[].entry`` must be an adapter over the endpoint's base (``base``:
    None while the endpoint's own entry does not exist, so the base is not known yet)."""
    for i, adapter in enumerate(endpoint.spec.adapters or ()):
        if adapter.entry is None:
            continue
        found = await read(adapter.entry)
        problem = adapters.entry_problem(
            adapter.entry, model_entry.parse(found) if found is not None else None, base or ""
        )
        if problem is not None and (base is not None or problem[0] != "WrongBase"):
            raise kopf.AdmissionError(f"spec.adapters[{i}].entry: {problem[1]}", code=422)


async def validate_endpoint(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    """The entries an endpoint names are read from the watches (:mod:`.informer`: a miss is a
    GET). A denial stands only if they are still what the API says (a GET each); otherwise the
    endpoint is judged again from the API, so an entry a moment behind never refuses an
    endpoint. One a moment behind may admit one, as a change of the entry just after the
    admission would: the operator checks the same rules when it reconciles and reports the
    endpoint's problem in its status (issue #22: the GET was one request per endpoint)."""
    endpoint = _parse(api.ModelEndpoint, body)
    _deny(trust.image_problem(endpoint.spec.image, ctx.settings))
    seen: dict[str, dict[str, Any] | None] = {}
    now: dict[str, dict[str, Any] | None] = {}

    async def watched(name: str) -> dict[str, Any] | None:
        seen[name] = await ctx.informer.read(ctx.cluster, cluster.MODEL_ENTRY, name)
        return seen[name]

    async def fresh(name: str) -> dict[str, Any] | None:
        if name not in now:
            now[name] = await ctx.cluster.get(cluster.MODEL_ENTRY, name)
        return now[name]

    if ctx.informer.attached(cluster.MODEL_ENTRY):
        told: list[str] = []
        try:
            await _check_endpoint(ctx, endpoint, body, watched, told)
        except (kopf.AdmissionError, pydantic.ValidationError):
            if all([_same(seen[name], await fresh(name)) for name in seen]):
                raise  # judged on the entries as they are (ownership: confirmed by a listing)
        else:
            warnings.extend(told)
            return
    await _check_endpoint(ctx, endpoint, body, fresh, warnings)


def _same(watched: dict[str, Any] | None, fresh: dict[str, Any] | None) -> bool:
    if watched is None or fresh is None:
        return watched is fresh
    return informer.essence(watched) == informer.essence(fresh)


async def _check_endpoint(
    ctx: context.Context, endpoint: api.ModelEndpoint, body: dict[str, Any], read: Read, warnings: list[str]
) -> None:
    found = await read(endpoint.spec.model)
    entry = _parsed_entry(found)
    await admission_names.check_ownership(ctx, endpoint, body, entry)
    if found is not None and entry is None:
        entry = model_entry.parse(found)  # invalid: raises, after the ownership check, as before
    _deny(trust.engine_args_problem(endpoint.spec.engine_args, entry))
    await _check_adapter_entries(read, endpoint, adapters.base_of(entry) if entry is not None else None)
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
        await admission_names.warn_shut_out(ctx, entry, warnings)
    result = resolve.resolve(entry)
    if not result.ok:
        warnings.append(
            f"the registry cannot resolve this entry (its status will say Invalid): {result.reason}"
        )
