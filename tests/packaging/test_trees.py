"""Tree classifiers become float64 ONNX graphs that equal ``predict_proba`` within 1e-6: after
a scaler, an imputer or a ColumnTransformer, on the registration sample and on fresh rows,
with missing values, several classes and string labels; what cannot be expressed is refused
in one line that says what to do."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import lightgbm
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import xgboost
from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris  # type: ignore[import-untyped]
from sklearn.ensemble import (  # type: ignore[import-untyped]
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from medops.core.onnx_artifact import inspect_artifact
from medops.core.onnx_model import OnnxModel
from medops.errors import PackagingError
from medops.packaging import package_model
from medops.packaging.trees import float32_thresholds

TOLERANCE = 1e-6

FAMILIES: dict[str, Callable[[], BaseEstimator]] = {
    "random-forest": lambda: RandomForestClassifier(n_estimators=60, random_state=0),
    "extra-trees": lambda: ExtraTreesClassifier(n_estimators=60, random_state=0),
    "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=60, random_state=0),
    "decision-tree": lambda: DecisionTreeClassifier(random_state=0),
    "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=60, random_state=0),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=60, verbose=-1),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=60, max_depth=4),
}


@functools.cache
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer features (30 measurements, names made signature-safe), 0/1 target."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y


@functools.cache
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes features with sex as the strings F/M, progression above the median."""
    data = load_diabetes(as_frame=True, scaled=False)
    x = data.data.copy()
    x["sex"] = x["sex"].map({1.0: "F", 2.0: "M"}).astype(object)
    return x, (data.target > data.target.median()).astype(int)


def _with_preprocessing(prep: str, estimator: BaseEstimator) -> tuple[Any, pd.DataFrame, Any]:
    """(unfitted model, features, target) for one preprocessing before ``estimator``."""
    if prep == "column-transformer":
        x, y = diabetes()
        numeric = [c for c in x.columns if c != "sex"]
        columns = ColumnTransformer(
            [("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])]
        )
        return make_pipeline(columns, estimator), x, y
    x, y = cancer()
    steps = {
        "none": [],
        "scaler": [StandardScaler()],
        "imputer-scaler": [SimpleImputer(), StandardScaler()],
    }
    return (make_pipeline(*steps[prep], estimator) if steps[prep] else estimator), x, y


@functools.cache
def fitted(family: str, prep: str) -> tuple[Any, pd.DataFrame]:
    model, x, y = _with_preprocessing(prep, FAMILIES[family]())
    return model.fit(x, y), x


def fresh_rows(x: pd.DataFrame, n: int = 2000, seed: int = 1) -> pd.DataFrame:
    """Rows the model never saw: sample rows with every number moved by about 5%."""
    rng = np.random.default_rng(seed)
    rows = x.iloc[rng.integers(0, len(x), n)].reset_index(drop=True).copy()
    numeric = rows.select_dtypes("number").columns
    rows[numeric] = rows[numeric] * rng.normal(1.0, 0.05, (n, len(numeric)))
    return rows


def _columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].tolist() for c in frame.columns}


def assert_equal_to_native(model: Any, onnx_model: OnnxModel, rows: pd.DataFrame) -> None:
    """Probabilities within 1e-6 of ``predict_proba``; labels equal wherever the two most
    probable classes are not tied."""
    labels, probabilities = onnx_model.predict(_columns(rows))
    native = model.predict_proba(rows)
    assert np.max(np.abs(probabilities - native)) <= TOLERANCE
    top = np.sort(native, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-9
    expected = np.asarray(model.predict(rows)).astype(str)
    assert (labels.astype(str)[clear] == expected[clear]).all()


def test_float32_thresholds_decide_as_a_float32_cast_does() -> None:
    """For any threshold t, x <= float32_thresholds(t) exactly when float32(x) <= t: at the
    boundary itself, one float64 step either side, float32 neighbours, subnormals, zero,
    negatives and the float32 extremes."""
    rng = np.random.default_rng(0)
    f32 = rng.normal(0, 1e3, 3000).astype(np.float32)
    neighbours = np.nextafter(f32, np.float32(np.inf))
    thresholds = np.concatenate(
        [
            f32.astype(np.float64) / 2 + neighbours.astype(np.float64) / 2,  # scikit-learn's
            f32.astype(np.float64),
            rng.normal(0, 1, 1000),
            [0.0, -0.0, 1e-45, -1e-45, 3e-39, float(np.finfo(np.float32).max), 3.5e38, -3.5e38],
        ]
    )
    bounds = float32_thresholds(thresholds)
    for t, w in zip(thresholds, bounds, strict=True):
        candidates = [w, np.nextafter(w, np.inf), np.nextafter(w, -np.inf), t]
        candidates += [np.nextafter(t, np.inf), np.nextafter(t, -np.inf)]
        for x in candidates:
            with np.errstate(over="ignore"):
                cast = np.float32(x)
            assert (float(cast) <= t) == (x <= w), (t, w, x)


@pytest.mark.parametrize("prep", ["none", "scaler", "imputer-scaler", "column-transformer"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_trees_equal_predict_proba_within_1e_6_after_any_preprocessing(
    family: str, prep: str
) -> None:
    """Each tree family, alone, after a StandardScaler, after an imputer and a scaler, and in
    a ColumnTransformer pipeline, packages with tolerance 1e-6, passes the server's artifact
    checks with float64 numeric inputs (XGBoost alone: float32, what XGBoost computes in),
    and equals predict_proba within 1e-6 on 2,000 fresh rows too."""
    model, x = fitted(family, prep)
    package = package_model(model, sample=x, tolerance=TOLERANCE)
    assert package.parity is not None
    assert package.parity.max_abs_diff <= TOLERANCE
    info = inspect_artifact(package.onnx)  # what the server runs on upload
    number = "tensor(float)" if (family, prep) == ("xgboost", "none") else "tensor(double)"
    assert {i["type"] for i in info.inputs} <= {number, "tensor(string)"}
    assert_equal_to_native(model, OnnxModel(package.onnx, package.signature), fresh_rows(x))


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"xgboost"}))
def test_trees_are_one_float64_tree_ensemble_of_onnx_ml_opset_5(family: str) -> None:
    """The trees are one TreeEnsemble node of ai.onnx.ml opset 5 (float64 splits, leaves and
    output); XGBoost keeps float32, its own precision."""
    model, x = fitted(family, "scaler")
    info = inspect_artifact(package_model(model, sample=x).onnx)
    assert "ai.onnx.ml:TreeEnsemble" in info.operators
    assert info.opset["ai.onnx.ml"] == 5
    assert not [o for o in info.operators if o.startswith("ai.onnx.ml:TreeEnsembleClassifier")]


