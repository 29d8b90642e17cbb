"""TrainingJob: validate against the registry, merge defaults with overrides, run a batch Job.

The effective hyperparameters go into status; the phase follows the Job. Deleting the
TrainingJob deletes the Job (owner reference), which stops the trainer pod. While the Job
runs, the trainer's ``GET /progress`` (on its pod IP) is polled every few seconds and merged
into ``status.progress``; the final progress comes from the trainer's termination message.

A finished job with ``output.register`` creates its ModelEntry, never changes one
(:mod:`modelyard.builders.registration`): the name taken by an entry it did not make ends the
registration, ``RegistrationConflict``. Its Job and NetworkPolicy are only ever its own
(:mod:`modelyard.builders.children`): a same-named one of anyone else's is left untouched and
the job waits, ``Pending``/``OwnershipConflict`` (the Job's GET is the one the reconcile makes
anyway; the NetworkPolicy, when policies are on, costs one GET before the Job is created).

A Succeeded job with ``output.serveOn`` wakes that endpoint, whose adapter sync
(:mod:`.adapters`) loads the adapter live and writes ``status.servedAt`` once it answers.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import aiohttp
import pydantic

from modelyard import api
from modelyard.api import model_entry as entry_api
from modelyard.api import training_job as job_api
from modelyard.api import wire
from modelyard.builders import children, network_policy, registration, training, training_status, trust
from modelyard.controllers import cluster, conditions, context, model_entry
from modelyard.registry import catalog, manifests, verdicts

log = logging.getLogger(__name__)


def parse(body: dict[str, Any]) -> api.TrainingJob:
    return api.TrainingJob.model_validate({k: v for k, v in body.items() if k != "status"})


def effective_config(job: api.TrainingJob, entry: api.ModelEntry) -> job_api.EffectiveConfig:
    defaults = entry.spec.training_defaults or entry_api.TrainingDefaults()
    return job_api.EffectiveConfig(
        hyperparameters=catalog.merge_defaults(
            entry_api.Hyperparameters, defaults.hyperparameters, job.spec.hyperparameters
        ),
        lora=None
        if job.spec.method == "full"
        else catalog.merge_defaults(entry_api.LoraConfig, defaults.lora, job.spec.lora),
    )


PROGRESS_POLL_SECONDS = 2.0
PROGRESS_MAX_BYTES = 16 * 1024
"""The most of a ``/progress`` answer the operator reads (the trainer's is under 1 KiB)."""
PROGRESS_TIMEOUT_SECONDS = 3.0
"""The whole ``/progress`` exchange, connect to last byte."""
CONFLICT_RECHECK_SECONDS = 30.0
"""How often a job whose Job or NetworkPolicy name is taken looks again."""


async def _fetch_progress(url: str) -> dict[str, Any] | None:
    """The running trainer's progress, or None while it does not answer (yet).

    The trainer pod runs the tenant's image, so its answer is untrusted: at most
    :data:`PROGRESS_MAX_BYTES` are read (a longer answer is dropped unread, the connection
    closed) within :data:`PROGRESS_TIMEOUT_SECONDS`, and only the known keys are kept."""
    try:
        timeout = aiohttp.ClientTimeout(total=PROGRESS_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
            if response.status != 200:
                return None
            declared = response.content_length
            if declared is not None and declared > PROGRESS_MAX_BYTES:
                log.warning(
                    "%s: the answer has %d bytes, over %d; ignored", url, declared, PROGRESS_MAX_BYTES
                )
                return None
            raw = b""
            async for chunk in response.content.iter_chunked(4096):
                raw += chunk
                if len(raw) > PROGRESS_MAX_BYTES:
                    log.warning("%s: the answer is over %d bytes; ignored", url, PROGRESS_MAX_BYTES)
                    return None
            found = json.loads(raw)
    except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError):
        return None
    return training_status.progress_fields(found) if isinstance(found, dict) else None


async def _progress(
    ctx: context.Context,
    job: api.TrainingJob,
    phase: str,
    pods: list[dict[str, Any]],
    current: dict[str, Any],
) -> dict[str, Any]:
    """Status fields for live progress."""
    found: dict[str, Any] | None = None
    if phase == "Running":
        url = training_status.progress_url(pods)
        found = await _fetch_progress(url) if url else None
        ctx.touch_training(job.namespace or "", job.name, delay=PROGRESS_POLL_SECONDS)
    elif phase == "Succeeded":
        found = training_status.final_progress(pods)
    return {"progress": {**(current.get("progress") or {}), **found}} if found else {}


async def _register(
    ctx: context.Context, job: api.TrainingJob, entry: api.ModelEntry, uid: str
) -> tuple[registration.Outcome, str | None]:
    """Create the job's ModelEntry; the outcome for the status and the registered name.

    Create, not apply: an entry of the name that exists is never changed; it is this job's own
    only when an earlier try made it (the operator stopped before writing the status)."""
    name = registration.entry_name(job, ctx.settings)
    if isinstance(name, tuple):
        return name, None
    manifest = registration.registered_entry(job, entry, name, job_uid=uid)
    for _ in range(2):  # twice: the entry there may be deleted between the create and the GET
        if await ctx.cluster.create(manifest) is not None:
            return registration.registered(name), name
        existing = await ctx.cluster.get(cluster.MODEL_ENTRY, name)
        if existing is not None:
            outcome = registration.verdict(job, existing, job_uid=uid)
            return outcome, name if outcome[1] == "Completed" else None
    raise RuntimeError(f"ModelEntry {name} was there at each create and gone at each read")


async def _decide(
    ctx: context.Context, job: api.TrainingJob, uid: str, current: dict[str, Any]
) -> tuple[str, str, str, dict[str, Any]]:
    entry_body = await ctx.cluster.get(cluster.MODEL_ENTRY, job.spec.model)
    if entry_body is None:
        message = f"ModelEntry {job.spec.model!r} does not exist (yet); the job starts once it is applied"
        return "Pending", "EntryNotFound", message, {}
    entry = model_entry.parse(entry_body)
    existing = await ctx.cluster.get(cluster.JOB, job.name, job.namespace)
    taken = children.conflict(existing, "TrainingJob", job.name, uid)
    if (existing is None or taken) and current.get("phase") in ("Succeeded", "Failed"):
        # The finished Job was deleted (ttlSecondsAfterFinished): never run it again.
        return current["phase"], current.get("reason", ""), current.get("message", ""), {}
    if taken:
        ctx.touch_training(job.namespace or "", job.name, delay=CONFLICT_RECHECK_SECONDS)
        return "Pending", "OwnershipConflict", taken, {}
    if existing is None:
        problem = trust.image_problem(job.spec.image, ctx.settings)
        if problem is not None:  # past admission (webhook down or bypassed): never run it
            return "Failed", "ImageNotAllowed", problem, {}
        verdict = verdicts.validate_training(entry, job.spec.method)
        if not verdict.ok:
            return "Failed", "NotTrainable", verdict.reason or "cannot be trained", {}
    effective = effective_config(job, entry)
    extra = {"effective": effective.to_wire(), "jobName": job.name}
    if existing is None:
        config = training.trainer_config(job, entry, effective)
        policy = network_policy.build_training_policy(job, ctx.settings, owner_uid=uid)
        if policy is not None:
            live = await ctx.cluster.get(cluster.NETWORK_POLICY, policy["metadata"]["name"], job.namespace)
            taken = children.conflict(live, "TrainingJob", job.name, uid)
            if taken:
                ctx.touch_training(job.namespace or "", job.name, delay=CONFLICT_RECHECK_SECONDS)
                return "Pending", "OwnershipConflict", taken, {}
            await ctx.cluster.apply(policy)
        existing = await ctx.cluster.create(training.build_job(job, ctx.settings, config, owner_uid=uid))
        if existing is None:  # a Job of the name appeared since the GET: look at it again
            ctx.touch_training(job.namespace or "", job.name, delay=1)
    pods = await ctx.cluster.list(cluster.POD, job.namespace, f"{wire.TRAINING_JOB}={job.name}")
    phase, reason, message = training_status.job_phase(existing, pods)
    status = (existing or {}).get("status") or {}
    if status.get("startTime"):
        extra["startTime"] = status["startTime"]
    if status.get("completionTime"):
        extra["completionTime"] = status["completionTime"]
    extra.update(await _progress(ctx, job, phase, pods, current))
    if phase == "Succeeded" and job.spec.output.register_as is not None:
        if current.get("phase") == "Succeeded":  # registered (or refused) once, when it finished
            if current.get("registeredModel"):
                extra["registeredModel"] = current["registeredModel"]
        else:
            (phase, reason, message), name = await _register(ctx, job, entry, uid)
            if name is not None:
                extra["registeredModel"] = name
    return phase, reason, message, extra


async def reconcile(ctx: context.Context, key: tuple[str, str]) -> None:
    namespace, name = key
    started = time.monotonic()
    body = await ctx.cluster.get(cluster.TRAINING_JOB, name, namespace)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    generation = int(body["metadata"].get("generation", 0))
    current = body.get("status") or {}
    try:
        job = parse(body)
    except pydantic.ValidationError as exc:
        extra: dict[str, Any] = {}
        phase, reason, message = "Failed", "InvalidSpec", "; ".join(manifests.field_errors(exc))
    else:
        phase, reason, message, extra = await _decide(ctx, job, body["metadata"]["uid"], current)
    if current.get("phase") in ("Succeeded", "Failed") and current.get("reason") not in ("EntryNotFound",):
        phase, reason, message = (
            current["phase"],
            current.get("reason", reason),
            current.get("message", message),
        )
    status = {"phase": phase, "reason": reason, "message": message, "observedGeneration": generation, **extra}
    status["conditions"] = [
        conditions.condition(
            "Complete", phase == "Succeeded", reason, message, generation, current.get("conditions") or []
        ),
        conditions.condition(
            "Failed", phase == "Failed", reason, message, generation, current.get("conditions") or []
        ),
        conditions.condition(
            "Running", phase == "Running", reason, message, generation, current.get("conditions") or []
        ),
    ]
    if conditions.status_changed(current, status):
        await ctx.cluster.patch_status(cluster.TRAINING_JOB, name, namespace, status)
    serve_on = ((body.get("spec") or {}).get("output") or {}).get("serveOn") or {}
    if phase == "Succeeded" and serve_on.get("endpoint") and not current.get("servedAt"):
        # the endpoint's adapter sync loads it and writes status.servedAt when it answers
        ctx.touch_endpoint(namespace, str(serve_on["endpoint"]), delay=0)
    ctx.metrics.reconciles.labels("TrainingJob", phase).inc()
    ctx.metrics.duration.labels("TrainingJob").observe(time.monotonic() - started)
