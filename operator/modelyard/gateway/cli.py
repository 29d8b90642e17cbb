"""``modelyard gateway``: serve the OpenAI-compatible gateway.

In a pod it discovers routes with the service account; elsewhere with the current
kubeconfig (``--kubeconfig``); with ``--routes FILE`` it serves a static table and needs no
cluster. Flags override the environment variables listed in :mod:`modelyard.gateway.settings`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import pathlib
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from modelyard import eventloop
from modelyard.gateway import app, balancer, discovery, podload, settings

log = logging.getLogger(__name__)

EVENT_LOOP_ENV = "GATEWAY_EVENT_LOOP"
"""The environment's choice of event loop (:mod:`modelyard.eventloop`), when ``--event-loop`` is not given."""

# flag dest -> (Settings field, converter from the flag's value)
_OVERRIDES: dict[str, tuple[str, Any]] = {
    "retry_attempts": ("retry_attempts", int),
    "retry_delay": ("retry_delay", lambda ms: ms / 1000),
    "fallback_model": ("fallback_model", str),
    "request_timeout": ("request_timeout", float),
    "attempt_timeout": ("attempt_timeout", float),
    "connect_timeout": ("connect_timeout", float),
    "max_body_bytes": ("max_body_bytes", int),
    "body_timeout": ("body_timeout", float),
    "max_in_flight": ("max_in_flight", int),
    "max_response_bytes": ("max_response_bytes", int),
    "max_event_bytes": ("max_event_bytes", int),
    "max_concurrency_per_key": ("max_concurrency_per_key", int),
    "keepalive_interval": ("keepalive_interval", float),
    "stream_stall_timeout": ("stream_stall_timeout", float),
    "eject_after": ("eject_after", int),
    "eject_cooldown": ("eject_cooldown", float),
    "max_connections": ("max_connections", int),
    "hold_timeout": ("hold_timeout", float),
    "hold_queue": ("hold_queue", int),
    "pod_metrics_interval": ("pod_metrics_interval", float),
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve /metrics (and /healthz) on this port, and not on --port (default: on --port)",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, else KUBECONFIG/~/.kube)")
    parser.add_argument("--namespace", help="namespace of the API-key Secret (default: the gateway's own)")
    parser.add_argument(
        "--keys-secret",
        default="modelyard-gateway-keys",
        help="Secret holding API keys (default: modelyard-gateway-keys; '' only with --no-auth)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve /v1 without API keys: anyone who reaches the gateway may use every model",
    )
    parser.add_argument(
        "--routes", type=pathlib.Path, metavar="FILE", help="serve a static routes file, no cluster"
    )
    parser.add_argument(
        "--retry-attempts", type=int, metavar="N", help="retries per model (env RETRY_ATTEMPTS)"
    )
    parser.add_argument(
        "--retry-delay", type=float, metavar="MS", help="delay before re-trying a target (RETRY_DELAY)"
    )
    parser.add_argument(
        "--fallback-model", metavar="NAME", help="gateway-wide fallback model (FALLBACK_MODEL)"
    )
    parser.add_argument("--request-timeout", type=float, metavar="S", help="seconds per request")
    parser.add_argument(
        "--attempt-timeout", type=float, metavar="S", help="seconds to the first byte of an attempt"
    )
    parser.add_argument("--connect-timeout", type=float, metavar="S", help="seconds to connect to a target")
    parser.add_argument("--max-body-bytes", type=int, metavar="N", help="largest request body (413 beyond)")
    parser.add_argument(
        "--body-timeout", type=float, metavar="S", help="seconds a client may take to send its body (408)"
    )
    parser.add_argument(
        "--max-in-flight", type=int, metavar="N", help="requests forwarded at once (429 beyond; 0: off)"
    )
    parser.add_argument(
        "--max-response-bytes", type=int, metavar="N", help="largest non-streamed answer of a model (502)"
    )
    parser.add_argument(
        "--max-event-bytes", type=int, metavar="N", help="largest server-sent event of a model (502)"
    )
    parser.add_argument(
        "--max-concurrency-per-key", type=int, metavar="N", help="in flight per API key (429)"
    )
    parser.add_argument("--keepalive-interval", type=float, metavar="S", help="SSE keepalive period")
    parser.add_argument(
        "--stream-stall-timeout",
        type=float,
        metavar="S",
        help="seconds a started stream may send nothing before it is resumed on another pod "
        "(default 30; 0: never)",
    )
    parser.add_argument(
        "--eject-after", type=int, metavar="N", help="consecutive failures that eject a target"
    )
    parser.add_argument("--eject-cooldown", type=float, metavar="S", help="seconds a target stays ejected")
    parser.add_argument(
        "--max-connections", type=int, metavar="N", help="upstream connection pool (0: no limit)"
    )
    parser.add_argument(
        "--hold-timeout",
        type=float,
        metavar="S",
        help="seconds a request waits for an endpoint at zero to get a ready pod (default 120; 503 after)",
    )
    parser.add_argument(
        "--hold-queue",
        type=int,
        metavar="N",
        help="requests held per served name while its endpoint comes up (default 100; 503 beyond)",
    )
    parser.add_argument(
        "--pod-metrics-interval",
        type=float,
        metavar="S",
        help="seconds between scrapes of each pod's /metrics queue signal for least-busy (default 1; 0: off)",
    )
    parser.add_argument(
        "--event-loop",
        choices=eventloop.CHOICES,
        help="auto: uvloop when installed, else asyncio's; uvloop: refuse to start without it; "
        f"asyncio (env {EVENT_LOOP_ENV}; default auto)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    parser.add_argument("--access-log", action="store_true", help="log every request (never logs keys)")
    parser.set_defaults(func=serve, group_parser=parser)


def build_settings(args: argparse.Namespace) -> settings.Settings:
    config = settings.Settings.from_env()
    changes = {
        field: convert(getattr(args, dest))
        for dest, (field, convert) in _OVERRIDES.items()
        if getattr(args, dest, None) is not None
    }
    return dataclasses.replace(config, **changes, auth=not getattr(args, "no_auth", False))


def build_discovery(args: argparse.Namespace) -> discovery.Discovery:
    if args.routes is not None:
        return discovery.load_routes_file(args.routes)
    from modelyard.gateway import kube, kube_discovery

    kube_api = kube.KubeApi.load(args.kubeconfig, args.namespace)
    keys_secret = None if getattr(args, "no_auth", False) else args.keys_secret or None
    return kube_discovery.KubeDiscovery(kube_api, keys_secret)


YOUNG_COLLECTION = 10_000
"""Net new container objects that start a collection of the youngest generation (Python's
default: 700). A request leaves no cycles behind, so what its objects add is taken back by
their frees; with 700, the count's random walk over a few dozen requests in flight still
reached the threshold every 30-40 requests, about 4% of the gateway's CPU spent finding
nothing (docs/benchmarks.md, "Issue #19, streams' own work")."""


async def _freeze_heap(_: web.Application) -> None:
    """Keep the startup heap (pydantic, kubernetes, aiohttp modules) out of garbage collections:
    a full collection over it costs tens of milliseconds, which would land in the tail latency;
    and collect the youngest generation less often (:data:`YOUNG_COLLECTION`)."""
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION, thresholds[1], thresholds[2])


