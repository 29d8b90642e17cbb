"""Keep one InferencePool per served name and namespace in step with its endpoints (opt-in).

After each ModelEndpoint reconcile, :func:`modelyard.controllers.model_endpoint.reconcile`
hands :meth:`Pools.sync` the endpoints of that namespace whose pods serve the name: with some,
the pool (:func:`modelyard.builders.inference_pool.build_pool`) is applied unless it is as last
applied; with none, it is deleted. One lock per pool orders concurrent reconciles of endpoints
that share a served name. A same-named pool that is not the operator's (no ``managed-by``
label, or another served name) is left untouched, logged once.

The InferencePool CRD comes with the user's Gateway stack. While it is not installed the option
does nothing: one clear error is logged, the endpoints reconcile as ever, and the CRD is looked
for again (on a reconcile) at most every ``RETRY_SECONDS``; when it is found, every endpoint is
reconciled once, so every pool appears.
A pool deleted by hand comes back on its endpoints' next change or at the operator's restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from modelyard.builders import inference_pool, settings
from modelyard.controllers import cluster, kube_errors

if TYPE_CHECKING:
    from modelyard.controllers import context

log = logging.getLogger(__name__)

RETRY_SECONDS = 60.0
"""How long the operator trusts that the InferencePool CRD is absent before it looks again."""

Key = tuple[str, str]
"""(namespace, served name)."""


@dataclasses.dataclass
class Pools:
    """What was last applied per pool, and whether the CRD is there."""

    applied: dict[Key, str] = dataclasses.field(default_factory=dict)
    """Digest of the pool as last applied."""
    locks: dict[Key, asyncio.Lock] = dataclasses.field(default_factory=dict)
    missing_until: float = 0.0
    """While the clock is before this, the CRD is taken as absent (no API call is made)."""
    missing: bool = False
    warned: set[Key] = dataclasses.field(default_factory=set)
    clock: Callable[[], float] = time.monotonic

    async def sync(
        self,
        api: cluster.Cluster,
        cfg: settings.Settings,
        key: Key,
        members: Sequence[tuple[str, str]],
    ) -> bool:
        """Make the pool of ``key`` match ``members`` ((name, uid) of its endpoints); never
        raises for the pool's sake (an endpoint's reconcile must not fail because of it).
        True when the CRD was missing and is there now (every endpoint's pool is then due)."""
        pools = cfg.inference_pools
        if pools is None or self.clock() < self.missing_until:
            return False
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                await self._sync(api, cfg, pools, key, members)
            except kube_errors.ResourceNotFoundError:
                self.missing_until = self.clock() + RETRY_SECONDS
                self.applied.clear()
                if self.missing:
                    return False
                self.missing = True
                log.error(
                    "--inference-pools: the InferencePool CRD (%s) is not installed, so no "
                    "InferencePool is kept; install it with your Gateway's inference extension "
                    "(endpoints are served as ever; looking again in %.0f s)",
                    inference_pool.API_VERSION,
                    RETRY_SECONDS,
                )
                return False
            except kube_errors.ApiError as exc:
                log.error(
                    "InferencePool %s for served name %r in %s: %s %s",
                    inference_pool.pool_name(key[1]), key[1], key[0], exc.status, exc.reason,
                )  # fmt: skip
            finally:
                if not members:
                    self.locks.pop(key, None)
        appeared, self.missing = self.missing, False
        if appeared:
            log.info("the InferencePool CRD is installed now: keeping InferencePools")
        return appeared

    async def _sync(
        self,
        api: cluster.Cluster,
        cfg: settings.Settings,
        pools: settings.InferencePools,
        key: Key,
        members: Sequence[tuple[str, str]],
    ) -> None:
        namespace, served = key
        name = inference_pool.pool_name(served)
        if not members:
            if self.applied.pop(key, None) is None:
                return  # not applied by this process: nothing to delete, or the GC does it
            live = await api.get(cluster.INFERENCE_POOL, name, namespace)
            if live is not None and inference_pool.ours(live, served):
                await api.delete(cluster.INFERENCE_POOL, name, namespace, uid=live["metadata"]["uid"])
                log.info("deleted InferencePool %s/%s (no endpoint serves %r there)", namespace, name, served)
            return
        built = inference_pool.build_pool(namespace, served, members, cfg, pools)
        digest = hashlib.sha256(json.dumps(built, sort_keys=True).encode()).hexdigest()
        if self.applied.get(key) == digest:
            return
        if key not in self.applied:  # first apply by this process: never take over another's pool
            live = await api.get(cluster.INFERENCE_POOL, name, namespace)
            if live is not None and not inference_pool.ours(live, served):
                if key not in self.warned:
                    self.warned.add(key)
                    log.warning(
                        "InferencePool %s/%s exists and is not modelyard's pool for %r; left untouched",
                        namespace, name, served,
                    )  # fmt: skip
                return
        await api.apply(built)
        self.applied[key] = digest


async def follow(ctx: context.Context, namespace: str, *served_names: str | None) -> None:
    """Sync the pools of ``served_names`` in ``namespace`` (an endpoint's before and after)
    with the endpoints whose pods serve each now."""
    if ctx.settings.inference_pools is None:
        return
    for served in dict.fromkeys(n for n in served_names if n):
        members = sorted(
            (name, state.uid)
            for (ns, name), state in ctx.endpoints.items()
            if ns == namespace and state.pods_serve == served
        )
        if await ctx.pools.sync(ctx.cluster, ctx.settings, (namespace, served), members):
            ctx.touch_endpoints(set(ctx.endpoints))  # the CRD came: every pool is due
