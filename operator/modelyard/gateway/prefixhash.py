"""Consistent hashing with bounded loads (CHWBL): the same key reaches the same target while
that target is not overloaded, without any state shared between gateway replicas.

Each target (by :attr:`routes.Target.key`, the same string on every gateway) owns
:data:`VNODES` points on a 64-bit ring; a request's key (a prompt prefix or a session, see
:mod:`modelyard.gateway.proxy`) hashes to a point, and the targets are visited clockwise from
it. The first one under the load bound takes the request (Mirrokni, Thorup and Zadimoghaddam,
"Consistent Hashing with Bounded Loads", 2018):

    load(target) < ceil(load_factor * (total load + 1) / number of targets)

So a hot key spills to the next target on its walk, never further than it must; and since
``load_factor > 1`` the bounds add up to more than the load, so some target always fits.

What makes replicas agree: the ring depends only on the set of target keys (the points are
blake2b digests of ``key#i``, sorted; no process salt, no order of arrival, never Python's
``hash()``), and the key's point only on its text. Two gateways with the same ready pods send
a key to the same pod as long as neither sees that pod over the bound; under load each
gateway judges the bound by the loads it knows (:meth:`balancer.WeightedLeastBusy.load`).
When a target leaves, only the keys it owned move (to their next target on the ring); when
one joins, it takes about ``1/n`` of the keys, each from one other target.

Pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Collection, Iterable, Iterator

VNODES = 100
"""Points per target: enough that n targets share the ring within a few percent of 1/n."""


def digest(text: str) -> int:
    """A 64-bit point on the ring, the same in every process."""
    data = text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class Ring:
    """The points of a set of target keys; immutable once built."""

    __slots__ = ("_owners", "_points", "size")

    def __init__(self, keys: Iterable[str], vnodes: int = VNODES) -> None:
        unique = set(keys)
        points = sorted((digest(f"{key}#{i}"), key) for key in unique for i in range(vnodes))
        self._points = [point for point, _ in points]
        self._owners = [owner for _, owner in points]
        self.size = len(unique)

    def walk(self, key: str) -> Iterator[str]:
        """The target keys clockwise from ``key``'s point, each once."""
        if not self._owners:
            return
        start = bisect.bisect_left(self._points, digest(key))
        seen: set[str] = set()
        count = len(self._owners)
        for offset in range(count):
            owner = self._owners[(start + offset) % count]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == self.size:
                    return

    def owner(self, key: str) -> str | None:
        """The target that ``key`` belongs to when no load is considered."""
        return next(self.walk(key), None)


def choose(
    ring: Ring,
    key: str,
    usable: Collection[str],
    load: Callable[[str], float],
    load_factor: float,
) -> tuple[str, bool] | None:
    """The target for ``key`` among ``usable`` (target keys on the ring), and whether the key
    spilled (a usable target before it on the walk was at its bound); None if none is usable.

    The bound is over the usable targets' loads. Every usable target is on the ring (the ring
    is built from all of the endpoint's targets; ``usable`` leaves out those tried or ejected).
    """
    if not usable:
        return None
    total = sum(load(k) for k in usable)
    capacity = math.ceil(load_factor * (total + 1) / len(usable))
    spilled = False
    for owner in ring.walk(key):
        if owner not in usable:
            continue
        if load(owner) < capacity:
            return owner, spilled
        spilled = True
    # only when loads moved between the sum and the walk (they cannot here): least loaded
    best = min(sorted(usable), key=load)
    return best, True
