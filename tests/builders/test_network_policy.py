"""Runtime and trainer pods admit only the release's gateway and operator, on their one port;
no policy is built unless the operator is told who those are."""

from __future__ import annotations

import dataclasses

from factories import endpoint

from modelyard import api
from modelyard.builders import network_policy, settings

PEERS = (("app.kubernetes.io/instance", "modelyard"), ("app.kubernetes.io/name", "modelyard"))
CFG = dataclasses.replace(
    settings.Settings(), network_policy_from=PEERS, network_policy_namespace="my-system"
)


def _job() -> api.TrainingJob:
    return api.TrainingJob.model_validate(
        {
            "metadata": {"name": "tune", "namespace": "ml"},
            "spec": {
                "model": "llama",
                "dataset": {"uri": "pvc://data/train.jsonl"},
                "output": {"uri": "pvc://out/run1"},
            },
        }
    )


def test_no_peers_no_policy() -> None:
    assert (
        network_policy.build_endpoint_policy(endpoint(), settings.Settings(), owner_uid="u", model="m")
        is None
    )
    assert network_policy.build_training_policy(_job(), settings.Settings(), owner_uid="u") is None


def test_endpoint_pods_admit_the_release_on_http_only() -> None:
    ep = endpoint()
    policy = network_policy.build_endpoint_policy(ep, CFG, owner_uid="uid-1", model="m")
    assert policy is not None
    assert policy["metadata"]["namespace"] == ep.namespace and policy["metadata"]["name"] == ep.name
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"modelyard.io/endpoint": ep.name}}
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "my-system"}},
                    "podSelector": {"matchLabels": dict(PEERS)},
                }
            ],
            "ports": [{"protocol": "TCP", "port": "http"}],
        }
    ]


def test_trainer_pods_admit_the_release_on_progress_only() -> None:
    policy = network_policy.build_training_policy(_job(), CFG, owner_uid="uid-2")
    assert policy is not None
    assert policy["spec"]["podSelector"] == {"matchLabels": {"modelyard.io/training-job": "tune"}}
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "progress"}]
    assert policy["metadata"]["ownerReferences"][0]["kind"] == "TrainingJob"
