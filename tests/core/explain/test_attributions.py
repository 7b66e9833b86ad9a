"""Attributions refuse to exist unless they add up; explainers need a background, name the
class they explain, and fall back to sampling only when allowed."""

from __future__ import annotations

import numpy as np
import pytest

from medops.core.explain import Attributions, explainer_for
from medops.errors import ExplanationError, InvalidInputError
from tests.helpers.explain_models import fitted


def _attributions(values: list[list[float]], base: float, outputs: list[float]) -> Attributions:
    return Attributions(
        features=("a", "b", "c"),
        values=np.asarray(values, dtype=np.float64),
        base_values=np.full(len(outputs), base),
        outputs=np.asarray(outputs, dtype=np.float64),
        scale="log_odds",
        method="linear",
        exact=True,
    )


def test_contributions_that_do_not_add_up_are_refused() -> None:
    """base + sum(values) must equal the output; a gap of 1e-6 raises ExplanationError, a
    NaN too."""
    _attributions([[0.5, -0.25, 0.0]], 1.0, [1.25])
    with pytest.raises(ExplanationError, match="do not add up"):
        _attributions([[0.5, -0.25, 0.0]], 1.0, [1.250001])
    with pytest.raises(ExplanationError):
        _attributions([[np.nan, 0.0, 0.0]], 1.0, [1.0])


def test_top_orders_by_magnitude_with_direction() -> None:
    """top(k) gives the k largest |contributions| of a row, with their direction."""
    answer = _attributions([[0.1, -0.7, 0.3], [0.0, 0.0, 0.0]], 0.0, [-0.3, 0.0])
    top = answer.top(2)
    assert [(c.feature, c.direction) for c in top] == [("b", "decreases"), ("c", "increases")]
    assert answer.top(1, row=1)[0].direction == "none"
    assert answer.row(0) == {"a": 0.1, "b": -0.7, "c": 0.3}


def test_a_background_is_required_and_the_class_must_exist() -> None:
    """Without background rows there is nothing to measure against (field ``background``);
    a class index outside the model's classes is refused (field ``class_index``)."""
    model = fitted("logistic")
    with pytest.raises(InvalidInputError) as missing:
        explainer_for(model.package.onnx, model.package.signature)
    assert missing.value.errors[0].field == "background"
    with pytest.raises(InvalidInputError) as wrong:
        explainer_for(
            model.package.onnx,
            model.package.signature,
            background=model.columns(model.background),
            class_index=2,
        )
    assert wrong.value.errors[0].field == "class_index"


def test_models_without_an_exact_method_fall_back_unless_exact_only() -> None:
    """A neural network gets sampling Shapley values marked approximate with an error
    estimate; with ``exact_only`` it raises ExplanationError instead."""
    model = fitted("mlp")
    background = model.columns(model.background)
    explainer = explainer_for(model.package.onnx, model.package.signature, background=background)
    answer = explainer.explain(model.columns(model.data.iloc[:3]))
    assert answer.method == "sampling_shapley"
    assert not answer.exact
    assert answer.scale == "probability"
    assert answer.error_estimate is not None
    assert 0 < answer.error_estimate < 0.1
    assert answer.additivity_gap() < 1e-9
    served = explainer.model.positive_scores(model.columns(model.data.iloc[:3]))
    assert np.abs(answer.outputs - served).max() < 1e-9
    with pytest.raises(ExplanationError, match="no exact explainer"):
        explainer_for(
            model.package.onnx, model.package.signature, background=background, exact_only=True
        )


def test_sampling_answers_are_reproducible() -> None:
    """The fallback is seeded per row: explaining the same row twice, alone or among
    others, gives the same values (an auditor can recompute what was shown)."""
    model = fitted("mlp")
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    first = explainer.explain(model.columns(model.data.iloc[5:6]))
    batch = explainer.explain(model.columns(model.data.iloc[3:7]))
    assert np.array_equal(first.values[0], batch.values[2])
