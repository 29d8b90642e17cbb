"""Where the webhook's serving certificate comes from, and when it is due again.

Three sources, one :class:`Material` each time they are asked:

:class:`Issuing` (default)
    A CA that lives long (``ca_validity``, 5 years) signs serving certificates that do not
    (``validity``, 7 days), issued in memory and renewed two thirds into their life. The CA is
    kept in a Secret (``--webhook-ca-secret``, the chart's ``<release>-webhook-ca``) so every
    replica serves certificates from the same CA and a leader change needs no new
    ``caBundle``; out of a cluster it is kept in memory (:class:`MemoryStore`). A CA past two
    thirds of its life is replaced; the bundle keeps the previous CA until it expires, and
    serving certificates come from the new CA only ``grace`` after the bundle named it, so the
    API server always trusts what it is shown.
:class:`Mounted`
    cert-manager made the certificate (chart ``operator.webhook.certManager.enabled``): read
    ``tls.crt``/``tls.key``/``ca.crt`` from the mounted Secret, again whenever they change.
    cert-manager's CA injector owns the ``caBundle``; the operator manages no CA.

The server (:mod:`.webhook`) loads each new serving certificate into its live SSL context:
no restart, no dropped connection.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import logging
import pathlib
from typing import Any, Protocol

from modelyard import certs
from modelyard.api import wire
from modelyard.controllers import cluster, kube_errors

log = logging.getLogger(__name__)

DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Material:
    ca_bundle: bytes
    """PEM: the CAs the API server must trust (the ``caBundle``)."""
    serving: certs.Issued
    next_check: datetime.datetime
    """When the source should be asked again."""


class Source(Protocol):
    async def load(self, now: datetime.datetime) -> Material: ...


@dataclasses.dataclass(frozen=True)
class Authorities:
    """The CA that signs, and the one it replaced (still in the bundle until it expires)."""

    current: certs.Authority
    previous: Any | None = None  # x509.Certificate

    def bundle(self, now: datetime.datetime) -> bytes:
        cas = [self.current.cert]
        if self.previous is not None and self.previous.not_valid_after_utc > now:
            cas.append(self.previous)
        return certs.bundle(*cas)


def rotated(found: Authorities | None, now: datetime.datetime, validity: datetime.timedelta) -> Authorities:
    """``found``, or a new CA (keeping the old one as ``previous``) when it is absent or due."""
    if found is not None and now < certs.renew_at(found.current.cert):
        return found
    fresh = certs.new_authority(now, validity, "modelyard-webhook-ca")
    return Authorities(fresh, found.current.cert if found is not None else None)


class Store(Protocol):
    async def authorities(self, now: datetime.datetime, validity: datetime.timedelta) -> Authorities: ...


class MemoryStore:
    """The CA of one process (out of a cluster: one operator, its URL in the configuration)."""

    def __init__(self) -> None:
        self._found: Authorities | None = None

    async def authorities(self, now: datetime.datetime, validity: datetime.timedelta) -> Authorities:
        self._found = rotated(self._found, now, validity)
        return self._found


class SecretStore:
    """The CA in a Secret of the operator's namespace (keys ``ca.crt``, ``ca.key``,
    ``previous.crt``), shared by every replica; created by the first one that needs it."""

    def __init__(self, kube: cluster.Cluster, namespace: str, name: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name

    @staticmethod
    def _parse(secret: dict[str, Any]) -> Authorities | None:
        from cryptography import x509

        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        if "ca.crt" not in data or "ca.key" not in data:
            return None
        previous = x509.load_pem_x509_certificate(data["previous.crt"]) if data.get("previous.crt") else None
        return Authorities(certs.Authority.from_pem(data["ca.crt"], data["ca.key"]), previous)

    def _data(self, found: Authorities) -> dict[str, str]:
        data = {"ca.crt": found.current.cert_pem(), "ca.key": found.current.key_pem()}
        if found.previous is not None:
            data["previous.crt"] = certs.bundle(found.previous)
        return {k: base64.b64encode(v).decode() for k, v in data.items()}

    async def authorities(self, now: datetime.datetime, validity: datetime.timedelta) -> Authorities:
        try:
            return await self._authorities(now, validity)
        except kube_errors.ForbiddenError:
            raise RuntimeError(
                f"the operator may not read or write the webhook CA Secret {self.namespace}/{self.name}: "
                "it needs create on secrets and get/patch on that name in its namespace (the chart's Role "
                "has them), or --webhook-cert-dir with a cert-manager certificate"
            ) from None

    async def _authorities(self, now: datetime.datetime, validity: datetime.timedelta) -> Authorities:
        for _ in range(5):  # another replica may write it at the same time: read again
            secret = await self.kube.get(cluster.SECRET, self.name, self.namespace)
            found = self._parse(secret) if secret is not None else None
            wanted = rotated(found, now, validity)
            if wanted is found:
                return wanted
            meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace,
                                    "labels": {wire.MANAGED_BY: wire.PRODUCT}}  # fmt: skip
            try:
                if secret is None:
                    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": meta,
                            "data": self._data(wanted)}  # fmt: skip
                    if await self.kube.create(body) is None:
                        continue
                else:
                    version = secret["metadata"]["resourceVersion"]
                    patch = {"metadata": {"resourceVersion": version}, "data": self._data(wanted)}
                    if "previous.crt" not in patch["data"]:
                        patch["data"]["previous.crt"] = None
                    await self.kube.merge_patch(cluster.SECRET, self.name, self.namespace, patch)
            except kube_errors.ConflictError:
                continue
            how = "created" if found is None else "rotated"
            until = wanted.current.cert.not_valid_after_utc
            log.info("webhook CA %s in Secret %s/%s (valid until %s)", how, self.namespace, self.name, until)
            return wanted
        raise RuntimeError(f"could not write the webhook CA Secret {self.namespace}/{self.name}")


class Issuing:
    """Serving certificates for ``hosts`` from the CA of ``store`` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        hosts: list[str],
        validity: datetime.timedelta = 7 * DAY,
        ca_validity: datetime.timedelta = 5 * 365 * DAY,
        recheck: datetime.timedelta = datetime.timedelta(minutes=10),
    ) -> None:
        self.store = store
        self.hosts = hosts
        self.validity = validity
        self.ca_validity = max(ca_validity, 3 * validity)
        self.grace = min(datetime.timedelta(seconds=30), validity / 10)
        """How long the bundle names a new CA before certificates from it are served."""
        self.recheck = recheck
        self._serving: certs.Issued | None = None
        self._signer: Any | None = None  # x509.Certificate of the CA last seen signing
        self._retired: Any | None = None  # a CA the store forgot while we still served from it
        self._bundle: bytes = b""
        self._bundle_since = datetime.datetime.min.replace(tzinfo=datetime.UTC)

    async def load(self, now: datetime.datetime) -> Material:
        found = await self.store.authorities(now, self.ca_validity)
        if self._signer is not None and found.current.cert != self._signer and found.previous is None:
            self._retired = self._signer  # the store lost its CA (a deleted Secret): keep trusting ours
        self._signer = found.current.cert
        if found.previous is None and self._retired is not None:
            found = Authorities(found.current, self._retired)
        bundle = found.bundle(now)
        if bundle != self._bundle:
            self._bundle, self._bundle_since = bundle, now
        serving = self._serving
        if serving is None:
            issue = True
        elif serving.cert.issuer != found.current.cert.subject:  # a new CA: once it is trusted
            issue = now - self._bundle_since >= self.grace
        else:
            issue = now >= certs.renew_at(serving.cert)
        if issue or serving is None:
            serving = self._serving = certs.issue(found.current, self.hosts, now, self.validity)
        waiting = serving.cert.issuer != found.current.cert.subject  # for the grace to pass
        checks = [
            self._bundle_since + self.grace if waiting else certs.renew_at(serving.cert),
            certs.renew_at(found.current.cert),
            now + self.recheck,
        ]
        return Material(bundle, serving, max(min(checks), now + datetime.timedelta(seconds=1)))


class Mounted:
    """cert-manager's Secret, mounted at ``directory`` (``tls.crt``, ``tls.key``, ``ca.crt``)."""

    def __init__(self, directory: pathlib.Path, poll: datetime.timedelta = datetime.timedelta(seconds=30)):
        self.directory = directory
        self.poll = poll

    async def load(self, now: datetime.datetime) -> Material:
        read = (self.directory / "tls.crt").read_bytes, (self.directory / "tls.key").read_bytes
        ca = self.directory / "ca.crt"
        serving = certs.Issued(read[0](), read[1]())
        bundle = ca.read_bytes() if ca.exists() else b""
        return Material(bundle, serving, now + self.poll)
