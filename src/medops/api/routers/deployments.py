"""Deployments, predictions and outcomes: the inference service's HTTP surface."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.api.errors import status_of
from medops.context import Context
from medops.core.permissions import Permission
from medops.errors import InvalidInputError, MedopsError, ServiceUnavailableError, ShedError
from medops.serving.predict import Predictor
from medops.serving.runtime import ServingRuntime
from medops.serving.schemas import (
    DEPLOYMENT_NAME_PATTERN,
    LOOKBACK_DAYS_DEFAULT,
    LOOKBACK_DAYS_MAX,
    CanaryRequest,
    DeploymentCreate,
    DeploymentEventOut,
    DeploymentOut,
    DeploymentRollbackRequest,
    ExplainRequest,
    ExplanationOut,
    OutcomeIn,
    OutcomeMatchIn,
    OutcomeOut,
    OutcomeUploadOut,
    PredictLimits,
    ShadowRequest,
)

router = APIRouter(tags=["deployments"])
# The predict route alone, so the app can match it before any other (the hot path).
predict_router = APIRouter(tags=["deployments"])
PREFIX = f"{API_PREFIX}/deployments"
FHIR_JSON = "application/fhir+json"
UNKNOWN = "<unknown>"

Name = Annotated[str, Path(pattern=DEPLOYMENT_NAME_PATTERN)]
PredictionId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
Read = Annotated[Context, Depends(require(Permission.DEPLOYMENTS_READ))]
Manage = Annotated[Context, Depends(require(Permission.DEPLOYMENTS_MANAGE))]
Predict = Annotated[Context, Depends(require(Permission.PREDICT))]
Outcomes = Annotated[Context, Depends(require(Permission.OUTCOMES_WRITE))]
Audit = Annotated[Context, Depends(require(Permission.AUDIT_READ))]


def _runtime(request: Request) -> ServingRuntime:
    runtime: ServingRuntime = request.app.state.runtime
    return runtime


def _with_live(request: Request, out: DeploymentOut) -> DeploymentOut:
    out.live = _runtime(request).live(out.name)
    return out


@router.get(PREFIX, name="deployments.list")
def list_deployments(services: ServicesDep, _ctx: Read) -> list[DeploymentOut]:
    """Every deployment and what it serves now."""
    return services.deployments.all()


@router.post(PREFIX, name="deployments.create", status_code=201)
def create_deployment(
    body: DeploymentCreate, request: Request, services: ServicesDep, ctx: Manage
) -> DeploymentOut:
    """A new endpoint bound to ``name@alias`` (followed) or ``name/N`` (pinned; it must pass
    the gates of ``production``)."""
    return _with_live(request, services.deployments.create(ctx, body))


@router.get(f"{PREFIX}/{{name}}", name="deployments.get")
def get_deployment(
    name: Name, request: Request, services: ServicesDep, _ctx: Read
) -> DeploymentOut:
    """A deployment, the version it resolves to now, and this server's live figures per arm."""
    return _with_live(request, services.deployments.get(name))


@router.get(f"{PREFIX}/{{name}}/history", name="deployments.history")
def deployment_history(name: Name, services: ServicesDep, _ctx: Read) -> list[DeploymentEventOut]:
    """Every change of a deployment, oldest first."""
    return services.deployments.history(name)


@router.put(f"{PREFIX}/{{name}}/canary", name="deployments.canary")
def set_canary(
    name: Name, body: CanaryRequest, request: Request, services: ServicesDep, ctx: Manage
) -> DeploymentOut:
    """Send a share of records (sticky per patient) to a candidate that passes the gates;
    percent 0 ends the canary."""
    return _with_live(request, services.deployments.set_canary(ctx, name, body))


@router.put(f"{PREFIX}/{{name}}/shadow", name="deployments.shadow")
def set_shadow(
    name: Name, body: ShadowRequest, request: Request, services: ServicesDep, ctx: Manage
) -> DeploymentOut:
    """Score a copy of every record with a version (logged, never returned); null stops."""
    return _with_live(request, services.deployments.set_shadow(ctx, name, body))


@router.put(f"{PREFIX}/{{name}}/explain", name="deployments.explain")
def set_explain(
    name: Name, body: ExplainRequest, request: Request, services: ServicesDep, ctx: Manage
) -> DeploymentOut:
    """Explain every prediction (``always`` true) or only those whose request asks."""
    return _with_live(request, services.deployments.set_explain(ctx, name, body))


@router.get(
    f"{API_PREFIX}/predictions/{{prediction_id}}/explanation", name="predictions.explanation"
)
def prediction_explanation(
    prediction_id: PredictionId, services: ServicesDep, ctx: Audit
) -> ExplanationOut:
    """What the prediction log holds of an explained prediction: every feature's
    contribution, those the answer showed, and whether it matches its audit record. Audited
    ``explanation.read`` with the patient reference."""
    return services.explanations.get(ctx, prediction_id)


@router.post(f"{PREFIX}/{{name}}/rollback", name="deployments.rollback")
def rollback_deployment(
    name: Name,
    body: DeploymentRollbackRequest,
    request: Request,
    services: ServicesDep,
    ctx: Manage,
) -> DeploymentOut:
    """End the canary at once; without one, move the deployment back (a followed alias is
    rolled back through the registry's gated rollback)."""
    return _with_live(request, services.deployments.rollback(ctx, name, body))


