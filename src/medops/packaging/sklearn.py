"""scikit-learn estimators and pipelines to ONNX with skl2onnx.

Probabilities come out as a plain ``[N, classes]`` tensor (``zipmap`` disabled) next to the
``label`` output. The ``tensor`` layout gives one numeric input ``input [N, F]``; the
``columns`` layout gives one ``[N, 1]`` input per feature (strings for string categories,
numbers otherwise), which is what a ``ColumnTransformer`` selecting columns by name needs.

Precision follows the model. Linear models, MLPs and the rest compute in float32, as skl2onnx
writes them (their parity holds well inside the tolerance). A model with a tree classifier
anywhere (alone, after a scaler, inside a ColumnTransformer pipeline) takes float64 inputs,
so that its preprocessing computes in float64 as scikit-learn's does, and its trees are
written by ``medops.packaging.trees`` (float64 splits that decide exactly as scikit-learn's
float32 comparisons); ``SimpleImputer`` is written here in float64 too (ONNX Runtime's
``Imputer`` kernel is float32-only). When skl2onnx cannot write the preprocessing in float64
(``KBinsDiscretizer``, ``PowerTransformer``, ``PolynomialFeatures`` mix in float32), the graph
falls back to float32 inputs with the same float64 trees, and the parity check decides.
LightGBM and XGBoost classifiers at the end of a pipeline get their own parser (a label and
probabilities, no ZipMap): LightGBM's trees are written by ``trees``, XGBoost's by onnxmltools
after a cast to float32, XGBoost's own precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from medops.core.onnx_artifact import inspect_artifact
from medops.core.signature import FeatureSpec, ModelSignature
from medops.errors import PackagingError
from medops.packaging import trees
from medops.packaging.onnx_graph import one_line, serialize

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# skl2onnx 1.20 refuses to write ai.onnx.ml above opset 3: the tree nodes are written in a
# domain of their own and moved to ai.onnx.ml opset 5 once skl2onnx is done (``_finish``).
_PENDING_DOMAIN = "medops.pending"


def is_sklearn(model: object) -> bool:
    """A scikit-learn estimator (or a subclass of its BaseEstimator)."""
    try:
        from sklearn.base import BaseEstimator  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        return False
    return isinstance(model, BaseEstimator)


def _parts(model: object) -> list[object]:
    """``model`` and every estimator among its (deep) parameters."""
    get_params = getattr(model, "get_params", None)
    if not callable(get_params):
        return [model]
    params: dict[str, Any] = get_params(deep=True)
    found: list[object] = [model]
    for value in params.values():
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            candidates = item if isinstance(item, tuple) else (item,)
            found.extend(c for c in candidates if hasattr(c, "get_params"))
    return found


def has_column_transformer(model: object) -> bool:
    """Whether a ColumnTransformer appears anywhere in ``model`` (it selects by name)."""
    from sklearn.compose import ColumnTransformer  # type: ignore[import-untyped]

    return any(isinstance(part, ColumnTransformer) for part in _parts(model))


def _is_xgboost(model: object) -> bool:
    kind = type(model)
    return kind.__module__.startswith("xgboost.") and kind.__name__ == "XGBClassifier"


def has_trees(model: object) -> bool:
    """Whether a tree classifier appears anywhere in ``model``: one ``trees`` converts, or an
    XGBoost classifier (whose float32 features must be cast from float64 as XGBoost does)."""
    kinds = trees.tree_classes()
    return any(
        isinstance(part, kinds) or trees.is_lightgbm(part) or _is_xgboost(part)
        for part in _parts(model)
    )


def framework() -> str:
    import sklearn  # type: ignore[import-untyped]

    return f"scikit-learn {sklearn.__version__}"


def _is_string(spec: FeatureSpec) -> bool:
    return spec.type == "category" and any(isinstance(c, str) for c in spec.categories or [])


def _tree_shapes(operator: Any) -> None:
    """skl2onnx shape calculator: labels ``[N]`` (int64 or string), probabilities float64."""
    from skl2onnx.common.data_types import (  # type: ignore[import-untyped]
        DoubleTensorType,
        Int64TensorType,
        StringTensorType,
    )

    from medops.packaging.signature_infer import class_labels_of

    n = operator.inputs[0].get_first_dimension()
    labels = class_labels_of(operator.raw_operator.classes_)
    kind = StringTensorType if any(isinstance(c, str) for c in labels) else Int64TensorType
    operator.outputs[0].type = kind([n])
    operator.outputs[1].type = DoubleTensorType([n, len(labels)])


def _tree_converter(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: one float64 ``TreeEnsemble`` node and the class probabilities."""
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType

    from medops.packaging.signature_infer import class_labels_of

    model = operator.raw_operator
    ensemble = trees.read(model)

    def name(seed: str) -> str:
        return str(scope.get_unique_variable_name(seed))

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        container.add_node(op, inputs, output, name=scope.get_unique_operator_name(op), **attrs)
        return output

    features = operator.inputs[0].full_name
    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        features = node("Cast", [features], name("features64"), to=TensorProto.DOUBLE)
    raw = name("raw")
    container.add_node(
        "TreeEnsemble",
        [features],
        raw,
        op_domain=_PENDING_DOMAIN,
        op_version=1,
        name=scope.get_unique_operator_name("TreeEnsemble"),
        **ensemble.forest.attributes(),
    )
    if ensemble.divisor != 1:
        divisor = name("divisor")
        container.add_initializer(divisor, TensorProto.DOUBLE, [], [float(ensemble.divisor)])
        raw = node("Div", [raw, divisor], name("mean"))
    if ensemble.base is not None:
        base = name("base")
        container.add_initializer(base, TensorProto.DOUBLE, [1, len(ensemble.base)], ensemble.base)
        raw = node("Add", [raw, base], name("raw_plus_base"))
    probabilities = operator.outputs[1].full_name
    if ensemble.transform == "softmax":
        node("Softmax", [raw], probabilities, axis=1)
    elif ensemble.forest.n_targets == 1:  # binary: the positive class, and 1 - p
        positive = (
            node("Sigmoid", [raw], name("positive")) if ensemble.transform == "sigmoid" else raw
        )
        one = name("one")
        container.add_initializer(one, TensorProto.DOUBLE, [], [1.0])
        negative = node("Sub", [one, positive], name("negative"))
        node("Concat", [negative, positive], probabilities, axis=1)
    else:
        node("Identity", [raw], probabilities)
    labels = class_labels_of(model.classes_)
    classes = name("classes")
    if any(isinstance(c, str) for c in labels):
        container.add_initializer(
            classes, TensorProto.STRING, [len(labels)], [str(c) for c in labels]
        )
    else:
        container.add_initializer(classes, TensorProto.INT64, [len(labels)], labels)
    index = node("ArgMax", [probabilities], name("class_index"), axis=1, keepdims=0)
    node("Gather", [classes, index], operator.outputs[0].full_name, axis=0)


