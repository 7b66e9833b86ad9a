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

import bisect
import dataclasses
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, defer
from sqlalchemy.sql.elements import ClauseElement

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService, exempt_from_audit_guard
from medops.clock import Clock
from medops.context import Context
from medops.core import datasets
from medops.core.signature import ModelSignature
from medops.core.windows import (
    MAX_WINDOWS,
    count_size,
    count_windows,
    floor,
    length_of,
    sequence_of,
)
from medops.db.engine import Database
from medops.errors import ConflictError, MedopsError, NotFoundError
from medops.logs import get_logger
from medops.monitoring import configs, logread
from medops.monitoring.evaluate import WindowRows, evaluate_window
from medops.monitoring.explained import WindowExplainer
from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.results import WindowDocument, WindowResult, WindowSummary
from medops.monitoring.schemas import MonitoringConfig
from medops.monitoring.tables import MonitoringProfile, MonitoringResult
from medops.monitoring.thresholds import Applied, applied
from medops.monitoring.trend import Trend, TrendRow, assemble, trend_of
from medops.registry.tables import ModelVersion, RegisteredModel, ValidationReport
from medops.registry.validation_report import ReportDocument
from medops.serving.tables import Outcome, Prediction
from medops.storage.base import DIGEST_PREFIX, BlobStore

log = get_logger("medops.monitoring")
GRACE = timedelta(seconds=60)
# Outcomes arriving up to this long after a window's end bring it up to date (_relabelled).
LABEL_HORIZON = timedelta(days=90)
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
    updated: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    # Windows with predictions that are not complete yet, and when they will be.
    pending: list[dict[str, Any]] = field(default_factory=list)
    # Whether any prediction has been logged at all (a first day's run computes nothing).
    logged: bool = False


@dataclass
class _Series:
    deployment: str
    model_name: str
    version: int

    @property
    def log(self) -> logread.LogSeries:
        return logread.LogSeries(self.deployment, self.version)


# A version's reference profile as a run found it: (profile, signature, the row to store when
# it was built now), or why it cannot be monitored.
_Built = tuple[ReferenceProfile, ModelSignature, MonitoringProfile | None] | str


