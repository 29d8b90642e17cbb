"""Live adapters (builders/adapters.py): the effective set, the ConfigMap, the plan per pod, the
status per adapter, and that changing the set never changes the pod template."""

from __future__ import annotations

import json
from typing import Any

import pytest
from factories import endpoint, entry

from modelyard import api
from modelyard.api import wire
from modelyard.builders import adapters, deployment, settings

CFG = settings.Settings()
BASE = entry("llama", source={"provider": "local", "uri": "pvc://weights/llama"})


def _job(name: str, target: str = "chat", phase: str = "Succeeded", **output: Any) -> api.TrainingJob:
    return api.TrainingJob.model_validate(
        {
            "metadata": {"name": name, "namespace": "ml"},
            "spec": {
                "model": "llama",
                "dataset": {"uri": "file:///data/train.jsonl"},
                "output": {"uri": f"pvc://out/{name}", "serveOn": {"endpoint": target}, **output},
            },
            "status": {"phase": phase},
        }
    )


def test_spec_uris_and_entries_become_paths_inside_the_pod() -> None:
    tuned = entry("sql", adapter={"baseModel": "llama", "uri": "pvc://out/sql"})
    ep = endpoint(
        adapters=[{"name": "a", "uri": "file:///srv/a"}, {"name": "sql", "entry": "sql"}],
        adapterClaims=["out"],
    )
    wanted = adapters.effective(ep, BASE, {"sql": tuned}, [], CFG)
    assert [(w.name, w.path, w.source, w.problem) for w in wanted] == [
        ("a", "/srv/a", "spec", None),
        ("sql", "/models/out/sql", "entry sql", None),
    ]
    assert json.loads(adapters.file_content(wanted)) == [
        {"name": "a", "path": "/srv/a"},
        {"name": "sql", "path": "/models/out/sql"},
    ]


@pytest.mark.parametrize(
    ("adapter", "entries", "reason", "words"),
    [
        ({"name": "x", "entry": "nope"}, {}, "EntryNotFound", "'nope' does not exist"),
        ({"name": "x", "entry": "plain"}, {"plain": entry("plain")}, "NotAnAdapter", "no spec.adapter"),
        (
            {"name": "x", "entry": "other"},
            {"other": entry("other", adapter={"baseModel": "qwen", "uri": "file:///o"})},
            "WrongBase",
            "adapts 'qwen', not this endpoint's base 'llama'",
        ),
        ({"name": "x", "uri": "pvc://elsewhere/x"}, {}, "ClaimNotMounted", "spec.adapterClaims"),
        ({"name": "x", "uri": "s3://bucket/x"}, {}, "NotSupported", "s3:// adapters are not supported"),
    ],
)
def test_an_adapter_that_cannot_load_says_why_and_stays_out_of_the_file(
    adapter: dict[str, str], entries: dict[str, Any], reason: str, words: str
) -> None:
    wanted = adapters.effective(endpoint(adapters=[adapter]), BASE, entries, [], CFG)
    (only,) = wanted
    assert only.problem is not None and only.problem[0] == reason and words in only.problem[1]
    assert json.loads(adapters.file_content(wanted)) == []
    items, ready = adapters.status(wanted, {"pod-a": adapters.PodReport({})})
    assert items[0]["reason"] == reason and ready == "0/1"


def test_serve_on_jobs_join_the_set_once_they_succeed() -> None:
    ep = endpoint(adapterClaims=["out"])
    jobs = [
        _job("done", register={"name": "support", "servedName": "support-bot"}),
        _job("plain"),
        _job("running", phase="Running"),
        _job("other", target="elsewhere"),
    ]
    wanted = adapters.effective(ep, BASE, {}, jobs, CFG)
    assert [(w.name, w.path, w.job) for w in wanted] == [
        ("support-bot", "/models/out/done", "done"),
        ("plain", "/models/out/plain", "plain"),
    ]
    prefixed = _job("done", register={"name": "support"})
    assert adapters.serve_on_name(prefixed, CFG) == "ml.support"