def _final(model: Any) -> Any:
    """The estimator at the end of ``model`` (through nested pipelines)."""
    while hasattr(model, "steps"):
        model = model.steps[-1][1]
    return model


def _boosting_parser(
    scope: Any,
    model: Any,
    inputs: list[Any],
    custom_parsers: Any = None,  # noqa: ARG001 - skl2onnx passes it to every parser
) -> Any:
    """skl2onnx parser for a LightGBM or XGBoost classifier: a label and a probabilities
    output, never a ZipMap (skl2onnx knows no options for these classes)."""
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
    )

    operator = scope.declare_local_operator(type(model).__name__, model)
    operator.inputs = inputs
    label = scope.declare_local_variable("label", Int64TensorType())
    probabilities = scope.declare_local_variable("probabilities", FloatTensorType())
    operator.outputs.extend([label, probabilities])
    return operator.outputs


class _Step:
    """A skl2onnx operator as onnxmltools' XGBoost converter reads it, with another input
    (the float32 features) and another model (a copy without feature names)."""

    def __init__(self, operator: Any, features: Any, model: Any) -> None:
        self._operator = operator
        self.raw_operator = model
        self.inputs = [features]
        self.input_full_names = [features.full_name]

    def __getattr__(self, name: str) -> Any:  # outputs, names, options: the operator's own
        return getattr(self._operator, name)


def _xgboost_shapes(operator: Any) -> None:
    """Labels ``[N]`` and float32 probabilities ``[N, classes]`` of an XGBClassifier step."""
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    from medops.packaging.signature_infer import class_labels_of

    n = operator.inputs[0].get_first_dimension()
    labels = class_labels_of(operator.raw_operator.classes_)
    kind = StringTensorType if any(isinstance(c, str) for c in labels) else Int64TensorType
    operator.outputs[0].type = kind([n])
    operator.outputs[1].type = FloatTensorType([n, len(labels)])


def _xgboost_converter(scope: Any, operator: Any, container: Any) -> None:
    """An XGBClassifier step inside a pipeline: its features cast to float32 (XGBoost's own
    precision: it compares float32 features with float32 split values), then onnxmltools."""
    import copy

    from onnx import TensorProto
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import (  # type: ignore[import-untyped]
        convert_xgboost,
    )
    from skl2onnx.common.data_types import FloatTensorType

    source = operator.inputs[0]
    features = scope.declare_local_variable("features32", FloatTensorType(source.type.shape))
    container.add_node(
        "Cast",
        [source.full_name],
        features.full_name,
        name=scope.get_unique_operator_name("Cast"),
        to=TensorProto.FLOAT,
    )
    model = copy.deepcopy(operator.raw_operator)
    model.get_booster().feature_names = None  # onnxmltools reads split features as "f<index>"
    convert_xgboost(scope, _Step(operator, features, model), container)


