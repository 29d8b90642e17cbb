"""The PKI of a local control plane: which files, made once per state directory with
:mod:`modelyard.certs` (the one certificate helper, the webhook's too).

A real API server needs TLS serving certificates, a client CA for certificate
authentication, a key pair to sign service-account tokens, and a signing CA for the
controller manager's CSR signer. Generating them here (instead of shelling out to openssl
or cfssl) keeps ``modelyard local up`` free of system tools and makes the files
reproducible per state directory: they are created once and reused on the next ``up``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from modelyard import certs

_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Pki:
    """Paths of every PEM file the control plane components read."""

    dir: Path

    @property
    def ca_crt(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def apiserver_crt(self) -> Path:
        return self.dir / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.dir / "apiserver.key"

    @property
    def admin_crt(self) -> Path:
        return self.dir / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.dir / "admin.key"

    @property
    def front_proxy_ca_crt(self) -> Path:
        return self.dir / "front-proxy-ca.crt"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def client(self, name: str) -> tuple[Path, Path]:
        """Certificate and key of a component's client identity (``<name>.crt/.key``)."""
        return self.dir / f"{name}.crt", self.dir / f"{name}.key"


def _make_ca(pki: Pki, ca: str, common_name: str) -> None:
    authority = certs.new_authority(datetime.datetime.now(datetime.UTC), _VALIDITY, common_name, unique=False)
    certs.write(pki.dir / f"{ca}.crt", pki.dir / f"{ca}.key", authority.cert_pem(), authority.key_pem())


def _issue(
    pki: Pki, crt: Path, key: Path, subject: x509.Name, *, server: bool,
    hosts: tuple[str, ...] = (), ca: str = "ca",
) -> None:  # fmt: skip
    authority = certs.Authority.from_pem(
        (pki.dir / f"{ca}.crt").read_bytes(), (pki.dir / f"{ca}.key").read_bytes()
    )
    now = datetime.datetime.now(datetime.UTC)
    issued = certs.issue(authority, hosts, now, _VALIDITY, subject=subject, client=not server)
    certs.write(crt, key, issued.cert_pem, issued.key_pem)


# Client identities of the components; the API server's RBAC bootstrap policy binds these
# user names (and system:masters for the admin).
CLIENTS: dict[str, tuple[str, str | None]] = {
    "admin": ("modelyard-admin", "system:masters"),
    "controller-manager": ("system:kube-controller-manager", None),
    "scheduler": ("system:kube-scheduler", None),
}


def ensure_pki(directory: Path, service_ip: str) -> Pki:
    """Create (once) the CAs, serving, client and service-account keys under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = Pki(directory)
    for ca, common_name in (
        ("ca", "modelyard-local-ca"),
        ("front-proxy-ca", "modelyard-local-front-proxy-ca"),
    ):
        if not (directory / f"{ca}.crt").exists():
            _make_ca(pki, ca, common_name)
    if not pki.apiserver_crt.exists():
        _issue(
            pki,
            pki.apiserver_crt,
            pki.apiserver_key,
            certs.name("kube-apiserver"),
            server=True,
            hosts=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "127.0.0.1",
                service_ip,
            ),
        )
    for name, (common_name, org) in CLIENTS.items():
        crt, key = pki.client(name)
        if not crt.exists():
            _issue(pki, crt, key, certs.name(common_name, org), server=False)
    crt, key = pki.client("front-proxy-client")
    if not crt.exists():
        _issue(pki, crt, key, certs.name("front-proxy-client"), server=False, ca="front-proxy-ca")
    if not pki.sa_key.exists():
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = sa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        certs.write(pki.sa_pub, pki.sa_key, public, certs.key_pem(sa))
    return pki
