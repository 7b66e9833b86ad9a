"""Multivariate drift by PCA reconstruction error (the data-reconstruction method NannyML uses).

A change in how features move together (a new scanner that shifts two measurements in
opposite directions, a population whose correlations differ) can leave every marginal
distribution in place, where per-feature tests see nothing. The reference is compressed to
the principal components that explain ``variance`` of its (standardized) variation; a current
row is projected onto them and back, and the Euclidean distance between the row and its
reconstruction is its error. When the current data come from the reference distribution, the
mean error stays where it was on the reference; when the joint structure changes it rises.

Fitting (``PcaReference.fit``), on the reference only:

* numeric columns: missing values imputed with the reference mean, then standardized with the
  reference mean and standard deviation (``ddof=0``; a constant column is left unscaled);
* categorical columns: one-hot over the reference categories (an unseen category is all zeros,
  a missing value too);
* ``sklearn.decomposition.PCA(svd_solver="full")`` keeping the fewest components whose
  explained variance reaches ``variance`` (default 0.65, NannyML's default);
* the threshold is learned from the reference: the reference is cut into ``chunks`` (default
  10) consecutive chunks; the mean error of each is computed and the band is
  ``mean +- sigmas * std`` of those chunk means (default 3 sigma). A window is drifted when its
  mean error leaves the band.

Everything fitted serializes to JSON (``to_dict``/``from_dict``), so it is computed once per
model version and stored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from medops.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
DEFAULT_VARIANCE = 0.65
DEFAULT_CHUNKS = 10
DEFAULT_SIGMAS = 3.0
MIN_ROWS = 30


@dataclass(frozen=True)
class PcaReference:
    """The fitted encoder, components and learned threshold band of one reference."""

    numeric: tuple[str, ...]
    categorical: Mapping[str, tuple[str, ...]]  # feature -> reference categories
    means: tuple[float, ...]
    scales: tuple[float, ...]
    center: tuple[float, ...]  # PCA mean in the encoded space
    components: tuple[tuple[float, ...], ...]  # (k, d)
    reference_error: float
    lower: float
    upper: float
    variance: float
    sigmas: float
    chunks: int

    @classmethod
    def fit(
        cls,
        numeric: Mapping[str, npt.ArrayLike],
        categorical: Mapping[str, Sequence[object]] | None = None,
        *,
        variance: float = DEFAULT_VARIANCE,
        chunks: int = DEFAULT_CHUNKS,
        sigmas: float = DEFAULT_SIGMAS,
    ) -> PcaReference:
        from sklearn.decomposition import PCA  # type: ignore[import-untyped]

        if not 0.0 < variance <= 1.0 or chunks < 2 or sigmas <= 0.0:
            msg = "variance must be in (0, 1], chunks at least 2 and sigmas positive"
            raise InvalidInputError(msg)
        categorical = categorical or {}
        columns = {n: np.asarray(v, dtype=np.float64) for n, v in numeric.items()}
        rows = _rows(columns, categorical)
        if rows < max(MIN_ROWS, chunks * 2) or not (columns or categorical):
            msg = f"the reference needs at least {max(MIN_ROWS, chunks * 2)} rows and a feature"
            raise InvalidInputError(msg)
        means, scales = [], []
        for values in columns.values():
            finite = values[np.isfinite(values)]
            mean = float(finite.mean()) if finite.size else 0.0
            std = float(finite.std()) if finite.size else 0.0
            means.append(mean)
            scales.append(std if std > 0.0 else 1.0)
        levels = {
            name: tuple(sorted({str(v) for v in values if not _missing(v)}))
            for name, values in categorical.items()
        }
        partial = cls(
            tuple(columns), levels, tuple(means), tuple(scales), (), (), 0.0, 0.0, 0.0,
            variance, sigmas, chunks,
        )  # fmt: skip
        encoded = partial._encode(columns, categorical)
        pca = PCA(n_components=variance if variance < 1.0 else None, svd_solver="full")
        pca.fit(encoded)
        fitted = cls(
            partial.numeric,
            levels,
            partial.means,
            partial.scales,
            tuple(float(x) for x in pca.mean_),
            tuple(tuple(float(x) for x in row) for row in pca.components_),
            0.0, 0.0, 0.0, variance, sigmas, chunks,
        )  # fmt: skip
        errors = fitted._errors(encoded)
        chunk_means = np.array([part.mean() for part in np.array_split(errors, chunks)])
        spread = float(chunk_means.std(ddof=1))
        centre = float(errors.mean())
        return cls(
            fitted.numeric, levels, fitted.means, fitted.scales, fitted.center,
            fitted.components, centre, centre - sigmas * spread, centre + sigmas * spread,
            variance, sigmas, chunks,
        )  # fmt: skip

    def error(
        self,
        numeric: Mapping[str, npt.ArrayLike],
        categorical: Mapping[str, Sequence[object]] | None = None,
    ) -> tuple[float, int]:
        """The mean reconstruction error of the current rows, and how many rows."""
        columns = {n: np.asarray(numeric[n], dtype=np.float64) for n in self.numeric}
        categorical = categorical or {}
        rows = _rows_of(columns, categorical, self.categorical)
        if rows == 0:
            return float("nan"), 0
        # Block by block: a block's encoding and reconstruction stay in the CPU's cache, where
        # a million rows at once would allocate several matrices of the window's size.
        errors = np.empty(rows)
        for start in range(0, rows, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, rows)
            block = self._encode(
                {n: values[start:stop] for n, values in columns.items()},
                {n: categorical[n][start:stop] for n in self.categorical},
            )
            errors[start:stop] = self._errors(block)
        return float(errors.mean()), rows

    def drift(
        self,
        numeric: Mapping[str, npt.ArrayLike],
        categorical: Mapping[str, Sequence[object]] | None = None,
        *,
        min_samples: int = MIN_ROWS,
    ) -> dict[str, Any]:
        """The window's verdict: error, band, drifted, status and parameters."""
        missing = [n for n in (*self.numeric, *self.categorical) if n not in numeric]
        missing = [n for n in missing if n not in (categorical or {})]
        if missing:
            msg = f"the window lacks features {missing}"
            raise InvalidInputError(msg)
        value, rows = self.error(numeric, categorical)
        enough = rows >= min_samples
        return {
            "test": "pca_reconstruction",
            "statistic": value if rows else None,
            "threshold": [self.lower, self.upper],
            "drifted": bool(enough and not self.lower <= value <= self.upper),
            "status": "ok" if enough else "insufficient-data",
            "parameters": {
                "rows": rows,
                "reference_error": self.reference_error,
                "components": len(self.components),
                "variance": self.variance,
                "chunks": self.chunks,
                "sigmas": self.sigmas,
            },
        }

    def _encode(
        self, columns: Mapping[str, FloatArray], categorical: Mapping[str, Sequence[object]]
    ) -> FloatArray:
        parts: list[FloatArray] = []
        for name, mean, scale in zip(self.numeric, self.means, self.scales, strict=True):
            values = np.where(np.isfinite(columns[name]), columns[name], mean)
            parts.append(((values - mean) / scale)[:, None])
        for name, levels in self.categorical.items():
            texts = np.array([None if _missing(v) else str(v) for v in categorical[name]])
            parts.append(np.column_stack([texts == level for level in levels]).astype(float))
        return np.hstack(parts) if parts else np.empty((0, 0))

    def _errors(self, encoded: FloatArray) -> FloatArray:
        components = np.asarray(self.components, dtype=np.float64)
        centred = encoded - np.asarray(self.center, dtype=np.float64)
        rebuilt = centred @ components.T @ components
        errors: FloatArray = np.sqrt(((centred - rebuilt) ** 2).sum(axis=1))
        return errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": {k: list(v) for k, v in self.categorical.items()},
            "means": list(self.means),
            "scales": list(self.scales),
            "center": list(self.center),
            "components": [list(row) for row in self.components],
            "reference_error": self.reference_error,
            "lower": self.lower,
            "upper": self.upper,
            "variance": self.variance,
            "sigmas": self.sigmas,
            "chunks": self.chunks,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PcaReference:
        try:
            return cls(
                tuple(data["numeric"]),
                {k: tuple(v) for k, v in data["categorical"].items()},
                tuple(float(x) for x in data["means"]),
                tuple(float(x) for x in data["scales"]),
                tuple(float(x) for x in data["center"]),
                tuple(tuple(float(x) for x in row) for row in data["components"]),
                float(data["reference_error"]),
                float(data["lower"]),
                float(data["upper"]),
                float(data["variance"]),
                float(data["sigmas"]),
                int(data["chunks"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            msg = f"not a PCA reference: {exc}"
            raise InvalidInputError(msg) from None


def _rows(columns: Mapping[str, FloatArray], categorical: Mapping[str, Sequence[object]]) -> int:
    lengths = {len(v) for v in columns.values()} | {len(v) for v in categorical.values()}
    if len(lengths) > 1:
        msg = f"columns differ in length: {sorted(lengths)}"
        raise InvalidInputError(msg)
    return lengths.pop() if lengths else 0


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


BLOCK_ROWS = 16_384  # rows encoded and reconstructed at a time (``error``)


def _rows_of(
    numeric: Mapping[str, FloatArray],
    categorical: Mapping[str, Sequence[object]],
    wanted: Mapping[str, Sequence[str]],
) -> int:
    """How many rows the window's columns hold (0 when it has no column the model reads)."""
    for values in numeric.values():
        return len(values)
    for name in wanted:
        return len(categorical[name])
    return 0
