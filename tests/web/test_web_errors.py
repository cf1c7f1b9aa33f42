"""One JSON error shape for everything the API refuses, and the OpenAPI schema that
describes every endpoint."""

from __future__ import annotations

import pytest

ENDPOINTS = {
    "/api/strategies/": {"get"},
    "/api/backtests/": {"get", "post"},
    "/api/backtests/{id}/": {"get"},
    "/api/charts/": {"get"},
    "/api/charts/{timeframe}/{symbol}/": {"get"},
    "/api/simulated-orders/": {"get", "post"},
    "/api/simulated-orders/summary/": {"get"},
    "/api/simulated-orders/{id}/": {"get", "delete"},
    "/api/portfolio/": {"get"},
    "/api/connection/": {"get", "post"},
    "/api/health/": {"get"},
}


def test_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"status": 404, "code": "not_found", "message": "no such URL: /api/no-such-thing/"}
    }


def test_malformed_json_is_a_400_in_the_error_shape(api):
    response = api.post("/api/simulated-orders/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == 400
    assert error["code"] == "parse_error"
    assert error["message"].startswith("JSON parse error")


def test_a_method_an_endpoint_does_not_take_is_a_405_in_the_error_shape(api):
    response = api.delete("/api/strategies/")
    assert response.status_code == 405
    assert response.json() == {
        "error": {
            "status": 405,
            "code": "method_not_allowed",
            "message": 'Method "DELETE" not allowed.',
        }
    }


@pytest.fixture
def token(settings):
    settings.API_TOKEN = "t0ken"
    return "t0ken"


@pytest.mark.parametrize("path", sorted(p for p in ENDPOINTS if "{" not in p))
def test_with_a_token_configured_every_endpoint_needs_it(api, token, path):
    response = api.get(path)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    api.credentials(HTTP_AUTHORIZATION="Token t0ken")
    assert api.get(path).status_code != 401


def test_a_token_sent_to_a_server_without_one_says_so(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer abc")  # the conftest's server has no token
    response = api.get("/api/strategies/")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "status": 401,
        "code": "authentication_failed",
        "message": "this server has no API token (DJANGO_API_TOKEN is not set): send no "
        "Authorization header, or set the same token on both sides",
    }


def test_the_openapi_schema_describes_every_endpoint(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    described = {path: set(item) - {"parameters"} for path, item in schema["paths"].items()}
    assert described == ENDPOINTS
    for path, methods in ENDPOINTS.items():
        for method in methods:
            operation = schema["paths"][path][method]
            assert operation["responses"], f"{method} {path} documents no response"
            if method == "post":
                assert "requestBody" in operation, f"POST {path} documents no request body"


def test_the_docs_page_loads_its_assets_from_this_server(api):
    response = api.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page
    assert "http://" not in page.replace("http://testserver", "")
    assert "https://" not in page
