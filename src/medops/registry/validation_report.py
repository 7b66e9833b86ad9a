"""The validation report as typed, frozen data: what ``report.compute_report`` computes and
the registry stores (canonical JSON) and hashes (``report_hash``).

The models mirror the stored document exactly: ``ReportDocument.load(doc).dump() == doc``
for every stored report (``tests/registry/test_validation_report_model.py``, on documents
written before these models existed). Fields are declared in sorted key order, the order of
canonical JSON, so a dump reproduces the stored text too; unknown keys a later version may add
are kept (``extra="allow"``). Numbers that can be integers or floats are ``int | float`` so
that an integer stays an integer and the hash stays the same.

No numpy, scipy or SQLAlchemy here: the CLI and the SDK read these models.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

Number = int | float


class StoredPart(BaseModel):
    """A part of a stored document: frozen, keeps unknown keys, and serialises only the keys
    it was given (a key an older document lacks stays absent, in every dump and in the API's
    answers, which do not pass ``exclude_unset``); built in code, it has every field set."""

    model_config = ConfigDict(
        frozen=True, extra="allow", populate_by_name=True, serialize_by_alias=True
    )

    @classmethod
    def load(cls, document: Mapping[str, Any]) -> Self:
        """The model of a stored (or freshly computed) document."""
        return cls.model_validate(document)

    # No return annotation on purpose: with one, pydantic would document the serialised
    # form as that annotation instead of the model's own schema (OpenAPI).
    @model_serializer(mode="wrap")
    def _present_keys(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        absent = {
            key
            for name, info in fields.items()
            if name not in self.model_fields_set
            for key in (name, info.alias)
            if key
        }
        return {key: value for key, value in data.items() if key not in absent}


_Part = StoredPart


class MetricValue(_Part):
    """One metric with its bootstrap interval; ``None`` where the metric is undefined."""

    ci_high: Number | None
    ci_low: Number | None
    ci_method: str | None = None
    value: Number | None


class GroupMetricValue(_Part):
    """A subgroup's metric; ``gap`` is its difference to the overall value."""

    ci_high: Number | None
    ci_low: Number | None
    ci_method: str | None = None
    gap: Number | None
    value: Number | None


class Bootstrap(_Part):
    confidence: float
    method: str
    n: int
    seed: int


class CalibrationBin(_Part):
    count: int
    fraction_positive: Number | None
    lower: Number
    mean_predicted: Number | None
    upper: Number


class Calibration(_Part):
    bins: tuple[CalibrationBin, ...]
    ece: Number | None
    n_bins: int


class Confusion(_Part):
    fn: int
    fp: int
    tn: int
    tp: int


class PrCurve(_Part):
    precision: tuple[Number, ...]
    recall: tuple[Number, ...]


class RocCurve(_Part):
    fpr: tuple[Number, ...]
    tpr: tuple[Number, ...]


class Subgroup(_Part):
    """One group of one demographic attribute; a censored group has no metrics."""

    attribute: str
    censored: bool
    group: str
    metrics: dict[str, GroupMetricValue]
    n: int
    positives: int
    prevalence: Number
    reason: str | None


class ThresholdRow(_Part):
    """Rates at one threshold of the report's table (``None`` where undefined)."""

    accuracy: Number | None
    f1: Number | None
    flagged_fraction: Number
    npv: Number | None
    ppv: Number | None
    sensitivity: Number | None
    specificity: Number | None
    threshold: Number


class DatasetPart(_Part):
    """The evaluation data, as the registry records it with the report."""

    digest: str
    ignored_columns: tuple[str, ...]
    label_column: str
    name: str
    rows: int


class FeatureAttribution(_Part):
    """A feature's mean contribution and mean absolute contribution over the rows."""

    mean: Number
    mean_abs: Number


class ExplanationsPart(_Part):
    """The global view of the version's explanations on the validation data: per feature,
    the mean and the mean absolute contribution (``serving/explain.py``), with the method
    and scale they are on; ``unavailable`` says why there are none."""

    background_rows: int
    exact: bool | None
    features: dict[str, FeatureAttribution]
    method: str | None
    rows: int
    scale: str | None
    unavailable: str | None


class ModelPart(_Part):
    artifact_digest: str
    name: str
    version: int


class ReportDocument(_Part):
    """A validation report (``medops.validation-report/1``); see ``registry/report.py``.

    ``metrics`` and each subgroup's ``metrics`` map a metric name (``REPORT_METRICS``) to its
    value: the names are data (a policy names the metric it judges), not document keys."""

    bootstrap: Bootstrap
    calibration: Calibration
    confusion: Confusion
    dataset: DatasetPart | None = Field(default=None, exclude_if=lambda v: v is None)
    explanations: ExplanationsPart | None = Field(default=None, exclude_if=lambda v: v is None)
    metrics: dict[str, MetricValue]
    model: ModelPart | None = Field(default=None, exclude_if=lambda v: v is None)
    n: int
    positives: int
    pr_curve: PrCurve
    prevalence: Number
    roc_curve: RocCurve
    schema_: str = Field(alias="schema")
    subgroups: tuple[Subgroup, ...]
    threshold: Number
    thresholds: tuple[ThresholdRow, ...]

    def dump(self) -> dict[str, Any]:
        """The stored document: same keys, same values as ``compute_report`` wrote."""
        return self.model_dump(mode="json", by_alias=True)

    def value(self, metric: str) -> Number | None:
        """The overall value of ``metric`` (``None`` when undefined or not reported)."""
        found = self.metrics.get(metric)
        return None if found is None else found.value

    def importance(self) -> dict[str, float] | None:
        """Mean absolute contribution per feature, largest first (None: not computed)."""
        part = self.explanations
        if part is None or part.unavailable is not None:
            return None
        pairs = sorted(part.features.items(), key=lambda kv: -float(kv[1].mean_abs))
        return {name: float(value.mean_abs) for name, value in pairs}
