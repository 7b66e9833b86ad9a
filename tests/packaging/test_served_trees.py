"""Tree models packaged in float64 register over the HTTP API (the server re-measures their
parity and runs its artifact checks), pass the governed path, and a deployment answers
exactly what ``predict_proba`` answers, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops.packaging import package_model
from tests.helpers import model_data
from tests.helpers.packaging import Serve

MODELS: dict[str, Callable[[list[str]], Any]] = {
    "forest-after-scaler": lambda _names: make_pipeline(
        StandardScaler(), RandomForestClassifier(n_estimators=50, random_state=0)
    ),
    "forest-after-column-transformer": lambda names: make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), names)]),
        RandomForestClassifier(n_estimators=50, random_state=0),
    ),
    "hist-gradient-boosting": lambda _names: HistGradientBoostingClassifier(
        max_iter=50, random_state=0
    ),
}


def fresh_records(x: pd.DataFrame, n: int = 300, seed: int = 3) -> list[dict[str, Any]]:
    """Evaluation rows with every value moved by about 5%: rows no model has seen."""
    rng = np.random.default_rng(seed)
    rows = x.iloc[rng.integers(0, len(x), n)].reset_index(drop=True)
    moved = rows * rng.normal(1.0, 0.05, rows.shape)
    return [{k: float(v) for k, v in row.items()} for row in moved.to_dict("records")]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_deployed_tree_model_answers_predict_proba(serve: Serve, kind: str) -> None:
    """A random forest after a scaler (alone or in a ColumnTransformer) and a
    HistGradientBoostingClassifier register with parity 1e-6 and, once deployed, answer 300
    fresh records with predict_proba's probabilities (within 1e-6) and predict's labels."""
    x_train, x_eval, y_train, y_eval = model_data.frames()
    model = MODELS[kind](list(x_train.columns)).fit(x_train, y_train)
    package = package_model(model, sample=x_train, tolerance=1e-6)
    predict = serve(kind, package, x_eval, y_eval)
    records = fresh_records(x_eval)
    answers = predict(records)["predictions"]
    frame = pd.DataFrame(records)[list(x_train.columns)]
    expected = model.predict_proba(frame)
    classes = [str(c) for c in model.classes_]
    served = np.array([[a["probabilities"][c] for c in classes] for a in answers])
    assert np.max(np.abs(served - expected)) <= 1e-6
    top = np.sort(expected, axis=1)
    clear = top[:, -1] - top[:, -2] > 1e-9
    labels = np.array([str(a["label"]) for a in answers])
    assert (labels[clear] == model.predict(frame).astype(str)[clear]).all()
