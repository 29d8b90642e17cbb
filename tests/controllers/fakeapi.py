"""A small fake API server over HTTP, for the tests of the operator's own client
(:mod:`modelyard.controllers.cluster`) and watches: every request goes to one handler, and the
test gets a real client of it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from modelyard.controllers import cluster, credentials


@contextlib.asynccontextmanager
async def serving(
    handle: Callable[[web.Request], Awaitable[web.StreamResponse]], token: str = "t"
) -> AsyncIterator[cluster.Cluster]:
    """A client of a server on a free local port whose every request ``handle`` answers."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    kube = cluster.Cluster(credentials.Credentials(server=f"http://127.0.0.1:{port}", token=token))
    try:
        yield kube
    finally:
        await kube.close()
        await runner.cleanup()
