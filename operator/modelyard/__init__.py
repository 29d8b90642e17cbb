"""modelyard: a Kubernetes operator for ML model deployments.

The package is split in layers (checked by import-linter, see pyproject.toml):
``api`` (pydantic models of the custom resources) → ``registry`` (catalog formats,
architecture detection, estimates) → ``builders`` (pure desired state) → ``controllers``
(kopf handlers). ``gateway`` and ``runtime`` serve traffic and never import the operator.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
