"""The one place where exceptions become RFC 9457 problem+json responses.

A failed or refused state-changing request, and any refused authentication, also gets an
audit record here (unless the use case wrote one already), so no attempt goes unrecorded.
Refusals of callers without valid credentials (401, and 429 for a blocked address) are
counted per address, reason and minute (audit/refusals.py) rather than recorded one by one.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import Scope

from medops.api.console.errors import console_error, is_console
from medops.api.deps import CONTEXT_STATE, SAFE_METHODS, access_check, get_services, origin_of
from medops.api.middleware import route_template
from medops.api.problems import PROBLEM_CONTENT_TYPE, problem_body
from medops.audit.schemas import AuditEntry, Outcome
from medops.context import Context
from medops.errors import (
    AuditUnavailableError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    FieldError,
    IntegrityError,
    InvalidInputError,
    MalformedRequestError,
    MedopsError,
    MethodNotAllowedError,
    NotFoundError,
    NotInitializedError,
    PermissionDeniedError,
    RequestTooLargeError,
    ServiceUnavailableError,
    ShedError,
    TooManyAttemptsError,
    clip,
)
from medops.logs import get_logger
from medops.validation import field_errors

log = get_logger("medops.api")

STATUS_OF: dict[type[MedopsError], int] = {
    MalformedRequestError: 400,
    InvalidInputError: 422,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    MethodNotAllowedError: 405,
    ConflictError: 409,
    TooManyAttemptsError: 429,
    RequestTooLargeError: 413,
    AuditUnavailableError: 503,
    ServiceUnavailableError: 503,
    NotInitializedError: 503,
    IntegrityError: 500,
    ConfigurationError: 500,
}


def status_of(exc: MedopsError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def _problem(request: Request, exc: MedopsError, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
    if isinstance(exc, TooManyAttemptsError):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, ShedError):
        headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if isinstance(exc, MethodNotAllowedError):
        headers = {"Allow": ", ".join(allowed_methods(request))}
    return JSONResponse(
        problem_body(
            code=exc.code,
            title=exc.title,
            status=status,
            detail=exc.message,
            request_id=getattr(request.state, "request_id", None),
            errors=exc.errors,
        ),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def allowed_methods(request: Request) -> list[str]:
    """The methods some route accepts at the request's path, for the ``Allow`` header of a
    405 (RFC 9110 15.5.6). Every route is asked: the framework's own 405 names only the
    first route whose path matched, and a path often has one route per method."""
    path = request.url.path
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and compile_path(route.path)[0].match(path):
            methods.update(route.methods or ())
    return sorted(methods)


def _audit_failure(request: Request, exc: MedopsError, status: int) -> None:
    """Record a refused or failed attempt on a route, unless it changes nothing and was not
    refused. Requests that match no route have no action to record (the access log has them)."""
    if not exc.audited:
        _record_failure(request, exc.message, status)


def audit_unhandled(scope: Scope) -> None:
    """Record a request that an unexpected exception ended (the 500 path of
    api/middleware.py) as any failed attempt: a failed change is never left unrecorded."""
    _record_failure(Request(scope), UNHANDLED_REASON, 500)


UNHANDLED_REASON = "the server failed to handle this request (internal error)"


def _record_failure(request: Request, reason: str, status: int) -> None:
    route: Any = request.scope.get("route")
    if route is None:
        return
    refused = status in (401, 403, 429)
    if request.method in SAFE_METHODS and not refused:
        return
    ctx: Context = getattr(request.state, CONTEXT_STATE, None) or Context(
        actor=None, origin=origin_of(request)
    )
    action = getattr(route, "name", None) or "http.request"
    where = f"{request.method} {route_template(request.scope)}"
    if status in (401, 429) and ctx.actor is None:
        # Anyone can send these as fast as they like: counted per address and minute.
        get_services(request).refusals.count(ctx.origin, where, reason)
        return
    entry = AuditEntry(
        action=action,
        outcome=Outcome.DENIED if refused else Outcome.FAILURE,
        resource_type="route",
        resource_id=where,
        reason=reason,
    )
    try:
        get_services(request).audit.record_alone(ctx, entry)
    except AuditUnavailableError:
        log.error("audit record of a failed request could not be written", action=action)


def _check_access_first(request: Request) -> MedopsError | None:
    """FastAPI parses the body before running dependencies; a bad body must not let an
    unauthenticated or unauthorised caller learn more than 401/403 would tell."""
    check = access_check(request.scope.get("route"))
    if check is None:
        return None
    try:
        check(request)
    except (AuthenticationError, PermissionDeniedError) as refusal:
        return refusal
    except SQLAlchemyError:
        return ServiceUnavailableError("the database is unavailable; nothing was changed")
    return None


def handle_medops_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MedopsError)
    ctx: Context | None = getattr(request.state, CONTEXT_STATE, None)
    if isinstance(exc, InvalidInputError) and (ctx is None or ctx.actor is None):
        exc = _check_access_first(request) or exc
    status = status_of(exc)
    if status >= 500:
        log.error("request failed", error=exc.code, detail=exc.message)
    _audit_failure(request, exc, status)
    if is_console(request):
        return console_error(request, exc, status)
    return _problem(request, exc, status)


def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = list(exc.errors())
    if any(p.get("type") == "json_invalid" for p in problems):
        where = next(p for p in problems if p.get("type") == "json_invalid")
        reason = str(where.get("ctx", {}).get("error", "invalid JSON"))
        error: MedopsError = MalformedRequestError(
            f"request body is not valid JSON: {reason}",
            errors=[FieldError("body", reason)],
        )
    else:
        fields = field_errors(problems, _body_model(request))
        error = InvalidInputError(
            f"{len(fields)} invalid field(s): {field_summary(fields)}", errors=fields
        )
    return handle_medops_error(request, error)


def _body_model(request: Request) -> type[BaseModel] | None:
    """The pydantic model of the route's JSON body, to name the field a typo meant."""
    field = getattr(request.scope.get("route"), "body_field", None)
    annotation = getattr(getattr(field, "field_info", None), "annotation", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def field_summary(fields: list[FieldError], shown: int = 5) -> str:
    """The first few bad fields and their reasons, for a one-line message."""
    summary = "; ".join(f"{f.field}: {f.reason}" for f in fields[:shown])
    return summary + (f"; and {len(fields) - shown} more" if len(fields) > shown else "")


def field_name(loc: Any) -> str:
    """A validation error's location as a dotted path, each part (a key the client sent may
    be any length) cut to ECHO_LIMIT characters."""
    parts = [clip(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def handle_http_error(request: Request, exc: Exception) -> Response:
    """Errors raised by the framework itself (routing, body parsing, body limit) as problems."""
    assert isinstance(exc, StarletteHTTPException)
    error: MedopsError
    detail = str(exc.detail)
    if exc.status_code == 404:
        error = NotFoundError(f"no route matches {request.method} {clip(request.url.path, 200)}")
    elif exc.status_code == 405:
        error = MethodNotAllowedError(f"{request.method} is not allowed here")
    elif exc.status_code == 401:
        error = AuthenticationError(detail)
    elif exc.status_code == 403:
        error = PermissionDeniedError(detail)
    elif exc.status_code == 413:
        error = RequestTooLargeError(detail)
    elif exc.status_code < 500:  # 400: a body that cannot be decoded or parsed
        error = MalformedRequestError(
            f"request body cannot be parsed: {detail}", errors=[FieldError("body", detail)]
        )
    else:
        error = ServiceUnavailableError(detail)
    return handle_medops_error(request, error)


def handle_database_error(request: Request, exc: Exception) -> Response:
    """The database failed: unreachable (503), or it refused a value (422). Nothing changed."""
    log.error("database error", error=type(exc).__name__)
    if isinstance(exc, DataError):
        return handle_medops_error(
            request,
            InvalidInputError(
                "a value was refused by the database (for example a NUL character or a number "
                "out of range); nothing was changed"
            ),
        )
    error = ServiceUnavailableError("the database is unavailable; nothing was changed")
    _audit_failure(request, error, 503)
    return _problem(request, error, 503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MedopsError, handle_medops_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(DBAPIError, handle_database_error)
