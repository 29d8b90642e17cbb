"""ModelEndpoint: one deployment of a ModelEntry, with a routing weight.

The operator owns a Deployment and a Service per endpoint (none for the upstream engine); the
gateway splits the traffic of a served name among its ready endpoints by weight.
"""

from __future__ import annotations

from typing import Any, Literal

import pydantic

from modelyard.api import base, lora, model_entry

EndpointPhase = Literal["Pending", "Progressing", "Ready", "Degraded", "Failed"]

_DNS_LABEL = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


class EndpointResources(base.ApiModel):
    """Compute for each replica."""

    gpus: int | None = pydantic.Field(default=None, ge=0, le=64)
    """nvidia.com/gpu per replica; defaults to the tensor-parallel size (0 for CPU serving)."""
    gpu_type: str | None = None
    """GPU product label value (nvidia.com/gpu.product), e.g. NVIDIA-A100-SXM4-80GB."""
    cpu: str | None = pydantic.Field(default=None, pattern=_QUANTITY)
    """CPU request, e.g. 4 or 500m."""
    memory: str | None = pydantic.Field(default=None, pattern=_QUANTITY)
    """Memory request, e.g. 16Gi."""


class ModelCache(base.ApiModel):
    """A PersistentVolumeClaim that caches downloaded weights across restarts."""

    claim_name: str = pydantic.Field(pattern=_DNS_LABEL)
    """Name of the PersistentVolumeClaim."""
    sub_path: str | None = None
    """Sub-directory inside the claim."""


DEFAULT_MAX_ADAPTERS = lora.DEFAULT_MAX_ADAPTERS
"""Adapters one runtime pod holds at once when ``spec.maxAdapters`` is unset (the runtime's
``--max-adapters`` default)."""


class LoraAdapter(base.ApiModel):
    """A LoRA adapter loaded live into the endpoint's running pods, served under its own name.

    Exactly one of ``entry`` (a ModelEntry with ``spec.adapter`` over the endpoint's base) or
    ``uri`` (the adapter's files). Adding or removing one never restarts a pod."""

    name: str = pydantic.Field(min_length=1, max_length=256)
    """Served name of the adapter (clients ask for it as ``model``)."""
    entry: str | None = pydantic.Field(default=None, min_length=1, max_length=253)
    """A ModelEntry that is an adapter (``spec.adapter``) over the endpoint's base model."""
    uri: str | None = pydantic.Field(default=None, pattern="^(pvc|s3|file|hf)://.+")
    """Where the adapter files are: ``pvc://claim/path`` (the claim must be the model's or in
    ``spec.adapterClaims``), ``file://``, or ``hf://repo`` (s3:// is not supported yet)."""

    rules = (
        base.Rule(
            cel="has(self.entry) != has(self.uri)",
            message="an adapter needs exactly one of entry or uri",
            check=lambda s: (s.entry is None) != (s.uri is None),
        ),
    )


