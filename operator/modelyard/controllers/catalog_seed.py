"""``--apply-builtin-catalog``: the operator applies the built-in catalog's ModelEntries.

A Helm release cannot render ModelEntries beside the CRDs that define them (Helm maps every
kind before it installs anything, and the kind is unknown until the CRD exists), so the chart's
``catalog.builtin`` toggle becomes this flag instead. The operator applies each entry once at
start (after it holds the Lease) with server-side apply under its own field manager
``modelyard-catalog``, without forcing: a field someone else has since set with their own
manager (``kubectl apply``, GitOps) stays theirs and the entry is left as it is. Entries are
never deleted by the operator; turning the toggle off leaves them in place.
"""

from __future__ import annotations

import asyncio
import logging

from modelyard.controllers import cluster, kube_errors
from modelyard.registry import builtin, manifests

log = logging.getLogger(__name__)

FIELD_MANAGER = "modelyard-catalog"


async def apply_builtin(kube: cluster.Cluster) -> tuple[int, int]:
    """Apply every built-in entry: (applied, kept because another manager owns a field)."""
    entries = manifests.load_entries(builtin.CATALOG)
    applied = kept = 0
    for entry in entries:
        try:
            await kube.apply(entry.to_wire(), field_manager=FIELD_MANAGER, force=False)
            applied += 1
        except kube_errors.ConflictError:
            log.info("built-in entry %s: kept as edited by another field manager", entry.name)
            kept += 1
    return applied, kept


async def seed(kube: cluster.Cluster, attempts: int = 30, delay: float = 2.0) -> None:
    """:func:`apply_builtin`, retried while the API refuses (e.g. the CRDs are not there yet)."""
    for attempt in range(1, attempts + 1):
        try:
            applied, kept = await apply_builtin(kube)
        except Exception as exc:
            log.warning("applying the built-in catalog failed (attempt %d): %s", attempt, exc)
            await asyncio.sleep(min(delay * attempt, 30))
            continue
        log.info("built-in catalog: %d entries applied, %d kept as edited", applied, kept)
        return
    log.error("gave up applying the built-in catalog after %d attempts", attempts)
