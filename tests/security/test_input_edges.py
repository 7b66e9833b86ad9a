"""Attack stories at the edges (issue 14, bad input and hardening): numbers past what the
database holds, inputs echoed back at length, outcome times out of range, files others can
read, HTML without a content policy, 405 without ``Allow``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from medops.api.app import create_app
from medops.api.deps import public
from medops.bounds import INT32_MAX
from medops.config import Settings
from medops.embedded import EmbeddedTransport
from medops.registry.schemas import VersionCreate
from medops.services import Services, build_services
from medops.testing import capture_audit
from tests.security.conftest import DEPLOYMENT, MODEL

PROBLEM = "application/problem+json"


# --- integers bounded in the schemas; every failed change audited ------------------------


@pytest.mark.parametrize(
    ("path", "body", "action"),
    [
        (f"/api/v1/models/{MODEL}/aliases/staging", {"reason": "attack"}, "models.promote"),
        (
            f"/api/v1/deployments/{DEPLOYMENT}/canary",
            {"percent": 10, "reason": "attack"},
            "deployments.canary",
        ),
        (f"/api/v1/deployments/{DEPLOYMENT}/shadow", {"reason": "attack"}, "deployments.shadow"),
    ],
)
def test_version_of_2_63_is_a_422_naming_the_field_and_is_audited(
    http: httpx.Client,
    services: Services,
    served: dict[str, dict[str, str]],
    path: str,
    body: dict[str, Any],
    action: str,
) -> None:
    """A version number of 2^63 (or just past 2^31 - 1) on promote, canary and shadow is a
    422 naming ``version``, never a 500, and the failed change has its audit record."""
    for version in (2**63, INT32_MAX + 1):
        with capture_audit(services) as captured:
            answer = http.put(path, json=body | {"version": version}, headers=served["mle"])
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert [e["field"] for e in answer.json()["errors"]] == ["version"]
        (record,) = captured.find(action)
        assert record.outcome == "failure"
        assert record.actor_name == "user-ml-engineer"
    deployment = http.get(f"/api/v1/deployments/{DEPLOYMENT}", headers=served["mle"]).json()
    assert deployment["canary_version"] is None
    assert deployment["shadow_version"] is None


def _integers_without_maximum(
    schema: dict[str, Any], where: str, definitions: dict[str, Any], seen: frozenset[str]
) -> list[str]:
    """Where in ``schema`` an integer has no maximum (following references once)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return _integers_without_maximum(definitions[name], where, definitions, seen | {name})
    found = []
    if schema.get("type") == "integer" and not {"maximum", "exclusiveMaximum"} & set(schema):
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for part in schema.get(key, []):
            found += _integers_without_maximum(part, where, definitions, seen)
    for name, part in schema.get("properties", {}).items():
        found += _integers_without_maximum(part, f"{where}.{name}", definitions, seen)
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(schema.get(key), dict):
            found += _integers_without_maximum(schema[key], where + suffix, definitions, seen)
    return found


def test_every_integer_a_client_sends_has_a_maximum(tmp_path: Path) -> None:
    """Every integer of every route's parameters and request bodies (and of the version
    metadata sent as a form field) has a maximum in the OpenAPI document."""
    services = build_services(
        Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'm.db'}")
    )
    try:
        document = create_app(services=services).openapi()
    finally:
        services.close()
    definitions = document["components"]["schemas"]
    unbounded: list[str] = []
    checked = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            route = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                checked += 1
                unbounded += _integers_without_maximum(
                    parameter["schema"],
                    f"{route} {parameter['in']} {parameter['name']}",
                    definitions,
                    frozenset(),
                )
            for content in operation.get("requestBody", {}).get("content", {}).values():
                checked += 1
                unbounded += _integers_without_maximum(
                    content["schema"], f"{route} body", definitions, frozenset()
                )
    metadata = VersionCreate.model_json_schema()
    unbounded += _integers_without_maximum(
        metadata, "version metadata", metadata.get("$defs", {}), frozenset()
    )
    assert checked > 40
    assert unbounded == []


def test_an_unexpected_exception_on_a_change_is_audited_as_a_failure(
    app: FastAPI, services: Services
) -> None:
    """A state-changing request that ends in an unexpected exception answers a generic 500
    and leaves a failed audit record naming the route."""

    def explode() -> None:
        raise RuntimeError("a bug")

    app.add_api_route(
        "/boom", explode, methods=["POST"], name="test.boom", dependencies=[Depends(public)]
    )
    with (
        capture_audit(services) as captured,
        httpx.Client(transport=EmbeddedTransport(app), base_url="https://t") as client,
    ):
        answer = client.post("/boom", headers={"X-Request-ID": "req-boom-2"})
    assert answer.status_code == 500
    (record,) = captured.find("test.boom")
    assert record.outcome == "failure"
    assert record.resource_id == "POST /boom"
    assert record.request_id == "req-boom-2"
