"""A deployment's monitoring configuration: what it accepts, and the thresholds, correction
and minimum rows a run applies from it (fixed or learned, overrides winning)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from medops.core.signature import FeatureSpec, ModelSignature, OutputSpec
from medops.monitoring.profile import ReferenceProfile
from medops.monitoring.schemas import MonitoringConfig
from medops.monitoring.thresholds import applied

SIGNATURE = ModelSignature(
    inputs=[
        FeatureSpec(name="lactate", type="float"),
        FeatureSpec(name="ward", type="category", categories=["icu", "ed"]),
    ],
    input_layout="columns",
    outputs=OutputSpec(class_labels=[0, 1]),
)


def _profile() -> ReferenceProfile:
    rng = np.random.default_rng(5)
    columns: dict[str, list[Any]] = {
        "lactate": rng.normal(2.0, 1.0, 600).tolist(),
        "ward": rng.choice(["icu", "ed"], 600).tolist(),
    }
    return ReferenceProfile.build(SIGNATURE, columns, np.linspace(0, 1, 600), None)


def test_the_defaults_change_nothing() -> None:
    """With no configuration a run judges as before: no threshold replaced, Holm, 30 rows."""
    judged = applied(_profile(), MonitoringConfig())
    assert judged.thresholds == {}
    assert judged.correction == "holm"
    assert judged.min_samples == 30
    assert judged.record == {
        "thresholds_mode": "fixed",
        "correction": "holm",
        "min_samples": 30,
        "thresholds": {},
        "ignored_overrides": [],
    }


def test_learned_mode_takes_the_profiles_thresholds_and_overrides_win() -> None:
    """Learned mode applies each learned threshold of a test the defaults judge (KL stays
    reported only); an override replaces a learned or default value in either mode; an
    override for another kind's test or an unknown feature is listed as ignored."""
    profile = _profile()
    learned = profile.learned
    assert set(learned["lactate"]) == {"wasserstein", "psi", "kl", "jensenshannon"}
    assert set(learned["ward"]) == {"psi", "jensenshannon"}
    overrides = {"lactate": {"psi": 0.5, "ks": 0.01}, "ward": {"ks": 0.01}, "gone": {"psi": 1}}
    config = MonitoringConfig(thresholds=overrides, thresholds_mode="learned", correction="bh")
    judged = applied(profile, config)
    assert judged.thresholds == {
        "lactate": {
            "wasserstein": learned["lactate"]["wasserstein"],
            "jensenshannon": learned["lactate"]["jensenshannon"],
            "psi": 0.5,
            "ks": 0.01,
        },
        "ward": dict(learned["ward"]),
    }
    assert judged.correction == "benjamini-hochberg"
    assert judged.record["thresholds"]["lactate"]["psi"] == {"value": 0.5, "source": "override"}
    assert judged.record["thresholds"]["ward"]["psi"]["source"] == "learned"
    assert judged.record["ignored_overrides"] == ["gone.psi", "ward.ks"]
    fixed = applied(profile, config.model_copy(update={"thresholds_mode": "fixed"}))
    assert fixed.thresholds == {"lactate": {"psi": 0.5, "ks": 0.01}}
    none = applied(profile, MonitoringConfig(correction="none", min_samples=5))
    assert (none.correction, none.min_samples) == (None, 5)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("thresholds", {"bmi": {"t-test": 0.05}}, "unknown drift test 't-test'"),
        ("thresholds", {"bmi": {"psi": -0.1}}, "must be above 0"),
        ("thresholds", {"bmi": {"psi": 0}}, "must be above 0"),
        ("thresholds", {"bmi": {"ks": 1.0}}, "between 0 and 1"),
        ("thresholds", {"bmi": {"chi2": 0}}, "between 0 and 1"),
        ("thresholds", {"bmi": {"jensenshannon": 1.5}}, "at most 1"),
        ("thresholds", {"bmi": {"wasserstein": float("inf")}}, "finite"),
        ("thresholds", {"bmi": {"psi": float("nan")}}, "finite"),
        ("thresholds", {"no spaces": {"psi": 0.2}}, "must match"),
        ("correction", "fdr", "holm"),
        ("thresholds_mode", "adaptive", "fixed"),
        ("min_samples", 1, "greater than or equal to 2"),
    ],
)
def test_bad_configurations_are_refused_naming_the_field(
    field: str, value: object, reason: str
) -> None:
    """Unknown tests, thresholds out of their range, non-finite numbers, bad names, and
    unknown corrections or modes are refused, each naming the field and why."""
    with pytest.raises(ValidationError) as refused:
        MonitoringConfig.model_validate({field: value})
    error = refused.value.errors()[0]
    assert error["loc"][0] == field
    assert reason in error["msg"]
