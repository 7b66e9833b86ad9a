"""The app's routes and the access each declares, as the permission tests enumerate them."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from medops.api.app import create_app
from medops.api.deps import declared_access
from medops.config import Settings
from medops.core.permissions import Permission


def _api_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    routes: list[tuple[str, str, APIRoute]] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        assert isinstance(route, APIRoute), f"{context.path} is not an APIRoute: undeclared access"
        routes.extend((method, route.path, route) for method in sorted(route.methods or ()))
    return routes


def declaration(route: APIRoute) -> tuple[list[Permission], bool]:
    calls = []
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is not None:
            calls.append(dependant.call)
        stack.extend(dependant.dependencies)
    return declared_access(calls)


def all_routes() -> list[tuple[str, str, APIRoute]]:
    return _api_routes(create_app(Settings(home="/nonexistent", database_url="sqlite://")))


def protected_routes() -> list[tuple[str, str, Permission]]:
    result = []
    for method, path, route in all_routes():
        permissions, public = declaration(route)
        if not public:
            result.append((method, path, permissions[0]))
    return result


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nobody", path)
