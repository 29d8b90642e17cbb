"""The status API's wire format: request models (validated, so a bad field is a 400 that names
it) and response models (the single source of the OpenAPI document's schemas).

Keys are snake_case, as in the Model Garden registry API this one follows; nested registry
objects (requirements, defaults) are the ModelEntry's own fields in snake_case.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from modelyard.api import model_entry, training_job


class Request(pydantic.BaseModel):
    """Request bodies and query strings: unknown keys are an error, so a typo is not ignored."""

    model_config = pydantic.ConfigDict(extra="forbid")


class Response(pydantic.BaseModel):
    """Response data."""


# -- requests ------------------------------------------------------------------------------


class ModelQuery(Request):
    """Filters and pagination of ``GET /api/v1/registry/models``."""

    category: model_entry.Category | None = None
    """text-llm, vision-vlm, embedding, speech or rerank."""
    tag: str | None = None
    """Entries carrying this tag."""
    lifecycle: model_entry.Lifecycle | None = None
    """stable, experimental or deprecated (the Model Garden ``status``)."""
    status: model_entry.Lifecycle | None = None
    """Alias of lifecycle, as Model Garden names it."""
    capability: str | None = None
    """A capability the model must have, e.g. training or structured_outputs."""
    q: str | None = pydantic.Field(default=None, max_length=200)
    """Free text searched in names, description and tags."""
    limit: int = pydantic.Field(default=100, ge=1, le=1000)
    """Page size."""
    offset: int = pydantic.Field(default=0, ge=0)
    """Items to skip."""


class EndpointQuery(Request):
    """Filters of ``GET /api/v1/endpoints``."""

    namespace: str | None = None
    served_name: str | None = None
    model: str | None = None
    """ModelEntry name."""
    phase: str | None = None


class TrainingJobQuery(Request):
    """Filters of ``GET /api/v1/trainingjobs``."""

    namespace: str | None = None
    model: str | None = None
    phase: str | None = None


class ValidateTrainingRequest(Request):
    """Can this model be fine-tuned (on this GPU)?"""

    model_id: str = pydantic.Field(min_length=1)
    """Model id, served name or ModelEntry name."""
    method: training_job.Method = "lora"
    """lora, qlora or full."""
    gpu_type: str | None = None
    """GPU product label or alias (e.g. NVIDIA-L4, h100); sets gpu_memory_gb."""
    gpu_memory_gb: float | None = pydantic.Field(default=None, gt=0)
    """GPU memory in GiB, when no gpu_type is given."""


class ValidateInferenceRequest(Request):
    """Can this model be served on these GPUs?"""

    model_id: str = pydantic.Field(min_length=1)
    """Model id, served name or ModelEntry name."""
    gpu_type: str | None = None
    """GPU product label or alias (e.g. NVIDIA-L4, h100)."""
    gpu_memory_gb: float | None = pydantic.Field(default=None, gt=0)
    """GPU memory in GiB, when no gpu_type is given."""
    gpu_count: int = pydantic.Field(default=1, ge=1, le=64)
    """GPUs per replica."""
    max_model_len: int | None = pydantic.Field(default=None, ge=1)
    """Context length to fit; the entry's inference default when absent."""

    @pydantic.model_validator(mode="after")
    def _some_gpu(self) -> ValidateInferenceRequest:
        if self.gpu_type is None and self.gpu_memory_gb is None:
            raise ValueError("give gpu_type (or gpu_memory_gb)")
        return self


# -- responses -----------------------------------------------------------------------------


class ModelSummary(Response):
    """A registry entry as the model list shows it."""

    id: str
    """The model id (the source repo, else the served name): what /registry/models/{id} takes."""
    entry: str
    """ModelEntry name."""
    name: str
    """Display name."""
    served_name: str
    """The model name OpenAI clients send."""
    category: str | None
    parameters: str | None
    description: str | None
    tags: list[str]
    status: str
    """Lifecycle: stable, experimental or deprecated."""
    phase: str
    """Valid or Invalid (the entry's status, else resolved here)."""
    engine: str
    is_vision: bool
    is_quantized: bool
    min_vram_gb: float | None
    recommended_vram_gb: float | None


class AdapterSummary(Response):
    """A live adapter of an endpoint (``status.adapters``)."""

    name: str
    """Its served name."""
    pods: list[str]
    """Ready pods that have it loaded."""
    ready: bool
    """Loaded on every ready pod."""
    reason: str | None = None
    message: str | None = None
    """The runtime's error when a load failed."""


