"""Challenger against champion under the active change-control plan.

``CandidateService.evaluate_candidate`` scores the candidate version and the current
production version (the champion) on the same rows, the plan's fixed evaluation set and the
newest labelled data, compares them pairwise (``stats``: DeLong for AUROC, McNemar for
accuracy at each model's threshold, a paired bootstrap for Brier score, sensitivity and
specificity), measures subgroup gaps, and applies every rule of the plan. The report says
whether the candidate is within the plan and, when not, every reason; it is stored whole and
hashed, and audited. A within-plan report lets the version pass the approvals gate with the
plan's signatures (``plans.PlanService.cover``); an outside-plan candidate waits for the full
approval path.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select
from sqlalchemy.orm import Session

from medops.audit.schemas import AuditEntry
from medops.audit.service import AuditService
from medops.auth.common import require_actor
from medops.clock import Clock
from medops.context import Context
from medops.core.datasets import binary_labels, parse_csv
from medops.core.onnx_model import OnnxModel
from medops.core.signature import ModelSignature
from medops.db.engine import Database
from medops.errors import ConflictError, FieldError, IntegrityError, NotFoundError
from medops.registry import approvals as sig
from medops.registry.store import card_content, load_model
from medops.registry.tables import ModelVersion
from medops.retraining import stats
from medops.retraining.plan_schemas import (
    DEFAULT_THRESHOLD,
    FAMILY_TAG,
    THRESHOLD_PARAMETER,
    CandidateReport,
    Check,
    Comparison,
    DataEvaluation,
    DataRef,
    EvaluateRequest,
    PlanSpec,
    SubgroupResult,
)
from medops.retraining.plan_tables import CandidateEvaluation
from medops.retraining.plans import active_plan, load_plan_version, production_version
from medops.storage.base import DIGEST_PREFIX, BlobStore

# (ctx, dataset ref, path in the dataset, purpose) -> the file's bytes (DatasetService).
DataReader = Callable[[Context, str, str, str], bytes]
BOOTSTRAP_RESAMPLES = 500
_BOOLS = npt.NDArray[np.bool_]
_FLOATS = npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Scored:
    """One model on one evaluation set."""

    scores: _FLOATS
    threshold: float

    @property
    def predicted(self) -> _BOOLS:
        return self.scores >= self.threshold


def metrics(labels: _BOOLS, scored: _Scored) -> dict[str, float | None]:
    """AUROC, accuracy, sensitivity, specificity at the threshold, and the Brier score."""
    found = {
        "auroc": stats.auroc(labels, scored.scores),
        "accuracy": float((scored.predicted == labels).mean()) if labels.size else math.nan,
        "sensitivity": stats.sensitivity_at(scored.threshold)(labels, scored.scores),
        "specificity": stats.specificity_at(scored.threshold)(labels, scored.scores),
        "brier": stats.brier(labels, scored.scores),
    }
    return {k: (None if math.isnan(v) else v) for k, v in found.items()}


def _metric(name: str, labels: _BOOLS, scored: _Scored) -> float | None:
    return metrics(labels, scored)[name]


def threshold_of(row: ModelVersion) -> float:
    """A version's decision threshold: its ``threshold`` hyperparameter, else 0.5."""
    value = json.loads(row.hyperparameters or "{}").get(THRESHOLD_PARAMETER, DEFAULT_THRESHOLD)
    return float(value) if isinstance(value, int | float) else DEFAULT_THRESHOLD


def family_of(row: ModelVersion) -> str | None:
    """A version's model family: its tag ``model_family``, else its framework."""
    tags: dict[str, str] = json.loads(row.tags or "{}")
    return tags.get(FAMILY_TAG) or row.framework


