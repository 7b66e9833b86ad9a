"""Small fixes and readings of converted ONNX graphs, shared by the converters."""

from __future__ import annotations

from typing import Any

import onnx

from medops.core.onnx_artifact import ArtifactInfo

_OPEN, _CLOSE = "([{", ")]}"
_LONGEST_DETAIL = 60  # a bracketed detail longer than this is shown as "{...}"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """A complete one-line summary of an exception for an error message.

    Converters put whole attribute dictionaries, arrays and advice in their messages. The
    message is joined onto one line, each bracketed detail longer than 60 characters is shown
    as its brackets around "..." (``attributes={...}``), and the root cause (``raise ... from``)
    is added when it says something else. A line still longer than ``limit`` keeps its
    complete sentences that fit, or else ends at a word boundary with "...": never in the
    middle of a word or a dictionary."""
    text = _elide(" ".join(str(exc).split())) or type(exc).__name__
    root = exc
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    if root is not exc:
        reason = _elide(" ".join(str(root).split()))
        if reason and reason not in text:
            text = f"{text} (because {type(root).__name__}: {reason})"
    if len(text) <= limit:
        return text
    sentence = text.rfind(". ", 0, limit)
    if sentence > 0:
        return text[: sentence + 1]
    cut = text.rfind(" ", 0, limit - 3)
    return text[: cut if cut > 0 else limit - 3].rstrip(" ,;:(") + "..."


def _elide(text: str) -> str:
    """``text`` with each outermost bracketed span longer than 60 characters as "(...)"."""
    out: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(text):
        if char in _OPEN:
            if depth == 0:
                start = index
            depth += 1
        elif char in _CLOSE and depth > 0:
            depth -= 1
            if depth == 0:
                span = text[start : index + 1]
                out.append(span if len(span) <= _LONGEST_DETAIL else f"{span[0]}...{char}")
        elif depth == 0:
            out.append(char)
    if depth > 0:  # never closed: the converter's message stops inside a detail
        span = text[start:]
        closing = _CLOSE[_OPEN.index(span[0])]
        out.append(span if len(span) <= _LONGEST_DETAIL else f"{span[0]}...{closing}")
    return "".join(out).strip()


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
