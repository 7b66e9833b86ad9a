"""Input and output shapes of monitoring: a deployment's monitoring configuration.

A configuration is frozen data, stored per deployment and audited on every change; the runs
read it (``thresholds.py`` turns it into what ``evaluate_window`` takes). Feature names cannot
be checked here (they belong to a model version, and a deployment's version changes), so a
threshold names any feature; test names and values are checked against the descriptors of
drift_tests.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from medops.core.signature import FEATURE_NAME_PATTERN
from medops.errors import clip
from medops.monitoring.drift_tests import BY_NAME, MIN_SAMPLES, NAMES, P_VALUE_TESTS, AdjustMethod
from medops.serving.schemas import DEPLOYMENT_NAME_PATTERN

Correction = Literal["holm", "bonferroni", "bh", "none"]
ThresholdsMode = Literal["fixed", "learned"]
# The correction as drift.adjust names it; "none" judges each p-value on its own.
ADJUST_METHODS: Final[Mapping[str, AdjustMethod | None]] = MappingProxyType(
    {"holm": "holm", "bonferroni": "bonferroni", "bh": "benjamini-hochberg", "none": None}
)
MAX_FEATURES = 1000
MAX_SAMPLES = 1_000_000


class MonitoringConfig(BaseModel):
    """How a deployment's windows are judged: threshold overrides per feature and test, the
    multiple-testing correction of the dataset verdict, where the other thresholds come from,
    and the fewest rows a window needs to be judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Overrides, feature -> drift test -> threshold; they win in both modes.",
    )
    correction: Correction = Field(
        default="holm",
        description="Multiple-testing correction of the KS and chi-square p-values across "
        "features in the dataset verdict: holm, bonferroni, bh (Benjamini-Hochberg) or none.",
    )
    thresholds_mode: ThresholdsMode = Field(
        default="fixed",
        description="fixed: the documented defaults; learned: the reference profile's learned "
        "thresholds where it has them.",
    )
    min_samples: int = Field(
        default=MIN_SAMPLES,
        ge=2,
        le=MAX_SAMPLES,
        description="Fewest rows (values, outcomes) a window or test needs to be judged.",
    )

    @field_validator("thresholds")
    @classmethod
    def _thresholds(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        if len(value) > MAX_FEATURES:
            msg = f"at most {MAX_FEATURES} features"
            raise ValueError(msg)
        for feature, tests in value.items():
            if not re.fullmatch(FEATURE_NAME_PATTERN, feature):
                msg = f"feature name {clip(feature)!r} must match {FEATURE_NAME_PATTERN}"
                raise ValueError(msg)
            for test, threshold in tests.items():
                problem = threshold_problem(test, threshold)
                if problem:
                    msg = f"{feature}.{test}: {problem}"
                    raise ValueError(msg)
        return {feature: dict(sorted(tests.items())) for feature, tests in sorted(value.items())}

    @property
    def adjust_method(self) -> AdjustMethod | None:
        """The correction as ``drift.adjust`` (and ``evaluate_window``) takes it."""
        return ADJUST_METHODS[self.correction]


class MonitoringConfigIn(MonitoringConfig):
    """A deployment's new configuration; fields left out take their defaults."""

    deployment: str = Field(pattern=DEPLOYMENT_NAME_PATTERN)


class MonitoringConfigOut(MonitoringConfig):
    """A deployment's configuration, with who changed it last (both null: the defaults)."""

    deployment: str
    updated_at: datetime | None = None
    updated_by: str | None = None


def threshold_problem(test: str, value: float) -> str | None:
    """Why ``value`` is not a valid threshold of ``test``, or None when it is."""
    if test not in NAMES:
        return f"unknown drift test {clip(test)!r}; known: {', '.join(sorted(NAMES))}"
    if not math.isfinite(value):
        return "must be a finite number"
    if test in P_VALUE_TESTS and not 0.0 < value < 1.0:
        return f"a p-value threshold must be between 0 and 1 (exclusive), not {value:g}"
    if value <= 0.0:
        return f"must be above 0, not {value:g}"
    at_most = BY_NAME[test].at_most
    if at_most is not None and value > at_most:
        return f"must be at most {at_most:g} ({test} lies in [0, {at_most:g}]), not {value:g}"
    return None
