"""The route table: what the gateway knows about where each served name can be answered.

Discovery (from the cluster or a static file) produces one immutable :class:`RouteTable`
snapshot per change and swaps it in whole, so a request always sees a consistent table and
the proxy never takes a lock. Everything here is plain data; the live counters (requests in
flight, ejections) belong to the balancer, keyed by :attr:`Target.key`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One place a request can be sent: a ready pod, or an upstream API.

    ``base`` is the URL that OpenAI paths are appended to without their ``/v1`` prefix
    (``http://10.0.0.5:8000/v1`` for a pod, ``https://api.openai.com/v1`` upstream).
    """

    key: str
    """Unique id, e.g. ``ns/endpoint@10.0.0.5:8000``; labels metrics and keys counters."""
    base: str
    """Base URL ending in the API version, no trailing slash."""


@dataclasses.dataclass(frozen=True, slots=True)
class Upstream:
    """How to talk to an external OpenAI-compatible API."""

    model: str | None = None
    """The model name sent upstream instead of the served name (None: unchanged)."""
    api_key: str | None = dataclasses.field(default=None, repr=False)
    """Bearer key for the upstream; never logged (excluded from repr)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers."""


@dataclasses.dataclass(frozen=True, slots=True)
class Routing:
    """How the balancer picks a target of one endpoint (``spec.routing`` of the ModelEndpoint)."""

    strategy: str = "LeastBusy"
    """``LeastBusy`` or ``PrefixHash`` (:mod:`modelyard.gateway.prefixhash`)."""
    prefix_chars: int = 512
    """PrefixHash: characters of the rendered prompt hashed."""
    load_factor: float = 1.25
    """PrefixHash: a target takes a key only while under this times the mean load."""
    session_header: str | None = None
    """PrefixHash: a header whose value, when present, is the key instead of the prompt."""
    session_user: bool = False
    """PrefixHash: the OpenAI ``user`` field, when present, is the key (after the header)."""
    key: str | None = None
    """PrefixHash: one key for every request (a live adapter's name), before all the others."""

    @property
    def prefix_hash(self) -> bool:
        return self.strategy == "PrefixHash"


LEAST_BUSY = Routing()


@dataclasses.dataclass(frozen=True, slots=True)
class Endpoint:
    """One ModelEndpoint that can answer: its weight and the targets that can answer for it.

    An endpoint without targets is in the table only when requests for it are held
    (:attr:`hold`: it is scaled to zero or coming up, :mod:`modelyard.gateway.hold`), or when
    it cannot come up (:attr:`down`, which held requests end with).
    """

    name: str
    """``namespace/name`` of the ModelEndpoint."""
    served_name: str
    weight: int
    targets: tuple[Target, ...]
    upstream: Upstream | None = None
    hold: bool = False
    """With no target, requests wait for one (scaled to zero, autoscaled, or coming up)."""
    down: str | None = None
    """Why the endpoint cannot come up (``reason: message`` of its status), or None."""
    routing: Routing = LEAST_BUSY
    """How a target of this endpoint is picked."""

    @property
    def waits(self) -> bool:
        """No target yet, but requests may be held for this endpoint."""
        return not self.targets and self.hold and self.down is None


@dataclasses.dataclass(frozen=True, slots=True)
class Model:
    """A served name: its routable endpoints and the served names to fall back to."""

    name: str
    endpoints: tuple[Endpoint, ...] = ()
    """Endpoints with weight > 0 and at least one target, or held for (see :class:`Endpoint`)."""
    fallback: tuple[str, ...] = ()
    """Fallback served names from every endpoint of this name (ready or not), in order."""
    affinity: Routing | None = dataclasses.field(init=False, repr=False, compare=False)
    """The routing of the first PrefixHash endpoint (by name), whose settings say what the
    request's affinity key is; None when no endpoint hashes (no key is computed)."""
    routable: bool = dataclasses.field(init=False, repr=False, compare=False)
    """Some endpoint has a target, or holds requests until it has one."""

    def __post_init__(self) -> None:  # the two above, read on every request: found once
        affinity = next((e.routing for e in self.endpoints if e.routing.prefix_hash), None)
        object.__setattr__(self, "affinity", affinity)
        object.__setattr__(self, "routable", any(e.targets or e.waits for e in self.endpoints))

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)

    def why_down(self) -> str:
        """The status reasons of the endpoints that cannot come up, for a 503's message."""
        return "; ".join(f"{e.name}: {e.down}" for e in self.endpoints if e.down and not e.targets)