def _metrics_server(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """/metrics of ``application`` on a port of its own: clients of the API port cannot read
    which endpoints serve what, and a NetworkPolicy can admit a scraper to this port alone."""

    async def serve_metrics(application: web.Application) -> AsyncIterator[None]:
        async def render(_: web.Request) -> web.Response:
            body = application[app.METRICS].exposition()
            return web.Response(body=body, content_type="text/plain", charset="utf-8")

        async def healthz(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        metrics_app = web.Application()
        metrics_app.router.add_get("/metrics", render)
        metrics_app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(metrics_app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        try:
            yield
        finally:
            await runner.cleanup()

    return serve_metrics


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = build_settings(args)
    try:
        loop_choice = eventloop.resolve(args.event_loop, os.environ.get(EVENT_LOOP_ENV), EVENT_LOOP_ENV)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if config.auth and args.routes is None and not args.keys_secret:
        print("error: --keys-secret '' leaves the gateway without keys; --no-auth opens it", file=sys.stderr)
        return 2
    if not config.auth:
        log.warning("authentication is OFF (--no-auth): anyone who reaches the gateway may use every model")
    pods = podload.PodLoad(config.pod_metrics_interval)
    chooser = balancer.WeightedLeastBusy(config.eject_after, config.eject_cooldown, others=pods.others)
    try:
        source = build_discovery(args)
    except Exception as exc:  # kubernetes' ConfigException, a bad routes file
        print(f"error: cannot set up route discovery: {exc}", file=sys.stderr)
        print("hint: run in a pod, pass --kubeconfig, or serve a static --routes FILE", file=sys.stderr)
        return 2
    keys = source.keys()
    if config.auth and args.routes is not None and not keys.keys:
        log.error("no API key is configured: %s; every /v1 request is refused with 401", keys.why_empty())
    application = app.create_app(
        config, source, chooser, metrics_route=args.metrics_port is None, pod_load=pods
    )
    application.on_startup.append(_freeze_heap)
    if args.metrics_port is not None:
        application.cleanup_ctx.append(_metrics_server(args.host, args.metrics_port))
    try:
        loop, loop_kind = eventloop.new_loop(loop_choice)
    except eventloop.Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("event loop: %s", loop_kind)
    web.run_app(
        application,
        loop=loop,
        host=args.host,
        port=args.port,
        access_log=logging.getLogger("modelyard.gateway.access") if args.access_log else None,
        backlog=2048,
        print=lambda msg: logging.getLogger(__name__).info("%s", msg),
    )
    return 0
