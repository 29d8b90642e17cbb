"""Where routes come from: the small Protocol the app depends on, and a static source.

The app only asks a discovery for the current :class:`~modelyard.gateway.routes.RouteTable`
and the current API keys, and whether it has synced once (``/readyz``). The cluster
implementation (:mod:`modelyard.gateway.kube_discovery`) watches the Kubernetes API;
:class:`StaticDiscovery` serves a fixed table, for tests and for ``modelyard gateway
--routes FILE`` without a cluster.

Static routes file (YAML or JSON)::

    models:
      - name: llama                      # served name
        fallback: [small-llama]
        endpoints:
          - name: default/llama-a        # optional; defaults to "<model>-<index>"
            weight: 300
            urls: ["http://10.0.0.5:8000", "http://10.0.0.6:8000"]
          - name: default/llama-openai
            weight: 100
            urls: ["https://api.example.com/v1"]   # upstream base URL (no /v1 appended)
            upstream: {model: gpt-4o-mini, apiKeyEnv: EXAMPLE_API_KEY, headers: {X-Org: a}}
          - name: default/llama-b
            urls: ["http://10.0.0.7:8000", "http://10.0.0.8:8000"]
            routing: {strategy: PrefixHash, prefixCharLength: 512, loadFactor: 1.25}  # as spec.routing
    apiKeys:                             # same format as the keys Secret's data (see auth)
      alice: sk-alice-123
      alice.models: llama
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pydantic
import yaml

from modelyard import api
from modelyard.gateway import auth, routes


class Discovery(Protocol):
    """A source of routes and API keys."""

    def table(self) -> routes.RouteTable:
        """The current routes (a snapshot; never blocks)."""
        ...

    def keys(self) -> auth.KeyTable:
        """The current API keys (none usable: every /v1 request is refused, unless --no-auth)."""
        ...

    @property
    def synced(self) -> bool:
        """True once the first full view has been loaded."""
        ...

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every swap of the route table (held requests wait on it)."""
        ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Tables:
    """What every discovery holds: the current route and key tables, each swapped whole (readers
    need no lock), and the callbacks of a route table swap."""

    def __init__(self, table: routes.RouteTable | None = None, keys: auth.KeyTable | None = None) -> None:
        self._table = table or routes.RouteTable()
        self._keys = keys or auth.KeyTable()
        self._listeners: list[Callable[[], None]] = []

    def table(self) -> routes.RouteTable:
        return self._table

    def keys(self) -> auth.KeyTable:
        return self._keys

    def on_change(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _swap(self, table: routes.RouteTable) -> None:
        self._table = table
        for callback in self._listeners:
            callback()


class StaticDiscovery(Tables):
    """A fixed route table and key table; :meth:`set` swaps them (tests use it)."""

    @property
    def synced(self) -> bool:
        return True

    def set(self, table: routes.RouteTable | None = None, keys: auth.KeyTable | None = None) -> None:
        if table is not None:
            self._swap(table)
        if keys is not None:
            self._keys = keys

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def pod_target(endpoint: str, url: str) -> routes.Target:
    """A target for a runtime pod at ``http://host:port`` (OpenAI paths live under /v1)."""
    url = url.rstrip("/")
    host = url.split("://", 1)[-1]
    return routes.Target(f"{endpoint}@{host}", f"{url}/v1")


def upstream_target(endpoint: str, base_url: str) -> routes.Target:
    """A target for an external API whose base URL already ends in its version (``.../v1``)."""
    return routes.Target(f"{endpoint}@upstream", base_url.rstrip("/"))


def routing_of(spec: api.model_endpoint.Routing | None) -> routes.Routing:
    """The balancer's view of a ModelEndpoint's ``spec.routing`` (unset: LeastBusy)."""
    if spec is None:
        return routes.LEAST_BUSY
    return routes.Routing(
        spec.strategy, spec.prefix_char_length, spec.load_factor, spec.session_header, spec.session_user
    )


def _routing_entry(value: Any, where: str) -> routes.Routing:
    try:
        return routing_of(api.model_endpoint.Routing.model_validate(value))
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"routing.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
        raise ValueError(f"{where}: {problems}") from None


def load_routes_file(path: pathlib.Path, env: Mapping[str, str] | None = None) -> StaticDiscovery:
    """Read a routes file (format in the module docstring)."""
    env = os.environ if env is None else env
    doc: Any = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with 'models'")
    infos: list[routes.EndpointInfo] = []
    for model in doc.get("models") or []:
        served = str(model["name"])
        fallback = tuple(str(f) for f in model.get("fallback") or ())
        endpoints = model.get("endpoints") or []
        if not endpoints:
            infos.append(routes.EndpointInfo(f"{served}-none", served, ready=False, fallback=fallback))
        for index, ep in enumerate(endpoints):
            name = str(ep.get("name") or f"{served}-{index}")
            up = ep.get("upstream")
            upstream = None
            if up is not None:
                key_env = up.get("apiKeyEnv")
                upstream = routes.Upstream(
                    model=up.get("model"),
                    api_key=env.get(key_env) if key_env else up.get("apiKey"),
                    headers=tuple((str(k), str(v)) for k, v in (up.get("headers") or {}).items()),
                )
                targets = tuple(upstream_target(name, u) for u in ep.get("urls") or ())
            else:
                targets = tuple(pod_target(name, u) for u in ep.get("urls") or ())
            infos.append(
                routes.EndpointInfo(
                    name,
                    served,
                    int(ep.get("weight", 100)),
                    bool(ep.get("ready", True)),
                    fallback,
                    targets,
                    upstream,
                    routing=_routing_entry(ep["routing"], f"{path}: endpoint {name}")
                    if ep.get("routing") is not None
                    else routes.LEAST_BUSY,
                )
            )
    data = {str(k): str(v) for k, v in (doc.get("apiKeys") or {}).items()}
    keys = auth.KeyTable.from_data(data, f"apiKeys of {path}")
    return StaticDiscovery(routes.build_table(infos), keys)
