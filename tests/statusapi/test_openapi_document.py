"""/api/v1/openapi.json describes every route the app serves, with resolvable schemas."""

from __future__ import annotations

import json
import re
from typing import Any

from modelyard import statusapi
from modelyard.statusapi import openapi
from statusapi.conftest import Api


def _refs(node: Any) -> set[str]:
    found = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', json.dumps(node)))
    return found


def test_every_route_is_described(api: Api, view: statusapi.Cache) -> None:
    status, doc = api.get("/api/v1/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    app = statusapi.create_app(statusapi.StatusApiSettings(), view)
    served = {
        (route.method.lower(), openapi.openapi_path(route.resource.canonical))
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/")
        and route.method != "HEAD"
    }  # fmt: skip
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == described
    assert len(described) == 11
    assert _refs(doc) <= set(doc["components"]["schemas"])


def test_schemas_say_what_the_routes_answer(api: Api) -> None:
    _, doc = api.get("/api/v1/openapi.json")
    models = doc["paths"]["/api/v1/registry/models"]["get"]
    assert {p["name"] for p in models["parameters"]} >= {
        "category",
        "tag",
        "lifecycle",
        "capability",
        "q",
        "limit",
    }
    data = models["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]
    assert data["items"]["$ref"].endswith("/ModelSummary")
    inference = doc["paths"]["/api/v1/registry/validate/inference"]["post"]
    assert "requestBody" in inference and {"400", "404", "413"} <= set(inference["responses"])
    detail = doc["paths"]["/api/v1/registry/models/{id}"]["get"]
    assert detail["parameters"][0]["name"] == "id" and "404" in detail["responses"]


def test_a_token_shows_up_as_bearer_security(view: statusapi.Cache, serve: Any) -> None:
    api = serve(view, token="t")
    status, doc = Api(api.base, token="t").get("/api/v1/openapi.json")
    assert status == 200 and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "security" not in doc["paths"]["/api/v1/healthz"]["get"]
