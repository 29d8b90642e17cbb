"""The three custom resources as pydantic models (camelCase on the wire).

These models are the one source of the CRD schemas (see :mod:`modelyard.api.crd`); the names,
ports and paths the processes agree on are :mod:`modelyard.api.wire`'s. This package imports
nothing else of modelyard.
"""

from modelyard.api import base, model_endpoint, model_entry, training_job, wire
from modelyard.api.model_endpoint import ModelEndpoint
from modelyard.api.model_entry import ModelEntry
from modelyard.api.training_job import TrainingJob

KINDS: dict[str, type[base.Resource]] = {
    "ModelEntry": ModelEntry,
    "ModelEndpoint": ModelEndpoint,
    "TrainingJob": TrainingJob,
}

__all__ = [
    "KINDS",
    "ModelEndpoint",
    "ModelEntry",
    "TrainingJob",
    "base",
    "model_endpoint",
    "model_entry",
    "training_job",
    "wire",
]
