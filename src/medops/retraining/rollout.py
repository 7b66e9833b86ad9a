"""The rollout driver: a within-plan candidate through shadow and canary, then promoted.

``start`` takes a version whose newest candidate report is within the active plan onto a
deployment that follows ``model@production``: shadow scoring for the protocol's N predictions,
then each canary step (percent of traffic for at least its minutes and predictions), then the
promotion of ``production``, whose gates pass with the plan's signatures (``plans.cover``)
and whose record cites the plan, its hash, its signatures and the candidate report. A
candidate outside the plan is recorded as ``stopped`` with the reasons; it waits for the full
approval path (signatures on the version, promotion by a person).

``tick`` advances every open rollout; it runs as the ``retraining.rollout`` job under a lease
(one replica per period; MEDOPS_ROLLOUT_INTERVAL_SECONDS) and as ``medops plans tick``. A
canary aborts, rolled back through the deployments API, when a monitoring window of the
canary version since the canary began has a verdict the protocol lists, when its labelled
canary predictions' AUROC falls below ``canary_min_auroc``, or when the serving runtime's own
auto-rollback (error rate, p99) already ended it. Every step is audited with the rollout id.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from typing import cast

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core.signature import ModelSignature
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, MedopsError, NotFoundError
from medops.monitoring.service import MonitoringService
from medops.monitoring.tables import MonitoringResult
from medops.registry.lifecycle import LifecycleService
from medops.registry.schemas import PRODUCTION, PromoteRequest
from medops.registry.store import load_model
from medops.retraining import stats
from medops.retraining.plan_schemas import (
    PlanSpec,
    RolloutEvent,
    RolloutOut,
    RolloutStart,
    RolloutState,
)
from medops.retraining.plan_tables import CandidateEvaluation, ChangeControlPlan, PlanRollout
from medops.retraining.plans import active_plan, load_plan_version
from medops.serving.deployments import DeploymentService
from medops.serving.schemas import CanaryRequest, DeploymentRollbackRequest, ShadowRequest
from medops.serving.tables import Deployment, Outcome, Prediction

OPEN = ("shadow", "canary")


class RolloutService:
    """Start, advance and read the rollouts a change-control plan allows."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        lifecycle: LifecycleService,
        deployments: DeploymentService,
        monitoring: MonitoringService,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._lifecycle = lifecycle
        self._deployments = deployments
        self._monitoring = monitoring

    # -- reading --------------------------------------------------------------------------

    def all(self, name: str) -> list[RolloutOut]:
        """A model's rollouts, newest first (the retraining history)."""
        with self._db.session() as session:
            model = load_model(session, name)
            rows = session.scalars(
                select(PlanRollout)
                .where(PlanRollout.model_id == model.id)
                .order_by(PlanRollout.started_at.desc(), PlanRollout.id)
            ).all()
            return [_out(session, name, r) for r in rows]

    def get(self, name: str, rollout_id: str) -> RolloutOut:
        with self._db.session() as session:
            model = load_model(session, name)
            return _out(session, name, _load(session, model.id, rollout_id))

    # -- start ----------------------------------------------------------------------------

    def start(self, ctx: Context, name: str, request: RolloutStart) -> RolloutOut:
        """Begin the plan's protocol for a within-plan candidate; an outside-plan one is
        recorded as stopped with its reasons."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = load_plan_version(session, model, request.version)
            deployment = session.scalars(
                select(Deployment).where(Deployment.name == request.deployment)
            ).first()
            if deployment is None or deployment.model_id != model.id:
                raise NotFoundError(
                    f"{name} has no deployment {request.deployment!r}",
                    errors=[FieldError("deployment", "not a deployment of this model")],
                )
            if deployment.alias != PRODUCTION:
                reason = (
                    f"a plan's rollout moves {name}@{PRODUCTION}; the deployment must follow it"
                )
                raise ConflictError(reason, errors=[FieldError("deployment", reason)])
            busy = session.scalars(
                select(PlanRollout.id).where(
                    PlanRollout.deployment == request.deployment, PlanRollout.state.in_(OPEN)
                )
            ).first()
            if busy is not None:
                raise ConflictError(
                    f"{request.deployment} has a rollout in progress ({busy}); one at a time"
                )
            report = session.scalars(
                select(CandidateEvaluation)
                .where(CandidateEvaluation.version_id == row.id)
                .order_by(CandidateEvaluation.created_at.desc(), CandidateEvaluation.id.desc())
                .limit(1)
            ).first()
            if report is None:
                raise ConflictError(
                    f"{name}/{request.version} has no candidate report: evaluate it against the "
                    "plan first (medops plans evaluate)"
                )
            plan = session.get(ChangeControlPlan, report.plan_id)
            assert plan is not None
            active = active_plan(session, model)
            reasons: list[str] = json.loads(report.report)["reasons"]
            if active is None or active.id != plan.id:
                reasons = [*reasons, f"the report was made under plan {plan.number}, not active"]
            now = self._clock.now()
            rollout = PlanRollout(
                id="roll_" + secrets.token_hex(8),
                model_id=model.id,
                version=row.version,
                deployment=request.deployment,
                plan_id=plan.id,
                report_id=report.id,
                state="stopped" if reasons else "shadow",
                step=None,
                phase_started_at=now,
                started_at=now,
                started_by=actor.username,
                reasons=json.dumps(reasons),
                events="[]",
            )
            session.add(rollout)
            if reasons:
                detail = "outside the plan; waits for the full approval path: " + "; ".join(reasons)
                self._event(session, ctx, name, rollout, "stopped", detail)
                return _out(session, name, rollout)
            spec = PlanSpec.model_validate_json(plan.spec)
            rollout_id = rollout.id
            self._event(session, ctx, name, rollout, "shadow", "started within the plan")
        if spec.rollout.shadow_predictions > 0:
            self._deployments.set_shadow(
                ctx,
                request.deployment,
                ShadowRequest(
                    version=request.version,
                    reason=f"rollout {rollout_id}: shadow under change-control plan",
                ),
            )
            return self.get(name, rollout_id)
        return self._canary(ctx, name, rollout_id, 0, spec)

    # -- advancing ------------------------------------------------------------------------

    def tick(self, ctx: Context) -> list[RolloutOut]:
        """Advance every open rollout by what has happened since its phase began."""
        with self._db.session() as session:
            found = session.execute(
                select(PlanRollout.id, PlanRollout.model_id)
                .where(PlanRollout.state.in_(OPEN))
                .order_by(PlanRollout.started_at)
            ).all()
            names = {model_id: self._deployments.model_name(model_id) for _id, model_id in found}
        return [self.advance(ctx, names[model_id], rollout_id) for rollout_id, model_id in found]

    def advance(self, ctx: Context, name: str, rollout_id: str) -> RolloutOut:
        """One step of one rollout, if its conditions are met (else unchanged)."""
        with self._db.session() as session:
            model = load_model(session, name)
            row = _load(session, model.id, rollout_id)
            if row.state not in OPEN:
                return _out(session, name, row)
            plan = session.get(ChangeControlPlan, row.plan_id)
            assert plan is not None
            spec = PlanSpec.model_validate_json(plan.spec)
            state, step, since = row.state, row.step, row.phase_started_at
            deployment, version = row.deployment, row.version
            dep = session.scalars(select(Deployment).where(Deployment.name == deployment)).one()
            canary_now = dep.canary_version
            shadows = _count(session, deployment, version, "shadow", since)
            canaries = _count(session, deployment, version, "canary", since)
        if state == "shadow":
            if shadows < spec.rollout.shadow_predictions:
                return self.get(name, rollout_id)
            self._deployments.set_shadow(
                ctx,
                deployment,
                ShadowRequest(version=None, reason=f"rollout {rollout_id}: shadow complete"),
            )
            return self._canary(ctx, name, rollout_id, 0, spec, f"{shadows} shadow predictions")
        assert step is not None
        abort = self._abort_reason(spec, name, rollout_id, deployment, version, canary_now)
        if abort is not None:
            return self._abort(ctx, name, rollout_id, abort, still_canary=canary_now == version)
        return self._next_step(ctx, name, rollout_id, spec, step, since, canaries)

    def _next_step(
        self,
        ctx: Context,
        name: str,
        rollout_id: str,
        spec: PlanSpec,
        step: int,
        since: datetime,
        canaries: int,
    ) -> RolloutOut:
        """The next canary step, or the promotion after the last, once this step has run
        its minutes and seen its predictions."""
        current = spec.rollout.canary_steps[step]
        waited = self._clock.now() - since >= timedelta(minutes=current.minutes)
        if not waited or canaries < current.min_predictions:
            return self.get(name, rollout_id)
        done = f"step {step + 1} ({current.percent}%): {canaries} canary predictions"
        if step + 1 < len(spec.rollout.canary_steps):
            return self._canary(ctx, name, rollout_id, step + 1, spec, done)
        return self._promote(ctx, name, rollout_id, done)

    def _abort_reason(
        self,
        spec: PlanSpec,
        name: str,
        rollout_id: str,
        deployment: str,
        version: int,
        canary_now: int | None,
    ) -> str | None:
        """Why the canary must stop now, or None."""
        if canary_now != version:
            return "the canary was ended outside the rollout (auto-rollback or by hand)"
        with self._db.session() as session:
            model = load_model(session, name)
            row = _load(session, model.id, rollout_id)
            began = _canary_began(row)
            verdicts = session.scalars(
                select(MonitoringResult)
                .where(
                    MonitoringResult.deployment == deployment,
                    MonitoringResult.version == version,
                    MonitoringResult.window_end > began,
                    MonitoringResult.verdict.in_(spec.rollout.abort_verdicts),
                )
                .order_by(MonitoringResult.window_end)
                .limit(1)
            ).first()
            if verdicts is not None:
                return (
                    f"monitoring verdict {verdicts.verdict!r} for the canary version in the "
                    f"{verdicts.window_kind} window ending {verdicts.window_end.isoformat()}"
                )
            floor = spec.rollout.canary_min_auroc
            if floor is None:
                return None
            dep_row = session.scalars(select(Deployment).where(Deployment.name == deployment)).one()
            version_row = load_plan_version(session, model, version)
            positive = ModelSignature.model_validate_json(version_row.signature).outputs.positive
            labelled = session.execute(
                select(Prediction.score, Outcome.label)
                .join(Outcome, Outcome.prediction_id == Prediction.id)
                .where(
                    Prediction.deployment == dep_row.name,
                    Prediction.version == version,
                    Prediction.arm == "canary",
                    Prediction.occurred_at >= began,
                    Prediction.score.is_not(None),
                )
            ).all()
        if len(labelled) < spec.rollout.canary_min_labelled:
            return None
        scores = np.array([float(s or 0.0) for s, _ in labelled])
        labels = np.array([json.loads(label) == positive for _, label in labelled])
        auroc = stats.auroc(labels, scores)
        if np.isnan(auroc) or auroc >= floor:
            return None
        return (
            f"the canary's AUROC on {len(labelled)} labelled predictions is {auroc:.4f}, "
            f"below the protocol's floor {floor:g}"
        )

    # -- transitions ----------------------------------------------------------------------

    def _canary(
        self,
        ctx: Context,
        name: str,
        rollout_id: str,
        step: int,
        spec: PlanSpec,
        done: str | None = None,
    ) -> RolloutOut:
        """Route the next canary step's share to the candidate (gated: the plan's cover)."""
        with self._db.session() as session:
            model = load_model(session, name)
            row = _load(session, model.id, rollout_id)
            deployment, version = row.deployment, row.version
        percent = spec.rollout.canary_steps[step].percent
        try:
            self._deployments.set_canary(
                ctx,
                deployment,
                CanaryRequest(
                    version=version,
                    percent=percent,
                    limits=spec.rollout.limits if step == 0 else None,
                    reason=f"rollout {rollout_id}: canary step {step + 1} at {percent}%",
                ),
            )
        except MedopsError as exc:
            return self._finish(ctx, name, rollout_id, "stopped", str(exc), [str(exc)])
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = _load(session, model.id, rollout_id)
            row.state, row.step, row.phase_started_at = "canary", step, self._clock.now()
            detail = (f"{done}; " if done else "") + f"canary step {step + 1} at {percent}%"
            self._event(session, ctx, name, row, "canary", detail)
            return _out(session, name, row)

    def _promote(self, ctx: Context, name: str, rollout_id: str, done: str) -> RolloutOut:
        """Move production to the candidate citing the plan (its gates pass by the plan's
        signatures), then end the canary."""
        with self._db.session() as session:
            model = load_model(session, name)
            row = _load(session, model.id, rollout_id)
            plan = session.get(ChangeControlPlan, row.plan_id)
            assert plan is not None
            deployment, version = row.deployment, row.version
            reason = (
                f"rollout {rollout_id} within change-control plan {plan.number} "
                f"(sha256 {plan.plan_hash[:16]}), candidate report {row.report_id}"
            )
        try:
            moved = self._lifecycle.promote(
                ctx, name, PRODUCTION, PromoteRequest(version=version, reason=reason)
            )
        except MedopsError as exc:
            self._deployments.rollback(
                ctx, deployment, DeploymentRollbackRequest(reason=f"rollout {rollout_id}: {exc}")
            )
            return self._finish(ctx, name, rollout_id, "stopped", str(exc), [str(exc)])
        dep = self._deployments.get(deployment)
        if dep.canary_version is not None:
            self._deployments.set_canary(
                ctx,
                deployment,
                CanaryRequest(
                    percent=0, reason=f"rollout {rollout_id}: promoted, canary no longer needed"
                ),
            )
        detail = f"{done}; {name}@{PRODUCTION} moved to version {moved.to_version}"
        return self._finish(ctx, name, rollout_id, "promoted", detail, [])

    def _abort(
        self, ctx: Context, name: str, rollout_id: str, reason: str, *, still_canary: bool
    ) -> RolloutOut:
        with self._db.session() as session:
            model = load_model(session, name)
            deployment = _load(session, model.id, rollout_id).deployment
        if still_canary:
            self._deployments.rollback(
                ctx,
                deployment,
                DeploymentRollbackRequest(reason=f"rollout {rollout_id} aborted: {reason}"[:500]),
            )
        return self._finish(ctx, name, rollout_id, "aborted", reason, [reason])

    def abort(self, ctx: Context, name: str, rollout_id: str, reason: str) -> RolloutOut:
        """Stop an open rollout by hand: the canary (or shadow) ends."""
        with self._db.session() as session:
            model = load_model(session, name)
            row = _load(session, model.id, rollout_id)
            if row.state not in OPEN:
                raise ConflictError(f"rollout {rollout_id} is {row.state}, not in progress")
            state, deployment = row.state, row.deployment
            dep = session.scalars(select(Deployment).where(Deployment.name == deployment)).one()
            canary, shadow = dep.canary_version, dep.shadow_version
        if state == "shadow" and shadow == row.version:
            self._deployments.set_shadow(
                ctx,
                deployment,
                ShadowRequest(version=None, reason=f"rollout {rollout_id}: {reason}"),
            )
            return self._finish(ctx, name, rollout_id, "aborted", reason, [reason])
        return self._abort(ctx, name, rollout_id, reason, still_canary=canary == row.version)

    def _finish(
        self,
        ctx: Context,
        name: str,
        rollout_id: str,
        state: RolloutState,
        detail: str,
        reasons: list[str],
    ) -> RolloutOut:
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            row = _load(session, model.id, rollout_id)
            row.state, row.phase_started_at = state, self._clock.now()
            row.reasons = json.dumps(reasons)
            self._event(session, ctx, name, row, state, detail)
            return _out(session, name, row)

    def _event(
        self,
        session: Session,
        ctx: Context,
        name: str,
        row: PlanRollout,
        state: RolloutState,
        detail: str,
    ) -> None:
        """Append a step to the rollout's history and audit it (same transaction)."""
        now = self._clock.now()
        event = RolloutEvent(at=now, state=state, step=row.step, detail=detail)
        events = [*json.loads(row.events), event.model_dump(mode="json")]
        row.events = json.dumps(events)
        self._audit.record(
            session,
            ctx,
            AuditEntry(
                action=f"retraining.rollout.{state}",
                resource_type="model_version",
                resource_id=f"{name}/{row.version}",
                reason=detail[:500],
                details={
                    "rollout": row.id,
                    "deployment": row.deployment,
                    "step": row.step,
                    "candidate_report": row.report_id,
                },
            ),
        )


