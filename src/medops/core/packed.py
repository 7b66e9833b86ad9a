"""A record's features packed as one row of little-endian float64s, in signature order.

The prediction log keeps each record's features twice: as the JSON the client sent (what an
auditor reads, bound into the audit chain) and packed here, so that monitoring loads a window
of a million predictions as one ``numpy`` matrix instead of parsing a million JSON documents.
A float or integer feature is its value; a boolean is 0 or 1; a category feature is the index
of its value in the signature's ``categories``. The layout depends only on the model
version's signature, which never changes, so rows of one version always unpack the same way.

``pack`` returns None for a record it cannot pack exactly as validated (a value outside its
categories, a number beyond float range): the log then keeps the JSON only, and readers fall
back to it for that row.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from medops.core.signature import ModelSignature

# What a column unpacks to: numbers as arrays (float64, or int64 for integer features), the
# rest (booleans, categories) as the values the client sent.
Column = npt.NDArray[np.float64] | npt.NDArray[np.int64] | list[Any]


class FeaturePacker:
    """Packs records of one signature into bytes and a window of rows back into columns."""

    def __init__(self, signature: ModelSignature) -> None:
        self.names = signature.feature_names
        self.width = len(self.names)
        self._row = struct.Struct(f"<{self.width}d")
        self._codes: list[dict[Any, int] | None] = []
        self._kinds = [spec.type for spec in signature.inputs]
        self._categories: list[list[Any] | None] = []
        for spec in signature.inputs:
            if spec.type == "category":
                categories = list(spec.categories or [])
                self._codes.append({value: i for i, value in enumerate(categories)})
                self._categories.append(categories)
            else:
                self._codes.append(None)
                self._categories.append(None)
        self._plan = list(zip(self.names, self._codes, strict=True))

    def pack(self, record: Mapping[str, Any]) -> bytes | None:
        """The record's features as bytes, or None when they cannot be packed exactly."""
        values: list[float] = []
        try:
            for name, codes in self._plan:
                value = record[name]
                if codes is None:
                    values.append(float(value))
                else:
                    code = codes.get(value) if not isinstance(value, bool) else None
                    if code is None:
                        return None
                    values.append(float(code))
            return self._row.pack(*values)
        except (KeyError, TypeError, ValueError, OverflowError, struct.error):
            return None

    def unpack(self, rows: Sequence[bytes]) -> dict[str, Column]:
        """Packed rows as columns keyed by feature name."""
        matrix = np.frombuffer(b"".join(rows), dtype="<f8").reshape(len(rows), self.width)
        return self.columns(np.ascontiguousarray(matrix.T))

    def columns(self, by_feature: npt.NDArray[np.float64]) -> dict[str, Column]:
        """Columns keyed by feature name from packed rows laid out feature by feature (one
        row of ``by_feature`` per feature, in signature order): numbers are views of it."""
        columns: dict[str, Column] = {}
        for j, name in enumerate(self.names):
            column = by_feature[j]
            kind = self._kinds[j]
            categories = self._categories[j]
            if kind == "float":
                columns[name] = column
            elif kind == "integer":
                columns[name] = _integers(column)
            elif kind == "boolean":
                known = np.isfinite(column).tolist()
                flags = zip(column.tolist(), known, strict=True)
                columns[name] = [bool(v) if ok else None for v, ok in flags]
            else:
                assert categories is not None
                lookup = np.asarray([*categories, None], dtype=object)
                codes = np.where(np.isfinite(column), column, len(categories)).astype(np.int64)
                codes[(codes < 0) | (codes > len(categories))] = len(categories)
                columns[name] = lookup[codes].tolist()
        return columns


def _integers(column: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | npt.NDArray[np.int64]:
    """An integer feature's column as int64 when every value is a whole number in range (they
    are, for rows that passed validation), else as floats (NaN for what is missing)."""
    limit = 2.0**63
    if np.all(np.isfinite(column)) and np.all(np.abs(column) < limit):
        whole = column.astype(np.int64)
        if np.array_equal(whole, column):
            return whole
    return column
