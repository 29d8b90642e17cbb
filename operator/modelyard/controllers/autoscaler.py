"""The autoscaler's I/O: scrape every gateway's demand, decide, patch ``spec.replicas``.

Every ``interval`` seconds, while this replica leads, one round:

1. the scrape targets: the ready addresses of the gateway metrics Service's EndpointSlices
   (port ``metrics``), or the ``--gateway-metrics-url`` URLs as given;
2. ``GET /metrics`` of each, summing ``modelyard_gateway_endpoint_demand`` per (namespace,
   endpoint) — a gateway that does not answer is logged, counted and leaves the round
   *incomplete*, and an incomplete round never scales down;
3. every ModelEndpoint with ``spec.autoscaling``: one :class:`~modelyard.builders.autoscale.Sample`
   more, :func:`~modelyard.builders.autoscale.decide`, a merge patch of ``spec.replicas`` when
   the count changes (the endpoint's reconcile then scales the Deployment) and of
   ``status.autoscaling`` when what it says changes.

Ready replicas and a full cluster come from the endpoint's own status (``readyReplicas``,
reason ``Unschedulable``), which the reconcile keeps current: no pod listing here. The
endpoints themselves come from the watch's index (:mod:`.informer`), not a listing each round
(a second's listing of 1000 endpoints, parsed, was a good part of the operator's CPU at
scale); only those with ``spec.autoscaling``, or a ``status.autoscaling`` to clear, are parsed.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pydantic
from prometheus_client import parser

from modelyard import api
from modelyard.builders import autoscale
from modelyard.controllers import cluster, conditions, context

log = logging.getLogger(__name__)

ENDPOINT_SLICE = ("discovery.k8s.io/v1", "EndpointSlice")
DEMAND = "modelyard_gateway_endpoint_demand"
"""The gauge every gateway exposes per endpoint it routes to (docs/operations.md)."""
METRICS_PORT = "metrics"
STATUS_REFRESH_SECONDS = 2.0
"""At most one status write per endpoint this often when only the demand moved."""

Key = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Options:
    interval: float = 1.0
    """Seconds between rounds (``--autoscale-interval``)."""
    service: str | None = None
    """``NAMESPACE/NAME`` of the gateway metrics Service (``--gateway-metrics-service``)."""
    urls: tuple[str, ...] = ()
    """Scrape URLs given directly (``--gateway-metrics-url``, out-of-cluster gateways)."""


@dataclasses.dataclass
class _Memory:
    samples: collections.deque[autoscale.Sample] = dataclasses.field(default_factory=collections.deque)
    last_scale: float | None = None
    written: tuple[Any, ...] | None = None
    written_at: float = 0.0


def parse_demand(text: str) -> dict[Key, float]:
    """(namespace, endpoint) -> demand, from one gateway's Prometheus text."""
    found: dict[Key, float] = {}
    for family in parser.text_string_to_metric_families(text):
        if family.name != DEMAND:
            continue
        for sample in family.samples:
            key = (sample.labels.get("namespace", ""), sample.labels.get("endpoint", ""))
            found[key] = found.get(key, 0.0) + float(sample.value)
    return found


def slice_urls(slices: list[dict[str, Any]]) -> list[str]:
    """``http://IP:PORT/metrics`` of every ready address of the slices' ``metrics`` port."""
    urls: set[str] = set()
    for item in slices:
        ports = [p.get("port") for p in item.get("ports") or [] if p.get("name") == METRICS_PORT]
        if not ports or ports[0] is None:
            continue
        for address in item.get("endpoints") or []:
            state = address.get("conditions") or {}
            if state.get("ready") is False or state.get("terminating") is True:
                continue
            for ip in address.get("addresses") or []:
                host = f"[{ip}]" if ":" in ip else ip
                urls.add(f"http://{host}:{ports[0]}/metrics")
    return sorted(urls)


