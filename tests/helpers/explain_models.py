"""Models for the explanation tests: small, fitted once per session, packaged as users do.

Breast-cancer data (569 patients, 30 features; the first ``N_FEATURES`` for the brute-force
comparisons) from scikit-learn, nothing downloaded. ``fitted(name)`` gives the native model,
its package, the data frame and the background (the first ``N_BACKGROUND`` rows).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightgbm
import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import xgboost
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.datasets import load_breast_cancer  # type: ignore[import-untyped]
from sklearn.ensemble import (  # type: ignore[import-untyped]
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # type: ignore[import-untyped]

from medops.packaging import Package, package_model

N_FEATURES = 8  # brute-force Shapley values cost 2**N_FEATURES model runs per row
N_BACKGROUND = 40


@functools.cache
def frame() -> tuple[pd.DataFrame, np.ndarray]:
    """The breast-cancer features (first N_FEATURES, names without spaces) and labels."""
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x = x.iloc[:, :N_FEATURES].copy()
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, np.asarray(y)


@functools.cache
def mixed_frame() -> pd.DataFrame:
    """The features with a string category (``sex``) and missing values in one column."""
    x, _ = frame()
    mixed = x.copy()
    mixed["sex"] = np.where(
        np.arange(len(x)) % 3 == 0, "F", np.where(np.arange(len(x)) % 3 == 1, "M", "X")
    )
    mixed.iloc[::7, 0] = np.nan
    return mixed


MODELS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "random-forest": lambda: RandomForestClassifier(n_estimators=40, max_depth=6, random_state=0),
    "gradient-boosting": lambda: GradientBoostingClassifier(
        n_estimators=40, max_depth=4, random_state=0
    ),
    "xgboost": lambda: xgboost.XGBClassifier(n_estimators=40, max_depth=5, random_state=0),
    "lightgbm": lambda: lightgbm.LGBMClassifier(n_estimators=40, random_state=0, verbose=-1),
    "mlp": lambda: make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=2000, random_state=0)
    ),
}


@dataclass(frozen=True)
class Fitted:
    """A native model, its ONNX package, its data and background as columns."""

    native: Any
    package: Package
    data: pd.DataFrame

    def columns(self, rows: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """``rows`` (default: all the data) as feature -> values."""
        rows = self.data if rows is None else rows
        return {c: rows[c].to_numpy() for c in rows.columns}

    @property
    def background(self) -> pd.DataFrame:
        """The rows contributions are measured against."""
        return self.data.iloc[:N_BACKGROUND]


@functools.cache
def fitted(name: str) -> Fitted:
    """``MODELS[name]`` fitted on the breast-cancer data and packaged."""
    x, y = frame()
    model = MODELS[name]()
    model.fit(x, y)
    return Fitted(model, package_model(model, sample=x), x)


@functools.cache
def fitted_mixed(name: str) -> Fitted:
    """A ColumnTransformer pipeline (impute + scale numbers, one-hot ``sex``) ending in a
    logistic regression (``logistic``) or a random forest (``random-forest``)."""
    data = mixed_frame()
    _, y = frame()
    numbers = [c for c in data.columns if c != "sex"]
    encode = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numbers),
            ("cat", OneHotEncoder(), ["sex"]),
        ]
    )
    last = (
        LogisticRegression(max_iter=2000)
        if name == "logistic"
        else RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0)
    )
    model = make_pipeline(encode, last)
    model.fit(data, y)
    return Fitted(model, package_model(model, sample=data), data)


def brute_force_shapley(
    predict: Callable[[np.ndarray], np.ndarray], row: np.ndarray, background: np.ndarray
) -> np.ndarray:
    """Interventional Shapley values of one row by enumerating every coalition: the
    reference the exact methods are held to (2**F runs of ``predict`` on the background)."""
    n_features = row.shape[0]
    masks = (np.arange(2**n_features)[:, None] >> np.arange(n_features)) & 1
    hybrids = np.where(masks[:, None, :].astype(bool), row[None, None, :], background[None])
    value = predict(hybrids.reshape(-1, n_features)).reshape(len(masks), -1).mean(axis=1)
    sizes = masks.sum(axis=1)
    fact = np.array([np.prod(np.arange(1, k + 1), dtype=np.float64) for k in range(n_features + 1)])
    phi = np.zeros(n_features)
    for j in range(n_features):
        without = masks[:, j] == 0
        s = sizes[without]
        weight = fact[s] * fact[n_features - s - 1] / fact[n_features]
        phi[j] = np.sum(weight * (value[np.flatnonzero(without) + (1 << j)] - value[without]))
    return phi
