"""How the status API shows each object: pure functions from a ModelEntry (and what the registry
resolved about it) or a raw ModelEndpoint / TrainingJob dict to a response model.

Endpoints and jobs are read from their dicts tolerantly (``.get`` all the way down): an
object with an unexpected field is still shown, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pydantic

from modelyard import api
from modelyard.registry import resolve
from modelyard.statusapi import schemas

# Category -> (name, description, icon), after the Model Garden document.
CATEGORY_INFO: dict[str, tuple[str, str, str]] = {
    "text-llm": ("Text-Only Language Models", "Models for text generation and completion tasks", "✍️"),
    "vision-vlm": ("Vision-Language Models", "Multimodal models for image + text understanding", "🎨"),
    "embedding": ("Embedding Models", "Vectors for search, clustering and retrieval", "🧭"),
    "speech": ("Speech Models", "Speech recognition and translation", "🎙️"),
    "rerank": ("Rerankers", "Relevance of documents to a query", "📊"),
}


def _snake(model: api.base.ApiModel | None) -> dict[str, Any] | None:
    return None if model is None else model.model_dump(mode="json", by_alias=False, exclude_none=True)


def summary(entry: api.ModelEntry, res: resolve.Resolution, model_id: str) -> schemas.ModelSummary:
    spec = entry.spec
    status = entry.status
    phase = (status.phase if status else None) or ("Valid" if res.ok else "Invalid")
    quantized = bool(spec.quantization and (spec.quantization.method or spec.quantization.type)) or bool(
        spec.inference_defaults and spec.inference_defaults.quantization
    )
    return schemas.ModelSummary(
        id=model_id,
        entry=entry.name,
        name=spec.display_name or res.served_name,
        served_name=res.served_name,
        category=res.category,
        parameters=spec.parameters,
        description=spec.description,
        tags=list(spec.tags or []),
        status=spec.lifecycle,
        phase=phase,
        engine=spec.engine,
        is_vision=res.capabilities.vision or res.category == "vision-vlm",
        is_quantized=quantized,
        min_vram_gb=res.requirements.min_vram_gb,
        recommended_vram_gb=res.requirements.recommended_vram_gb,
    )


def detail(
    entry: api.ModelEntry,
    res: resolve.Resolution,
    model_id: str,
    endpoints: Iterable[schemas.EndpointSummary],
) -> schemas.ModelDetail:
    spec = entry.spec
    upstream = None
    if spec.upstream is not None:
        upstream = {"base_url": spec.upstream.base_url, "model": spec.upstream.model}
    training = _snake(spec.training_defaults)
    if training is not None and "lora" in training:
        training["lora_config"] = training.pop("lora")  # the Model Garden key
    status = entry.status
    reason = res.reason or (status.reason if status else None)
    return schemas.ModelDetail(
        **summary(entry, res, model_id).model_dump(),
        provider=spec.source.provider,
        repo=spec.source.repo,
        architecture=res.architecture,
        family=res.family,
        reason=reason,
        source=_snake(spec.source) or {},
        quantization=_snake(spec.quantization),
        requirements=_snake(res.requirements) or {},
        capabilities=res.capabilities.model_dump(by_alias=False),
        estimate=_snake(res.estimate),
        generation_defaults=_snake(spec.generation_defaults),
        inference_defaults=_snake(spec.inference_defaults),
        training_defaults=training,
        upstream=upstream,
        urls=dict(spec.urls or {}),
        endpoints=list(endpoints),
    )


def _dig(obj: Mapping[str, Any], *path: str) -> Any:
    node: Any = obj
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def endpoints(
    raw: Iterable[Mapping[str, Any]], served_names: Mapping[str, str], model_ids: Mapping[str, str]
) -> list[schemas.EndpointSummary]:
    """Summaries with traffic shares: among the Ready endpoints of one served name, by weight
    (the gateway routes only to Ready ones). ``served_names``/``model_ids``: by entry name."""
    rows = []
    for obj in raw:
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        model = str(spec.get("model") or "")
        served = (
            _str(status.get("servedName")) or _str(spec.get("servedName")) or served_names.get(model) or model
        )
        phase = _str(status.get("phase")) or "Unknown"
        rows.append((obj, spec, status, model, served, phase, _int(spec.get("weight"), 100)))
    totals: dict[str, int] = {}
    for _, _, _, _, served, phase, weight in rows:
        if phase == "Ready":
            totals[served] = totals.get(served, 0) + weight
    out = []
    for obj, spec, status, model, served, phase, weight in rows:
        total = totals.get(served, 0)
        share = weight / total if phase == "Ready" and total > 0 else 0.0
        resources = spec.get("resources") or {}
        fallback = spec.get("fallback")
        out.append(
            schemas.EndpointSummary(
                namespace=str(_dig(obj, "metadata", "namespace") or ""),
                name=str(_dig(obj, "metadata", "name") or ""),
                model=model,
                model_id=model_ids.get(model),
                served_name=served,
                engine=_str(status.get("engine")) or _str(spec.get("engine")),
                phase=phase,
                ready=phase == "Ready",
                reason=_str(status.get("reason")),
                message=_str(status.get("message")),
                replicas=_int(spec.get("replicas"), 1),
                ready_replicas=_int(status.get("readyReplicas")),
                url=_str(status.get("url")),
                weight=weight,
                share=round(share, 4),
                gpus=gpus if isinstance(gpus := resources.get("gpus"), int) else None,
                gpu_type=_str(resources.get("gpuType")),
                fallback=[str(f) for f in fallback] if isinstance(fallback, list) else [],
                created=_str(_dig(obj, "metadata", "creationTimestamp")),
            )
        )
    return out


def training_job(obj: Mapping[str, Any]) -> schemas.TrainingJobSummary:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    found = status.get("progress")
    progress: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    step, total = progress.get("step"), progress.get("totalSteps")
    percent = progress.get("percent")
    if percent is None and isinstance(step, int) and isinstance(total, int) and total > 0:
        percent = 100.0 * step / total
    if status.get("phase") == "Succeeded":
        percent = 100.0
    fields = api.training_job.Progress.model_fields
    known = {k: progress.get(f.alias or k) for k, f in fields.items() if k != "percent"}
    try:
        shown = schemas.TrainingProgress.model_validate(
            {**{k: v for k, v in known.items() if v is not None}, "percent": percent}
        )
    except pydantic.ValidationError:  # a trainer wrote something odd: show what is sure
        shown = schemas.TrainingProgress(percent=percent if isinstance(percent, int | float) else None)
    return schemas.TrainingJobSummary(
        namespace=str(_dig(obj, "metadata", "namespace") or ""),
        name=str(_dig(obj, "metadata", "name") or ""),
        model=str(spec.get("model") or ""),
        method=str(spec.get("method") or "lora"),
        phase=_str(status.get("phase")) or "Pending",
        reason=_str(status.get("reason")),
        message=_str(status.get("message")),
        progress=shown,
        registered_model=_str(status.get("registeredModel")),
        job_name=_str(status.get("jobName")),
        start_time=_str(status.get("startTime")),
        completion_time=_str(status.get("completionTime")),
        created=_str(_dig(obj, "metadata", "creationTimestamp")),
    )
