"""Liveness, readiness and the OpenAPI document."""

import dataclasses

from falcon.testing import TestClient
from openapi_spec_validator import validate as validate_openapi

from api.app import create_app
from db.stores import open_stores


def test_health_is_ok(client):
    result = client.simulate_get("/health")
    assert result.status_code == 200
    assert result.json == {"status": "ok"}


def test_ready_checks_every_backend_and_names_the_one_down(client):
    # No collatz broker runs here; the SQL and notes stores are up.
    result = client.simulate_get("/ready")
    assert result.status_code == 503
    assert result.json["backends"] == {"sql": "ok", "notes": "ok", "collatz": "down"}
    assert result.json["detail"] == "unavailable: collatz"


def test_ready_is_503_naming_what_is_down(settings, tmp_path):
    # A SQLite path under a regular file cannot be opened.
    blocker = tmp_path / "file"
    blocker.write_text("")
    broken = dataclasses.replace(settings, database_url=f"sqlite:///{blocker}/x.db")
    stores = open_stores(broken)
    try:
        result = TestClient(create_app(broken, stores)).simulate_get("/ready")
    finally:
        stores.close()
    assert result.status_code == 503
    assert result.json["backends"]["sql"] == "down"
    assert "sql" in result.json["detail"]


def test_openapi_is_valid_and_lists_every_route(client):
    result = client.simulate_get("/openapi.json")
    assert result.status_code == 200
    document = result.json
    validate_openapi(document)
    assert "/health" in document["paths"]
    assert "/ready" in document["paths"]


def test_docs_page_and_its_assets_are_served(client):
    page = client.simulate_get("/docs")
    assert page.status_code == 200
    assert '<script src="/docs/swagger-init.js">' in page.text
    assert "/openapi.json" in client.simulate_get("/docs/swagger-init.js").text
    asset = client.simulate_get("/docs/static/swagger-ui-bundle.js")
    assert asset.status_code == 200
    assert len(asset.content) > 1000