@router.get(f"{PREFIX}/{{name}}/predict-limits", name="deployments.predict-limits")
async def predict_limits(
    name: Name, request: Request, services: ServicesDep, _ctx: Predict
) -> PredictLimits:
    """What one predict request to the deployment may hold (records, bytes) and the
    features each record needs: a client sends larger inputs in batches within these."""
    predictor: Predictor = request.app.state.predictor
    route = await predictor.current(name)
    if route.primary is None:
        raise ServiceUnavailableError(
            f"deployment {route.name} serves nothing: {route.target} points at no version"
        )
    features = list(route.primary.signature.feature_names)
    if route.canary is not None:
        features += [f for f in route.canary.signature.feature_names if f not in features]
    settings = services.settings
    return PredictLimits(
        deployment=route.name,
        max_records=settings.serving_max_records,
        max_request_bytes=settings.max_request_bytes,
        features=features,
    )


_ERROR_KINDS = (
    (ShedError, "overloaded"),
    (InvalidInputError, "invalid-input"),
    (ServiceUnavailableError, "unavailable"),
)


@predict_router.post(f"{PREFIX}/{{name}}/predict", name="deployments.predict", response_model=None)
async def predict(name: Name, request: Request, ctx: Predict) -> Response:
    """Score one record (``{"features": {...}}``) or several (``{"records": [...]}``).
    Answers JSON, or a FHIR R4 RiskAssessment (Bundle for several) when the request accepts
    ``application/fhir+json``. Every prediction is logged durably before the answer."""
    fhir = FHIR_JSON in request.headers.get("accept", "")
    body = await request.body()
    return await answer_predict(request.app.state.predictor, ctx, name, body, fhir=fhir)


async def answer_predict(
    predictor: Predictor, ctx: Context, name: str, body: bytes, *, fhir: bool
) -> Response:
    """The predict route's work once the caller is known to hold ``predict``: shared by the
    route and by the fast lane (api/fastlane.py). Counts the request in the metrics; a
    refusal is raised for the error handler."""
    metrics = predictor.metrics
    usage = predictor.usage
    started = time.perf_counter()
    version = ""
    label = UNKNOWN  # metric labels only ever name deployments that exist
    try:
        route = await predictor.current(name)
        label = name
        version = str(route.primary.version) if route.primary else ""
        answer = await predictor.predict(ctx, route, body, fhir=fhir)
    except MedopsError as exc:
        status = status_of(exc)
        metrics.requests.labels(label, version, str(status)).inc()
        kind = next((k for cls, k in _ERROR_KINDS if isinstance(exc, cls)), exc.code)
        metrics.errors.labels(label, kind).inc()
        shed = isinstance(exc, ShedError)
        if shed:
            metrics.shed.labels(label).inc()
        if usage is not None and label != UNKNOWN:
            usage.request(label, status, time.perf_counter() - started, shed=shed)
        raise
    metrics.requests.labels(label, version, "200").inc()
    if usage is not None:
        usage.request(label, 200, time.perf_counter() - started)
    return JSONResponse(answer, media_type=FHIR_JSON if fhir else None)


@router.post(
    f"{API_PREFIX}/predictions/{{prediction_id}}/outcome",
    name="predictions.outcome",
    status_code=201,
)
def record_outcome(
    prediction_id: PredictionId, body: OutcomeIn, services: ServicesDep, ctx: Outcomes
) -> OutcomeOut:
    """Attach the ground truth to a prediction; the same outcome again changes nothing."""
    return services.outcomes.record(ctx, prediction_id, body)


@router.post(f"{PREFIX}/{{name}}/outcomes", name="deployments.outcome", status_code=201)
def record_outcome_for_patient(
    name: Name, body: OutcomeMatchIn, services: ServicesDep, ctx: Outcomes
) -> OutcomeOut:
    """Attach the ground truth to the prediction of a patient on this deployment, found by
    time: the latest (shadow ones excluded) at or before ``observed_at`` within
    ``lookback_days``, or within ``predicted_from``..``predicted_to``; none, or two at the
    same time, is a 422."""
    services.deployments.get(name)  # 404 for an unknown deployment
    return services.outcomes.record_for_patient(ctx, name, body)


@router.post(f"{API_PREFIX}/outcomes", name="outcomes.upload")
async def upload_outcomes(
    request: Request,
    services: ServicesDep,
    ctx: Outcomes,
    deployment: Annotated[str | None, Query(pattern=DEPLOYMENT_NAME_PATTERN)] = None,
    lookback_days: Annotated[float, Query(gt=0, le=LOOKBACK_DAYS_MAX)] = LOOKBACK_DAYS_DEFAULT,
) -> OutcomeUploadOut:
    """Attach outcomes from a CSV body: a ``label`` column, and ``prediction_id`` or
    ``patient_ref`` (with ``deployment``, as a column or this parameter, and
    ``observed_at`` or ``predicted_from``/``predicted_to``), plus optional ``observed_at``.
    Every row is checked first; one bad row stores nothing and every problem is listed."""
    body = await request.body()
    return await run_in_threadpool(
        services.outcomes.upload, ctx, body, deployment=deployment, lookback_days=lookback_days
    )
