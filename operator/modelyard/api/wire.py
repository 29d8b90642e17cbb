"""What the processes must agree on, written once: the API group, label and annotation keys,
ports, exit codes, mount roots and storage URIs that travel between the operator, the gateway,
the runtime, the trainer and the local cluster through the objects and pods they share.

The layer contract (docs/architecture.md) keeps siblings apart: builders, gateway, runtime,
trainer and statusapi never import each other. A fact that one of them writes and another reads
therefore lives here, at the bottom, where every layer may import it, and nowhere else (style.md
habit 11; kopf moves shared things down a layer the same way). Constants and pure string helpers
only: this module imports nothing.

==================================  ===================================  =========================
fact                                written by                           read by
==================================  ===================================  =========================
:data:`ENDPOINT` label              builders (pods, Service)             gateway (EndpointSlices),
                                                                         controllers, quickstart
:data:`HTTP_PORT` port name         builders (container, Service)        gateway (EndpointSlices)
:data:`SERVED_NAME` label           builders (pods, InferencePool)       Gateways' endpoint pickers
:data:`TRAINER_CONFIG` annotation   builders (trainer pod template)      trainer (downward API file)
:data:`PROGRESS_PORT`, ``_ENV``     builders (trainer pod)               trainer, controllers
:data:`EXIT_UNRECOVERABLE`          trainer (exit status)                builders (podFailurePolicy)
:data:`MODELS_ROOT` & co            builders (volume mounts)             runtime args, trainer config
:data:`REGISTERED_BY` annotations   builders (registered ModelEntry)     controllers (verdict)
:data:`GPU_RESOURCE`, ``_PRODUCT``  local (fake GPU nodes)               builders (requests, selector)
:data:`TERMINATION_MESSAGE_ENV`     local (node agent)                   trainer
==================================  ===================================  =========================
"""

from __future__ import annotations

# -- the API group ---------------------------------------------------------------------------

GROUP = "modelyard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MODEL_ENTRIES = "modelentries"
MODEL_ENDPOINTS = "modelendpoints"
TRAINING_JOBS = "trainingjobs"
"""The plurals: resource names in URLs, RBAC rules and webhook rules."""


def api_path(plural: str) -> str:
    """The API server path of a modelyard resource across all namespaces."""
    return f"/apis/{API_VERSION}/{plural}"


# -- labels ------------------------------------------------------------------------------------

PRODUCT = "modelyard"
"""The value of :data:`MANAGED_BY` and :data:`PART_OF` on everything modelyard makes."""
MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"

ENDPOINT = f"{GROUP}/endpoint"
"""The ModelEndpoint's name on its pods and Service; EndpointSlices inherit it from the Service,
and the gateway watches the slices that carry it."""
SERVED_NAME = f"{GROUP}/served-name"
"""On runtime pods (with ``--inference-pools``) and their InferencePool: the served name as a
label value (:func:`modelyard.builders.inference_pool.served_name_label`); the pool selects its
pods by it. The pool's annotation of the same key holds the served name verbatim."""
MODEL = f"{GROUP}/model"
"""The ModelEntry an endpoint's or a training job's pods run (a label value, shortened)."""
TRAINING_JOB = f"{GROUP}/training-job"
"""The TrainingJob's name on its batch Job, pods and NetworkPolicy."""
TRAINED_BY = f"{GROUP}/trained-by"
"""Label of a registered ModelEntry: ``<namespace>.<name>`` of the TrainingJob that made it."""
LEADER = f"{GROUP}/leader"
"""``"true"`` on the operator pod that holds the Lease; the chart's webhook and status Services
select it."""
VENDOR = f"{GROUP}/vendor"
FAMILY = f"{GROUP}/family"
"""Model Garden's ``provider`` and ``base_architecture``, which have no spec field."""

GPU_RESOURCE = "nvidia.com/gpu"
"""The extended resource of NVIDIA's device plugin (the local node agent's fake GPUs too)."""
GPU_PRODUCT = "nvidia.com/gpu.product"
"""The node label of NVIDIA's GPU feature discovery: ``spec.resources.gpuType`` selects on it."""

