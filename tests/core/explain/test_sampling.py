"""The sampling fallback's error, measured against exact values on a model where both
exist (a random forest, probability scale, same background rows): its stated standard
error covers the real error."""

from __future__ import annotations

import numpy as np

from medops.core.explain import explainer_for
from medops.core.explain.base import background_columns
from medops.core.explain.sampling import SamplingExplainer
from tests.helpers.explain_models import fitted


def test_sampling_error_against_exact_tree_shap() -> None:
    """On 20 rows, with 32 orders over the same 40 background rows, the sampling values are
    within 4 stated standard errors of exact TreeSHAP, and that error is small (< 0.03 in
    probability) while the contributions span several tenths."""
    model = fitted("random-forest")
    background = model.columns(model.background)
    exact = explainer_for(model.package.onnx, model.package.signature, background=background)
    sampling = SamplingExplainer(
        exact.model,
        background_columns(exact.model, background),
        1,
        n_orders=32,
        n_background=40,
    )
    rows = model.columns(model.data.iloc[::29])
    truth, approximate = exact.explain(rows), sampling.explain(rows)
    assert approximate.error_estimate is not None
    error = float(np.abs(truth.values - approximate.values).max())
    assert error <= 4 * approximate.error_estimate
    assert error < 0.03
    assert np.abs(truth.values).max() > 0.1
    assert abs(truth.base_values[0] - approximate.base_values[0]) < 1e-9