class EnvVar(base.ApiModel):
    """An environment variable for the runtime container (a core/v1 EnvVar)."""

    name: str = pydantic.Field(pattern="^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Variable name."""
    value: str | None = None
    """Literal value."""
    value_from: dict[str, Any] | None = None
    """A core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef)."""


class Autoscaling(base.ApiModel):
    """Request-driven replica count: the operator owns ``spec.replicas`` while this is set."""

    min_replicas: int = pydantic.Field(default=1, ge=0, le=1000)
    """Fewest replicas (0 = scale to zero when idle; a request wakes the endpoint)."""
    max_replicas: int = pydantic.Field(ge=1, le=1000)
    """Most replicas (at least 1 and at least minReplicas)."""
    target_requests: int = pydantic.Field(default=8, ge=1, le=100000)
    """Wanted average of requests in flight (running + queued) per ready replica."""
    scale_down_delay_seconds: int = pydantic.Field(default=300, ge=0, le=86400)
    """How long demand must stay low before a replica is removed (0-86400)."""

    rules = (
        base.Rule(
            cel="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
            message="minReplicas must be less than or equal to maxReplicas",
            field_path=".minReplicas",
            check=lambda s: s.min_replicas <= s.max_replicas,
        ),
    )


class Routing(base.ApiModel):
    """How the gateway picks one of the endpoint's ready pods for a request."""

    strategy: Literal["LeastBusy", "PrefixHash"] = "LeastBusy"
    """LeastBusy: the pod with the fewest requests in flight. PrefixHash: consistent hashing
    with bounded loads on the prompt's prefix (or the session), so requests that share a
    prefix reach the pod whose prefix cache holds it, while that pod is not overloaded."""
    prefix_char_length: int = pydantic.Field(default=512, ge=1, le=100000)
    """PrefixHash: how many characters of the rendered prompt are hashed (1-100000)."""
    load_factor: float = pydantic.Field(default=1.25, gt=1.0, le=100.0)
    """PrefixHash: a pod takes a prefix only while its load is under loadFactor x the mean
    load of the endpoint's pods (over 1.0, at most 100); else the prefix spills to the next pod."""
    session_header: str | None = pydantic.Field(
        default=None, min_length=1, max_length=128, pattern="^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
    )
    """PrefixHash: a request header (e.g. X-Session-Id) whose value, when present, is hashed
    instead of the prompt, so one session keeps reaching one pod."""
    session_user: bool = False
    """PrefixHash: hash the OpenAI "user" field of the request, when present, instead of the
    prompt (after sessionHeader)."""


class ModelEndpointSpec(base.ApiModel):
    """A deployment of a ModelEntry."""

    model: str = pydantic.Field(min_length=1, max_length=253)
    """Name of the ModelEntry to serve."""
    served_name: str | None = pydantic.Field(default=None, min_length=1, max_length=256)
    """Model id clients ask for; defaults to the entry's served name."""
    weight: int = pydantic.Field(default=100, ge=0, le=1000)
    """Share of the traffic among endpoints with the same served name (0-1000; 0 = none)."""
    engine: model_entry.Engine | None = None
    """Serving engine; defaults to the entry's runtime.engine."""
    replicas: int = pydantic.Field(default=1, ge=0, le=1000)
    """Number of runtime pods (with autoscaling: the starting size; the operator then owns it)."""
    routing: Routing | None = None
    """How the gateway balances among the endpoint's pods (default: LeastBusy)."""
    autoscaling: Autoscaling | None = None
    """Scale on the gateways' demand (requests in flight + queued); unset: replicas stays as set."""
    resources: EndpointResources | None = None
    """Compute per replica."""
    node_selector: dict[str, str] | None = None
    """Extra node labels the pods need."""
    tolerations: list[dict[str, Any]] | None = pydantic.Field(default=None, max_length=64)
    """core/v1 Tolerations for the pods."""
    image: str | None = None
    """Runtime image; defaults to the operator's configured runtime image."""
    engine_args: dict[str, Any] | None = None
    """Engine arguments merged over the entry's inferenceDefaults (camelCase or kebab-case keys)."""
    env: list[EnvVar] | None = pydantic.Field(default=None, max_length=256)
    """Extra environment for the runtime container."""
    model_cache: ModelCache | None = None
    """A PVC caching the weights."""
    hf_token_secret_ref: base.SecretKeyRef | None = None
    """Secret key with a Hugging Face token for gated repositories."""
    adapters: list[LoraAdapter] | None = pydantic.Field(default=None, max_length=64)
    """LoRA adapters loaded live into the running pods, each under its own served name (names
    unique; see docs/concepts.md, live adapters)."""
    max_adapters: int | None = pydantic.Field(default=None, ge=1, le=256)
    """Adapters a pod holds at once (1-256, default 8): the runtime's ``--max-adapters``; one
    more is refused with an error in ``status.adapters``, never evicted."""
    adapter_claims: list[str] | None = pydantic.Field(default=None, max_length=16)
    """PersistentVolumeClaims mounted read-only at ``/models/<claim>`` in every pod, so adapters
    on them (``pvc://claim/...``, a TrainingJob's output) load without a rollout."""
    fallback: list[str] | None = pydantic.Field(default=None, max_length=16)
    """Served names the gateway tries when this model cannot answer (only names this namespace
    may serve, or that nobody owns: see docs/concepts.md, served-name ownership)."""
    share_served_name_with: list[model_entry.NamespaceName] | None = pydantic.Field(
        default=None, max_length=64
    )
    """Namespaces this namespace lets serve its served name too (it must own the name)."""

    rules = (
        base.Rule(
            cel="!has(self.fallback) || !has(self.servedName) || !(self.servedName in self.fallback)",
            message="fallback must not name the endpoint's own servedName",
            field_path=".fallback",
            check=lambda s: not s.fallback or not s.served_name or s.served_name not in s.fallback,
        ),
        base.Rule(
            cel="!has(self.adapters) || self.adapters.all(a, self.adapters.exists_one(b, b.name == a.name))",
            message="adapters must have unique names",
            field_path=".adapters",
            check=lambda s: len({a.name for a in s.adapters or []}) == len(s.adapters or []),
        ),
        base.Rule(
            cel="!has(self.adapters) || !has(self.servedName) || "
            "!self.adapters.exists(a, a.name == self.servedName)",
            message="an adapter's name must not be the endpoint's own servedName",
            field_path=".adapters",
            check=lambda s: not s.served_name or all(a.name != s.served_name for a in s.adapters or []),
        ),
    )


class AutoscalingStatus(base.ApiModel):
    """What the autoscaler last saw and did."""

    desired_replicas: int | None = None
    """Replicas the autoscaler wants now."""
    current_replicas: int | None = None
    """Ready replicas when the autoscaler last looked."""
    demand: float | None = None
    """Requests in flight + queued + held for this endpoint, summed over every gateway."""
    last_scale_time: str | None = None
    """When the autoscaler last changed spec.replicas (RFC 3339)."""
    last_scale_reason: str | None = None
    """Why, e.g. "demand 17 > 8 x 2 ready: 2 -> 3"."""


class AdapterStatus(base.ApiModel):
    """One adapter of the endpoint's effective set (``spec.adapters`` and TrainingJobs whose
    ``output.serveOn`` names the endpoint), as its pods report it."""

    name: str
    """Served name of the adapter."""
    source: str | None = None
    """Where it comes from: ``spec``, ``entry <name>`` or ``trainingjob <name>``."""
    path: str | None = None
    """The path the pods load it from."""
    pods: list[str] | None = None
    """Ready pods that have it loaded (the gateway routes its name to these)."""
    ready: bool = False
    """Loaded on every ready pod."""
    reason: str | None = None
    """Why not, one CamelCase word: AdapterLoadFailed, EntryNotFound, NotAnAdapter, WrongBase,
    ClaimNotMounted, NameNotAllowed."""
    message: str | None = None
    """The runtime's own error (bad path, wrong base, rank too large, maxAdapters reached)."""


class ModelEndpointStatus(base.ApiModel):
    """Observed state of a ModelEndpoint."""

    phase: EndpointPhase | None = None
    """Pending, Progressing, Ready, Degraded or Failed."""
    reason: str | None = None
    """One CamelCase word, e.g. Unschedulable, CrashLoopBackOff, EntryNotFound."""
    message: str | None = None
    """The real reason, e.g. the scheduler's message or the last termination message."""
    served_name: str | None = None
    """Resolved served name."""
    engine: model_entry.Engine | None = None
    """Resolved engine."""
    replicas: int | None = None
    """Pods of the current Deployment."""
    ready_replicas: int | None = None
    """Pods ready to serve."""
    ready: str | None = None
    """readyReplicas/replicas, for kubectl get."""
    selector: str | None = None
    """Label selector of the endpoint's pods, for the /scale subresource (an HPA reads it)."""
    autoscaling: AutoscalingStatus | None = None
    """Desired vs current replicas, the demand last seen and why the last scale happened."""
    url: str | None = None
    """In-cluster URL of the endpoint's Service (or the upstream base URL)."""
    adapters: list[AdapterStatus] | None = None
    """Each live adapter: the pods that have it loaded, or the runtime's error."""
    adapters_ready: str | None = None
    """loaded/desired adapters (loaded on every ready pod), for kubectl get."""
    conditions: list[base.Condition] | None = None
    """Available, Progressing, Degraded."""
    observed_generation: int | None = None
    """The generation this status reflects."""


class ModelEndpoint(base.Resource):
    """A deployment of a ModelEntry."""

    kind: Literal["ModelEndpoint"] = "ModelEndpoint"
    """ModelEndpoint."""
    spec: ModelEndpointSpec
    """What to deploy."""
    status: ModelEndpointStatus | None = None
    """What is deployed."""
