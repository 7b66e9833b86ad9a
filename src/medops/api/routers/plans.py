"""Change-control plans, candidate reports (challenger against champion) and the rollouts a
plan allows (retraining/plans.py, comparison.py, rollout.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from medops.api.deps import API_PREFIX, ServicesDep, require
from medops.context import Context
from medops.core.permissions import Permission
from medops.registry.schemas import MODEL_NAME_PATTERN
from medops.retraining.plan_schemas import (
    CandidateReport,
    EvaluateRequest,
    PlanOut,
    PlanSignRequest,
    PlanSpec,
    RolloutOut,
    RolloutStart,
)

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["plans"])
jobs = APIRouter(prefix=f"{API_PREFIX}/rollouts", tags=["plans"])

Name = Annotated[str, Path(pattern=MODEL_NAME_PATTERN)]
Number = Annotated[int, Path(ge=1, le=1_000_000_000)]
ReportId = Annotated[str, Path(pattern=r"^cand_[0-9a-f]{16}$")]
RolloutId = Annotated[str, Path(pattern=r"^roll_[0-9a-f]{16}$")]
Read = Annotated[Context, Depends(require(Permission.TRAINING_READ))]
Run = Annotated[Context, Depends(require(Permission.TRAINING_RUN))]


class AbortRequest(BaseModel):
    """Stop a rollout by hand, with the reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500)


@router.get("/{name}/plans", name="plans.list")
def list_plans(name: Name, services: ServicesDep, _ctx: Read) -> list[PlanOut]:
    """Every version of the model's change-control plan, newest first."""
    return services.plans.all(name)


@router.post("/{name}/plans", name="plans.create", status_code=201)
def create_plan(
    name: Name,
    body: PlanSpec,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.PLANS_WRITE))],
) -> PlanOut:
    """Propose a new plan version; it becomes active once a clinician and an ML engineer
    have signed it."""
    return services.plans.create(ctx, name, body)


@router.get("/{name}/plans/active", name="plans.active")
def active_plan(name: Name, services: ServicesDep, _ctx: Read) -> PlanOut:
    """The plan in force (404 when none)."""
    return services.plans.get(name)


@router.get("/{name}/plans/{number}", name="plans.show")
def show_plan(name: Name, number: Number, services: ServicesDep, _ctx: Read) -> PlanOut:
    """One plan version with its signatures and what it still needs."""
    return services.plans.get(name, number)


@router.post("/{name}/plans/{number}/signatures", name="plans.sign", status_code=201)
def sign_plan(
    name: Name,
    number: Number,
    body: PlanSignRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.MODELS_APPROVE))],
) -> PlanOut:
    """Sign a pending plan (re-authentication required); the signature that completes it
    makes it the active plan."""
    return services.plans.sign(ctx, name, number, body)


@router.post("/{name}/versions/{version}/candidate-reports", name="plans.evaluate", status_code=201)
async def evaluate_candidate(
    name: Name, version: Number, body: EvaluateRequest, services: ServicesDep, ctx: Run
) -> CandidateReport:
    """Judge a version against the active plan and the production version on the same rows
    (the plan's fixed set and ``recent``); stored and audited."""
    return await run_in_threadpool(services.candidates.evaluate_candidate, ctx, name, version, body)


@router.get("/{name}/candidate-reports", name="plans.candidates")
def list_candidates(name: Name, services: ServicesDep, _ctx: Read) -> list[CandidateReport]:
    """The model's candidate reports, newest first."""
    return services.candidates.reports(name)


@router.get("/{name}/candidate-reports/{report_id}", name="plans.candidate")
def show_candidate(
    name: Name, report_id: ReportId, services: ServicesDep, _ctx: Read
) -> CandidateReport:
    """One candidate report."""
    return services.candidates.report(name, report_id)


@router.get("/{name}/rollouts", name="plans.rollouts")
def list_rollouts(name: Name, services: ServicesDep, _ctx: Read) -> list[RolloutOut]:
    """The model's rollouts under its plans (the retraining history), newest first."""
    return services.rollouts.all(name)


@router.post("/{name}/rollouts", name="plans.rollout.start", status_code=201)
def start_rollout(name: Name, body: RolloutStart, services: ServicesDep, ctx: Run) -> RolloutOut:
    """Take a within-plan candidate through the plan's shadow and canary steps; an
    outside-plan one is recorded as stopped with its reasons."""
    return services.rollouts.start(ctx, name, body)


@router.get("/{name}/rollouts/{rollout_id}", name="plans.rollout")
def show_rollout(
    name: Name, rollout_id: RolloutId, services: ServicesDep, _ctx: Read
) -> RolloutOut:
    """One rollout with its history."""
    return services.rollouts.get(name, rollout_id)


@router.post("/{name}/rollouts/{rollout_id}/abort", name="plans.rollout.abort")
def abort_rollout(
    name: Name,
    rollout_id: RolloutId,
    body: AbortRequest,
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.DEPLOYMENTS_MANAGE))],
) -> RolloutOut:
    """Stop a rollout in progress: its canary is rolled back, its shadow ended."""
    return services.rollouts.abort(ctx, name, rollout_id, body.reason)


@jobs.post("/tick", name="plans.rollout.tick")
def tick(
    services: ServicesDep,
    ctx: Annotated[Context, Depends(require(Permission.TRAINING_CONFIGURE))],
) -> list[RolloutOut]:
    """Advance every rollout in progress now (the scheduled job's work)."""
    return services.rollouts.tick(ctx)