def compare(
    labels: _BOOLS, candidate: _Scored, champion: _Scored, *, seed: int = 0
) -> list[Comparison]:
    """The paired comparisons of candidate (a) and champion (b) on the same rows."""
    found: list[Comparison] = []
    positives = int(labels.sum())
    if positives >= 2 and labels.size - positives >= 2:
        found.append(_comparison("auroc", stats.delong(labels, candidate.scores, champion.scores)))
    found.append(
        _comparison("accuracy", stats.mcnemar(labels, candidate.predicted, champion.predicted))
    )
    boot: list[tuple[str, stats.Metric, stats.Metric]] = [
        ("brier", stats.brier, stats.brier),
        (
            "sensitivity",
            stats.sensitivity_at(candidate.threshold),
            stats.sensitivity_at(champion.threshold),
        ),
        (
            "specificity",
            stats.specificity_at(candidate.threshold),
            stats.specificity_at(champion.threshold),
        ),
    ]
    for name, metric_a, metric_b in boot:
        result = stats.paired_bootstrap(
            labels,
            candidate.scores,
            champion.scores,
            metric_a,
            metric_b=metric_b,
            name=name,
            n_resamples=BOOTSTRAP_RESAMPLES,
            seed=seed,
        )
        found.append(_comparison(name, result, test="bootstrap"))
    return found


def _comparison(name: str, result: stats.PairedTest, test: str | None = None) -> Comparison:
    def finite(value: float) -> float | None:
        return None if math.isnan(value) else value

    return Comparison(
        metric=name,
        test=test or result.test,
        candidate=result.value_a,
        champion=result.value_b,
        difference=result.difference,
        ci_low=finite(result.ci_low),
        ci_high=finite(result.ci_high),
        p_value=finite(result.p_value),
    )


def subgroups(
    spec: PlanSpec,
    labels: _BOOLS,
    groups: dict[str, list[str]],
    candidate: _Scored,
    champion: _Scored | None,
) -> list[SubgroupResult]:
    """Each subgroup limit's groups (of at least ``min_rows`` rows): the candidate's metric
    in the group against all rows, and the champion's gap beside it."""
    found: list[SubgroupResult] = []
    for limit in spec.subgroup_limits:
        values = np.asarray(groups[limit.attribute])
        overall = _metric(limit.metric, labels, candidate)
        champion_overall = _metric(limit.metric, labels, champion) if champion else None
        for group in sorted(set(values.tolist())):
            mask = values == group
            rows = int(mask.sum())
            if rows < limit.min_rows:
                continue
            sub = _Scored(candidate.scores[mask], candidate.threshold)
            value = _metric(limit.metric, labels[mask], sub)
            gap = None if value is None or overall is None else value - overall
            champion_gap = None
            if champion is not None and champion_overall is not None:
                champ = _metric(
                    limit.metric, labels[mask], _Scored(champion.scores[mask], champion.threshold)
                )
                champion_gap = None if champ is None else champ - champion_overall
            found.append(
                SubgroupResult(
                    attribute=limit.attribute,
                    group=str(group),
                    rows=rows,
                    metric=limit.metric,
                    candidate=value,
                    overall=overall,
                    gap=gap,
                    champion_gap=champion_gap,
                    max_gap=limit.max_gap,
                    within=gap is not None and abs(gap) <= limit.max_gap,
                )
            )
    return found