@dataclasses.dataclass(frozen=True, slots=True)
class RouteTable:
    """All served names the gateway knows, routable or not."""

    models: Mapping[str, Model] = dataclasses.field(default_factory=dict)
    unreadable_keys: tuple[tuple[str, str], ...] = ()
    """(endpoint, ``namespace/secret``) of upstream endpoints left out of routing because the
    gateway may not read their ``apiKeySecretRef`` Secret."""

    def get(self, name: str) -> Model | None:
        return self.models.get(name)

    def ready_names(self) -> list[str]:
        """Served names with at least one ready endpoint, sorted."""
        return sorted(name for name, model in self.models.items() if model.routable)


@dataclasses.dataclass(frozen=True, slots=True)
class EndpointInfo:
    """What discovery learnt about one ModelEndpoint, ready or not."""

    name: str
    served_name: str
    weight: int = 100
    ready: bool = True
    fallback: tuple[str, ...] = ()
    targets: tuple[Target, ...] = ()
    upstream: Upstream | None = None
    hold: bool = False
    down: str | None = None
    routing: Routing = LEAST_BUSY


def build_table(endpoints: Iterable[EndpointInfo]) -> RouteTable:
    """Group endpoint facts by served name into a table (stable order: by endpoint name)."""
    grouped: dict[str, list[EndpointInfo]] = {}
    for info in sorted(endpoints, key=lambda e: e.name):
        grouped.setdefault(info.served_name, []).append(info)
    return RouteTable({served: build_model(served, infos) for served, infos in grouped.items()})


def build_model(served: str, infos: Iterable[EndpointInfo]) -> Model:
    """One served name's model from the facts of its endpoints, given in endpoint-name order."""
    fallback: list[str] = []
    routable: list[Endpoint] = []
    for i in infos:
        fallback.extend(f for f in i.fallback if f != served and f not in fallback)
        if i.weight > 0 and ((i.ready and i.targets) or i.hold or i.down):
            targets = i.targets if i.ready else ()
            routable.append(
                Endpoint(i.name, served, i.weight, targets, i.upstream, i.hold, i.down, i.routing)
            )
    return Model(served, tuple(routable), tuple(fallback))


class RouteIndex:
    """The endpoint facts behind a table, by served name, so that a change costs what it touches.

    :meth:`put` records one endpoint's facts (None: it is gone or not routed); :meth:`table`
    rebuilds the :class:`Model` of each served name touched since the last table and returns a
    new table that shares every other Model object with the last one (a copy-on-write dict:
    copying the mapping of references is the only part that grows with the table, a C-level
    copy). Tables already handed out never change. The result always equals
    :func:`build_table` over the facts put, which the tests check on random changes.
    """

    def __init__(self) -> None:
        self._infos: dict[str, tuple[EndpointInfo, ...]] = {}
        self._served: dict[str, dict[str, EndpointInfo]] = {}
        self._touched: set[str] = set()
        self._models: dict[str, Model] = {}

    def put(self, name: str, info: EndpointInfo | Sequence[EndpointInfo] | None) -> None:
        """Set (or, with None, drop) the facts of the endpoint ``name`` (``info.name``): one
        info, or several under different served names (its own and its live adapters')."""
        infos = () if info is None else (info,) if isinstance(info, EndpointInfo) else tuple(info)
        old = self._infos.get(name, ())
        if old == infos:
            return
        for before in old:
            group = self._served[before.served_name]
            del group[name]
            if not group:
                del self._served[before.served_name]
            self._touched.add(before.served_name)
        self._infos.pop(name, None)
        if infos:
            self._infos[name] = infos
        for now in infos:
            self._served.setdefault(now.served_name, {})[name] = now
            self._touched.add(now.served_name)

    def names(self) -> list[str]:
        """The endpoints whose facts are in the index."""
        return list(self._infos)

    def table(self, unreadable_keys: tuple[tuple[str, str], ...] = ()) -> RouteTable:
        """The table of the facts put so far; untouched served names keep their Model objects."""
        if self._touched:
            models = dict(self._models)
            for served in self._touched:
                group = self._served.get(served)
                if group is None:
                    models.pop(served, None)
                    continue
                model = build_model(served, (group[n] for n in sorted(group)))
                if models.get(served) != model:
                    models[served] = model
            self._models = models
            self._touched = set()
        return RouteTable(self._models, unreadable_keys)
