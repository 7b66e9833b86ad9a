"""Training runs: a model's training specification, the request that pins the data, a
runner's claim and its record, one run at a time per model.

The server never runs a user's training code: a run is a durable row that a runner takes
(``medops train run`` on a workstation, ``medops train execute RUN`` in a Kubernetes Job,
``retraining/entrypoints.py``), the runner trains on the pinned dataset version, converts the
fitted model to ONNX on its side, registers it as a candidate version (pinning the same data,
so the registry draws the lineage edge) and reports the record here. Every step is audited in
the transaction that makes it.

One run at a time per model: ``training_active``'s primary key is the model, inserted with the
run and deleted when it ends; a second request (a person, or a trigger on another replica)
finds the row taken and is refused, or recorded as deduplicated by a trigger.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core.canonical import canonical_json
from medops.datasets.tables import DatasetVersion
from medops.db.engine import Database
from medops.errors import (
    ConflictError,
    FieldError,
    InvalidInputError,
    NotFoundError,
    TrainingBusyError,
)
from medops.registry.store import load_model
from medops.registry.tables import ModelVersion
from medops.retraining.job_schemas import (
    ACTIVE,
    RunLogs,
    RunOut,
    RunRecord,
    RunRequest,
    TrainingSpec,
    TrainingSpecOut,
    TriggerEventOut,
    TriggerKind,
)
from medops.retraining.job_tables import (
    TrainingActive,
    TrainingRun,
    TrainingSpecVersion,
    TrainingTriggerEvent,
)

LOST_RUNNER_GRACE = 600  # seconds past a run's timeout before its runner counts as lost


def _new_id() -> str:
    return f"tr_{secrets.token_hex(8)}"


def run_out(row: TrainingRun) -> RunOut:
    """The API shape of a stored run."""
    return RunOut(
        id=row.id,
        model=row.model,
        status=row.status,
        reason=row.reason,
        trigger_id=row.trigger_id,
        spec_version=row.spec_version,
        spec=TrainingSpec.model_validate_json(row.spec),
        dataset=row.dataset,
        dataset_root=row.dataset_root,
        parameters=json.loads(row.parameters),
        requested_at=row.requested_at,
        requested_by=row.requested_by,
        started_at=row.started_at,
        started_by=row.started_by,
        finished_at=row.finished_at,
        candidate_version=row.candidate_version,
        code_commit=row.code_commit,
        environment=json.loads(row.environment),
        error=row.error,
        mlflow_run=row.mlflow_run,
        candidate_report=row.candidate_report,
        within_plan=row.within_plan,
        rollout=row.rollout,
        rollout_state=row.rollout_state,
        log_chars=len(row.logs),
    )


def event_out(row: TrainingTriggerEvent) -> TriggerEventOut:
    """The API shape of a stored trigger event."""
    return TriggerEventOut(
        id=row.id,
        trigger_id=row.trigger_id,
        model=row.model,
        kind=row.kind,
        at=row.at,
        outcome=row.outcome,
        run_id=row.run_id,
        detail=row.detail,
    )


def _spec_row(session: Session, model: str) -> TrainingSpecVersion | None:
    return session.scalars(
        select(TrainingSpecVersion)
        .where(TrainingSpecVersion.model == model)
        .order_by(TrainingSpecVersion.version.desc())
        .limit(1)
    ).first()


def _pinned(session: Session, dataset: str, number: int | None) -> DatasetVersion:
    """The dataset version a run pins: ``number``, or the newest not deleted."""
    query = select(DatasetVersion).where(
        DatasetVersion.dataset == dataset, DatasetVersion.deleted_at.is_(None)
    )
    if number is not None:
        query = query.where(DatasetVersion.number == number)
    row = session.scalars(query.order_by(DatasetVersion.number.desc()).limit(1)).first()
    if row is None:
        wanted = f"{dataset}@{number}" if number is not None else dataset
        reason = f"no dataset version {wanted} to train on (add one with medops data add)"
        raise InvalidInputError(reason, errors=[FieldError("dataset_version", reason)])
    return row


class TrainingService:
    """Training specifications and runs (see the module)."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit

    # -- the specification ----------------------------------------------------------------

    def configure(self, ctx: Context, model: str, spec: TrainingSpec) -> TrainingSpecOut:
        """Store a new version of ``model``'s training specification (audited
        ``training.configure`` with before and after)."""
        actor = require_actor(ctx)
        now = self._clock.now()
        with self._db.transaction() as session:
            load_model(session, model, for_update=True)
            current = _spec_row(session, model)
            before = json.loads(current.spec) if current else None
            after = spec.model_dump(mode="json")
            version = (current.version if current else 0) + 1
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.configure",
                    resource_type="model",
                    resource_id=model,
                    details={"version": version, "before": before, "after": after},
                ),
            )
            row = TrainingSpecVersion(
                model=model,
                version=version,
                spec=canonical_json(after),
                created_at=now,
                created_by=actor.username,
            )
            session.add(row)
        return TrainingSpecOut(
            model=model, version=version, spec=spec, updated_at=now, updated_by=actor.username
        )

    def spec(self, model: str) -> TrainingSpecOut:
        """``model``'s current training specification (NotFoundError when it has none)."""
        with self._db.session() as session:
            load_model(session, model)
            row = _spec_row(session, model)
            if row is None:
                raise NotFoundError(
                    f"model {model!r} has no training specification (medops train configure)",
                    errors=[FieldError("model", "no training specification")],
                )
            return TrainingSpecOut(
                model=model,
                version=row.version,
                spec=TrainingSpec.model_validate_json(row.spec),
                updated_at=row.created_at,
                updated_by=row.created_by,
            )

    # -- runs -----------------------------------------------------------------------------

    def request(
        self,
        ctx: Context,
        model: str,
        request: RunRequest,
        *,
        trigger_id: str | None = None,
        kind: TriggerKind = "manual",
    ) -> RunOut:
        """Queue a run of ``model`` on its spec's newest dataset version (or the one asked
        for), audited ``training.request``. Raises TrainingBusyError when a run of the model
        is queued or running (then a ``deduplicated`` trigger event is recorded)."""
        actor = require_actor(ctx)
        now = self._clock.now()
        self._expire(ctx, model, now)
        try:
            with self._db.transaction() as session:
                load_model(session, model)
                spec_row = _spec_row(session, model)
                if spec_row is None:
                    reason = f"model {model!r} has no training specification to run"
                    raise InvalidInputError(reason, errors=[FieldError("model", reason)])
                spec = TrainingSpec.model_validate_json(spec_row.spec)
                data = _pinned(session, spec.dataset, request.dataset_version)
                parameters = {**spec.parameters, **request.parameters}
                run = TrainingRun(
                    id=_new_id(),
                    model=model,
                    status="queued",
                    reason=request.reason,
                    trigger_id=trigger_id,
                    spec_version=spec_row.version,
                    spec=spec_row.spec,
                    dataset=f"{data.dataset}@{data.number}",
                    dataset_root=data.root,
                    parameters=canonical_json(parameters),
                    requested_at=now,
                    requested_by=actor.username,
                    environment="{}",
                    logs="",
                )
                self._audit.record(
                    session,
                    ctx,
                    AuditEntry(
                        action="training.request",
                        resource_type="training_run",
                        resource_id=run.id,
                        details={
                            "model": model,
                            "reason": request.reason,
                            "trigger": trigger_id,
                            "kind": kind,
                            "dataset": run.dataset,
                            "dataset_root": data.root,
                            "parameters": parameters,
                            "spec_version": spec_row.version,
                        },
                    ),
                )
                session.add(TrainingActive(model=model, run_id=run.id))
                session.flush()  # the one-active-run guard: refused here if taken
                session.add(run)
                self._event(session, trigger_id, model, kind, "fired", run.id, request.reason)
                session.flush()
                return run_out(run)
        except IntegrityError:
            pass
        active = self.active_run(model)
        detail = f"run {active} of {model!r} is still active; one retraining at a time per model"
        with self._db.transaction() as session:
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.deduplicate",
                    resource_type="model",
                    resource_id=model,
                    details={"active_run": active, "trigger": trigger_id, "kind": kind},
                ),
            )
            self._event(session, trigger_id, model, kind, "deduplicated", active, detail)
        raise TrainingBusyError(detail, errors=[FieldError("model", "a run is active")])

    def _expire(self, ctx: Context, model: str, now: datetime) -> None:
        """End ``model``'s active run as failed when its runner has been silent past the
        spec's timeout plus LOST_RUNNER_GRACE (a runner that died must not block retraining
        for ever); audited ``training.expire``."""
        with self._db.transaction() as session:
            active = session.get(TrainingActive, model)
            row = session.get(TrainingRun, active.run_id) if active else None
            if active is None or row is None:
                return
            spec = TrainingSpec.model_validate_json(row.spec)
            since = row.started_at or row.requested_at
            if now - since <= timedelta(seconds=spec.timeout_seconds + LOST_RUNNER_GRACE):
                return
            reason = f"no report from the runner within {spec.timeout_seconds} s and the grace"
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.expire",
                    resource_type="training_run",
                    resource_id=row.id,
                    details={"model": model, "status": row.status, "reason": reason},
                ),
            )
            row.status = "failed"
            row.finished_at = now
            row.error = reason
            session.delete(active)

    def _event(
        self,
        session: Session,
        trigger_id: str | None,
        model: str,
        kind: TriggerKind,
        outcome: str,
        run_id: str | None,
        detail: str,
    ) -> None:
        session.add(
            TrainingTriggerEvent(
                trigger_id=trigger_id,
                model=model,
                kind=kind,
                at=self._clock.now(),
                outcome=outcome,
                run_id=run_id,
                detail=detail[:4000],
            )
        )

    def active_run(self, model: str) -> str | None:
        """The id of ``model``'s queued or running run, if any."""
        with self._db.session() as session:
            row = session.get(TrainingActive, model)
            return row.run_id if row else None

    def claim(self, ctx: Context, run_id: str) -> RunOut:
        """Mark a queued run as running by this runner (audited ``training.start``);
        ConflictError when another runner took it or it has ended."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = self._load(session, run_id, for_update=True)
            if row.status != "queued":
                raise ConflictError(
                    f"training run {run_id} is {row.status}, not queued",
                    errors=[FieldError("run", f"already {row.status}")],
                )
            row.status = "running"
            row.started_at = self._clock.now()
            row.started_by = actor.username
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.start",
                    resource_type="training_run",
                    resource_id=run_id,
                    details={"model": row.model, "dataset": row.dataset},
                ),
            )
            session.flush()
            return run_out(row)

    def finish(self, ctx: Context, run_id: str, record: RunRecord) -> RunOut:
        """Record how a running run ended (audited ``training.finish``): its candidate version
        must exist and pin the run's dataset version as its training data."""
        actor = require_actor(ctx)
        with self._db.transaction() as session:
            row = self._load(session, run_id, for_update=True)
            if row.status != "running":
                raise ConflictError(
                    f"training run {run_id} is {row.status}, not running",
                    errors=[FieldError("run", f"is {row.status}")],
                )
            if record.candidate_version is not None:
                self._check_candidate(session, row, record.candidate_version)
            row.status = record.status
            row.finished_at = self._clock.now()
            row.candidate_version = record.candidate_version
            row.code_commit = record.code_commit
            row.environment = canonical_json(record.environment)
            row.error = record.error
            row.mlflow_run = record.mlflow_run
            row.logs = record.logs
            row.candidate_report = record.candidate_report
            row.within_plan = record.within_plan
            row.rollout = record.rollout
            row.rollout_state = record.rollout_state
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="training.finish",
                    resource_type="training_run",
                    resource_id=run_id,
                    details={
                        "model": row.model,
                        "status": record.status,
                        "candidate_version": record.candidate_version,
                        "code_commit": record.code_commit,
                        "environment": record.environment,
                        "error": record.error,
                        "mlflow_run": record.mlflow_run,
                        "candidate_report": record.candidate_report,
                        "within_plan": record.within_plan,
                        "rollout": record.rollout,
                        "rollout_state": record.rollout_state,
                        "log_chars": len(record.logs),
                        "by": actor.username,
                    },
                ),
            )
            session.execute(
                delete(TrainingActive).where(
                    TrainingActive.model == row.model, TrainingActive.run_id == row.id
                )
            )
            session.flush()
            return run_out(row)

    @staticmethod
    def _check_candidate(session: Session, run: TrainingRun, number: int) -> None:
        model = load_model(session, run.model)
        version = session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_id == model.id, ModelVersion.version == number
            )
        ).first()
        if version is None:
            reason = f"model {run.model!r} has no version {number}"
            raise InvalidInputError(reason, errors=[FieldError("candidate_version", reason)])
        lineage = json.loads(version.lineage) if version.lineage else {}
        pinned = lineage.get("datasets", {}).get("training") or {}
        if (pinned.get("dataset"), pinned.get("root")) != (run.dataset, run.dataset_root):
            reason = (
                f"version {number} does not pin the run's training data {run.dataset} "
                f"(it pins {pinned.get('dataset') or 'no dataset version'})"
            )
            raise InvalidInputError(reason, errors=[FieldError("candidate_version", reason)])

    def _load(self, session: Session, run_id: str, *, for_update: bool = False) -> TrainingRun:
        query = select(TrainingRun).where(TrainingRun.id == run_id)
        if for_update:
            query = query.with_for_update()
        row = session.scalars(query).first()
        if row is None:
            raise NotFoundError(
                f"training run {run_id!r} does not exist",
                errors=[FieldError("run", "unknown run")],
            )
        return row

    def run(self, run_id: str) -> RunOut:
        """One run."""
        with self._db.session() as session:
            return run_out(self._load(session, run_id))

    def logs(self, run_id: str) -> RunLogs:
        """One run's captured output."""
        with self._db.session() as session:
            row = self._load(session, run_id)
            return RunLogs(id=row.id, status=row.status, logs=row.logs)

    def runs(
        self,
        model: str | None = None,
        *,
        statuses: Sequence[str] = (),
        limit: int = 100,
    ) -> list[RunOut]:
        """Runs, newest first, of one model or all, optionally only of some statuses."""
        query = select(TrainingRun)
        if model is not None:
            query = query.where(TrainingRun.model == model)
        if statuses:
            query = query.where(TrainingRun.status.in_(list(statuses)))
        query = query.order_by(TrainingRun.requested_at.desc(), TrainingRun.id).limit(limit)
        with self._db.session() as session:
            return [run_out(r) for r in session.scalars(query)]

    def queued(self, limit: int = 100) -> list[RunOut]:
        """Runs waiting for a runner, oldest first."""
        with self._db.session() as session:
            rows = session.scalars(
                select(TrainingRun)
                .where(TrainingRun.status == "queued")
                .order_by(TrainingRun.requested_at, TrainingRun.id)
                .limit(limit)
            )
            return [run_out(r) for r in rows]

    def events(self, model: str | None = None, *, limit: int = 100) -> list[TriggerEventOut]:
        """Trigger events (firings and deduplications), newest first."""
        query = select(TrainingTriggerEvent)
        if model is not None:
            query = query.where(TrainingTriggerEvent.model == model)
        query = query.order_by(TrainingTriggerEvent.id.desc()).limit(limit)
        with self._db.session() as session:
            return [event_out(r) for r in session.scalars(query)]

    def last_requested(self, model: str) -> datetime | None:
        """When ``model``'s newest run was requested."""
        with self._db.session() as session:
            found: Any = session.scalars(
                select(TrainingRun.requested_at)
                .where(TrainingRun.model == model)
                .order_by(TrainingRun.requested_at.desc())
                .limit(1)
            ).first()
            return found  # type: ignore[no-any-return]


__all__ = ["ACTIVE", "TrainingBusyError", "TrainingService", "event_out", "run_out"]
