"""A monitoring window's document as typed, frozen data: what ``evaluate.evaluate_window``
computes and ``MonitoringService`` stores (``monitoring_results.result``, JSON with sorted
keys), and the stored window with its summary that the API and the SDK return.

The models mirror the stored documents exactly: ``WindowResult.load(doc).dump() == doc`` for
every stored window, old ones included (``tests/monitoring/test_results_model.py`` checks the
documents in ``tests/data/results``, written before these models existed). A part's keys
differ with its state (``insufficient-data``, ``not-available``), so optional fields default to
``None`` and ``dump`` leaves out what the document did not hold (``exclude_unset``); keys a
later version adds are kept (``extra="allow"``). Fields are declared in sorted key order, the
stored order. Non-finite statistics are stored as the strings ``"inf"``, ``"-inf"`` and
``"nan"`` (drift.py) and stay strings here; ``as_float`` reads them as numbers.

Metric names (``accuracy``, ``auroc`` ...) and feature names are data: they key mappings.
Each drift test's ``parameters`` is its own record of what it used (``drift.py`` documents it
per test) and stays a mapping. No numpy or scipy here: the CLI and the SDK read these models.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from medops.registry.validation_report import StoredPart

Number = int | float
Stat = int | float | str  # a JSON-safe float: "inf", "-inf" and "nan" as strings


def as_float(value: Stat | None) -> float | None:
    """A stored statistic as a number (``"inf"`` as infinity); None stays None."""
    if value is None:
        return None
    return float(value)


class _Part(StoredPart):
    def dump(self) -> dict[str, Any]:
        """The stored form: the keys the document held, with their values."""
        return self.model_dump(mode="json")


class DriftTestResult(_Part):
    """One drift test of one feature (drift.py's ``DriftResult`` as stored)."""

    drifted: bool
    feature: str
    p_value: Stat | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    statistic: Stat | None = None
    status: str
    test: str
    threshold: Stat | None = None


class DatasetVerdict(_Part):
    """Which features drifted (adjusted p-values keyed ``feature:test``)."""

    adjusted_p_values: dict[str, float] = Field(default_factory=dict)
    correction: str | None = None
    drifted: bool
    drifted_features: tuple[str, ...] = ()
    share: Number = 0.0


class Multivariate(_Part):
    """PCA reconstruction error against the reference band (``threshold``: low, high)."""

    drifted: bool
    parameters: dict[str, Any] | None = None
    statistic: Stat | None = None
    status: str
    test: str | None = None
    threshold: tuple[Stat, ...] | None = None


class MeasuredMetric(_Part):
    """A realized metric with its interval and its change against the validation baseline."""

    baseline: Number | None = None
    change: Number | None = None
    ci_high: Number | None = None
    ci_low: Number | None = None
    ci_method: str | None = None
    value: Number | None = None


class CalibrationBin(_Part):
    count: int
    lower: Number
    mean_predicted: Number | None = None
    observed_rate: Number | None = None
    upper: Number


class WindowCalibration(_Part):
    bins: tuple[CalibrationBin, ...] = ()
    ece: MeasuredMetric
    intercept: Stat | None = None
    n_bins: int | None = None
    slope: Stat | None = None


class Bootstrap(_Part):
    confidence: float
    method: str
    n: int
    seed: int


class Confusion(_Part):
    fn: int
    fp: int
    tn: int
    tp: int


class Performance(_Part):
    """Realized performance of the rows with outcomes (performance.py)."""

    bootstrap: Bootstrap | None = None
    calibration: WindowCalibration
    confusion: Confusion | None = None
    metrics: dict[str, MeasuredMetric]
    min_samples: int | None = None
    n: int
    positives: int | None = None
    prevalence: Number | None = None
    reason: str | None = None
    status: str
    threshold: Number | None = None


class EstimatedMetric(_Part):
    """A CBPE estimate with its sampling band and the reference range (``limit_*``)."""

    alert: bool
    limit_lower: Number | None = None
    limit_upper: Number | None = None
    lower: Number | None = None
    sampling_error: Number | None = None
    upper: Number | None = None
    value: Number | None = None


class Estimated(_Part):
    """Performance estimated without outcomes (cbpe.py), or why there is none."""

    alerts: tuple[str, ...] = ()
    calibrated: bool = False
    method: str
    metrics: dict[str, EstimatedMetric] = Field(default_factory=dict)
    reason: str | None = None
    rows: int | None = None
    status: str


class Reconciled(_Part):
    """One estimate for the labelled rows against their realized value."""

    difference: Number | None = None
    estimated: Number | None = None
    realized: Number | None = None
    within_band: bool | None = None


class Reconciliation(_Part):
    coverage: Number
    labelled: int
    metrics: dict[str, Reconciled]


class GroupMetric(_Part):
    level: str | None = None
    ratio: Number | None = None
    value: Number | None = None


class FairnessGroup(_Part):
    group: str
    level: str | None = None
    metrics: dict[str, GroupMetric] | None = None
    n: int
    status: str


class FairnessAttribute(_Part):
    attribute: str
    groups: tuple[FairnessGroup, ...]
    level: str | None = None
    reference_censored: bool | None = None
    reference_group: str | None = None


class Fairness(_Part):
    """Per demographic attribute, each group's metrics as a ratio to the reference group."""

    attributes: tuple[FairnessAttribute, ...]
    critical: tuple[Number, ...] | None = None
    min_group_size: int | None = None
    threshold: Number | None = None
    warn: tuple[Number, ...] | None = None


class AppliedThreshold(_Part):
    source: str
    value: Number | None


class Configuration(_Part):
    """How the window was judged (thresholds.py ``record``)."""

    correction: str | None = None
    ignored_overrides: tuple[str, ...] = ()
    min_samples: int | None = None
    thresholds: dict[str, dict[str, AppliedThreshold]] = Field(default_factory=dict)
    thresholds_mode: str | None = None


class FeatureAttributionChange(_Part):
    """One feature's mean contribution in the reference and the window (``attribution.py``)."""

    change: float | None
    drifted: bool
    input_drifted: bool
    reference_mean: float
    reference_mean_abs: float
    relative_change: float | None
    window_mean: float | None
    window_mean_abs: float | None


class AttributionDrift(_Part):
    """Attribution drift of a window: per feature, beside its input drift."""

    drifted_features: tuple[str, ...]
    features: dict[str, FeatureAttributionChange]
    method: str
    reference_rows: int
    rows: int
    scale: str
    status: str
    threshold: float


class WindowResult(_Part):
    """The full monitoring document of one window (see ``evaluate.py``)."""

    alerts: tuple[str, ...]
    attribution: AttributionDrift | None = None
    configuration: Configuration | None = None
    dataset: DatasetVerdict
    estimated: Estimated | None = None
    fairness: Fairness | None = None
    features: dict[str, tuple[DriftTestResult, ...] | None]
    labelled: int
    labels: tuple[DriftTestResult, ...] | None = None
    missing_features: tuple[str, ...] = ()
    multivariate: Multivariate
    performance: Performance
    prediction: tuple[DriftTestResult, ...] = ()
    previous: dict[str, tuple[DriftTestResult, ...]] | None = None
    reconciliation: Reconciliation | None = None
    rows: int
    status: str
    verdict: str

    @property
    def input_drift(self) -> bool:
        """Drift in a feature or in the features together (what ``drifted`` stores)."""
        return self.dataset.drifted or self.multivariate.drifted


class WindowSummary(_Part):
    """One computed window as listed: its series, bounds, counts, verdict and alerts. Fields
    in the order the API has always answered them (``service.summary_of``)."""

    deployment: str
    model: str
    version: int
    window: str
    sequence: int | None = None
    start: str
    end: str
    rows: int
    labelled: int
    status: str
    verdict: str
    drifted: bool
    alerts: tuple[str, ...]


class WindowDocument(WindowSummary):
    """A stored window: its summary and its full document (``result``)."""

    result: WindowResult


def is_finite(value: Stat | None) -> bool:
    """Whether a stored statistic is a finite number."""
    number = as_float(value)
    return number is not None and math.isfinite(number)
