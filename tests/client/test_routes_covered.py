"""Every route of the API is reachable through a method of the SDK, or is listed here as
deliberately API-only with the reason; a new route without either fails this test."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import medops.client
from medops.api.console.errors import CONSOLE_TAG
from tests.helpers.routes import all_routes

CLIENT = Path(medops.client.__file__).parent

# Routes no SDK method calls, on purpose.
API_ONLY = {
    ("GET", "/healthz"): "liveness probe for the orchestrator (Kubernetes), not a user action",
    ("GET", "/openapi.json"): "the API's own description, read by tools, not by people",
    ("GET", "/metrics"): "Prometheus' scrape endpoint",
    ("POST", "/api/v1/auth/session"): "the browser's login (cookie and CSRF token); the SDK "
    "logs in for a bearer token with POST /api/v1/auth/token",
}

# The console's pages (and its static files) answer browsers, not programs: every action a
# page offers is an API route the SDK covers (tagged CONSOLE_TAG, left out below).

SENDERS = {"_call", "_raw", "_send", "_stream"}


def _template(node: ast.expr) -> str | None:
    """A path as the routes write it, with every placeholder as ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                parts.append("{}")
        return "".join(parts)
    return None


def _helpers() -> dict[str, ast.FunctionDef]:
    """The SDK's functions and methods by name (``_path``, ``_version_path``, ...)."""
    found: dict[str, ast.FunctionDef] = {}
    for source in CLIENT.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.FunctionDef):
                found[node.name] = node
    return found


HELPERS = _helpers()


def _paths(node: ast.expr, function: ast.FunctionDef) -> list[str]:
    """The paths an argument can be: a literal, an f-string, a local name assigned one (or a
    conditional choice of two) in the same method, a path helper's answer, or a sum of these."""
    found = _template(node)
    if found is not None:
        return [found]
    if isinstance(node, ast.IfExp):
        return _paths(node.body, function) + _paths(node.orelse, function)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return [
            left + right
            for left in _paths(node.left, function)
            for right in _paths(node.right, function)
        ]
    if isinstance(node, ast.Call):
        callee = node.func
        name = callee.id if isinstance(callee, ast.Name) else getattr(callee, "attr", "")
        helper = HELPERS.get(name)
        if helper is not None and helper is not function:
            return [
                path
                for statement in ast.walk(helper)
                if isinstance(statement, ast.Return) and statement.value is not None
                for path in _paths(statement.value, helper)
            ]
    if isinstance(node, ast.Name):
        values: list[str] = []
        for statement in ast.walk(function):
            if isinstance(statement, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == node.id for t in statement.targets
            ):
                values += _paths(statement.value, function)
        return values
    return []


def sdk_calls() -> set[tuple[str, str]]:
    """(method, path template) of every request the SDK's methods make."""
    calls: set[tuple[str, str]] = set()
    for source in CLIENT.glob("*.py"):
        tree = ast.parse(source.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                name = node.func.attr
                if name in SENDERS and len(node.args) >= 2:
                    method = node.args[0]
                    if isinstance(method, ast.Constant) and isinstance(method.value, str):
                        calls |= {(method.value, p) for p in _paths(node.args[1], function)}
                elif name in {"get", "post", "put", "delete", "patch", "stream"} and node.args:
                    owner = node.func.value
                    if isinstance(owner, ast.Attribute) and owner.attr == "_http":
                        verb = name.upper()
                        if name == "stream" and len(node.args) >= 2:
                            verb = str(getattr(node.args[0], "value", ""))
                            calls |= {(verb, p) for p in _paths(node.args[1], function)}
                        else:
                            calls |= {(verb, p) for p in _paths(node.args[0], function)}
    return calls


def _normal(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_every_route_is_reachable_through_the_sdk() -> None:
    """Each (method, path) of the app has an SDK method that calls it, or an API-only reason."""
    calls = {(m, _normal(p)) for m, p in sdk_calls()}
    missing = [
        f"{method} {path}"
        for method, path, route in all_routes()
        if (method, path) not in API_ONLY
        and CONSOLE_TAG not in route.tags
        and (method, _normal(path)) not in calls
    ]
    assert missing == []


def test_the_sdk_calls_only_routes_that_exist() -> None:
    """No SDK method calls a path the app does not serve (a renamed route breaks it here)."""
    routes = {(m, _normal(p)) for m, p, _ in all_routes()}
    strays = sorted(f"{m} {p}" for m, p in sdk_calls() if (m, _normal(p)) not in routes)
    assert strays == []


def test_api_only_routes_exist() -> None:
    """Each API-only exception names a route the app really has."""
    routes = {(m, p) for m, p, _ in all_routes()}
    assert set(API_ONLY) <= routes
