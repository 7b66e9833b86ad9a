"""Approximate Shapley values for any model: permutation sampling against the background.

For a random order of the features, start from a background row and switch the features to
the explained row's values one at a time; each switch's change in the model output is that
feature's marginal contribution. Averaged over every background row and over ``n_orders``
orders (drawn in antithetic pairs: an order and its reverse, which cancels much of the
variance), this estimates the interventional Shapley values that the exact methods compute
(Strumbelj and Kononenko 2014, with Mitchell et al. 2022's antithetic orders). The sum of the
contributions is exact by construction (each order telescopes from ``f(background)`` to
``f(row)``); the individual values carry a sampling error, whose standard error, over the
order pairs, is reported as ``error_estimate`` (the largest over features and rows).

It runs the whole ONNX graph ``n_orders * n_background * (n_features + 1)`` times per row, in
one batch: milliseconds to tenths of a second, so it is for models without an exact method.
The scale is the probability of the explained class (no log-odds, which a probability of 0
or 1 would make infinite).
"""

from __future__ import annotations

import numpy as np

from medops.core.explain.attributions import Attributions
from medops.core.explain.base import Explainer
from medops.core.onnx_model import OnnxModel

N_ORDERS = 16  # feature orders per row (8 antithetic pairs)
N_BACKGROUND = 50  # background rows each order starts from


class SamplingExplainer(Explainer):
    """Permutation-sampling Shapley values, marked approximate, with a standard error."""

    method = "sampling_shapley"
    exact = False
    scale = "probability"

    def __init__(
        self,
        model: OnnxModel,
        background: dict[str, np.ndarray],
        class_index: int,
        *,
        n_orders: int = N_ORDERS,
        n_background: int = N_BACKGROUND,
        seed: int = 0,
    ) -> None:
        super().__init__(model)
        self._class = class_index
        self._n_orders = max(2, n_orders + n_orders % 2)
        self._seed = seed
        n_rows = len(next(iter(background.values())))
        if n_rows > n_background:
            pick = np.random.default_rng(seed)
            keep = np.sort(pick.choice(n_rows, size=n_background, replace=False))
            background = {name: values[keep] for name, values in background.items()}
        self._background = [self._column(background, i) for i in range(len(self.features))]
        self._f_background = self._predict(self._background)
        self.base_value = float(self._f_background.mean())

    def _column(self, feed: dict[str, np.ndarray], index: int) -> np.ndarray:
        """Feature ``index``'s values in a feed, as a 1-D array."""
        if self.model.signature.input_layout == "tensor":
            (matrix,) = feed.values()
            return np.asarray(matrix[:, index])
        return np.asarray(feed[self.features[index]]).reshape(-1)

    def _predict(self, columns: list[np.ndarray]) -> np.ndarray:
        if self.model.signature.input_layout == "tensor":
            name = self.model.info.inputs[0]["name"]
            feed = {name: np.column_stack(columns)}
        else:
            feed = {f: c.reshape(-1, 1) for f, c in zip(self.features, columns, strict=True)}
        return self.model.run_feed(feed)[1][:, self._class]

    def _orders(self, rng: np.random.Generator) -> np.ndarray:
        half = self._n_orders // 2
        orders = np.array([rng.permutation(len(self.features)) for _ in range(half)])
        return np.concatenate([orders, orders[:, ::-1]])  # antithetic pairs: i and i + half

    def _explain_row(self, row: list[np.ndarray]) -> tuple[np.ndarray, float, float]:
        n_features, n_bg = len(self.features), len(self._f_background)
        # Seeded per row: the same row gets the same answer (an auditor can recompute it),
        # and concurrent requests share no generator state.
        orders = self._orders(np.random.default_rng(self._seed))
        n_orders = len(orders)
        # take[o, k, i]: after k switches in order o, feature i has the row's value.
        rank = np.argsort(orders, axis=1)  # rank[o, i] = position of feature i in order o
        take = rank[:, None, :] < np.arange(n_features + 1)[None, :, None]
        columns = []
        for i in range(n_features):
            mixed = np.where(
                take[:, None, :, i], row[i][0], self._background[i][None, :, None]
            )  # (orders, background, steps)
            columns.append(mixed.reshape(-1))
        f = self._predict(columns).reshape(n_orders, n_bg, n_features + 1)
        steps = np.diff(f, axis=2).mean(axis=1)  # (orders, n_features) by position
        per_order = np.zeros((n_orders, n_features))
        np.put_along_axis(per_order, orders, steps, axis=1)
        half = n_orders // 2
        pairs = (per_order[:half] + per_order[half:]) / 2
        values = pairs.mean(axis=0)
        error = float(pairs.std(axis=0, ddof=1).max() / np.sqrt(half)) if half > 1 else np.inf
        return values, float(f[0, 0, -1]), error

    def explain_feed(self, feed: dict[str, np.ndarray]) -> Attributions:
        """Approximate contributions on the probability scale, with their standard error."""
        columns = [self._column(feed, i) for i in range(len(self.features))]
        n_rows = len(columns[0])
        values = np.zeros((n_rows, len(self.features)))
        outputs = np.zeros(n_rows)
        error = 0.0
        for r in range(n_rows):
            values[r], outputs[r], row_error = self._explain_row([c[r : r + 1] for c in columns])
            error = max(error, row_error)
        return Attributions(
            features=self.features,
            values=values,
            base_values=np.full(n_rows, self.base_value),
            outputs=outputs,
            scale=self.scale,
            method=self.method,
            exact=False,
            error_estimate=error,
        )
