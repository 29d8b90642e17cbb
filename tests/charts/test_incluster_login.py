"""In a pod, the operator and the gateway log in with the service account found at
$MODELYARD_SERVICE_ACCOUNT_DIR (what the chart sets; the node agent rewrites it to the volume)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from modelyard import certs, incluster
from modelyard.controllers import cluster
from modelyard.gateway import kube


@pytest.fixture
def account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "serviceaccount"
    ca = certs.new_authority(datetime.datetime.now(datetime.UTC), datetime.timedelta(days=1))
    directory.mkdir()
    (directory / "ca.crt").write_bytes(ca.cert_pem())
    (directory / "token").write_text("token-of-the-pod")  # as the kubelet writes it
    (directory / "namespace").write_text("modelyard-system")
    monkeypatch.setenv(incluster.DIR_ENV, str(directory))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    return directory


def test_the_service_account_is_found_where_the_env_says(account: Path) -> None:
    found = incluster.detect()
    assert found is not None
    assert (found.directory, found.server) == (account, "https://127.0.0.1:6443")
    assert (found.token(), found.namespace()) == ("token-of-the-pod", "modelyard-system")


def test_ipv6_api_server_is_bracketed(account: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    found = incluster.detect()
    assert found is not None and found.server == "https://[fd00::1]:6443"


def test_not_in_a_pod_without_token_or_api_host(account: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (account / "token").unlink()
    assert incluster.detect() is None
    (account / "token").write_text("t")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert incluster.detect() is None


def test_gateway_sends_the_pod_token_and_defaults_to_its_namespace(account: Path) -> None:
    api = kube.KubeApi.load()
    assert api.server == "https://127.0.0.1:6443"
    assert api.namespace == "modelyard-system"
    assert api._headers()["Authorization"].lower() == "bearer token-of-the-pod"


def test_operator_client_uses_the_pod_token(account: Path) -> None:
    creds = cluster.api_client()
    assert creds.server == "https://127.0.0.1:6443"
    assert creds.ca_path == str(account / "ca.crt")
    assert creds.authorization() == "Bearer token-of-the-pod"
    assert creds.namespace == "modelyard-system"
