"""Admission: deny contradictions that need other objects to see, warn where GitOps ordering
may still make things right. CEL in the CRDs covers what one object says about itself.

    ModelEndpoint  deny: spec.image outside allowedImagePrefixes; trust-changing engineArgs
                         the entry does not allow (:mod:`modelyard.builders.trust`);
                         the entry cannot serve inference, is invalid, or does not fit
                         spec.resources.gpuType at its maxModelLen
                   warn: the entry does not exist yet; the entry is deprecated
    TrainingJob    deny: spec.image outside allowedImagePrefixes;
                         the entry cannot be trained (capabilities, upstream, deprecated),
                         or the GPU type is too small for the method
                   warn: the entry does not exist yet
    ModelEntry     warn: the registry cannot resolve it (its status will say Invalid)
"""

from __future__ import annotations

from typing import Any, TypeVar

import kopf
import pydantic

from modelyard import api
from modelyard.builders import deployment, runtime_args, trust
from modelyard.controllers import cluster, context, model_entry
from modelyard.registry import catalog, gpus, manifests, resolve

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


async def validate_endpoint(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    endpoint = _parse(api.ModelEndpoint, body)
    _deny(trust.image_problem(endpoint.spec.image, ctx.settings))
    entry = await _entry(ctx, endpoint.spec.model)
    _deny(trust.engine_args_problem(endpoint.spec.engine_args, entry))
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
    _deny(trust.image_problem(job.spec.image, ctx.settings))
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


async def validate_entry(ctx: context.Context, body: dict[str, Any], warnings: list[str]) -> None:
    entry = _parse(api.ModelEntry, body)
    result = resolve.resolve(entry)
    if not result.ok:
        warnings.append(
            f"the registry cannot resolve this entry (its status will say Invalid): {result.reason}"
        )
