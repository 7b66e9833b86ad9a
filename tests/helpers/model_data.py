"""Clinical data that ships with scikit-learn, models trained on it, and their packages.

Diabetes progression (442 patients) binarized at the median, with sex and age as demographic
attributes; built once per test session (``functools.cache``), nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import pandas as pd  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops import examples
from medops.packaging import Package, package_model

LABEL = examples.LABEL
# The >=60 age band has 24 evaluation rows: its AUROC gap (-0.13, 95% CI of the group's AUROC
# 0.47-0.92) fails the default 0.10; the ML engineer sets 0.15 for this model.
POLICY = {"max_subgroup_gap": 0.15}
CARD = examples.DIABETES_CARD


@functools.cache
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.Series, pd.Series]:
    """Train/evaluation split of the diabetes data: X_train, X_eval, y_train, y_eval."""
    return examples.diabetes_frames()


@functools.cache
def pipeline(c: float = 1.0) -> Pipeline:
    """A scaled logistic regression (``c`` varies it, to make a different version)."""
    x_train, _, y_train, _ = frames()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000))
    model.fit(x_train, y_train)
    return model


@functools.cache
def package(c: float = 1.0) -> Package:
    """The pipeline packaged as ONNX with parity evidence; sex and age are demographic."""
    x_train, _, _, _ = frames()
    return package_model(
        pipeline(c),
        sample=x_train,
        demographic=["sex", "age"],
        bands={"age": [40.0, 60.0]},
        ranges={"age": (18, 110), "bmi": (10, 80)},
    )


def eval_csv() -> bytes:
    """The evaluation split as a labeled CSV."""
    _, x_eval, _, y_eval = frames()
    return examples.labeled_csv(x_eval, y_eval)


def metadata(pkg: Package, **extra: Any) -> dict[str, Any]:
    """The registration metadata of a package, as the SDK sends it (a copy: a test that
    edits it cannot change the cached package other tests register)."""
    pkg = copy.deepcopy(pkg)
    assert pkg.parity is not None
    return {
        "signature": pkg.signature.model_dump(mode="json"),
        "framework": pkg.framework,
        "training_data": {"uri": "file:///data/diabetes.csv", "digest": "a" * 64},
        "code": {"commit": "1a2b3c4d", "repository": "https://git.example.org/risk"},
        "hyperparameters": pkg.hyperparameters,
        "parity": {
            "columns": pkg.parity.columns,
            "native_probabilities": pkg.parity.native_probabilities,
            "tolerance": pkg.parity.tolerance,
        },
    } | extra


@functools.cache
def mlp_pipeline() -> Pipeline:
    """A scaled two-layer MLP on the diabetes training split (early stopping: no warning)."""
    x_train, _, y_train, _ = frames()
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(64, 32), max_iter=500, early_stopping=True, random_state=0
        ),
    ).fit(x_train, y_train)


@functools.cache
def mlp_package() -> Package:
    """The MLP packaged like model_data's logistic regression (sex and age demographic,
    declared ranges), with parity evidence."""
    return package_model(
        mlp_pipeline(),
        sample=frames()[0],
        demographic=["sex", "age"],
        bands={"age": [40.0, 60.0]},
        ranges={"age": (18, 110), "bmi": (10, 80)},
    )


@functools.cache
def inverted_package() -> Package:
    """The logistic regression trained on inverted labels: a model no gate should pass."""
    x_train, _, y_train, _ = frames()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, 1 - y_train)
    return package_model(
        model,
        sample=x_train,
        demographic=["sex", "age"],
        bands={"age": [40.0, 60.0]},
        ranges={"age": (18, 110), "bmi": (10, 80)},
    )
