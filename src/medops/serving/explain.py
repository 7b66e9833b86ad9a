"""Explanations in serving: feature contributions beside a prediction, shown and logged.

A request asks with ``"explain": true`` (or the deployment explains every prediction, its
``explain`` option). The contributions come from ``medops.core.explain`` (exact for linear
and tree models, computed from the ONNX graph; an approximation marked as such otherwise),
on the scale the method states (log-odds for a logistic model), and add up to the model's
output less the base value (core checks that on every answer).

The explainer of a version is built on the first explained request and kept with the loaded
version (``ExplainerSlot``); a request without ``explain`` never touches it, so the hot path
costs nothing more. Its background data (what "no information" means: the base value and,
for linear and approximate methods, the reference each feature is compared with) is a fixed
sample of the version's latest validation data, the same rows monitoring builds its reference
profile from: ``BACKGROUND_ROWS`` rows drawn with a fixed seed, so every replica and every
restart computes the same values. Every method is interventional (contributions against the
background), so a version with no validation report cannot be explained: an explained request
to it is refused (409) with the reason, before anything is scored or logged.

The answer shows the ``top`` largest contributions (by magnitude) and what the others add up
to (``rest``), so base + shown + rest is the output. The prediction log keeps every feature's
contribution (``PredictionExplanation``), written in the prediction's own transaction and
bound into its audit record, so an auditor sees exactly what the clinician was shown.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from medops.errors import ConflictError
from medops.registry.explained import as_arrays, sample_rows

__all__ = ["as_arrays", "sample_rows"]  # re-exported: the serving path uses them

if TYPE_CHECKING:
    from medops.core.explain import Attributions, Explainer

# The FHIR extension carrying one contribution (documented in docs/explanations.md).
FHIR_EXTENSION = "urn:medops:fhir:StructureDefinition/feature-contribution"
FHIR_EXPLANATION = "urn:medops:fhir:StructureDefinition/explanation"


class ExplainerSlot:
    """A version's explainer, built once on first use (thread-safe); a failure to build is
    kept too, so every later request is refused at once with the same reason."""

    def __init__(self, build: Callable[[], Explainer]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._explainer: Explainer | None = None
        self._failure: str | None = None

    @property
    def ready(self) -> bool:
        return self._explainer is not None

    def get(self) -> Explainer:
        if self._explainer is None and self._failure is None:
            with self._lock:
                if self._explainer is None and self._failure is None:
                    try:
                        self._explainer = self._build()
                    except ConflictError as exc:
                        self._failure = exc.message
                    except Exception as exc:  # noqa: BLE001 - reported to the caller as 409
                        self._failure = f"{type(exc).__name__}: {exc}"
        if self._explainer is None:
            raise ConflictError(f"this model version cannot be explained: {self._failure}")
        return self._explainer


def _direction(value: float) -> str:
    if value > 0:
        return "increases"
    if value < 0:
        return "decreases"
    return "none"


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode()
    return value


def explanation_of(
    attributions: Attributions, row: int, record: Mapping[str, Any], top: int
) -> dict[str, Any]:
    """The ``explanation`` object of one answer: the ``top`` largest contributions (feature,
    the value sent, contribution, direction), what the rest add up to, base value and output."""
    values = np.asarray(attributions.values[row], dtype=np.float64)
    order = sorted(range(len(values)), key=lambda j: (-abs(float(values[j])), j))
    shown = order[:top]
    rest = float(sum(float(values[j]) for j in order[top:]))
    return {
        "method": attributions.method,
        "exact": bool(attributions.exact),
        "scale": attributions.scale,
        "base_value": float(attributions.base_values[row]),
        "output": float(attributions.outputs[row]),
        "error_estimate": None
        if attributions.error_estimate is None
        else float(attributions.error_estimate),
        "contributions": [
            {
                "feature": attributions.features[j],
                "value": _plain(record.get(attributions.features[j])),
                "contribution": float(values[j]),
                "direction": _direction(float(values[j])),
            }
            for j in shown
        ],
        "rest": rest,
        "features": len(values),
    }


def explanation_row(
    prediction_id: str, attributions: Attributions, row: int, shown: int
) -> dict[str, Any]:
    """The prediction log's row for one explained prediction (every feature's contribution,
    in signature order)."""
    values = np.asarray(attributions.values[row], dtype=np.float64)
    return {
        "prediction_id": prediction_id,
        "method": attributions.method,
        "exact": bool(attributions.exact),
        "scale": attributions.scale,
        "base_value": float(attributions.base_values[row]),
        "output": float(attributions.outputs[row]),
        "error_estimate": None
        if attributions.error_estimate is None
        else float(attributions.error_estimate),
        "shown": shown,
        "contributions": json.dumps(
            [[f, float(v)] for f, v in zip(attributions.features, values, strict=True)]
        ),
    }


def fhir_extension(explanation: Mapping[str, Any]) -> dict[str, Any]:
    """The explanation as one FHIR extension of the RiskAssessment: method, exactness, scale,
    base value and output, and one ``feature-contribution`` sub-extension per contribution
    shown (feature name, the value as sent in text, the contribution as a decimal)."""
    parts: list[dict[str, Any]] = [
        {"url": "method", "valueCode": explanation["method"]},
        {"url": "exact", "valueBoolean": explanation["exact"]},
        {"url": "scale", "valueCode": explanation["scale"]},
        {"url": "baseValue", "valueDecimal": explanation["base_value"]},
        {"url": "output", "valueDecimal": explanation["output"]},
        {"url": "rest", "valueDecimal": explanation["rest"]},
    ]
    if explanation["error_estimate"] is not None:
        parts.append({"url": "errorEstimate", "valueDecimal": explanation["error_estimate"]})
    for item in explanation["contributions"]:
        parts.append(
            {
                "url": FHIR_EXTENSION,
                "extension": [
                    {"url": "feature", "valueString": item["feature"]},
                    {"url": "value", "valueString": json.dumps(item["value"])},
                    {"url": "contribution", "valueDecimal": item["contribution"]},
                ],
            }
        )
    return {"url": FHIR_EXPLANATION, "extension": parts}
