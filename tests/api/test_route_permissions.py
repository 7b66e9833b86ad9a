"""Every route declares its permission, and the declaration is enforced for every role."""

from __future__ import annotations

import httpx
import pytest

from medops.core.permissions import ROLE_PERMISSIONS, Permission, Role
from tests.helpers.http import bearer
from tests.helpers.routes import all_routes, concrete, declaration, protected_routes

PUBLIC_ROUTES = {
    ("GET", "/openapi.json"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/session"),
    ("GET", "/login"),
    ("GET", "/static/{path:path}"),
    ("GET", "/docs"),
}


def is_console_page(path: str) -> bool:
    """Console pages answer a browser: a redirect to sign in, and refusals as pages."""
    return not path.startswith("/api/") and path not in {"/openapi.json", "/metrics"}


def test_every_route_declares_exactly_one_permission_or_is_an_explicit_public_exception() -> None:
    """A route with no declaration, or two, fails; public routes are exactly the listed ones."""
    public_found = set()
    for method, path, route in all_routes():
        permissions, public = declaration(route)
        assert len(permissions) + int(public) == 1, (
            f"{method} {path} declares {permissions}, public={public}"
        )
        if public:
            public_found.add((method, path))
    assert public_found == PUBLIC_ROUTES


@pytest.mark.parametrize(("method", "path", "permission"), protected_routes())
def test_protected_route_without_credentials_is_401_problem(
    http: httpx.Client, method: str, path: str, permission: Permission
) -> None:
    """No token: 401 with a Bearer challenge and a problem+json body, before anything else
    (a console page: a redirect to the sign-in page)."""
    response = http.request(method, concrete(path), json={})
    if is_console_page(path):
        assert response.status_code == 303, (method, path, permission)
        assert response.headers["location"].startswith("/login?next=")
        return
    assert response.status_code == 401, (method, path, permission)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "urn:medops:problem:unauthenticated"


@pytest.mark.parametrize(("method", "path", "permission"), protected_routes())
def test_each_role_gets_403_exactly_where_its_permissions_say(
    http: httpx.Client, tokens: dict[Role, str], method: str, path: str, permission: Permission
) -> None:
    """The role x route matrix: 403 iff the role lacks the route's permission."""
    for role, token in tokens.items():
        response = http.request(method, concrete(path), json={}, headers=bearer(token))
        allowed = permission in ROLE_PERMISSIONS[role]
        if allowed:
            assert response.status_code not in (401, 403), (role, method, path, response.text)
        else:
            assert response.status_code == 403, (role, method, path, response.text)
            if is_console_page(path):
                assert response.headers["content-type"].startswith("text/html")
            else:
                assert response.json()["type"] == "urn:medops:problem:forbidden"
