"""The OpenAI-compatible gateway: one Service every client talks to, routing to ModelEndpoints.

Discovery (:mod:`~modelyard.gateway.kube_discovery`, or a static table) keeps a
:class:`~modelyard.gateway.routes.RouteTable`; the balancer picks an endpoint by weight and
its least-busy pod; the proxy forwards the client's bytes, retries before the first byte,
falls back to other models, and relays SSE streams event by event. See ``docs/gateway.md``.
"""

from modelyard.gateway import (
    app,
    auth,
    balancer,
    body,
    discovery,
    exchange,
    metrics,
    proxy,
    ratelimit,
    relay,
    routes,
    settings,
    sse,
    upstream,
)
from modelyard.gateway.app import create_app
from modelyard.gateway.settings import Settings

__all__ = [
    "Settings",
    "app",
    "auth",
    "balancer",
    "body",
    "create_app",
    "discovery",
    "exchange",
    "metrics",
    "proxy",
    "ratelimit",
    "relay",
    "routes",
    "settings",
    "sse",
    "upstream",
]
