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
        z, probabilities = self._run(background)
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
        self._w = w
        self._z_mean = z.mean(axis=0)
        self._intercept = link.sign * intercepts[link.column] + link.offset
        self.base_value = float(self._w @ self._z_mean + self._intercept)

    def _run(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        z, probabilities = self._probe.run(feed)
        return z, probabilities

    def explain_feed(self, feed: dict[str, np.ndarray]) -> Attributions:
        """Exact contributions on the link's scale (log-odds for a logistic model)."""
        z, _ = self._run(feed)
        values = (z - self._z_mean) @ self._grouping
        n_rows = z.shape[0]
        return Attributions(
            features=self.features,
            values=values,
            base_values=np.full(n_rows, self.base_value),
            outputs=z @ self._w + self._intercept,
            scale=self.scale,
            method=self.method,
            exact=True,
        )
