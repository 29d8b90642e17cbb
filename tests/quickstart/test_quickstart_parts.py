"""The quickstart's pure parts: progress lines, the objects it applies, Helm arguments, the key."""

from __future__ import annotations

import io
import ipaddress
import stat
from pathlib import Path

import pytest

from modelyard import cli
from modelyard.api import model_endpoint, model_entry
from modelyard.gateway import auth
from modelyard.local import nodes
from modelyard.quickstart import cluster, manifests, progress


def test_progress_lines_carry_elapsed_seconds_and_indent_details() -> None:
    now = [100.0]
    out = io.StringIO()
    show = progress.Progress(out, clock=lambda: now[0])
    show.step("starting a local cluster")
    now[0] = 112.34
    show.detail("go: downloading k8s.io/api\n  compiling")
    show.plain("chat answer: 'hi'")
    assert out.getvalue().splitlines() == [
        "[   0.0s] ==> starting a local cluster",
        "[  12.3s]     go: downloading k8s.io/api",
        "[  12.3s]       compiling",
        "chat answer: 'hi'",
    ]
    assert progress.format_line(1234.56, "x") == "[1234.6s] ==> x"


def test_a_masked_key_never_shows_the_whole_key() -> None:
    key = "sk-quickstart-abcdefghijklmnopqrstuvwxyz012345"
    assert progress.mask(key) == "sk-…2345"
    assert progress.mask("short-secret") == "…"


def test_entries_and_endpoints_are_valid_resources(tmp_path: Path) -> None:
    chat = manifests.chat_model(tmp_path / "tiny-llama")
    embed = manifests.embedding_model(tmp_path / "minilm")
    objects = manifests.objects([chat, embed])
    kinds = [o["kind"] for o in objects]
    assert kinds == ["Namespace", "ModelEntry", "ModelEntry", "ModelEndpoint", "ModelEndpoint"]
    entry = model_entry.ModelEntry.model_validate(objects[1])
    assert entry.spec.source.provider == "local" and entry.spec.source.uri == f"file://{tmp_path}/tiny-llama"
    assert entry.spec.served_name == "tiny-chat" and entry.spec.runtime is not None
    assert entry.spec.runtime.engine == "transformers"
    assert entry.spec.serving_namespaces == [manifests.NAMESPACE], "the platform owns tiny-chat"
    minilm = model_entry.ModelEntry.model_validate(objects[2])
    assert minilm.spec.category == "embedding" and minilm.spec.architecture == "BertModel"
    for obj, model in zip(objects[3:], (chat, embed), strict=True):
        endpoint = model_endpoint.ModelEndpoint.model_validate(obj)
        assert endpoint.metadata.namespace == manifests.NAMESPACE and endpoint.spec.model == model.entry
    assert [manifests.api_path(o) for o in objects] == [
        "/api/v1/namespaces/quickstart",
        "/apis/modelyard.io/v1alpha1/modelentries/quickstart-tiny-chat",
        "/apis/modelyard.io/v1alpha1/modelentries/quickstart-minilm",
        "/apis/modelyard.io/v1alpha1/namespaces/quickstart/modelendpoints/chat",
        "/apis/modelyard.io/v1alpha1/namespaces/quickstart/modelendpoints/embeddings",
    ]


def test_the_nodes_fit_both_endpoints(tmp_path: Path) -> None:
    specs = [nodes.NodeSpec.parse(n) for n in manifests.NODES]
    args = manifests.node_args(tmp_path)
    assert args[:4] == ["--node", manifests.NODES[0], "--node", manifests.NODES[1]]
    network = ipaddress.ip_network(args[args.index("--pod-cidr") + 1])
    assert network.is_loopback and network.prefixlen == 16 and 210 <= network.network_address.packed[1] <= 254
    for model in (manifests.chat_model(tmp_path), manifests.embedding_model(tmp_path)):
        resources = manifests.model_endpoint(model)["spec"]["resources"]
        wanted = resources.get("gpuType")
        assert any(s.gpus >= resources["gpus"] and wanted in (None, s.gpu_type) for s in specs), model


