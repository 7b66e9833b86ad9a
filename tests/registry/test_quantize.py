"""INT8 dynamic quantization: what ONNX Runtime can quantize, the quantized artifact passes the
upload checks and stays close to its parent, and models with nothing to gain are refused."""

from __future__ import annotations

import functools
import hashlib
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]
from sklearn.tree import DecisionTreeClassifier  # type: ignore[import-untyped]

from medops.core.onnx_model import OnnxModel, inspect_artifact
from medops.errors import InvalidInputError
from medops.packaging import Package, package_model
from medops.registry.quantize import (
    QuantizeResult,
    gain_op_types,
    quantizable_operators,
    quantize_int8,
)
from tests.helpers import model_data


@functools.cache
def mlp_package() -> Package:
    """A scaled two-layer MLP on the diabetes training split (early stopping: no warning)."""
    x_train, _, y_train, _ = model_data.frames()
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(64, 32), max_iter=500, early_stopping=True, random_state=0
        ),
    ).fit(x_train, y_train)
    return package_model(model, sample=x_train)


@functools.cache
def tree_package() -> Package:
    x_train, _, y_train, _ = model_data.frames()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x_train, y_train)
    return package_model(model, sample=x_train)


def eval_columns() -> dict[str, np.ndarray]:
    _, x_eval, _, _ = model_data.frames()
    return {c: x_eval[c].to_numpy() for c in x_eval.columns}


def eval_labels() -> np.ndarray:
    labels: np.ndarray = model_data.frames()[3].to_numpy()
    return labels


@functools.cache
def mlp_result() -> QuantizeResult:
    pkg = mlp_package()
    return quantize_int8(pkg.onnx, pkg.signature, eval_columns(), labels=eval_labels())


