"""The BentoML peer of benchmarks/serving.py: the scikit-learn pipeline from the model store.

The usual BentoML 1.4 shape: a ``@bentoml.service`` class (one worker by default) that loads
the model saved with ``bentoml.sklearn.save_model`` (tag ``diabetes_clf:latest`` in
``BENTOML_HOME``) and an ``@bentoml.api`` taking the named features as a dict. POST /predict
with ``{"features": {"age": 59.0, ...}}`` answers ``{"label": 1, "probabilities": [p0, p1]}``.
POST /predict_batch with ``{"records": [{"age": 59.0, ...}, ...]}`` (a list of such dicts)
predicts all the rows in one call and answers ``{"labels": [...], "probabilities":
[[p0, p1], ...]}`` in the records' order. The pipeline was fitted on a DataFrame, so the rows
are given to it as a DataFrame. Run: ``bentoml serve bento_service:DiabetesClassifier`` from
this folder; the number of worker processes is set at run time without editing this file by
``BENTOML_CONFIG_OVERRIDES='{"services": {"DiabetesClassifier": {"workers": 2}}}'``
(BentoML's configuration override, merged over the decorator's ``workers=1``).
"""

from __future__ import annotations

from typing import Any

import bentoml
import pandas as pd

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")


@bentoml.service(workers=1)
class DiabetesClassifier:
    model_ref = bentoml.models.BentoModel("diabetes_clf:latest")

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)

    @bentoml.api
    def predict(self, features: dict[str, float]) -> dict[str, Any]:
        row = pd.DataFrame([ordered(features)], columns=list(FEATURES))
        probabilities = self.model.predict_proba(row)[0]
        label = self.model.classes_[int(probabilities.argmax())]
        return {"label": int(label), "probabilities": probabilities.tolist()}

    @bentoml.api
    def predict_batch(self, records: list[dict[str, float]]) -> dict[str, Any]:
        if not records:
            raise bentoml.exceptions.InvalidArgument("no records")
        rows = pd.DataFrame([ordered(record) for record in records], columns=list(FEATURES))
        probabilities = self.model.predict_proba(rows)
        labels = self.model.classes_[probabilities.argmax(axis=1)]
        return {"labels": labels.tolist(), "probabilities": probabilities.tolist()}


def ordered(features: dict[str, float]) -> list[float]:
    """The row in the model's feature order; InvalidArgument when a feature is missing."""
    missing = [name for name in FEATURES if name not in features]
    if missing:
        raise bentoml.exceptions.InvalidArgument(f"missing features: {missing}")
    return [features[name] for name in FEATURES]
