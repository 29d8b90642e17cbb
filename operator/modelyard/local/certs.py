"""The PKI of a local control plane, made with ``cryptography``.

A real API server needs TLS serving certificates, a client CA for certificate
authentication, a key pair to sign service-account tokens, and a signing CA for the
controller manager's CSR signer. Generating them here (instead of shelling out to openssl
or cfssl) keeps ``modelyard local up`` free of system tools and makes the files
reproducible per state directory: they are created once and reused on the next ``up``.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = datetime.timedelta(days=3650)
_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


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


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: _PrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> (
    x509.CertificateBuilder
):
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + _VALIDITY)
    )


def _make_ca(crt: Path, key_path: Path, common_name: str) -> None:
    key = _new_key()
    name = _name(common_name)
    cert = (
        _builder(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(crt, cert)


def _load_ca(crt: Path, key_path: Path) -> tuple[x509.Certificate, _PrivateKey]:
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey)
    return cert, key


def _issue(
    pki: Pki, crt: Path, key_path: Path, subject: x509.Name, *, server: bool,
    dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), ca: str = "ca",
) -> None:
    ca_cert, ca_key = _load_ca(pki.dir / f"{ca}.crt", pki.dir / f"{ca}.key")
    key = _new_key()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        _builder(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    )
    if dns or ips:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    _write_key(key_path, key)
    _write_cert(crt, builder.sign(ca_key, hashes.SHA256()))


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
    for ca, common_name in (("ca", "modelyard-local-ca"),
                            ("front-proxy-ca", "modelyard-local-front-proxy-ca")):
        if not (directory / f"{ca}.crt").exists():
            _make_ca(directory / f"{ca}.crt", directory / f"{ca}.key", common_name)
    if not pki.apiserver_crt.exists():
        _issue(
            pki, pki.apiserver_crt, pki.apiserver_key, _name("kube-apiserver"), server=True,
            dns=("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                 "kubernetes.default.svc.cluster.local"),
            ips=("127.0.0.1", service_ip),
        )
    for name, (common_name, org) in CLIENTS.items():
        crt, key = pki.client(name)
        if not crt.exists():
            _issue(pki, crt, key, _name(common_name, org), server=False)
    crt, key = pki.client("front-proxy-client")
    if not crt.exists():
        _issue(pki, crt, key, _name("front-proxy-client"), server=False, ca="front-proxy-ca")
    if not pki.sa_key.exists():
        sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(pki.sa_key, sa)
        pki.sa_pub.write_bytes(
            sa.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pki

