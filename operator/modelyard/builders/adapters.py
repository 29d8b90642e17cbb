"""Live adapters of a ModelEndpoint (pure): the effective set, where each is inside the pods,
the ConfigMap the runtime reads it from, and the status per adapter from what the pods report.

The effective set is ``spec.adapters`` plus every Succeeded TrainingJob of the endpoint's
namespace whose ``output.serveOn.endpoint`` names it (the user's spec is never edited). Each
member is a :class:`Wanted`: a served name, the path the runtime loads it from, and a
``problem`` (reason, message) when it cannot be loaded at all; those are left out of the
ConfigMap and reported in ``status.adapters``.

Claims: a pod mounts the model's claim, an adapter entry's claim it serves (``--lora``) and
``spec.adapterClaims``, at ``wire.MODELS_ROOT/<claim>``; the pod template never depends on the
set, so the set changes with no rollout. An adapter on another claim is ``ClaimNotMounted``.

==================  ====================================================================
reason              when
==================  ====================================================================
EntryNotFound       ``spec.adapters[].entry`` names no ModelEntry
NotAnAdapter        the entry has no ``spec.adapter``
WrongBase           the entry adapts another base than the endpoint's
ClaimNotMounted     ``pvc://`` on a claim the pods do not mount (add it to adapterClaims)
NotSupported        ``s3://`` (not yet)
NameNotAllowed      the served name is another endpoint's or another namespace's
AdapterLoadFailed   a pod's runtime refused it (its message: bad files, base, rank, max)
AdapterLoading      not loaded on every ready pod yet
==================  ====================================================================
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelyard import api
from modelyard.api import model_endpoint, wire
from modelyard.builders import labels, registration, settings

ADAPTERS_KEY = "adapters.json"
"""The ConfigMap key (and file name) of the effective set."""
ADAPTERS_DIR = "/etc/modelyard/adapters"
"""Where the ConfigMap is mounted in the runtime container."""
ADAPTERS_FILE = f"{ADAPTERS_DIR}/{ADAPTERS_KEY}"

Problem = tuple[str, str]
"""(reason, message)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Wanted:
    """One adapter of the effective set."""

    name: str
    path: str
    source: str
    """``spec``, ``entry <name>`` or ``trainingjob <name>``."""
    problem: Problem | None = None
    job: str | None = None
    """The TrainingJob that put it here (``output.serveOn``), if any."""


@dataclasses.dataclass(frozen=True, slots=True)
class PodReport:
    """What one ready pod says: adapters loaded (name -> path) and the last failed load per
    name (name -> (path, the runtime's message))."""

    loaded: Mapping[str, str]
    errors: Mapping[str, tuple[str, str]] = dataclasses.field(default_factory=dict)


def config_map_name(endpoint_name: str) -> str:
    return f"{endpoint_name}-adapters"


def base_of(entry: api.ModelEntry) -> str:
    """The base ModelEntry an endpoint of ``entry`` runs (itself unless it is an adapter)."""
    return entry.spec.adapter.base_model if entry.spec.adapter is not None else entry.name


def mounted_claims(entry: api.ModelEntry, endpoint: api.ModelEndpoint) -> list[str]:
    """Claims the runtime pods mount at ``MODELS_ROOT/<claim>``: the model's first, then the
    served adapter entry's and ``spec.adapterClaims``, sorted, each once."""
    weights = wire.pvc_claim(entry.spec.source.uri or "")
    others = set(endpoint.spec.adapter_claims or ())
    if entry.spec.adapter is not None:
        others.add(wire.pvc_claim(entry.spec.adapter.uri) or "")
    others.discard("")
    others.discard(weights or "")
    return ([weights] if weights else []) + sorted(others)


def pod_path(uri: str, claims: Sequence[str]) -> tuple[str, Problem | None]:
    """Where the runtime finds the adapter at ``uri`` (``hf://`` goes through as it is, the
    runtime resolves it through its model cache), or why it cannot."""
    if uri.startswith("s3://"):
        return uri, (
            "NotSupported",
            f"{uri}: s3:// adapters are not supported yet (use pvc://, file:// or hf://)",
        )
    claim = wire.pvc_claim(uri)
    if claim is not None and claim not in claims:
        return uri, (
            "ClaimNotMounted",
            f"{uri}: claim {claim!r} is not mounted in the endpoint's pods; add it to "
            f"spec.adapterClaims (changes the pod template: one rollout)",
        )
    return wire.local_path(uri, wire.MODELS_ROOT) or uri, None


def entry_problem(name: str, found: api.ModelEntry | None, base: str) -> Problem | None:
    """Why the ModelEntry ``name`` cannot be an adapter of an endpoint over ``base``."""
    if found is None:
        return "EntryNotFound", f"ModelEntry {name!r} does not exist"
    if found.spec.adapter is None:
        return "NotAnAdapter", f"ModelEntry {name!r} is not an adapter (it has no spec.adapter)"
    if found.spec.adapter.base_model != base:
        return "WrongBase", (
            f"ModelEntry {name!r} adapts {found.spec.adapter.base_model!r}, not this endpoint's base {base!r}"
        )
    return None


