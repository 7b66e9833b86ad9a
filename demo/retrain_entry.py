"""The training entry point the demo's retraining spec names (``retrain_entry:train``): the
runner imports it in a child process whose PYTHONPATH starts with the working directory and
the demo's own folder, as a hospital's training code would be importable from its repository."""

from __future__ import annotations

from typing import Any

from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

from medops import examples

FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def train(data: Any, params: dict[str, Any]) -> Any:
    """A scaled logistic regression on the table's features, ``C`` from the parameters."""
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=float(params.get("C", 1.0)), max_iter=1000)
    )
    print(f"fitting on {len(data)} rows with C={params.get('C', 1.0)}")
    model.fit(data[FEATURES], data[examples.LABEL])
    return model
