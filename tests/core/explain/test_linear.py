"""The linear explainer: exact contributions on the log-odds scale after the graph's own
preprocessing, equal to shap.LinearExplainer (interventional, same background), with a
one-hot group counted as its one input feature."""

from __future__ import annotations

import numpy as np
import shap  # type: ignore[import-untyped]

from medops.core.explain import explainer_for
from medops.core.explain.linear import LinearExplainer
from tests.helpers.explain_models import fitted, fitted_mixed


def test_scaled_logistic_equals_shap_linear_explainer() -> None:
    """A StandardScaler + LogisticRegression: every row's contributions equal shap's
    LinearExplainer on the native model (float32 graph: within 1e-5) and add up."""
    model = fitted("logistic")
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    answer = explainer.explain(model.columns())
    scaler, logistic = model.native[0], model.native[-1]
    reference = shap.LinearExplainer(
        (logistic.coef_[0], logistic.intercept_[0]),
        shap.maskers.Independent(scaler.transform(model.background), max_samples=1000),
    ).shap_values(scaler.transform(model.data))
    assert answer.method == "linear"
    assert answer.exact
    assert answer.scale == "log_odds"
    assert np.abs(answer.values - reference).max() < 1e-5
    assert answer.additivity_gap() < 1e-12
    native_log_odds = model.native.decision_function(model.data)
    assert np.abs(answer.outputs - native_log_odds).max() < 1e-4


def test_equals_shap_on_the_graphs_own_coefficients_to_1e_9() -> None:
    """On the ONNX model's own float32 coefficients and preprocessed background, the values
    equal shap.LinearExplainer's to 1e-9: the method is exact, the 1e-5 above is float32."""
    model = fitted("logistic")
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    answer = explainer.explain(model.columns())
    assert isinstance(explainer, LinearExplainer)
    z_background = explainer.preprocessed(explainer.model.feed(model.columns(model.background)))
    z_rows = explainer.preprocessed(explainer.model.feed(model.columns()))
    w = explainer.weights
    reference = shap.LinearExplainer(
        (w, 0.0), shap.maskers.Independent(z_background, max_samples=1000)
    ).shap_values(z_rows)
    assert np.abs(answer.values - reference).max() < 1e-9


def test_one_hot_group_is_one_feature_and_imputed_rows_explain() -> None:
    """A ColumnTransformer (imputer + scaler on numbers, one-hot on a string ``sex``): the
    features are the signature's, ``sex`` carries its one-hot columns' sum, rows with a
    missing value are explained, and the values equal shap's on the native pipeline."""
    model = fitted_mixed("logistic")
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    answer = explainer.explain(model.columns())
    assert answer.features == tuple(model.data.columns)
    encode, logistic = model.native[0], model.native[-1]
    reference = shap.LinearExplainer(
        (logistic.coef_[0], logistic.intercept_[0]),
        shap.maskers.Independent(encode.transform(model.background), max_samples=1000),
    ).shap_values(encode.transform(model.data))
    n_numbers = len(model.data.columns) - 1
    grouped = np.column_stack([reference[:, :n_numbers], reference[:, n_numbers:].sum(axis=1)])
    assert np.abs(answer.values - grouped).max() < 1e-5
    assert np.isnan(model.data.iloc[:, 0]).any()
    assert np.abs(answer.values[:, -1]).max() > 0  # the category matters to the model


def test_the_other_class_mirrors_the_positive_one() -> None:
    """Explaining class 0 of a binary logistic model gives the negated log-odds
    contributions, base value and output."""
    model = fitted("logistic")
    background = model.columns(model.background)
    positive = explainer_for(model.package.onnx, model.package.signature, background=background)
    negative = explainer_for(
        model.package.onnx, model.package.signature, background=background, class_index=0
    )
    rows = model.columns(model.data.iloc[:50])
    a, b = positive.explain(rows), negative.explain(rows)
    assert np.allclose(a.values, -b.values, atol=1e-12)
    assert np.allclose(a.outputs, -b.outputs, atol=1e-12)
    assert abs(positive.base_value + negative.base_value) < 1e-12


def test_the_numpy_scaler_gives_the_graphs_bits() -> None:
    """For input -> Scaler -> LinearClassifier the explainer scales in NumPy instead of a
    second ONNX Runtime run; on fresh rows (not the background it was checked on) its
    columns equal ONNX Runtime's bit for bit."""
    model = fitted("logistic")
    explainer = explainer_for(
        model.package.onnx,
        model.package.signature,
        background=model.columns(model.background),
    )
    assert isinstance(explainer, LinearExplainer)
    feed = explainer.model.feed(model.columns(model.data.iloc[100:]))
    z_graph = explainer._probe.run(feed)[0]
    assert np.array_equal(explainer.preprocessed(feed), z_graph)
