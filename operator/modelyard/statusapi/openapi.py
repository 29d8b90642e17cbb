"""The OpenAPI 3.1 document of the status API, built from the route table and the pydantic
schemas (request and response models are the only description of the wire format)."""

from __future__ import annotations

import re
from typing import Any

import pydantic

from modelyard.statusapi import routes, schemas

_REF = "#/components/schemas/{model}"


def _schema(target: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = pydantic.TypeAdapter(target).json_schema(ref_template=_REF)
    components.update(schema.pop("$defs", {}))
    return schema


def _envelope(data: dict[str, Any], paginated: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {"success": {"const": True}, "data": data}
    if paginated or data.get("type") == "array":
        properties["total"] = {"type": "integer", "description": "Items matching, before pagination"}
    return {"type": "object", "required": ["success", "data"], "properties": properties}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _parameters(route: routes.Route) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
         "description": "Model id (may contain /), served name or ModelEntry name"}
        for name in re.findall(r"{(\w+)(?::[^}]*)?}", route.path)
    ]  # fmt: skip
    if route.query is not None:
        schema = route.query.model_json_schema()
        for name, prop in schema.get("properties", {}).items():
            description = prop.pop("description", None)
            param = {"name": name, "in": "query", "required": False, "schema": prop}
            if description:
                param["description"] = description
            params.append(param)
    return params


def openapi_path(path: str) -> str:
    """``/models/{id:.+}`` -> ``/models/{id}``."""
    return re.sub(r"{(\w+):[^}]*}", r"{\1}", path)


def document(table: tuple[routes.Route, ...], token_required: bool) -> dict[str, Any]:
    components: dict[str, Any] = {
        "Error": {
            "type": "object",
            "required": ["success", "error"],
            "properties": {"success": {"const": False}, "error": _schema(schemas.ErrorBody, {})},
        }
    }
    paths: dict[str, Any] = {}
    for route in table:
        op: dict[str, Any] = {"summary": route.summary, "operationId": route.handler.__name__}
        params = _parameters(route)
        if params:
            op["parameters"] = params
        if route.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _schema(route.body, components)}},
            }
        if route.kind == "sse":
            ok: dict[str, Any] = {"description": "An event stream", "content": {"text/event-stream": {}}}
        elif route.kind == "raw":
            ok = {
                "description": "The document",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        else:
            data = _schema(route.data, components)
            ok = {
                "description": "Success",
                "content": {"application/json": {"schema": _envelope(data, route.paginated)}},
            }
        responses: dict[str, Any] = {"200": ok}
        if route.query is not None or route.body is not None:
            responses["400"] = _error_response("A bad parameter or field (named in the message)")
        if "{id" in route.path or route.body is not None:
            responses["404"] = _error_response("No such model")
        if route.body is not None:
            responses["413"] = _error_response("The body is too large")
        if token_required and not route.public:
            responses["401"] = _error_response("Missing or wrong bearer token")
            op["security"] = [{"bearer": []}]
        op["responses"] = responses
        paths.setdefault(openapi_path(route.path), {})[route.method.lower()] = op
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "modelyard status API",
            "version": "v1",
            "description": "The Model Garden registry over the cluster's ModelEntries, the endpoints "
            "serving them and the training jobs; read-only.",
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if token_required:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    return doc
