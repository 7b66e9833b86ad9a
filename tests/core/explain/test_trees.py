"""Exact interventional TreeSHAP from the ONNX trees: equal to shap (TreeExplainer for
XGBoost and LightGBM, the brute-force definition for scikit-learn's forests and boosting)
to 1e-6 on hundreds of rows, for every node form the converters write; additive on every
answer."""

from __future__ import annotations

import lightgbm
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import shap  # type: ignore[import-untyped]
from sklearn.datasets import make_classification  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]

from medops.core.explain import explainer_for
from medops.core.explain.treeshap import TABLE_DEPTH, TreeExplainer
from medops.packaging import package_model
from tests.helpers.explain_models import brute_force_shapley, fitted, fitted_mixed

TOLERANCE = 1e-6


@pytest.mark.parametrize("family", ["xgboost", "lightgbm"])
def test_boosting_equals_shap_tree_explainer(family: str) -> None:
    """XGBoost (legacy TreeEnsembleClassifier, float32) and LightGBM (TreeEnsemble opset 5,
    float64): on all 569 rows, the values equal shap.TreeExplainer's (interventional, same
    background) to 1e-6, on the log-odds scale, and the base value is shap's."""
    model = fitted(family)
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    answer = explainer.explain(model.columns())
    reference = shap.TreeExplainer(
        model.native,
        data=model.background.to_numpy(),
        feature_perturbation="interventional",
    )
    expected = reference.shap_values(model.data.to_numpy(), check_additivity=False)
    assert answer.method == "tree_shap"
    assert answer.exact
    assert answer.scale == "log_odds"
    assert answer.n_rows == len(model.data)
    assert np.abs(answer.values - expected).max() < TOLERANCE
    assert abs(explainer.base_value - float(np.ravel(reference.expected_value)[0])) < TOLERANCE
    assert answer.additivity_gap() < 1e-9


@pytest.mark.parametrize(
    ("family", "scale"), [("random-forest", "probability"), ("gradient-boosting", "log_odds")]
)
def test_sklearn_ensembles_equal_brute_force_shapley(family: str, scale: str) -> None:
    """Random forest (probability scale) and gradient boosting (log-odds): on 120 rows the
    values equal the interventional Shapley values computed by enumerating every coalition
    over the native model's own predictions, to 1e-6."""
    model = fitted(family)
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    rows = model.data.iloc[::5].iloc[:120]
    answer = explainer.explain(model.columns(rows))
    native = model.native

    def predict(x: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(x, columns=model.data.columns)
        if scale == "probability":
            return np.asarray(native.predict_proba(frame)[:, 1])
        return np.asarray(native.decision_function(frame))

    background = model.background.to_numpy()
    expected = np.array([brute_force_shapley(predict, r, background) for r in rows.to_numpy()])
    assert answer.scale == scale
    assert np.abs(answer.values - expected).max() < TOLERANCE


def test_one_hot_feature_after_a_column_transformer() -> None:
    """A random forest after imputation and one-hot encoding (columns layout): the one-hot
    columns are one player ``sex``; values equal brute force over the native pipeline."""
    model = fitted_mixed("random-forest")
    background = model.background
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(background)
    )
    rows = model.data.iloc[::17]
    answer = explainer.explain(model.columns(rows))
    names = list(model.data.columns)

    def predict(x: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(x, columns=names)
        frame[names[:-1]] = frame[names[:-1]].astype(float)
        return np.asarray(model.native.predict_proba(frame)[:, 1])

    expected = np.array(
        [
            brute_force_shapley(predict, r, background.to_numpy(dtype=object))
            for r in rows.to_numpy(dtype=object)
        ]
    )
    assert answer.features[-1] == "sex"
    assert np.abs(answer.values - expected).max() < TOLERANCE


def test_deep_paths_missing_values_and_several_classes() -> None:
    """LightGBM with 63 leaves (paths with more than TABLE_DEPTH distinct features take the
    direct route), missing values, and a three-class forest explained for class 2: all
    equal shap.TreeExplainer."""
    x, y = make_classification(n_samples=800, n_features=14, n_informative=10, random_state=0)
    data = pd.DataFrame(x, columns=[f"f{i}" for i in range(14)])
    data.iloc[::9, 2] = np.nan
    model = lightgbm.LGBMClassifier(
        n_estimators=12, num_leaves=63, min_child_samples=3, verbose=-1
    ).fit(data, y)
    package = package_model(model, sample=data)
    background = data.iloc[:30]
    explainer = explainer_for(
        package.onnx, package.signature, background={c: background[c].to_numpy() for c in data}
    )
    assert isinstance(explainer, TreeExplainer)
    assert explainer.deep_paths > 0
    assert TABLE_DEPTH == 8
    rows = data.iloc[:150]
    answer = explainer.explain({c: rows[c].to_numpy() for c in data})
    expected = shap.TreeExplainer(
        model, data=background.to_numpy(), feature_perturbation="interventional"
    ).shap_values(rows.to_numpy(), check_additivity=False)
    assert np.abs(answer.values - expected).max() < TOLERANCE

    x3, y3 = make_classification(
        n_samples=400, n_features=6, n_informative=4, n_classes=3, random_state=1
    )
    data3 = pd.DataFrame(x3, columns=[f"g{i}" for i in range(6)])
    forest = RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0).fit(data3, y3)
    package3 = package_model(forest, sample=data3)
    explainer3 = explainer_for(
        package3.onnx,
        package3.signature,
        background={c: data3[c].to_numpy()[:40] for c in data3},
        class_index=2,
    )
    answer3 = explainer3.explain({c: data3[c].to_numpy()[:120] for c in data3})
    expected3 = shap.TreeExplainer(
        forest, data=data3.to_numpy()[:40], feature_perturbation="interventional"
    ).shap_values(data3.to_numpy()[:120], check_additivity=False)[..., 2]
    assert answer3.scale == "probability"
    assert np.abs(answer3.values - expected3).max() < TOLERANCE


def test_outputs_are_the_served_probabilities() -> None:
    """The explained output is what the served graph answers: sigmoid(output) is the ONNX
    positive-class probability for boosting, the output itself for a forest."""
    for family in ("gradient-boosting", "random-forest", "xgboost"):
        model = fitted(family)
        explainer = explainer_for(
            model.package.onnx,
            model.package.signature,
            background=model.columns(model.background),
        )
        answer = explainer.explain(model.columns())
        served = explainer.model.positive_scores(model.columns())
        shown = (
            answer.outputs if answer.scale == "probability" else 1 / (1 + np.exp(-answer.outputs))
        )
        assert np.abs(shown - served).max() < 1e-6, family


def test_one_row_at_a_time_equals_the_batch() -> None:
    """Serving explains one row per request (a faster path): each single-row answer equals
    that row's answer in a batch (to 1e-12: BLAS may sum a matrix product in another
    order than a vector product)."""
    model = fitted("gradient-boosting")
    explainer = explainer_for(
        model.package.onnx, model.package.signature, background=model.columns(model.background)
    )
    rows = model.data.iloc[:25]
    batch = explainer.explain(model.columns(rows))
    for i in range(len(rows)):
        single = explainer.explain(model.columns(rows.iloc[i : i + 1]))
        assert np.abs(single.values[0] - batch.values[i]).max() < 1e-12
        assert abs(single.outputs[0] - batch.outputs[i]) < 1e-12