class MonitoringService:
    """Computes, stores and serves monitoring windows."""

    def __init__(self, db: Database, clock: Clock, audit: AuditService, blobs: BlobStore) -> None:
        self.db = db
        self._clock = clock
        self._audit = audit
        self._blobs = blobs
        self._running = threading.Lock()
        self._explainers = WindowExplainer(db, blobs)  # attribution drift (attribution.py)

    # --- running -------------------------------------------------------------------------

    def run(self, ctx: Context, window: str = "day", *, now: datetime | None = None) -> RunSummary:
        """Compute every due window of ``window`` kind; returns what was computed."""
        count_size(window)  # a clear error for an unknown kind
        # A window is complete once its end is GRACE behind: a prediction stamped just before
        # the end may still be on its way through the group commit.
        now = (now or self._clock.now()) - GRACE
        with self._running:  # runs of this process one at a time; others: see _store
            return self._run(ctx, window, now)

    def _run(self, ctx: Context, window: str, now: datetime) -> RunSummary:
        summary = RunSummary(window=window)
        rows: list[MonitoringResult] = []
        updates: list[MonitoringResult] = []
        profiles: list[MonitoringProfile] = []
        # Several deployments may serve one version: its profile is built (and stored) once.
        built: dict[tuple[str, int], _Built] = {}
        for series in self._series():
            try:
                found = self._series_windows(series, window, now, built)
            except SQLAlchemyError:
                raise  # the database is everyone's: the run fails as a whole
            except MedopsError as exc:  # this version's data or model: the others go on
                found = f"cannot monitor this version: {exc.message}"
            except Exception as exc:  # noqa: BLE001 - one broken version must not stop the rest
                log.error(
                    "monitoring of one version failed",
                    deployment=series.deployment,
                    version=series.version,
                    error=type(exc).__name__,
                )
                found = f"cannot monitor this version: internal error ({type(exc).__name__})"
            if isinstance(found, str):
                summary.skipped.append(
                    {"deployment": series.deployment, "version": str(series.version),
                     "reason": found}
                )  # fmt: skip
                continue
            stored, relabelled, computed = found
            profiles.extend(stored)
            updates.extend(relabelled)
            rows.extend(computed)
        rows, profiles = self._store(ctx, window, rows, profiles, updates)
        summary.computed = [summary_of(row) for row in rows]
        series_all = self._series()
        summary.logged = bool(series_all)
        summary.pending = [p for s in series_all if (p := self._pending(s, window, now))]
        summary.updated = [summary_of(row) for row in updates]
        log.info(
            "monitoring run",
            window=window,
            windows=len(rows),
            updated=len(updates),
            skipped=len(summary.skipped),
        )
        return summary

    def _series_windows(
        self, series: _Series, window: str, now: datetime, built: dict[tuple[str, int], _Built]
    ) -> tuple[list[MonitoringProfile], list[MonitoringResult], list[MonitoringResult]] | str:
        """One series' new profile (if built now, and not for another deployment of this
        run), windows computed again, new windows; or why it is skipped."""
        key = (series.model_name, series.version)
        first = key not in built
        if first:
            built[key] = self._profile(series)
        found = built[key]
        if isinstance(found, str):
            return found
        profile, signature, stored = found
        if not first:
            stored = None
        relabelled = self._relabelled(series, profile, signature, window, now)
        computed = self._windows(series, profile, signature, window, now)
        return ([stored] if stored is not None else []), relabelled, computed

    def _store(
        self,
        ctx: Context,
        window: str,
        rows: list[MonitoringResult],
        profiles: list[MonitoringProfile],
        updates: list[MonitoringResult],
    ) -> tuple[list[MonitoringResult], list[MonitoringProfile]]:
        """Write what another run (another process) has not written meanwhile, with the run's
        audit record; a run that lost a race outright is a ConflictError (run again)."""
        for _attempt in range(STORE_ATTEMPTS):
            try:
                return self._store_once(ctx, window, rows, profiles, updates)
            except IntegrityError:  # another run committed first: see what is left to store
                for row in rows:
                    row.id = None  # type: ignore[assignment]  # let the database number it
        msg = "other monitoring runs kept storing these windows at the same time; run again"
        raise ConflictError(msg)

    def _store_once(
        self,
        ctx: Context,
        window: str,
        rows: list[MonitoringResult],
        profiles: list[MonitoringProfile],
        updates: list[MonitoringResult],
    ) -> tuple[list[MonitoringResult], list[MonitoringProfile]]:
        if not (rows or profiles or updates):
            return rows, profiles
        with self.db.transaction() as session:
            done = set(
                session.execute(
                    select(
                        MonitoringResult.deployment,
                        MonitoringResult.version,
                        MonitoringResult.sequence,
                    ).where(MonitoringResult.window_kind == window)
                ).all()
            )
            rows = [r for r in rows if (r.deployment, r.version, r.sequence) not in done]
            kept = set(session.scalars(select(MonitoringProfile.version_id)).all())
            profiles = [p for p in profiles if p.version_id not in kept]
            if not (rows or profiles or updates):
                return rows, profiles
            session.add_all([*profiles, *rows])
            # Outcomes arrived: the window computed again, in its own row, unless another
            # run stored a version read later than this one meanwhile.
            updates[:] = [u for u in updates if _update(session, u)]
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
                        "updated": len(updates),
                        "drifted": sum(1 for r in rows if r.drifted),
                    },
                ),
            )
        return rows, profiles

    def _series(self) -> list[_Series]:
        """Every (deployment, version) in the log with rows that are not shadow ones: a few
        index seeks per series (a loose index scan), not a pass over millions of rows."""
        found: list[_Series] = []
        with self.db.session() as session:
            deployment: str | None = None
            while True:
                after = select(Prediction.deployment).order_by(Prediction.deployment).limit(1)
                if deployment is not None:
                    after = after.where(Prediction.deployment > deployment)
                deployment = session.scalar(after)
                if deployment is None:
                    return found
                version: int | None = None
                while True:
                    following = (
                        select(Prediction.version)
                        .where(Prediction.deployment == deployment)
                        .order_by(Prediction.version)
                        .limit(1)
                    )
                    if version is not None:
                        following = following.where(Prediction.version > version)
                    version = session.scalar(following)
                    if version is None:
                        break
                    model = session.scalar(
                        select(Prediction.model_name)
                        .where(*_of(_Series(deployment, "", version)))
                        .limit(1)
                    )
                    if model is not None:  # None: only shadow rows
                        found.append(_Series(deployment, model, version))

    def _profile(self, series: _Series) -> _Built:
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
        from medops.core.onnx_model import OnnxModel

        data = self._blobs.get(DIGEST_PREFIX + report.dataset_digest)
        parsed = datasets.parse_csv(data, signature, label_column=report.label_column)
        labels = datasets.binary_labels(parsed.labels, signature, label_column=report.label_column)
        artifact = self._blobs.get(DIGEST_PREFIX + version.artifact_digest)
        scores = OnnxModel(artifact, signature).positive_scores(parsed.columns)
        measured = ReportDocument.load(json.loads(report.report))
        baseline = {ours: measured.value(theirs) for theirs, ours in BASELINE_NAMES.items()}
        return ReferenceProfile.build(
            signature,
            parsed.columns,
            scores,
            [bool(v) for v in labels],
            baseline=baseline,
            threshold=float(measured.threshold),
        )

    def _windows(
        self,
        series: _Series,
        profile: ReferenceProfile,
        signature: ModelSignature,
        kind: str,
        now: datetime,
    ) -> list[MonitoringResult]:
        """The series' complete windows of ``kind`` after the last one stored. Stretches of
        time without predictions are stepped over, not walked window by window."""
        size = count_size(kind)
        if size is not None:
            return self._count_windows(series, profile, signature, kind, size, now)
        with self.db.session() as session:
            last = session.scalar(
                select(func.max(MonitoringResult.window_end)).where(
                    MonitoringResult.deployment == series.deployment,
                    MonitoringResult.version == series.version,
                    MonitoringResult.window_kind == kind,
                )
            )
        following = self._next_prediction(series, last)
        if following is None:
            return []
        judged = applied(profile, self._config(series.deployment))
        length = length_of(kind)
        start = floor(following, kind)
        previous: WindowRows | None = None
        if last is not None and start == last:  # right after the last stored window
            previous = self._rows(series, signature, start - length, start)
        rows: list[MonitoringResult] = []
        while start + length <= now and len(rows) < MAX_WINDOWS:
            end = start + length
            read_at = self._clock.now()
            current = self._rows(series, signature, start, end)
            if current.rows:
                rows.append(
                    self._result(series, profile, signature, judged, kind,
                                 (start, end, sequence_of(start, kind)), current, previous,
                                 read_at)
                )  # fmt: skip
            following = self._next_prediction(series, end)
            if following is None:
                break
            start = floor(following, kind)
            previous = current if start == end else None
        return rows

    def _pending(self, series: _Series, kind: str, now: datetime) -> dict[str, Any] | None:
        """The series' window that has predictions but is not complete yet (``now`` is the
        run's time less the grace minute): when it completes, or how many predictions it
        still needs; None when every prediction is in a complete window."""
        size = count_size(kind)
        with self.db.session() as session:
            if size is not None:
                stored = session.scalar(
                    select(func.count()).where(
                        MonitoringResult.deployment == series.deployment,
                        MonitoringResult.version == series.version,
                        MonitoringResult.window_kind == kind,
                    )
                )
                total = session.scalar(select(func.count()).where(*_of(series))) or 0
                have = int(total) - int(stored or 0) * size
                if have <= 0:
                    return None
                return {
                    "deployment": series.deployment,
                    "version": series.version,
                    "window": kind,
                    "predictions": have,
                    "needs": size - have if have < size else 0,
                    "reason": (
                        f"{have} of {size} predictions so far"
                        if have < size
                        else "complete a minute after its last prediction (the next run)"
                    ),
                }
            latest = session.scalar(select(func.max(Prediction.occurred_at)).where(*_of(series)))
        if latest is None:
            return None
        start = floor(latest, kind)
        end = start + length_of(kind)
        if end <= now:
            return None
        with self.db.session() as session:
            so_far = session.scalar(
                select(func.count()).where(
                    *_of(series), Prediction.occurred_at >= start, Prediction.occurred_at < end
                )
            )
        return {
            "deployment": series.deployment,
            "version": series.version,
            "window": kind,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "complete_at": (end + GRACE).isoformat(),
            "predictions": int(so_far or 0),
            "reason": f"the {kind} is not over: complete at {(end + GRACE).isoformat()}",
        }

    def _next_prediction(self, series: _Series, after: datetime | None) -> datetime | None:
        """When the series' first prediction at or after ``after`` was made (None: none)."""
        statement = select(func.min(Prediction.occurred_at)).where(*_of(series))
        if after is not None:
            statement = statement.where(Prediction.occurred_at >= after)
        with self.db.session() as session:
            return session.scalar(statement)

    def _count_windows(
        self,
        series: _Series,
        profile: ReferenceProfile,
        signature: ModelSignature,
        kind: str,
        size: int,
        now: datetime,
    ) -> list[MonitoringResult]:
        """The series' complete windows of ``size`` consecutive predictions not stored yet."""
        with self.db.session() as session:
            last = session.scalar(
                select(func.max(MonitoringResult.sequence)).where(
                    MonitoringResult.deployment == series.deployment,
                    MonitoringResult.version == series.version,
                    MonitoringResult.window_kind == kind,
                )
            )
            total = session.scalar(
                select(func.count()).where(*_of(series), Prediction.occurred_at < now)
            )
        done = 0 if last is None else last + 1
        ranges = count_windows(int(total or 0), size, done=done)
        if not ranges:
            return []
        judged = applied(profile, self._config(series.deployment))
        previous: WindowRows | None = None
        after: tuple[datetime, str] | None = None
        if done:  # the window before: by position once, then each next one by key
            previous, _span, after = self._count_rows(series, signature, done - 1, size)
        rows: list[MonitoringResult] = []
        for index in range(done, done + len(ranges)):
            read_at = self._clock.now()
            current, span, after = self._count_rows(series, signature, index, size, after=after)
            rows.append(
                self._result(series, profile, signature, judged, kind, (*span, index), current,
                             previous, read_at)
            )  # fmt: skip
            previous = current
        return rows

    def _result(
        self,
        series: _Series,
        profile: ReferenceProfile,
        signature: ModelSignature,
        judged: Applied,
        kind: str,
        span: tuple[datetime, datetime, int],
        current: WindowRows,
        previous: WindowRows | None,
        read_at: datetime,
    ) -> MonitoringResult:
        """The stored result of one window; ``span`` is its start, end and sequence.
        ``computed_at`` is when its rows were read, less GRACE: an outcome recorded (or
        committed) around the read counts as later, and brings the window up to date at the
        next run (``_relabelled``)."""
        document = evaluate_window(
            profile,
            signature,
            current,
            previous=previous,
            thresholds=judged.thresholds,
            correction=judged.correction,
            min_samples=judged.min_samples,
            explained=self._explainers.explain(
                series.model_name, series.version, current.features, current.rows
            ),
        )
        document["configuration"] = judged.record
        typed = WindowResult.load(document)
        trend_keys, trend = trend_of(typed)
        return MonitoringResult(
            deployment=series.deployment,
            model_name=series.model_name,
            version=series.version,
            window_kind=kind,
            window_start=span[0],
            window_end=span[1],
            sequence=span[2],
            rows=current.rows,
            labelled=typed.labelled,
            status=typed.status,
            verdict=typed.verdict,
            drifted=typed.input_drift,
            alerts=json.dumps(list(typed.alerts)),
            result=json.dumps(document, sort_keys=True, allow_nan=False),
            computed_at=read_at - GRACE,
            trend_keys=trend_keys,
            trend=trend,
        )

    def _relabelled(
        self,
        series: _Series,
        profile: ReferenceProfile,
        signature: ModelSignature,
        kind: str,
        now: datetime,
    ) -> list[MonitoringResult]:
        """Stored windows whose outcomes arrived after they were computed (within
        LABEL_HORIZON of their end), computed again: realized performance replaces the
        estimate's place and is reconciled with it. Each keeps its row id (an update)."""
        with self.db.session() as session:
            stored = session.execute(
                select(
                    MonitoringResult.id,
                    MonitoringResult.sequence,
                    MonitoringResult.window_start,
                    MonitoringResult.window_end,
                    MonitoringResult.computed_at,
                )
                .where(
                    MonitoringResult.deployment == series.deployment,
                    MonitoringResult.version == series.version,
                    MonitoringResult.window_kind == kind,
                    MonitoringResult.labelled < MonitoringResult.rows,
                    MonitoringResult.window_end > now - LABEL_HORIZON,
                )
                .order_by(MonitoringResult.sequence)
            ).all()
            if not stored:
                return []
            arrived = session.execute(
                select(Prediction.occurred_at, Outcome.recorded_at)
                .join(Outcome, Outcome.prediction_id == Prediction.id)
                .where(
                    *_of(series),
                    Outcome.recorded_at > min(w.computed_at for w in stored),
                    Prediction.occurred_at >= stored[0].window_start,
                    Prediction.occurred_at < stored[-1].window_end,
                )
            ).all()
        # Starts and ends rise with the sequence. Count windows cut from one batch share its
        # timestamp, so an outcome at that moment may belong to any of them: each is checked.
        starts = [w.window_start for w in stored]
        stale: dict[int, Any] = {}
        for occurred, recorded in arrived:
            at = bisect.bisect_right(starts, occurred) - 1
            while at >= 0 and stored[at].window_end > occurred:
                if recorded > stored[at].computed_at:
                    stale[at] = stored[at]
                at -= 1
        if not stale:
            return []
        judged = applied(profile, self._config(series.deployment))
        size = count_size(kind)
        rows = []
        for _, window in sorted(stale.items()):
            start, end, sequence = window.window_start, window.window_end, window.sequence
            previous: WindowRows | None = None
            read_at = self._clock.now()
            if size is None:
                current = self._rows(series, signature, start, end)
                previous = self._rows(series, signature, start - (end - start), start)
            elif sequence:
                previous, _span, after = self._count_rows(series, signature, sequence - 1, size)
                current = self._count_rows(series, signature, sequence, size, after=after)[0]
            else:
                current = self._count_rows(series, signature, sequence, size)[0]
            row = self._result(
                series,
                profile,
                signature,
                judged,
                kind,
                (start, end, sequence),
                current,
                previous,
                read_at,
            )
            row.id = window.id
            rows.append(row)
        return rows

    def _config(self, deployment: str) -> MonitoringConfig:
        """The deployment's monitoring configuration (``configs.py``; defaults when none)."""
        return configs.load(self.db, deployment)

    def _rows(
        self, series: _Series, signature: ModelSignature, start: datetime, end: datetime
    ) -> WindowRows:
        return logread.read_window(self.db, series.log, signature, start, end)

    def _count_rows(
        self,
        series: _Series,
        signature: ModelSignature,
        index: int,
        size: int,
        *,
        after: logread.LogKey | None = None,
    ) -> tuple[WindowRows, tuple[datetime, datetime], logread.LogKey]:
        return logread.read_count_window(self.db, series.log, signature, index, size, after=after)

    # --- reading -------------------------------------------------------------------------

    def results(
        self, deployment: str, window: str = "day", *, limit: int = 100
    ) -> list[WindowSummary]:
        """The deployment's computed windows of ``window`` kind, newest first (summaries)."""
        with self.db.session() as session:
            rows = session.scalars(
                select(MonitoringResult)
                .where(
                    MonitoringResult.deployment == deployment,
                    MonitoringResult.window_kind == window,
                )
                .order_by(
                    MonitoringResult.window_start.desc(),
                    MonitoringResult.sequence.desc(),
                    MonitoringResult.version,
                )
                .limit(limit)
            ).all()
        return [WindowSummary.load(summary_of(r)) for r in rows]

    def latest(self, deployments: Sequence[str]) -> dict[str, WindowSummary]:
        """Each deployment's most recently ending window of any kind (the primary version's
        or a canary's), keyed by deployment; deployments with none are left out."""
        found: dict[str, WindowSummary] = {}
        with self.db.session() as session:
            for name in deployments:
                row = session.scalars(
                    select(MonitoringResult)
                    .options(defer(MonitoringResult.result))
                    .where(MonitoringResult.deployment == name)
                    .order_by(
                        MonitoringResult.window_end.desc(),
                        MonitoringResult.computed_at.desc(),
                        MonitoringResult.version.desc(),
                    )
                    .limit(1)
                ).first()
                if row is not None:
                    found[name] = WindowSummary.load(summary_of(row))
        return found

    def series(self, deployment: str) -> list[tuple[str, int]]:
        """The (window kind, version) series the deployment has windows in."""
        with self.db.session() as session:
            found = session.execute(
                select(MonitoringResult.window_kind, MonitoringResult.version)
                .where(MonitoringResult.deployment == deployment)
                .distinct()
            ).all()
        return sorted((kind, int(version)) for kind, version in found)

    def trend(
        self,
        deployment: str,
        window_kind: str,
        version: int,
        since: datetime | None = None,
    ) -> Trend:
        """The charted numbers of one series' windows ending after ``since`` (all when
        None), oldest first: only the trend columns are read, never the documents, except a
        row's without a trend (stored by a server before migration 0014)."""
        where = [
            MonitoringResult.deployment == deployment,
            MonitoringResult.window_kind == window_kind,
            MonitoringResult.version == version,
        ]
        if since is not None:
            where.append(MonitoringResult.window_end > since)
        # A series' windows nearly always share one list of names. On PostgreSQL the server
        # checks that every row's equals the newest row's (cheaper than grouping them), so
        # each row need not carry its ~4 KB over the wire; SQLite reads them in place.
        # Several lists: each row's own is read.
        newest = (
            select(MonitoringResult.trend_keys)
            .where(*where)
            .order_by(MonitoringResult.sequence.desc())
            .limit(1)
        )
        differing = (
            select(func.count())
            .select_from(MonitoringResult)
            .where(*where, MonitoringResult.trend_keys.is_distinct_from(newest.scalar_subquery()))
        )
        lean = [
            MonitoringResult.id,
            MonitoringResult.sequence,
            MonitoringResult.window_start,
            MonitoringResult.window_end,
            MonitoringResult.verdict,
            MonitoringResult.status,
            MonitoringResult.drifted,
            MonitoringResult.rows,
            MonitoringResult.labelled,
        ]
        with self.db.session() as session:
            shared: str | None = None
            if self.db.engine.dialect.name != "sqlite" and session.scalar(differing) == 0:
                shared = session.scalar(newest)
            keys_column = MonitoringResult.trend_keys if shared is None else literal(None)
            statement = select(*lean, keys_column, MonitoringResult.trend).where(*where)
            statement = statement.order_by(MonitoringResult.sequence)
            found: Sequence[Any] = (
                _binary_rows(session, statement)
                if self.db.engine.dialect.name == "postgresql"
                else session.execute(statement).all()
            )
            missing = [r[0] for r in found if r[-1] is None]
            documents = dict(
                session.execute(
                    select(MonitoringResult.id, MonitoringResult.result).where(
                        MonitoringResult.id.in_(missing)
                    )
                ).all()
            ) if missing else {}  # fmt: skip
        rows = [
            TrendRow(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9] or shared, r[10])
            for r in found
        ]
        computed: dict[int, tuple[str, bytes]] = {}
        for at, r in enumerate(found):
            if r[0] in documents:
                keys, packed = trend_of(WindowResult.load(json.loads(documents[r[0]])))
                rows[at] = dataclasses.replace(rows[at], trend_keys=keys, trend=packed)
                computed[r[0]] = (keys, packed)
        if computed:
            self._keep_trends(computed)
        return assemble(deployment, window_kind, version, rows)

    def _keep_trends(self, computed: dict[int, tuple[str, bytes]]) -> None:
        """Store the trends just computed for rows stored without one (before migration 0014),
        so the next chart reads them instead of the documents. Bookkeeping, not an action: the
        numbers are the stored document's own, so no audit record is due. A failure (a
        read-only replica) only means they are computed again next time."""
        try:
            with self.db.transaction() as session:
                exempt_from_audit_guard(session)
                for row_id, (keys, packed) in computed.items():
                    session.execute(
                        update(MonitoringResult)
                        .where(MonitoringResult.id == row_id, MonitoringResult.trend.is_(None))
                        .values(trend_keys=keys, trend=packed)
                    )
        except SQLAlchemyError:
            log.warning("trends of older windows not kept; computed again next time")

    def document(
        self,
        deployment: str,
        window: str | None = None,
        start: datetime | None = None,
        *,
        version: int | None = None,
        sequence: int | None = None,
    ) -> WindowDocument:
        """One window's full document: the latest computed (of any kind unless ``window``
        says) among those matching ``start``, ``version`` and ``sequence``."""
        statement = select(MonitoringResult).where(MonitoringResult.deployment == deployment)
        wanted = {
            MonitoringResult.window_kind: window,
            MonitoringResult.window_start: start,
            MonitoringResult.version: version,
            MonitoringResult.sequence: sequence,
        }
        for column, value in wanted.items():
            if value is not None:
                statement = statement.where(column == value)
        with self.db.session() as session:
            row = session.scalars(
                statement.order_by(
                    MonitoringResult.window_end.desc(),
                    MonitoringResult.computed_at.desc(),
                    MonitoringResult.sequence.desc(),
                    MonitoringResult.version.desc(),
                ).limit(1)
            ).first()
        if row is None:
            given = ", ".join(
                f"{name} {value}"
                for name, value in (
                    ("window", window), ("start", start), ("version", version),
                    ("sequence", sequence),
                )
                if value is not None
            )  # fmt: skip
            msg = f"no window computed for deployment {deployment!r}" + (
                f" with {given}" if given else ""
            )
            raise NotFoundError(msg + "; 'medops monitor results DEPLOYMENT' lists them")
        return WindowDocument.load(summary_of(row) | {"result": json.loads(row.result)})


