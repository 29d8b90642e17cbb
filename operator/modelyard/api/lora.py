"""Live LoRA adapters on the wire: vLLM's runtime adapter API, modelyard's status of it, and the
adapters file, in one place for the runtime that serves them and the operator that drives them.

vLLM (with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``) answers ``POST /v1/load_lora_adapter``
``{"lora_name", "lora_path"}`` and ``POST /v1/unload_lora_adapter`` ``{"lora_name"}``, and lists
loaded adapters in ``GET /v1/models`` with a ``parent``. The transformers runtime answers the
same, plus ``GET /v1/adapters`` (:class:`AdapterStatus`), and reads the adapters file
(:class:`AdapterFileEntry` list) that the operator mounts.
"""

from __future__ import annotations

import pydantic

LOAD_PATH = "/v1/load_lora_adapter"
UNLOAD_PATH = "/v1/unload_lora_adapter"
STATUS_PATH = "/v1/adapters"
VLLM_RUNTIME_LORA_ENV = "VLLM_ALLOW_RUNTIME_LORA_UPDATING"
"""vLLM serves the load/unload endpoints only with this set to ``True``."""
DEFAULT_MAX_ADAPTERS = 8
DEFAULT_MAX_LORA_RANK = 64

__all__ = [
    "DEFAULT_MAX_ADAPTERS",
    "DEFAULT_MAX_LORA_RANK",
    "LOAD_PATH",
    "STATUS_PATH",
    "UNLOAD_PATH",
    "VLLM_RUNTIME_LORA_ENV",
    "AdapterError",
    "AdapterFileEntry",
    "AdapterStatus",
    "LoadLoraAdapterRequest",
    "LoadedAdapter",
    "UnloadLoraAdapterRequest",
    "parse_adapters_file",
]

_NAME = pydantic.Field(min_length=1, max_length=253)


class _Tolerant(pydantic.BaseModel):
    """Unknown fields are kept (vLLM's body has optional extras such as ``load_inplace``)."""

    model_config = pydantic.ConfigDict(extra="allow")


class LoadLoraAdapterRequest(_Tolerant):
    lora_name: str = _NAME
    lora_path: str = pydantic.Field(min_length=1)


class UnloadLoraAdapterRequest(_Tolerant):
    lora_name: str = _NAME


class AdapterFileEntry(pydantic.BaseModel):
    """One line of the adapters file (a JSON list of these)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    name: str = _NAME
    path: str = pydantic.Field(min_length=1)


class LoadedAdapter(pydantic.BaseModel):
    name: str
    path: str


class AdapterError(pydantic.BaseModel):
    name: str
    path: str
    message: str


class AdapterStatus(pydantic.BaseModel):
    """``GET /v1/adapters``: what is loaded, the last failed load per name, the bound."""

    model_config = pydantic.ConfigDict(populate_by_name=True)

    loaded: list[LoadedAdapter]
    errors: list[AdapterError]
    max_adapters: int = pydantic.Field(alias="maxAdapters")


_FILE = pydantic.TypeAdapter(list[AdapterFileEntry])


def parse_adapters_file(raw: bytes) -> list[AdapterFileEntry]:
    """The adapters file's entries (empty content: none); pydantic's ValidationError when it is
    not a JSON list of ``{"name", "path"}``."""
    return _FILE.validate_json(raw.strip() or b"[]")
