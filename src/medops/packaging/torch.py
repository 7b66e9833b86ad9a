"""PyTorch classifiers to ONNX with ``torch.onnx.export`` (torch is imported only here).

The module must map a float32 batch ``[N, F]`` (features in signature order) to class logits
(``torch_output="logits"``, the default) or probabilities (``"probabilities"``): ``[N, K]``
for K classes, or ``[N]``/``[N, 1]`` for a binary model's positive class. It is wrapped so the
graph has the outputs the registry expects: ``label`` (int64 class labels, argmax) and
``probabilities`` ``[N, K]``. Class labels must be integers (default ``0..K-1``). The export
uses the installed PyTorch's default exporter (``torch.export``-based from 2.9, opset 18;
TorchScript before, opset 17), falling back to the other, with a dynamic batch axis.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from medops.errors import FieldError, PackagingError
from medops.packaging.onnx_graph import one_line, serialize

OPSET = 17


def is_torch_module(model: object) -> bool:
    """A ``torch.nn.Module``, recognised without importing torch."""
    return any(
        cls.__name__ == "Module" and cls.__module__.startswith("torch.nn")
        for cls in type(model).__mro__
    )


def _torch() -> Any:
    try:
        return importlib.import_module("torch")
    except ImportError:
        msg = "PyTorch is not installed: install torch to package a torch.nn.Module"
        raise PackagingError(msg, errors=[FieldError("model", msg)]) from None


def framework() -> str:
    return f"pytorch {_torch().__version__}"


def wrap(
    module: Any, matrix: np.ndarray, *, class_labels: Sequence[Any] | None, output: str
) -> tuple[Any, list[int]]:
    """The module wrapped to output (label, probabilities), and its integer class labels."""
    torch = _torch()
    if output not in {"logits", "probabilities"}:
        msg = f"torch_output must be 'logits' or 'probabilities', not {output!r}"
        raise PackagingError(msg, errors=[FieldError("torch_output", msg)])
    inner = copy.deepcopy(module).float().eval()
    with torch.no_grad():
        probe = inner(torch.from_numpy(matrix[:2].astype(np.float32)))
    single = probe.dim() == 1 or (probe.dim() == 2 and probe.shape[1] == 1)
    if not single and probe.dim() != 2:
        msg = f"the module outputs shape {tuple(probe.shape)}; expected [N, K] or [N]"
        raise PackagingError(msg, errors=[FieldError("model", msg)])
    n_classes = 2 if single else int(probe.shape[1])
    labels = list(range(n_classes)) if class_labels is None else list(class_labels)
    if len(labels) != n_classes or not all(
        isinstance(c, int | np.integer) and not isinstance(c, bool) for c in labels
    ):
        msg = f"a PyTorch model needs {n_classes} integer class labels, got {labels!r}"
        raise PackagingError(msg, errors=[FieldError("class_labels", msg)])
    labels = [int(c) for c in labels]

    base: Any = torch.nn.Module

    class Classifier(base):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("labels", torch.tensor(labels, dtype=torch.int64))

        def forward(self, x: Any) -> tuple[Any, Any]:
            out = self.inner(x)
            if single:
                positive = out.reshape(-1)
                if output == "logits":
                    positive = torch.sigmoid(positive)
                probabilities = torch.stack([1 - positive, positive], dim=1)
            else:
                probabilities = torch.softmax(out, dim=1) if output == "logits" else out
            return self.labels[torch.argmax(probabilities, dim=1)], probabilities

    return Classifier().eval(), labels


def native(wrapper: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(labels, float64 probabilities) of the wrapped module on a feature matrix."""
    torch = _torch()

    def run(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            labels, probabilities = wrapper(torch.from_numpy(matrix.astype(np.float32)))
        return labels.numpy(), probabilities.double().numpy()

    return run


def _legacy(torch: Any, wrapper: Any, example: tuple[Any, ...], switch: bool) -> onnx.ModelProto:
    buffer = io.BytesIO()
    torch.onnx.export(
        wrapper,
        example,
        buffer,
        input_names=["input"],
        output_names=["label", "probabilities"],
        dynamic_axes={"input": {0: "N"}, "label": {0: "N"}, "probabilities": {0: "N"}},
        opset_version=OPSET,
        **({"dynamo": False} if switch else {}),
    )
    return onnx.load_from_string(buffer.getvalue())


def _torch_export(torch: Any, wrapper: Any, example: tuple[Any, ...]) -> onnx.ModelProto:
    program = torch.onnx.export(
        wrapper,
        example,
        input_names=["input"],
        output_names=["label", "probabilities"],
        dynamic_shapes=({0: torch.export.Dim("N")},),
        opset_version=max(OPSET, 18),
        verbose=False,
        dynamo=True,
    )
    model: onnx.ModelProto = program.model_proto
    return model


def convert(wrapper: Any, matrix: np.ndarray, *, dynamo: bool | None = None) -> bytes:
    """The ONNX bytes of a wrapped module, with a dynamic batch axis.

    ``dynamo=None`` uses the exporter that is the installed PyTorch's default (the
    ``torch.export``-based one from 2.9, the TorchScript one before) and falls back to the
    other when it fails.
    """
    torch = _torch()
    example = (torch.from_numpy(matrix[:2].astype(np.float32)),)
    switch = "dynamo" in inspect.signature(torch.onnx.export).parameters
    if dynamo is None:
        major, minor = (int(part) for part in torch.__version__.split(".")[:2])
        order = [True, False] if switch and (major, minor) >= (2, 9) else [False, True]
    else:
        order = [dynamo]
    if not switch:
        order = [False]
    failures: list[str] = []
    for use_dynamo in order:
        try:
            if use_dynamo:
                return serialize(_torch_export(torch, wrapper, example))
            return serialize(_legacy(torch, wrapper, example, switch))
        except Exception as exc:  # noqa: BLE001 - exporters raise many classes; all are reported
            failures.append(f"{'torch.export' if use_dynamo else 'TorchScript'}: {one_line(exc)}")
    raise PackagingError(f"torch.onnx.export failed ({'; '.join(failures)})")