class CandidateService:
    """Judge candidate versions against the active plan and the champion."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        audit: AuditService,
        blobs: BlobStore,
        reader: DataReader,
    ) -> None:
        self._db = db
        self._clock = clock
        self._audit = audit
        self._blobs = blobs
        self._reader = reader

    def reports(self, name: str, version: int | None = None) -> list[CandidateReport]:
        """A model's candidate reports (of one version), newest first."""
        with self._db.session() as session:
            model = load_model(session, name)
            query = select(CandidateEvaluation).where(CandidateEvaluation.model_id == model.id)
            if version is not None:
                query = query.where(
                    CandidateEvaluation.version_id == load_plan_version(session, model, version).id
                )
            rows = session.scalars(
                query.order_by(CandidateEvaluation.created_at.desc(), CandidateEvaluation.id)
            ).all()
            return [CandidateReport.model_validate_json(r.report) for r in rows]

    def report(self, name: str, report_id: str) -> CandidateReport:
        with self._db.session() as session:
            model = load_model(session, name)
            row = session.get(CandidateEvaluation, report_id)
            if row is None or row.model_id != model.id:
                raise NotFoundError(f"{name} has no candidate report {report_id!r}")
            return CandidateReport.model_validate_json(row.report)

    def evaluate_candidate(
        self, ctx: Context, name: str, version: int, request: EvaluateRequest
    ) -> CandidateReport:
        """Evaluate ``name/version`` against the active plan and the champion; stored and
        audited, within the plan or not."""
        actor = require_actor(ctx)
        with self._db.session() as session:
            model = load_model(session, name)
            plan = active_plan(session, model)
            if plan is None:
                raise ConflictError(
                    f"{name} has no active change-control plan: every candidate takes the full "
                    "approval path (medops plans create, then sign)"
                )
            row = load_plan_version(session, model, version)
            champion = production_version(session, model)
            if champion is not None and champion.id == row.id:
                raise ConflictError(
                    f"{name}/{version} is the production version; a candidate must be another",
                    errors=[FieldError("version", "is the champion")],
                )
            spec = PlanSpec.model_validate_json(plan.spec)
            plan_id, plan_number, plan_hash = plan.id, plan.number, plan.plan_hash
            cand_sig = ModelSignature.model_validate_json(row.signature)
            checks = _static_checks(session, spec, row, champion)
            models = {"candidate": (row.artifact_digest, cand_sig, threshold_of(row))}
            if champion is not None:
                models["champion"] = (
                    champion.artifact_digest,
                    ModelSignature.model_validate_json(champion.signature),
                    threshold_of(champion),
                )
            version_id, champion_number = row.id, champion.version if champion else None
        loaded = {k: (self._model(d, s), t) for k, (d, s, t) in models.items()}
        evaluations = []
        sources: list[tuple[str, DataRef | None]] = [
            ("fixed", spec.evaluation.fixed_set),
            ("recent", request.recent),
        ]
        for kind, source in sources:
            if source is None:
                checks.append(
                    Check(
                        rule="recent.data",
                        passed=False,
                        detail="no newest labelled data was given to judge the candidate on",
                    )
                )
                continue
            evaluation = self._evaluate(ctx, kind, source, spec, cand_sig, loaded)
            evaluations.append(evaluation)
            checks.extend(_data_checks(spec, evaluation))
        reasons = [c.detail for c in checks if not c.passed]
        report = CandidateReport(
            id="cand_" + secrets.token_hex(8),
            model=name,
            candidate=version,
            champion=champion_number,
            plan=plan_number,
            plan_hash=plan_hash,
            evaluations=evaluations,
            checks=checks,
            within_plan=not reasons,
            reasons=reasons,
            created_at=self._clock.now(),
            created_by=actor.username,
        )
        document = report.model_dump(mode="json")
        with self._db.transaction() as session:
            model = load_model(session, name, for_update=True)
            self._audit.record(
                session,
                ctx,
                AuditEntry(
                    action="retraining.candidate.evaluate",
                    resource_type="model_version",
                    resource_id=f"{name}/{version}",
                    details={
                        "report": report.id,
                        "plan": plan_number,
                        "plan_hash": plan_hash,
                        "champion": champion_number,
                        "within_plan": report.within_plan,
                        "reasons": reasons,
                    },
                ),
            )
            session.add(
                CandidateEvaluation(
                    id=report.id,
                    model_id=model.id,
                    version_id=version_id,
                    plan_id=plan_id,
                    within_plan=report.within_plan,
                    report=sig.canonical_json(document),
                    report_hash=sig.sha256_json(document),
                    created_at=report.created_at,
                    created_by=actor.username,
                )
            )
        return report

    # -- pieces ---------------------------------------------------------------------------

    def _model(self, digest: str, signature: ModelSignature) -> OnnxModel:
        return OnnxModel(self._blobs.get(DIGEST_PREFIX + digest), signature)

    def _read(self, ctx: Context, source: DataRef) -> bytes:
        if source.dataset is not None:
            data = self._reader(ctx, source.dataset, source.path, "candidate evaluation")
        else:
            try:
                data = Path(source.path).read_bytes()
            except OSError as exc:
                raise NotFoundError(f"cannot read {source.path}: {exc.strerror}") from exc
        digest = hashlib.sha256(data).hexdigest()
        if source.sha256 is not None and digest != source.sha256:
            raise IntegrityError(
                f"{source.path} does not match its pinned sha256 (now {digest[:12]}...)"
            )
        return data

    def _evaluate(
        self,
        ctx: Context,
        kind: str,
        source: DataRef,
        spec: PlanSpec,
        signature: ModelSignature,
        loaded: dict[str, tuple[OnnxModel, float]],
    ) -> DataEvaluation:
        data = self._read(ctx, source)
        label_column = spec.evaluation.label_column
        parsed = parse_csv(data, signature, label_column=label_column)
        labels = np.asarray(
            binary_labels(parsed.labels, signature, label_column=label_column), dtype=bool
        )
        groups = _columns(data, [limit.attribute for limit in spec.subgroup_limits], kind)
        scored = {
            k: _Scored(np.asarray(m.positive_scores(parsed.columns), dtype=np.float64), t)
            for k, (m, t) in loaded.items()
        }
        candidate, champion = scored["candidate"], scored.get("champion")
        return DataEvaluation(
            name=kind,
            source=source,
            sha256=hashlib.sha256(data).hexdigest(),
            rows=int(labels.size),
            positives=int(labels.sum()),
            candidate_threshold=candidate.threshold,
            champion_threshold=champion.threshold if champion else None,
            candidate=metrics(labels, candidate),
            champion=metrics(labels, champion) if champion else None,
            comparisons=compare(labels, candidate, champion) if champion else [],
            subgroups=subgroups(spec, labels, groups, candidate, champion),
        )


