"""Client-side packaging: native classifiers become ONNX with an inferred signature and
parity evidence that the server can recompute."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import lightgbm
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
import xgboost
from sklearn.base import BaseEstimator, ClassifierMixin  # type: ignore[import-untyped]
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.datasets import load_breast_cancer, load_diabetes  # type: ignore[import-untyped]
from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped]

from medops.core.onnx_model import OnnxModel, parity_diff
from medops.errors import PackagingError, ParityFailedError
from medops.packaging import infer_signature, package_model


@functools.cache
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    """Breast cancer features (names made signature-safe) and the 0/1 target."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y


@functools.cache
def diabetes() -> tuple[pd.DataFrame, pd.Series]:
    """Diabetes features with sex as the strings F/M, and progression above the median."""
    data = load_diabetes(as_frame=True, scaled=False)
    x = data.data.copy()
    x["sex"] = x["sex"].map({1.0: "F", 2.0: "M"}).astype(object)
    return x, (data.target > data.target.median()).astype(int)


MODELS: dict[str, Callable[[], Any]] = {
    "pipeline": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "random-forest": lambda: RandomForestClassifier(n_estimators=25, random_state=0),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=25, verbose=-1),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=25, max_depth=3),
}
FRAMEWORKS = {
    "pipeline": "scikit-learn ",
    "random-forest": "scikit-learn ",
    "lightgbm": "lightgbm ",
    "xgboost": "xgboost ",
}


@functools.cache
def fitted(kind: str) -> Any:
    x, y = cancer()
    return MODELS[kind]().fit(x, y)


def _columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    return {c: frame[c].tolist() for c in frame.columns}


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_onnx_matches_the_native_model_within_1e_5(kind: str) -> None:
    """For each framework, OnnxModel.predict equals predict_proba within 1e-5 on every row,
    labels agree, and the parity evidence records a diff below the tolerance."""
    x, _ = cancer()
    model = fitted(kind)
    package = package_model(model, sample=x)
    assert package.framework.startswith(FRAMEWORKS[kind])
    assert package.signature.input_layout == "tensor"
    loaded = OnnxModel(package.onnx, package.signature)
    labels, probabilities = loaded.predict(_columns(x))
    np.testing.assert_allclose(probabilities, model.predict_proba(x), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(labels, model.predict(x))
    assert package.parity is not None
    assert package.parity.max_abs_diff < 1e-5
    assert len(package.parity.native_probabilities) == 200


def test_column_transformer_with_a_string_column_uses_the_columns_layout() -> None:
    """A ColumnTransformer + OneHotEncoder pipeline over a DataFrame with a string column
    gets one input per column (tensor(string) for sex) and matches within 1e-5."""
    x, y = diabetes()
    numeric = [c for c in x.columns if c != "sex"]
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), numeric), ("cat", OneHotEncoder(), ["sex"])]),
        LogisticRegression(max_iter=2000),
    ).fit(x, y)
    package = package_model(
        model, sample=x, demographic=["sex", "age"], bands={"age": [40.0, 60.0]}
    )
    signature = package.signature
    assert signature.input_layout == "columns"
    assert signature.feature("sex").categories == ["F", "M"]
    assert [f.name for f in signature.demographics] == ["age", "sex"]
    assert signature.feature("age").bands == [40.0, 60.0]
    loaded = OnnxModel(package.onnx, signature)
    types = {i["name"]: i["type"] for i in loaded.info.inputs}
    assert types["sex"] == "tensor(string)"
    assert types["age"] == "tensor(float)"
    _, probabilities = loaded.predict(_columns(x))
    np.testing.assert_allclose(probabilities, model.predict_proba(x), rtol=0, atol=1e-5)


