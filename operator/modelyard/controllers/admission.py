"""Admission: deny contradictions that need other objects to see, warn where GitOps ordering
may still make things right. CEL in the CRDs covers what one object says about itself.

    ModelEndpoint  deny: the entry cannot serve inference, is invalid, or does not fit
                         spec.resources.gpuType at its maxModelLen
                   warn: the entry does not exist yet; the entry is deprecated
    TrainingJob    deny: the entry cannot be trained (capabilities, upstream, deprecated),
                         or the GPU type is too small for the method
                   warn: the entry does not exist yet
    ModelEntry     warn: the registry cannot resolve it (its status will say Invalid)
"""

from __future__ import annotations

from typing import Any, TypeVar

import kopf
import pydantic

from modelyard import api
from modelyard.builders import deployment, registration, runtime_args
from modelyard.controllers import cluster, context, model_entry
from modelyard.registry import catalog, gpus, manifests, resolve

T = TypeVar("T", bound=pydantic.BaseModel)


def _parse(model: type[T], body: dict[str, Any]) -> T:
    try:
        return model.model_validate({k: v for k, v in body.items() if k != "status"})
    except pydantic.ValidationError as exc:
        raise kopf.AdmissionError("; ".join(manifests.field_errors(exc)), code=422) from None


async def _entry(ctx: context.Context, name: str) -> api.ModelEntry | None:
    body = await ctx.cluster.get(cluster.MODEL_ENTRY, name)
    return model_entry.parse(body) if body is not None else None


async def validate_endpoint(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    endpoint = _parse(api.ModelEndpoint, body)
    entry = await _entry(ctx, endpoint.spec.model)
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
    verdict = catalog.validate_inference(
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
    await _registration_warnings(ctx, job, str(body.get("metadata", {}).get("uid", "")), warnings)
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
    verdict = catalog.validate_training(entry, job.spec.method, memory)
    if not verdict.ok:
        raise kopf.AdmissionError(f"spec.model: {verdict.reason}", code=422)


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
    result = resolve.resolve(entry)
    if not result.ok:
        warnings.append(
            f"the registry cannot resolve this entry (its status will say Invalid): {result.reason}"
        )