def _columns(data: bytes, names: list[str], kind: str) -> dict[str, list[str]]:
    """The named columns of a CSV as text (the subgroup attributes)."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    missing = [n for n in names if n not in (reader.fieldnames or [])]
    if missing:
        raise ConflictError(
            f"the {kind} evaluation data has no column {missing[0]!r} for a subgroup limit",
            errors=[FieldError(f"subgroup_limits.{m}", "no such column") for m in missing],
        )
    found: dict[str, list[str]] = {n: [] for n in names}
    for record in reader:
        for n in names:
            found[n].append(record[n])
    return found


def _static_checks(
    session: Session, spec: PlanSpec, row: ModelVersion, champion: ModelVersion | None
) -> list[Check]:
    """The rules that need no data: family, threshold, hyperparameters, features and schema,
    intended use and population (the card's exclusion criteria) unchanged."""
    checks: list[Check] = []
    family = family_of(row)
    checks.append(
        Check(
            rule="allowed.families",
            passed=family in spec.allowed.families,
            detail=f"model family {family!r} "
            + ("is" if family in spec.allowed.families else "is not")
            + f" among the plan's families {spec.allowed.families}",
        )
    )
    threshold = threshold_of(row)
    low, high = spec.allowed.threshold_low, spec.allowed.threshold_high
    checks.append(
        Check(
            rule="allowed.threshold",
            passed=low <= threshold <= high,
            detail=f"decision threshold {threshold:g} "
            + ("lies" if low <= threshold <= high else "lies outside")
            + f" in the plan's range [{low:g}, {high:g}]",
        )
    )
    params: dict[str, Any] = json.loads(row.hyperparameters or "{}")
    params.pop(THRESHOLD_PARAMETER, None)
    champion_params: dict[str, Any] = (
        json.loads(champion.hyperparameters or "{}") if champion else {}
    )
    champion_params.pop(THRESHOLD_PARAMETER, None)
    for key in sorted(set(params) | set(champion_params)):
        allowed = spec.allowed.hyperparameters.get(key)
        value = params.get(key)
        if allowed is not None:
            ok = allowed.allows(value)
            detail = (
                f"hyperparameter {key}={value!r} "
                + ("is " if ok else "is not ")
                + allowed.describe()
            )
        elif spec.allowed.other_hyperparameters == "free" or champion is None:
            continue
        else:
            ok = value == champion_params.get(key)
            detail = (
                f"hyperparameter {key}={value!r} "
                + ("equals" if ok else "differs from")
                + f" the champion's {champion_params.get(key)!r} (the plan does not let it change)"
            )
        checks.append(Check(rule=f"allowed.hyperparameters.{key}", passed=ok, detail=detail))
    signature = ModelSignature.model_validate_json(row.signature)
    names = sorted(signature.feature_names)
    ok = names == sorted(spec.fixed.features)
    checks.append(
        Check(
            rule="fixed.features",
            passed=ok,
            detail="the input features are the plan's"
            if ok
            else f"the input features {names} differ from the plan's {sorted(spec.fixed.features)}",
        )
    )
    if champion is not None:
        same = json.loads(champion.signature) == json.loads(row.signature)
        if not spec.allowed.retrain_on_new_data:
            detail = "the plan does not allow retraining on new data"
        elif same:
            detail = "the candidate keeps the champion's schema (inputs and outputs)"
        else:
            detail = "the candidate's signature (inputs or outputs) differs from the champion's"
        checks.append(
            Check(
                rule="allowed.retrain_on_new_data",
                passed=same and spec.allowed.retrain_on_new_data,
                detail=detail,
            )
        )
        mine, _ = card_content(session, row.id)
        theirs, _ = card_content(session, champion.id)
        for field, label in (
            ("intended_use", "intended use"),
            ("exclusion_criteria", "population"),
        ):
            a, b = getattr(mine, field), getattr(theirs, field)
            if a is None or b is None:
                continue
            checks.append(
                Check(
                    rule=f"fixed.{label.replace(' ', '_')}",
                    passed=a.strip() == b.strip(),
                    detail=f"the model card's {label} "
                    + ("is unchanged" if a.strip() == b.strip() else "differs from the champion's"),
                )
            )
    return checks


def _data_checks(spec: PlanSpec, evaluation: DataEvaluation) -> list[Check]:
    """Floors, non-inferiority and subgroup limits on one evaluation set."""
    kind = evaluation.name
    checks: list[Check] = []
    if kind == "recent" and evaluation.rows < spec.evaluation.recent_min_rows:
        checks.append(
            Check(
                rule="recent.rows",
                passed=False,
                detail=f"{evaluation.rows} recent labelled rows, fewer than the plan's "
                f"{spec.evaluation.recent_min_rows}",
            )
        )
    for metric, floor in sorted(spec.floors.minimum.items()):
        value = evaluation.candidate.get(metric)
        ok = value is not None and value >= floor
        shown = "undefined" if value is None else f"{value:.4f}"
        checks.append(
            Check(
                rule=f"{kind}.floor.{metric}",
                passed=ok,
                detail=f"{kind} set: {metric} {shown} "
                + ("meets" if ok else "is below")
                + f" the floor {floor:g}",
            )
        )
    if spec.floors.max_brier is not None:
        value = evaluation.candidate.get("brier")
        ok = value is not None and value <= spec.floors.max_brier
        shown = "undefined" if value is None else f"{value:.4f}"
        checks.append(
            Check(
                rule=f"{kind}.floor.brier",
                passed=ok,
                detail=f"{kind} set: Brier score {shown} "
                + ("within" if ok else "above")
                + f" the maximum {spec.floors.max_brier:g}",
            )
        )
    margin = spec.floors.auroc_non_inferiority_margin
    delong = next((c for c in evaluation.comparisons if c.metric == "auroc"), None)
    if margin is not None and evaluation.champion is not None:
        ok = delong is not None and delong.ci_low is not None and delong.ci_low >= -margin
        low = "undefined" if delong is None or delong.ci_low is None else f"{delong.ci_low:+.4f}"
        checks.append(
            Check(
                rule=f"{kind}.non_inferiority.auroc",
                passed=ok,
                detail=f"{kind} set: AUROC difference to the champion, lower end {low} "
                + ("within" if ok else "beyond")
                + f" the non-inferiority margin -{margin:g} (DeLong)",
            )
        )
    for group in evaluation.subgroups:
        gap = "undefined" if group.gap is None else f"{group.gap:+.4f}"
        checks.append(
            Check(
                rule=f"{kind}.subgroup.{group.attribute}",
                passed=group.within,
                detail=f"{kind} set: {group.metric} of {group.attribute}={group.group} "
                f"({group.rows} rows) differs from all rows by {gap} "
                + ("within" if group.within else "beyond")
                + f" the limit {group.max_gap:g}",
            )
        )
    return checks
