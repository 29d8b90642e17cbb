"""What every handler shares: the cluster, settings, metrics, and the operator's memory of
which endpoints serve which entry (rebuilt from the cluster when the operator starts)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, MutableMapping

from modelyard.builders import settings
from modelyard.controllers import cluster, debounce, events, inference_pool, informer, metrics, ownership

CREATING = 8
"""How many endpoints apply their children at the same time."""
ENTRY_LIST_DELAY = 2.0
"""An endpoint's change of readiness (Ready, no longer Ready, gone) reaches its entry's
``status.endpoints`` this much later."""
ENTRY_LIST_SETTLE = 30.0
"""A change of the list alone (a new endpoint, not Ready yet; an endpoint moved to another
entry) reaches the entry this much later, unless a readiness change brings the write forward:
an endpoint that turns Ready within it costs its entry one status write (listed and Ready),
not two."""
CREATED_QUIET = 10.0
"""How long a starting endpoint (no status yet, or written ``Pending``/``Creating``) leaves a
passing state unwritten: ``Pending``/``Creating`` (no pod yet) and ``Progressing``/``Starting``
(pods not Ready yet) are superseded within seconds when pods start fast; an endpoint Ready by
then writes one status and one event, and a state that lasts longer is written then."""


@dataclasses.dataclass(frozen=True)
class EndpointState:
    model: str
    ready: bool
    phase: str
    pods_serve: str | None = None
    """The served name its runtime pods serve, while the operator keeps its Deployment (None:
    upstream, or nothing deployed); the InferencePools follow it (:mod:`.inference_pool`)."""
    uid: str = ""


class EndpointStates(MutableMapping[tuple[str, str], EndpointState]):
    """Every endpoint's state by (namespace, name), with the endpoints of each entry kept as
    they change: an entry's reconcile asks for its own, and scanning the fleet for them made
    the entries' reconciles grow with the square of it."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, str], EndpointState] = {}
        self._by_model: dict[str, set[tuple[str, str]]] = {}

    def __getitem__(self, key: tuple[str, str]) -> EndpointState:
        return self._states[key]

    def __setitem__(self, key: tuple[str, str], state: EndpointState) -> None:
        before = self._states.get(key)
        if before is not None and before.model != state.model:
            self._unlist(before.model, key)
        self._states[key] = state
        self._by_model.setdefault(state.model, set()).add(key)

    def __delitem__(self, key: tuple[str, str]) -> None:
        self._unlist(self._states.pop(key).model, key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    def of(self, model: str) -> list[tuple[str, str]]:
        """The endpoints of entry ``model``, sorted."""
        return sorted(self._by_model.get(model, ()))

    def _unlist(self, model: str, key: tuple[str, str]) -> None:
        keys = self._by_model[model]
        keys.discard(key)
        if not keys:
            del self._by_model[model]


@dataclasses.dataclass(frozen=True)
class Applied:
    """What the operator last applied for an endpoint, to skip re-applying what is unchanged."""

    digest: str
    """Hash of the built Deployment and Service."""
    deployment: tuple[str, int]
    """uid and generation of the Deployment right after the apply (a hand edit bumps it)."""
    service: tuple[str, str]
    """uid and resourceVersion of the Service right after the apply."""


RETRY_SECONDS = 1.0
"""The first recheck of an endpoint whose adapters are not settled (:mod:`.adapters`)."""


@dataclasses.dataclass
class AdapterMemory:
    """What the adapter sync remembers per endpoint between reconciles (:mod:`.adapters`)."""

    config_map: str = ""
    """The adapter ConfigMap as last applied."""
    retry: float = RETRY_SECONDS
    """The next recheck's delay while the set is not settled (doubles, bounded)."""
    refused: dict[tuple[str, str], tuple[str, str]] = dataclasses.field(default_factory=dict)
    """(pod, adapter) -> (path, message) of a load the pod refused (vLLM keeps no list of its own)."""
    served: set[str] = dataclasses.field(default_factory=set)
    """uids of the serveOn TrainingJobs given ``status.servedAt`` (written once)."""


@dataclasses.dataclass
class Context:
    cluster: cluster.Cluster
    settings: settings.Settings
    metrics: metrics.Metrics
    namespace: str
    """The operator's namespace: entry ConfigMaps and Secrets without a namespace, the Lease."""
    endpoints: EndpointStates = dataclasses.field(default_factory=EndpointStates)
    endpoint_queue: debounce.Debouncer | None = None
    entry_queue: debounce.Debouncer | None = None
    training_queue: debounce.Debouncer | None = None
    events: events.Poster | None = None
    """Posts Kubernetes Events on the endpoints (None: none are posted)."""
    applied: dict[tuple[str, str], Applied] = dataclasses.field(default_factory=dict)
    """Per endpoint, the children as last applied (server-side apply is the costly call)."""
    entry_versions: dict[str, tuple[int, str]] = dataclasses.field(default_factory=dict)
    """(generation, phase) of each entry when its endpoints were last woken."""
    ownership: ownership.Index = dataclasses.field(default_factory=ownership.Index)
    """Every endpoint and entry, from the watches: who owns which served name."""
    adapters: dict[tuple[str, str], AdapterMemory] = dataclasses.field(default_factory=dict)
    """Per endpoint, the live adapters' sync state (:mod:`.adapters`)."""
    pools: inference_pool.Pools = dataclasses.field(default_factory=inference_pool.Pools)
    """The InferencePools as last applied (``--inference-pools``)."""
    informer: informer.Informer = dataclasses.field(default_factory=informer.Informer)
    """What the watches report: reconciles read entries, endpoints and children from it."""
    quiet_since: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)
    """Endpoints whose start's passing state is not written yet: since when (see
    :func:`modelyard.controllers.model_endpoint._passing`)."""
    creating: asyncio.Semaphore = dataclasses.field(default_factory=lambda: asyncio.Semaphore(CREATING))
    """Endpoints applying their children at once: a few, so each is done soon (and its pods start)
    instead of all finishing together, and a reconcile that only observes never waits on them."""

    def endpoints_of(self, model: str) -> list[tuple[str, str]]:
        return self.endpoints.of(model)

    def touch_endpoint(self, namespace: str, name: str, delay: float = 0.2) -> None:
        if self.endpoint_queue is not None:
            self.endpoint_queue.schedule((namespace, name), delay)

    def touch_entry(self, name: str, delay: float = 0.3) -> None:
        if self.entry_queue is not None:
            self.entry_queue.schedule(name, delay)

    def touch_endpoints(self, keys: set[tuple[str, str]], delay: float = 0.2) -> None:
        for namespace, name in sorted(keys):
            self.touch_endpoint(namespace, name, delay)

    def touch_training(self, namespace: str, name: str, delay: float = 0.2) -> None:
        if self.training_queue is not None:
            self.training_queue.schedule((namespace, name), delay)
