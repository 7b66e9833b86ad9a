"""Exact contributions of a linear or logistic model, mapped back to the input features.

For ``margin = w . z + b`` over the preprocessed columns ``z`` (scaled, imputed, one-hot
encoded...), where each column of ``z`` comes from one input feature, the margin is a sum of
one function per input feature. The interventional Shapley value of such an additive model
is that function's value minus its mean over the background:
``phi_i = sum over the columns k of feature i of w_k (z_k - mean_background(z_k))``, the
value ``shap.LinearExplainer`` gives (interventional, same background); a one-hot group sums
to its one input feature. ``z`` comes from ONNX Runtime running the graph's own
preprocessing, so the explanation follows exactly what the served model computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medops.core.explain.attributions import Attributions
from medops.core.explain.base import Explainer, Link, find_link
from medops.core.explain.graph import Analysis, Probe, attributes
from medops.core.onnx_model import OnnxModel


class LinearExplainer(Explainer):
    """``LinearClassifier``/``LinearRegressor`` after column-wise preprocessing."""

    method = "linear"
    exact = True

    def __init__(
        self,
        model: OnnxModel,
        analysis: Analysis,
        background: dict[str, np.ndarray],
        class_index: int,
    ) -> None:
        super().__init__(model)
        assert analysis.columns is not None
        attrs = attributes(analysis.node)
        intercepts = np.asarray(attrs.get("intercepts", [0.0]), dtype=np.float64)
        coefficients = np.asarray(attrs["coefficients"], dtype=np.float64)
        weights = coefficients.reshape(len(intercepts), -1)  # (K, width)
        columns = np.asarray(analysis.columns)
        if weights.shape[1] != len(columns):
            msg = "the linear node's width differs from its input columns"
            raise ValueError(msg)
        self._input = analysis.node.input[0]
        self._probe = Probe(
            analysis.model, [self._input], model.signature.outputs.probability_output
        )
        z, probabilities = self._probe.run(background)
        self._scaler = _scaler_only(analysis, background, z)
        link = find_link(z @ weights.T + intercepts, probabilities, class_index)
        if link is None:
            msg = "the linear node's scores do not explain the graph's probabilities"
            raise ValueError(msg)
        self.link: Link = link
        self.scale = link.scale
        w = link.sign * weights[link.column]
        # (width, n_features): column k's weight in its input feature's column.
        grouping = np.zeros((len(columns), len(self.features)))
        used = columns >= 0
        grouping[np.flatnonzero(used), columns[used]] = w[used]
        self._grouping = grouping
        self.weights = w  # per preprocessed column, for the explained class
        self._z_mean = z.mean(axis=0)
        self._intercept = link.sign * intercepts[link.column] + link.offset
        self.base_value = float(self.weights @ self._z_mean + self._intercept)

    def preprocessed(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        """The linear node's input columns for ``feed``, as the graph computes them."""
        return self._run(feed)[0]

    def _run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, None]:
        if self._scaler is not None:
            (matrix,) = feed.values()
            return self._scaler.apply(matrix), None
        return self._probe.run(feed)[0], None

    def explain_feed(self, feed: dict[str, np.ndarray]) -> Attributions:
        """Exact contributions on the link's scale (log-odds for a logistic model)."""
        z, _ = self._run(feed)
        values = (z - self._z_mean) @ self._grouping
        n_rows = z.shape[0]
        return Attributions(
            features=self.features,
            values=values,
            base_values=np.full(n_rows, self.base_value),
            outputs=z @ self.weights + self._intercept,
            scale=self.scale,
            method=self.method,
            exact=True,
        )


@dataclass(frozen=True)
class _Scaler:
    """The graph's only preprocessing, a ``Scaler`` on the tensor input, in NumPy: the same
    float32 operations in the same order as ONNX Runtime's kernel, so the same bits (checked
    on the background when built), without a second ONNX Runtime run per explanation."""

    offset: np.ndarray
    scale: np.ndarray

    def apply(self, matrix: np.ndarray) -> np.ndarray:
        x = np.asarray(matrix, dtype=np.float32)
        return np.asarray((x - self.offset) * self.scale, dtype=np.float64)


def _scaler_only(
    analysis: Analysis, background: dict[str, np.ndarray], z: np.ndarray
) -> _Scaler | None:
    """The NumPy form of a graph that is input -> Scaler -> the linear node, if it gives
    exactly the graph's values on the background; else None (the probe runs the graph)."""
    graph = analysis.model.graph
    nodes = [n for n in graph.node if n is not analysis.node]
    if len(background) != 1 or len(graph.input) != 1:
        return None
    (matrix,) = background.values()
    if any(n.op_type != "Scaler" for n in nodes if analysis.node.input[0] in n.output):
        return None
    producers = [n for n in nodes if analysis.node.input[0] in n.output]
    if len(producers) != 1 or list(producers[0].input) != [graph.input[0].name]:
        return None
    attrs = attributes(producers[0])
    width = matrix.shape[1]
    offset = np.broadcast_to(np.asarray(attrs.get("offset", [0.0]), np.float32), (width,))
    scale = np.broadcast_to(np.asarray(attrs.get("scale", [1.0]), np.float32), (width,))
    scaler = _Scaler(offset.copy(), scale.copy())
    return scaler if np.array_equal(scaler.apply(matrix), z) else None
