"""Providers: huggingface cache rules, local directories, the factory and custom registration."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from modelyard.runtime import errors, providers


def test_unknown_provider_error_lists_the_known_ones() -> None:
    with pytest.raises(errors.ProviderError) as info:
        providers.create_provider("nope")
    assert "huggingface" in str(info.value) and "local" in str(info.value)


@pytest.mark.timeout(60)  # a hang guard: the check never reaches the network
def test_auto_download_off_fails_fast_with_how_to_fix(tmp_path: pathlib.Path) -> None:
    hf = providers.huggingface.HuggingFaceProvider(cache_dir=str(tmp_path), env={"AUTO_DOWNLOAD_MODELS": "0"})
    with pytest.raises(errors.ModelAccessError) as info:
        hf.validate_model_access("someorg/some-model")
    message = str(info.value)
    assert "AUTO_DOWNLOAD_MODELS=0" in message
    assert "modelyard runtime download --model someorg/some-model" in message
    with pytest.raises(errors.ModelAccessError):
        hf.load_model("someorg/some-model", "AutoModel")


def test_offline_mode_and_token_come_from_the_environment() -> None:
    hf = providers.huggingface.HuggingFaceProvider(env={"HF_HUB_OFFLINE": "1", "HF_TOKEN": "hf_x"})
    assert hf.offline and not hf.may_download and hf.token == "hf_x"
    assert providers.huggingface.HuggingFaceProvider(env={}).may_download


def test_huggingface_provider_finds_a_populated_cache(
    tmp_path: pathlib.Path, models_dir: pathlib.Path
) -> None:
    """A repo laid out like the Hub cache is served with downloads forbidden."""
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for f in (models_dir / "bert").iterdir():
        (snapshot / f.name).symlink_to(f)
    (tmp_path / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "models--org--tiny" / "refs" / "main").write_text("a" * 40)
    hf = providers.huggingface.HuggingFaceProvider(cache_dir=str(tmp_path), env={"AUTO_DOWNLOAD_MODELS": "0"})
    assert hf.validate_model_access("org/tiny")
    assert hf.locate("org/tiny") == snapshot
    assert hf.load_tokenizer("org/tiny") is not None


def test_local_provider_needs_a_saved_model(tmp_path: pathlib.Path, models_dir: pathlib.Path) -> None:
    local = providers.create_provider("local")
    with pytest.raises(errors.ModelAccessError, match="no such directory"):
        local.locate(str(tmp_path / "missing"))
    with pytest.raises(errors.ModelAccessError, match=r"config\.json"):
        local.locate(str(tmp_path))
    assert local.locate("file://" + str(models_dir / "llama")) == models_dir / "llama"
    assert local.get_provider_name() == "local"


class _Custom:
    name = "custom"

    def __init__(self, **options: Any) -> None:
        self.options = options


def test_custom_providers_register_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(providers, "_CUSTOM", {})
    providers.register_provider("custom", _Custom)  # type: ignore[arg-type]
    made = providers.create_provider("Custom", cache_dir="/c", revision="r")
    assert isinstance(made, _Custom) and made.options == {"cache_dir": "/c", "revision": "r"}
    assert "custom" in providers.known_providers()


def test_entry_point_providers_are_found(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    ep = importlib.metadata.EntryPoint(
        name="plugin", value=f"{__name__}:_Custom", group=providers.ENTRY_POINT_GROUP
    )
    real = importlib.metadata.entry_points

    def fake(**kwargs: Any) -> Any:
        if kwargs.get("group") == providers.ENTRY_POINT_GROUP:
            return [ep]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    assert "plugin" in providers.known_providers()
    assert isinstance(providers.create_provider("plugin"), _Custom)
