"""Choosing where a request goes: a weighted pick of an endpoint, then one of its pods.

The proxy depends on the :class:`Balancer` Protocol only. :class:`WeightedLeastBusy`:

1. Endpoint: smooth weighted round-robin (nginx's algorithm) among the endpoints of the
   served name that still have a usable target. It is deterministic and keeps the split
   within one request of the weights over any window, so 10k requests land within a
   fraction of a point of the configured shares.
2. Target, by the endpoint's :class:`routes.Routing`: ``LeastBusy``, the one with the least
   :meth:`WeightedLeastBusy.load` (the requests this gateway has in flight to it now, plus
   the others' the pod reported running and waiting at its last scrape: its figure less this
   gateway's own requests at that scrape, see :mod:`modelyard.gateway.podload`; ties broken
   round-robin, so idle pods share the load evenly); ``PrefixHash`` with a request
   key (the proxy computes it only for a model with a PrefixHash endpoint), consistent hashing
   with bounded loads over the endpoint's targets (:mod:`modelyard.gateway.prefixhash`), with
   the same load. The endpoint is picked first, by weight alone, so the split between endpoints
   is the same under either strategy.
3. Passive outlier ejection: a target that fails ``eject_after`` times in a row (connect
   error, 5xx, timeout) is skipped for ``eject_cooldown`` seconds. When every target of a
   model is ejected or already tried, ejected ones are used anyway (better a likely failure
   than a certain 503).
4. Hold at zero: on a request's first pick (nothing tried yet) an endpoint with no target
   that holds requests (:attr:`routes.Endpoint.waits`, scaled to zero or coming up) takes
   its weighted share like the others, and ``choose`` returns it with no target: the proxy
   holds the request until the endpoint has a ready pod (:mod:`modelyard.gateway.hold`).
   Its share is not silently given to the other endpoints, so demand reaches it and wakes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from modelyard.gateway import prefixhash, routes

_RINGS = 1024
"""Rings kept (one per distinct target set); past that the cache starts over."""


class Balancer(Protocol):
    """Picks targets and learns from their outcomes."""

    def choose(
        self, model: routes.Model, tried: Collection[str], key: str | None = None
    ) -> tuple[routes.Endpoint, routes.Target | None] | None:
        """An endpoint and target of ``model`` not in ``tried`` (target keys), or None.

        ``key`` is the request's affinity key (prompt prefix or session), used when the
        endpoint picked has the PrefixHash strategy. The target is None when the endpoint
        picked has none yet and holds requests (only when ``tried`` is empty)."""
        ...

    def started(self, target: routes.Target) -> None:
        """A request was sent to ``target``."""
        ...

    def finished(self, target: routes.Target, ok: bool) -> bool:
        """The request to ``target`` ended; returns True when this failure ejected it."""
        ...

    def in_flight(self, target_key: str) -> int: ...

    def spills(self) -> Mapping[str, int]:
        """Per endpoint, how many PrefixHash picks passed over a key's pod at its load bound."""
        ...


