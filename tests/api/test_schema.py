"""The OpenAPI schema and its offline docs (the schema is checked against the API in test_contract.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_the_schema_is_served_without_a_key(anonymous_api):
    response = anonymous_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/v1/tickets/", "/api/v1/tickets/{reference}/transition/", "/api/v1/messages/ingest", "/api/v1/imports/tickets"} <= set(paths)


def test_the_docs_page_needs_no_internet(client):
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn" not in page.lower() and "https://" not in page.replace("https://swagger.io", "")
