"""Training over HTTP: a model's training spec, runs (request, claim, finish, logs, the
Kubernetes Job manifest), triggers (create, pause, resume, evaluate) and their events.

Reading needs ``training:read``; requesting, claiming and finishing a run ``training:run``;
the spec and the triggers ``training:configure``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.retraining.job_schemas import (
    EvaluationOut,
    RunLogs,
    RunOut,
    RunRecord,
    RunRequest,
    RunStatus,
    TrainingSpec,
    TrainingSpecOut,
    TriggerEventOut,
    TriggerIn,
    TriggerOut,
)
from medops.retraining.k8s import render_job

router = APIRouter(tags=["training"])
Reader = Annotated[Context, Depends(require(Permission.TRAINING_READ))]
Runner = Annotated[Context, Depends(require(Permission.TRAINING_RUN))]
Configurer = Annotated[Context, Depends(require(Permission.TRAINING_CONFIGURE))]
ModelName = Annotated[str, Path(min_length=1, max_length=64)]
RunId = Annotated[str, Path(pattern=r"^tr_[0-9a-f]{16}$")]
TriggerId = Annotated[str, Path(pattern=r"^tt_[0-9a-f]{16}$")]
PREFIX = f"{API_PREFIX}/training"


class PauseIn(BaseModel):
    """Why a trigger is paused or resumed (kept in the audit record)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


@router.put(f"{PREFIX}/models/{{model}}/spec", name="training.configure")
def configure(
    model: ModelName, body: TrainingSpec, services: ServicesDep, ctx: Configurer
) -> TrainingSpecOut:
    """Store a new version of the model's training spec (audited ``training.configure``)."""
    return services.training.configure(ctx, model, body)


@router.get(f"{PREFIX}/models/{{model}}/spec", name="training.spec")
def spec(model: ModelName, services: ServicesDep, _ctx: Reader) -> TrainingSpecOut:
    """The model's current training spec."""
    return services.training.spec(model)


@router.post(f"{PREFIX}/models/{{model}}/runs", name="training.request", status_code=201)
def request_run(model: ModelName, body: RunRequest, services: ServicesDep, ctx: Runner) -> RunOut:
    """Queue a run on the newest (or the named) version of the spec's dataset: a person's
    trigger. 409 ``training-busy`` while another run of the model is active."""
    return services.training.request(ctx, model, body)


@router.get(f"{PREFIX}/runs", name="training.runs")
def runs(
    services: ServicesDep,
    _ctx: Reader,
    model: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[RunStatus] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RunOut]:
    """Runs, newest first."""
    return services.training.runs(model, statuses=status or (), limit=limit)


@router.get(f"{PREFIX}/runs/{{run_id}}", name="training.run")
def run(run_id: RunId, services: ServicesDep, _ctx: Reader) -> RunOut:
    """One run: its pinned data, parameters, record and candidate version."""
    return services.training.run(run_id)


@router.get(f"{PREFIX}/runs/{{run_id}}/logs", name="training.logs")
def logs(run_id: RunId, services: ServicesDep, _ctx: Reader) -> RunLogs:
    """One run's captured output."""
    return services.training.logs(run_id)


@router.get(f"{PREFIX}/runs/{{run_id}}/job", name="training.job")
def job(run_id: RunId, services: ServicesDep, _ctx: Reader) -> dict[str, Any]:
    """The run as a Kubernetes Job manifest (``kubectl apply`` it; the pod runs
    ``medops train execute RUN``)."""
    return render_job(services.training.run(run_id), services.settings)


@router.post(f"{PREFIX}/runs/{{run_id}}/start", name="training.start")
def start(run_id: RunId, services: ServicesDep, ctx: Runner) -> RunOut:
    """A runner takes a queued run (409 when another took it)."""
    return services.training.claim(ctx, run_id)


@router.post(f"{PREFIX}/runs/{{run_id}}/finish", name="training.finish")
def finish(run_id: RunId, body: RunRecord, services: ServicesDep, ctx: Runner) -> RunOut:
    """A runner reports how the run ended: candidate version, code commit, environment,
    logs, error."""
    return services.training.finish(ctx, run_id, body)


@router.get(f"{PREFIX}/triggers", name="training.triggers")
def triggers(
    services: ServicesDep,
    _ctx: Reader,
    model: Annotated[str | None, Query(max_length=64)] = None,
) -> list[TriggerOut]:
    """Triggers of one model or all."""
    return services.training_triggers.triggers(model)


@router.post(f"{PREFIX}/triggers", name="training.trigger.create", status_code=201)
def create_trigger(body: TriggerIn, services: ServicesDep, ctx: Configurer) -> TriggerOut:
    """Add a trigger (schedule, monitoring verdict, labelled data, manual)."""
    return services.training_triggers.create(ctx, body)


@router.post(f"{PREFIX}/triggers/evaluate", name="training.evaluate")
async def evaluate(services: ServicesDep, ctx: Configurer) -> EvaluationOut:
    """Evaluate every trigger now (what the server's scheduled job does)."""
    return await run_in_threadpool(services.training_triggers.evaluate, ctx)


@router.post(f"{PREFIX}/triggers/{{trigger_id}}/pause", name="training.trigger.pause")
def pause(
    trigger_id: TriggerId, body: PauseIn, services: ServicesDep, ctx: Configurer
) -> TriggerOut:
    """Pause a trigger: it fires no more until resumed."""
    return services.training_triggers.set_paused(ctx, trigger_id, paused=True, reason=body.reason)


@router.post(f"{PREFIX}/triggers/{{trigger_id}}/resume", name="training.trigger.resume")
def resume(
    trigger_id: TriggerId, body: PauseIn, services: ServicesDep, ctx: Configurer
) -> TriggerOut:
    """Resume a trigger: it looks at what happens from now on."""
    return services.training_triggers.set_paused(ctx, trigger_id, paused=False, reason=body.reason)


@router.get(f"{PREFIX}/events", name="training.events")
def events(
    services: ServicesDep,
    _ctx: Reader,
    model: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TriggerEventOut]:
    """Trigger events (fired, deduplicated, failed), newest first."""
    return services.training.events(model, limit=limit)
