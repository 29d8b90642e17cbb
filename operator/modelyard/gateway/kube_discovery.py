"""Routes from the cluster: ModelEndpoints, their EndpointSlices, ModelEntries and Secrets.

Watched (all by :class:`~modelyard.gateway.kube.Informer`, so a change is live as soon as
the API server sends it):

* ``modelendpoints`` (all namespaces): served name (``spec.servedName``, else the entry's),
  ``spec.weight``, ``spec.fallback``, and ``status.phase``: an upstream
  endpoint is routed only when ``Ready``; a pod endpoint also while ``Degraded`` or
  ``Progressing``, through the pods that are still ready (a crashed replica or a rolling
  update must not take the whole model away);
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

Every change rebuilds the route table from the caches (coalesced to once per loop turn) and
swaps it in. A failing watch keeps its cache, so the last-known routes keep serving.

Served-name ownership (:mod:`modelyard.api.served_names`) is applied here, from the same
caches, whatever admission let through: an endpoint in conflict is never routed, fallbacks
keep only the names the endpoint's namespace may use, and API keys limited to namespaces
reach only the served names those namespaces own or share.

One rebuild reads every cache (endpoints, entries, slices, Secrets) together; what it reads out
of each object is in :mod:`.endpoint_info`, the pure rules it applies in :mod:`.readiness`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pydantic

from modelyard import api
from modelyard.api import served_names, wire
from modelyard.gateway import auth, discovery, endpoint_info, kube, routes

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
        self._scheduled = False
        pods = endpoint_info.pod_urls(self.slices.store.values())
        ownership = self._ownership()
        infos: list[routes.EndpointInfo] = []
        wanted: set[tuple[str, str]] = set()
        conflicts: set[str] = set()
        unreadable: list[tuple[str, str]] = []
        for key, obj in list(self.endpoints.store.items()):
            info = self._endpoint_info(key, obj, pods, wanted, ownership, conflicts, unreadable)
            if info is not None:
                infos.append(info)
        self._report_unreadable(tuple(sorted(unreadable)))
        if self._synced or all(i.synced for i in self._base()):
            # not before every endpoint and entry is known: a partial cache could make an
            # intruder look like the first (or miss an entry's servingNamespaces)
            self._conflicts = conflicts
            self._swap(dataclasses.replace(routes.build_table(infos), unreadable_keys=self._unreadable))
        live = {f"ep:{k}" for k in self.endpoints.store} | {f"entry:{k}" for k in self.entries.store}
        for stale in self._parsed.keys() - live:
            del self._parsed[stale]
        if self.key_secret is not None:
            self._load_keys(self.key_secret, ownership)
        self._sync_secret_informers(wanted)
        # An upstream key Secret counts once it is read or refused: a refusal never keeps a
        # new gateway unready (its endpoints are reported instead).
        settled = all(i.synced or i.error is not None for i in self._secrets.values())
        if not self._synced and settled and all(i.synced for i in self._base()):
            self._synced = True
            log.info("discovery synced: %d served names", len(self._table.models))

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

    def _ownership(self) -> served_names.Ownership:
        """The ownership rule over every endpoint and entry in the caches, ready or not."""
        claims = []
        for name in list(self.entries.store):
            entry = self._entry(name)
            claim = served_names.claim_of(entry) if entry is not None else None
            if claim is not None:
                claims.append(claim)
        facts = []
        for key, obj in list(self.endpoints.store.items()):
            endpoint = self._parse(f"ep:{key}", obj, api.ModelEndpoint)
            if isinstance(endpoint, api.ModelEndpoint):
                created = (obj.get("metadata") or {}).get("creationTimestamp")
                fact = served_names.facts_of(endpoint, self._entry(endpoint.spec.model), created)
                if fact is not None:
                    facts.append(fact)
        return served_names.decide(facts, claims)

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
