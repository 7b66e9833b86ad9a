"""``package_model``: a native classifier to what the server registers, on the user's machine.

Dispatch on the model's type: ONNX (``onnx.ModelProto`` or bytes) passes through;
LightGBM/XGBoost classifiers go through ``boosting``; ``torch.nn.Module`` through
``torch.onnx.export``; scikit-learn estimators and pipelines through skl2onnx, with tree
classifiers written in float64 by ``trees`` (see ``sklearn`` for the precision rules). The
signature is inferred from the sample unless given. The ONNX result is loaded with the same
``OnnxModel`` the server uses and compared with the native model on up to ``parity_rows``
complete rows of the sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import onnx

from medops.core.onnx_artifact import inspect_artifact
from medops.core.onnx_model import OnnxModel
from medops.core.signature import ModelSignature
from medops.errors import FieldError, PackagingError
from medops.packaging import boosting
from medops.packaging import sklearn as sklearn_conv
from medops.packaging import torch as torch_conv
from medops.packaging.onnx_graph import guess_outputs
from medops.packaging.parity import ParityEvidence, choose_rows, json_columns, measure
from medops.packaging.signature_infer import (
    class_labels_of,
    infer_signature,
    is_frame,
    sample_columns,
)

_SKIP = object()
Layout = Literal["tensor", "columns"]
Infer = Callable[[Sequence[Any], Layout | None], ModelSignature]


@dataclass(frozen=True)
class Package:
    """What the server needs to register a version (see ``ClientRegistry.register_package``)."""

    onnx: bytes
    signature: ModelSignature
    framework: str  # "scikit-learn 1.9.1", "lightgbm 4.7.0", "pytorch 2.x", "onnx"
    parity: ParityEvidence | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # JSON-safe
    lineage: dict[str, Any] = field(default_factory=dict)
    training_metrics: dict[str, float] = field(default_factory=dict)


def package_model(
    model: Any,
    *,
    sample: Any,
    signature: ModelSignature | None = None,
    tolerance: float = 1e-4,
    parity_rows: int = 200,
    class_labels: Sequence[Any] | None = None,
    demographic: Sequence[str] = (),
    bands: Mapping[str, Sequence[float]] | None = None,
    native_predict_proba: Callable[[Any], Any] | None = None,
    torch_output: str = "logits",
    training_metrics: Mapping[str, float] | None = None,
    lineage: Mapping[str, Any] | None = None,
    ranges: Mapping[str, Sequence[float]] | None = None,
) -> Package:
    """Convert ``model`` to ONNX, infer or check its signature, and measure parity.

    ``sample`` is a pandas DataFrame or a mapping of feature name to values; features are
    taken in its column order unless ``signature`` is given (whose order must then be the
    model's). The native model gets the parity rows as a DataFrame when it was fitted on
    named columns (or the columns layout needs them) and as a float matrix otherwise; a
    ``native_predict_proba`` callable gets a DataFrame when the sample is one. For an ONNX
    model, parity is measured only when ``native_predict_proba`` is given. Raises
    PackagingError when the model cannot be converted and ParityFailedError when outputs
    differ beyond ``tolerance``. ``ranges`` declares allowed (minimum, maximum) per feature
    (see ``infer_signature``).
    """
    columns = sample_columns(sample)

    def infer(labels: Sequence[Any], layout: Layout | None) -> ModelSignature:
        return infer_signature(
            sample,
            class_labels=labels,
            demographic=demographic,
            bands=bands,
            layout=layout,
            ranges=ranges,
        )

    native_labels: Callable[[Any], Any] | None = None
    predict_proba = native_predict_proba
    library = boosting.library_of(model)
    if isinstance(model, bytes | bytearray | onnx.ModelProto):
        data = bytes(model) if not isinstance(model, onnx.ModelProto) else model.SerializeToString()
        if signature is None:
            signature = _onnx_signature(data, class_labels, infer)
        framework, hyperparameters = "onnx", {}
    elif torch_conv.is_torch_module(model):
        data, signature, checked = _package_torch(
            model, columns, signature, infer, class_labels, torch_output, tolerance, parity_rows
        )
        n_parameters = sum(int(p.numel()) for p in model.parameters())
        return Package(
            onnx=data,
            signature=signature,
            framework=torch_conv.framework(),
            parity=checked,
            hyperparameters={"module": type(model).__name__, "parameters": n_parameters},
            lineage=dict(lineage or {}),
            training_metrics=dict(training_metrics or {}),
        )
    elif library is not None or sklearn_conv.is_sklearn(model):
        labels = _model_labels(model, class_labels)
        if signature is None:
            layout: Layout | None = None
            if library is None and sklearn_conv.has_column_transformer(model):
                layout = "columns"
            signature = infer(labels, layout)
        if library is not None:
            data, framework = boosting.convert(model, signature), boosting.framework(library)
        else:
            data, framework = sklearn_conv.convert(model, signature), sklearn_conv.framework()
        predict_proba = predict_proba or model.predict_proba
        native_labels = model.predict
        hyperparameters = summarize_params(model)
    else:
        msg = (
            f"cannot package a {type(model).__module__}.{type(model).__name__}: give a "
            "scikit-learn, LightGBM, XGBoost or PyTorch classifier, or an ONNX model"
        )
        raise PackagingError(msg, errors=[FieldError("model", msg)])
    onnx_model = OnnxModel(data, signature)
    evidence: ParityEvidence | None = None
    if predict_proba is not None:
        rows = choose_rows(columns, parity_rows)
        named = hasattr(model, "feature_names_in_") or (
            native_predict_proba is not None and is_frame(sample)
        )
        head = _native_input(sample, columns, rows, signature, named=named)
        evidence = measure(
            onnx_model,
            json_columns(columns, rows, signature),
            np.asarray(predict_proba(head), dtype=np.float64),
            native_labels=None if native_labels is None else np.asarray(native_labels(head)),
            tolerance=tolerance,
        )
    return Package(
        onnx=data,
        signature=signature,
        framework=framework,
        parity=evidence,
        hyperparameters=hyperparameters,
        lineage=dict(lineage or {}),
        training_metrics=dict(training_metrics or {}),
    )


def _model_labels(model: Any, class_labels: Sequence[Any] | None) -> list[int | str]:
    classes = getattr(model, "classes_", None)
    if classes is None or not callable(getattr(model, "predict_proba", None)):
        msg = f"{type(model).__name__} is not a fitted classifier with predict_proba"
        raise PackagingError(msg, errors=[FieldError("model", msg)])
    labels = class_labels_of(classes)
    if class_labels is not None and class_labels_of(class_labels) != labels:
        msg = f"class_labels {list(class_labels)!r} differ from the model's classes {labels!r}"
        raise PackagingError(msg, errors=[FieldError("class_labels", msg)])
    return labels


def _onnx_signature(
    data: bytes, class_labels: Sequence[Any] | None, infer: Infer
) -> ModelSignature:
    if class_labels is None:
        msg = "an ONNX model needs class_labels (or a signature)"
        raise PackagingError(msg, errors=[FieldError("class_labels", msg)])
    info = inspect_artifact(data)
    inferred = infer(class_labels, "tensor" if len(info.inputs) == 1 else "columns")
    outputs = inferred.outputs.model_copy(update=guess_outputs(info))
    return inferred.model_copy(update={"outputs": outputs})


def _native_input(
    sample: Any,
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    signature: ModelSignature,
    *,
    named: bool,
) -> Any:
    """The chosen rows as the native model takes them: a DataFrame (features in signature
    order) when it was fitted on named columns, else a float matrix."""
    names = signature.feature_names
    if signature.input_layout == "tensor" and not named:
        return np.column_stack([columns[n][rows].astype(np.float64) for n in names])
    if is_frame(sample):
        return sample.iloc[rows][names]
    try:
        import pandas as pd  # type: ignore[import-untyped]
    except ImportError:
        msg = "this model takes named columns: install pandas to check parity"
        raise PackagingError(msg) from None
    return pd.DataFrame({n: columns[n][rows] for n in names})


def _package_torch(
    model: Any,
    columns: dict[str, np.ndarray],
    signature: ModelSignature | None,
    infer: Infer,
    class_labels: Sequence[Any] | None,
    output: str,
    tolerance: float,
    limit: int,
) -> tuple[bytes, ModelSignature, ParityEvidence]:
    names = signature.feature_names if signature else list(columns)
    matrix = np.column_stack([columns[n].astype(np.float64) for n in names])
    labels = class_labels if signature is None else signature.outputs.class_labels
    wrapper, labels = torch_conv.wrap(model, matrix, class_labels=labels, output=output)
    if signature is None:
        signature = infer(labels, "tensor")
    data = torch_conv.convert(wrapper, matrix)
    onnx_model = OnnxModel(data, signature)
    rows = choose_rows(columns, limit)
    native_labels, probabilities = torch_conv.native(wrapper)(matrix[rows])
    evidence = measure(
        onnx_model,
        json_columns(columns, rows, signature),
        probabilities,
        native_labels=native_labels,
        tolerance=tolerance,
    )
    return data, signature, evidence


def summarize_params(model: Any) -> dict[str, Any]:
    """``get_params(deep=True)`` as JSON: scalars kept, estimators as class names."""
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return {}
    params: dict[str, Any] = get_params(deep=True)
    out = {str(k): _json_value(v) for k, v in sorted(params.items())}
    return {k: v for k, v in out.items() if v is not _SKIP}


def _json_value(value: Any, depth: int = 0) -> Any:
    """A JSON-safe form of one parameter value, or ``_SKIP``."""
    if isinstance(value, np.generic):
        value = value.item()
    result: Any = _SKIP
    if value is None or isinstance(value, bool | int | str):
        result = value
    elif isinstance(value, float):
        result = value if math.isfinite(value) else str(value)
    elif isinstance(value, type):
        result = value.__name__
    elif hasattr(value, "get_params"):
        result = type(value).__name__
    elif isinstance(value, list | tuple) and depth < 3:
        items = [_json_value(v, depth + 1) for v in value]
        result = _SKIP if any(v is _SKIP for v in items) else items
    elif isinstance(value, dict) and depth < 3:
        pairs = {str(k): _json_value(v, depth + 1) for k, v in value.items()}
        result = {k: v for k, v in pairs.items() if v is not _SKIP}
    elif callable(value) and hasattr(value, "__name__"):
        result = str(value.__name__)
    return result
