"""ModelEntry: the cluster-scoped registry entry, the single source of truth for a model.

It joins FastLLM's architecture families, the models.yaml catalog, the Model Garden registry
and ModelForge's providers (see ``shared/seeds``): where a model comes from, what it is, what
it needs and how it is served and trained by default.

It stays one module (~380 lines) on purpose: it is one kind's whole schema, the models nest into
each other in the order the CRD shows them, and the CRD generator (:mod:`.crd`) reads the kind
from here; split, a reader would chase one ``spec`` across files.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

from modelyard.api import base

Category = Literal["text-llm", "vision-vlm", "embedding", "speech", "rerank"]
Lifecycle = Literal["stable", "experimental", "deprecated"]
Engine = Literal["vllm", "transformers", "upstream"]
Pooling = Literal["mean", "cls", "last", "max"]
EntryPhase = Literal["Valid", "Invalid"]

CATEGORIES: tuple[Category, ...] = ("text-llm", "vision-vlm", "embedding", "speech", "rerank")

_PROVIDER_PATTERN = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"

NamespaceName = Annotated[
    str, pydantic.StringConstraints(min_length=1, max_length=63, pattern="^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
]
"""A namespace's name (a DNS label)."""


class ModelSource(base.ApiModel):
    """Where the weights come from."""

    provider: str = pydantic.Field(default="huggingface", pattern=_PROVIDER_PATTERN)
    """huggingface, local, s3, upstream, or the name of a registered custom provider."""
    repo: str | None = None
    """Repository id, e.g. meta-llama/Llama-3.2-1B-Instruct."""
    revision: str | None = None
    """Branch, tag or commit of the repository."""
    uri: str | None = pydantic.Field(default=None, pattern="^(pvc|s3|file|hf|https?)://.+")
    """Location of the weights: pvc://claim/path, s3://bucket/key, file:///path."""

    rules = (
        base.Rule(
            cel="self.provider == 'upstream' || has(self.repo) || has(self.uri)",
            message="source needs repo or uri (only provider 'upstream' may omit both)",
            check=lambda s: s.provider == "upstream" or bool(s.repo) or bool(s.uri),
        ),
    )


class ModelConfigSource(base.ApiModel):
    """The model's config.json, used to resolve the architecture and estimate requirements."""

    inline: dict[str, Any] | None = None
    """config.json content inline."""
    config_map_ref: base.ConfigMapKeyRef | None = None
    """A ConfigMap key holding config.json (the operator's namespace unless given)."""

    rules = (
        base.Rule(
            cel="!(has(self.inline) && has(self.configMapRef))",
            message="config: give inline or configMapRef, not both",
            check=lambda s: not (s.inline is not None and s.config_map_ref is not None),
        ),
    )


class Quantization(base.ApiModel):
    """How the weights are quantized."""

    method: str | None = pydantic.Field(default=None, examples=["4bit", "8bit", "awq", "gptq", "fp8"])
    """4bit, 8bit, awq, gptq, fp8."""
    type: str | None = pydantic.Field(default=None, examples=["bitsandbytes", "awq", "gptq", "fp8"])
    """bitsandbytes, awq, gptq, fp8 (the library or format)."""


class Requirements(base.ApiModel):
    """What a deployment needs; derived from the model config when not given."""

    min_vram_gb: float | None = pydantic.Field(default=None, ge=0)
    """Minimum GPU memory in GiB (per model replica, all GPUs together)."""
    recommended_vram_gb: float | None = pydantic.Field(default=None, ge=0)
    """Recommended GPU memory in GiB."""
    min_ram_gb: float | None = pydantic.Field(default=None, ge=0)
    """System memory in GiB."""
    cuda_compute_capability: str | None = pydantic.Field(default=None, pattern=r"^\d+\.\d+$")
    """Minimum CUDA compute capability, e.g. 8.0."""
    min_gpus: int | None = pydantic.Field(default=None, ge=0)
    """GPUs required per replica."""

    rules = (
        base.Rule(
            cel="!has(self.minVramGb) || !has(self.recommendedVramGb) "
            "|| self.recommendedVramGb >= self.minVramGb",
            message="requirements: recommendedVramGb must be >= minVramGb",
            check=lambda s: (
                s.min_vram_gb is None
                or s.recommended_vram_gb is None
                or s.recommended_vram_gb >= s.min_vram_gb
            ),
        ),
    )


class Capabilities(base.ApiModel):
    """What the model can do."""

    training: bool = False
    """Can be fine-tuned by a TrainingJob."""
    inference: bool = True
    """Can be served by a ModelEndpoint."""
    vision: bool = False
    """Accepts images."""
    structured_outputs: bool = False
    """Supports response_format (JSON schema) generation."""
    streaming: bool = False
    """Supports streamed responses."""
    function_calling: bool = False
    """Supports tools / function calling."""


