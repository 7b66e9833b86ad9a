"""Liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from medops.core.permissions import Role
from medops.db import migrate
from medops.services import Services
from tests.helpers.http import bearer
from tests.helpers.postgres import PgServer


def test_healthz_and_readyz_answer_200_on_a_current_database(http: httpx.Client) -> None:
    """A migrated, reachable database is ready."""
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == migrate.head_revision()


def test_readyz_is_503_when_migrations_are_not_current(
    http: httpx.Client, services: Services
) -> None:
    """An old schema makes the instance unready (and says what to run); liveness stays 200."""
    migrate.downgrade(services.db, "base")
    response = http.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "medops db upgrade" in response.json()["detail"]
    assert http.get("/healthz").status_code == 200
    migrate.upgrade(services.db)
    assert http.get("/readyz").status_code == 200


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_readyz_is_503_while_the_database_refuses_connections(
    http: httpx.Client, services: Services, pg_server: PgServer | None
) -> None:
    """PostgreSQL stops accepting connections: readyz 503, healthz 200, API calls 503 not 500.

    (SQLite is a file inside the process; there is no server to stop.)
    """
    assert pg_server is not None
    name = services.db.engine.url.database
    pg_server.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
    pg_server.execute(
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    )
    try:
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["detail"] == "database unreachable"
        assert http.get("/healthz").status_code == 200
        login = http.post("/api/v1/auth/token", data={"username": "a", "password": "b"})
        assert login.status_code == 503
        assert login.headers["content-type"] == "application/problem+json"
    finally:
        pg_server.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
    assert http.get("/readyz").status_code == 200


def test_metrics_count_requests_by_route_template_and_status(
    http: httpx.Client, tokens: dict[Role, str]
) -> None:
    """Labels carry the route template, never a raw path with names or ids in it."""
    admin = bearer(tokens[Role.ADMIN])
    http.post("/api/v1/users/no-such-user/disable", headers=admin)
    http.get("/api/v1/unknown/path/patient-123")
    http.get("/openapi.json")
    text = http.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert "process_cpu_seconds" in families
    assert "python_info" in families
    samples = families["medops_http_requests"].samples
    labels = {
        (s.labels["method"], s.labels["route"], s.labels["status"])
        for s in samples
        if s.name == "medops_http_requests_total"
    }
    assert ("POST", "/api/v1/users/{username}/disable", "404") in labels
    assert ("GET", "<unmatched>", "404") in labels
    assert ("GET", "/openapi.json", "200") in labels
    assert "no-such-user" not in text
    assert "patient-123" not in text
    histogram = families["medops_http_request_duration_seconds"]
    assert any(s.name.endswith("_bucket") and s.labels["le"] == "0.5" for s in histogram.samples)


def test_openapi_document_lists_the_api(http: httpx.Client) -> None:
    """GET /openapi.json is public and describes every /api/v1 route."""
    document = http.get("/openapi.json").json()
    assert document["info"]["title"] == "medops"
    for path in ("/api/v1/auth/token", "/api/v1/users", "/api/v1/tokens", "/api/v1/audit/events"):
        assert path in document["paths"]
