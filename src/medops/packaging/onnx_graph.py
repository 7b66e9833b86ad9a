"""Small fixes and readings of converted ONNX graphs, shared by the converters."""

from __future__ import annotations

from typing import Any

import onnx

from medops.registry.onnx_artifact import ArtifactInfo


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (converters raise pages of text)."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 300 else first[:297] + "..."


def serialize(model: onnx.ModelProto) -> bytes:
    """The model's bytes with every output's batch dimension made symbolic.

    onnxmltools declares LightGBM's label output as ``[1]``; ONNX Runtime then warns on every
    batch larger than one. Outputs are ``[N, ...]`` whatever the converter wrote.
    """
    for output in model.graph.output:
        if output.type.HasField("tensor_type") and output.type.tensor_type.HasField("shape"):
            dims = output.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value"):
                dims[0].dim_param = "N"
    return bytes(model.SerializeToString())


def guess_outputs(info: ArtifactInfo) -> dict[str, Any]:
    """``label_output``/``probability_output`` names for a graph whose outputs are one label
    tensor and one ``[N, classes]`` probability tensor, whatever they are called."""
    guessed: dict[str, Any] = {}
    for output in info.outputs:
        kind, shape = output["type"], output["shape"]
        if kind in {"tensor(int64)", "tensor(int32)", "tensor(string)"} and len(shape) == 1:
            guessed.setdefault("label_output", output["name"])
        elif kind in {"tensor(float)", "tensor(double)"} and len(shape) == 2:
            guessed.setdefault("probability_output", output["name"])
    return guessed
