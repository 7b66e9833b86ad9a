"""Judging a validation report against a model's promotion policy (pure, no I/O)."""

from __future__ import annotations

from medops.registry.schemas import PromotionPolicy
from medops.registry.validation_report import ReportDocument

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


def judge(report: ReportDocument, policy: PromotionPolicy) -> list[str]:
    """Every threshold of ``policy`` the report fails, as sentences; empty when it passes.

    A metric the report could not compute (``None``) fails its threshold: what cannot be
    shown is not assumed."""
    failures: list[str] = []
    for attr, key, label in _MINIMA:
        bound = getattr(policy, attr)
        if bound is None:
            continue
        value = report.value(key)
        if value is None:
            failures.append(f"{label} could not be computed (policy needs >= {bound:g})")
        elif value < bound:
            failures.append(f"{label} {value:.4f} is below the minimum {bound:g}")
    for attr, key, label in _MAXIMA:
        bound = getattr(policy, attr)
        if bound is None:
            continue
        value = report.value(key)
        if value is None:
            failures.append(f"{label} could not be computed (policy needs <= {bound:g})")
        elif value > bound:
            failures.append(f"{label} {value:.4f} is above the maximum {bound:g}")
    if policy.max_subgroup_gap is not None:
        failures.extend(
            _gaps(report, policy.gap_metric, policy.max_subgroup_gap, policy.gap_judged_by)
        )
    return failures


def _gaps(report: ReportDocument, metric: str, bound: float, judged_by: str) -> list[str]:
    """Groups whose gap exceeds ``bound``: by the point gap, or (``interval``) only when the
    gap's whole interval (the group's interval less the overall value) lies beyond it."""
    failures = []
    overall = report.value(metric)
    for group in report.subgroups:
        if group.censored:
            continue
        stats = group.metrics.get(metric)
        gap = None if stats is None else stats.gap
        label = f"{group.attribute}={group.group}"
        if stats is None or gap is None:
            failures.append(f"{metric} of subgroup {label} could not be computed")
            continue
        low, high = stats.ci_low, stats.ci_high
        if judged_by == "interval" and overall is not None and low is not None and high is not None:
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