def test_the_pod_template_does_not_change_when_adapters_change() -> None:
    """Adding an adapter changes the ConfigMap, never the Deployment: no rollout, no restart."""
    before = endpoint(adapterClaims=["out"])
    after = endpoint(adapterClaims=["out"], adapters=[{"name": "a", "uri": "pvc://out/a"}], maxAdapters=8)
    built = [deployment.build_deployment(e, BASE, CFG, owner_uid="u") for e in (before, after)]
    assert built[0]["spec"]["template"] == built[1]["spec"]["template"]
    assert (
        built[0]["metadata"]["annotations"][wire.SPEC_HASH]
        == built[1]["metadata"]["annotations"][wire.SPEC_HASH]
    )
    maps = [
        adapters.build_config_map(e, adapters.effective(e, BASE, {}, [], CFG), owner_uid="u")
        for e in (before, after)
    ]
    assert maps[0]["data"] != maps[1]["data"]
    assert maps[1]["metadata"]["name"] == "chat-adapters"
    assert maps[1]["metadata"]["ownerReferences"][0]["uid"] == "u"


def test_runtime_flags_and_vllm_environment() -> None:
    pod = deployment.build_deployment(endpoint(maxAdapters=3), BASE, CFG, owner_uid="u")["spec"]["template"][
        "spec"
    ]
    args = pod["containers"][0]["args"]
    assert args[args.index("--adapters-file") + 1] == adapters.ADAPTERS_FILE
    assert args[args.index("--max-adapters") + 1] == "3"
    vllm = entry("llama", runtime={"engine": "vllm"})
    pod = deployment.build_deployment(endpoint(maxAdapters=3), vllm, CFG, owner_uid="u")["spec"]["template"][
        "spec"
    ]
    container = pod["containers"][0]
    assert {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"} in container["env"]
    args = container["args"]
    assert args[args.index("--adapters-file") + 1] == adapters.ADAPTERS_FILE  # vLLM: --lora-modules at start
    assert args[args.index("--max-adapters") + 1] == "3"  # vLLM: --enable-lora --max-loras 3


def test_plan_loads_what_is_missing_unloads_what_is_gone_and_resends_a_refused_load_only_after_room() -> None:
    wanted = adapters.effective(
        endpoint(adapters=[{"name": "a", "uri": "file:///a"}, {"name": "b", "uri": "file:///b"},
                           {"name": "c", "uri": "file:///c2"}]),
        BASE, {}, [], CFG,
    )  # fmt: skip
    refused = {"b": ("/b", "maxAdapters (2) reached")}
    load, unload = adapters.plan(wanted, adapters.PodReport({"a": "/a", "c": "/c2"}, refused))
    assert (load, unload) == ([], [])  # b was refused from /b: not sent again
    load, unload = adapters.plan(wanted, adapters.PodReport({"a": "/a", "old": "/old", "c": "/c1"}, refused))
    assert unload == ["c", "old"]  # c moved, old is gone
    assert [w.name for w in load] == ["b", "c"]  # room is made: b is tried again
    moved = adapters.PodReport({}, {"b": ("/elsewhere", "missing")})
    assert [w.name for w in adapters.plan(wanted, moved)[0]] == ["a", "b", "c"]


def test_status_counts_an_adapter_ready_only_on_every_ready_pod() -> None:
    wanted = adapters.effective(
        endpoint(adapters=[{"name": "a", "uri": "file:///a"}, {"name": "b", "uri": "file:///b"}]),
        BASE, {}, [], CFG,
    )  # fmt: skip
    reports = {
        "pod-1": adapters.PodReport({"a": "/a", "b": "/b"}),
        "pod-2": adapters.PodReport({"a": "/a"}, {"b": ("/b", "adapter base does not fit the model")}),
    }
    items, ready = adapters.status(wanted, reports)
    assert ready == "1/2"
    assert items[0] == {
        "name": "a",
        "source": "spec",
        "path": "/a",
        "pods": ["pod-1", "pod-2"],
        "ready": True,
    }
    assert items[1]["pods"] == ["pod-1"] and items[1]["ready"] is False
    assert items[1]["reason"] == "AdapterLoadFailed" and "does not fit" in items[1]["message"]
    api.model_endpoint.ModelEndpointStatus.model_validate({"adapters": items, "adaptersReady": ready})
