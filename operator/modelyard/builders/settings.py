"""What the operator is configured with, as the builders need it (immutable, no I/O)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from modelyard.api import wire

FailureMode = Literal["FailOpen", "FailClose"]

RegistrationMode = Literal["prefixed", "exact", "off"]
REGISTRATION_MODES: tuple[RegistrationMode, ...] = ("prefixed", "exact", "off")


@dataclasses.dataclass(frozen=True)
class InferencePools:
    """How the InferencePools the operator keeps reach their endpoint picker (``--inference-pools``)."""

    endpoint_picker: str = "{pool}-epp"
    """The EPP Service in the pool's namespace; ``{pool}`` is replaced by the pool's name (the
    extension's own inferencepool chart names its EPP ``<pool>-epp``)."""
    port: int = 9002
    """The EPP Service's port (the extension's ext-proc gRPC port)."""
    failure_mode: FailureMode = "FailClose"
    """What the Gateway does when the EPP does not answer (the CRD's default: FailClose)."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Operator-wide defaults for the objects it builds."""

    runtime_image: str = "ghcr.io/modelyard/runtime:0.1.0"
    adapter_config_maps: bool = False
    """Keep each endpoint's live adapter set in a ConfigMap its pods mount, so that a new replica
    loads the set before it turns Ready. Off by default: it needs cluster-wide ConfigMap rights
    (RBAC cannot say "ConfigMaps I created"); without it the operator pushes the set to each
    Ready pod over HTTP only (docs/security.md)."""
    """Image of runtime and trainer pods when the resource names none."""
    allowed_image_prefixes: tuple[str, ...] = ()
    """What ``spec.image`` of endpoints and training jobs may name (:mod:`.trust`); empty:
    only ``runtime_image``."""
    runtime_port: int = wire.RUNTIME_PORT
    """Port the runtime listens on inside the pod (Service port ``http``)."""
    runtime_command: tuple[str, ...] = ("modelyard", "runtime")
    """The runtime entry point inside the image."""
    train_command: tuple[str, ...] = ("modelyard", "train")
    """The trainer entry point inside the image."""
    run_as_user: int = 1000
    """UID of runtime and trainer containers (non-root)."""
    cache_dir: str = "/cache"
    """Where the model cache volume is mounted; HF_HOME lives under it."""
    default_cpu: str = "1"
    """CPU request when an endpoint gives none."""
    default_memory: str = "2Gi"
    """Memory request when an endpoint gives none."""
    cluster_domain: str = "cluster.local"
    """For the in-cluster URL in status."""
    startup_seconds: int = 1800
    """How long a runtime may take to load its model before the startup probe gives up."""
    network_policy_from: tuple[tuple[str, str], ...] | None = None
    """Pod labels (in ``network_policy_namespace``) of the pods that may reach runtime and
    trainer pods: the operator and the gateway. None: the operator builds no NetworkPolicy."""
    network_policy_namespace: str = "modelyard-system"
    """Where those pods run (the operator's namespace)."""
    registration_mode: RegistrationMode = "prefixed"
    """How a TrainingJob's ``output.register`` names the ModelEntry it creates: ``prefixed``
    (``<namespace>.<name>``, so a namespace never picks a catalog name), ``exact``, or ``off``
    (registration refused)."""
    registration_namespaces: tuple[str, ...] = ()
    """The namespaces whose TrainingJobs may register ModelEntries; empty: every namespace."""
    inference_pools: InferencePools | None = None
    """Keep an InferencePool per served name and namespace (:mod:`.inference_pool`); None: off."""
    gateway_secret_grants: frozenset[str] | None = None
    """``namespace/name`` of the Secrets the gateway may read (chart ``gateway.upstreamKeySecrets``,
    ``--gateway-secret-grants``); None: not known here, so not checked."""
