"""The operator's HTTP side: the status API and its dashboard (:mod:`modelyard.statusapi`), and
/metrics, each with /healthz. One port, or two when ``status_port`` is given (the chart's way: a
scraper needs no status token, and a NetworkPolicy can let it reach /metrics and nothing else).
It answers while a standby replica waits for the Lease.

The dashboard's live traffic (:mod:`modelyard.statusapi.traffic`) is fed by the autoscaler,
which scrapes every gateway replica each round anyway: :func:`serve` returns the status app's
:class:`~modelyard.statusapi.traffic.Traffic` for it. So it is live on the leader (which the
status Service selects); on a standby the dashboard shows the demand written in the status."""

from __future__ import annotations

from aiohttp import web

from modelyard.controllers import context, options
from modelyard.statusapi import app as status_app
from modelyard.statusapi import cache, keys, traffic
from modelyard.statusapi import settings as status_settings


async def serve(
    ctx: context.Context, opts: options.OperatorOptions, status_cache: cache.Cache
) -> tuple[list[web.AppRunner], traffic.Traffic]:
    """Start the servers; the caller cleans up the runners and feeds the traffic."""

    async def render(_: web.Request) -> web.Response:
        return web.Response(body=ctx.metrics.render(), content_type="text/plain", charset="utf-8")

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    config = status_settings.StatusApiSettings(token=opts.status_token)
    status = status_app.create_app(config, status_cache)
    status.router.add_get("/healthz", healthz)
    sites: list[tuple[web.Application, int]] = [(status, opts.metrics_port)]
    if opts.status_port is not None and opts.status_port != opts.metrics_port:
        metrics_only = web.Application()
        metrics_only.router.add_get("/healthz", healthz)
        sites = [(status, opts.status_port), (metrics_only, opts.metrics_port)]
    sites[-1][0].router.add_get("/metrics", render)
    runners: list[web.AppRunner] = []
    for app, port in sites:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, opts.metrics_host, port).start()
        runners.append(runner)
    return runners, status[keys.TRAFFIC]