def _binary_rows(session: Session, statement: ClauseElement) -> list[tuple[Any, ...]]:
    """The rows of a trend query on PostgreSQL in the binary protocol: the packed trends
    travel as their bytes, not hex-encoded text at twice their size, which halved the read
    of 2,160 windows (benchmarks/console_pages.py). Times come back as UTC, as
    ``UTCDateTime`` gives them."""
    compiled = statement.compile(dialect=session.get_bind().dialect)
    raw = session.connection().connection.driver_connection
    assert raw is not None
    with raw.cursor(binary=True) as cursor:
        cursor.execute(str(compiled), compiled.params)
        rows = cursor.fetchall()
    return [tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row) for row in rows]


def _of(series: _Series) -> Sequence[Any]:
    return logread.of(series.log)


def summary_of(row: MonitoringResult) -> dict[str, Any]:
    return {
        "deployment": row.deployment,
        "model": row.model_name,
        "version": row.version,
        "window": row.window_kind,
        "sequence": row.sequence,
        "start": row.window_start.isoformat(),
        "end": row.window_end.isoformat(),
        "rows": row.rows,
        "labelled": row.labelled,
        "status": row.status,
        "verdict": row.verdict,
        "drifted": row.drifted,
        "alerts": json.loads(row.alerts),
    }


def _update(session: Session, row: MonitoringResult) -> bool:
    """Replace a stored window's result with ``row`` when ``row`` was read later."""
    done = session.execute(
        update(MonitoringResult)
        .where(MonitoringResult.id == row.id, MonitoringResult.computed_at < row.computed_at)
        .values(
            rows=row.rows,
            labelled=row.labelled,
            status=row.status,
            verdict=row.verdict,
            drifted=row.drifted,
            alerts=row.alerts,
            result=row.result,
            computed_at=row.computed_at,
            trend_keys=row.trend_keys,
            trend=row.trend,
        )
    )
    return bool(getattr(done, "rowcount", 0))
