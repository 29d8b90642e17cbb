"""TrainingJob: a LoRA, QLoRA or full fine-tune of a ModelEntry, run as a batch Job."""

from __future__ import annotations

from typing import Literal

import pydantic

from modelyard.api import base, model_endpoint, model_entry

Method = Literal["lora", "qlora", "full"]
DatasetFormat = Literal["auto", "chat", "instruction", "text"]
TrainingPhase = Literal["Pending", "Running", "Succeeded", "Failed"]


class Dataset(base.ApiModel):
    """Training data: JSONL from a URI or a ConfigMap (exactly one)."""

    uri: str | None = pydantic.Field(default=None, pattern="^(pvc|s3|file)://.+")
    """JSONL location, e.g. pvc://datasets/train.jsonl."""
    config_map: base.ConfigMapKeyRef | None = None
    """A ConfigMap key holding JSONL."""
    format: DatasetFormat = "auto"
    """chat (messages), instruction (prompt/completion), text, or auto-detect."""

    rules = (
        base.Rule(
            cel="has(self.uri) != has(self.configMap)",
            message="dataset needs exactly one of uri or configMap",
            check=lambda s: (s.uri is None) != (s.config_map is None),
        ),
    )


class Registration(base.ApiModel):
    """Register the result as a new ModelEntry."""

    name: str = pydantic.Field(pattern="^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    """Name of the ModelEntry to create."""
    served_name: str | None = None
    """Served name of the new entry; defaults to its name."""


class ServeOn(base.ApiModel):
    """Load the trained adapter into a running ModelEndpoint of the job's namespace."""

    endpoint: str = pydantic.Field(pattern="^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=253)
    """Name of the ModelEndpoint (same namespace) whose pods load the adapter on success."""


class Output(base.ApiModel):
    """Where the result goes."""

    uri: str = pydantic.Field(pattern="^(pvc|s3|file)://.+")
    """Output location for checkpoints, the adapter (or weights) and the manifest."""
    register_as: Registration | None = pydantic.Field(default=None, alias="register")
    """Create a ModelEntry for the result."""
    serve_on: ServeOn | None = None
    """On success, load the adapter live into this endpoint's pods (no restart), served under
    ``register.servedName`` (else the registered entry's name, else the job's name)."""

    rules = (
        base.Rule(
            cel="!has(self.serveOn) || self.uri.startsWith('pvc://') || self.uri.startsWith('file://')",
            message="output.serveOn needs a pvc:// or file:// output.uri (the endpoint's pods read it)",
            field_path=".serveOn",
            check=lambda s: s.serve_on is None or s.uri.startswith(("pvc://", "file://")),
        ),
    )


class Progress(base.ApiModel):
    """Live training progress."""

    step: int | None = None
    """Optimizer steps done."""
    total_steps: int | None = None
    """Optimizer steps in all."""
    epoch: float | None = None
    """Current epoch (fractional)."""
    loss: float | None = None
    """Latest training loss."""
    learning_rate: float | None = None
    """Current learning rate."""
    eta_seconds: int | None = None
    """Estimated seconds left."""
    percent: int | None = None
    """step/totalSteps in percent."""
    updated: str | None = None
    """When the trainer last reported (RFC 3339)."""


class EffectiveConfig(base.ApiModel):
    """The entry's trainingDefaults merged with the job's overrides."""

    hyperparameters: model_entry.Hyperparameters | None = None
    """Effective hyperparameters."""
    lora: model_entry.LoraConfig | None = None
    """Effective LoRA configuration (lora and qlora)."""


class TrainingJobSpec(base.ApiModel):
    """A fine-tune of a ModelEntry."""

    model: str = pydantic.Field(min_length=1, max_length=253)
    """Name of the ModelEntry to fine-tune."""
    method: Method = "lora"
    """lora, qlora or full."""
    dataset: Dataset
    """Training data."""
    hyperparameters: model_entry.Hyperparameters | None = None
    """Overrides of the entry's default hyperparameters."""
    lora: model_entry.LoraConfig | None = None
    """Overrides of the entry's default LoRA configuration."""
    resources: model_endpoint.EndpointResources | None = None
    """Compute for the trainer pod."""
    output: Output
    """Where the result goes."""
    image: str | None = None
    """Trainer image; defaults to the operator's configured runtime image."""
    backoff_limit: int = pydantic.Field(default=2, ge=0, le=100)
    """Retries of the trainer pod (it resumes from the last checkpoint)."""
    active_deadline_seconds: int | None = pydantic.Field(default=None, ge=1)
    """Stop the job after this many seconds."""
    ttl_seconds_after_finished: int | None = pydantic.Field(default=None, ge=0)
    """Delete the finished Job after this many seconds."""

    rules = (
        base.Rule(
            cel="self.method == 'full' || !has(self.lora) || !has(self.lora.r) || self.lora.r <= 1024",
            message="lora.r must be at most 1024",
            check=lambda s: s.method == "full" or s.lora is None or s.lora.r is None or s.lora.r <= 1024,
        ),
        base.Rule(
            cel="self.method != 'full' || !has(self.output.serveOn)",
            message="output.serveOn needs method lora or qlora (a full fine-tune is no adapter)",
            field_path=".output.serveOn",
            check=lambda s: s.method != "full" or s.output.serve_on is None,
        ),
    )


class TrainingJobStatus(base.ApiModel):
    """Observed state of a TrainingJob."""

    phase: TrainingPhase | None = None
    """Pending, Running, Succeeded or Failed."""
    reason: str | None = None
    """One CamelCase word."""
    message: str | None = None
    """What happened, e.g. the bad dataset line."""
    job_name: str | None = None
    """The batch Job running the trainer."""
    progress: Progress | None = None
    """Live progress."""
    effective: EffectiveConfig | None = None
    """The merged configuration the trainer runs with."""
    registered_model: str | None = None
    """The ModelEntry created for the result."""
    served_at: str | None = None
    """When the adapter first answered on ``output.serveOn``'s endpoint (RFC 3339)."""
    served_name: str | None = None
    """The served name the adapter answers to on ``output.serveOn``'s endpoint."""
    start_time: str | None = None
    """When training started."""
    completion_time: str | None = None
    """When training finished."""
    conditions: list[base.Condition] | None = None
    """Standard conditions."""
    observed_generation: int | None = None
    """The generation this status reflects."""


class TrainingJob(base.Resource):
    """A fine-tune of a ModelEntry."""

    kind: Literal["TrainingJob"] = "TrainingJob"
    """TrainingJob."""
    spec: TrainingJobSpec
    """What to train."""
    status: TrainingJobStatus | None = None
    """How training goes."""
