"""Request dependencies: the services, the caller's context, and permission checks.

Every route declares exactly one of ``Depends(require(Permission.X))`` or
``Depends(public)``; tests/api/test_route_permissions.py fails on a route that declares neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from medops.context import Actor, Context, Origin
from medops.core.permissions import Permission
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
CSRF_COOKIE = "medops_csrf"  # the session's CSRF token, readable by the console's script
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
    raise AuthenticationError(
        "authentication required: log in with 'medops login' "
        "(API: send 'Authorization: Bearer <token>')"
    )


def require(permission: Permission) -> Callable[..., Any]:
    """A dependency that authenticates the caller and checks one permission.

    It runs on the event loop: a token the auth cache holds costs no query and no thread;
    otherwise the check goes to a worker thread. ``access_check`` gives the same check as a
    plain function, for code that is already off the loop."""

    async def dependency(request: Request) -> Context:
        secret, via_cookie = _start(request)
        services = get_services(request)
        csrf, unsafe = request.headers.get(CSRF_HEADER), request.method not in SAFE_METHODS
        actor = services.logins.cached_actor(
            secret, via_cookie=via_cookie, csrf=csrf, unsafe=unsafe
        )
        if actor is None:
            actor = await run_in_threadpool(
                services.logins.authenticate,
                secret,
                via_cookie=via_cookie,
                csrf=csrf,
                unsafe=unsafe,
            )
        ctx = _permitted(request, actor, permission)
        if ctx is None:
            return await run_in_threadpool(_break_glass, request, actor, permission)
        return ctx

    def check(request: Request) -> Context:
        secret, via_cookie = _start(request)
        actor = get_services(request).logins.authenticate(
            secret,
            via_cookie=via_cookie,
            csrf=request.headers.get(CSRF_HEADER),
            unsafe=request.method not in SAFE_METHODS,
        )
        return _permitted(request, actor, permission) or _break_glass(request, actor, permission)

    setattr(dependency, PERMISSION_ATTR, permission)
    setattr(dependency, _CHECK_ATTR, check)
    setattr(check, PERMISSION_ATTR, permission)
    dependency.__name__ = f"require_{permission.name.lower()}"
    return dependency


_CHECK_ATTR = "__medops_check__"


def _start(request: Request) -> tuple[str, bool]:
    """Record an anonymous context (so a refusal is audited with its origin) and return
    the credentials."""
    setattr(request.state, CONTEXT_STATE, Context(actor=None, origin=origin_of(request)))
    return _credentials(request)


def _permitted(request: Request, actor: Actor, permission: Permission) -> Context | None:
    """The caller's context when ``actor`` may do this; None when only break-glass allows it;
    raises when nothing does."""
    ctx = Context(actor=actor, origin=origin_of(request))
    setattr(request.state, CONTEXT_STATE, ctx)
    if actor.restriction is not None and permission is not Permission.SELF:
        raise ActionRequiredError(RESTRICTION_HINTS.get(actor.restriction, actor.restriction))
    if actor.can(permission):
        return ctx
    if permission in actor.emergency:
        return None
    raise PermissionDeniedError(f"role {actor.role!r} lacks permission {permission.value!r}")


def _break_glass(request: Request, actor: Actor, permission: Permission) -> Context:
    """Use a running emergency grant: recorded (durably) before the action goes ahead."""
    ctx = Context(actor=replace(actor, auth_method="break-glass"), origin=origin_of(request))
    setattr(request.state, CONTEXT_STATE, ctx)
    route = getattr(request.scope.get("route"), "path", "?")
    get_services(request).breakglass.record_use(ctx, permission, f"{request.method} {route}")
    return ctx


RESTRICTION_HINTS = {
    "password-change": "change your password first (POST /api/v1/auth/password, "
    "or 'medops password')",
    "mfa-enrollment": "your role requires MFA: enroll first (POST /api/v1/auth/mfa/enroll, "
    "or 'medops mfa enroll')",
}


def access_check(route: Any) -> Callable[[Request], Context] | None:
    """The route's ``require(...)`` check as a plain function (it may query the database:
    call it off the event loop), or None for a public or unknown route."""
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        if hasattr(dependant.call, _CHECK_ATTR):
            check: Callable[[Request], Context] = getattr(dependant.call, _CHECK_ATTR)
            return check
        stack.extend(dependant.dependencies)
    return None


def declared_access(dependant_calls: list[Any]) -> tuple[list[Permission], bool]:
    """The permissions and public marker found among a route's dependency callables."""
    permissions = [
        getattr(c, PERMISSION_ATTR) for c in dependant_calls if hasattr(c, PERMISSION_ATTR)
    ]
    return permissions, any(getattr(c, PUBLIC_ATTR, False) for c in dependant_calls)