@pytest.mark.parametrize(
    "make", [LogisticRegression, lambda: MLPClassifier(max_iter=500, random_state=0)]
)
def test_linear_models_and_mlps_keep_float32(make: Callable[[], BaseEstimator]) -> None:
    """Without trees the graph stays as skl2onnx writes it (float32 input), within 1e-5."""
    x, y = cancer()
    model = make_pipeline(StandardScaler(), make()).fit(x, y)
    package = package_model(model, sample=x, tolerance=1e-5)
    assert [i["type"] for i in inspect_artifact(package.onnx).inputs] == ["tensor(float)"]


@pytest.mark.parametrize(
    "family", ["random-forest", "gradient-boosting", "hist-gradient-boosting", "lightgbm"]
)
def test_several_classes_with_string_labels(family: str) -> None:
    """Three iris species named by strings: probabilities within 1e-6, string labels."""
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    species = pd.Series(np.array(["setosa", "versicolor", "virginica"])[y])
    model = make_pipeline(StandardScaler(), FAMILIES[family]()).fit(x, species)
    package = package_model(model, sample=x, tolerance=TOLERANCE)
    assert package.signature.outputs.class_labels == ["setosa", "versicolor", "virginica"]
    assert_equal_to_native(model, OnnxModel(package.onnx, package.signature), fresh_rows(x))


@pytest.mark.parametrize(
    "family", ["random-forest", "decision-tree", "hist-gradient-boosting", "lightgbm"]
)
def test_missing_values_take_the_branch_the_model_learned(family: str) -> None:
    """With 15% of values missing, every row (NaN included) gets predict_proba's answer:
    NaN follows each split's learned direction, as in scikit-learn and LightGBM."""
    x, y = cancer()
    rng = np.random.default_rng(0)
    holes = x.mask(rng.random(x.shape) < 0.15)
    model = FAMILIES[family]().fit(holes, y)
    package = package_model(model, sample=holes, tolerance=TOLERANCE)
    assert_equal_to_native(model, OnnxModel(package.onnx, package.signature), holes)


def test_hist_gradient_boosting_with_categorical_features_is_refused() -> None:
    """HistGradientBoosting with its own categorical splits is refused in one line saying to
    encode the categories before the model."""
    x = pd.DataFrame(
        {
            "dose": np.arange(120.0),
            "site": pd.Categorical(np.where(np.arange(120) % 3 == 0, "a", "b")),
        }
    )
    model = HistGradientBoostingClassifier(categorical_features="from_dtype")
    model.fit(x, np.arange(120) % 2)
    with pytest.raises(PackagingError) as caught:
        package_model(model, sample=x)
    assert "categorical" in str(caught.value)
    assert "OneHotEncoder" in str(caught.value)
    assert caught.value.errors[0].field == "model"


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (
            GradientBoostingClassifier(init=LogisticRegression(max_iter=5000), n_estimators=5),
            "init=None",
        ),
        (lightgbm.LGBMClassifier(zero_as_missing=True, verbose=-1), "zero_as_missing"),
    ],
)
def test_trees_the_graph_cannot_express_are_refused(model: Any, fragment: str) -> None:
    """A gradient boosting whose init is an estimator, and LightGBM treating zero as missing,
    are refused naming what to change, instead of registering a graph that answers wrongly."""
    x, y = cancer()
    with_zeros = x.clip(upper=x.median(), axis=1) - x.median()  # half the values are 0.0
    model.fit(with_zeros, y)
    with pytest.raises(PackagingError, match=fragment) as caught:
        package_model(model, sample=with_zeros)
    assert "\n" not in str(caught.value)
