"""Read-only by default; with a token every /api route but health needs it (the dashboard page
itself holds no data); errors keep the envelope, aiohttp's own 404/405 included."""

from __future__ import annotations

from collections.abc import Callable

import requests

from modelyard import statusapi
from statusapi.conftest import Api


def test_token_guards_every_api_route_but_health(view: statusapi.Cache, serve: Callable[..., Api]) -> None:
    api = serve(view, token="s3cret")
    for path in ("/api/v1/registry/models", "/api/v1/endpoints", "/api/v1/events", "/api/v1/openapi.json"):
        response = requests.get(api.base + path, timeout=10)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "unauthorized"
    wrong = requests.get(
        api.base + "/api/v1/registry/models", headers={"Authorization": "Bearer s3cre"}, timeout=10
    )
    assert wrong.status_code == 401
    response = requests.post(
        api.base + "/api/v1/registry/validate/training", json={"model_id": "bge-m3"}, timeout=10
    )
    assert response.status_code == 401
    assert requests.get(api.base + "/api/v1/healthz", timeout=10).status_code == 200
    assert requests.get(api.base + "/", timeout=10).status_code == 200
    allowed = Api(api.base, token="s3cret")
    status, body = allowed.get("/api/v1/registry/models", limit=1)
    assert status == 200 and body["total"] == 23


def test_without_a_token_the_api_is_open_and_read_only(api: Api) -> None:
    assert api.get("/api/v1/healthz")[0] == 200
    response = requests.delete(api.base + "/api/v1/registry/models/bge-m3", timeout=10)
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    response = requests.put(api.base + "/api/v1/endpoints", json={}, timeout=10)
    assert response.status_code == 405


def test_unknown_api_route_is_404_in_the_envelope(api: Api) -> None:
    status, body = api.get("/api/v1/nothing-here")
    assert status == 404 and body["success"] is False and body["error"]["code"] == "not_found"


def test_the_dashboard_and_its_assets_are_served(api: Api) -> None:
    page = requests.get(api.base + "/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "/static/app.js" in page.text
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = requests.get(api.base + asset, timeout=10)
        assert response.status_code == 200 and kind in response.headers["Content-Type"]
