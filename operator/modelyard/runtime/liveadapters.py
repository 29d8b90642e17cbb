"""The live LoRA adapters of one server: load and unload by name, the bound, the last error per
name, and the adapters file.

An adapter is loaded over the one served model whose handler takes adapters (the built-in chat
handler); with several such models, over the one its ``base_model_name_or_path`` names. Each
load gets a fresh key (``adapter_N``) in the handler, so a name unloaded and loaded again from
another path never meets the old one's state (its prefix-cache space included).

Rules (the HTTP API maps them to statuses, see docs/runtime.md#live-adapters):

- the same name from the same path again: nothing to do (the operator re-sends);
- the same name from another path: 409, unload it first;
- a name of a model served at startup: 400;
- ``max_adapters`` loaded: 409 (no eviction: the operator owns the set);
- a bad adapter (missing files, wrong base, rank over ``max_rank``): 400 from the handler.

Every failure is kept as the name's last error until it loads or is unloaded. Loads are
serialised (one lock); an unload waits for the requests using the adapter, outside that lock.

The adapters file (:class:`AdaptersFile`) is applied by change: its first reading loads every
entry; later readings load what was added or changed and unload what was removed since the
last reading. So an adapter pushed over HTTP before the file caught up is not undone by the
stale file, and one unloaded over HTTP is not loaded back from it.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import pathlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pydantic

from modelyard.api import lora
from modelyard.runtime import adapters, errors, served
from modelyard.runtime.providers import huggingface

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Loaded:
    name: str
    path: str
    parent: str
    key: str


class Registry:
    def __init__(
        self,
        models: served.ModelSet,
        *,
        max_adapters: int,
        max_rank: int,
        observe: Callable[[str], None] | None = None,
        cache_dir: str | None = None,
    ) -> None:
        """``observe(outcome)``: called after each load that did something (``loaded``, ``failed``);
        ``cache_dir``: the Hugging Face cache that ``hf://`` adapters are read from (``--cache-dir``)."""
        self.models = models
        self.cache_dir = cache_dir
        self.observe = observe
        self.max_adapters = max_adapters
        self.max_rank = max_rank
        self.loaded: dict[str, Loaded] = {}
        self.errors: dict[str, tuple[str, str]] = {}
        """name -> (path, message) of its last failed load."""
        self._lock = threading.Lock()
        self._keys = itertools.count(1)

    # -- the API ------------------------------------------------------------------------------

    def load(self, name: str, path: str) -> bool:
        """Load adapter ``name`` from ``path``; False when it was already loaded from there."""
        path = adapters.adapter_path(path)
        with self._lock:
            current = self.loaded.get(name)
            if current is not None and current.path == path:
                return False
            try:
                loaded = self._load(name, path, current)
            except errors.RuntimeServingError as exc:
                self.errors[name] = (path, exc.message)
                self._observe("failed")
                raise
            self.loaded[name] = loaded
            self.errors.pop(name, None)
        self._observe("loaded")
        return True

    def _observe(self, outcome: str) -> None:
        if self.observe is not None:
            self.observe(outcome)

    def count(self) -> int:
        return len(self.loaded)

    def _load(self, name: str, path: str, current: Loaded | None) -> Loaded:
        if current is not None:
            raise errors.ConflictError(
                f"lora_name: {name!r} is already loaded from {current.path}; unload it before loading {path}",
                param="lora_name",
            )
        if name in self.models.names():
            raise errors.BadRequestError(
                f"lora_name: {name!r} is a model this server serves; give the adapter another name",
                param="lora_name",
            )
        if len(self.loaded) >= self.max_adapters:
            raise errors.ConflictError(
                f"maxAdapters reached: {len(self.loaded)} adapters are loaded (--max-adapters "
                f"{self.max_adapters}); unload one before loading {name!r}",
                param="lora_name",
                code="max_adapters",
            )
        files = self._files(path)
        base = self._base(files)
        key = f"adapter_{next(self._keys)}"
        base.handler.load_adapter(key, files, max_rank=self.max_rank)
        self.models.add_adapter(
            dataclasses.replace(
                base,
                name=name,
                adapter=key,
                parent=base.name,
                root=path,
                batcher=None,
                created=int(time.time()),
            )
        )
        log.info("adapter %s loaded from %s over %s", name, path, base.name)
        return Loaded(name, path, base.name, key)

    def _files(self, path: str) -> str:
        """The directory the adapter's files are in: ``path`` itself, or for
        ``hf://org/name[@revision]`` its snapshot in the Hugging Face cache, downloaded when the
        environment allows it, as for models (``HF_HUB_OFFLINE``, ``AUTO_DOWNLOAD_MODELS``). The
        adapter keeps ``path`` as its name for the operator; a download holds other loads back."""
        if not path.startswith("hf://"):
            return path
        repo, _, revision = path.removeprefix("hf://").partition("@")
        provider = huggingface.HuggingFaceProvider(cache_dir=self.cache_dir, revision=revision or None)
        try:
            return str(provider.locate(repo))
        except errors.ProviderError as exc:
            raise errors.BadRequestError(f"lora_path {path}: {exc}", param="lora_path") from None

    def _base(self, path: str) -> served.ServedModel:
        """The served model an adapter goes over."""
        bases = [m for m in self.models if callable(getattr(m.handler, "load_adapter", None))]
        if not bases:
            raise errors.BadRequestError(
                "no model served here takes LoRA adapters (the built-in chat handler does)",
                param="lora_name",
            )
        if len(bases) == 1:
            return bases[0]
        wanted = _base_name(path)
        for model in bases:
            if wanted and (model.name == wanted or pathlib.PurePath(wanted).name == model.name):
                return model
        raise errors.BadRequestError(
            f"lora_path {path}: its base_model_name_or_path {wanted!r} names none of the served "
            f"models ({', '.join(m.name for m in bases)})",
            param="lora_path",
        )

    def unload(self, name: str) -> None:
        """Stop serving ``name`` now; its weights go once the requests using it have finished."""
        with self._lock:
            self.errors.pop(name, None)
            loaded = self.loaded.pop(name, None)
            if loaded is None:
                raise errors.ModelNotFoundError(
                    f"lora_name: no adapter {name!r} is loaded", param="lora_name", code="model_not_found"
                )
            base = self.models.get(loaded.parent)
            self.models.remove_adapter(name)
        base.handler.unload_adapter(loaded.key)
        log.info("adapter %s unloaded", name)

    def status(self) -> lora.AdapterStatus:
        loaded, failed = dict(self.loaded), dict(self.errors)  # copied at once: loads run on other threads
        return lora.AdapterStatus(
            loaded=[lora.LoadedAdapter(name=a.name, path=a.path) for a in loaded.values()],
            errors=[lora.AdapterError(name=n, path=p, message=m) for n, (p, m) in failed.items()],
            max_adapters=self.max_adapters,
        )

    def activity(self) -> tuple[list[str], list[str]]:
        """Adapter names with sequences running, and with sequences waiting (vLLM's lora info)."""
        by_key = {a.key: a.name for a in dict(self.loaded).values()}
        running: set[str] = set()
        waiting: set[str] = set()
        for model in self.models:
            use = getattr(model.handler, "adapter_use", None)
            if callable(use):
                run, wait = use()
                running.update(by_key[k] for k in run if k in by_key)
                waiting.update(by_key[k] for k in wait if k in by_key)
        return sorted(running), sorted(waiting)


