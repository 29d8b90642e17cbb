"""Why a fine-tune cannot run, as a person would want to read it in the TrainingJob's status.

Exception hierarchy::

    TrainerError               the job cannot run; the message goes to the termination log
    ├── ConfigError            the trainer config file is missing or malformed
    ├── DatasetError           a dataset record is bad; carries its 1-based line number
    └── MethodUnavailable      the method needs hardware or packages this pod lacks (qlora on CPU)
"""

from __future__ import annotations


class TrainerError(Exception):
    """The fine-tune cannot run; ``str(exc)`` is the message shown in the TrainingJob status."""


class ConfigError(TrainerError):
    """The trainer config is missing or malformed."""


class DatasetError(TrainerError):
    """A dataset record is invalid."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"dataset line {line}: {message}" if line is not None else f"dataset: {message}")


class MethodUnavailable(TrainerError):
    """The requested method needs hardware or packages this pod does not have."""
