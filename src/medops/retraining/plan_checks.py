"""The rules of a change-control plan applied to a candidate (pure but for the card read):
what may change (family, threshold, hyperparameters), what may not (features and schema,
intended use, population), and, per evaluation set, the floors, the AUROC non-inferiority
margin and the subgroup limits. Each rule is one ``Check`` whose ``detail`` reads as a
sentence; the failing ones are the report's reasons."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from medops.core.signature import ModelSignature
from medops.registry.store import card_content
from medops.registry.tables import ModelVersion
from medops.retraining.plan_schemas import (
    DEFAULT_THRESHOLD,
    FAMILY_TAG,
    THRESHOLD_PARAMETER,
    Check,
    DataEvaluation,
    PlanSpec,
)


def threshold_of(row: ModelVersion) -> float:
    """A version's decision threshold: its ``threshold`` hyperparameter, else 0.5."""
    value = json.loads(row.hyperparameters or "{}").get(THRESHOLD_PARAMETER, DEFAULT_THRESHOLD)
    return float(value) if isinstance(value, int | float) else DEFAULT_THRESHOLD


def family_of(row: ModelVersion) -> str | None:
    """A version's model family: its tag ``model_family``, else its framework."""
    tags: dict[str, str] = json.loads(row.tags or "{}")
    return tags.get(FAMILY_TAG) or row.framework


def static_checks(
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


def data_checks(spec: PlanSpec, evaluation: DataEvaluation) -> list[Check]:
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