def _base_name(path: str) -> str:
    try:
        config = json.loads((pathlib.Path(path) / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(config.get("base_model_name_or_path") or "") if isinstance(config, dict) else ""


class AdaptersFile:
    """``--adapters-file``: a JSON list of ``{"name", "path"}``, applied by change."""

    def __init__(self, path: str) -> None:
        self.path = pathlib.Path(path)
        self._last: dict[str, str] | None = None
        self._raw: bytes | None = None

    def read(self) -> dict[str, str] | None:
        """name -> path as the file says now; None when it is unchanged, missing or invalid
        (logged; the last good reading stays in force)."""
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            if self._last is None:
                log.warning("adapters file %s: %s; no adapters from it yet", self.path, exc)
                self._last = {}
            return None
        if raw == self._raw:
            return None
        self._raw = raw
        try:
            entries = lora.parse_adapters_file(raw)
        except pydantic.ValidationError as exc:
            log.error("adapters file %s is not a JSON list of {name, path}: %s", self.path, exc)
            return None
        return {e.name: e.path for e in entries}

    def apply(self, registry: Registry) -> None:
        """Load what the file added or changed since the last reading, unload what it dropped."""
        wanted = self.read()
        if wanted is None:
            return
        before = self._last or {}
        for name, path in before.items():
            if wanted.get(name) != path and name in registry.loaded:
                _quietly(registry.unload, name)
        for name, path in wanted.items():
            if before.get(name) != path:
                _quietly(registry.load, name, path)
        self._last = wanted


def _quietly(call: Any, *args: str) -> None:
    """A failure is in the registry's errors already; the file goes on with the next entry."""
    try:
        call(*args)
    except errors.RuntimeServingError as exc:
        log.warning("adapters file: %s", exc.message)
