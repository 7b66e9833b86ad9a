"""The models benchmarks/serving.py serves, defined once for the peers and for medops.

``peers/build_model.py`` (the peers venv) and ``serving_medops_setup.py`` (the project's venv)
both train here, so every server answers from the same fitted model: the same scikit-learn
version in both venvs (1.9.1), the same data, the same seeds. The data is scikit-learn's
bundled diabetes set (``load_diabetes(as_frame=True, scaled=False)``, 442 rows, 10 named
features), the target binarised at its median. Each model is a ``Pipeline`` whose last step is
named ``classify``:

- ``logreg``: ``StandardScaler`` then ``LogisticRegression(max_iter=1000)``;
- ``gbm``: ``GradientBoostingClassifier(n_estimators=200, random_state=0)`` alone (trees need
  no scaling), 200 trees of depth 3.

scikit-learn (and pandas) are imported inside the functions, so ``serving.py`` can import
``MODELS`` with the standard library only.
"""

from __future__ import annotations

from typing import Any

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")
MODELS = ("logreg", "gbm")


def make_model(name: str) -> Any:
    """An unfitted pipeline for ``name`` (one of :data:`MODELS`)."""
    from sklearn.ensemble import GradientBoostingClassifier  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    if name == "logreg":
        return Pipeline(
            [("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=1000))]
        )
    if name == "gbm":
        return Pipeline(
            [("classify", GradientBoostingClassifier(n_estimators=200, random_state=0))]
        )
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")


def load_data() -> tuple[Any, Any]:
    """The diabetes features (float64 DataFrame, columns :data:`FEATURES`) and 0/1 target."""
    from sklearn.datasets import load_diabetes  # type: ignore[import-untyped]

    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.data.astype("float64")
    assert tuple(frame.columns) == FEATURES, tuple(frame.columns)
    target = (data.target > data.target.median()).astype("int64")
    return frame, target


def train(name: str) -> tuple[Any, Any, Any]:
    """``name``'s pipeline fitted on the whole data set, with the features and the target."""
    frame, target = load_data()
    model = make_model(name)
    model.fit(frame, target)
    return model, frame, target