def test_helm_installs_once_then_upgrades_in_the_system_namespace(tmp_path: Path) -> None:
    args = manifests.helm_args(tmp_path / "chart", tmp_path / "values.yaml")
    assert args[:4] == ["upgrade", "--install", "modelyard", str(tmp_path / "chart")]
    assert args[args.index("--namespace") + 1] == "modelyard-system"
    assert {"--create-namespace", "--wait"} <= set(args)
    assert args[args.index("--values") + 1] == str(tmp_path / "values.yaml")


def test_the_key_values_are_in_the_gateway_secret_format() -> None:
    values = manifests.auth_values("sk-test-123")
    table = auth.KeyTable.from_data(values["gateway"]["auth"]["keys"])
    found = table.lookup("sk-test-123")
    assert found is not None and found.name == manifests.KEY_NAME and found.allows("tiny-chat")
    assert manifests.auth_values(None) == {"gateway": {"auth": {"enabled": False}}}


def test_the_api_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    first = cluster.api_key(tmp_path)
    assert first.startswith("sk-quickstart-") and len(first) > 40
    assert stat.S_IMODE((tmp_path / "api-key").stat().st_mode) == 0o600
    assert cluster.api_key(tmp_path) == first


def test_the_gateway_url_comes_from_a_ready_endpoint_of_its_slice() -> None:
    slices = [
        {"ports": [{"name": "http", "port": 8000}],
         "endpoints": [{"addresses": ["127.20.0.5"], "conditions": {"ready": False}},
                       {"addresses": ["127.20.0.6"], "conditions": {"ready": True}}]},
    ]  # fmt: skip
    assert cluster.ready_url(slices) == "http://127.20.0.6:8000/v1"
    assert cluster.ready_url([{"ports": [{"port": 8000}], "endpoints": []}]) is None
    assert cluster.ready_url([]) is None


def test_the_command_is_registered_with_its_flags() -> None:
    args = cli.build_parser().parse_args(["quickstart", "--state-dir", "/s", "--down", "--no-auth"])
    assert args.func.__module__ == "modelyard.quickstart.cli"
    assert (args.state_dir, args.down, args.no_auth, args.chart) == (Path("/s"), True, True, None)
    assert cluster.default_chart().parts[-2:] == ("charts", "modelyard")


@pytest.mark.model
def test_the_tiny_chat_model_is_taught_its_reply(tmp_path: Path) -> None:
    """What the quickstart builds: greedy decoding of the taught prompts gives the reply, then stops."""
    import transformers

    from modelyard.local import tinymodels
    from modelyard.quickstart import models

    path = tinymodels.build_llama(tmp_path / "tiny-chat")
    pairs = [(manifests.PROMPT, manifests.REPLY), (manifests.CURL_PROMPT, manifests.REPLY)]
    tinymodels.teach_replies(path, pairs, steps=models.TEACH_STEPS)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    for prompt in (manifests.PROMPT, manifests.CURL_PROMPT):
        text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                             add_generation_prompt=True)  # fmt: skip
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        out = model.generate(ids, max_new_tokens=32, do_sample=False)
        assert out[0][-1].item() == tokenizer.eos_token_id, "the reply does not end its turn"
        assert tokenizer.decode(out[0][ids.shape[1] :], skip_special_tokens=True) == manifests.REPLY


def test_a_failed_endpoint_shows_the_previous_log_when_its_restart_has_not_written_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crashed container restarts with an empty log (CI saw "(no log)" once): the failure
    then shows the crashed container's log, as ``kubectl logs --previous`` gives it."""
    import types

    from modelyard.local import build
    from modelyard.quickstart import models

    kubectl = tmp_path / "bin" / "kubectl"
    kubectl.parent.mkdir()
    kubectl.write_text(
        '#!/bin/sh\ncase "$*" in *--previous*) echo "error: local model: no such directory";; esac\n'
    )
    kubectl.chmod(0o755)
    monkeypatch.setattr(build, "bin_dir", lambda: kubectl.parent)
    plane = types.SimpleNamespace(kubeconfig=tmp_path / "kubeconfig", state_dir=tmp_path)
    with pytest.raises(cluster.QuickstartError) as failed:
        models._fail(plane, manifests.chat_model(tmp_path / "gone"), {"message": "exit code 1"})
    assert str(failed.value).endswith("last lines of its pod's log:\nerror: local model: no such directory")
