"""Client-side packaging: a native classifier to ONNX, a signature, and parity evidence.

Runs on the registering user's machine (the only place a native model is ever loaded) and
produces a ``Package``: the ONNX bytes the server stores, the signature, the parity evidence
the server re-checks, and lineage. Training frameworks (LightGBM, XGBoost, PyTorch, MLflow)
are imported only when a model of theirs is packaged.
"""

from __future__ import annotations

from medops.packaging.mlflow import import_mlflow
from medops.packaging.package import Package, package_model
from medops.packaging.parity import ParityEvidence
from medops.packaging.signature_infer import infer_signature

__all__ = ["Package", "ParityEvidence", "import_mlflow", "infer_signature", "package_model"]
