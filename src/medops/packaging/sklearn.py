"""scikit-learn estimators and pipelines to ONNX with skl2onnx.

Probabilities come out as a plain ``[N, classes]`` tensor (``zipmap`` disabled) next to the
``label`` output. The ``tensor`` layout gives one float input ``input [N, F]``; the
``columns`` layout gives one ``[N, 1]`` input per feature (strings for string categories,
floats otherwise), which is what a ``ColumnTransformer`` selecting columns by name needs.
"""

from __future__ import annotations

from typing import Any

from medops.errors import PackagingError
from medops.packaging.onnx_graph import one_line, serialize
from medops.registry.signature import FeatureSpec, ModelSignature

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def is_sklearn(model: object) -> bool:
    """A scikit-learn estimator (or a subclass of its BaseEstimator)."""
    try:
        from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    return isinstance(model, BaseEstimator)


def has_column_transformer(model: object) -> bool:
    """Whether a ColumnTransformer appears anywhere in ``model`` (it selects by name)."""
    from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]

    if isinstance(model, ColumnTransformer):
        return True
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return False
    params: dict[str, Any] = get_params(deep=True)
    return any(isinstance(value, ColumnTransformer) for value in params.values())


def framework() -> str:
    import sklearn  # type: ignore[import-untyped]

    return f"scikit-learn {sklearn.__version__}"


def _is_string(spec: FeatureSpec) -> bool:
    return spec.type == "category" and any(isinstance(c, str) for c in spec.categories or [])


def convert(model: Any, signature: ModelSignature) -> bytes:
    """The ONNX bytes of a fitted scikit-learn classifier under ``signature``'s layout."""
    from skl2onnx import convert_sklearn  # type: ignore[import-untyped]
    from skl2onnx.common.data_types import (  # type: ignore[import-untyped]
        FloatTensorType,
        StringTensorType,
    )

    if signature.input_layout == "tensor":
        initial_types = [("input", FloatTensorType([None, len(signature.inputs)]))]
    else:
        initial_types = [
            (f.name, StringTensorType([None, 1]) if _is_string(f) else FloatTensorType([None, 1]))
            for f in signature.inputs
        ]
    try:
        onx = convert_sklearn(
            model,
            initial_types=initial_types,
            options={"zipmap": False},
            target_opset=TARGET_OPSET,
        )
    except Exception as exc:  # converters raise anything from RuntimeError to TypeError
        raise PackagingError(
            f"skl2onnx cannot convert {type(model).__name__}: {one_line(exc)}"
        ) from exc
    return serialize(onx)
