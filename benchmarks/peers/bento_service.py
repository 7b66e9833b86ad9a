"""The BentoML peer of benchmarks/serving.py: the scikit-learn pipeline from the model store.

The usual BentoML 1.4 shape: a ``@bentoml.service`` class (one worker) that loads the model
saved with ``bentoml.sklearn.save_model`` (tag ``diabetes_clf:latest`` in ``BENTOML_HOME``) and
an ``@bentoml.api`` taking the named features as a dict. POST /predict with
``{"features": {"age": 59.0, ...}}`` answers ``{"label": 1, "probabilities": [p0, p1]}``.
The pipeline was fitted on a DataFrame, so the row is given to it as a one-row DataFrame.
Run: ``bentoml serve bento_service:DiabetesClassifier`` from this folder.
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
        missing = [name for name in FEATURES if name not in features]
        if missing:
            raise bentoml.exceptions.InvalidArgument(f"missing features: {missing}")
        row = pd.DataFrame([[features[name] for name in FEATURES]], columns=list(FEATURES))
        probabilities = self.model.predict_proba(row)[0]
        label = self.model.classes_[int(probabilities.argmax())]
        return {"label": int(label), "probabilities": probabilities.tolist()}
