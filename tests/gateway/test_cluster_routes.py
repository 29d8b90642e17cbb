"""On the real control plane: routes follow ModelEndpoints and EndpointSlices as the watches say.

No operator runs here: the test plays its part. It creates ModelEndpoints, writes their
status through the status subresource, and creates the Service and EndpointSlices the
operator and the EndpointSlice controller would, pointing at fake model servers on 127.x.

The gateway's informers list again only when a watch ends (every 290 s) or fails, so a change
seen within :data:`LIVE` seconds came through the watch: the test waits for the state, it does
not time how fast it came.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import handkit
from kit import wait_for
from modelyard.gateway import kube, kube_discovery, routes

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

LIVE = 60  # seconds: a generous bound for a busy machine, far below a relist


class Cluster(handkit.HandOperator):
    """The operator's side of the contract, done by hand."""

    def endpoint(
        self, name: str, served: str, weight: int = 100, model: str = "tiny", engine: str = "vllm"
    ) -> None:
        self.create_endpoint(name, {"model": model, "servedName": served, "weight": weight})
        self.endpoint_status(name, {"phase": "Ready", "servedName": served, "engine": engine})
        if engine != "upstream":
            self.service(name)

    def pods(self, endpoint: str, slice_name: str, url: str) -> None:
        """An EndpointSlice for one fake server (a slice has one port, each fake its own)."""
        self.endpoint_slice(endpoint, slice_name, url, {"ready": True}, labels=handkit.MANAGED)

    def delete_endpoint(self, name: str) -> None:
        self.kube.request("DELETE", f"{handkit.GROUP}/namespaces/{self.ns}/modelendpoints/{name}")


@pytest.fixture()
def cluster(local_cluster: Any, crds: None, namespace: str) -> Iterator[Cluster]:
    yield Cluster(local_cluster.kube, namespace)
    entry = f"{handkit.GROUP}/modelentries/gw-remote-entry"
    if local_cluster.kube.get(entry):
        local_cluster.kube.request("DELETE", entry)


def _live(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds: well before the informers' next relist (290 s)."""
    wait_for(check, LIVE, what, interval=0.05)


def _endpoints(source: kube_discovery.KubeDiscovery, served: str) -> dict[str, routes.Endpoint]:
    model = source.table().get(served)
    return {e.name: e for e in model.endpoints} if model is not None else {}


def _chat(url: str, model: str, key: str = "unused") -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    return reply.choices[0].message.content or ""


def test_routes_follow_the_cluster_live(
    cluster: Cluster, local_cluster: Any, harness: Any, wait: Any
) -> None:
    ns = cluster.ns
    a1, a2, b1 = (
        harness.fake("a1", "127.0.0.2"),
        harness.fake("a2", "127.0.0.3"),
        harness.fake("b1", "127.0.0.4"),
    )
    cluster.secret("modelyard-gateway-keys", {"alice": "sk-alice-cluster"})
    cluster.endpoint("llama-a", "llama", weight=100)
    cluster.endpoint("llama-b", "llama", weight=100)
    cluster.pods("llama-a", "llama-a-1", a1.url)
    cluster.pods("llama-b", "llama-b-1", b1.url)

    api = kube.KubeApi.load(str(local_cluster.kubeconfig), ns)
    source = kube_discovery.KubeDiscovery(api, "modelyard-gateway-keys")
    url, _ = harness.gateway(source, auth=True)
    wait(lambda: source.synced and len(_endpoints(source, "llama")) == 2, 30, "the first sync")

    # both endpoints serve, behind the API key from the Secret
    answers = {_chat(url, "llama", "sk-alice-cluster") for _ in range(6)}
    assert answers == {"hello from a1", "hello from b1"}
    with pytest.raises(openai.AuthenticationError):
        _chat(url, "llama", "sk-wrong")

    # scaled: a second pod behind llama-a
    cluster.pods("llama-a", "llama-a-2", a2.url)
    _live(lambda: len(_endpoints(source, "llama")[f"{ns}/llama-a"].targets) == 2, "scale up")
    answers = {_chat(url, "llama", "sk-alice-cluster") for _ in range(8)}
    assert answers == {"hello from a1", "hello from a2", "hello from b1"}

    # weight changed
    cluster.patch_endpoint("llama-b", {"weight": 300})
    _live(lambda: _endpoints(source, "llama")[f"{ns}/llama-b"].weight == 300, "weight change")

    # deleted
    cluster.delete_endpoint("llama-b")
    _live(lambda: set(_endpoints(source, "llama")) == {f"{ns}/llama-a"}, "delete")
    assert {_chat(url, "llama", "sk-alice-cluster") for _ in range(4)} <= {"hello from a1", "hello from a2"}

    # a key rotated in the Secret
    cluster.secret("modelyard-gateway-keys", {"alice": "sk-alice-rotated"}, method="PUT")
    _live(lambda: source.keys().lookup("sk-alice-rotated") is not None, "key rotation")

    # what the watches built one change at a time is what a fresh read of the cluster builds
    fresh = kube_discovery.KubeDiscovery(
        kube.KubeApi.load(str(local_cluster.kubeconfig), ns), "modelyard-gateway-keys"
    )
    harness.gateway(fresh, auth=True)

    def same() -> bool:
        return (
            fresh.synced
            and dict(fresh.table().models) == dict(source.table().models)
            and fresh.keys() == source.keys()
        )

    wait(same, 30, "the same routes and keys as a fresh read of the cluster")
    assert f"{ns}/llama-a" in _endpoints(fresh, "llama")


def test_upstream_endpoint_uses_the_entry_and_its_secret(
    cluster: Cluster, local_cluster: Any, harness: Any, wait: Any
) -> None:
    remote = harness.fake("remote", "127.0.0.5")
    cluster.secret("remote-key", {"apiKey": "sk-upstream-1"})
    local_cluster.kube.request(
        "POST",
        f"{handkit.GROUP}/modelentries",
        {
            "apiVersion": "modelyard.io/v1alpha1",
            "kind": "ModelEntry",
            "metadata": {"name": "gw-remote-entry"},
            "spec": {
                "source": {"provider": "upstream"},
                "servedName": "remote",
                "runtime": {"engine": "upstream"},
                "upstream": {
                    "baseUrl": remote.url + "/v1",
                    "model": "gpt-remote",
                    "apiKeySecretRef": {"name": "remote-key", "key": "apiKey"},
                    "headers": {"X-Org": "acme"},
                },
            },
        },
    )
    cluster.endpoint("remote", "remote", model="gw-remote-entry", engine="upstream")
    source = kube_discovery.KubeDiscovery(kube.KubeApi.load(str(local_cluster.kubeconfig), cluster.ns), None)
    url, _ = harness.gateway(source)

    def has_key(value: str) -> bool:
        found = _endpoints(source, "remote").get(f"{cluster.ns}/remote")
        return found is not None and found.upstream is not None and found.upstream.api_key == value

    wait(lambda: source.synced and has_key("sk-upstream-1"), 30, "the upstream route with its key")
    assert _chat(url, "remote") == "hello from remote"
    sent = remote.requests[-1]
    assert sent["body"]["model"] == "gpt-remote"
    assert sent["headers"]["Authorization"] == "Bearer sk-upstream-1"
    assert sent["headers"]["X-Org"] == "acme"

    cluster.secret("remote-key", {"apiKey": "sk-upstream-2"}, method="PUT")
    _live(lambda: has_key("sk-upstream-2"), "upstream key rotation")
    _chat(url, "remote")
    assert remote.requests[-1]["headers"]["Authorization"] == "Bearer sk-upstream-2"
