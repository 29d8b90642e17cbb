"""What the trainer leaves is what the transformers runtime loads: base + adapter merged, served
under the adapter's name, with weights that differ from the base."""

from __future__ import annotations

import pathlib

import pytest

from modelyard.runtime import adapters, errors, options
from modelyard.trainer import config, train

pytestmark = pytest.mark.slow


def test_the_runtime_merges_a_trained_adapter(
    tiny_llama: pathlib.Path,
    chat_dataset: pathlib.Path,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tempfile

    import torch
    import transformers

    out = tmp_path / "adapter"
    cfg = config.from_dict(
        {
            "model": {"name": "tiny", "source": {"uri": f"file://{tiny_llama}"}},
            "dataset": {"path": str(chat_dataset)},
            "hyperparameters": {
                "maxSteps": 3,
                "batchSize": 4,
                "gradientAccumulationSteps": 1,
                "learningRate": 0.05,
            },
            "lora": {"r": 4, "targetModules": ["q_proj", "v_proj"]},
            "output": {"path": str(out), "uri": f"file://{out}"},
        }
    )
    train.run(cfg)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the merged copy lands here
    spec = options.ModelSpec(source=str(tiny_llama), served_name="llama")
    (merged,) = adapters.with_adapter([spec], [("tuned", f"file://{out}")])
    assert merged.served_name == "tuned" and merged.provider == "local"
    base = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llama))
    tuned = transformers.AutoModelForCausalLM.from_pretrained(merged.source)
    ids = torch.tensor([[1, 5, 9, 12]])
    with torch.no_grad():
        assert not torch.allclose(base(ids).logits, tuned(ids).logits)
    assert (pathlib.Path(merged.source) / "tokenizer_config.json").exists()


def test_more_than_one_adapter_or_not_an_adapter_is_refused(tmp_path: pathlib.Path) -> None:
    spec = options.ModelSpec(source="/models/x", served_name="x")
    with pytest.raises(errors.LoadError, match="at most one --lora"):
        adapters.with_adapter([spec], [("a", "/a"), ("b", "/b")])
    with pytest.raises(errors.LoadError, match="not a peft adapter"):
        adapters.with_adapter([spec], [("a", f"file://{tmp_path}")])
