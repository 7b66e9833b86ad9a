"""Request dependencies: the services, the caller's context, and permission checks.

Every route declares exactly one of ``Depends(require(Permission.X))`` or
``Depends(public)``; tests/api/test_route_permissions.py fails on a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Request

from medops.auth.permissions import Permission
from medops.context import Context, Origin
from medops.errors import ActionRequiredError, AuthenticationError, PermissionDeniedError
from medops.services import Services

API_PREFIX = "/api/v1"
PERMISSION_ATTR = "__medops_permission__"
PUBLIC_ATTR = "__medops_public__"
CONTEXT_STATE = "medops_context"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def origin_of(request: Request) -> Origin:
    """Where the request came from: client address, user agent, request id."""
    return Origin(
        source_ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
    )


def public(request: Request) -> Context:
    """Marks a route as open to everyone; the context has no actor."""
    ctx = Context(actor=None, origin=origin_of(request))
    setattr(request.state, CONTEXT_STATE, ctx)
    return ctx


setattr(public, PUBLIC_ATTR, True)


SESSION_COOKIE = "medops_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _credentials(request: Request) -> tuple[str, bool]:
    """The bearer token, or else the session cookie; and whether it came from the cookie."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
        return token.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    raise AuthenticationError("authentication required: send 'Authorization: Bearer <token>'")


def require(permission: Permission) -> Callable[..., Context]:
    """A dependency that authenticates the caller and checks one permission."""

    def dependency(request: Request) -> Context:
        origin = origin_of(request)
        setattr(request.state, CONTEXT_STATE, Context(actor=None, origin=origin))
        secret, via_cookie = _credentials(request)
        services = get_services(request)
        actor = services.logins.authenticate(
            secret,
            via_cookie=via_cookie,
            csrf=request.headers.get(CSRF_HEADER),
            unsafe=request.method not in SAFE_METHODS,
        )
        ctx = Context(actor=actor, origin=origin)
        setattr(request.state, CONTEXT_STATE, ctx)
        if actor.restriction is not None and permission is not Permission.SELF:
            raise ActionRequiredError(RESTRICTION_HINTS.get(actor.restriction, actor.restriction))
        if actor.can(permission):
            return ctx
        if permission in actor.emergency:
            ctx = Context(actor=replace(actor, auth_method="break-glass"), origin=origin)
            setattr(request.state, CONTEXT_STATE, ctx)
            route = getattr(request.scope.get("route"), "path", "?")
            services.breakglass.record_use(ctx, permission, f"{request.method} {route}")
            return ctx
        raise PermissionDeniedError(f"role {actor.role!r} lacks permission {permission.value!r}")

    setattr(dependency, PERMISSION_ATTR, permission)
    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


RESTRICTION_HINTS = {
    "password-change": "change your password first (POST /api/v1/auth/password, "
    "or 'medops password')",
    "mfa-enrollment": "your role requires MFA: enroll first (POST /api/v1/auth/mfa/enroll, "
    "or 'medops mfa enroll')",
}


def access_check(route: Any) -> Callable[[Request], Context] | None:
    """The route's ``require(...)`` dependency, or None for a public or unknown route."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        if hasattr(dependant.call, PERMISSION_ATTR):
            check: Callable[[Request], Context] = dependant.call
            return check
        stack.extend(dependant.dependencies)
    return None


def declared_access(dependant_calls: list[Any]) -> tuple[list[Permission], bool]:
    """The permissions and public marker found among a route's dependency callables."""
    permissions = [
        getattr(c, PERMISSION_ATTR) for c in dependant_calls if hasattr(c, PERMISSION_ATTR)
    ]
    return permissions, any(getattr(c, PUBLIC_ATTR, False) for c in dependant_calls)
