"""The fast lane for predict requests: the same checks and the same work as the route,
without the framework's per-request machinery (routing through every route, dependency
solving, the exception middleware layers), which costs more than the prediction itself.

``RequestMiddleware`` offers each ``POST`` to the lane first. The lane takes a request to the
predict route's path with a valid deployment name, a declared body within the size limit and
a bearer token. The token is checked as the route's dependency checks it (``authenticate``:
from the auth cache, else once for all concurrent requests bringing it); a refusal is answered
by the app's own error handler, as the route would. The actor must hold the route's own
permission (read from its ``require(...)`` declaration) with no restriction and no break-glass.
Anything else (cookies, restrictions, break-glass, bodies over the limit, a database failure
while checking the token) is declined before any work is done and goes to the route as
usual, with any body already read handed on unchanged.

A request the lane took is answered by ``answer_predict`` (the route's own function); a
refusal from it goes to the app's own error handlers, so the problem document, its audit
record and its metrics are those of the route.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from medops.api.deps import CONTEXT_STATE, PERMISSION_ATTR, access_check
from medops.api.errors import handle_database_error, handle_medops_error
from medops.context import Actor, Context, Origin
from medops.errors import MedopsError
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import Message, Receive, Scope, Send

    from medops.core.permissions import Permission

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
        self._loading: dict[tuple[str, int], asyncio.Future[Actor | MedopsError | None]] = {}

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
        if found is None:
            return receive  # not a predict request
        name = found.group("name")
        secret = self._eligible(scope, name)
        caller = await self._caller(secret) if secret else None
        if caller is None:
            self.stats.declined += 1
            return receive
        client = scope.get("client")
        origin = Origin(
            source_ip=client[0] if client else None,
            user_agent=_header(scope, b"user-agent") or None,
            request_id=scope.get("state", {}).get("request_id"),
        )
        scope.update(route=route, endpoint=route.endpoint, path_params={"name": name})
        if isinstance(caller, MedopsError):  # refused: answered as the route's check would
            self.stats.taken += 1
            await self._refuse(scope, receive, send, Context(actor=None, origin=origin), caller)
            return None
        return await self._serve(scope, receive, send, name, Context(actor=caller, origin=origin))

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, name: str, ctx: Context
    ) -> Receive | None:
        """Answer a caller who holds the permission; decline anyone else (see __call__)."""
        caller = ctx.actor
        assert caller is not None
        assert self._permission is not None
        if caller.restriction is not None or not caller.can(self._permission):
            self.stats.declined += 1  # restricted, refused or break-glass: the route decides
            return receive
        messages, body = await self._body(receive)
        if body is None:
            self.stats.declined += 1
            return _replay(messages, receive)
        self.stats.taken += 1
        fhir = FHIR_JSON in _header(scope, b"accept")
        from medops.api.routers.deployments import answer_predict

        try:
            response = await answer_predict(self._app.state.predictor, ctx, name, body, fhir=fhir)
        except (MedopsError, DBAPIError) as exc:
            await self._refuse(scope, _replay(messages, receive), send, ctx, exc)
            return None
        await response(scope, receive, send)
        return None

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Receive, send: Send, ctx: Context, exc: Exception
    ) -> None:
        """Answer with the app's own error handler, as the route would have."""
        request = Request(scope, receive)
        setattr(request.state, CONTEXT_STATE, ctx)
        handler = handle_medops_error if isinstance(exc, MedopsError) else handle_database_error
        response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)

    def _eligible(self, scope: Scope, name: str) -> str | None:
        """The bearer token when the request is the lane's kind; None to decline."""
        if not name or not NAME.fullmatch(name):
            return None
        declared = _header(scope, b"content-length")
        if not declared.isdigit() or int(declared) > self._max_body:
            return None
        scheme, _, secret = _header(scope, b"authorization").partition(" ")
        secret = secret.strip()
        return secret if scheme.lower() == "bearer" and secret else None

    async def _caller(self, secret: str) -> Actor | MedopsError | None:
        """The token's actor (from the cache, else checked once for all the requests that
        bring it at the same time: when the cache entry of a busy token lapses, every request
        in flight would otherwise query at once), its refusal, or None when the database
        failed (the route then answers)."""
        logins = self._app.state.services.logins
        actor: Actor | None = logins.cached_actor(secret, via_cookie=False, csrf=None, unsafe=True)
        if actor is not None:
            return actor
        # Join only a check that started after the last change to users, tokens or grants:
        # one that read the rows before a revocation must not answer a later request.
        key = (secret, logins.cache.generation)
        pending = self._loading.get(key)
        if pending is None or pending.done():
            pending = asyncio.ensure_future(run_in_threadpool(self._check_token, secret))
            self._loading[key] = pending
            pending.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(pending)

    def _forget(self, key: tuple[str, int], done: asyncio.Future[Any]) -> None:
        if self._loading.get(key) is done:
            del self._loading[key]

    def _check_token(self, secret: str) -> Actor | MedopsError | None:
        try:
            actor: Actor = self._app.state.services.logins.authenticate(
                secret, via_cookie=False, csrf=None, unsafe=True
            )
        except MedopsError as refusal:
            return refusal
        except SQLAlchemyError:
            return None
        return actor

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
