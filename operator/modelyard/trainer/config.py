"""The trainer's view of its config file, with the built-in defaults under what the operator merged.

The operator writes the entry's ``trainingDefaults`` merged with the job's overrides
(camelCase keys, unset ones absent). Whatever is still unset falls back to the Model Garden
defaults below, so a bare TrainingJob on an entry without defaults still trains sensibly.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import re
from typing import Any

from modelyard.api import wire
from modelyard.trainer import errors

HYPERPARAMETER_DEFAULTS: dict[str, Any] = {
    "learning_rate": 2e-4,
    "num_epochs": 3.0,
    "batch_size": 2,
    "gradient_accumulation_steps": 4,
    "warmup_steps": 10,
    "max_seq_length": 2048,
    "optim": "adamw_8bit",
    "lr_scheduler_type": "linear",
    "max_steps": None,
    "seed": 42,
}
LORA_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 16.0,
    "lora_dropout": 0.0,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "use_rslora": False,
}
METHODS = ("lora", "qlora", "full")


def snake(key: str) -> str:
    """``learningRate`` -> ``learning_rate`` (snake_case stays as it is)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def merged(defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """``defaults`` with every set (non-null) key of ``given`` on top, keys in snake_case."""
    out = dict(defaults)
    out.update({snake(k): v for k, v in (given or {}).items() if v is not None})
    return out


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
    """Everything one fine-tune needs, resolved."""

    model_path: str
    """A local directory or a hub repo id for ``from_pretrained``."""
    model_name: str
    method: str
    dataset_path: pathlib.Path
    dataset_format: str
    hyperparameters: dict[str, Any]
    lora: dict[str, Any] | None
    output_path: pathlib.Path
    output_uri: str
    namespace: str = ""
    job_name: str = ""
    revision: str | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


def _model_path(source: dict[str, Any]) -> str:
    uri = str(source.get("uri") or "")
    if uri:
        return wire.local_path(uri, wire.MODELS_ROOT) or uri
    repo = source.get("repo")
    if not repo:
        raise errors.ConfigError("model.source has neither uri nor repo")
    return str(repo)


def from_dict(raw: dict[str, Any]) -> TrainerConfig:
    """Validate and resolve the operator's config document."""
    try:
        method = str(raw.get("method") or "lora")
        if method not in METHODS:
            raise errors.ConfigError(f"method {method!r} is not one of {', '.join(METHODS)}")
        model, dataset, output = raw["model"], raw["dataset"], raw["output"]
        job = raw.get("trainingJob") or {}
        return TrainerConfig(
            model_path=_model_path(model.get("source") or {}),
            model_name=str(model.get("name") or ""),
            method=method,
            dataset_path=pathlib.Path(dataset["path"]),
            dataset_format=str(dataset.get("format") or "auto"),
            hyperparameters=merged(HYPERPARAMETER_DEFAULTS, raw.get("hyperparameters")),
            lora=None if method == "full" else merged(LORA_DEFAULTS, raw.get("lora")),
            output_path=pathlib.Path(output["path"]),
            output_uri=str(output.get("uri") or output["path"]),
            namespace=str(job.get("namespace") or ""),
            job_name=str(job.get("name") or ""),
            revision=(model.get("source") or {}).get("revision"),
            extra={"register": output.get("register")},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise errors.ConfigError(f"trainer config is missing or malformed: {exc!r}") from exc


def load(path: pathlib.Path) -> TrainerConfig:
    """Read and resolve the config file the operator mounted."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise errors.ConfigError(f"cannot read trainer config {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise errors.ConfigError(f"trainer config {path} is not a JSON object")
    return from_dict(raw)