def _imputer64(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for ``SimpleImputer`` on float64 input (ONNX Runtime's ``Imputer``
    kernel takes float32 only): missing values (NaN) replaced by the fitted statistics."""
    from onnx import TensorProto

    imputer = operator.raw_operator
    statistics = np.asarray(imputer.statistics_, dtype=np.float64)
    missing = imputer.missing_values
    if (
        imputer.add_indicator
        or not (isinstance(missing, float) and np.isnan(missing))
        or not np.isfinite(statistics).all()
    ):
        # float32 conversion (skl2onnx's own converter) handles the rest
        msg = "float64 SimpleImputer: only NaN as missing, finite statistics, no indicator"
        raise Float64UnsupportedError(msg)
    features = operator.inputs[0].full_name
    fill = scope.get_unique_variable_name("statistics")
    container.add_initializer(fill, TensorProto.DOUBLE, [1, len(statistics)], statistics)
    is_nan = scope.get_unique_variable_name("is_nan")
    container.add_node("IsNaN", [features], is_nan, name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [is_nan, fill, features],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Where"),
    )


def _convert(model: Any, signature: ModelSignature, *, double: bool, tree_model: bool) -> bytes:
    from skl2onnx import convert_sklearn  # type: ignore[import-untyped]
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        StringTensorType,
    )

    number = DoubleTensorType if double else FloatTensorType
    if signature.input_layout == "tensor":
        initial_types = [("input", number([None, len(signature.inputs)]))]
    else:
        initial_types = [
            (f.name, StringTensorType([None, 1]) if _is_string(f) else number([None, 1]))
            for f in signature.inputs
        ]
    converters: dict[type, Any] = {}
    shapes: dict[type, Any] = {}
    boosting = {type(p) for p in _parts(model) if trees.is_lightgbm(p) or _is_xgboost(p)}
    if tree_model:
        converters = dict.fromkeys({*trees.tree_classes(), *boosting}, _tree_converter)
        shapes = dict.fromkeys(converters, _tree_shapes)
        for kind in {k for k in boosting if k.__module__.startswith("xgboost.")}:
            converters[kind], shapes[kind] = _xgboost_converter, _xgboost_shapes
    if double:
        from sklearn.impute import SimpleImputer  # type: ignore[import-untyped]

        converters[SimpleImputer] = _imputer64
    onx = convert_sklearn(
        model,
        initial_types=initial_types,
        options=None if type(_final(model)) in boosting else {"zipmap": False},
        target_opset=TARGET_OPSET,
        custom_conversion_functions=converters,
        custom_shape_calculators=shapes,
        custom_parsers=dict.fromkeys(boosting, _boosting_parser),
    )
    return serialize(_finish(onx))


def _finish(onx: onnx.ModelProto) -> onnx.ModelProto:
    """Move the pending tree nodes into ai.onnx.ml and import its opset 5."""
    pending = [n for n in onx.graph.node if n.domain == _PENDING_DOMAIN]
    if not pending:
        return onx
    for found in pending:
        found.domain = trees.ML_DOMAIN
    kept = [o for o in onx.opset_import if o.domain not in {_PENDING_DOMAIN, trees.ML_DOMAIN}]
    del onx.opset_import[:]
    onx.opset_import.extend(kept)
    onx.opset_import.append(onnx.helper.make_opsetid(trees.ML_DOMAIN, trees.ML_OPSET))
    return onx


class Float64UnsupportedError(ValueError):
    """A step this module cannot write in float64: ``convert`` then falls back to float32
    inputs (skl2onnx's own converters), and the parity check decides."""


def convert(model: Any, signature: ModelSignature) -> bytes:
    """The ONNX bytes of a fitted scikit-learn classifier under ``signature``'s layout."""
    tree_model = has_trees(model)
    failure: Exception | None = None
    for double in (True, False) if tree_model else (False,):
        try:
            data = _convert(model, signature, double=double, tree_model=tree_model)
            if double:
                inspect_artifact(data)  # ONNX Runtime lacks some float64 kernels (Imputer...)
        except PackagingError:
            raise
        except Exception as exc:  # noqa: BLE001 - converters raise anything from RuntimeError to TypeError
            failure = exc
        else:
            return data
    raise PackagingError(
        f"skl2onnx cannot convert {type(model).__name__}: {one_line(failure or RuntimeError())}"
    ) from failure
