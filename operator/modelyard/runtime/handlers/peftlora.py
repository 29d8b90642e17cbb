"""LoRA adapters over one loaded causal LM, added and removed while it serves (peft multi-adapter).

The base model is wrapped in a ``peft.PeftModel`` when the first adapter loads and unwrapped
(``unload()``: its own layers back, exactly as loaded) when the last one goes, so a server with
no adapter runs the plain model. While wrapped, every forward pass names each row's adapter
(peft's ``adapter_names=``, ``"__base__"`` for the base): rows of different adapters decode in
one batch, and a base row computes exactly what the unwrapped model does (peft adds each
adapter's ``B(A(x))`` to its own rows only).

Adapters are keyed by the caller's ``key`` (the registry gives each load a fresh one, a valid
module name, so a served name with dots works and a reloaded name never meets stale state).

Threads: the engine's scheduler holds :attr:`LoraSet.lock` for each admit-and-step; loading
and deleting take it too, so the weights never change under a forward pass. A sequence holds
its adapter (:meth:`acquire`) from submission to its end; :meth:`remove` first refuses new
users, waits for the running ones to finish, then deletes the weights.

What is checked before peft touches the model (a bad adapter never reaches the weights): the
directory, ``adapter_config.json`` (a LoRA), the weights file, the rank against
``--max-lora-rank``, and every tensor's shape against the module it targets (wrong base).
"""

from __future__ import annotations

import collections
import json
import logging
import pathlib
import threading
import warnings
from typing import Any

import torch

from modelyard.runtime import errors

log = logging.getLogger(__name__)

BASE = "__base__"
"""peft's name for "no adapter" in ``adapter_names``."""
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def _bad(path: str, why: str) -> errors.BadRequestError:
    return errors.BadRequestError(f"lora_path {path}: {why}", param="lora_path")


