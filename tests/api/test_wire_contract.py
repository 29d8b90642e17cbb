"""The wire contract: what the operator's builders write is what the gateway, the runtime and the
trainer read, because both sides take it from ``api.wire`` (pure, no cluster)."""

from __future__ import annotations

import argparse
import pathlib

import pytest

from modelyard import api
from modelyard.api import wire
from modelyard.builders import deployment, runtime_args, service, settings, training, training_status
from modelyard.trainer import cli as trainer_cli
from modelyard.trainer import config as trainer_config


@pytest.mark.parametrize(
    ("uri", "root", "path"),
    [
        ("pvc://models/llama/3b", "/models", "/models/models/llama/3b"),
        ("pvc://data/train.jsonl", "/data", "/data/data/train.jsonl"),
        ("pvc://out/", "/output", "/output/out"),
        ("pvc://out", "/output", "/output/out"),
        ("file:///srv/weights", "/models", "/srv/weights"),
        ("s3://bucket/key", "/models", None),
        ("meta-llama/Llama-3.2-1B", "/models", None),
    ],
)
def test_local_path_of_each_uri(uri: str, root: str, path: str | None) -> None:
    assert wire.local_path(uri, root) == path


def test_pvc_claim_only_for_pvc_uris() -> None:
    assert wire.pvc_claim("pvc://weights/llama") == "weights"
    assert wire.pvc_claim("pvc://weights") == "weights"
    assert wire.pvc_claim("file:///weights") is None
    assert wire.pvc_claim("s3://weights/x") is None


def _entry(uri: str) -> api.ModelEntry:
    return api.ModelEntry.model_validate(
        {"metadata": {"name": "llama"}, "spec": {"source": {"uri": uri}, "architecture": "LlamaForCausalLM"}}
    )


def _endpoint() -> api.ModelEndpoint:
    return api.ModelEndpoint.model_validate(
        {"metadata": {"name": "chat", "namespace": "ml"}, "spec": {"model": "llama"}}
    )


def test_runtime_reads_the_weights_where_the_deployment_mounts_them() -> None:
    entry = _entry("pvc://weights/llama")
    built = deployment.build_deployment(_endpoint(), entry, settings.Settings(), owner_uid="u")
    container = built["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    model = container["args"][container["args"].index("--model") + 1]
    assert model.startswith(mounts["weights"] + "/")
    _, from_builder = runtime_args.model_reference(entry.spec.source)
    assert from_builder == model


def test_trainer_reads_a_pvc_model_where_the_runtime_does() -> None:
    source = {"uri": "pvc://weights/llama"}
    raw = {"model": {"source": source}, "dataset": {"path": "/d"}, "output": {"path": "/o"}}
    _, runtime_path = runtime_args.model_reference(_entry("pvc://weights/llama").spec.source)
    assert trainer_config.from_dict(raw).model_path == runtime_path


def test_gateway_finds_the_runtime_port_by_the_name_the_service_gives_it() -> None:
    svc = service.build_service(_endpoint(), settings.Settings(), owner_uid="u", model="llama")
    (port,) = svc["spec"]["ports"]
    assert port["name"] == wire.HTTP_PORT and port["port"] == wire.RUNTIME_PORT
    assert svc["metadata"]["labels"][wire.ENDPOINT] == "chat"


def test_trainer_listens_where_the_job_says_and_exits_with_the_code_the_job_fails_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = api.TrainingJob.model_validate(
        {
            "metadata": {"name": "tune", "namespace": "ml"},
            "spec": {"model": "llama", "dataset": {"uri": "pvc://d/x.jsonl"}, "output": {"uri": "pvc://o/run"}},
        }
    )
    built = training.build_job(job, settings.Settings(), {}, owner_uid="u")
    container = built["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    monkeypatch.setenv(wire.PROGRESS_PORT_ENV, env[wire.PROGRESS_PORT_ENV])
    parser = argparse.ArgumentParser()
    trainer_cli.configure(parser)
    assert parser.parse_args(["--config", "c.json"]).progress_port == container["ports"][0]["containerPort"]
    assert training_status.progress_url([{"status": {"phase": "Running", "podIP": "10.0.0.9"}}]) == (
        f"http://10.0.0.9:{container['ports'][0]['containerPort']}/progress"
    )

    # An unreadable config is unrecoverable: the exit code is the one the podFailurePolicy fails on.
    monkeypatch.setenv("MODELYARD_TERMINATION_LOG", "/dev/null")
    code = trainer_cli._run(parser.parse_args(["--config", str(pathlib.Path("/no/such/config.json"))]))
    (rule,) = built["spec"]["podFailurePolicy"]["rules"]
    assert rule["onExitCodes"]["values"] == [code]