def serve_on_name(job: api.TrainingJob, cfg: settings.Settings) -> str:
    """The served name a ``serveOn`` job's adapter answers to: ``register.servedName``, else the
    registered entry's name, else the job's name."""
    register = job.spec.output.register_as
    if register is None:
        return job.name
    return register.served_name or registration.name_for(job, cfg)


def effective(
    endpoint: api.ModelEndpoint,
    entry: api.ModelEntry,
    entries: Mapping[str, api.ModelEntry | None],
    jobs: Iterable[api.TrainingJob],
    cfg: settings.Settings,
) -> list[Wanted]:
    """The endpoint's adapters: ``spec.adapters`` in order, then its Succeeded ``serveOn``
    jobs by name (a job whose name is taken by an earlier member is left out)."""
    claims = mounted_claims(entry, endpoint)
    base = base_of(entry)
    found: list[Wanted] = []
    for adapter in endpoint.spec.adapters or ():
        if adapter.entry is not None:
            target = entries.get(adapter.entry)
            problem = entry_problem(adapter.entry, target, base)
            uri = target.spec.adapter.uri if target is not None and target.spec.adapter else ""
            path, bad_path = pod_path(uri, claims) if problem is None else ("", None)
            found.append(Wanted(adapter.name, path, f"entry {adapter.entry}", problem or bad_path))
        else:
            path, problem = pod_path(adapter.uri or "", claims)
            found.append(Wanted(adapter.name, path, "spec", problem))
    taken = {w.name for w in found}
    for job in sorted(jobs, key=lambda j: j.name):
        serve_on = job.spec.output.serve_on
        if serve_on is None or serve_on.endpoint != endpoint.name or job.namespace != endpoint.namespace:
            continue
        if (job.status is None or job.status.phase != "Succeeded") or job.spec.method == "full":
            continue
        name = serve_on_name(job, cfg)
        if name in taken:
            continue
        taken.add(name)
        path, problem = pod_path(job.spec.output.uri, claims)
        found.append(Wanted(name, path, f"trainingjob {job.name}", problem, job=job.name))
    return found


def loadable(wanted: Iterable[Wanted]) -> list[Wanted]:
    return [w for w in wanted if w.problem is None]


def file_content(wanted: Iterable[Wanted]) -> str:
    """The runtime's ``--adapters-file``: ``[{"name", "path"}]`` of the loadable adapters."""
    return json.dumps([{"name": w.name, "path": w.path} for w in loadable(wanted)], indent=1)


def build_config_map(
    endpoint: api.ModelEndpoint, wanted: Iterable[Wanted], *, owner_uid: str
) -> dict[str, Any]:
    """The ConfigMap mounted at :data:`ADAPTERS_DIR`: the runtime re-reads it, so a change
    reaches new and running pods without touching the pod template."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(endpoint.name),
            "namespace": endpoint.namespace,
            "labels": labels.selector(endpoint.name) | {wire.MANAGED_BY: wire.PRODUCT},
            "ownerReferences": [labels.owner_reference("ModelEndpoint", endpoint.name, owner_uid)],
        },
        "data": {ADAPTERS_KEY: file_content(wanted)},
    }


def max_adapters(endpoint: api.ModelEndpoint) -> int:
    return endpoint.spec.max_adapters or model_endpoint.DEFAULT_MAX_ADAPTERS


def status(wanted: Sequence[Wanted], reports: Mapping[str, PodReport]) -> tuple[list[dict[str, Any]], str]:
    """``status.adapters`` and ``status.adaptersReady`` (loaded/desired) from the ready pods'
    reports (pod name -> report). An adapter is ready when every ready pod has it loaded from
    its path (and at least one pod is ready)."""
    out: list[dict[str, Any]] = []
    ready = 0
    for w in wanted:
        item: dict[str, Any] = {"name": w.name, "source": w.source}
        if w.path:
            item["path"] = w.path
        pods = sorted(p for p, r in reports.items() if r.loaded.get(w.name) == w.path and w.problem is None)
        item["pods"] = pods
        item["ready"] = bool(pods) and len(pods) == len(reports)
        errors = sorted({r.errors[w.name][1] for r in reports.values() if w.name in r.errors})
        if w.problem is not None:
            item["reason"], item["message"] = w.problem
        elif errors and not item["ready"]:
            item["reason"], item["message"] = "AdapterLoadFailed", "; ".join(errors)
        elif not item["ready"]:
            item["reason"] = "AdapterLoading"
            item["message"] = f"loaded on {len(pods)} of {len(reports)} ready pods"
        ready += item["ready"]
        out.append(item)
    return out, f"{ready}/{len(wanted)}"


def plan(wanted: Sequence[Wanted], report: PodReport) -> tuple[list[Wanted], list[str]]:
    """What to send one pod: unloads (loaded, no longer wanted or at another path) and loads
    (wanted, not loaded from its path, and not refused from that path, unless something is
    unloaded: room for one refused at ``maxAdapters``)."""
    want = {w.name: w for w in loadable(wanted)}
    unload = sorted(n for n, path in report.loaded.items() if n not in want or want[n].path != path)
    load = [
        w
        for w in want.values()
        if report.loaded.get(w.name) != w.path
        and (unload or report.errors.get(w.name, ("", ""))[0] != w.path)
    ]
    return load, unload
