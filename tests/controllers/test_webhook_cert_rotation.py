"""The webhook's certificates: short-lived serving certificates from a long-lived CA, renewed two
thirds into their life and loaded into the live server; a CA replaced before it expires, with
the bundle trusting both while certificates of the old one are still served."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import socket
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from kit import free_port
from modelyard import certs
from modelyard.controllers import webhook, webhook_certs

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)
SECOND = datetime.timedelta(seconds=1)


def _verify(bundle: bytes, serving: certs.Issued, now: datetime.datetime) -> None:
    """The chain check the API server makes: the serving certificate against the caBundle."""
    store = x509.verification.Store(x509.load_pem_x509_certificates(bundle))
    verifier = (
        x509.verification.PolicyBuilder()
        .store(store)
        .time(now)
        .build_server_verifier(x509.DNSName("hook.ns.svc"))
    )
    verifier.verify(serving.cert, [])


def test_serving_certificate_is_renewed_two_thirds_into_its_life_from_the_same_ca() -> None:
    source = webhook_certs.Issuing(webhook_certs.MemoryStore(), ["hook.ns.svc"], validity=3 * HOUR)
    first = asyncio.run(source.load(T0))
    assert first.serving.cert.not_valid_after_utc == T0 + 3 * HOUR
    assert first.next_check <= T0 + 2 * HOUR
    again = asyncio.run(source.load(T0 + HOUR))
    assert again.serving == first.serving
    renewed = asyncio.run(source.load(T0 + 2 * HOUR + datetime.timedelta(seconds=1)))
    assert renewed.serving != first.serving
    assert renewed.ca_bundle == first.ca_bundle  # nothing for the API server to learn
    _verify(renewed.ca_bundle, renewed.serving, T0 + 2 * HOUR)


def test_at_every_moment_the_served_certificate_verifies_against_the_bundle_across_ca_rotations() -> None:
    """Step from one check to the next (as the server does) through two CA lifetimes: what is
    served always verifies against the bundle of that moment, until the next check; a new CA is
    in the bundle ``grace`` before it signs what is served."""
    source = webhook_certs.Issuing(
        webhook_certs.MemoryStore(), ["hook.ns.svc"], validity=HOUR, ca_validity=3 * HOUR
    )
    now = T0
    issuers: list[x509.Name] = []
    bundle_sizes: set[int] = set()
    first_seen: dict[bytes, datetime.datetime] = {}
    while now < T0 + 7 * HOUR:
        material = asyncio.run(source.load(now))
        _verify(material.ca_bundle, material.serving, now)
        _verify(material.ca_bundle, material.serving, material.next_check - datetime.timedelta(seconds=1))
        cas = x509.load_pem_x509_certificates(material.ca_bundle)
        bundle_sizes.add(len(cas))
        for ca in cas:
            first_seen.setdefault(ca.fingerprint(hashes.SHA256()), now)
        issuer = material.serving.cert.issuer
        if not issuers or issuers[-1] != issuer:
            issuers.append(issuer)
            signer = next(ca for ca in cas if ca.subject == issuer)
            assert now - first_seen[signer.fingerprint(hashes.SHA256())] >= source.grace or len(issuers) == 1
        assert material.next_check > now
        now = material.next_check
    assert len(issuers) >= 3, "two CA rotations in seven hours of a three-hour CA"
    assert bundle_sizes == {1, 2}


def test_serving_certificates_never_outlive_their_ca() -> None:
    ca = certs.new_authority(T0, HOUR)
    serving = certs.issue(ca, ["hook.ns.svc"], T0 + 30 * datetime.timedelta(minutes=1), 7 * 24 * HOUR)
    assert serving.cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_the_live_server_presents_each_renewed_certificate_without_a_restart() -> None:
    """Validity 3 s: the server renews in place; every handshake verifies against the bundle it
    yielded and a request is answered across the renewals on one listening socket."""
    port = free_port()
    source = webhook_certs.Issuing(
        webhook_certs.MemoryStore(), ["localhost", "127.0.0.1"], validity=datetime.timedelta(seconds=3)
    )
    server = webhook.RotatingWebhookServer(source=source, addr="127.0.0.1", port=port)

    async def answer(request: Any, **_: Any) -> Any:
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                "response": {"uid": request["request"]["uid"], "allowed": True}}  # fmt: skip

    def handshake(bundle: bytes) -> tuple[int, int]:
        context = ssl.create_default_context(cadata=bundle.decode())
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            der = conn.getpeercert(binary_form=True)
            assert der is not None
            body = b'{"request": {"uid": "u1"}}'
            head = b"POST /validate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            conn.sendall(head + b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        return x509.load_der_x509_certificate(der).serial_number, status

    async def scenario() -> tuple[set[int], list[int]]:
        configs = server(answer)
        first = await configs.__anext__()
        bundle = base64.b64decode(first["caBundle"])
        serials: set[int] = set()
        statuses: list[int] = []
        pending = asyncio.ensure_future(configs.__anext__())  # runs the renewal loop
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(serials) < 3 and loop.time() < deadline:
            serial, status = await asyncio.to_thread(handshake, bundle)
            serials.add(serial)
            statuses.append(status)
            await asyncio.sleep(0.3)
        pending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pending
        return serials, statuses

    serials, statuses = asyncio.run(scenario())
    assert len(serials) >= 3, "the certificate was not renewed twice within a minute"
    assert set(statuses) == {200}
    assert server.rotations >= 2


def test_a_cert_manager_secret_is_read_again_when_it_changes(tmp_path: Any) -> None:
    """cert-manager mode: the operator serves the mounted tls.crt/tls.key, takes ca.crt as the
    bundle and issues nothing; a renewed Secret (the kubelet rewrites the files) is picked up."""
    ca = certs.new_authority(T0, 24 * HOUR)

    def write(serving: certs.Issued) -> None:
        (tmp_path / "tls.crt").write_bytes(serving.cert_pem)
        (tmp_path / "tls.key").write_bytes(serving.key_pem)
        (tmp_path / "ca.crt").write_bytes(ca.cert_pem())

    first = certs.issue(ca, ["hook.ns.svc"], T0, HOUR)
    write(first)
    source = webhook_certs.Mounted(tmp_path, poll=datetime.timedelta(seconds=5))
    loaded = asyncio.run(source.load(T0))
    assert (loaded.serving, loaded.ca_bundle, loaded.next_check) == (first, ca.cert_pem(), T0 + 5 * SECOND)
    renewed = certs.issue(ca, ["hook.ns.svc"], T0 + HOUR / 2, HOUR)
    write(renewed)
    assert asyncio.run(source.load(T0 + 5 * SECOND)).serving == renewed


def test_a_lost_ca_secret_leaves_the_served_certificate_trusted_until_the_new_ca_takes_over() -> None:
    store = webhook_certs.MemoryStore()
    source = webhook_certs.Issuing(store, ["hook.ns.svc"], validity=HOUR)
    first = asyncio.run(source.load(T0))
    store._found = None  # someone deleted the Secret: the next read makes a new CA
    at = T0 + 10 * SECOND
    after = asyncio.run(source.load(at))
    assert len(x509.load_pem_x509_certificates(after.ca_bundle)) == 2
    assert after.serving == first.serving
    _verify(after.ca_bundle, after.serving, at)
    switched = asyncio.run(source.load(after.next_check))
    assert switched.serving.cert.issuer != first.serving.cert.issuer
    _verify(switched.ca_bundle, switched.serving, after.next_check)
