"""Watching the Kubernetes API from the gateway's event loop: config, list and watch.

The ``kubernetes`` package is synchronous; the gateway only borrows its configuration
loading (in-cluster service account, or a kubeconfig with certificates, tokens or an exec
plugin) and then talks to the API server with the gateway's own aiohttp, so watches are
plain coroutines on the serving loop.

An :class:`Informer` keeps a cache of one kind of object: it lists, then watches from the
list's resourceVersion, applies every event, and calls ``on_change``; :meth:`Informer.take`
says which objects changed since the consumer last looked. When the API is away
it retries with capped exponential backoff and **keeps its cache** (the gateway keeps
serving the last-known routes); a ``410 Gone`` relists.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import urllib.parse
from collections.abc import Callable
from typing import Any

import aiohttp

from modelyard import incluster

log = logging.getLogger(__name__)

Obj = dict[str, Any]


class KubeApi:
    """The API server's address and credentials, and one aiohttp session to reach it."""

    def __init__(self, configuration: Any, namespace: str) -> None:
        self._cfg = configuration
        self.server = str(configuration.host).rstrip("/")
        self.namespace = namespace
        context: ssl.SSLContext | bool = True
        if self.server.startswith("https"):
            ctx = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
            if configuration.cert_file:
                ctx.load_cert_chain(configuration.cert_file, configuration.key_file)
            if not configuration.verify_ssl:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            context = ctx
        self._ssl = context
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def load(cls, kubeconfig: str | None = None, namespace: str | None = None) -> KubeApi:
        """In a pod: the service account (see :mod:`modelyard.incluster`); elsewhere the
        kubeconfig (``KUBECONFIG`` or ~/.kube)."""
        from kubernetes import client, config
        from kubernetes.config import incluster_config

        configuration = client.Configuration()
        account = incluster.detect() if kubeconfig is None else None
        if account is not None:
            incluster_config.InClusterConfigLoader(
                token_filename=str(account.token_file), cert_filename=str(account.ca_file)
            ).load_and_set(configuration)
            default_ns = account.namespace() or "default"
        else:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            default_ns = (active or {}).get("context", {}).get("namespace") or "default"
        return cls(configuration, namespace or default_ns)

    def _headers(self) -> dict[str, str]:
        hook = getattr(self._cfg, "refresh_api_key_hook", None)
        if hook is not None:
            hook(self._cfg)  # token rotation (in-cluster) and exec plugins
        headers = {"Accept": "application/json"}
        # in-cluster and newer kubeconfig loaders store it as "BearerToken", older ones as "authorization"
        token = self._cfg.get_api_key_with_prefix("authorization", alias="BearerToken")
        if token:
            headers["Authorization"] = token
        return headers

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0),
                timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=None),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, path: str, **query: str | None) -> str:
        params = {k: v for k, v in query.items() if v is not None}
        return self.server + path + ("?" + urllib.parse.urlencode(params) if params else "")

    async def get(self, path: str, **query: str | None) -> Obj:
        async with self.session().get(
            self.url(path, **query), headers=self._headers(), timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            if response.status >= 300:
                raise ApiError(response.status, (await response.text())[:300])
            loaded: Obj = await response.json(content_type=None)
            return loaded

    def watch(self, path: str, **query: str | None) -> Any:
        """An aiohttp request context for a watch stream (the caller reads its lines)."""
        return self.session().get(
            self.url(path, watch="1", allowWatchBookmarks="true", **query),
            headers=self._headers(),
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=330),
        )


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


def object_key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Informer:
    """A cache of the objects at ``path`` (filtered by selectors), kept current by a watch."""

    def __init__(
        self,
        api: KubeApi,
        path: str,
        on_change: Callable[[], None],
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        backoff: tuple[float, float] = (0.2, 5.0),
        watch_timeout: int = 290,
    ) -> None:
        self.api = api
        self.path = path
        self.store: dict[str, Obj] = {}
        self.synced = False
        self.error: str | None = None
        """Why the last list or watch failed (e.g. ``403: ...``), until a list succeeds."""
        self.changed: set[str] = set()
        """Keys of the objects added, modified or deleted since the consumer last :meth:`take`-s."""
        self.relisted = False
        """A listing replaced the whole cache since the consumer last :meth:`take`-s."""
        self._on_change = on_change
        self._selectors = {"labelSelector": label_selector, "fieldSelector": field_selector}
        self._backoff = backoff
        self._watch_timeout = watch_timeout
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"informer {self.path}")

    def take(self) -> tuple[set[str], bool]:
        """What changed since the last call: (keys of changed objects, whether the cache was
        replaced by a listing, so that any object may have changed); forgets it."""
        changed, relisted = self.changed, self.relisted
        self.changed, self.relisted = set(), False
        return changed, relisted

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                version = await self._list()
                delay = self._backoff[0]
                while True:
                    version = await self._watch(version)
            except asyncio.CancelledError:
                raise
            except _Gone:
                continue
            except Exception as exc:  # the API is away or refuses: keep the cache, retry later
                log.warning("watching %s failed (%s); retrying in %.1fs", self.path, _describe(exc), delay)
                first, self.error = self.error is None, _describe(exc)
                if first:
                    self._on_change()
                await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
                delay = min(delay * 2, self._backoff[1])

    async def _list(self) -> str:
        listing = await self.api.get(self.path, **self._selectors)
        self.store = {object_key(item): item for item in listing.get("items") or ()}
        self.changed, self.relisted = set(), True
        self.synced = True
        self.error = None
        self._on_change()
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> str:
        async with self.api.watch(
            self.path, resourceVersion=version, timeoutSeconds=str(self._watch_timeout), **self._selectors
        ) as response:
            if response.status == 410:
                raise _Gone()
            if response.status >= 300:
                raise ApiError(response.status, (await response.text())[:300])
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while (cut := buffer.find(b"\n")) != -1:
                    line, buffer = buffer[:cut], buffer[cut + 1 :]
                    if line.strip():
                        version = self._apply(json.loads(line), version)
        return version

    def _apply(self, event: Obj, version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone()
            raise ApiError(int(obj.get("code") or 500), str(obj.get("message")))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind == "BOOKMARK":
            return version
        key = object_key(obj)
        if kind == "DELETED":
            self.store.pop(key, None)
        else:
            self.store[key] = obj
        self.changed.add(key)
        self._on_change()
        return version


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