def test_inferred_signature_types_ranges_and_labels() -> None:
    """Types come from dtypes, ranges are the observed min/max, labels are JSON-safe."""
    sample = pd.DataFrame(
        {
            "age": np.array([30, 70, 50], dtype=np.int64),
            "bmi": [20.5, 31.0, np.nan],
            "smoker": [True, False, True],
            "site": pd.Series(["b", "a", "b"], dtype="category"),
        }
    )
    signature = infer_signature(
        sample,
        class_labels=np.array(["no", "yes"]),
        demographic=["age"],
        bands={"age": [40]},
        ranges={"age": (18, 110)},
    )
    specs = {f.name: f for f in signature.inputs}
    assert (specs["age"].type, specs["age"].minimum, specs["age"].maximum) == ("integer", 18, 110)
    assert (specs["bmi"].type, specs["bmi"].minimum, specs["bmi"].maximum) == ("float", None, None)
    assert specs["smoker"].type == "boolean"
    assert (specs["site"].type, specs["site"].categories) == ("category", ["a", "b"])
    assert specs["age"].demographic
    assert specs["age"].bands == [40.0]
    assert signature.input_layout == "columns"  # a string category
    assert signature.outputs.class_labels == ["no", "yes"]


def test_ranges_are_declared_never_guessed_from_the_sample() -> None:
    """Without ``ranges`` numeric features get no bounds (a training sample's min/max would
    refuse real patients); declared ranges land in the signature; unknown names are refused."""
    x, _ = cancer()
    package = package_model(fitted("pipeline"), sample=x)
    assert all(f.minimum is None and f.maximum is None for f in package.signature.inputs)
    first = str(x.columns[0])
    ranged = package_model(fitted("pipeline"), sample=x, ranges={first: (0, 50)})
    assert (ranged.signature.inputs[0].minimum, ranged.signature.inputs[0].maximum) == (0, 50)
    with pytest.raises(PackagingError, match=r"ranges\.nope"):
        package_model(fitted("pipeline"), sample=x, ranges={"nope": (0, 1)})


def test_a_mapping_sample_works_like_a_dataframe() -> None:
    """A dict of lists is a sample too; the native model gets the rows as a matrix."""
    x, y = cancer()
    model = LogisticRegression(max_iter=5000).fit(x.to_numpy(), y.to_numpy())
    package = package_model(model, sample=_columns(x.iloc[:100]))
    assert package.parity is not None
    assert package.parity.max_abs_diff < 1e-4
    assert package.signature.feature_names == list(x.columns)


def test_a_model_fitted_on_arrays_gets_arrays() -> None:
    """A model fitted without feature names gets the parity rows as a matrix (so neither
    scikit-learn nor LightGBM warns about feature names)."""
    x, y = cancer()
    model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(x.to_numpy(), y)
    package = package_model(model, sample=x)
    assert package.parity is not None
    assert package.parity.max_abs_diff < 1e-5


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        (np.zeros((3, 2)), "sample"),
        (pd.DataFrame({"mean radius": [1.0, 2.0]}), "sample.mean radius"),
        (pd.DataFrame({"a": [1.0, 2.0]}), "demographic.sex"),
        (pd.DataFrame({"a": ["x", None]}), "sample.a"),
        (pd.DataFrame({"a": ["x", 1]}), "sample.a"),
    ],
)
def test_samples_without_usable_names_or_values_are_refused(sample: Any, field: str) -> None:
    """A bare array, names the signature cannot take, an unknown demographic column, and
    category columns with missing or mixed values raise PackagingError naming the field."""
    with pytest.raises(PackagingError) as caught:
        infer_signature(sample, class_labels=[0, 1], demographic=["sex"])
    assert field in {e.field for e in caught.value.errors}


def test_zero_tolerance_catches_float32_rounding() -> None:
    """A float64 logistic regression run in float32 differs by a little: tolerance 0 fails
    with the measured difference in the message."""
    x, _ = cancer()
    with pytest.raises(ParityFailedError, match=r"differ .* by up to \d"):
        package_model(fitted("pipeline"), sample=x, tolerance=0.0)


def test_a_different_native_model_fails_parity() -> None:
    """Packaging model A with model B's predict_proba as the native side fails parity."""
    x, y = cancer()
    other = make_pipeline(StandardScaler(), LogisticRegression(C=0.001)).fit(x, y)
    with pytest.raises(ParityFailedError) as caught:
        package_model(fitted("pipeline"), sample=x, native_predict_proba=other.predict_proba)
    assert caught.value.errors[0].field == "parity"


