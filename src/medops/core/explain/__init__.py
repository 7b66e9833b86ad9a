"""Per-prediction explanations computed from the ONNX graph itself.

``explainer_for(model, signature, background=...)`` reads the graph once and returns an
``Explainer`` whose ``explain(columns)`` gives ``Attributions``: one contribution per input
feature and row, the base value and the model output, on one scale, that add up (checked on
every answer). Which method depends on the graph's estimator node:

- ``LinearClassifier`` after column-wise preprocessing: exact (``linear``), log-odds scale
  for a logistic model (see ``linear``);
- a tree ensemble (``TreeEnsemble``, ``TreeEnsembleClassifier``/``Regressor``): exact
  interventional TreeSHAP from the graph's tree arrays (``tree_shap``, see ``trees`` and
  ``treeshap``);
- anything else: sampling Shapley values against the background, approximate, with a
  standard-error estimate (``sampling_shapley``, see ``sampling``).

Every method is *interventional*: a feature's contribution is measured against the
background rows (the reference data), and the base value is the mean model output over them.
No database, no HTTP: this is pure computation over ONNX Runtime and NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from medops.core.explain.attributions import (
    ADDITIVITY_TOLERANCE,
    Attributions,
    Contribution,
    Method,
    Scale,
)
from medops.core.explain.base import MAX_BACKGROUND, Explainer, background_columns
from medops.core.explain.graph import analyse
from medops.core.explain.linear import LinearExplainer
from medops.core.explain.sampling import SamplingExplainer
from medops.core.explain.treeshap import TreeExplainer
from medops.core.onnx_model import OnnxModel
from medops.core.signature import ModelSignature
from medops.errors import ExplanationError, FieldError, InvalidInputError

__all__ = [
    "ADDITIVITY_TOLERANCE",
    "MAX_BACKGROUND",
    "Attributions",
    "Contribution",
    "Explainer",
    "Method",
    "Scale",
    "explainer_for",
]

_LINEAR = frozenset({"LinearClassifier", "LinearRegressor"})


def explainer_for(
    model: bytes,
    signature: ModelSignature,
    *,
    background: Mapping[str, np.ndarray] | None = None,
    class_index: int | None = None,
    exact_only: bool = False,
) -> Explainer:
    """The explainer of an ONNX model: exact where the graph allows, else sampling.

    ``background`` (feature name -> values, at most ``MAX_BACKGROUND`` rows are used, an
    even seeded sample) is what contributions are measured against. ``class_index`` is the
    explained probability column (default: the signature's positive class). With
    ``exact_only`` a model without an exact method raises ExplanationError instead of
    falling back to sampling.
    """
    onnx_model = OnnxModel(model, signature)
    n_classes = len(signature.outputs.class_labels)
    index = signature.outputs.positive_index if class_index is None else class_index
    if not 0 <= index < n_classes:
        msg = f"class_index {index} is not one of the model's {n_classes} classes"
        raise InvalidInputError(msg, errors=[FieldError("class_index", msg)])
    feed = background_columns(onnx_model, background)
    analysis = analyse(model, signature)
    if analysis is not None and analysis.columns is not None:
        try:
            if analysis.node.op_type in _LINEAR:
                return LinearExplainer(onnx_model, analysis, feed, index)
            return TreeExplainer(onnx_model, analysis, feed, index)
        except ValueError:
            pass  # the graph is not what the exact method reads: fall back
    if exact_only:
        msg = "this model has no exact explainer (a linear model or a tree ensemble)"
        raise ExplanationError(msg)
    return SamplingExplainer(onnx_model, feed, index)
