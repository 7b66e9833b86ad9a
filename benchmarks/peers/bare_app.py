"""The bare baseline of benchmarks/serving.py: FastAPI + onnxruntime and nothing else.

POST /predict with ``{"features": {"age": 59.0, ...}}`` builds the float32 row in the model's
feature order, runs the ONNX session and answers ``{"label": 1, "probabilities": [p0, p1]}``.
POST /predict_batch with medops's batch shape, ``{"records": [{"features": {...}}, ...]}``,
runs all the rows in one session call and answers ``{"labels": [...], "probabilities":
[[p0, p1], ...]}`` in the records' order. One onnxruntime thread (as medops uses by default)
per uvicorn worker. The model path comes from ``BARE_MODEL_PATH``.
Run: ``uvicorn bare_app:app --workers 1`` from this folder.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

FEATURES = ("age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")

_options = ort.SessionOptions()
_options.intra_op_num_threads = 1
_options.inter_op_num_threads = 1
session = ort.InferenceSession(
    os.environ["BARE_MODEL_PATH"], sess_options=_options, providers=["CPUExecutionProvider"]
)
INPUT_NAME = session.get_inputs()[0].name


class PredictRequest(BaseModel):
    features: dict[str, float]


class PredictResponse(BaseModel):
    label: int
    probabilities: list[float]


class BatchRequest(BaseModel):
    records: list[PredictRequest]


class BatchResponse(BaseModel):
    labels: list[int]
    probabilities: list[list[float]]


app = FastAPI()


def ordered(features: dict[str, float]) -> list[float]:
    """The row in the model's feature order; 422 when a feature is missing."""
    missing = [name for name in FEATURES if name not in features]
    if missing:
        raise HTTPException(status_code=422, detail=f"missing features: {missing}")
    return [features[name] for name in FEATURES]


@app.post("/predict")
def predict(request: PredictRequest) -> PredictResponse:
    row = np.array([ordered(request.features)], dtype=np.float32)
    label, probabilities = session.run(None, {INPUT_NAME: row})
    return PredictResponse(label=int(label[0]), probabilities=probabilities[0].tolist())


@app.post("/predict_batch")
def predict_batch(request: BatchRequest) -> BatchResponse:
    if not request.records:
        raise HTTPException(status_code=422, detail="no records")
    rows = np.array([ordered(record.features) for record in request.records], dtype=np.float32)
    labels, probabilities = session.run(None, {INPUT_NAME: rows})
    return BatchResponse(labels=labels.tolist(), probabilities=probabilities.tolist())
