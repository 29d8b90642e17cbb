"""The route table: every route of the status API once, with what the OpenAPI document says
about it. ``create_app`` registers these and ``openapi.document`` describes these, so the
two cannot drift."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from modelyard.statusapi import cluster_routes, events, registry_routes, schemas

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    data: Any = None
    """The response model of ``data`` (``list[Model]`` for lists, ``dict[str, Model]``)."""
    query: type[schemas.Request] | None = None
    body: type[schemas.Request] | None = None
    paginated: bool = False
    kind: str = "json"
    """json (the envelope), raw (a plain JSON document) or sse."""
    public: bool = False
    """Answered without the bearer token."""


MODEL = "/api/v1/registry/models/{id:.+}"

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/healthz", cluster_routes.healthz, "Liveness and the cache's change counter",
          schemas.Health, public=True),
    Route("GET", "/api/v1/registry/models", registry_routes.list_models,
          "List registry models (filters: category, tag, lifecycle, capability, q; limit/offset)",
          list[schemas.ModelSummary], query=schemas.ModelQuery, paginated=True),
    Route("GET", MODEL + "/deployments", registry_routes.model_deployments,
          "The ModelEndpoints serving a model", list[schemas.EndpointSummary]),
    Route("GET", MODEL, registry_routes.get_model,
          "A model's detail: requirements, defaults, capabilities, the endpoints serving it",
          schemas.ModelDetail),
    Route("GET", "/api/v1/registry/categories", registry_routes.categories,
          "Categories with their names, descriptions and entry counts", dict[str, schemas.CategoryInfo]),
    Route("POST", "/api/v1/registry/validate/training", registry_routes.validate_training,
          "Can a model be fine-tuned (with this method, on this GPU)? Changes nothing",
          schemas.TrainingVerdict, body=schemas.ValidateTrainingRequest),
    Route("POST", "/api/v1/registry/validate/inference", registry_routes.validate_inference,
          "Does a model fit these GPUs at this context length, and why (not)? Changes nothing",
          schemas.InferenceVerdict, body=schemas.ValidateInferenceRequest),
    Route("GET", "/api/v1/endpoints", cluster_routes.list_endpoints,
          "ModelEndpoints: phase, replicas, url, reason and traffic share per served name",
          list[schemas.EndpointSummary], query=schemas.EndpointQuery),
    Route("GET", "/api/v1/trainingjobs", cluster_routes.list_training_jobs,
          "TrainingJobs: phase and progress", list[schemas.TrainingJobSummary],
          query=schemas.TrainingJobQuery),
    Route("GET", "/api/v1/events", events.stream,
          "Server-sent events: one `change` message ({version, kinds}) whenever the cache changes",
          kind="sse"),
    Route("GET", "/api/v1/openapi.json", cluster_routes.openapi, "This document", kind="raw"),
)  # fmt: skip