class RuntimeSpec(base.ApiModel):
    """How the bundled runtime serves the model."""

    engine: Engine = "transformers"
    """vllm, transformers, or upstream (a proxy to an external OpenAI-compatible API)."""
    handler: str | None = pydantic.Field(default=None, pattern=r"^[A-Za-z_][\w.]*$")
    """Handler class path for the transformers engine; detected from the category when absent."""
    pooling: Pooling | None = None
    """Embedding pooling: mean, cls, last or max."""
    tool_call_parser: str | None = pydantic.Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,62}$")
    """How the model writes function calls: vLLM's tool-call parser (hermes, llama3_json,
    mistral, ...; vLLM then runs with --enable-auto-tool-choice); the transformers engine reads
    hermes and llama3_json, and otherwise detects the format from the chat template."""
    allow_trust_remote_code: bool | None = None
    """true: endpoints of this entry may pass engine arguments that run code from outside the
    image (trustRemoteCode, parser plugins, classes by import path; docs/security.md lists
    them). Unset or false: they are denied."""


class GenerationDefaults(base.ApiModel):
    """Generation parameters used when a request does not give them."""

    temperature: float | None = pydantic.Field(default=None, ge=0, le=2)
    """Sampling temperature (0-2)."""
    top_p: float | None = pydantic.Field(default=None, gt=0, le=1)
    """Nucleus sampling probability mass (0-1]."""
    max_tokens: int | None = pydantic.Field(default=None, ge=1)
    """Maximum number of tokens to generate."""


class InferenceDefaults(base.ApiModel):
    """Serving-engine settings; a ModelEndpoint's engineArgs override them."""

    max_model_len: int | None = pydantic.Field(default=None, ge=1)
    """Maximum context length in tokens."""
    dtype: str | None = pydantic.Field(default=None, pattern="^(auto|float16|bfloat16|float32|half|float)$")
    """auto, float16, bfloat16 or float32."""
    gpu_memory_utilization: float | None = pydantic.Field(default=None, gt=0, le=1)
    """Fraction of GPU memory the engine may use (0-1]."""
    quantization: str | None = None
    """Engine quantization method (e.g. fp8, awq, gptq, bitsandbytes)."""
    tensor_parallel_size: int | None = pydantic.Field(default=None, ge=1)
    """GPUs one replica spans."""


class Hyperparameters(base.ApiModel):
    """Training hyperparameters (the Model Garden keys, camelCase)."""

    learning_rate: float | None = pydantic.Field(default=None, gt=0)
    """Peak learning rate."""
    num_epochs: float | None = pydantic.Field(default=None, gt=0)
    """Passes over the dataset."""
    batch_size: int | None = pydantic.Field(default=None, ge=1)
    """Per-device batch size."""
    gradient_accumulation_steps: int | None = pydantic.Field(default=None, ge=1)
    """Steps to accumulate before an optimizer step."""
    warmup_steps: int | None = pydantic.Field(default=None, ge=0)
    """Learning-rate warm-up steps."""
    max_seq_length: int | None = pydantic.Field(default=None, ge=1)
    """Longest training sequence in tokens."""
    optim: str | None = None
    """Optimizer name as transformers knows it (adamw_torch, adamw_8bit, ...)."""
    lr_scheduler_type: str | None = None
    """linear, cosine, constant, ..."""
    max_steps: int | None = pydantic.Field(default=None, ge=1)
    """Stop after this many optimizer steps (overrides numEpochs)."""
    seed: int | None = None
    """Random seed."""


class LoraConfig(base.ApiModel):
    """LoRA adapter configuration."""

    r: int | None = pydantic.Field(default=None, ge=1)
    """Rank."""
    lora_alpha: float | None = pydantic.Field(default=None, gt=0)
    """Scaling numerator."""
    lora_dropout: float | None = pydantic.Field(default=None, ge=0, lt=1)
    """Dropout on the adapter input."""
    target_modules: list[str] | None = pydantic.Field(default=None, max_length=64)
    """Module names to adapt, e.g. q_proj, v_proj."""
    use_rslora: bool | None = None
    """Rank-stabilised scaling."""


class SelectiveLoss(base.ApiModel):
    """Selective loss for structured outputs (vision models)."""

    supported: bool = False
    """Whether the model supports selective loss."""
    default_level: str | None = None
    """Default level, e.g. conservative."""
    recommended: bool | None = None
    """Whether it is recommended."""


class TrainingDefaults(base.ApiModel):
    """Defaults a TrainingJob starts from; its own values override them."""

    hyperparameters: Hyperparameters | None = None
    """Default hyperparameters."""
    lora: LoraConfig | None = None
    """Default LoRA configuration."""
    selective_loss: SelectiveLoss | None = None
    """Selective loss support."""


class Upstream(base.ApiModel):
    """An external OpenAI-compatible API this entry proxies to (engine upstream)."""

    base_url: str = pydantic.Field(pattern="^https?://.+")
    """Base URL of the API, e.g. https://api.openai.com/v1."""
    model: str | None = None
    """Model name sent upstream (rewrites the served name); defaults to the served name."""
    api_key_secret_ref: base.SecretKeyRef | None = None
    """Secret key holding the upstream API key."""
    headers: dict[str, str] | None = None
    """Extra headers sent upstream."""