class Autoscaler:
    def __init__(
        self,
        ctx: context.Context,
        options: Options,
        on_scrape: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.options = options
        self.on_scrape = on_scrape
        """Given every answering gateway's exposition each round (the dashboard's traffic)."""
        self.memory: dict[Key, _Memory] = {}

    async def targets(self) -> list[str]:
        urls = list(self.options.urls)
        if self.options.service:
            namespace, _, name = self.options.service.rpartition("/")
            slices = await self.ctx.cluster.list(
                ENDPOINT_SLICE, namespace or self.ctx.namespace, f"kubernetes.io/service-name={name}"
            )
            urls += slice_urls(slices)
        return urls

    async def scrape(self, session: aiohttp.ClientSession) -> tuple[dict[Key, float], bool]:
        """The demand summed over every gateway, and whether every one answered."""
        try:
            urls = await self.targets()
        except Exception as exc:
            log.warning("cannot list the gateway metrics endpoints: %s", exc)
            self.ctx.metrics.scrape_errors.inc()
            return {}, False
        texts = await asyncio.gather(*(self._one(session, url) for url in urls))
        if self.on_scrape is not None:
            self.on_scrape([t for t in texts if t is not None])
        results = [parse_demand(t) if t is not None else None for t in texts]
        total: dict[Key, float] = {}
        for result in results:
            for key, value in (result or {}).items():
                total[key] = total.get(key, 0.0) + value
        answered = sum(r is not None for r in results)
        self.ctx.metrics.gateways_scraped.set(answered)
        return total, bool(urls) and answered == len(urls)

    async def _one(self, session: aiohttp.ClientSession, url: str) -> str | None:
        try:
            async with session.get(url) as response:
                response.raise_for_status()
                return await response.text()
        except Exception as exc:  # skipped this round: no data is not zero demand
            log.warning("gateway %s did not answer its metrics: %s: %s", url, type(exc).__name__, exc)
            self.ctx.metrics.scrape_errors.inc()
            return None

    async def round(self, session: aiohttp.ClientSession) -> None:
        demand, complete = await self.scrape(session)
        now = time.monotonic()
        seen: set[Key] = set()
        bodies = self.ctx.informer.autoscaled()
        if bodies is None:  # before the watches' indices are attached
            bodies = await self.ctx.cluster.list(cluster.MODEL_ENDPOINT)
        for body in bodies:
            if not (body.get("spec") or {}).get("autoscaling") and not (body.get("status") or {}).get(
                "autoscaling"
            ):
                continue  # neither scaled nor to clear: not parsed
            try:
                endpoint = api.ModelEndpoint.model_validate({k: v for k, v in body.items() if k != "status"})
            except pydantic.ValidationError:
                continue
            policy = endpoint.spec.autoscaling
            if policy is None and (body.get("status") or {}).get("autoscaling") is not None:
                ns, name = endpoint.namespace or "", endpoint.name  # autoscaling was removed
                await self.ctx.cluster.patch_status(cluster.MODEL_ENDPOINT, name, ns, {"autoscaling": None})
            if policy is None or body["metadata"].get("deletionTimestamp"):
                continue
            key = (endpoint.namespace or "", endpoint.name)
            seen.add(key)
            await self._scale(
                key, endpoint, policy, body.get("status") or {}, demand.get(key, 0.0), complete, now
            )
        for key in set(self.memory) - seen:
            del self.memory[key]
            self.ctx.metrics.forget_endpoint(*key)

    async def _scale(
        self,
        key: Key,
        endpoint: api.ModelEndpoint,
        policy: api.model_endpoint.Autoscaling,
        status: dict[str, Any],
        demand: float,
        complete: bool,
        now: float,
    ) -> None:
        memory = self.memory.setdefault(key, _Memory())
        memory.samples.append(autoscale.Sample(now, demand, complete))
        horizon = now - policy.scale_down_delay_seconds
        while len(memory.samples) > 1 and memory.samples[1].at <= horizon:
            memory.samples.popleft()  # keep one at or before the horizon: it shows the window covered
        ready = int(status.get("readyReplicas") or 0)
        full = status.get("reason") == "Unschedulable"
        observed = autoscale.Observed(
            replicas=endpoint.spec.replicas, ready=ready, unschedulable=full,
            samples=list(memory.samples), now=now, last_scale=memory.last_scale,
        )  # fmt: skip
        decision = autoscale.decide(policy, observed)
        previous = status.get("autoscaling") or {}
        scaled: dict[str, Any] = {}
        if decision.changed:
            patched = await self.ctx.cluster.merge_patch(
                cluster.MODEL_ENDPOINT, key[1], key[0], {"spec": {"replicas": decision.replicas}}
            )
            if not patched:
                return
            memory.last_scale = now
            direction = "up" if decision.replicas > endpoint.spec.replicas else "down"
            self.ctx.metrics.scale_events.labels(key[0], key[1], direction).inc()
            log.info("%s/%s: %s", key[0], key[1], decision.reason)
            scaled = {"lastScaleTime": conditions.now(), "lastScaleReason": decision.reason}
        self.ctx.metrics.desired_replicas.labels(*key).set(decision.replicas)
        self.ctx.metrics.current_replicas.labels(*key).set(ready)
        self.ctx.metrics.demand.labels(*key).set(demand)
        essence = (decision.replicas, ready, scaled.get("lastScaleReason", previous.get("lastScaleReason")))
        if (
            scaled
            or essence != memory.written
            or (demand != previous.get("demand") and now - memory.written_at >= STATUS_REFRESH_SECONDS)
        ):
            fields = {
                "desiredReplicas": decision.replicas,
                "currentReplicas": ready,
                "demand": demand,
                **scaled,
            }
            await self.ctx.cluster.patch_status(
                cluster.MODEL_ENDPOINT, key[1], key[0], {"autoscaling": fields}
            )
            memory.written = essence
            memory.written_at = now

    async def run(self, leading: asyncio.Event) -> None:
        """Rounds every ``interval`` seconds until cancelled; none while ``leading`` is clear."""
        timeout = aiohttp.ClientTimeout(total=max(0.5, min(2.0, self.options.interval)))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                started = time.monotonic()
                if leading.is_set():
                    try:
                        await self.round(session)
                    except Exception:  # the next round tries again
                        log.exception("autoscaler round failed")
                await asyncio.sleep(max(0.0, self.options.interval - (time.monotonic() - started)))


def start(
    ctx: context.Context,
    options: Options,
    leading: asyncio.Event,
    on_scrape: Callable[[list[str]], None] | None = None,
) -> asyncio.Task[None]:
    """Run the autoscaler beside the handlers (the caller cancels the task at shutdown);
    ``on_scrape`` gets the gateways' expositions of each round (the status API's traffic)."""
    return asyncio.create_task(Autoscaler(ctx, options, on_scrape).run(leading), name="autoscaler")
