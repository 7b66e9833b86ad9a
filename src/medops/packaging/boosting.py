"""LightGBM and XGBoost classifiers to ONNX with onnxmltools.

Both are optional extras (``medops[lightgbm]``, ``medops[xgboost]``) and imported only here,
only when such a model is packaged. Only the scikit-learn API classifiers (``LGBMClassifier``,
``XGBClassifier``) are accepted: a bare Booster does not know its classes. Features must be
numeric (``tensor`` layout, one float input ``input [N, F]``).
"""

from __future__ import annotations

import copy
from typing import Any

from medops.errors import FieldError, PackagingError
from medops.packaging.onnx_graph import one_line, serialize
from medops.registry.signature import ModelSignature

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
    try:
        import onnxmltools  # type: ignore[import-untyped]
        from onnxmltools.convert.common.data_types import (  # type: ignore[import-untyped]
            FloatTensorType,
        )
    except ImportError:  # pragma: no cover - onnxmltools is a dependency
        raise PackagingError("onnxmltools is not installed") from None
    initial_types = [("input", FloatTensorType([None, len(signature.inputs)]))]
    try:
        if library == "lightgbm":
            onx = onnxmltools.convert_lightgbm(
                model, initial_types=initial_types, zipmap=False, target_opset=TARGET_OPSET
            )
        else:
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
