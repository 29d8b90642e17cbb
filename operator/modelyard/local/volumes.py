"""Binds PersistentVolumeClaims of the local cluster to plain directories.

There is no storage provisioner in a control plane made of processes, and the scheduler
will not place a pod whose claim is unbound. The node agent therefore pre-binds every
pending claim to a ``hostPath`` PersistentVolume under ``<agent state>/pvcs/<ns>/<claim>``,
the same directory the pod runner maps the volume to, so data outlives the pods that use it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from modelyard.local import kube

log = logging.getLogger("modelyard.local.volumes")


def persistent_volume(claim: dict[str, Any], root: Path) -> dict[str, Any]:
    """A Retain-policy hostPath PV pre-bound to ``claim``."""
    meta, spec = claim["metadata"], claim["spec"]
    size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    path = root / meta["namespace"] / meta["name"]
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}",
                     "labels": {"modelyard.io/local-volume": "true"}},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": spec.get("storageClassName") or "",
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "namespace": meta["namespace"], "name": meta["name"],
                         "uid": meta["uid"]},
        },
    }


def bind_claims(client: kube.Kube, root: Path, stop: threading.Event,
                period: float = 2.0) -> None:
    """Until ``stop``: create a PV for every pending, unbound claim (polling)."""
    while not stop.wait(period):
        try:
            claims = client.request("GET", "/api/v1/persistentvolumeclaims")["items"]
        except Exception as exc:
            log.warning("listing claims: %s", exc)
            continue
        for claim in claims:
            if (claim.get("status") or {}).get("phase") != "Pending":
                continue
            if claim["spec"].get("volumeName"):
                continue
            volume = persistent_volume(claim, root)
            Path(volume["spec"]["hostPath"]["path"]).mkdir(parents=True, exist_ok=True)
            try:
                client.request("POST", "/api/v1/persistentvolumes", volume)
            except kube.KubeError as exc:
                if exc.status != 409:
                    log.warning("volume for claim %s: %s", claim["metadata"]["name"], exc)
