"""Run a checked ONNX artifact under its model signature.

``check_signature`` compares a signature with the graph's inputs and outputs and lists every
disagreement. ``OnnxModel`` binds an accepted artifact (see ``onnx_artifact``) to its signature
and runs column-oriented data (``{"age": [...], "sex": [...]}``) through ONNX Runtime;
``validate_columns`` (see ``columns``) checks such data before it reaches the model, and
``parity_diff`` recomputes, on the server, how far the ONNX outputs are from the native
model's probabilities the registering client sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from medops.core.columns import validate_columns
from medops.core.onnx_artifact import (
    ALLOWED_DOMAINS,
    MAX_ARTIFACT_BYTES,
    ArtifactInfo,
    graph_args,
    inspect_artifact,
    load_artifact,
)
from medops.core.signature import FeatureSpec, ModelSignature
from medops.errors import (
    FieldError,
    InvalidInputError,
    ParityFailedError,
    SignatureMismatchError,
)

__all__ = [
    "ALLOWED_DOMAINS",
    "MAX_ARTIFACT_BYTES",
    "ArtifactInfo",
    "OnnxModel",
    "check_signature",
    "inspect_artifact",
    "parity_diff",
    "validate_columns",
]

Columns = Mapping[str, Sequence[object]] | Mapping[str, np.ndarray]

_NUMERIC_ELEMS = frozenset({"float", "double", "int64", "int32"})
_COLUMN_ELEMS: dict[str, frozenset[str]] = {
    "float": frozenset({"float", "double"}),
    "integer": frozenset({"int64", "int32", "float", "double"}),
    "boolean": frozenset({"bool", "float", "double", "int64", "int32"}),
}
_NUMPY_DTYPES: dict[str, Any] = {
    "float": np.float32,
    "double": np.float64,
    "int64": np.int64,
    "int32": np.int32,
    "bool": np.bool_,
    "string": np.str_,
}


def _elem(type_name: str) -> str | None:
    """``tensor(float)`` -> ``float``; None for sequences, maps and other non-tensors."""
    if type_name.startswith("tensor(") and type_name.endswith(")"):
        return type_name[len("tensor(") : -1]
    return None


def _static(dim: object) -> int | None:
    return dim if isinstance(dim, int) and not isinstance(dim, bool) else None


def _column_elems(spec: FeatureSpec) -> frozenset[str]:
    if spec.type != "category":
        return _COLUMN_ELEMS[spec.type]
    if any(isinstance(c, str) for c in spec.categories or []):
        return frozenset({"string"})
    return _NUMERIC_ELEMS


def _check_tensor_inputs(
    graph_inputs: list[dict[str, Any]], signature: ModelSignature, errors: list[FieldError]
) -> None:
    names = [i["name"] for i in graph_inputs]
    wanted = signature.tensor_input or (names[0] if len(names) == 1 else None)
    if wanted is None or wanted not in names:
        errors.append(
            FieldError(
                "signature.tensor_input",
                f"the tensor layout needs one graph input{f' named {wanted!r}' if wanted else ''};"
                f" the graph has {names}",
            )
        )
        return
    errors.extend(
        FieldError("signature.inputs", f"graph input {n!r} would not be fed (tensor layout)")
        for n in names
        if n != wanted
    )
    graph_input = graph_inputs[names.index(wanted)]
    elem, shape = _elem(graph_input["type"]), graph_input["shape"]
    if elem not in _NUMERIC_ELEMS:
        errors.append(
            FieldError(
                "signature.input_layout", f"input {wanted!r} is {graph_input['type']}, not numeric"
            )
        )
    if len(shape) != 2:
        errors.append(
            FieldError("signature.input_layout", f"input {wanted!r} has rank {len(shape)}, not 2")
        )
    elif (width := _static(shape[1])) is not None and width != len(signature.inputs):
        errors.append(
            FieldError(
                "signature.inputs",
                f"input {wanted!r} takes {width} features, "
                f"the signature lists {len(signature.inputs)}",
            )
        )


def _check_column_inputs(
    graph_inputs: list[dict[str, Any]], signature: ModelSignature, errors: list[FieldError]
) -> None:
    by_name = {i["name"]: i for i in graph_inputs}
    for index, spec in enumerate(signature.inputs):
        field = f"signature.inputs[{index}]"
        graph_input = by_name.get(spec.name)
        if graph_input is None:
            errors.append(FieldError(field, f"the graph has no input named {spec.name!r}"))
            continue
        elem, shape = _elem(graph_input["type"]), graph_input["shape"]
        allowed = _column_elems(spec)
        if elem not in allowed:
            errors.append(
                FieldError(
                    field,
                    f"{spec.name!r} is a {spec.type} feature but the graph input is "
                    f"{graph_input['type']} (expected {'/'.join(sorted(allowed))})",
                )
            )
        if len(shape) != 2 or _static(shape[1]) not in (None, 1):
            errors.append(
                FieldError(field, f"graph input {spec.name!r} has shape {shape}, not [N, 1]")
            )
    known = set(signature.feature_names)
    errors.extend(
        FieldError("signature.inputs", f"graph input {name!r} is not a feature of the signature")
        for name in by_name
        if name not in known
    )


def _check_outputs(
    graph_outputs: list[dict[str, Any]], signature: ModelSignature, errors: list[FieldError]
) -> None:
    spec = signature.outputs
    by_name = {o["name"]: o for o in graph_outputs}
    present = ", ".join(repr(n) for n in by_name)
    probabilities = by_name.get(spec.probability_output)
    field = "signature.outputs.probability_output"
    if probabilities is None:
        errors.append(
            FieldError(
                field, f"the graph has no output {spec.probability_output!r} (it has {present})"
            )
        )
    elif _elem(probabilities["type"]) is None:
        errors.append(
            FieldError(
                field,
                f"output {spec.probability_output!r} is {probabilities['type']} (a ZipMap?); "
                "convert with zipmap disabled",
            )
        )
    elif _elem(probabilities["type"]) not in {"float", "double"}:
        errors.append(
            FieldError(
                field, f"output {spec.probability_output!r} is {probabilities['type']}, not float"
            )
        )
    elif len(probabilities["shape"]) != 2:
        errors.append(FieldError(field, f"output {spec.probability_output!r} is not [N, classes]"))
    elif (width := _static(probabilities["shape"][1])) is not None and width != len(
        spec.class_labels
    ):
        errors.append(
            FieldError(
                "signature.outputs.class_labels",
                f"the model gives {width} class probabilities, the signature lists "
                f"{len(spec.class_labels)} class labels",
            )
        )
    labels = by_name.get(spec.label_output)
    field = "signature.outputs.label_output"
    if labels is None:
        errors.append(
            FieldError(field, f"the graph has no output {spec.label_output!r} (it has {present})")
        )
        return
    elem, shape = _elem(labels["type"]), labels["shape"]
    if elem in {"int64", "int32"}:
        wrong: list[str | int] = [
            c for c in spec.class_labels if not isinstance(c, int) or isinstance(c, bool)
        ]
    elif elem == "string":
        wrong = [c for c in spec.class_labels if not isinstance(c, str)]
    else:
        errors.append(FieldError(field, f"output {spec.label_output!r} is {labels['type']}"))
        return
    if wrong:
        errors.append(
            FieldError(
                "signature.outputs.class_labels",
                f"the model's labels are {elem} but class labels {wrong[:5]} are not",
            )
        )
    if len(shape) not in (1, 2) or (len(shape) == 2 and _static(shape[1]) not in (None, 1)):
        errors.append(FieldError(field, f"output {spec.label_output!r} has shape {shape}, not [N]"))


def check_signature(info_or_session: ArtifactInfo | Any, signature: ModelSignature) -> None:
    """Raise SignatureMismatchError listing every way the graph disagrees with ``signature``."""
    if isinstance(info_or_session, ArtifactInfo):
        inputs, outputs = info_or_session.inputs, info_or_session.outputs
    else:
        inputs = graph_args(info_or_session.get_inputs())
        outputs = graph_args(info_or_session.get_outputs())
    errors: list[FieldError] = []
    if signature.input_layout == "tensor":
        _check_tensor_inputs(inputs, signature, errors)
    else:
        _check_column_inputs(inputs, signature, errors)
    _check_outputs(outputs, signature, errors)
    if errors:
        first = errors[0]
        raise SignatureMismatchError(
            f"the signature does not match the ONNX graph ({len(errors)} problem"
            f"{'s' if len(errors) > 1 else ''}; first: {first.field}: {first.reason})",
            errors=errors,
        )


class OnnxModel:
    """A loaded, checked model: runs rows through ONNX Runtime."""

    def __init__(
        self,
        data: bytes,
        signature: ModelSignature,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        intra_op_threads: int = 1,
    ) -> None:
        self.info, self._session = load_artifact(data, providers, intra_op_threads)
        check_signature(self.info, signature)
        self.signature = signature
        self._elems = {i["name"]: _elem(i["type"]) or "" for i in self.info.inputs}

    def feed(self, columns: Columns) -> dict[str, np.ndarray]:
        """The ORT input feed for column-oriented data keyed by feature name."""
        names = self.signature.feature_names
        missing = [FieldError(n, "missing feature") for n in names if n not in columns]
        lengths = {len(columns[n]) for n in names if n in columns}
        if missing or len(lengths) > 1:
            errors = missing or [
                FieldError("columns", f"columns differ in length: {sorted(lengths)}")
            ]
            raise InvalidInputError(
                f"cannot run the model: {errors[0].field}: {errors[0].reason}", errors=errors
            )
        try:
            if self.signature.input_layout == "tensor":
                (name,) = self._elems
                dtype = _NUMPY_DTYPES[self._elems[name]]
                matrix = np.column_stack([_array(columns[n], np.float64) for n in names])
                return {name: matrix.astype(dtype, copy=False)}
            return {
                n: _array(columns[n], _NUMPY_DTYPES[self._elems[n]]).reshape(-1, 1) for n in names
            }
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"cannot convert the data for the model: {exc}") from exc

    def predict(self, columns: Columns) -> tuple[np.ndarray, np.ndarray]:
        """(labels of shape (n,), class probabilities of shape (n, n_classes) as float64)."""
        return self.run_feed(self.feed(columns))

    def run_feed(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``predict`` for a feed made by ``feed`` (or several concatenated)."""
        spec = self.signature.outputs
        try:
            labels, probabilities = self._session.run(
                [spec.label_output, spec.probability_output], feed
            )
        except Exception as exc:  # ORT's pybind exceptions share no base class but Exception
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInputError(f"the model failed on these rows: {first}") from exc
        return np.asarray(labels).reshape(-1), np.asarray(probabilities, dtype=np.float64)

    def positive_scores(self, columns: Columns) -> np.ndarray:
        """The positive class's probability for each row (the risk score)."""
        return self.predict(columns)[1][:, self.signature.outputs.positive_index]


def _array(values: Sequence[object] | np.ndarray, dtype: Any) -> np.ndarray:
    array = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if dtype is np.str_:
        return array.astype(str).astype(object)
    return np.asarray(array).astype(dtype)


def parity_diff(
    model: OnnxModel,
    evidence_columns: Columns,
    native_probabilities: Sequence[Sequence[float]] | np.ndarray,
) -> float:
    """Max |ONNX - native| probability over the evidence rows, recomputed on this side."""
    native = np.asarray(native_probabilities, dtype=np.float64)
    if native.ndim != 2 or native.shape[0] == 0:
        raise ParityFailedError("the parity evidence has no rows of native probabilities")
    _, probabilities = model.predict(evidence_columns)
    if probabilities.shape != native.shape:
        raise ParityFailedError(
            f"the parity evidence has probabilities of shape {native.shape}, "
            f"the ONNX model gives {probabilities.shape}"
        )
    diff = np.abs(probabilities - native)
    return float(diff.max()) if np.isfinite(diff).all() else math.inf