def _graph_model(nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto]) -> bytes:
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2]),
            helper.make_tensor_value_info("i", TensorProto.INT64, [None]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data: bytes = model.SerializeToString()
    return data


def test_gain_types_come_from_onnx_runtime_registry() -> None:
    """The quantized types are ORT's dynamic registry less those the server refuses or that
    gain nothing alone (LSTM, Attention, Transpose); Gemm is not among them."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry  # type: ignore[import-untyped]

    gain = gain_op_types()
    assert set(gain) <= set(IntegerOpsRegistry)
    assert {"MatMul", "Conv", "Gather"} <= set(gain)
    assert not {"LSTM", "Attention", "EmbedLayerNormalization", "Transpose", "Gemm"} & set(gain)


def test_mlp_operators_classified() -> None:
    """An MLP's MatMuls gain; its Scaler, activations and label ops do not."""
    gain, other = quantizable_operators(mlp_package().onnx)
    assert gain == ["MatMul"]
    assert {"Scaler", "ArrayFeatureExtractor", "Relu", "Add"} <= set(other)
    assert "MatMul" not in other


def test_onnx_ml_models_have_nothing_to_quantize() -> None:
    """A linear model is all ONNX-ML operators: quantization is refused in plain words
    naming them."""
    pkg = model_data.package()
    operators = ["LinearClassifier", "Scaler"]
    assert quantizable_operators(pkg.onnx) == ([], operators)
    with pytest.raises(InvalidInputError) as caught:
        quantize_int8(pkg.onnx, pkg.signature, eval_columns(), labels=eval_labels())
    assert str(caught.value) == (
        f"nothing to quantize: this model's operators ({', '.join(operators)}) are ONNX-ML "
        "operators that ONNX Runtime does not quantize; INT8 would gain nothing"
    )


def test_tree_models_have_nothing_to_quantize() -> None:
    """A tree model (a float64 TreeEnsemble, then the class probabilities and the label
    looked up in the class table) has nothing INT8 would quantize: refused, naming them."""
    pkg = tree_package()
    operators = ["ArgMax", "Concat", "Gather", "Sub", "TreeEnsemble"]
    assert quantizable_operators(pkg.onnx) == ([], operators)
    with pytest.raises(InvalidInputError) as caught:
        quantize_int8(pkg.onnx, pkg.signature, eval_columns(), labels=eval_labels())
    assert str(caught.value).startswith(
        f"nothing to quantize: this model's operators ({', '.join(operators)}) include none "
    )


def test_hand_built_graphs_classified_as_ort_would_quantize() -> None:
    """A MatMul of two activations and a Transpose gain nothing; a Gather over a constant
    table and a MatMul by constant weights do."""
    weights = numpy_helper.from_array(np.ones((2, 2), dtype=np.float32), "w")
    table = numpy_helper.from_array(np.ones((5, 2), dtype=np.float32), "table")
    activations = _graph_model(
        [
            helper.make_node("Transpose", ["x"], ["xt"]),
            helper.make_node("MatMul", ["x", "xt"], ["y"]),
        ],
        [],
    )
    assert quantizable_operators(activations) == ([], ["MatMul", "Transpose"])
    constants = _graph_model(
        [
            helper.make_node("Gather", ["table", "i"], ["rows"], axis=0),
            helper.make_node("MatMul", ["rows", "w"], ["y"]),
        ],
        [weights, table],
    )
    assert quantizable_operators(constants) == (["Gather", "MatMul"], [])


def test_quantized_mlp_passes_upload_checks() -> None:
    """The INT8 MLP is an artifact the server accepts under the parent's signature, with its
    MatMuls replaced by MatMulInteger and only standard-domain operators."""
    result = mlp_result()
    assert result.quantized_ops == ["MatMul"]
    info = inspect_artifact(result.data)
    assert "ai.onnx:MatMulInteger" in info.operators
    assert "ai.onnx:MatMul" not in info.operators
    assert all(op.split(":")[0] in {"ai.onnx", "ai.onnx.ml"} for op in info.operators)
    labels, probabilities = OnnxModel(result.data, mlp_package().signature).predict(eval_columns())
    assert probabilities.shape == (result.rows, 2)
    assert set(labels.tolist()) <= {0, 1}


def test_quantized_mlp_stays_close_to_parent() -> None:
    """Probabilities stay within 0.05 of the parent's, labels agree on at least 97% of rows,
    and accuracy and AUROC move by at most 0.03."""
    result = mlp_result()
    assert result.rows == len(eval_labels())
    assert 0 <= result.max_probability_diff < 0.05
    assert result.label_agreement >= 0.97
    assert result.parent_accuracy is not None
    assert result.accuracy is not None
    assert result.parent_auroc is not None
    assert result.auroc is not None
    assert abs(result.accuracy - result.parent_accuracy) <= 0.03
    assert abs(result.auroc - result.parent_auroc) <= 0.03
    assert result.parent_auroc > 0.7


def test_quantized_mlp_is_smaller_and_timed() -> None:
    """INT8 weights shrink the artifact; both latencies and their ratio are reported."""
    result = mlp_result()
    assert result.parent_size == len(mlp_package().onnx)
    assert result.size == len(result.data) < result.parent_size
    assert result.parent_us_per_row > 0
    assert result.us_per_row > 0
    assert result.speedup == pytest.approx(result.parent_us_per_row / result.us_per_row)


def test_result_to_dict_is_json_without_bytes() -> None:
    """to_dict gives every measure and the artifact's sha256, not its bytes."""
    result = mlp_result()
    out = json.loads(json.dumps(result.to_dict()))
    assert "data" not in out
    assert out["digest"] == hashlib.sha256(result.data).hexdigest()
    assert out["quantized_ops"] == ["MatMul"]
    assert out["rows"] == result.rows


def test_without_labels_no_accuracy_or_auroc() -> None:
    """Without labels the comparison still runs; accuracy and AUROC are None."""
    pkg = mlp_package()
    result = quantize_int8(pkg.onnx, pkg.signature, eval_columns(), repeats=1)
    assert result.accuracy is None
    assert result.parent_accuracy is None
    assert result.auroc is None
    assert result.parent_auroc is None
    assert result.label_agreement >= 0.97


@pytest.mark.parametrize(
    ("labels", "problem"),
    [([0, 1, 1], "3 labels for"), (np.full(len(eval_labels()), 2), "must be 1")],
)
def test_bad_labels_refused(labels: list[int] | np.ndarray, problem: str) -> None:
    """Labels of the wrong length or not 0/1 are refused before quantizing."""
    pkg = mlp_package()
    with pytest.raises(InvalidInputError, match=problem) as caught:
        quantize_int8(pkg.onnx, pkg.signature, eval_columns(), labels=labels)
    assert caught.value.errors[0].field == "labels"
