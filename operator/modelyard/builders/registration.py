"""The ModelEntry a finished TrainingJob registers, and the verdict on one that exists (pure).

ModelEntries are the cluster's shared catalog; a TrainingJob is a namespace user's. So
registration only ever *creates* an entry, never changes one: the controller creates the
manifest built here and, when the name is taken, asks :func:`verdict` whether the entry there is
this job's own (made by an earlier try of the same reconcile) or someone else's, which it leaves
byte-identical. A cluster-scoped entry cannot carry a namespaced owner reference, so the job that
made it is written in two annotations, ``wire.REGISTERED_BY`` (``<namespace>/<name>``) and
``wire.REGISTERED_BY_UID``; the uid tells a job from a later one of the same name.

The platform controls registration with two operator settings (:class:`settings.Settings`):

==============  =======================================================================
mode            the entry's name
==============  =======================================================================
``prefixed``    ``<namespace>.<register.name>`` (the default). A namespace is a DNS label
                and holds no dot, so one namespace's names can never be another's.
``exact``       ``register.name``, first come first served.
``off``         none: registration is refused (``RegistrationRefused``).
==============  =======================================================================

``registration_namespaces`` (empty: all) refuses the others. Outcomes are (phase, reason,
message) like :func:`training_status.job_phase`: the job did train, so the phase stays ``Succeeded``.
"""

from __future__ import annotations

from typing import Any

from modelyard import api
from modelyard.api import wire
from modelyard.builders import settings

MAX_NAME = 253
"""The longest object name the API server takes."""

Outcome = tuple[str, str, str]
"""(phase, reason, message) for the TrainingJob's status."""


def refusal(job: api.TrainingJob, cfg: settings.Settings) -> str | None:
    """Why the platform does not let ``job`` register (None: it does)."""
    namespace = job.namespace or ""
    if cfg.registration_mode == "off":
        return (
            "registration is off on this platform (operator setting --registration-mode=off, "
            "chart value operator.registration.mode)"
        )
    if cfg.registration_namespaces and namespace not in cfg.registration_namespaces:
        allowed = ", ".join(cfg.registration_namespaces)
        return (
            f"namespace {namespace} may not register ModelEntries (operator setting "
            f"--registration-namespaces, chart value operator.registration.namespaces: {allowed})"
        )
    name = name_for(job, cfg)
    if len(name) > MAX_NAME:
        return (
            f"the registered name {name[:60]}... is {len(name)} characters, more than a ModelEntry "
            f"name may have ({MAX_NAME}); shorten output.register.name"
        )
    return None


def name_for(job: api.TrainingJob, cfg: settings.Settings) -> str:
    """The entry's name in the configured mode (``off`` and the namespace list aside)."""
    register = job.spec.output.register_as
    assert register is not None
    return f"{job.namespace}.{register.name}" if cfg.registration_mode == "prefixed" else register.name


def entry_name(job: api.TrainingJob, cfg: settings.Settings) -> str | Outcome:
    """The name of the entry ``job`` registers, or the outcome when it may not register one."""
    refused = refusal(job, cfg)
    if refused is not None:
        message = f"{refused}; nothing was registered, the result is at {job.spec.output.uri}"
        return "Succeeded", "RegistrationRefused", message
    return name_for(job, cfg)


def registered_entry(
    job: api.TrainingJob, base: api.ModelEntry, name: str, *, job_uid: str
) -> dict[str, Any]:
    """The ModelEntry ``name`` for a finished job's adapter over ``base``.

    It serves the base model's source with the adapter on top (``spec.adapter``), so it copies
    what running the base needs; ``lifecycle: experimental`` until a person says otherwise; the
    served name is ``register.servedName``, else the entry's name.
    """
    register = job.spec.output.register_as
    assert register is not None
    base_spec = base.spec.to_wire()
    spec: dict[str, Any] = {
        k: base_spec[k]
        for k in ("source", "architecture", "category", "runtime", "generationDefaults", "inferenceDefaults")
        if base_spec.get(k) is not None
    }
    spec.update(
        {
            "servedName": register.served_name or name,
            "description": f"{job.spec.method} fine-tune of {base.name} by {job.namespace}/{job.name}",
            "lifecycle": "experimental",
            "adapter": {"baseModel": base.name, "uri": job.spec.output.uri},
        }
    )
    return {
        "apiVersion": wire.API_VERSION,
        "kind": "ModelEntry",
        "metadata": {
            "name": name,
            "labels": {wire.TRAINED_BY: f"{job.namespace}.{job.name}"},
            "annotations": {
                wire.REGISTERED_BY: f"{job.namespace}/{job.name}",
                wire.REGISTERED_BY_UID: job_uid,
            },
        },
        "spec": spec,
    }


def registered(name: str) -> Outcome:
    return "Succeeded", "Completed", f"training finished; registered ModelEntry {name}"


def made_by(existing: dict[str, Any], job_uid: str) -> bool:
    """Whether the entry was registered by the TrainingJob of this uid."""
    annotations = (existing.get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(wire.REGISTERED_BY_UID) == job_uid)


def verdict(job: api.TrainingJob, existing: dict[str, Any], *, job_uid: str) -> Outcome:
    """Whether the entry that holds the registered name is this job's own (made by an earlier
    try) or another's; the latter ends the registration and stays as it is."""
    meta = existing.get("metadata") or {}
    name = str(meta.get("name"))
    if made_by(existing, job_uid):
        return registered(name)
    maker = (meta.get("annotations") or {}).get(wire.REGISTERED_BY)
    whose = f"registered by TrainingJob {maker}" if maker else "not registered by a TrainingJob"
    return "Succeeded", "RegistrationConflict", (
        f"ModelEntry {name} already exists ({whose}) and registration never changes an entry it did "
        f"not create: it is left as it was and nothing was registered; the result is at "
        f"{job.spec.output.uri}. Choose another output.register.name"
    )  # fmt: skip
