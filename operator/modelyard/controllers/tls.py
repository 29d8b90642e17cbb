"""Certificates for the admission webhook, made by the operator itself (kopf's self-signed
path needs oscrypto, which does not work with this OpenSSL).

A long-lived CA (its certificate is the ``caBundle`` the API server trusts) signs short-lived
serving certificates; :func:`renew_at` says when either is due again (two thirds into its life,
as cert-manager's default ``renewBefore``). Pure functions of their arguments: the clock is
passed in.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

BACKDATE = datetime.timedelta(minutes=5)
"""Certificates start this much before ``now``: clocks of the API server and ours differ."""


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


_CA_USAGE = x509.KeyUsage(
    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
    key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
    decipher_only=False,
)  # fmt: skip


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
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
        return _key_pem(self.key)

    @classmethod
    def from_pem(cls, cert: bytes, key: bytes) -> Authority:
        private = serialization.load_pem_private_key(key, password=None)
        if not isinstance(private, ec.EllipticCurvePrivateKey):
            raise ValueError("the webhook CA key is not an EC key")
        return cls(x509.load_pem_x509_certificate(cert), private)


@dataclasses.dataclass(frozen=True)
class Serving:
    """A serving certificate (PEM) and its key (PEM)."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def new_authority(now: datetime.datetime, validity: datetime.timedelta) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    name = _name(f"modelyard-webhook-ca-{serial:x}"[:64])  # unique: issuers are compared by name
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue(
    authority: Authority, hosts: list[str], now: datetime.datetime, validity: datetime.timedelta
) -> Serving:
    """A serving certificate for ``hosts`` (the first is its common name), valid for
    ``validity`` but never past its CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    until = min(now + validity, authority.cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName([_san(h) for h in hosts]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()), critical=False
        )
        .sign(authority.key, hashes.SHA256())
    )
    return Serving(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def renew_at(cert: x509.Certificate) -> datetime.datetime:
    """Two thirds into the certificate's life (counted from ``now`` when it was made)."""
    start = cert.not_valid_before_utc + BACKDATE
    return start + (cert.not_valid_after_utc - start) * 2 / 3


def bundle(*certs: x509.Certificate) -> bytes:
    """PEM concatenation, as a ``caBundle`` takes several CAs."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
