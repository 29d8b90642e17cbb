"""The Model Garden registry routes: list, detail, deployments, categories, and the two
validations. Validation only reads: it answers whether a model fits, it changes nothing."""

from __future__ import annotations

from aiohttp import web

from modelyard.registry import errors, gpus, verdicts
from modelyard.statusapi import envelope, keys, present, queries, schemas


async def list_models(request: web.Request) -> web.Response:
    query = envelope.parse_query(schemas.ModelQuery, request.query)
    index = queries.catalog(request.app[keys.CACHE])

    def render() -> bytes:
        names = index.find(query)
        page = names[query.offset : query.offset + query.limit]
        return envelope.encode([index.summaries[n] for n in page], total=len(names))

    return envelope.ok_bytes(index.page(tuple(query.model_dump().values()), render))


def _serving(request: web.Request, entry_name: str) -> list[schemas.EndpointSummary]:
    return [
        e
        for e in queries.endpoints(request.app[keys.CACHE], request.app[keys.TRAFFIC])
        if e.model == entry_name
    ]


async def get_model(request: web.Request) -> web.Response:
    index = queries.catalog(request.app[keys.CACHE])
    entry = index.get(request.match_info["id"])
    serving = _serving(request, entry.name)
    detail = present.detail(entry, index.resolutions[entry.name], index.ids[entry.name], serving)
    return envelope.ok(detail.model_dump(mode="json"))


async def model_deployments(request: web.Request) -> web.Response:
    entry = queries.catalog(request.app[keys.CACHE]).get(request.match_info["id"])
    serving = _serving(request, entry.name)
    return envelope.ok([e.model_dump(mode="json") for e in serving], total=len(serving))


async def categories(request: web.Request) -> web.Response:
    found = queries.catalog(request.app[keys.CACHE]).categories()
    return envelope.ok({k: v.model_dump(mode="json") for k, v in found.items()})


def _gpu_memory(gpu_type: str | None, given: float | None) -> tuple[str | None, float | None]:
    """The canonical GPU label and its memory; 400 naming gpu_type for an unknown one."""
    if gpu_type is None:
        return None, given
    try:
        label = gpus.canonical(gpu_type)
    except errors.RegistryError as exc:
        raise envelope.ApiError(
            400, "invalid_request", f"gpu_type: {exc}", [{"field": "gpu_type", "message": str(exc)}]
        ) from None
    return label, gpus.MEMORY_GIB[label]


async def validate_training(request: web.Request) -> web.Response:
    body = await envelope.parse_body(schemas.ValidateTrainingRequest, request)
    entry = queries.catalog(request.app[keys.CACHE]).get(body.model_id)
    label, memory = _gpu_memory(body.gpu_type, body.gpu_memory_gb)
    verdict = verdicts.validate_training(entry, body.method, memory)
    answer = schemas.TrainingVerdict(
        is_valid=verdict.ok,
        error_message=None if verdict.ok else verdict.reason,
        notes=verdict.reason if verdict.ok else None,
        model_id=body.model_id,
        entry=entry.name,
        method=body.method,
        gpu_type=label,
        gpu_memory_gb=memory,
    )
    return envelope.ok(answer.model_dump(mode="json"))


async def validate_inference(request: web.Request) -> web.Response:
    body = await envelope.parse_body(schemas.ValidateInferenceRequest, request)
    index = queries.catalog(request.app[keys.CACHE])
    entry = index.get(body.model_id)
    label, memory = _gpu_memory(body.gpu_type, body.gpu_memory_gb)
    verdict = verdicts.validate_inference(
        entry,
        gpu_type=label,
        gpu_memory_gib=memory,
        gpu_count=body.gpu_count,
        max_model_len=body.max_model_len,
    )
    requirements = index.resolutions[entry.name].requirements
    defaults = entry.spec.inference_defaults
    available = memory * body.gpu_count if memory is not None else None
    reason = verdict.reason
    if verdict.ok and reason is None and requirements.min_vram_gb is not None and available is not None:
        reason = (
            f"needs at least {requirements.min_vram_gb:g} GiB of GPU memory "
            f"(recommended {requirements.recommended_vram_gb or requirements.min_vram_gb:g}); "
            f"{body.gpu_count}x {label or 'GPU'} has {available:g} GiB"
        )
    answer = schemas.InferenceVerdict(
        is_valid=verdict.ok,
        fits=verdict.ok,
        error_message=None if verdict.ok else verdict.reason,
        reason=reason,
        model_id=body.model_id,
        entry=entry.name,
        gpu_type=label,
        gpu_count=body.gpu_count,
        gpu_memory_gb=memory,
        available_vram_gb=available,
        min_vram_gb=requirements.min_vram_gb,
        recommended_vram_gb=requirements.recommended_vram_gb,
        max_model_len=body.max_model_len or (defaults.max_model_len if defaults else None),
    )
    return envelope.ok(answer.model_dump(mode="json"))
