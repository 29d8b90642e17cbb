"""The operator's own kubeconfig loader (:mod:`modelyard.controllers.credentials`): the current
context's server and user, files relative to the kubeconfig, embedded data, tokens."""

from __future__ import annotations

import base64
import datetime
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard import certs
from modelyard.controllers import credentials


def _write(path: Path, cluster: dict[str, Any], user: dict[str, Any], namespace: str | None = None) -> Path:
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "now",
        "clusters": [
            {"name": "other", "cluster": {"server": "https://wrong:1"}},
            {"name": "c", "cluster": cluster},
        ],
        "users": [{"name": "u", "user": user}],
        "contexts": [
            {"name": "before", "context": {"cluster": "other", "user": "u"}},
            {"name": "now", "context": context},
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="module")
def authority() -> certs.Authority:
    return certs.new_authority(datetime.datetime.now(datetime.UTC), datetime.timedelta(days=1))


def test_files_are_relative_to_the_kubeconfig_and_the_current_context_is_used(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "conf" / "config",
        {"server": "https://api:6443/", "certificate-authority": "ca.crt"},
        {"client-certificate": "pki/me.crt", "client-key": "/abs/me.key"},
        namespace="team",
    )
    creds = credentials.from_kubeconfig(path)
    assert creds.server == "https://api:6443"
    assert creds.ca_path == str(tmp_path / "conf" / "ca.crt")
    assert (creds.cert_path, creds.key_path) == (str(tmp_path / "conf" / "pki" / "me.crt"), "/abs/me.key")
    assert creds.namespace == "team" and creds.authorization() is None and not creds.insecure


def test_embedded_data_goes_to_private_files_that_make_a_working_tls_context(
    tmp_path: Path, authority: certs.Authority
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    leaf = certs.issue(authority, ["client"], now, datetime.timedelta(days=1), client=True)
    pems = {"ca": authority.cert_pem(), "crt": leaf.cert_pem, "key": leaf.key_pem}
    data = {k: base64.b64encode(v).decode() for k, v in pems.items()}
    path = _write(
        tmp_path / "config",
        {"server": "https://api:6443", "certificate-authority-data": data["ca"]},
        {"client-certificate-data": data["crt"], "client-key-data": data["key"]},
    )
    creds = credentials.from_kubeconfig(path)
    assert creds.ca_path is not None and Path(creds.ca_path).read_bytes() == authority.cert_pem()
    assert creds.key_path is not None and Path(creds.key_path).stat().st_mode & 0o077 == 0
    assert creds.ssl_context() is not None  # the chain and the CA load


def test_a_token_is_sent_as_bearer_and_insecure_skips_verification(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "config",
        {"server": "https://api:6443", "insecure-skip-tls-verify": True},
        {"token": "abc"},
    )
    creds = credentials.from_kubeconfig(path)
    assert creds.authorization() == "Bearer abc" and creds.insecure
    context = creds.ssl_context()
    assert context is not None and not context.check_hostname


def test_a_token_file_is_read_relative_to_the_kubeconfig_and_again_after_a_minute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token").write_text("first\n")
    creds = credentials.from_kubeconfig(
        _write(tmp_path / "config", {"server": "https://a"}, {"tokenFile": "token"})
    )
    now = [100.0]
    monkeypatch.setattr(credentials.time, "monotonic", lambda: now[0])
    assert creds.authorization() == "Bearer first"
    (tmp_path / "token").write_text("rotated")
    assert creds.authorization() == "Bearer first"
    now[0] += credentials.TOKEN_REFRESH_SECONDS
    assert creds.authorization() == "Bearer rotated"


def test_basic_auth(tmp_path: Path) -> None:
    creds = credentials.from_kubeconfig(
        _write(tmp_path / "config", {"server": "http://a"}, {"username": "ann", "password": "pw"})
    )
    assert creds.authorization() == "Basic " + base64.b64encode(b"ann:pw").decode()
    assert creds.ssl_context() is None


def test_an_exec_plugins_token_is_used_and_fetched_again_when_it_expires(tmp_path: Path) -> None:
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import json, os, sys\n"
        "n = int(open(sys.argv[1]).read()) + 1 if os.path.exists(sys.argv[1]) else 1\n"
        "open(sys.argv[1], 'w').write(str(n))\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', 'status': {\n"
        "    'token': os.environ['PREFIX'] + str(n), 'expirationTimestamp': '2001-01-01T00:00:00Z'}}))\n"
    )
    exec_spec = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(plugin), str(tmp_path / "count")],
        "env": [{"name": "PREFIX", "value": "tok-"}],
    }
    creds = credentials.from_kubeconfig(
        _write(tmp_path / "config", {"server": "https://a"}, {"exec": exec_spec})
    )
    assert creds.authorization() == "Bearer tok-1"
    assert creds.authorization() == "Bearer tok-2"  # it had expired: run again


def test_auth_providers_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = _write(tmp_path / "config", {"server": "https://a"}, {"auth-provider": {"name": "gcp"}})
    with pytest.raises(credentials.ConfigError, match="auth provider"):
        credentials.from_kubeconfig(path)


def test_the_kubeconfig_is_the_flag_else_the_first_of_kubeconfig_else_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert credentials.kubeconfig_path("/x/y") == Path("/x/y")
    assert credentials.kubeconfig_path() == tmp_path / "a"
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert credentials.kubeconfig_path() == tmp_path / ".kube" / "config"
