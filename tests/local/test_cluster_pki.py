"""The local control plane's PKI, made with the one certificate helper (:mod:`modelyard.certs`):
the API server's certificate verifies for every name a client uses, component certificates
carry the identity RBAC binds, and the files are made once and kept (keys readable by their
owner only)."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from modelyard import certs
from modelyard.local import cluster_pki

SERVICE_IP = "10.96.0.1"


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_apiserver_certificate_verifies_for_every_name_clients_use(tmp_path: Path) -> None:
    pki = cluster_pki.ensure_pki(tmp_path, SERVICE_IP)
    store = Store([_load(pki.ca_crt)])
    leaf = _load(pki.apiserver_crt)
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.DNSName("kubernetes.default.svc")]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ("127.0.0.1", SERVICE_IP)]
    for name in names:
        verifier = PolicyBuilder().store(store).build_server_verifier(name)  # type: ignore[arg-type]
        verifier.verify(leaf, [])


def test_component_certificates_carry_the_identity_rbac_binds(tmp_path: Path) -> None:
    pki = cluster_pki.ensure_pki(tmp_path, SERVICE_IP)
    ca = _load(pki.ca_crt)
    for component, (user, group) in cluster_pki.CLIENTS.items():
        cert = _load(pki.client(component)[0])
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
        organizations = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        assert organizations == ([group] if group else [])
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        cert.verify_directly_issued_by(ca)  # the API server's --client-ca-file
    proxy = _load(pki.client("front-proxy-client")[0])
    proxy.verify_directly_issued_by(_load(pki.front_proxy_ca_crt))


def test_made_once_and_keys_kept_private(tmp_path: Path) -> None:
    pki = cluster_pki.ensure_pki(tmp_path, SERVICE_IP)
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    again = cluster_pki.ensure_pki(tmp_path, SERVICE_IP)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    assert again == pki
    for key in (pki.ca_key, pki.apiserver_key, pki.sa_key, pki.client("admin")[1]):
        assert key.stat().st_mode & 0o777 == 0o600, key


def test_a_serving_certificate_never_outlives_its_ca() -> None:
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    ca = certs.new_authority(now, datetime.timedelta(days=1))
    issued = certs.issue(ca, ["hook.ns.svc"], now, datetime.timedelta(days=30))
    assert issued.cert.not_valid_after_utc == ca.cert.not_valid_after_utc