class EndpointSummary(Response):
    """A ModelEndpoint: where it stands and its share of its served name's traffic."""

    namespace: str
    name: str
    model: str
    """ModelEntry name."""
    model_id: str | None
    """The entry's model id, when the entry is known."""
    served_name: str
    engine: str | None
    phase: str
    """Pending, Progressing, Ready, Degraded, Failed, or Unknown before the first status."""
    ready: bool
    reason: str | None
    message: str | None
    replicas: int
    """``spec.replicas`` (with autoscaling: the starting size, or what the operator set)."""
    ready_replicas: int
    desired_replicas: int
    """What the autoscaler wants (``status.autoscaling.desiredReplicas``), else ``spec.replicas``."""
    current_replicas: int
    """Replicas that exist now (``status.autoscaling.currentReplicas``, else ``status.replicas``)."""
    min_replicas: int | None
    """``spec.autoscaling.minReplicas`` (0: scales to zero); None without autoscaling."""
    max_replicas: int | None
    last_scale_reason: str | None
    demand: float | None
    """Requests in flight + held for it over all gateways: live when the status API reads the
    gateways, else the last ``status.autoscaling.demand``."""
    requests_per_s: float | None
    """Requests sent to it per second, over all gateways (None: no gateway data)."""
    latency_s: float | None
    """Mean time to the last byte of the requests it answered since the previous scrape."""
    tokens_per_s: float | None
    """Prompt + completion tokens per second of its served name."""
    health: str
    """How to show the phase and reason: ``ok``, ``idle`` (scaled to zero), ``warn`` or ``error``."""
    url: str | None
    weight: int
    share: float
    """Fraction (0-1) of the served name's traffic this endpoint gets now (Ready ones only)."""
    gpus: int | None
    gpu_type: str | None
    fallback: list[str]
    created: str | None
    adapters: list[AdapterSummary] = []
    """Its live adapters, each with the pods that have it loaded or the runtime's error."""


class ModelDetail(ModelSummary):
    """Everything about one registry entry, and the endpoints serving it."""

    provider: str
    repo: str | None
    architecture: str | None
    family: str | None
    reason: str | None
    """Why the entry is Invalid."""
    source: dict[str, Any]
    quantization: dict[str, Any] | None
    requirements: dict[str, Any]
    capabilities: dict[str, bool]
    estimate: dict[str, Any] | None
    generation_defaults: dict[str, Any] | None
    inference_defaults: dict[str, Any] | None
    training_defaults: dict[str, Any] | None
    upstream: dict[str, Any] | None
    """base_url and model of an upstream proxy entry."""
    urls: dict[str, str]
    endpoints: list[EndpointSummary]


class CategoryInfo(Response):
    """A category: what it means and how many entries it has."""

    name: str
    description: str
    icon: str
    count: int


class TrainingProgress(Response):
    step: int | None = None
    total_steps: int | None = None
    percent: float | None = None
    epoch: float | None = None
    loss: float | None = None
    learning_rate: float | None = None
    eta_seconds: int | None = None
    updated: str | None = None


class TrainingJobSummary(Response):
    """A TrainingJob and its progress."""

    namespace: str
    name: str
    model: str
    method: str
    phase: str
    reason: str | None
    message: str | None
    progress: TrainingProgress
    registered_model: str | None
    served_at: str | None = None
    """When its adapter first answered on ``output.serveOn``'s endpoint."""
    job_name: str | None
    start_time: str | None
    completion_time: str | None
    created: str | None


class TrainingVerdict(Response):
    """The answer of /validate/training (Model Garden: is_valid and error_message)."""

    is_valid: bool
    error_message: str | None
    """Why not, when not valid."""
    notes: str | None
    """Worth knowing even when valid."""
    model_id: str
    entry: str
    method: str
    gpu_type: str | None
    gpu_memory_gb: float | None


class InferenceVerdict(Response):
    """The answer of /validate/inference: does the model fit, and why (not)."""

    is_valid: bool
    fits: bool
    error_message: str | None
    reason: str | None
    """The registry's explanation, whether it fits or not."""
    model_id: str
    entry: str
    gpu_type: str | None
    gpu_count: int
    gpu_memory_gb: float | None
    """Memory of one GPU."""
    available_vram_gb: float | None
    min_vram_gb: float | None
    recommended_vram_gb: float | None
    max_model_len: int | None


class Health(Response):
    status: Literal["ok"] = "ok"
    version: int
    """The cache's change counter."""


class ErrorBody(Response):
    code: str
    """A stable word: invalid_request, not_found, unauthorized, payload_too_large, ..."""
    message: str
    details: list[dict[str, str]] | None = None
    """For invalid_request: one {field, message} per problem."""
