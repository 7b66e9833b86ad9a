"""Monitoring runs: compute every due window of every deployed version, store the results.

``run`` finds, per deployment and model version in the prediction log (shadow rows left out),
the complete windows of the asked kind (hour, day or week, UTC) not computed yet, evaluates
each against the version's reference profile (``evaluate.py``) and the window before it, and
stores one ``MonitoringResult`` per window, all in one transaction with one audit record. It
reads everything first and writes in one short transaction, so a run never holds the write
lock while it computes. The reference profile of a version is built on first use from the
rows of its latest validation report (stored in the blob store) and kept; a version without a
validation report cannot be monitored and the run says so.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.clock import Clock
from medops.context import Context
from medops.db.engine import Database
from medops.errors import ConflictError, InvalidInputError, NotFoundError
from medops.logs import get_logger
from medops.monitoring.evaluate import WindowRows, evaluate_window
from medops.monitoring.models import MonitoringProfile, MonitoringResult
from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.windows import TIME_WINDOWS, complete_windows
from medops.registry import datasets
from medops.registry.models import ModelVersion, RegisteredModel, ValidationReport
from medops.registry.signature import ModelSignature
from medops.serving.models import Outcome, Prediction
from medops.storage.base import DIGEST_PREFIX, BlobStore

log = get_logger("medops.monitoring")
GRACE = timedelta(seconds=60)
STORE_ATTEMPTS = 3
# Registry report metric -> monitoring metric (the validation baseline).
BASELINE_NAMES = {
    "accuracy": "accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "ppv": "precision",
    "f1": "f1",
    "auroc": "auroc",
    "brier": "brier",
    "ece": "ece",
}


@dataclass
class RunSummary:
    """What one run computed."""

    window: str
    computed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _Series:
    deployment: str
    model_name: str
    version: int


class MonitoringService:
    """Computes, stores and serves monitoring windows."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, blobs: BlobStore) -> None:
        self.db = db
        self._clock = clock
        self._audit = audit
        self._blobs = blobs
        self._running = threading.Lock()

    # --- running -------------------------------------------------------------------------

    def run(self, ctx: Context, window: str = "day", *, now: datetime | None = None) -> RunSummary:
        """Compute every due window of ``window`` kind; returns what was computed."""
        if window not in TIME_WINDOWS:
            msg = f"unknown window {window!r}: use one of {', '.join(TIME_WINDOWS)}"
            raise InvalidInputError(msg)
        # A window is complete once its end is GRACE behind: a prediction stamped just before
        # the end may still be on its way through the group commit.
        now = (now or self._clock.now()) - GRACE
        with self._running:  # runs of this process one at a time; others: see _store
            return self._run(ctx, window, now)

    def _run(self, ctx: Context, window: str, now: datetime) -> RunSummary:
        summary = RunSummary(window=window)
        rows: list[MonitoringResult] = []
        profiles: list[MonitoringProfile] = []
        for series in self._series():
            found = self._profile(series)
            if isinstance(found, str):
                summary.skipped.append(
                    {"deployment": series.deployment, "version": str(series.version),
                     "reason": found}
                )  # fmt: skip
                continue
            profile, signature, stored = found
            if stored is not None:
                profiles.append(stored)
            rows.extend(self._windows(series, profile, signature, window, now))
        rows, profiles = self._store(ctx, window, rows, profiles)
        summary.computed = [summary_of(row) for row in rows]
        log.info("monitoring run", window=window, windows=len(rows), skipped=len(summary.skipped))
        return summary

    def _store(
        self,
        ctx: Context,
        window: str,
        rows: list[MonitoringResult],
        profiles: list[MonitoringProfile],
    ) -> tuple[list[MonitoringResult], list[MonitoringProfile]]:
        """Write what another run (another process) has not written meanwhile, with the run's
        audit record; a run that lost a race outright is a ConflictError (run again)."""
        for _attempt in range(STORE_ATTEMPTS - 1):
            try:
                return self._store_once(ctx, window, rows, profiles)
            except IntegrityError:  # another run committed first: see what is left to store
                for row in rows:
                    row.id = None  # type: ignore[assignment]  # let the database number it
                continue
        try:
            return self._store_once(ctx, window, rows, profiles)
        except IntegrityError:
            msg = "other monitoring runs kept storing these windows at the same time; run again"
            raise ConflictError(msg) from None

    def _store_once(
        self,
        ctx: Context,
        window: str,
        rows: list[MonitoringResult],
        profiles: list[MonitoringProfile],
    ) -> tuple[list[MonitoringResult], list[MonitoringProfile]]:
        if not (rows or profiles):
            return rows, profiles
        with self.db.transaction() as session:
            done = set(
                session.execute(
                    select(
                        MonitoringResult.deployment,
                        MonitoringResult.version,
                        MonitoringResult.window_start,
                    ).where(MonitoringResult.window_kind == window)
                ).all()
            )
            rows = [r for r in rows if (r.deployment, r.version, r.window_start) not in done]
            kept = set(session.scalars(select(MonitoringProfile.version_id)).all())
            profiles = [p for p in profiles if p.version_id not in kept]
            if not (rows or profiles):
                return rows, profiles
            session.add_all([*profiles, *rows])
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="monitoring.run",
                    resource_type="monitoring",
                    resource_id=window,
                    details={
                        "windows": len(rows),
                        "profiles": len(profiles),
                        "drifted": sum(1 for r in rows if r.drifted),
                    },
                ),
            )
        return rows, profiles

    def _series(self) -> list[_Series]:
        with self.db.session() as session:
            found = session.execute(
                select(Prediction.deployment, Prediction.model_name, Prediction.version)
                .where(Prediction.shadow.is_(False))
                .distinct()
                .order_by(Prediction.deployment, Prediction.version)
            ).all()
        return [_Series(d, m, v) for d, m, v in found]

    def _profile(
        self, series: _Series
    ) -> tuple[ReferenceProfile, ModelSignature, MonitoringProfile | None] | str:
        """The version's profile (built and returned for storing when new), or why not."""
        with self.db.session() as session:
            version = session.scalars(
                select(ModelVersion)
                .join(RegisteredModel, ModelVersion.model_id == RegisteredModel.id)
                .where(
                    RegisteredModel.name == series.model_name,
                    ModelVersion.version == series.version,
                )
            ).first()
            if version is None:
                return "the model version is not in the registry"
            signature = ModelSignature.model_validate_json(version.signature)
            stored = session.scalars(
                select(MonitoringProfile).where(MonitoringProfile.version_id == version.id)
            ).first()
            if stored is not None:
                return ReferenceProfile.from_dict(json.loads(stored.profile)), signature, None
            report = session.scalars(
                select(ValidationReport)
                .where(ValidationReport.version_id == version.id)
                .order_by(ValidationReport.number.desc())
            ).first()
        if report is None:
            return "no validation report: nothing to compare with"
        profile = self._build(version, signature, report)
        row = MonitoringProfile(
            id=uuid.uuid4().hex,
            version_id=version.id,
            report_id=report.id,
            profile=json.dumps(profile.to_dict(), sort_keys=True),
            created_at=self._clock.now(),
        )
        return profile, signature, row

    def _build(
        self, version: ModelVersion, signature: ModelSignature, report: ValidationReport
    ) -> ReferenceProfile:
        from medops.registry.onnx_model import OnnxModel

        data = self._blobs.get(DIGEST_PREFIX + report.dataset_digest)
        parsed = datasets.parse_csv(data, signature, label_column=report.label_column)
        labels = datasets.binary_labels(parsed.labels, signature, label_column=report.label_column)
        artifact = self._blobs.get(DIGEST_PREFIX + version.artifact_digest)
        scores = OnnxModel(artifact, signature).positive_scores(parsed.columns)
        measured = json.loads(report.report)
        baseline = {
            ours: (measured["metrics"].get(theirs) or {}).get("value")
            for theirs, ours in BASELINE_NAMES.items()
        }
        return ReferenceProfile.build(
            signature,
            parsed.columns,
            scores,
            [bool(v) for v in labels],
            baseline=baseline,
            threshold=float(measured.get("threshold", 0.5)),
        )

    def _windows(
        self,
        series: _Series,
        profile: ReferenceProfile,
        signature: ModelSignature,
        kind: str,
        now: datetime,
    ) -> list[MonitoringResult]:
        with self.db.session() as session:
            last = session.scalar(
                select(func.max(MonitoringResult.window_end)).where(
                    MonitoringResult.deployment == series.deployment,
                    MonitoringResult.version == series.version,
                    MonitoringResult.window_kind == kind,
                )
            )
            first = session.scalar(select(func.min(Prediction.occurred_at)).where(*_of(series)))
        if first is None:
            return []
        rows = []
        previous: WindowRows | None = None
        windows = complete_windows(first, now, kind, after=last)
        if windows and last is not None:
            span = windows[0][1] - windows[0][0]
            previous = self._rows(series, signature, windows[0][0] - span, windows[0][0])
        for start, end in windows:
            current = self._rows(series, signature, start, end)
            if current.rows == 0:
                previous = current
                continue
            document = evaluate_window(profile, signature, current, previous=previous)
            rows.append(
                MonitoringResult(
                    deployment=series.deployment,
                    model_name=series.model_name,
                    version=series.version,
                    window_kind=kind,
                    window_start=start,
                    window_end=end,
                    rows=current.rows,
                    labelled=document["labelled"],
                    status=document["status"],
                    verdict=document["verdict"],
                    drifted=bool(
                        document["dataset"]["drifted"] or document["multivariate"].get("drifted")
                    ),
                    alerts=json.dumps(document["alerts"]),
                    result=json.dumps(document, sort_keys=True, allow_nan=False),
                    computed_at=self._clock.now(),
                )
            )
            previous = current
        return rows

    def _rows(
        self, series: _Series, signature: ModelSignature, start: datetime, end: datetime
    ) -> WindowRows:
        """The window's predictions as columns: features as logged, positive-class score,
        outcome (None until it arrives)."""
        positive = str(signature.outputs.positive)
        with self.db.session() as session:
            found = session.execute(
                select(Prediction.inputs, Prediction.probabilities, Outcome.label)
                .outerjoin(Outcome, Outcome.prediction_id == Prediction.id)
                .where(*_of(series), Prediction.occurred_at >= start, Prediction.occurred_at < end)
                .order_by(Prediction.occurred_at, Prediction.id)
            ).all()
        names = signature.feature_names
        features: dict[str, list[Any]] = {n: [] for n in names}
        scores: list[float] = []
        outcomes: list[bool | None] = []
        for inputs, probabilities, label in found:
            record = json.loads(inputs)
            for name in names:
                features[name].append(record.get(name))
            scores.append(float(json.loads(probabilities).get(positive, float("nan"))))
            outcomes.append(None if label is None else str(json.loads(label)) == positive)
        return WindowRows(features=features, scores=scores, outcomes=outcomes)

    # --- reading -------------------------------------------------------------------------

    def results(
        self, deployment: str, window: str = "day", *, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The deployment's computed windows of ``window`` kind, newest first (summaries)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(MonitoringResult)
                .where(
                    MonitoringResult.deployment == deployment,
                    MonitoringResult.window_kind == window,
                )
                .order_by(MonitoringResult.window_start.desc(), MonitoringResult.version)
                .limit(limit)
            ).all()
        return [summary_of(r) for r in rows]

    def document(
        self, deployment: str, window: str = "day", start: datetime | None = None
    ) -> dict[str, Any]:
        """One window's full document (the latest when ``start`` is not given)."""
        statement = select(MonitoringResult).where(
            MonitoringResult.deployment == deployment, MonitoringResult.window_kind == window
        )
        if start is not None:
            statement = statement.where(MonitoringResult.window_start == start)
        with self.db.session() as session:
            row = session.scalars(
                statement.order_by(MonitoringResult.window_start.desc()).limit(1)
            ).first()
        if row is None:
            msg = f"no {window} window computed for deployment {deployment!r}"
            raise NotFoundError(msg)
        return summary_of(row) | {"result": json.loads(row.result)}


def _of(series: _Series) -> Sequence[Any]:
    return (
        Prediction.deployment == series.deployment,
        Prediction.version == series.version,
        Prediction.shadow.is_(False),
    )


def summary_of(row: MonitoringResult) -> dict[str, Any]:
    return {
        "deployment": row.deployment,
        "model": row.model_name,
        "version": row.version,
        "window": row.window_kind,
        "start": row.window_start.isoformat(),
        "end": row.window_end.isoformat(),
        "rows": row.rows,
        "labelled": row.labelled,
        "status": row.status,
        "verdict": row.verdict,
        "drifted": row.drifted,
        "alerts": json.loads(row.alerts),
    }
