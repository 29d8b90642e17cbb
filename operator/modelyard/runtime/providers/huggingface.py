"""The ``huggingface`` provider: the Hub and its local cache.

Settings come from the environment the way the model-server document describes:

``HF_TOKEN``                 token for gated or private repos (``HUGGING_FACE_HUB_TOKEN`` too)
``HF_HOME`` / ``--cache-dir``  where the cache lives
``HF_HUB_OFFLINE=1``         never touch the network; only the cache is used
``AUTO_DOWNLOAD_MODELS=0``   require pre-downloaded weights: fail fast, saying how to fetch them

A local directory given as the model id is used as it is.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Mapping
from typing import Any

from modelyard.runtime import errors
from modelyard.runtime.providers import local

_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}


class HuggingFaceProvider:
    name = "huggingface"

    def __init__(
        self,
        *,
        cache_dir: str | None = None,
        revision: str | None = None,
        token: str | None = None,
        env: Mapping[str, str] | None = None,
        **_: Any,
    ) -> None:
        environ = os.environ if env is None else env
        self.cache_dir = cache_dir
        self.revision = revision
        self.token = token or environ.get("HF_TOKEN") or environ.get("HUGGING_FACE_HUB_TOKEN") or None
        self.offline = environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE
        self.auto_download = environ.get("AUTO_DOWNLOAD_MODELS", "1").strip().lower() not in _FALSE

    def get_provider_name(self) -> str:
        return self.name

    @property
    def may_download(self) -> bool:
        return self.auto_download and not self.offline

    def _why_not(self) -> str:
        if not self.auto_download:
            return "AUTO_DOWNLOAD_MODELS=0 forbids downloading it"
        return "HF_HUB_OFFLINE=1 forbids downloading it"

    def _snapshot(self, model_id: str, *, local_only: bool) -> pathlib.Path:
        import huggingface_hub

        try:
            path = huggingface_hub.snapshot_download(
                model_id,
                revision=self.revision,
                cache_dir=self.cache_dir,
                token=self.token,
                local_files_only=local_only,
            )
        except Exception as exc:
            where = self.cache_dir or os.environ.get("HF_HOME") or "the default Hugging Face cache"
            if local_only:
                raise errors.ModelAccessError(
                    f"model {model_id!r}{self._at()} is not in {where} and {self._why_not()}; "
                    f"pre-download it with `modelyard runtime download --model {model_id}` "
                    "(or set AUTO_DOWNLOAD_MODELS=1 and unset HF_HUB_OFFLINE)"
                ) from exc
            hint = "" if self.token else " (gated or private repos need HF_TOKEN)"
            raise errors.ModelAccessError(
                f"cannot download model {model_id!r}{self._at()}: {exc}{hint}"
            ) from exc
        return pathlib.Path(path)

    def _at(self) -> str:
        return f" at revision {self.revision}" if self.revision else ""

    def locate(self, model_id: str) -> pathlib.Path:
        path = pathlib.Path(model_id).expanduser()
        if path.is_dir():
            return path
        return self._snapshot(model_id, local_only=not self.may_download)

    def download(self, model_id: str) -> pathlib.Path:
        path = pathlib.Path(model_id).expanduser()
        if path.is_dir():
            return path
        if self.offline:
            return self._snapshot(model_id, local_only=True)
        return self._snapshot(model_id, local_only=False)

    def load_model(self, model_id: str, model_class: str, **kwargs: Any) -> Any:
        cls = local.load_class("transformers", model_class)
        return cls.from_pretrained(str(self.locate(model_id)), **kwargs)

    def load_tokenizer(self, model_id: str, *, tokenizer_class: str = "AutoTokenizer", **kwargs: Any) -> Any:
        cls = local.load_class("transformers", tokenizer_class)
        return cls.from_pretrained(str(self.locate(model_id)), **kwargs)

    def validate_model_access(self, model_id: str, model_class: str = "AutoModel") -> bool:
        """True when the weights are cached, or reachable on the Hub when downloads are allowed."""
        path = pathlib.Path(model_id).expanduser()
        if path.is_dir():
            return True
        try:
            self._snapshot(model_id, local_only=True)
            return True
        except errors.ModelAccessError:
            if not self.may_download:
                raise
        import huggingface_hub

        try:
            huggingface_hub.model_info(model_id, revision=self.revision, token=self.token)
        except Exception as exc:
            raise errors.ModelAccessError(f"model {model_id!r} is not accessible on the Hub: {exc}") from exc
        return True
