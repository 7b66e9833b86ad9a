"""Parity between a native model and its ONNX conversion, measured on sample rows.

The evidence keeps the rows (column-oriented, JSON-safe) and the native model's probabilities
on them, so the server can run the ONNX artifact on the same rows and recompute the difference
itself (``medops.core.onnx_model.parity_diff``) instead of trusting the client's number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medops.core.onnx_model import OnnxModel, parity_diff, validate_columns
from medops.core.signature import ModelSignature
from medops.errors import FieldError, ParityFailedError


@dataclass(frozen=True)
class ParityEvidence:
    """Sample rows, the native model's probabilities on them, and the measured difference."""

    columns: dict[str, list[Any]]  # the sample inputs, column-oriented, JSON-safe
    native_probabilities: list[list[float]]  # native predict_proba on those rows
    max_abs_diff: float  # max |ONNX - native| over the rows, measured client-side
    tolerance: float


def choose_rows(columns: dict[str, np.ndarray], limit: int) -> np.ndarray:
    """Indices of the first ``limit`` rows without missing or non-finite numbers."""
    n_rows = len(next(iter(columns.values())))
    usable = np.ones(n_rows, dtype=bool)
    for column in columns.values():
        if column.dtype.kind == "f":
            usable &= np.isfinite(column)
    rows = np.flatnonzero(usable)[: max(limit, 0)]
    if rows.size == 0:
        msg = "the sample has no complete rows (without missing values) to check parity on"
        raise ParityFailedError(msg, errors=[FieldError("sample", msg)])
    return rows


def json_columns(
    columns: dict[str, np.ndarray], rows: np.ndarray, signature: ModelSignature
) -> dict[str, list[Any]]:
    """The chosen rows as plain Python values typed like the signature's features."""
    out: dict[str, list[Any]] = {}
    for spec in signature.inputs:
        values = columns[spec.name][rows].tolist()
        if spec.type == "float":
            out[spec.name] = [float(v) for v in values]
        elif spec.type == "integer":
            out[spec.name] = [int(v) for v in values]
        elif spec.type == "boolean":
            out[spec.name] = [bool(v) for v in values]
        else:
            out[spec.name] = list(values)
    return out


def measure(
    model: OnnxModel,
    columns: dict[str, list[Any]],
    native_probabilities: np.ndarray,
    *,
    native_labels: np.ndarray | None,
    tolerance: float,
) -> ParityEvidence:
    """Run the ONNX model on ``columns`` and compare with the native outputs; raise
    ParityFailedError when probabilities differ beyond ``tolerance`` or a label differs on a
    row whose top two probabilities are not tied within the tolerance."""
    validate_columns(model.signature, columns)
    native = np.asarray(native_probabilities, dtype=np.float64)
    diff = parity_diff(model, columns, native)
    rows = native.shape[0]
    if not diff <= tolerance:
        reason = f"max abs difference {diff:.6g} > tolerance {tolerance:g} on {rows} rows"
        raise ParityFailedError(
            f"ONNX probabilities differ from the native model's by up to {diff:.3g} "
            f"(tolerance {tolerance:g}) on {rows} rows",
            errors=[FieldError("parity", reason)],
        )
    if native_labels is not None:
        onnx_labels, _ = model.predict(columns)
        expected = np.asarray(native_labels).reshape(-1)
        top = np.sort(native, axis=1)
        clear = (top[:, -1] - top[:, -2]) > 2 * tolerance if native.shape[1] > 1 else True
        differ = (onnx_labels.astype(str) != expected.astype(str)) & clear
        if differ.any():
            first = int(np.flatnonzero(differ)[0])
            reason = (
                f"labels differ on {int(differ.sum())} of {rows} rows (first: row {first}, "
                f"native {expected[first]!r}, ONNX {onnx_labels[first]!r})"
            )
            raise ParityFailedError(
                f"ONNX labels differ from the native model's: {reason}",
                errors=[FieldError("parity.labels", reason)],
            )
    return ParityEvidence(
        columns=columns,
        native_probabilities=native.tolist(),
        max_abs_diff=diff,
        tolerance=tolerance,
    )
