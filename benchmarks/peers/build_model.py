"""Train one benchmark model and package it for every server of benchmarks/serving.py.

Run with the peers venv, from DIR (MLflow looks for a project in the working directory):
``benchmarks/.peers-venv/bin/python benchmarks/peers/build_model.py DIR [--model logreg|gbm]``.
It trains the model ``benchmarks/serving_models.py`` defines under that name (``logreg``:
Pipeline(StandardScaler, LogisticRegression(max_iter=1000)); ``gbm``: a 200-tree
GradientBoostingClassifier) on scikit-learn's bundled diabetes data (no download) with the
target binarised at its median, then writes into DIR:

- ``pipeline.pkl``: the fitted pipeline (cloudpickle), for anyone who wants the raw object;
- ``model.onnx``: skl2onnx conversion, float input ``[None, 10]``, outputs label and probabilities
  (no ZipMap), checked against ``predict_proba`` on the whole data set (skl2onnx writes the
  gradient-boosting trees with float32 thresholds and leaf values: 1.6e-7 at most from
  scikit-learn on this data, well inside the benchmark's 1e-5);
- an MLflow model logged with ``mlflow.sklearn.log_model`` (cloudpickle, named-column signature,
  ``pyfunc_predict_fn="predict_proba"``) in a SQLite tracking store at ``DIR/mlflow``, artifacts
  in ``DIR/mlflow/artifacts`` (the caller sets ``MLFLOW_TRACKING_URI``);
- a BentoML model ``diabetes_clf`` saved with ``bentoml.sklearn.save_model`` in ``DIR/bentoml``
  (the caller sets ``BENTOML_HOME`` to it);
- ``meta.json``: the model's name, feature names, one sample row and its expected
  probabilities, every row of the data set (``rows``) with its expected positive-class
  probability (``positive``, for batch requests), and the MLflow URI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

# The model definitions live beside serving.py, shared with serving_medops_setup.py.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serving_models import FEATURES, MODELS, train

SAMPLE_ROW = 0  # the row every server is asked about one at a time


def to_onnx(pipeline: Pipeline, frame: pd.DataFrame, path: Path) -> None:
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    onnx_model = convert_sklearn(
        pipeline,
        initial_types=[("input", FloatTensorType([None, len(FEATURES)]))],
        options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset=17,
    )
    path.write_bytes(onnx_model.SerializeToString())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    _, probabilities = session.run(None, {"input": frame.to_numpy(np.float32)})
    gap = float(np.max(np.abs(probabilities - pipeline.predict_proba(frame))))
    assert gap < 1e-4, f"ONNX and scikit-learn disagree by {gap}"


def log_mlflow(pipeline: Pipeline, frame: pd.DataFrame, folder: Path) -> str:
    import mlflow
    from mlflow.models import infer_signature

    folder.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    experiment = mlflow.create_experiment(
        "serving-benchmark", artifact_location=(folder / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)
    signature = infer_signature(frame, pipeline.predict_proba(frame))
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            signature=signature,
            pyfunc_predict_fn="predict_proba",
        )
    return str(info.model_uri)


def save_bentoml(pipeline: Pipeline) -> str:
    import bentoml

    return str(bentoml.sklearn.save_model("diabetes_clf", pipeline).tag)


def main(folder: Path, model: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pipeline, frame, _ = train(model)
    (folder / "pipeline.pkl").write_bytes(cloudpickle.dumps(pipeline))
    to_onnx(pipeline, frame, folder / "model.onnx")
    sample = {name: float(value) for name, value in frame.iloc[SAMPLE_ROW].items()}
    meta = {
        "model": model,
        "features": list(FEATURES),
        "sample": sample,
        "probabilities": pipeline.predict_proba(frame.iloc[[SAMPLE_ROW]])[0].tolist(),
        "rows": [{name: float(row[name]) for name in FEATURES} for _, row in frame.iterrows()],
        "positive": pipeline.predict_proba(frame)[:, 1].tolist(),
        "mlflow_model_uri": log_mlflow(pipeline, frame, folder / "mlflow"),
        "bentoml_tag": save_bentoml(pipeline),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", choices=MODELS, default="logreg")
    args = parser.parse_args()
    main(args.folder, args.model)
