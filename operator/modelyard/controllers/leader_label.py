"""The active replica labels its own pod, so Services reach only the replica that serves.

With ``operator.replicas`` > 1 every replica answers ``/healthz`` (a standby must not be
restarted or block a rollout while it waits for the Lease), but only the Lease holder runs kopf:
its webhook server and the status API's live view. The chart's webhook and status API Services
therefore select ``modelyard.io/leader: "true"`` too, and the replica sets that label on its
pod once it holds the Lease and removes it when it stops. A restarted container (same pod)
removes it first thing, before it waits for the Lease. Needs ``get``/``patch`` on pods in the
operator's namespace and the pod's name (``--pod-name``, the chart passes ``metadata.name``).
"""

from __future__ import annotations

import logging

from modelyard.api import wire
from modelyard.controllers import cluster

log = logging.getLogger(__name__)

LABEL = wire.LEADER


async def mark(kube: cluster.Cluster, namespace: str, pod: str | None, leading: bool) -> None:
    """Set (or remove) the label on ``pod``; a failure is logged, never raised."""
    if not pod:
        return
    body = {"metadata": {"labels": {LABEL: "true" if leading else None}}}
    try:
        found = await kube.merge_patch(cluster.POD, pod, namespace, body)
    except Exception as exc:
        log.warning("could not %s the label %s on pod %s/%s: %s",
                    "set" if leading else "remove", LABEL, namespace, pod, exc)  # fmt: skip
        return
    if not found:
        log.warning("pod %s/%s (--pod-name) does not exist: not labelled", namespace, pod)
