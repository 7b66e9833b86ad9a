"""Reading an ONNX graph for explanation: the final estimator, what feeds it, what follows.

skl2onnx and onnxmltools write a classifier as preprocessing nodes (Scaler, Imputer,
OneHotEncoder, Concat, Gather, Cast, Reshape...) followed by one estimator node
(``LinearClassifier``, ``TreeEnsemble``, ``TreeEnsembleClassifier``/``Regressor``) and maybe
an affine step and a Sigmoid/Softmax. ``analyse`` finds that node and, walking the
preprocessing in graph order, which input feature each column of the estimator's input comes
from. A column that mixes several input features (a ``Normalizer``, an unknown operator)
ends the analysis: such a model is explained by the model-agnostic fallback. ``Probe`` runs
the graph with the estimator's input as an extra output, so one ONNX Runtime run gives both
the preprocessed columns and the model's own probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort  # type: ignore[import-untyped]
from onnx import helper, numpy_helper

from medops.core.signature import ModelSignature

ESTIMATORS = frozenset(
    {
        "LinearClassifier",
        "LinearRegressor",
        "TreeEnsemble",
        "TreeEnsembleClassifier",
        "TreeEnsembleRegressor",
    }
)
# Operators whose every output column depends only on the same input column.
_COLUMNWISE = frozenset(
    {
        "Scaler",
        "Imputer",
        "Cast",
        "Identity",
        "Binarizer",
        "Abs",
        "Neg",
        "Relu",
        "Clip",
        "Floor",
        "Ceil",
        "Round",
        "Sqrt",
        "Log",
        "Exp",
        "LabelEncoder",
        "CategoryMapper",
        "Reshape",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
    }
)
# Elementwise operators: column k of the output depends on column k of each input.
_ELEMENTWISE = frozenset(
    {
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Where",
        "IsNaN",
        "IsInf",
        "Not",
        "Equal",
        "Less",
        "Greater",
        "LessOrEqual",
        "GreaterOrEqual",
        "And",
        "Or",
        "Max",
        "Min",
        "Pow",
    }
)

# One column of a tensor: the input features it depends on (empty for a constant).
Deps = frozenset[int]


@dataclass(frozen=True)
class Analysis:
    """The estimator node and, per column of its input, the one input feature it comes
    from (-1 for a constant column); ``columns`` is None when a column mixes features."""

    model: onnx.ModelProto
    node: onnx.NodeProto
    columns: tuple[int, ...] | None


def attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as Python values (tensors as NumPy arrays)."""
    values: dict[str, Any] = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        values[attr.name] = value
    return values


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    found = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            value = attributes(node).get("value")
            if isinstance(value, np.ndarray):
                found[node.output[0]] = value
    return found


def analyse(data: bytes, signature: ModelSignature) -> Analysis | None:
    """The estimator and its input columns' features; None when the graph has not exactly
    one estimator node."""
    model = onnx.load_model_from_string(data)
    graph = model.graph
    estimators = [n for n in graph.node if n.op_type in ESTIMATORS]
    if len(estimators) != 1:
        return None
    node = estimators[0]
    return Analysis(model, node, _columns_of(graph, node.input[0], signature))


def _columns_of(  # noqa: PLR0911, PLR0912 - one small rule per operator
    graph: onnx.GraphProto, target: str, signature: ModelSignature
) -> tuple[int, ...] | None:
    constants = _constants(graph)
    deps: dict[str, list[Deps]] = {}
    if signature.input_layout == "tensor":
        name = signature.tensor_input or graph.input[0].name
        deps[name] = [frozenset({i}) for i in range(len(signature.inputs))]
    else:
        for index, feature in enumerate(signature.feature_names):
            deps[feature] = [frozenset({index})]
    for node in graph.node:
        if target in deps:
            break
        if node.op_type == "Constant":
            continue
        ins = [deps.get(i) for i in node.input if i and i not in constants]
        if any(i is None for i in ins) or not ins:
            return None  # a tensor we could not follow
        known = [i for i in ins if i is not None]
        op = node.op_type
        out: list[Deps] | None
        if op in _COLUMNWISE and len(known) == 1:
            out = known[0]
        elif op in _ELEMENTWISE:
            if len({len(k) for k in known}) != 1:
                return None  # broadcasting one column against several mixes them
            out = [frozenset().union(*cols) for cols in zip(*known, strict=True)]
        elif op == "Concat":
            out = [c for part in known for c in part]
        elif op == "Gather" and len(known) == 1:
            picked = constants.get(node.input[1])
            axis = int(attributes(node).get("axis", 0))
            if picked is None or axis != 1:
                return None
            out = [known[0][int(i)] for i in np.atleast_1d(picked).ravel()]
        elif op == "OneHotEncoder" and len(known) == 1:
            attrs = attributes(node)
            n_cats = len(attrs.get("cats_strings", [])) or len(attrs.get("cats_int64s", []))
            out = [c for c in known[0] for _ in range(n_cats)]
        elif op == "ArrayFeatureExtractor" and len(known) == 1:
            picked = constants.get(node.input[1])
            if picked is None:
                return None
            out = [known[0][int(i)] for i in np.atleast_1d(picked).ravel()]
        else:
            return None  # Normalizer, matrix products and the rest mix columns
        for name in node.output:
            deps[name] = out
    columns = deps.get(target)
    if columns is None or any(len(c) > 1 for c in columns):
        return None
    return tuple(next(iter(c)) if c else -1 for c in columns)


class Probe:
    """The model with extra outputs: one run gives the named intermediate tensors and the
    model's probabilities."""

    def __init__(self, model: onnx.ModelProto, extra: list[str], probabilities: str) -> None:
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        present = {o.name for o in probe.graph.output}
        for name in extra:
            if name not in present:
                probe.graph.output.append(helper.make_empty_tensor_value_info(name))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            probe.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._names = [*extra, probabilities]

    def run(self, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The extra tensors then the probabilities, as float64 2-D arrays."""
        results = self._session.run(self._names, feed)
        return [np.asarray(r, dtype=np.float64).reshape(len(r), -1) for r in results]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings."""
    with np.errstate(over="ignore"):
        return np.asarray(1.0 / (1.0 + np.exp(-x)))


def softmax(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))