class Adapter(base.ApiModel):
    """A LoRA adapter applied over a base entry (a fine-tuned model)."""

    base_model: str = pydantic.Field(min_length=1)
    """Name of the ModelEntry the adapter was trained on."""
    uri: str = pydantic.Field(pattern="^(pvc|s3|file)://.+")
    """Where the adapter weights are."""


class ModelEntrySpec(base.ApiModel):
    """A model in the registry."""

    source: ModelSource
    """Where the weights come from."""
    served_name: str | None = pydantic.Field(default=None, min_length=1, max_length=256)
    """The API-facing model id; defaults to source.repo."""
    display_name: str | None = None
    """Human-readable name."""
    description: str | None = None
    """One-line description."""
    category: Category | None = None
    """text-llm, vision-vlm, embedding, speech or rerank; resolved from the architecture when absent."""
    architecture: str | None = None
    """Hugging Face architecture class, e.g. Qwen3ForCausalLM; resolved from config when absent."""
    parameters: str | None = pydantic.Field(default=None, pattern=r"^\d+(\.\d+)?[KMBT]$")
    """Parameter count, e.g. 1.1B or 600M."""
    tags: list[str] | None = pydantic.Field(default=None, max_length=64)
    """Searchable tags."""
    lifecycle: Lifecycle = "stable"
    """stable, experimental or deprecated."""
    config: ModelConfigSource | None = None
    """The model's config.json, inline or from a ConfigMap."""
    quantization: Quantization | None = None
    """Weight quantization."""
    requirements: Requirements | None = None
    """Hardware requirements; derived from config when absent."""
    capabilities: Capabilities | None = None
    """Capabilities; derived from the architecture when absent."""
    runtime: RuntimeSpec | None = None
    """Serving engine and handler."""
    generation_defaults: GenerationDefaults | None = None
    """Per-model generation defaults."""
    inference_defaults: InferenceDefaults | None = None
    """Serving-engine defaults."""
    training_defaults: TrainingDefaults | None = None
    """Fine-tuning defaults."""
    upstream: Upstream | None = None
    """The external API for engine upstream."""
    adapter: Adapter | None = None
    """Set for a fine-tuned adapter over a base entry."""
    urls: dict[str, str] | None = None
    """Links, e.g. huggingface, docs."""
    serving_namespaces: list[NamespaceName] | None = pydantic.Field(default=None, max_length=256)
    """Namespaces that alone may deploy this entry and serve its served name (the platform owns
    the name); unset: the served name goes to the namespace of its oldest ModelEndpoint."""

    rules = (
        base.Rule(
            cel="!has(self.runtime) || self.runtime.engine != 'upstream' || has(self.upstream)",
            message="runtime.engine upstream needs spec.upstream (baseUrl, apiKeySecretRef)",
            check=lambda s: s.runtime is None or s.runtime.engine != "upstream" or s.upstream is not None,
        ),
        base.Rule(
            cel="!has(self.upstream) || (has(self.runtime) && self.runtime.engine == 'upstream')",
            message="spec.upstream is only used with runtime.engine upstream",
            check=lambda s: s.upstream is None or (s.runtime is not None and s.runtime.engine == "upstream"),
        ),
    )

    @property
    def resolved_served_name(self) -> str:
        return self.served_name or self.source.repo or ""

    @property
    def engine(self) -> Engine:
        return self.runtime.engine if self.runtime else "transformers"


class EndpointRef(base.ApiModel):
    """A ModelEndpoint that serves this entry."""

    namespace: str
    """Namespace of the endpoint."""
    name: str
    """Name of the endpoint."""
    ready: bool = False
    """Whether the endpoint is Ready."""


class MemoryEstimate(base.ApiModel):
    """What the registry estimates from the model config."""

    parameters: int | None = None
    """Parameter count."""
    weight_bytes: int | None = None
    """Bytes of weights at the serving dtype."""
    kv_cache_bytes_per_token: int | None = None
    """KV-cache bytes per token of context."""
    min_vram_gb: float | None = None
    """Estimated minimum GPU memory in GiB."""


class ModelEntryStatus(base.ApiModel):
    """Observed state of a ModelEntry."""

    phase: EntryPhase | None = None
    """Valid or Invalid."""
    reason: str | None = None
    """Why the entry is Invalid, in words a person can act on."""
    served_name: str | None = None
    """The resolved served name."""
    architecture: str | None = None
    """Resolved architecture."""
    family: str | None = None
    """Resolved architecture family."""
    category: Category | None = None
    """Resolved category."""
    estimate: MemoryEstimate | None = None
    """Memory estimate."""
    requirements: Requirements | None = None
    """Effective requirements (given or derived)."""
    capabilities: Capabilities | None = None
    """Effective capabilities (given or derived)."""
    endpoints: list[EndpointRef] | None = None
    """The ModelEndpoints serving this entry."""
    conditions: list[base.Condition] | None = None
    """Standard conditions."""
    observed_generation: int | None = None
    """The generation this status reflects."""


class ModelEntry(base.Resource):
    """A model in the registry (cluster-scoped)."""

    kind: Literal["ModelEntry"] = "ModelEntry"
    """ModelEntry."""
    spec: ModelEntrySpec
    """What the model is."""
    status: ModelEntryStatus | None = None
    """What the operator resolved."""
