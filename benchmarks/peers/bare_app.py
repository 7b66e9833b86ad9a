"""The bare baseline of benchmarks/serving.py: FastAPI + onnxruntime and nothing else.

POST /predict with ``{"features": {"age": 59.0, ...}}`` builds the float32 row in the model's
feature order, runs the ONNX session and answers ``{"label": 1, "probabilities": [p0, p1]}``.
One onnxruntime thread (as medops uses by default), one uvicorn worker. The model path comes
from ``BARE_MODEL_PATH``. Run: ``uvicorn bare_app:app --workers 1`` from this folder.
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


app = FastAPI()


@app.post("/predict")
def predict(request: PredictRequest) -> PredictResponse:
    missing = [name for name in FEATURES if name not in request.features]
    if missing:
        raise HTTPException(status_code=422, detail=f"missing features: {missing}")
    row = np.array([[request.features[name] for name in FEATURES]], dtype=np.float32)
    label, probabilities = session.run(None, {INPUT_NAME: row})
    return PredictResponse(label=int(label[0]), probabilities=probabilities[0].tolist())
