"""X.509 certificates made with ``cryptography``: the one certificate helper of modelyard.

Two users: the operator's admission webhook (:mod:`modelyard.controllers.webhook_certs`: a
long-lived CA whose certificate is the ``caBundle``, short-lived serving certificates renewed
two thirds into their life, as cert-manager's default ``renewBefore``) and the local control
plane's PKI (:mod:`modelyard.local.cluster_pki`: CAs, serving and client certificates of the API
server and its components, and the node agent's self-signed kubelet certificate). It lives at
the bottom of the package, beside :mod:`modelyard.incluster`, so that both may import it while
the images carry no ``modelyard.local``.

Keys are ECDSA P-256, signatures SHA-256. Pure functions of their arguments (the clock is passed
in) except :func:`write`, which writes PEM files (the key readable by its owner only).
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "BACKDATE", "Authority", "Issued", "bundle", "issue", "key_pem", "name", "new_authority",
    "renew_at", "self_signed", "write",
]  # fmt: skip

BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start this much before ``now``: clocks of the API server and ours differ."""

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


def name(common: str, organization: str | None = None) -> x509.Name:
    """A subject: its common name (and organization: Kubernetes reads it as the user's group)."""
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def key_pem(key: PrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclasses.dataclass(frozen=True)
class Authority:
    """A CA: its certificate and key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return key_pem(self.key)

    @classmethod
    def from_pem(cls, cert: bytes, key: bytes) -> Authority:
        private = serialization.load_pem_private_key(key, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key is not an EC key")
        return cls(x509.load_pem_x509_certificate(cert), private)


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate (PEM) and its key (PEM)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, now: datetime.datetime,
    until: datetime.datetime,
) -> x509.CertificateBuilder:  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(until)
    )


def new_authority(
    now: datetime.datetime,
    validity: datetime.timedelta,
    common_name: str = "modelyard-ca",
    *,
    unique: bool = True,
) -> Authority:
    """A CA valid for ``validity``. ``unique`` adds a random suffix to its name: clients tell
    issuers apart by name, so a replacement CA must not share its predecessor's."""
    key = ec.generate_private_key(ec.SECP256R1())
    if unique:
        common_name = f"{common_name}-{x509.random_serial_number():x}"[:64]
    subject = name(common_name)
    cert = (
        _builder(subject, subject, key.public_key(), now, now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue(
    authority: Authority,
    hosts: Sequence[str],
    now: datetime.datetime,
    validity: datetime.timedelta,
    *,
    subject: x509.Name | None = None,
    client: bool = False,
) -> Issued:
    """A serving certificate for ``hosts`` (DNS names or IPs; the first is the common name unless
    ``subject`` is given), or with ``client`` a client certificate for ``subject``. Valid for
    ``validity`` but never past its CA."""
    if subject is None:
        subject = name(hosts[0])
    key = ec.generate_private_key(ec.SECP256R1())
    until = min(now + validity, authority.cert.not_valid_after_utc)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    builder = (
        _builder(subject, authority.cert.subject, key.public_key(), now, until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
    return Issued(
        builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), key_pem(key)
    )


def self_signed(
    common_name: str, hosts: Sequence[str], now: datetime.datetime, validity: datetime.timedelta
) -> Issued:
    """A serving certificate that is its own issuer (for a client that does not verify it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = name(common_name)
    cert = (
        _builder(subject, subject, key.public_key(), now, now + validity)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def renew_at(cert: x509.Certificate) -> datetime.datetime:
    """Two thirds into the certificate's life (counted from ``now`` when it was made)."""
    start = cert.not_valid_before_utc + BACKDATE
    return start + (cert.not_valid_after_utc - start) * 2 / 3


def bundle(*certs: x509.Certificate) -> bytes:
    """PEM concatenation, as a ``caBundle`` takes several CAs."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def write(crt: Path, key: Path, cert_pem: bytes, private_pem: bytes) -> None:
    """Write a certificate and its key; the key file is readable by its owner only."""
    key.write_bytes(private_pem)
    key.chmod(0o600)
    crt.write_bytes(cert_pem)
