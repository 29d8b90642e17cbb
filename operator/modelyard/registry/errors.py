"""The registry's errors, in one place.

    RegistryError                  base: every registry failure a user can act on
    ├── UnknownArchitectureError   config.json names an architecture we do not support
    ├── ConfigError                config.json lacks a field an estimate needs
    ├── CatalogError               a catalog file (models.yaml, models_registry.json,
    │                              ModelEntry manifests) is malformed; lists every problem
    └── ModelNotFoundError         no entry with that id / name in the registry

Messages name the entry and the field (``models.yaml: models[3] (name=foo): handler: field
required``) so that a CLI can print them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence


class RegistryError(Exception):
    """Base class of every registry error."""


class UnknownArchitectureError(RegistryError):
    """The architecture is not one modelyard knows; the message lists the supported ones."""


class ConfigError(RegistryError):
    """A model config lacks or has an unusable field."""


class CatalogError(RegistryError):
    """A catalog file failed validation. ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s)\n{lines}")


class ModelNotFoundError(RegistryError, KeyError):
    """No model with that id in the registry."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "model not found"