def test_server_recomputation_catches_swapped_evidence() -> None:
    """Evidence from model B sent with model A's ONNX fails the server's parity_diff."""
    x, _ = cancer()
    package_a = package_model(fitted("pipeline"), sample=x)
    package_b = package_model(fitted("random-forest"), sample=x)
    assert package_b.parity is not None
    loaded = OnnxModel(package_a.onnx, package_a.signature)
    diff = parity_diff(loaded, package_b.parity.columns, package_b.parity.native_probabilities)
    assert diff > package_b.parity.tolerance


def test_package_contents_are_json_safe() -> None:
    """Evidence, hyperparameters (nested estimators as class names) and signature serialize
    to strict JSON."""
    x, _ = cancer()
    package = package_model(fitted("pipeline"), sample=x)
    assert package.parity is not None
    json.dumps(dataclasses.asdict(package.parity), allow_nan=False)
    json.dumps(package.hyperparameters, allow_nan=False)
    assert package.hyperparameters["logisticregression"] == "LogisticRegression"
    assert package.hyperparameters["logisticregression__max_iter"] == 2000
    assert package.hyperparameters["steps"][0] == ["standardscaler", "StandardScaler"]
    json.dumps(package.signature.model_dump(mode="json"), allow_nan=False)


def test_rows_with_missing_values_are_left_out_of_the_evidence() -> None:
    """Parity runs on complete rows only; NaNs never reach the evidence."""
    x, _ = cancer()
    sample = x.iloc[:50].copy()
    sample.iloc[::2, 0] = np.nan
    package = package_model(fitted("lightgbm"), sample=sample)
    assert package.parity is not None
    assert len(package.parity.native_probabilities) == 25
    assert not any(np.isnan(v) for v in package.parity.columns[x.columns[0]])


def test_string_class_labels_survive_conversion() -> None:
    """A classifier trained on string labels gets a string label output that checks out."""
    x, y = cancer()
    labels = np.where(y == 1, "benign", "malignant")
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x, labels)
    package = package_model(model, sample=x.iloc[:100])
    assert package.signature.outputs.class_labels == ["benign", "malignant"]
    predicted, _ = OnnxModel(package.onnx, package.signature).predict(_columns(x.iloc[:5]))
    assert predicted.tolist() == model.predict(x.iloc[:5]).tolist()


def test_onnx_passes_through_with_optional_parity() -> None:
    """ONNX bytes keep framework 'onnx'; parity only when a native callable is given."""
    x, _ = cancer()
    onnx_bytes = package_model(fitted("pipeline"), sample=x).onnx
    plain = package_model(onnx_bytes, sample=x, class_labels=[0, 1])
    assert (plain.framework, plain.parity, plain.onnx) == ("onnx", None, onnx_bytes)
    checked = package_model(
        onnx_bytes,
        sample=x,
        class_labels=[0, 1],
        native_predict_proba=fitted("pipeline").predict_proba,
    )
    assert checked.parity is not None
    assert checked.parity.max_abs_diff < 1e-5
    with pytest.raises(PackagingError, match="class_labels"):
        package_model(onnx_bytes, sample=x)


def test_class_labels_must_match_the_model() -> None:
    """class_labels that differ from the model's classes_ are refused."""
    with pytest.raises(PackagingError, match="differ from the model's classes"):
        package_model(fitted("pipeline"), sample=cancer()[0], class_labels=[1, 0])


class _NoConverter(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: untyped
    """A classifier skl2onnx has no converter for."""

    def fit(self, _x: Any, y: Any) -> _NoConverter:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        return np.full((len(x), 2), 0.5)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (object(), "cannot package a builtins.object"),
        ("not a model", "cannot package a builtins.str"),
        (_NoConverter(), "skl2onnx cannot convert _NoConverter"),
    ],
)
def test_unconvertible_models_raise_packaging_error(model: Any, message: str) -> None:
    """Unsupported types and estimators without a converter raise PackagingError."""
    x, y = cancer()
    if isinstance(model, _NoConverter):
        model.fit(x, y)
    with pytest.raises(PackagingError, match=message):
        package_model(model, sample=x)


@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_missing_boosting_library_names_the_extra(
    library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the library installed, packaging its model says which extra to install."""
    model = fitted(library)
    monkeypatch.setitem(sys.modules, library, None)
    with pytest.raises(PackagingError, match=rf"install medops\[{library}\]"):
        package_model(model, sample=cancer()[0])
