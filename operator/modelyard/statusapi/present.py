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
from modelyard.registry import estimates, resolve
from modelyard.statusapi import schemas, traffic

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


def _sized(entry: api.ModelEntry, res: resolve.Resolution) -> tuple[str | None, float | None, float | None]:
    """(size, min and recommended GPU memory): the spec's, else what the operator resolved from
    config.json into the status (a ``file://`` or ``pvc://`` source is read by the operator only)."""
    spec, status = entry.spec, entry.status
    requirements = res.requirements
    if requirements.min_vram_gb is None and status is not None and status.requirements is not None:
        requirements = status.requirements
    estimate = res.estimate or (status.estimate if status is not None else None)
    size = spec.parameters
    if size is None and estimate is not None and estimate.parameters:
        size = estimates.human_count(estimate.parameters)
    return size, requirements.min_vram_gb, requirements.recommended_vram_gb


def summary(entry: api.ModelEntry, res: resolve.Resolution, model_id: str) -> schemas.ModelSummary:
    spec = entry.spec
    status = entry.status
    size, min_vram, recommended_vram = _sized(entry, res)
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
        parameters=size,
        description=spec.description,
        tags=list(spec.tags or []),
        status=spec.lifecycle,
        phase=phase,
        engine=spec.engine,
        is_vision=res.capabilities.vision or res.category == "vision-vlm",
        is_quantized=quantized,
        min_vram_gb=min_vram,
        recommended_vram_gb=recommended_vram,
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


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def health(phase: str, reason: str | None) -> str:
    """How the dashboard colours an endpoint's phase and reason: a Ready endpoint's reason
    ("Available: 1/1 replicas ready") is no error."""
    if phase == "Ready":
        return "ok"
    if reason == "ScaledToZero":
        return "idle"
    if phase == "Failed" or reason == "Unschedulable":
        return "error"
    return "warn"


def endpoints(
    raw: Iterable[Mapping[str, Any]],
    served_names: Mapping[str, str],
    model_ids: Mapping[str, str],
    live: traffic.Traffic | None = None,
) -> list[schemas.EndpointSummary]:
    """Summaries with traffic shares: among the Ready endpoints of one served name, by weight
    (the gateway routes only to Ready ones). ``served_names``/``model_ids``: by entry name.
    ``live``: what the gateways report (demand, req/s, latency, tokens/s)."""
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
        scaling: Mapping[str, Any] = _map(spec.get("autoscaling"))
        scaled: Mapping[str, Any] = _map(status.get("autoscaling"))
        namespace = str(_dig(obj, "metadata", "namespace") or "")
        name = str(_dig(obj, "metadata", "name") or "")
        seen = live.of(f"{namespace}/{name}", served) if live is not None else traffic.EndpointTraffic()
        replicas = _int(spec.get("replicas"), 1)
        reason = _str(status.get("reason"))
        out.append(
            schemas.EndpointSummary(
                namespace=namespace,
                name=name,
                model=model,
                model_id=model_ids.get(model),
                served_name=served,
                engine=_str(status.get("engine")) or _str(spec.get("engine")),
                phase=phase,
                ready=phase == "Ready",
                reason=reason,
                message=_str(status.get("message")),
                replicas=replicas,
                ready_replicas=_int(status.get("readyReplicas")),
                desired_replicas=_int(scaled.get("desiredReplicas"), replicas),
                current_replicas=_int(scaled.get("currentReplicas"), _int(status.get("replicas"))),
                min_replicas=_int(scaling.get("minReplicas"), 1) if scaling else None,
                max_replicas=m if isinstance(m := scaling.get("maxReplicas"), int) else None,
                last_scale_reason=_str(scaled.get("lastScaleReason")),
                demand=seen.demand if seen.demand is not None else _float(scaled.get("demand")),
                requests_per_s=seen.requests_per_s,
                latency_s=seen.latency_s,
                tokens_per_s=seen.tokens_per_s,
                health=health(phase, reason),
                url=_str(status.get("url")),
                weight=weight,
                share=round(share, 4),
                gpus=gpus if isinstance(gpus := resources.get("gpus"), int) else None,
                gpu_type=_str(resources.get("gpuType")),
                fallback=[str(f) for f in fallback] if isinstance(fallback, list) else [],
                created=_str(_dig(obj, "metadata", "creationTimestamp")),
                adapters=_adapters(status.get("adapters")),
            )
        )
    return out


def _adapters(value: Any) -> list[schemas.AdapterSummary]:
    found = []
    for item in value if isinstance(value, list) else ():
        if isinstance(item, Mapping) and _str(item.get("name")):
            pods = item.get("pods")
            found.append(
                schemas.AdapterSummary(
                    name=str(item["name"]),
                    pods=[str(p) for p in pods] if isinstance(pods, list) else [],
                    ready=item.get("ready") is True,
                    reason=_str(item.get("reason")),
                    message=_str(item.get("message")),
                )
            )
    return found


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
        served_at=_str(status.get("servedAt")),
        job_name=_str(status.get("jobName")),
        start_time=_str(status.get("startTime")),
        completion_time=_str(status.get("completionTime")),
        created=_str(_dig(obj, "metadata", "creationTimestamp")),
    )