class WeightedLeastBusy:
    """Smooth weighted round-robin over endpoints, least in-flight over targets."""

    def __init__(
        self,
        eject_after: int = 3,
        eject_cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        others: Callable[[str], float | None] | None = None,
    ) -> None:
        self.eject_after = eject_after
        self._others = others
        """The load of a pod beyond this gateway's requests, as the pod last reported it
        (:meth:`modelyard.gateway.podload.PodLoad.others`); None: unknown."""
        self.eject_cooldown = eject_cooldown
        self._clock = clock
        self._current: dict[str, dict[str, int]] = {}  # served name -> endpoint -> SWRR weight
        self._in_flight: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._ejected_until: dict[str, float] = {}
        self._tiebreak = 0
        self._rings: dict[int, tuple[tuple[routes.Target, ...], prefixhash.Ring]] = {}
        self._rings_by_set: dict[frozenset[str], prefixhash.Ring] = {}
        self._spills: dict[str, int] = {}

    def choose(
        self, model: routes.Model, tried: Collection[str], key: str | None = None
    ) -> tuple[routes.Endpoint, routes.Target | None] | None:
        now = self._clock()
        every = not tried and not self._ejected_until  # the usual first pick: no target to skip
        for honour_ejection in (True, False):
            candidates: list[tuple[routes.Endpoint, Sequence[routes.Target]]] = []
            for endpoint in model.endpoints:
                usable: Sequence[routes.Target] = (
                    endpoint.targets
                    if every
                    else [
                        t
                        for t in endpoint.targets
                        if t.key not in tried and not (honour_ejection and self._is_ejected(t.key, now))
                    ]
                )
                if usable or (endpoint.waits and not tried):
                    candidates.append((endpoint, usable))
            if candidates:
                endpoint, picked = self._pick_endpoint(model.name, candidates)
                if not picked:
                    return endpoint, None
                if key is not None and endpoint.routing.prefix_hash and len(picked) > 1:
                    return endpoint, self._pick_by_key(endpoint, picked, key)
                return endpoint, self._pick_target(picked)
        return None

    def _pick_endpoint(
        self, served: str, candidates: list[tuple[routes.Endpoint, Sequence[routes.Target]]]
    ) -> tuple[routes.Endpoint, Sequence[routes.Target]]:
        if len(candidates) == 1:
            return candidates[0]
        current = self._current.setdefault(served, {})
        total = 0
        best: tuple[routes.Endpoint, Sequence[routes.Target]] | None = None
        best_weight = 0
        for candidate in candidates:
            endpoint = candidate[0]
            weight = current.get(endpoint.name, 0) + endpoint.weight
            current[endpoint.name] = weight
            total += endpoint.weight
            if best is None or weight > best_weight:
                best, best_weight = candidate, weight
        assert best is not None
        current[best[0].name] -= total
        if len(current) > 4 * len(candidates):  # forget endpoints long gone
            names = {c[0].name for c in candidates}
            for name in [n for n in current if n not in names]:
                del current[name]
        return best

    def _pick_target(self, usable: Sequence[routes.Target]) -> routes.Target:
        if len(usable) == 1:
            return usable[0]
        self._tiebreak += 1
        start = self._tiebreak % len(usable)
        best = usable[start]
        best_load = self.load(best.key)
        for offset in range(1, len(usable)):
            target = usable[(start + offset) % len(usable)]
            load = self.load(target.key)
            if load < best_load:
                best, best_load = target, load
        return best

    def _pick_by_key(
        self, endpoint: routes.Endpoint, usable: Sequence[routes.Target], key: str
    ) -> routes.Target:
        """CHWBL over the ring of all the endpoint's targets, among the usable ones."""
        targets = endpoint.targets  # the same tuple until the route table changes: keyed by identity
        cached = self._rings.get(id(targets))
        if cached is not None and cached[0] is targets:
            ring = cached[1]
        else:  # a new route table: the same pods keep their ring, a new set of pods gets one
            if len(self._rings) >= _RINGS:
                self._rings.clear()
                self._rings_by_set.clear()
            keys = frozenset(t.key for t in targets)
            ring = self._rings_by_set.get(keys) or self._rings_by_set.setdefault(keys, prefixhash.Ring(keys))
            self._rings[id(targets)] = (targets, ring)  # holding the tuple keeps its id unique
        by_key = {t.key: t for t in usable}
        picked = prefixhash.choose(ring, key, by_key, self.load, endpoint.routing.load_factor)
        assert picked is not None  # usable is not empty
        if picked[1]:
            self._spills[endpoint.name] = self._spills.get(endpoint.name, 0) + 1
        return by_key[picked[0]]

    def load(self, target_key: str) -> float:
        """How busy a target is, as both strategies weigh it: the requests this gateway has in
        flight to it now, plus the others' (other clients', other gateway replicas') as the pod
        last reported them: its running + waiting less this gateway's own requests to it at that
        scrape, which the pod's figure counted as they were then. So a request of ours that has
        finished since is not counted twice, and one sent since is counted once. Never below
        the own count (the others' are never negative)."""
        own = float(self._in_flight.get(target_key, 0))
        others = None if self._others is None else self._others(target_key)
        return own if others is None else own + others

    def spills(self) -> Mapping[str, int]:
        return self._spills

    def _is_ejected(self, key: str, now: float) -> bool:
        until = self._ejected_until.get(key)
        if until is None:
            return False
        if now >= until:
            del self._ejected_until[key]
            self._failures.pop(key, None)
            return False
        return True

    def started(self, target: routes.Target) -> None:
        self._in_flight[target.key] = self._in_flight.get(target.key, 0) + 1

    def finished(self, target: routes.Target, ok: bool) -> bool:
        key = target.key
        count = self._in_flight.get(key, 0) - 1
        if count > 0:
            self._in_flight[key] = count
        else:
            self._in_flight.pop(key, None)
        if ok:
            self._failures.pop(key, None)
            return False
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        if self.eject_after > 0 and failures >= self.eject_after and key not in self._ejected_until:
            self._ejected_until[key] = self._clock() + self.eject_cooldown
            return True
        return False

    def in_flight(self, target_key: str) -> int:
        return self._in_flight.get(target_key, 0)

    def ejected(self, target_key: str) -> bool:
        return self._is_ejected(target_key, self._clock())
