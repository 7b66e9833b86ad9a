"""The one place where exceptions become RFC 9457 problem+json responses.

A failed or refused state-changing request, and any refused authentication, also gets an
audit record here (unless the use case wrote one already), so no attempt goes unrecorded.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from medops.api.deps import CONTEXT_STATE, get_services, origin_of
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
    ServiceUnavailableError,
)
from medops.logs import get_logger

log = get_logger("medops.api")

STATUS_OF: dict[type[MedopsError], int] = {
    MalformedRequestError: 400,
    InvalidInputError: 422,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    MethodNotAllowedError: 405,
    ConflictError: 409,
    AuditUnavailableError: 503,
    ServiceUnavailableError: 503,
    NotInitializedError: 503,
    IntegrityError: 500,
    ConfigurationError: 500,
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def status_of(exc: MedopsError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    return 500


def _problem(request: Request, exc: MedopsError, status: int) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 503:
        headers = {"Retry-After": "5"}
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


def _audit_failure(request: Request, exc: MedopsError, status: int) -> None:
    """Record a refused or failed attempt, unless it changes nothing and was not refused."""
    if exc.audited:
        return
    refused = status in (401, 403)
    if request.method in SAFE_METHODS and not refused:
        return
    ctx: Context = getattr(request.state, CONTEXT_STATE, None) or Context(
        actor=None, origin=origin_of(request)
    )
    route: Any = request.scope.get("route")
    action = getattr(route, "name", None) or "http.request"
    entry = AuditEntry(
        action=action,
        outcome=Outcome.DENIED if refused else Outcome.FAILURE,
        resource_type="route",
        resource_id=f"{request.method} {route_template(request.scope)}",
        reason=exc.message,
    )
    try:
        get_services(request).audit.record_alone(ctx, entry)
    except AuditUnavailableError:
        log.error("audit record of a failed request could not be written", action=action)


def handle_medops_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MedopsError)
    status = status_of(exc)
    if status >= 500:
        log.error("request failed", error=exc.code, detail=exc.message)
    _audit_failure(request, exc, status)
    return _problem(request, exc, status)


def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
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
        fields = [
            FieldError(_field_name(p.get("loc", ())), str(p.get("msg", "invalid")))
            for p in problems
        ]
        summary = "; ".join(f"{f.field}: {f.reason}" for f in fields)
        error = InvalidInputError(f"{len(fields)} invalid field(s): {summary}", errors=fields)
    return handle_medops_error(request, error)


def _field_name(loc: Any) -> str:
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error: MedopsError
    if exc.status_code == 404:
        error = NotFoundError(f"no route matches {request.method} {request.url.path}")
    elif exc.status_code == 405:
        error = MethodNotAllowedError(f"{request.method} is not allowed here")
    elif exc.status_code in (401, 403):
        error = (
            AuthenticationError(str(exc.detail))
            if exc.status_code == 401
            else PermissionDeniedError(str(exc.detail))
        )
    elif exc.status_code >= 500:
        error = ServiceUnavailableError(str(exc.detail))
    else:
        error = InvalidInputError(str(exc.detail))
    response = handle_medops_error(request, error)
    if exc.status_code not in (401, 403, 404, 405, 422) and exc.status_code < 500:
        response.status_code = exc.status_code
        body = problem_body(
            code=error.code,
            title=error.title,
            status=exc.status_code,
            detail=error.message,
            request_id=getattr(request.state, "request_id", None),
        )
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_CONTENT_TYPE)
    return response


def handle_database_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("database error", error=type(exc).__name__)
    error = ServiceUnavailableError("the database is unavailable; nothing was changed")
    return _problem(request, error, 503)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MedopsError, handle_medops_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(OperationalError, handle_database_error)
    app.add_exception_handler(DBAPIError, handle_database_error)
