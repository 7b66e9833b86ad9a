"""Judging a validation report against a model's promotion policy (pure, no I/O)."""

from __future__ import annotations

from typing import Any

from medops.registry.schemas import PromotionPolicy

_MINIMA = (
    ("min_auroc", "auroc", "AUROC"),
    ("min_auprc", "auprc", "AUPRC"),
    ("min_sensitivity", "sensitivity", "sensitivity"),
    ("min_specificity", "specificity", "specificity"),
)
_MAXIMA = (
    ("max_ece", "ece", "expected calibration error"),
    ("max_brier", "brier", "Brier score"),
)


def judge(report: dict[str, Any], policy: PromotionPolicy) -> list[str]:
    """Every threshold of ``policy`` the report fails, as sentences; empty when it passes.

    A metric the report could not compute (``None``) fails its threshold: what cannot be
    shown is not assumed."""
    failures: list[str] = []
    metrics: dict[str, dict[str, Any]] = report.get("metrics", {})
    for attr, key, label in _MINIMA:
        bound = getattr(policy, attr)
        if bound is None:
            continue
        value = metrics.get(key, {}).get("value")
        if value is None:
            failures.append(f"{label} could not be computed (policy needs >= {bound:g})")
        elif value < bound:
            failures.append(f"{label} {value:.4f} is below the minimum {bound:g}")
    for attr, key, label in _MAXIMA:
        bound = getattr(policy, attr)
        if bound is None:
            continue
        value = metrics.get(key, {}).get("value")
        if value is None:
            failures.append(f"{label} could not be computed (policy needs <= {bound:g})")
        elif value > bound:
            failures.append(f"{label} {value:.4f} is above the maximum {bound:g}")
    if policy.max_subgroup_gap is not None:
        failures.extend(_gaps(report, policy.gap_metric, policy.max_subgroup_gap))
    return failures


def _gaps(report: dict[str, Any], metric: str, bound: float) -> list[str]:
    failures = []
    for group in report.get("subgroups", []):
        if group.get("censored"):
            continue
        gap = group.get("metrics", {}).get(metric, {}).get("gap")
        label = f"{group['attribute']}={group['group']}"
        if gap is None:
            failures.append(f"{metric} of subgroup {label} could not be computed")
        elif abs(gap) > bound:
            failures.append(
                f"{metric} of subgroup {label} differs from overall by {gap:+.4f} "
                f"(maximum gap {bound:g})"
            )
    return failures
