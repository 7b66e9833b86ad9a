"""The reference profile of one model version: what its evaluation data looked like.

Built once from the rows of the version's validation report (the data the version was judged
on, stored in the blob store by the registry) and the version's own scores on them, then stored
as JSON and never recomputed: every later window is compared with the same reference.

It holds, per feature, a ``NumericReference`` (float and integer features: sorted values,
bins fitted on the reference only) or a ``CategoricalReference`` (category and boolean
features); the reference scores (for prediction drift) and labels (for label drift); the PCA
reference (multivariate drift); the validation baseline (point metrics of the report, for the
change of performance); the decision threshold; and which features are demographic (for
fairness). It also keeps drift thresholds learned from the reference (``learned.py``: mean + 3
sigma of each distance test across 10 reference chunks); as a chunk is a tenth of the
reference, they fit windows of about that size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from medops.core.signature import ModelSignature
from medops.errors import InvalidInputError
from medops.monitoring.cbpe import CbpeReference
from medops.monitoring.drift import DEFAULT_BINS, CategoricalReference, NumericReference
from medops.monitoring.learned import learn_all
from medops.monitoring.multivariate import PcaReference

Reference = NumericReference | CategoricalReference
PROFILE_FORMAT = 1
NUMERIC_TYPES = frozenset({"float", "integer"})


@dataclass(frozen=True)
class ReferenceProfile:
    """Everything a monitoring window is compared with, for one model version."""

    features: Mapping[str, Reference]
    scores: NumericReference
    labels: CategoricalReference | None
    pca: PcaReference | None
    baseline: Mapping[str, float | None]
    threshold: float
    demographic: tuple[str, ...]
    rows: int
    notes: tuple[str, ...] = field(default=())
    # Label-free performance estimation (cbpe.py): None when the reference has no labels.
    cbpe: CbpeReference | None = None
    # Thresholds learned from reference chunks, per feature and test (learned.py).
    learned: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        signature: ModelSignature,
        columns: Mapping[str, Sequence[Any]],
        scores: npt.ArrayLike,
        labels: Sequence[bool] | None,
        *,
        baseline: Mapping[str, float | None] | None = None,
        threshold: float = 0.5,
        bins: int = DEFAULT_BINS,
    ) -> ReferenceProfile:
        """Fit every reference from the evaluation rows (``columns`` keyed by feature name)."""
        missing = [f.name for f in signature.inputs if f.name not in columns]
        if missing:
            msg = f"the evaluation data lack features {missing}"
            raise InvalidInputError(msg)
        features: dict[str, Reference] = {}
        numeric: dict[str, npt.NDArray[np.float64]] = {}
        categorical: dict[str, Sequence[Any]] = {}
        for spec in signature.inputs:
            values = columns[spec.name]
            if spec.type in NUMERIC_TYPES:
                numbers = as_numbers(values)
                features[spec.name] = NumericReference.fit(numbers, bins=bins)
                numeric[spec.name] = numbers
            else:
                features[spec.name] = CategoricalReference.fit(list(values))
                categorical[spec.name] = list(values)
        score_values = np.asarray(scores, dtype=np.float64)
        notes: list[str] = []
        try:
            pca: PcaReference | None = PcaReference.fit(numeric, categorical)
        except InvalidInputError as exc:
            pca = None
            notes.append(f"no multivariate reference: {exc.message}")
        cbpe: CbpeReference | None = None
        if labels is None:
            notes.append("no performance estimation: the reference has no labels")
        else:
            try:
                cbpe = CbpeReference.fit(score_values, [bool(v) for v in labels], threshold)
            except InvalidInputError as exc:
                notes.append(f"no performance estimation: {exc.message}")
        return cls(
            features=features,
            scores=NumericReference.fit(score_values, bins=bins),
            labels=CategoricalReference.fit([bool(v) for v in labels])
            if labels is not None
            else None,
            pca=pca,
            baseline=dict(baseline or {}),
            threshold=float(threshold),
            demographic=tuple(f.name for f in signature.inputs if f.demographic),
            rows=len(score_values),
            notes=tuple(notes),
            learned=learn_all(features, {**numeric, **categorical}),
            cbpe=cbpe,
        )

    @property
    def prevalence(self) -> float | None:
        """Share of positive labels in the reference (label drift compares with it)."""
        if self.labels is None:
            return None
        counted = sum(self.labels.counts.values())
        return self.labels.counts.get("True", 0) / counted if counted else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "features": {
                name: {
                    "kind": "numeric" if isinstance(ref, NumericReference) else "categorical",
                    "reference": ref.to_dict(),
                }
                for name, ref in self.features.items()
            },
            "scores": self.scores.to_dict(),
            "labels": self.labels.to_dict() if self.labels is not None else None,
            "pca": self.pca.to_dict() if self.pca is not None else None,
            "baseline": dict(self.baseline),
            "threshold": self.threshold,
            "demographic": list(self.demographic),
            "rows": self.rows,
            "notes": list(self.notes),
            "cbpe": self.cbpe.to_dict() if self.cbpe is not None else None,
            "learned": {name: dict(tests) for name, tests in self.learned.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        try:
            if data["format"] != PROFILE_FORMAT:
                msg = f"profile format {data['format']!r}; this medops reads {PROFILE_FORMAT}"
                raise InvalidInputError(msg)
            features: dict[str, Reference] = {
                name: NumericReference.from_dict(item["reference"])
                if item["kind"] == "numeric"
                else CategoricalReference.from_dict(item["reference"])
                for name, item in data["features"].items()
            }
            return cls(
                features=features,
                scores=NumericReference.from_dict(data["scores"]),
                labels=CategoricalReference.from_dict(data["labels"])
                if data["labels"] is not None
                else None,
                pca=PcaReference.from_dict(data["pca"]) if data["pca"] is not None else None,
                baseline=dict(data["baseline"]),
                threshold=float(data["threshold"]),
                demographic=tuple(data["demographic"]),
                rows=int(data["rows"]),
                notes=tuple(data.get("notes", ())),
                cbpe=CbpeReference.from_dict(data["cbpe"]) if data.get("cbpe") else None,
                learned={
                    name: {test: float(v) for test, v in tests.items()}
                    for name, tests in (data.get("learned") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"not a reference profile: {exc}"
            raise InvalidInputError(msg) from None


def as_numbers(values: Sequence[Any] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Feature values as floats; anything that is not a number (a missing value, text
    in a log) becomes NaN, which the references count as missing."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiu":  # a packed log's column
        return values.astype(np.float64, copy=False)
    if set(map(type, values)) <= {float, int}:  # the usual log: plain numbers, one C pass
        try:
            return np.asarray(values, dtype=np.float64)
        except OverflowError:  # an integer beyond float range: value by value below
            pass
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        ):
            try:
                out[i] = float(value)
            except OverflowError:
                out[i] = np.inf if value > 0 else -np.inf
    return out
