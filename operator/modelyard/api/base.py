"""The base every API model derives from, and the rules shared between pydantic and CEL.

A :class:`Rule` is declared once on a model and used twice: the CRD generator emits it as an
``x-kubernetes-validations`` CEL rule (so the API server enforces it on ``kubectl apply``), and
the model's validator runs its Python twin (so ``modelyard registry validate`` catches the same
mistake offline, with the same message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pydantic
from pydantic import alias_generators

from modelyard.api import wire


@dataclass(frozen=True)
class Rule:
    """One in-object constraint: ``cel`` for the API server, ``check`` for Python."""

    cel: str
    message: str
    check: Callable[[Any], bool]
    field_path: str | None = None  # e.g. ".weight": where kubectl reports the error


class ApiModel(pydantic.BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are an error."""

    model_config = pydantic.ConfigDict(
        alias_generator=alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @pydantic.model_validator(mode="after")
    def _check_rules(self) -> Self:
        for rule in type(self).rules:
            if not rule.check(self):
                raise ValueError(rule.message)
        return self

    def to_wire(self) -> dict[str, Any]:
        """The object as the Kubernetes API stores it: camelCase, unset fields omitted."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(ApiModel):
    """A model that keeps fields it does not know (used for Kubernetes' own types)."""

    model_config = pydantic.ConfigDict(extra="allow")


class ObjectMeta(OpenModel):
    """Standard object metadata; only the fields modelyard reads are typed."""

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    generation: int | None = None
    uid: str | None = None
    resource_version: str | None = None


class SecretKeyRef(ApiModel):
    """A key of a Secret. Secrets are only ever referenced, never inlined."""

    name: str = pydantic.Field(min_length=1)
    """Name of the Secret."""
    key: str = pydantic.Field(min_length=1)
    """Key within the Secret."""
    namespace: str | None = None
    """Namespace of the Secret; defaults to the referencing object's (or the operator's for
    cluster-scoped objects)."""


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap."""

    name: str = pydantic.Field(min_length=1)
    """Name of the ConfigMap."""
    key: str = pydantic.Field(min_length=1)
    """Key within the ConfigMap."""
    namespace: str | None = None
    """Namespace of the ConfigMap; defaults to the referencing object's."""


class Condition(ApiModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str
    """Condition type, e.g. Available, Progressing, Degraded."""
    status: str = pydantic.Field(pattern="^(True|False|Unknown)$")
    """True, False or Unknown."""
    reason: str | None = None
    """One CamelCase word for the reason."""
    message: str | None = None
    """What a person should know, and can act on."""
    last_transition_time: str | None = None
    """When the status last changed (RFC 3339)."""
    observed_generation: int | None = None
    """The .metadata.generation this condition was computed from."""


class Resource(ApiModel):
    """Fields every custom resource has; subclasses set spec and status types."""

    api_version: str = wire.API_VERSION
    """modelyard.io/v1alpha1."""
    kind: str
    """The resource kind."""
    metadata: ObjectMeta = pydantic.Field(default_factory=ObjectMeta)
    """Standard object metadata."""

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace
