"""The outermost layer of every request: request id, access log, metrics, last-resort 500.

Written as plain ASGI (no BaseHTTPMiddleware) to keep the hot path short.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medops.api.headers import secured
from medops.api.problems import problem_bytes
from medops.api.telemetry import HttpMetrics
from medops.logs import get_logger

if TYPE_CHECKING:
    from medops.api.fastlane import PredictFastLane

REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"

log = get_logger("medops.http")


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/api/v1/users/{username}``), never the raw path."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class RequestMiddleware:
    """Assigns the request id, times the request, logs it and counts it."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: HttpMetrics,
        max_body_bytes: int,
        fast_lane: PredictFastLane | None = None,
        on_unhandled: Callable[[Scope], None] | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.fast_lane = fast_lane
        # Called (in a worker thread) before the 500 answer of an unexpected exception: the
        # app audits the failed attempt there (api/errors.py ``audit_unhandled``).
        self.on_unhandled = on_unhandled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [
                    h for h in message.get("headers", []) if h[0].lower() != REQUEST_ID_HEADER
                ]
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                message["headers"] = secured(headers)
            await send(message)

        try:
            if self.fast_lane is not None and scope["method"] == "POST":
                declined = await self.fast_lane(scope, receive, send_wrapper)
                if declined is None:
                    return  # answered (the finally below still logs and counts it)
                receive = declined
            await self.app(scope, self._limited(scope, receive), send_wrapper)
        except Exception:
            log.exception("unhandled error", route=route_template(scope))
            if self.on_unhandled is not None:
                try:
                    await run_in_threadpool(self.on_unhandled, scope)
                except Exception:
                    log.exception("the failed request could not be audited")
            if not response_started:
                body = problem_bytes(
                    code="internal-error",
                    title="Internal server error",
                    status=500,
                    detail="the server failed to handle this request; quote the request id",
                    request_id=request_id,
                )
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/problem+json")],
                    }
                )
                await send_wrapper({"type": "http.response.body", "body": body})
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status, seconds)
            log.info(
                "request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 3),
            )
            structlog.contextvars.unbind_contextvars("request_id")

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """``receive`` that refuses a body over the limit (declared or streamed) with 413,
        raised where the body is read: after routing, so the refusal is authorised and
        audited like any other bad input, and before the body is buffered."""
        limit = self.max_body_bytes
        declared = _header(scope, b"content-length")
        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise HTTPException(413, f"request body over the limit of {limit} bytes")
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, f"request body over the limit of {limit} bytes")
            return message

        return receive_limited


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    candidate = _header(scope, REQUEST_ID_HEADER)
    return candidate if candidate and _VALID_REQUEST_ID.match(candidate) else None
