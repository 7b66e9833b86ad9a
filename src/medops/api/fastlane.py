"""The fast lane for predict requests: the same checks and the same work as the route,
without the framework's per-request machinery (routing through every route, dependency
solving, the exception middleware layers), which costs more than the prediction itself.

``RequestMiddleware`` offers each request to the lane first. The lane takes a request only
when nothing about it needs the framework: ``POST`` to the predict route's path with a valid
deployment name, a bearer token the auth cache holds and lets in now (no query, nothing to
write), whose actor holds the route's own permission (read from its ``require(...)``
declaration) without restriction or break-glass, and a declared body within the size limit.
Anything else is declined before any work is done and goes to the route as usual (a body
already read is handed on unchanged), which then decides it in full: authentication,
refusals, break-glass, 401/403/413/422 and their audit records.

A request the lane took is answered by ``answer_predict`` (the route's own function); a
refusal from it goes to the app's own error handlers, so the problem document, its audit
record and its metrics are those of the route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from medops.api.deps import CONTEXT_STATE, PERMISSION_ATTR, access_check
from medops.api.errors import handle_database_error, handle_medops_error
from medops.context import Context, Origin
from medops.errors import MedopsError
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Message, Receive, Scope, Send

    from medops.auth.permissions import Permission

PREDICT_ROUTE = "deployments.predict"
NAME = re.compile(DEPLOYMENT_NAME_PATTERN)
FHIR_JSON = "application/fhir+json"


@dataclass
class FastLaneStats:
    taken: int = 0
    declined: int = 0


class PredictFastLane:
    """Answers the predict requests that need nothing of the framework; declines the rest."""

    def __init__(self, app: FastAPI, max_body_bytes: int) -> None:
        self._app = app
        self._max_body = max_body_bytes
        self._route: Any = None
        self._permission: Permission | None = None
        self.stats = FastLaneStats()

    def _resolve(self) -> Any:
        """The predict route and its permission (found once, lazily: the routes exist only
        after the app is built)."""
        if self._route is None:
            route = next(
                c.original_route
                for c in iter_route_contexts(self._app.routes)
                if getattr(c.original_route, "name", None) == PREDICT_ROUTE
            )
            check = access_check(route)
            assert check is not None, "the predict route must declare require(...)"
            self._permission = getattr(check, PERMISSION_ATTR)
            self._route = route
        return self._route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Answer the request and return None; or decline it and return the ``receive`` the
        app must use (it replays what the lane read of the body)."""
        route = self._resolve()
        found = route.path_regex.match(scope["path"]) if scope["method"] == "POST" else None
        name = found.group("name") if found else ""
        ctx = self._context(scope, name)
        if ctx is None:
            self.stats.declined += 1
            return receive
        messages, body = await self._body(receive)
        if body is None:
            self.stats.declined += 1
            return _replay(messages, receive)
        self.stats.taken += 1
        scope.update(route=route, endpoint=route.endpoint, path_params={"name": name})
        fhir = FHIR_JSON in _header(scope, b"accept")
        from medops.api.routers.deployments import answer_predict

        try:
            response = await answer_predict(self._app.state.predictor, ctx, name, body, fhir=fhir)
        except (MedopsError, DBAPIError) as exc:
            request = Request(scope, _replay(messages, receive))
            setattr(request.state, CONTEXT_STATE, ctx)
            handler = handle_medops_error if isinstance(exc, MedopsError) else handle_database_error
            response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)
        return None

    def _context(self, scope: Scope, name: str) -> Context | None:
        """The caller's context when the lane may take the request; None to decline."""
        assert self._permission is not None
        if not name or not NAME.match(name):
            return None
        declared = _header(scope, b"content-length")
        if not declared.isdigit() or int(declared) > self._max_body:
            return None
        scheme, _, secret = _header(scope, b"authorization").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        actor = self._app.state.services.logins.cached_actor(
            secret.strip(), via_cookie=False, csrf=None, unsafe=True
        )
        if actor is None or actor.restriction is not None or not actor.can(self._permission):
            return None
        client = scope.get("client")
        origin = Origin(
            source_ip=client[0] if client else None,
            user_agent=_header(scope, b"user-agent") or None,
            request_id=scope.get("state", {}).get("request_id"),
        )
        return Context(actor=actor, origin=origin)

    async def _body(self, receive: Receive) -> tuple[list[Message], bytes | None]:
        """The messages read and the whole body; None for the body when it went past the
        limit or the client left (the route then sees the same messages and says so)."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages, None
            size += len(message.get("body", b""))
            if size > self._max_body:
                return messages, None
            if not message.get("more_body", False):
                return messages, b"".join(m.get("body", b"") for m in messages)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that first gives back the messages already read, then the real ones."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return ""
