"""The ``local`` provider: a model saved with ``save_pretrained`` in a directory (or file:// URI)."""

from __future__ import annotations

import importlib
import pathlib
from typing import Any

from modelyard.runtime import errors


def _path(model_id: str) -> pathlib.Path:
    return pathlib.Path(model_id.removeprefix("file://")).expanduser()


def load_class(module_name: str, class_name: str) -> Any:
    """``transformers.<class_name>``, with an error naming the class when it does not exist."""
    module = importlib.import_module(module_name)
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise errors.ProviderError(f"{module_name} has no class {class_name!r}") from exc


class LocalProvider:
    """Loads from a directory; never touches the network."""

    name = "local"

    def __init__(self, *, cache_dir: str | None = None, revision: str | None = None, **_: Any) -> None:
        self.cache_dir = cache_dir
        self.revision = revision

    def get_provider_name(self) -> str:
        return self.name

    def locate(self, model_id: str) -> pathlib.Path:
        path = _path(model_id)
        if not path.is_dir():
            raise errors.ModelAccessError(f"local model {model_id!r}: no such directory")
        if not (path / "config.json").is_file():
            raise errors.ModelAccessError(
                f"local model {model_id!r}: {path / 'config.json'} is missing (save it with save_pretrained)"
            )
        return path

    def download(self, model_id: str) -> pathlib.Path:
        return self.locate(model_id)

    def load_model(self, model_id: str, model_class: str, **kwargs: Any) -> Any:
        cls = load_class("transformers", model_class)
        return cls.from_pretrained(str(self.locate(model_id)), local_files_only=True, **kwargs)

    def load_tokenizer(self, model_id: str, *, tokenizer_class: str = "AutoTokenizer", **kwargs: Any) -> Any:
        cls = load_class("transformers", tokenizer_class)
        return cls.from_pretrained(str(self.locate(model_id)), local_files_only=True, **kwargs)

    def validate_model_access(self, model_id: str, model_class: str = "AutoModel") -> bool:
        self.locate(model_id)
        return True
