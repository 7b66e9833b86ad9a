"""LightGBM and XGBoost classifiers to ONNX.

Both are optional extras (``medops[lightgbm]``, ``medops[xgboost]``) and imported only here,
only when such a model is packaged. Only the scikit-learn API classifiers (``LGBMClassifier``,
``XGBClassifier``) are accepted: a bare Booster does not know its classes. Features must be
numeric (``tensor`` layout, one input ``input [N, F]``).

XGBoost compares float32 features with float32 split values: onnxmltools writes exactly that
(float32 input). LightGBM compares float64 features with float64 thresholds: its trees are
written by ``medops.packaging.trees`` in float64 (float64 input), as scikit-learn's are. Inside
a scikit-learn pipeline both are converted by ``medops.packaging.sklearn``.
"""

from __future__ import annotations

import copy
from typing import Any

from medops.core.signature import ModelSignature
from medops.errors import FieldError, PackagingError
from medops.packaging.onnx_graph import one_line, serialize

TARGET_OPSET = 15


def library_of(model: object) -> str | None:
    """``lightgbm`` or ``xgboost`` when the model's class comes from one of them."""
    root = type(model).__module__.split(".", 1)[0]
    return root if root in {"lightgbm", "xgboost"} else None


def framework(library: str) -> str:
    module = _import(library)
    return f"{library} {module.__version__}"


def _import(library: str) -> Any:
    try:
        if library == "lightgbm":
            import lightgbm

            return lightgbm
        import xgboost

        return xgboost
    except ImportError:
        msg = f"{library} is not installed: install medops[{library}]"
        raise PackagingError(msg, errors=[FieldError("model", msg)]) from None


def convert(model: Any, signature: ModelSignature) -> bytes:
    """The ONNX bytes of a fitted LGBMClassifier or XGBClassifier."""
    library = library_of(model)
    assert library is not None
    module = _import(library)
    wanted = module.LGBMClassifier if library == "lightgbm" else module.XGBClassifier
    if not isinstance(model, wanted):
        msg = (
            f"{type(model).__name__} is not supported; package the scikit-learn API "
            f"classifier ({wanted.__name__})"
        )
        raise PackagingError(msg, errors=[FieldError("model", msg)])
    if signature.input_layout != "tensor":
        msg = f"{library} models take numeric features; encode categories as numbers"
        raise PackagingError(msg, errors=[FieldError("signature.input_layout", msg)])
    if library == "lightgbm":  # float64 trees, as LightGBM compares (see packaging.trees)
        from medops.packaging import sklearn as sklearn_conv

        return sklearn_conv.convert(model, signature)
    try:
        import onnxmltools  # type: ignore[import-untyped]
        from onnxmltools.convert.common.data_types import (  # type: ignore[import-untyped]
            FloatTensorType,
        )
    except ImportError:  # pragma: no cover - onnxmltools is a dependency
        raise PackagingError("onnxmltools is not installed") from None
    initial_types = [("input", FloatTensorType([None, len(signature.inputs)]))]
    try:
        # onnxmltools reads split features as "f<index>": drop the names on a copy.
        unnamed = copy.deepcopy(model)
        unnamed.get_booster().feature_names = None
        onx = onnxmltools.convert_xgboost(
            unnamed, initial_types=initial_types, target_opset=TARGET_OPSET
        )
    except Exception as exc:  # converters raise anything from RuntimeError to TypeError
        raise PackagingError(
            f"onnxmltools cannot convert {type(model).__name__}: {one_line(exc)}"
        ) from exc
    return serialize(onx)
