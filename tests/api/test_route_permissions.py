"""Every route declares its permission, and the declaration is enforced for every role."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from medops.api.app import create_app
from medops.api.deps import declared_access
from medops.auth.permissions import ROLE_PERMISSIONS, Permission, Role
from medops.config import Settings
from tests.helpers.http import bearer

PUBLIC_ROUTES = {
    ("GET", "/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/session"),
}


def _api_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    routes = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        assert isinstance(route, APIRoute), f"{context.path} is not an APIRoute: undeclared access"
        routes.extend((method, route.path, route) for method in sorted(route.methods))
    return routes


def _declaration(route: APIRoute) -> tuple[list[Permission], bool]:
    calls = []
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is not None:
            calls.append(dependant.call)
        stack.extend(dependant.dependencies)
    return declared_access(calls)


def _all_routes() -> list[tuple[str, str, APIRoute]]:
    return _api_routes(create_app(Settings(home="/nonexistent", database_url="sqlite://")))


def _protected_routes() -> list[tuple[str, str, Permission]]:
    result = []
    for method, path, route in _all_routes():
        permissions, public = _declaration(route)
        if not public:
            result.append((method, path, permissions[0]))
    return result


def test_every_route_declares_exactly_one_permission_or_is_an_explicit_public_exception() -> None:
    """A route with no declaration, or two, fails; public routes are exactly the listed ones."""
    public_found = set()
    for method, path, route in _all_routes():
        permissions, public = _declaration(route)
        assert len(permissions) + int(public) == 1, (
            f"{method} {path} declares {permissions}, public={public}"
        )
        if public:
            public_found.add((method, path))
    assert public_found == PUBLIC_ROUTES


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nobody", path)


@pytest.mark.parametrize(("method", "path", "permission"), _protected_routes())
def test_protected_route_without_credentials_is_401_problem(
    http: httpx.Client, method: str, path: str, permission: Permission
) -> None:
    """No token: 401 with a Bearer challenge and a problem+json body, before anything else."""
    response = http.request(method, _concrete(path), json={})
    assert response.status_code == 401, (method, path, permission)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:medops:problem:unauthenticated"


@pytest.mark.parametrize(("method", "path", "permission"), _protected_routes())
def test_each_role_gets_403_exactly_where_its_permissions_say(
    http: httpx.Client, tokens: dict[Role, str], method: str, path: str, permission: Permission
) -> None:
    """The role x route matrix: 403 iff the role lacks the route's permission."""
    for role, token in tokens.items():
        response = http.request(method, _concrete(path), json={}, headers=bearer(token))
        allowed = permission in ROLE_PERMISSIONS[role]
        if allowed:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            assert response.json()["type"] == "urn:medops:problem:forbidden"
