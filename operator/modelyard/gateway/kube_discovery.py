"""Routes from the cluster: ModelEndpoints, their EndpointSlices, ModelEntries and Secrets.

Watched (all by :class:`~modelyard.gateway.kube.Informer`, so a change is live as soon as
the API server sends it):

* ``modelendpoints`` (all namespaces): served name (``spec.servedName``, else the entry's),
  ``spec.weight``, ``spec.fallback``, and ``status.phase``: an upstream
  endpoint is routed only when ``Ready``; a pod endpoint also while ``Degraded`` or
  ``Progressing``, through the pods that are still ready (a crashed replica or a rolling
  update must not take the whole model away);
* ``status.adapters`` of a pod endpoint: each live adapter's served name routes to the pods
  that have it loaded (:func:`.endpoint_info.adapter_infos`);
* ``endpointslices`` labelled ``modelyard.io/endpoint`` (``wire.ENDPOINT``, all namespaces):
  the addresses of endpoints whose ``conditions.ready`` is true (and ``terminating`` not true)
  on the port named ``http`` are the endpoint's pods; a pod being drained (terminating, still
  ``serving`` its in-flight requests) gets no new request;
* hold at zero (:mod:`modelyard.gateway.hold`): a pod endpoint holds requests while it has no
  ready pod when it has ``spec.autoscaling``, or its status reason is ``ScaledToZero``, or its
  phase is Pending/Progressing with ``spec.replicas`` > 0; phase ``Failed`` or reason
  ``Unschedulable`` marks it down (held requests end with its reason and message);
* ``modelentries``: ``spec.upstream`` of the entries that upstream endpoints serve, and
  ``spec.servingNamespaces`` (served-name ownership);
* one Secret per upstream ``apiKeySecretRef`` and the gateway's API-key Secret.

An upstream key Secret the gateway may not read (the platform grants each one, chart value
``gateway.upstreamKeySecrets``) never holds back readiness: the endpoints that need it are
left out of routing (their traffic goes to other endpoints of the served name, or fallbacks),
logged with the Secret and the grant they need, and counted in
``modelyard_gateway_upstream_key_unreadable{endpoint,secret}`` (``RouteTable.unreadable_keys``).
Sending the request without its key would only earn an upstream 401.

Changes are coalesced to one :meth:`KubeDiscovery.rebuild` per loop turn, which costs what
they touch, not what the caches hold (it runs on the serving loop): the informers say which
objects changed, only the endpoints those touch are read again, only their served names'
:class:`~.routes.Model` objects are rebuilt (:class:`~.routes.RouteIndex`), and the new
immutable table shares every other Model with the last one. A relist reads everything again.
A failing watch keeps its cache, so the last-known routes keep serving.

Served-name ownership (:mod:`modelyard.api.served_names`) is applied here, from the same
caches, whatever admission let through: an endpoint in conflict is never routed, fallbacks
keep only the names the endpoint's namespace may use, and API keys limited to namespaces
reach only the served names those namespaces own or share.

What a rebuild reads out of each object is in :mod:`.endpoint_info`, the pure rules it applies
in :mod:`.readiness`, the ownership it keeps current in :mod:`.ownership_index`. The module is
longer than most: the watches, the dependencies between their objects (a slice, an entry or a
key Secret to the endpoints it touches) and the key table are one state machine.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pydantic

from modelyard import api
from modelyard.api import served_names, wire
from modelyard.gateway import auth, discovery, endpoint_info, kube, ownership_index, routes

log = logging.getLogger(__name__)


class KubeDiscovery(discovery.Tables):
    """A :class:`~modelyard.gateway.discovery.Discovery` fed by watches on the cluster."""

    def __init__(
        self,
        kube_api: kube.KubeApi,
        keys_secret: str | None = "modelyard-gateway-keys",
        backoff: tuple[float, float] = (0.2, 5.0),
    ) -> None:
        super().__init__()
        self.api = kube_api
        self.backoff = backoff
        self._keys_said: tuple[tuple[str, ...], bool] | None = None
        self._synced = False
        self._scheduled = False
        self.endpoints = self._informer(wire.api_path(wire.MODEL_ENDPOINTS))
        self.entries = self._informer(wire.api_path(wire.MODEL_ENTRIES))
        self.slices = self._informer("/apis/discovery.k8s.io/v1/endpointslices", label_selector=wire.ENDPOINT)
        self.keys_secret = keys_secret
        self.key_secret: kube.Informer | None = None
        if keys_secret:
            self.key_secret = self._secret_informer(kube_api.namespace, keys_secret)
        self._secrets: dict[tuple[str, str], kube.Informer] = {}
        self._parsed: dict[str, tuple[str, Any]] = {}
        self._conflicts: set[str] = set()
        self._unreadable: tuple[tuple[str, str], ...] = ()
        # What the last rebuilds derived, kept so that the next one reads only what changed:
        self._full = True
        self._keys_stale = True
        self._pods = endpoint_info.PodIndex()
        self._index = routes.RouteIndex()
        self._owners = ownership_index.OwnershipIndex()
        self._wants: dict[str, set[tuple[str, str]]] = {}
        self._wanted_by: dict[tuple[str, str], set[str]] = {}
        """Upstream key Secret -> the endpoints that use it."""
        self._secret_seen: dict[tuple[str, str], tuple[bool, bool]] = {}
        self._refused: dict[str, str] = {}
        """Endpoint -> the key Secret it may not read."""

    # -- Discovery -------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self._synced

    async def start(self) -> None:
        for informer in self._base():
            informer.start()

    async def stop(self) -> None:
        for informer in [*self._base(), *self._secrets.values()]:
            await informer.stop()
        await self.api.close()

    # -- internals -------------------------------------------------------------------------

    def _base(self) -> list[kube.Informer]:
        base = [self.endpoints, self.entries, self.slices]
        return [*base, self.key_secret] if self.key_secret is not None else base

    def _informer(
        self, path: str, label_selector: str | None = None, field_selector: str | None = None
    ) -> kube.Informer:
        return kube.Informer(
            self.api,
            path,
            self._changed,
            label_selector=label_selector,
            field_selector=field_selector,
            backoff=self.backoff,
        )

    def _secret_informer(self, namespace: str, name: str) -> kube.Informer:
        return self._informer(
            f"/api/v1/namespaces/{namespace}/secrets", field_selector=f"metadata.name={name}"
        )

    def _changed(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.rebuild)

    def rebuild(self) -> None:
        """Bring the routes up to date with what the informers changed since the last call.

        Only the endpoints a change touches are read again (a slice: its endpoint; an entry: the
        endpoints that deploy it; a key Secret: the endpoints that use it; an ownership verdict
        that changed: its endpoint), and only their served names' models are rebuilt. A relist
        of a base informer (and the first call) reads everything, as a restart would.
        """
        self._scheduled = False
        (eps, ep_full), (names, entry_full), (slices, slice_full) = (
            self.endpoints.take(),
            self.entries.take(),
            self.slices.take(),
        )
        full = self._full or ep_full or entry_full or slice_full
        self._full = False
        keys_changed = self._keys_stale or (self.key_secret is not None and any(self.key_secret.take()))
        if full:
            self._pods.reset(self.slices.store)
            known, entries = self._owners.known()
            eps = {*self.endpoints.store, *known, *self._index.names(), *self._wants, *self._refused}
            names = {*self.entries.store, *entries}
        for key in slices if not full else ():
            eps |= self._pods.update(key, self.slices.store.get(key))
        for name in names:
            self._owners.entry(name, self._entry(name))
            eps |= self._owners.deploying(name)
        for ref in self._secrets_changed():
            eps |= self._wanted_by.get(ref, set())
        for key in eps:
            obj = self.endpoints.store.get(key)
            endpoint = self._parse(f"ep:{key}", obj, api.ModelEndpoint) if obj else None
            if isinstance(endpoint, api.ModelEndpoint) and obj is not None:
                created = (obj.get("metadata") or {}).get("creationTimestamp")
                self._owners.endpoint(key, endpoint, self._entry(endpoint.spec.model), created)
            else:
                self._owners.endpoint(key, None, None, None)
        verdicts, owners = self._owners.decide(force=full)
        eps |= verdicts
        keys_changed |= owners
        for key in eps:
            self._route(key, self._owners.ownership)
        self._report_unreadable(tuple(sorted(self._refused.items())))
        if self._synced or all(i.synced for i in self._base()):
            # not before every endpoint and entry is known: a partial cache could make an
            # intruder look like the first (or miss an entry's servingNamespaces)
            self._swap(self._index.table(self._unreadable))
        self._forget_parsed(full, eps, names)
        if self.key_secret is not None and keys_changed:
            self._load_keys(self.key_secret, self._owners.ownership)
        self._keys_stale = False
        self._sync_secret_informers(set(self._wanted_by))
        # An upstream key Secret counts once it is read or refused: a refusal never keeps a
        # new gateway unready (its endpoints are reported instead).
        settled = all(i.synced or i.error is not None for i in self._secrets.values())
        if not self._synced and settled and all(i.synced for i in self._base()):
            self._synced = True
            log.info("discovery synced: %d served names", len(self._table.models))

    def _secrets_changed(self) -> list[tuple[str, str]]:
        """Upstream key Secrets whose content or readability changed since the last rebuild."""
        changed = []
        for ref, informer in self._secrets.items():
            seen = (informer.synced, informer.error is not None)
            if any(informer.take()) or self._secret_seen.get(ref) != seen:
                changed.append(ref)
            self._secret_seen[ref] = seen
        for ref in self._secret_seen.keys() - self._secrets.keys():
            del self._secret_seen[ref]
        return changed

    def _route(self, key: str, ownership: served_names.Ownership) -> None:
        """Re-derive the routing facts of the endpoint ``key`` and what they depend on."""
        obj = self.endpoints.store.get(key)
        wanted: set[tuple[str, str]] = set()
        conflicts: set[str] = set()
        unreadable: list[tuple[str, str]] = []
        info = None
        infos: tuple[routes.EndpointInfo, ...] = ()
        if obj is not None:
            named = self._pods.pods(key)
            pods = {key: [url for _, url in named]}
            info = self._endpoint_info(key, obj, pods, wanted, ownership, conflicts, unreadable)
            endpoint = self._parse(f"ep:{key}", obj, api.ModelEndpoint)
            if info is not None and isinstance(endpoint, api.ModelEndpoint):
                namespace = endpoint.namespace or ""
                allowed = lambda name: ownership.may_serve(namespace, name)  # noqa: E731
                infos = (info, *endpoint_info.adapter_infos(info, endpoint, named, allowed))
        self._index.put(key, infos or None)
        for ref in self._wants.pop(key, set()) - wanted:
            self._wanted_by[ref].discard(key)
            if not self._wanted_by[ref]:
                del self._wanted_by[ref]
        for ref in wanted:
            self._wanted_by.setdefault(ref, set()).add(key)
        if wanted:
            self._wants[key] = wanted
        if conflicts:
            self._conflicts.add(key)
        else:
            self._conflicts.discard(key)
        self._refused.pop(key, None)
        for _, secret in unreadable:
            self._refused[key] = secret

    def _forget_parsed(self, full: bool, eps: set[str], names: set[str]) -> None:
        """Drop the parse cache of objects gone from the caches."""
        if full:
            live = {f"ep:{k}" for k in self.endpoints.store} | {f"entry:{k}" for k in self.entries.store}
            gone = self._parsed.keys() - live
        else:
            gone = {f"ep:{k}" for k in eps if k not in self.endpoints.store}
            gone |= {f"entry:{n}" for n in names if n not in self.entries.store}
        for stale in gone:
            self._parsed.pop(stale, None)

    def _load_keys(self, informer: kube.Informer, ownership: served_names.Ownership) -> None:
        """Swap in the keys Secret's table; log when what makes keys unusable changes."""
        secret = next(iter(informer.store.values()), None)
        source = f"Secret {self.api.namespace}/{self.keys_secret}"
        if secret is None:
            keys = auth.KeyTable.absent(source)
        else:
            keys = auth.KeyTable.from_data(endpoint_info.secret_data(secret), source)
        self._keys = keys.with_reachable(ownership.names_for)
        said = (keys.problems, bool(keys.keys))
        if said == self._keys_said or not informer.synced:
            return
        self._keys_said = said
        for problem in keys.problems:
            log.warning("%s: %s", source, problem)
        if keys.keys:
            log.info("%s: %d API keys loaded", source, len(keys.keys))
        else:
            log.error("no API key is configured: %s; every /v1 request is refused with 401", keys.why_empty())

    def _report_unreadable(self, found: tuple[tuple[str, str], ...]) -> None:
        for endpoint, secret in sorted(set(found) - set(self._unreadable)):
            log.warning(
                "upstream endpoint %s is not routed: the gateway may not read its key Secret %s "
                "(grant it: chart value gateway.upstreamKeySecrets, docs/security.md)",
                endpoint,
                secret,
            )
        for endpoint, secret in sorted(set(self._unreadable) - set(found)):
            log.info("upstream endpoint %s: its key Secret %s is readable again", endpoint, secret)
        self._unreadable = found

    def _sync_secret_informers(self, wanted: set[tuple[str, str]]) -> None:
        for ref in wanted - self._secrets.keys():
            informer = self._secret_informer(*ref)
            self._secrets[ref] = informer
            informer.start()
        for ref in self._secrets.keys() - wanted:
            asyncio.get_running_loop().create_task(self._secrets.pop(ref).stop())

    def _parse(self, key: str, obj: dict[str, Any], kind: type[api.base.Resource]) -> Any:
        version = str((obj.get("metadata") or {}).get("resourceVersion"))
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            parsed: Any = kind.model_validate(obj)
        except pydantic.ValidationError as exc:
            log.warning("%s %s does not validate (%d errors); ignored", kind.__name__, key, exc.error_count())
            parsed = None
        self._parsed[key] = (version, parsed)
        return parsed

    def _entry(self, name: str) -> api.ModelEntry | None:
        obj = self.entries.store.get(name)
        entry = self._parse(f"entry:{name}", obj, api.ModelEntry) if obj else None
        return entry if isinstance(entry, api.ModelEntry) else None

    def _endpoint_info(
        self,
        key: str,
        obj: dict[str, Any],
        pods: dict[str, list[str]],
        wanted: set[tuple[str, str]],
        ownership: served_names.Ownership,
        conflicts: set[str],
        unreadable: list[tuple[str, str]],
    ) -> routes.EndpointInfo | None:
        endpoint = self._parse(f"ep:{key}", obj, api.ModelEndpoint)
        if not isinstance(endpoint, api.ModelEndpoint):
            return None
        entry = self._entry(endpoint.spec.model)
        facts = served_names.facts_of(endpoint, entry, (obj.get("metadata") or {}).get("creationTimestamp"))
        if facts is None:
            return None
        verdict = ownership.verdict(facts.namespace, facts.name)
        if verdict.conflict is not None:
            conflicts.add(key)
            if key not in self._conflicts:
                log.warning("ModelEndpoint %s is not routed: %s", key, verdict.conflict)
            return None
        routed, refused = endpoint_info.info(
            key,
            obj,
            endpoint,
            entry,
            facts.served_name,
            verdict.fallback,
            pods,
            lambda ref, namespace: self._upstream_key(ref, namespace, wanted),
        )
        if refused is not None:
            unreadable.append((key, refused))
        return routed

    def _upstream_key(
        self, ref: api.base.SecretKeyRef | None, namespace: str, wanted: set[tuple[str, str]]
    ) -> tuple[str | None, str | None]:
        """(the key, None), or (None, ``namespace/name``) of a Secret the gateway may not read."""
        if ref is None:
            return None, None
        where = (ref.namespace or namespace, ref.name)
        wanted.add(where)
        informer = self._secrets.get(where)
        if informer is not None and not informer.synced and informer.error is not None:
            return None, "/".join(where)
        secret = next(iter(informer.store.values()), None) if informer else None
        return (endpoint_info.secret_data(secret).get(ref.key) if secret else None), None
