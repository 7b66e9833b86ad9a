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
        failures.extend(
            _gaps(report, policy.gap_metric, policy.max_subgroup_gap, policy.gap_judged_by)
        )
    return failures


def _gaps(report: dict[str, Any], metric: str, bound: float, judged_by: str) -> list[str]:
    """Groups whose gap exceeds ``bound``: by the point gap, or (``interval``) only when the
    gap's whole interval (the group's interval less the overall value) lies beyond it."""
    failures = []
    overall = report.get("metrics", {}).get(metric, {}).get("value")
    for group in report.get("subgroups", []):
        if group.get("censored"):
            continue
        stats = group.get("metrics", {}).get(metric, {})
        gap = stats.get("gap")
        label = f"{group['attribute']}={group['group']}"
        if gap is None:
            failures.append(f"{metric} of subgroup {label} could not be computed")
            continue
        low, high = stats.get("ci_low"), stats.get("ci_high")
        if judged_by == "interval" and overall is not None and None not in (low, high):
            gap_low, gap_high = low - overall, high - overall
            if gap_low > bound or gap_high < -bound:
                failures.append(
                    f"{metric} of subgroup {label} differs from overall by {gap:+.4f}, "
                    f"interval {gap_low:+.4f} to {gap_high:+.4f} wholly beyond the maximum "
                    f"gap {bound:g}"
                )
        elif abs(gap) > bound:
            how = " (no interval to judge by)" if judged_by == "interval" else ""
            failures.append(
                f"{metric} of subgroup {label} differs from overall by {gap:+.4f} "
                f"(maximum gap {bound:g}){how}"
            )
    return failures


def loosenings(before: PromotionPolicy, after: PromotionPolicy) -> list[str]:
    """Every way ``after`` asks less of a version than ``before``, as sentences; empty when
    ``after`` is as strict or stricter in every rule.

    One person may tighten a policy; loosening it is a governed change (two signatures, one a
    clinician). A rule that changes what it measures (the subgroup gap metric) counts as a
    loosening, since a stricter value of one metric says nothing about another."""
    found = [
        f"removes the protected alias {alias!r}"
        for alias in sorted(set(before.protected_aliases) - set(after.protected_aliases))
    ]
    for attr, _key, label in _MINIMA:
        old, new = getattr(before, attr), getattr(after, attr)
        if old is not None and (new is None or new < old):
            found.append(f"lowers the minimum {label} from {old:g} to {_bound(new)}")
    for attr, _key, label in _MAXIMA:
        old, new = getattr(before, attr), getattr(after, attr)
        if old is not None and (new is None or new > old):
            found.append(f"raises the maximum {label} from {old:g} to {_bound(new)}")
    old_gap, new_gap = before.max_subgroup_gap, after.max_subgroup_gap
    if old_gap is not None and (new_gap is None or new_gap > old_gap):
        found.append(f"raises the maximum subgroup gap from {old_gap:g} to {_bound(new_gap)}")
    if old_gap is not None and before.gap_metric != after.gap_metric:
        found.append(f"judges subgroup gaps by {after.gap_metric} instead of {before.gap_metric}")
    if old_gap is not None and (before.gap_judged_by, after.gap_judged_by) == (
        "estimate",
        "interval",
    ):
        found.append("judges subgroup gaps by their interval instead of the point gap")
    if before.require_parity and not after.require_parity:
        found.append("no longer requires a parity check")
    if before.require_complete_card and not after.require_complete_card:
        found.append("no longer requires a complete model card")
    for role, count in sorted(before.required_approvals.items()):
        new_count = after.required_approvals.get(role, 0)
        if new_count < count:
            found.append(f"needs {new_count} instead of {count} {role.value} approval(s)")
    return found


def _bound(value: float | None) -> str:
    return "none (check off)" if value is None else f"{value:g}"