# -- annotations -----------------------------------------------------------------------------

SPEC_HASH = f"{GROUP}/spec-hash"
"""On a runtime Deployment: the digest of what the operator built."""
TRAINER_CONFIG = f"{GROUP}/trainer-config"
"""On a trainer pod template: the trainer's config.json, which reaches the trainer as a file
through a downward-API volume."""
REGISTERED_BY = f"{GROUP}/registered-by"
"""On a registered ModelEntry: ``<namespace>/<name>`` of the TrainingJob that made it."""
REGISTERED_BY_UID = f"{GROUP}/registered-by-uid"
"""On a registered ModelEntry: the uid of the TrainingJob that made it."""
SKIP_DOWNLOAD = f"{GROUP}/skip-download"
"""On a ModelEntry imported from models.yaml: ``"true"`` for the format's ``skip_download``."""

# -- ports, paths and the environment of pods ------------------------------------------------

RUNTIME_PORT = 8000
"""The runtime's default port (the operator's ``--runtime-port`` passes its own)."""
HTTP_PORT = "http"
"""The name of the runtime container's and Service's port; the gateway takes the EndpointSlice
port of this name, and NetworkPolicies open it."""
PROGRESS_PORT = 8001
"""The trainer serves :data:`PROGRESS_PATH` here, on its pod IP."""
PROGRESS_PORT_NAME = "progress"
PROGRESS_PATH = "/progress"
PROGRESS_PORT_ENV = "MODELYARD_PROGRESS_PORT"
"""Tells the trainer its progress port."""
POD_IP_ENV = "POD_IP"
"""The pod's IP (downward API): where the runtime and the trainer listen."""
TERMINATION_MESSAGE_ENV = "MODELYARD_TERMINATION_MESSAGE_PATH"
"""Where a process writes its termination message when not at ``/dev/termination-log`` (the
local node agent sets it)."""

# -- scale-down without loss ------------------------------------------------------------------

PRESTOP_SECONDS = 5
"""The runtime container's preStop sleep: time for the EndpointSlices (and so every gateway) to
drop a terminating pod before it gets SIGTERM."""
DRAIN_SECONDS = 90
"""After SIGTERM the runtime finishes in-flight requests and streams for up to this long; the
pod's terminationGracePeriodSeconds covers the preStop sleep plus this, plus a margin."""

# -- exit codes ------------------------------------------------------------------------------

EXIT_UNRECOVERABLE = 2
"""The trainer's exit status for what a retry cannot fix (bad data, bad config, missing GPU);
the Job's podFailurePolicy fails the Job at once on it."""

# -- mount roots and storage URIs ------------------------------------------------------------

MODELS_ROOT = "/models"
"""Where a model's or an adapter's ``pvc://claim/...`` is mounted (``/models/<claim>``)."""
DATA_ROOT = "/data"
"""Where a training dataset's claim is mounted (``/data/<claim>``)."""
OUTPUT_ROOT = "/output"
"""Where a training output's claim is mounted (``/output/<claim>``)."""

PVC_SCHEME = "pvc://"
FILE_SCHEME = "file://"


def pvc_claim(uri: str) -> str | None:
    """The claim of a ``pvc://claim/path`` URI (None for any other URI)."""
    return uri.removeprefix(PVC_SCHEME).partition("/")[0] if uri.startswith(PVC_SCHEME) else None


def local_path(uri: str, root: str) -> str | None:
    """Where a ``pvc://claim/path`` or ``file://path`` URI is inside a pod whose claims are
    mounted at ``root/<claim>``; None for a remote URI (``s3://``, ``hf://``, a repo id)."""
    if uri.startswith(PVC_SCHEME):
        claim, _, path = uri.removeprefix(PVC_SCHEME).partition("/")
        return f"{root}/{claim}/{path}".rstrip("/")
    if uri.startswith(FILE_SCHEME):
        return uri.removeprefix(FILE_SCHEME)
    return None