def _count(session: Session, deployment: str, version: int, arm: str, since: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Prediction)
            .where(
                Prediction.deployment == deployment,
                Prediction.version == version,
                Prediction.arm == arm,
                Prediction.occurred_at >= since,
            )
        )
        or 0
    )


def _canary_began(row: PlanRollout) -> datetime:
    """When the first canary step of the rollout began."""
    for event in json.loads(row.events):
        parsed = RolloutEvent.model_validate(event)
        if parsed.state == "canary":
            return parsed.at
    return row.phase_started_at


def _load(session: Session, model_id: str, rollout_id: str) -> PlanRollout:
    row = session.get(PlanRollout, rollout_id)
    if row is None or row.model_id != model_id:
        raise NotFoundError(f"no rollout {rollout_id!r} of this model")
    return row


def _out(session: Session, name: str, row: PlanRollout) -> RolloutOut:
    plan = session.get(ChangeControlPlan, row.plan_id)
    assert plan is not None
    return RolloutOut(
        id=row.id,
        model=name,
        version=row.version,
        deployment=row.deployment,
        plan=plan.number,
        report=row.report_id,
        state=cast(RolloutState, row.state),
        step=row.step,
        phase_started_at=row.phase_started_at,
        started_at=row.started_at,
        started_by=row.started_by,
        reasons=json.loads(row.reasons),
        events=[RolloutEvent.model_validate(e) for e in json.loads(row.events)],
    )
