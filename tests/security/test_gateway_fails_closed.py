"""Gateway auth fails closed (issue #14, item 4): no usable key means every /v1 request is a 401.

A real ``modelyard gateway`` process watches its keys Secret on the local control plane while
the test takes the Secret through every state a platform can leave it in: never created,
empty, only unusable entries, a good key, deleted, recreated. Opening the gateway takes the
explicit ``--no-auth``, which the gateway logs as a warning.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gatewaykit
import pytest
import requests

from kit import install_crds

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

SECRET = "modelyard-gateway-keys"
NO_KEY = "no API key is configured on this gateway"


@pytest.fixture(scope="module")
def crds(local_cluster: Any) -> None:
    install_crds(local_cluster)


def _secret(kube: Any, namespace: str, data: dict[str, str] | None, method: str = "POST") -> None:
    path = f"/api/v1/namespaces/{namespace}/secrets" + (f"/{SECRET}" if method != "POST" else "")
    if data is None:
        kube.request("DELETE", path)
        return
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    kube.request(method, path, body)


def _refused(url: str, key: str) -> dict[str, Any]:
    response = gatewaykit.chat(requests.Session(), url, key)
    assert response.status_code == 401, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def test_no_usable_key_in_the_secret_refuses_everything(
    local_cluster: Any, crds: None, namespace: str, tmp_path: Path, wait: Callable[..., Any]
) -> None:
    kube = local_cluster.kube
    log = tmp_path / "gateway.log"
    args = ["--kubeconfig", str(local_cluster.kubeconfig), "--namespace", namespace, "--keys-secret", SECRET]

    def ready_text() -> str:
        response = requests.get(f"{url}/readyz", timeout=10)
        return response.text if response.status_code == 200 else ""

    def says(*parts: str) -> Callable[[], bool]:
        return lambda: all(p in ready_text() for p in parts)

    def no_key_everywhere(key: str) -> None:
        error = _refused(url, key)
        assert error["type"] == "authentication_error" and error["code"] == "no_api_key_configured"
        assert NO_KEY in error["message"]
        listing = requests.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert listing.status_code == 401 and NO_KEY in listing.json()["error"]["message"]

    with gatewaykit.gateway(args, log) as url:
        # never created: ready (the pod can tell clients why), and every request refused
        wait(says(NO_KEY, f"Secret {namespace}/{SECRET} has no usable key (it does not exist)"), 60, "readyz")
        no_key_everywhere("sk-anything")

        _secret(kube, namespace, {})  # created empty
        wait(lambda: ready_text().startswith(NO_KEY) and "does not exist" not in ready_text(), 30, "empty")
        no_key_everywhere("sk-anything")

        unusable = {"alice": " ", "bob.models": "llama", "carol": "sk-carol", "carol.tpm": "1e6"}
        _secret(kube, namespace, unusable, "PUT")  # every key unusable
        wait(says(NO_KEY, "alice: the key is empty", "carol.tpm must be a whole number"), 30, "unusable")
        no_key_everywhere("sk-carol")

        _secret(kube, namespace, {"alice": "sk-alice-1"}, "PUT")  # a good key
        wait(lambda: ready_text() == "ok", 30, "the key to load")
        answered = gatewaykit.chat(requests.Session(), url, "sk-alice-1")
        assert answered.status_code == 404, answered.text  # authenticated; no such model here
        assert _refused(url, "sk-wrong")["code"] == "invalid_api_key"

        _secret(kube, namespace, None)  # deleted
        wait(says(NO_KEY, "it does not exist"), 30, "the deletion")
        no_key_everywhere("sk-alice-1")

        _secret(kube, namespace, {"dave.models": "llama"})  # recreated, with no key in it
        wait(lambda: ready_text().startswith(NO_KEY) and "dave.models" in ready_text(), 30, "recreation")
        no_key_everywhere("sk-alice-1")

        _secret(kube, namespace, {"dave": "sk-dave-2"}, "PUT")
        wait(lambda: ready_text() == "ok", 30, "the recreated key")
        assert gatewaykit.chat(requests.Session(), url, "sk-dave-2").status_code == 404

    text = log.read_text()
    assert (
        f"ERROR modelyard.gateway.kube_discovery: no API key is configured: Secret {namespace}/{SECRET}"
        in text
    )
    for secret in ("sk-alice-1", "sk-carol", "sk-dave-2"):
        assert secret not in text


def test_no_auth_is_explicit_and_logged_as_a_warning(tmp_path: Path) -> None:
    with gatewaykit.FakeModel() as model:
        routes = tmp_path / "routes.yaml"
        routes.write_text(f"models:\n  - name: llama\n    endpoints:\n      - urls: ['{model.url}']\n")
        log = tmp_path / "open.log"
        with gatewaykit.gateway(["--routes", str(routes), "--no-auth"], log) as url:
            answered = gatewaykit.chat(requests.Session(), url, "no-key-at-all")
            assert answered.status_code == 200, answered.text
        warning = "WARNING modelyard.gateway.cli: authentication is OFF (--no-auth)"
        assert warning in log.read_text()

        closed = tmp_path / "closed.log"
        with gatewaykit.gateway(["--routes", str(routes)], closed) as url:  # no apiKeys, no flag
            error = _refused(url, "no-key-at-all")
            assert error["code"] == "no_api_key_configured"
        assert "authentication is OFF" not in closed.read_text()


def test_an_empty_keys_secret_name_is_not_a_way_to_open_the_gateway(capsys: Any) -> None:
    from modelyard import cli

    assert cli.main(["gateway", "--keys-secret", ""]) == 2
    assert "--no-auth opens it" in capsys.readouterr().err
