"""Resolve a ModelEntry: what it is (architecture, family, category), what it can do and what it
needs, from its spec and, when there is one, its config.json. The operator writes the result to
the entry's status; the CLI and the status API show it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from modelyard import api
from modelyard.api import model_entry
from modelyard.registry import architectures, errors, estimates

# Capabilities of a category when neither the spec nor an architecture says.
_CATEGORY_CAPABILITIES: dict[str, dict[str, bool]] = {
    "text-llm": {"training": True, "inference": True, "streaming": True},
    "vision-vlm": {"training": True, "inference": True, "streaming": True, "vision": True},
    "embedding": {"inference": True},
    "rerank": {"inference": True},
    "speech": {"inference": True},
}


@dataclasses.dataclass(frozen=True)
class Resolution:
    """An entry as the registry understands it. ``ok`` False means the entry is Invalid."""

    ok: bool
    reason: str | None
    served_name: str
    architecture: str | None = None
    family: str | None = None
    category: model_entry.Category | None = None
    capabilities: model_entry.Capabilities = dataclasses.field(default_factory=model_entry.Capabilities)
    requirements: model_entry.Requirements = dataclasses.field(default_factory=model_entry.Requirements)
    estimate: model_entry.MemoryEstimate | None = None
    config: Mapping[str, Any] | None = None


def _capabilities(
    info: architectures.ArchitectureInfo | None, category: str | None
) -> model_entry.Capabilities:
    if info is not None and (category is None or category == info.category):
        return model_entry.Capabilities.model_validate(dataclasses.asdict(info.capabilities))
    return model_entry.Capabilities.model_validate(_CATEGORY_CAPABILITIES.get(category or "", {}))


def _requirements(
    given: model_entry.Requirements | None, estimate: estimates.Estimate | None
) -> model_entry.Requirements:
    derived: dict[str, Any] = {}
    if estimate is not None:
        derived = {
            "min_vram_gb": float(estimate.min_vram_gb),
            "recommended_vram_gb": float(max(estimate.recommended_vram_gb, estimate.min_vram_gb)),
            "min_ram_gb": float(estimate.min_ram_gb),
            "min_gpus": estimate.min_gpus,
        }
    explicit = given.model_dump(exclude_none=True, by_alias=False) if given else {}
    merged = {**derived, **explicit}
    if (
        "min_vram_gb" in explicit
        and "recommended_vram_gb" not in explicit
        and "recommended_vram_gb" in merged
    ):
        merged["recommended_vram_gb"] = max(merged["recommended_vram_gb"], explicit["min_vram_gb"])
    return model_entry.Requirements.model_validate(merged)


def _rule_problems(
    spec: model_entry.ModelEntrySpec, category: str | None, caps: model_entry.Capabilities
) -> list[str]:
    problems = []
    if spec.runtime and spec.runtime.pooling and category not in (None, "embedding"):
        problems.append(f"runtime.pooling is for embedding models, but the category is {category}")
    if caps.vision and category not in (None, "vision-vlm"):
        problems.append(f"capabilities.vision needs category vision-vlm, not {category}")
    if spec.engine == "vllm" and category == "speech" and spec.runtime and spec.runtime.handler:
        problems.append("runtime.handler is only used by the transformers engine")
    return problems


def resolve(entry: api.ModelEntry, config: Mapping[str, Any] | None = None) -> Resolution:
    """Resolve ``entry``; ``config`` is its config.json when it was fetched (e.g. a ConfigMap)."""
    spec = entry.spec
    served = spec.served_name or spec.source.repo or entry.name
    if config is None and spec.config is not None:
        config = spec.config.inline
    try:
        info = architectures.lookup(spec.architecture) if spec.architecture else None
        if info is None and config:
            info = architectures.detect(config)
    except errors.RegistryError as exc:
        return Resolution(ok=False, reason=str(exc), served_name=served, config=config)
    if config and info and spec.architecture and config.get("architectures"):
        listed = config["architectures"]
        if not isinstance(listed, list) or not isinstance(listed[0], str):  # as detect() says it
            reason = f"config.json: 'architectures' must be a list of class names, got {listed!r}"
            return Resolution(ok=False, reason=reason, served_name=served, config=config)
        detected = listed[0]
        if detected != spec.architecture:
            reason = (
                f"spec.architecture {spec.architecture} contradicts config.json's architectures[0] {detected}"
            )
            return Resolution(ok=False, reason=reason, served_name=served, config=config)
    category = spec.category or (info.category if info else None)
    if category is None and spec.engine != "upstream":
        return Resolution(
            ok=False,
            reason="cannot tell what this model is: give spec.architecture, spec.config or spec.category",
            served_name=served,
        )
    estimate = None
    if config:
        try:
            estimate = estimates.estimate(config, dtype=_serving_dtype(spec))
        except errors.RegistryError as exc:
            return Resolution(ok=False, reason=str(exc), served_name=served, config=config)
    capabilities = spec.capabilities or _capabilities(info, category)
    problems = _rule_problems(spec, category, capabilities)
    memory = None
    if estimate is not None:
        memory = model_entry.MemoryEstimate(
            parameters=estimate.parameters,
            weight_bytes=estimate.weight_bytes,
            kv_cache_bytes_per_token=estimate.kv_cache_bytes_per_token,
            min_vram_gb=float(estimate.min_vram_gb),
        )
    return Resolution(
        ok=not problems,
        reason="; ".join(problems) or None,
        served_name=served,
        architecture=info.architecture if info else spec.architecture,
        family=info.family if info else None,
        category=category,
        capabilities=capabilities,
        requirements=_requirements(spec.requirements, estimate),
        estimate=memory,
        config=config,
    )


def _serving_dtype(spec: model_entry.ModelEntrySpec) -> str | None:
    dtype = spec.inference_defaults.dtype if spec.inference_defaults else None
    return None if dtype in (None, "auto") else dtype
