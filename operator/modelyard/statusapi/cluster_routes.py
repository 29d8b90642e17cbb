"""Routes beyond the registry: the endpoints (readiness, traffic shares), the training jobs
(progress), health, and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from modelyard.statusapi import envelope, keys, queries, schemas


async def list_endpoints(request: web.Request) -> web.Response:
    query = envelope.parse_query(schemas.EndpointQuery, request.query)
    rows = [
        e.model_dump(mode="json")
        for e in queries.endpoints(request.app[keys.CACHE], request.app[keys.TRAFFIC])
        if (query.namespace is None or e.namespace == query.namespace)
        and (query.served_name is None or e.served_name == query.served_name)
        and (query.model is None or e.model == query.model)
        and (query.phase is None or e.phase == query.phase)
    ]
    return envelope.ok(rows, total=len(rows))


async def list_training_jobs(request: web.Request) -> web.Response:
    query = envelope.parse_query(schemas.TrainingJobQuery, request.query)
    rows = [
        j.model_dump(mode="json")
        for j in queries.training_jobs(request.app[keys.CACHE])
        if (query.namespace is None or j.namespace == query.namespace)
        and (query.model is None or j.model == query.model)
        and (query.phase is None or j.phase == query.phase)
    ]
    return envelope.ok(rows, total=len(rows))


async def healthz(request: web.Request) -> web.Response:
    return envelope.ok(schemas.Health(version=request.app[keys.CACHE].version).model_dump())


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[keys.OPENAPI])
