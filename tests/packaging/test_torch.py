"""PyTorch modules packaged with torch.onnx.export: logits or probabilities become a label
and a probability output, on both of PyTorch's exporters.

Skipped, with the reason shown, where PyTorch is not installed (it is the optional extra
medops[torch]; .ci/run installs the CPU wheel this machine kind keeps on disk).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
import pytest
from sklearn.datasets import load_breast_cancer, load_iris  # type: ignore[import-untyped]

from medops.core.onnx_model import OnnxModel
from medops.errors import PackagingError
from medops.packaging import package_model
from medops.packaging import torch as torch_conv

torch = pytest.importorskip(
    "torch", reason="PyTorch is not installed (the optional extra medops[torch])"
)

pytestmark = [
    # PyTorch 2.9+ deprecates its TorchScript exporter (the fallback and dynamo=False here).
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
    # torch.export's pytree code uses a deprecated LeafSpec check (PyTorch 2.11).
    pytest.mark.filterwarnings("ignore:.*treespec, LeafSpec:FutureWarning"),
]


def _standardized(frame: pd.DataFrame) -> pd.DataFrame:
    frame = (frame - frame.mean()) / frame.std()
    frame.columns = [c.replace(" (cm)", "").replace(" ", "_") for c in frame.columns]
    return frame


@functools.cache
def iris() -> pd.DataFrame:
    return _standardized(load_iris(as_frame=True).data)


@functools.cache
def cancer() -> pd.DataFrame:
    return _standardized(load_breast_cancer(as_frame=True).data)


def _mlp(n_in: int, n_out: int) -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 8), torch.nn.ReLU(), torch.nn.Linear(8, n_out))


def _columns(frame: pd.DataFrame) -> dict[str, Any]:
    return {c: frame[c].to_numpy() for c in frame.columns}


def test_logits_become_softmax_probabilities_and_labels() -> None:
    """A 3-class logit module exports with label + [N, 3] probabilities matching torch."""
    x = iris()
    module = _mlp(4, 3)
    package = package_model(module, sample=x)
    assert package.framework.startswith("pytorch ")
    assert package.signature.outputs.class_labels == [0, 1, 2]
    assert package.hyperparameters == {"module": "Sequential", "parameters": 67}
    assert package.parity is not None
    assert package.parity.max_abs_diff < 1e-5
    labels, probabilities = OnnxModel(package.onnx, package.signature).predict(_columns(x))
    with torch.no_grad():
        expected = torch.softmax(module(torch.tensor(x.to_numpy(), dtype=torch.float32)), 1)
    np.testing.assert_allclose(probabilities, expected.numpy(), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(labels, expected.numpy().argmax(1))


def test_a_single_logit_is_a_binary_classifier() -> None:
    """An [N, 1] logit becomes [1 - sigmoid, sigmoid] with labels 0/1."""
    package = package_model(torch.nn.Sequential(torch.nn.Linear(30, 1)), sample=cancer())
    assert package.signature.outputs.class_labels == [0, 1]
    assert package.parity is not None
    assert package.parity.max_abs_diff < 1e-5


def test_probability_outputs_keep_their_integer_labels() -> None:
    """torch_output='probabilities' is used as is; integer class labels are kept."""
    module = torch.nn.Sequential(_mlp(4, 3), torch.nn.Softmax(dim=1))
    package = package_model(
        module, sample=iris(), torch_output="probabilities", class_labels=[10, 20, 30]
    )
    labels, _ = OnnxModel(package.onnx, package.signature).predict(_columns(iris()))
    assert set(labels.tolist()) <= {10, 20, 30}
    assert package.parity is not None
    assert package.parity.max_abs_diff < 1e-5


def test_string_class_labels_are_refused() -> None:
    """The label output is int64: string class labels raise PackagingError."""
    with pytest.raises(PackagingError, match="integer class labels"):
        package_model(_mlp(4, 3), sample=iris(), class_labels=["a", "b", "c"])


@pytest.mark.parametrize("dynamo", [False, True])
def test_both_exporters_give_the_same_model(dynamo: bool) -> None:
    """The TorchScript and the torch.export-based exporters both match torch within 1e-5."""
    x = iris()
    wrapper, _ = torch_conv.wrap(_mlp(4, 3), x.to_numpy(), class_labels=None, output="logits")
    signature = package_model(_mlp(4, 3), sample=x).signature
    if dynamo:
        pytest.importorskip("onnxscript", reason="torch.export's ONNX exporter needs onnxscript")
    data = torch_conv.convert(wrapper, x.to_numpy(), dynamo=dynamo)
    _, probabilities = OnnxModel(data, signature).predict(_columns(x))
    _, expected = torch_conv.native(wrapper)(x.to_numpy())
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-5)