def read_config(path: str) -> dict[str, Any]:
    """``adapter_config.json`` of a peft LoRA directory; a 400 naming what is wrong."""
    folder = pathlib.Path(path)
    if not folder.exists():
        raise _bad(path, "does not exist")
    if not folder.is_dir():
        raise _bad(path, "is not a directory")
    config_file = folder / "adapter_config.json"
    if not config_file.is_file():
        raise _bad(path, "no adapter_config.json there (not a peft adapter)")
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise _bad(path, f"adapter_config.json is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise _bad(path, "adapter_config.json is not a JSON object")
    kind = str(config.get("peft_type") or "LORA").upper()
    if kind != "LORA":
        raise _bad(path, f"peft_type {kind} is not a LoRA adapter")
    return config


def _weights(path: str) -> dict[str, torch.Tensor]:
    folder = pathlib.Path(path)
    try:
        if (folder / _WEIGHTS[0]).is_file():
            import safetensors.torch

            return dict(safetensors.torch.load_file(str(folder / _WEIGHTS[0]), device="cpu"))
        if (folder / _WEIGHTS[1]).is_file():
            return dict(torch.load(str(folder / _WEIGHTS[1]), map_location="cpu", weights_only=True))
    except Exception as exc:  # a truncated or foreign file
        raise _bad(path, f"cannot read the adapter weights: {exc}") from exc
    raise _bad(path, f"no adapter weights there ({' or '.join(_WEIGHTS)})")


def rank(config: dict[str, Any], weights: dict[str, torch.Tensor]) -> int:
    """The adapter's largest rank: ``r``, any ``rank_pattern`` value, any lora_A's rows."""
    ranks = [int(config.get("r") or 0)]
    ranks += [int(v) for v in (config.get("rank_pattern") or {}).values()]
    ranks += [int(t.shape[0]) for k, t in weights.items() if ".lora_A." in k and t.dim() == 2]
    return max(ranks)


def check_shapes(model: Any, weights: dict[str, torch.Tensor], path: str, served: str) -> None:
    """Every LoRA tensor targets a module of ``model`` with the sizes it was trained for."""
    modules = dict(model.named_modules())
    for key, tensor in weights.items():
        part = ".lora_A." if ".lora_A." in key else ".lora_B." if ".lora_B." in key else None
        if part is None or tensor.dim() != 2:
            continue
        name = key.split(part)[0].removeprefix("base_model.model.")
        module = modules.get(name)
        if module is None:
            raise _bad(
                path, f"wrong base: it targets {name}, which the served model {served!r} does not have"
            )
        layer = getattr(module, "base_layer", module)
        if part == ".lora_A.":
            want, got, what = getattr(layer, "in_features", None), int(tensor.shape[1]), "inputs"
        else:
            want, got, what = getattr(layer, "out_features", None), int(tensor.shape[0]), "outputs"
        if want is not None and want != got:
            raise _bad(
                path,
                f"wrong base: {name} has {want} {what} in the served model {served!r}, "
                f"the adapter was trained for {got}",
            )


class LoraSet:
    """The adapters loaded over one model, and the forward pass that applies them per row."""

    def __init__(self, model: Any, served: str) -> None:
        self.base = model
        self.served = served
        self.peft: Any = None
        self.lock = threading.Lock()
        """Held by the scheduler for every admit-and-step, and by loads and deletes."""
        self._users: collections.Counter[str] = collections.Counter()
        self._open: set[str] = set()
        self._cond = threading.Condition()

    @property
    def keys(self) -> list[str]:
        with self._cond:
            return sorted(self._open)

    def load(self, key: str, path: str, *, max_rank: int) -> None:
        """Check the adapter at ``path``, then add it under ``key``; a 400 naming the cause."""
        config = read_config(path)
        weights = _weights(path)
        found = rank(config, weights)
        if found > max_rank:
            raise _bad(path, f"rank {found} is over this server's --max-lora-rank {max_rank}")
        check_shapes(self.base, weights, path, self.served)
        try:
            import peft
        except ImportError as exc:
            raise errors.BadRequestError(f"LoRA adapters need peft installed in the runtime: {exc}") from exc
        with self.lock:
            try:
                if self.peft is None:  # as PeftModel.from_pretrained, kept so a failure can undo it
                    config = peft.LoraConfig.from_pretrained(path)
                    config.inference_mode = True
                    self.peft = peft.PeftModel(self.base, config, adapter_name=key)
                self.peft.load_adapter(path, adapter_name=key)
                self.peft.eval()
            except Exception as exc:  # whatever peft refuses: undo, report, keep serving
                log.warning("adapter %s from %s failed to load: %s", key, path, exc)
                self._delete(key)
                raise _bad(path, f"peft cannot load it over the served model {self.served!r}: {exc}") from exc
        with self._cond:
            self._open.add(key)
        log.info("adapter %s loaded from %s over %s", key, path, self.served)

    def acquire(self, key: str) -> bool:
        """Hold ``key`` for one sequence; False when it is not (or no longer) loaded."""
        with self._cond:
            if key not in self._open:
                return False
            self._users[key] += 1
            return True

    def release(self, key: str) -> None:
        with self._cond:
            self._users[key] -= 1
            if self._users[key] <= 0:
                del self._users[key]
                self._cond.notify_all()

    def remove(self, key: str) -> None:
        """Refuse new sequences for ``key``, let the running ones finish, then delete it."""
        with self._cond:
            self._open.discard(key)
            while self._users.get(key, 0) > 0:
                self._cond.wait()
        with self.lock:
            self._delete(key)
        log.info("adapter %s removed from %s", key, self.served)

    def _delete(self, key: str) -> None:
        """Drop ``key``'s layers (the caller holds :attr:`lock`); the last one unwraps the model."""
        if self.peft is None or key not in self.peft.peft_config:
            return
        if len(self.peft.peft_config) == 1:
            self.base = self.peft.unload()
            self.peft = None
        else:
            with warnings.catch_warnings():  # "adapter_N was active ...": no adapter is active here
                warnings.simplefilter("ignore", UserWarning)
                self.peft.delete_adapter(key)

    def forward(self, adapters: list[str | None], **inputs: Any) -> Any:
        """One forward pass of the batch, row ``i`` with ``adapters[i]`` (None: the base)."""
        if self.peft is None:
            return self.base(**inputs)
        return self.peft(adapter_names=[a or BASE for a in adapters], **inputs)
