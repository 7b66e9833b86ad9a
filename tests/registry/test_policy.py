"""Judging a validation report against a promotion policy, and telling a stricter policy from a
looser one (pure functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from medops.core.permissions import Role
from medops.registry.policy import judge, loosenings
from medops.registry.report import compute_report
from medops.registry.schemas import PromotionPolicy
from medops.registry.validation_report import ReportDocument
from tests.helpers import model_data


def _demo_report() -> ReportDocument:
    """The demo model's report with the age bands: the >=60 band has 24 patients."""
    _, x_eval, _, y_eval = model_data.frames()
    scores = model_data.pipeline().predict_proba(x_eval)[:, 1]
    bands = np.where(x_eval["age"] >= 60, ">=60", np.where(x_eval["age"] >= 40, "40-60", "<40"))
    return ReportDocument.load(
        compute_report(y_true=y_eval.to_numpy(), scores=scores, groups={"age": list(bands)}, seed=0)
    )


def test_a_small_groups_gap_fails_by_estimate_and_passes_when_its_interval_spans_the_limit() -> (
    None
):
    """The default policy fails the demo model on the >=60 band's point AUROC gap (-0.13 over
    24 patients); judged by interval, it passes, because that gap's interval reaches inside the
    0.10 limit; a gap whose whole interval lies beyond the limit fails either way."""
    report = _demo_report()
    (failure,) = judge(report, PromotionPolicy())
    assert "age=>=60" in failure
    assert judge(report, PromotionPolicy(gap_judged_by="interval")) == []
    strict = PromotionPolicy(max_subgroup_gap=0.0, gap_judged_by="interval")
    group = next(g for g in report.subgroups if g.group == ">=60").metrics["auroc"]
    overall = report.value("auroc")
    assert group.ci_low is not None
    assert group.ci_high is not None
    assert overall is not None
    beyond = group.ci_high - overall < 0 or group.ci_low - overall > 0
    assert bool(judge(report, strict)) == beyond


def test_interval_judging_falls_back_to_the_estimate_without_an_interval() -> None:
    """A report without bootstrap intervals is judged by the point gap, and says so."""
    _, x_eval, _, y_eval = model_data.frames()
    scores = model_data.pipeline().predict_proba(x_eval)[:, 1]
    bands = np.where(x_eval["age"] >= 60, ">=60", "<60")
    report = ReportDocument.load(
        compute_report(
            y_true=y_eval.to_numpy(), scores=scores, groups={"age": list(bands)}, n_bootstrap=0
        )
    )
    found = judge(report, PromotionPolicy(gap_judged_by="interval"))
    assert found
    assert all("no interval to judge by" in f for f in found)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"protected_aliases": ["production"]}, "removes the protected alias 'icu'"),
        ({"min_auroc": 0.6}, "lowers the minimum AUROC from 0.7 to 0.6"),
        ({"min_auroc": None}, "lowers the minimum AUROC from 0.7 to none (check off)"),
        ({"max_ece": 0.2}, "raises the maximum expected calibration error from 0.1 to 0.2"),
        ({"max_subgroup_gap": None}, "raises the maximum subgroup gap from 0.1 to none"),
        ({"gap_metric": "f1"}, "judges subgroup gaps by f1 instead of auroc"),
        ({"gap_judged_by": "interval"}, "judges subgroup gaps by their interval"),
        ({"require_parity": False}, "no longer requires a parity check"),
        ({"require_complete_card": False}, "no longer requires a complete model card"),
        (
            {"required_approvals": {Role.CLINICIAN: 1, Role.DATA_SCIENTIST: 1}},
            "needs 0 instead of 1 ml_engineer approval(s)",
        ),
    ],
)
def test_each_looser_rule_is_named(change: dict[str, Any], expected: str) -> None:
    """Every way of asking less of a version is found and named."""
    before = PromotionPolicy(protected_aliases=["production", "icu"])
    after = before.model_copy(update=change)
    found = loosenings(before, after)
    assert len(found) == 1
    assert found[0].startswith(expected)


def test_a_stricter_policy_loosens_nothing() -> None:
    """More aliases, higher minimums, lower maximums, more approvals: nothing is looser."""
    before = PromotionPolicy()
    after = PromotionPolicy(
        protected_aliases=["production", "icu"],
        min_auroc=0.8,
        min_sensitivity=0.7,
        max_ece=0.05,
        max_subgroup_gap=0.05,
        gap_judged_by="estimate",
        required_approvals={Role.CLINICIAN: 2, Role.ML_ENGINEER: 1},
    )
    assert loosenings(before, after) == []
    assert loosenings(after, before) != []
