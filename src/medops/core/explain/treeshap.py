"""Exact interventional TreeSHAP from the graph's own trees, by lookup tables.

The value of a tree ensemble for a row whose features in ``S`` come from the row ``x`` and
the rest from a background row ``b`` is a sum over root-to-leaf paths of
``leaf value * prod over the path's features j of [j in S ? a_j : c_j]``, where ``a_j`` says
whether ``x`` satisfies the path's interval on feature ``j`` and ``c_j`` whether ``b`` does
(see ``trees``). The Shapley value of one such product is known in closed form (Laberge and
Pequignot 2022, "Understanding interventional TreeSHAP"): zero when some feature fails for
both; else with ``A`` the features only ``x`` satisfies and ``C`` those only ``b`` does,
``(|A|-1)! |C|! / (|A|+|C|)!`` for each feature of ``A`` and ``-|A|! (|C|-1)! / (|A|+|C|)!``
for each of ``C``. The interventional TreeSHAP value (``shap.TreeExplainer`` with
``feature_perturbation="interventional"`` and the same background) is the mean of these over
the background rows, summed over paths.

For a path with ``d`` distinct features, that mean depends on ``x`` only through the ``d``
bits ``a``: at load time, the background's bit patterns are counted per path and the
contributions for all ``2**d`` patterns of ``a`` are tabulated (one matrix product per path
length). Explaining a row is then a few vectorised NumPy operations over all paths at once:
compare the row with every interval, pack the bits into a pattern index, gather the table
rows, and ``bincount`` them into features. Paths with more than ``TABLE_DEPTH`` distinct
features (deep LightGBM trees) are computed directly against the stored background bits.

Why interventional, not shap's default ``tree_path_dependent``: ONNX trees carry no training
covers (skl2onnx writes hit rates of 1, medops' converter none, onnxmltools' XGBoost none),
and XGBoost's covers are hessian sums that no data pass reconstructs. Interventional values
need only the trees and the background: they agree with ``shap`` on the native model for
every family, and they answer the same question as the linear explainer's.

Columns of the node's input are mapped to input features (a one-hot group is one feature),
so a path's "feature" is an input feature and its bit the conjunction of its columns'
intervals.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import numpy_helper

from medops.core.explain.attributions import Attributions
from medops.core.explain.base import Explainer, Link, find_link
from medops.core.explain.graph import Analysis, Probe
from medops.core.explain.trees import Ensemble, read_ensemble
from medops.core.onnx_model import OnnxModel

TABLE_DEPTH = 8  # tables hold 2**d rows per path: 256 rows of 8 values at most
_BACKGROUND_CHUNK = 64


def _weights(d: int) -> np.ndarray:
    """``W[c, a, j]``: the Shapley value of feature ``j`` in the product game with row bits
    ``a`` and background bits ``c`` (patterns as integers, bit ``j`` = feature ``j``)."""
    patterns = np.arange(2**d)
    bits = (patterns[:, None] >> np.arange(d)) & 1  # (2**d, d)
    a = bits[None, :, :].astype(bool)  # (1, A, d)
    c = bits[:, None, :].astype(bool)  # (C, 1, d)
    only_a, only_c = a & ~c, ~a & c
    dead = (~a & ~c).any(axis=2)
    n_a, n_c = only_a.sum(axis=2), only_c.sum(axis=2)
    fact = np.array([math.factorial(k) for k in range(d + 1)], dtype=np.float64)
    total = fact[n_a + n_c]
    w_a = fact[np.maximum(n_a - 1, 0)] * fact[n_c] / total
    w_c = fact[n_a] * fact[np.maximum(n_c - 1, 0)] / total
    w = only_a * w_a[..., None] - only_c * w_c[..., None]
    w[dead] = 0.0
    return np.asarray(w, dtype=np.float64)


def _affine_after(analysis: Analysis, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    """``(mul, add)`` of the constant Add/Sub/Mul/Div steps that directly follow the node's
    first output (medops' converter: ``/ n_trees`` for forests, ``+ base`` for boosting)."""
    graph = analysis.model.graph
    constants = {i.name: i for i in graph.initializer}
    mul, add = np.ones(n_targets), np.zeros(n_targets)
    current = analysis.node.output[0]
    while True:
        consumers = [n for n in graph.node if current in n.input]
        if len(consumers) != 1:
            break
        step = consumers[0]
        if step.op_type not in {"Add", "Sub", "Mul", "Div"} or step.input[0] != current:
            break
        if step.input[1] not in constants:
            break
        value = numpy_helper.to_array(constants[step.input[1]]).astype(np.float64).ravel()
        if step.op_type == "Add":
            add = add + value
        elif step.op_type == "Sub":
            add = add - value
        elif step.op_type == "Mul":
            mul, add = mul * value, add * value
        else:
            mul, add = mul / value, add / value
        current = step.output[0]
    return mul, add


class TreeExplainer(Explainer):
    """Exact interventional TreeSHAP for one tree-ensemble node."""

    method = "tree_shap"
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
        self._columns = np.asarray(analysis.columns)
        ensemble = read_ensemble(analysis.node)
        self._input = analysis.node.input[0]
        graph_inputs = {i.name for i in analysis.model.graph.input}
        self._direct = self._input in graph_inputs
        self._probe = Probe(
            analysis.model,
            [] if self._direct else [self._input],
            model.signature.outputs.probability_output,
        )
        z_bg, probabilities = self._z_and_probabilities(background)
        self._build_paths(ensemble, z_bg)
        # Every path's bits for every background row, then the link and the tables.
        bg_bits = self._bits(z_bg)  # (B, P, dmax) bool
        full = self._sizes_mask()
        active = (bg_bits == full[None, :, :]).all(axis=2)  # (B, P): path taken
        mul, add = _affine_after(analysis, ensemble.n_targets)
        scale = mul / (ensemble.n_trees if ensemble.average else 1)
        margins = active.astype(np.float64) @ self._target_weights * scale + (
            ensemble.base * mul + add
        )
        link = find_link(margins, probabilities, class_index)
        if link is None:
            msg = "the trees' sums do not explain the graph's probabilities"
            raise ValueError(msg)
        self.link: Link = link
        self.scale = link.scale
        self._leaf = link.sign * scale[link.column] * self._target_weights[:, link.column]
        self._constant = (
            link.sign * (ensemble.base[link.column] * mul[link.column] + add[link.column])
            + link.offset
        )
        self.base_value = float(active.mean(axis=0) @ self._leaf + self._constant)
        self._build_tables(bg_bits)

    @property
    def deep_paths(self) -> int:
        """How many paths have more than TABLE_DEPTH distinct features (no table)."""
        return int(self._deep.size)

    # -- paths ---------------------------------------------------------------------------

    def _z_and_probabilities(self, feed: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        results = self._probe.run(feed)
        if self._direct:
            z = np.asarray(feed[self._input], dtype=np.float64).reshape(len(results[0]), -1)
            return z, results[0]
        return results[0], results[1]

    def _build_paths(self, ensemble: Ensemble, z_bg: np.ndarray) -> None:
        """Per path: its input features (slots) and per slot its columns' intervals."""
        n_features = len(self.features)
        kept_slots: list[list[tuple[int, list[tuple[int, float, float, bool]]]]] = []
        weights: list[np.ndarray] = []
        for path in ensemble.paths:
            by_feature: dict[int, list[tuple[int, float, float, bool]]] = {}
            dead = False
            for column, (lo, hi, nan) in path.intervals.items():
                feature = int(self._columns[column])
                if feature < 0:  # a constant column: the same outcome for every row
                    value = z_bg[0, column]
                    holds = (lo < value <= hi) or (bool(np.isnan(value)) and nan)
                    dead = dead or not holds
                    continue
                by_feature.setdefault(feature, []).append((column, lo, hi, nan))
            if dead:
                continue
            kept_slots.append(sorted(by_feature.items()))
            weights.append(path.weights)
        self._n_paths = len(kept_slots)
        self._target_weights = np.asarray(weights).reshape(self._n_paths, -1)
        self._depth = np.array([len(s) for s in kept_slots], dtype=np.int64)
        d_max = int(self._depth.max()) if self._n_paths else 0
        c_max = max((len(c) for s in kept_slots for _, c in s), default=1)
        shape = (self._n_paths, max(d_max, 1), c_max)
        # Padding: a missing slot never holds (lo = hi = inf); a missing condition always does.
        self._col = np.zeros(shape, dtype=np.int64)
        self._lo = np.full(shape, -np.inf)
        self._hi = np.full(shape, np.inf)
        self._nan = np.ones(shape, dtype=bool)
        self._feature = np.full(shape[:2], n_features, dtype=np.int64)
        for p, slots in enumerate(kept_slots):
            for s, (feature, conditions) in enumerate(slots):
                self._feature[p, s] = feature
                for k, (column, lo, hi, nan) in enumerate(conditions):
                    self._col[p, s, k], self._lo[p, s, k] = column, lo
                    self._hi[p, s, k], self._nan[p, s, k] = hi, nan
            for s in range(len(slots), shape[1]):
                self._lo[p, s, :] = np.inf
                self._nan[p, s, :] = False
        self._c_max = c_max
        self._index_conditions()

    def _sizes_mask(self) -> np.ndarray:
        """(P, dmax): True for the slots a path really has."""
        return np.arange(self._col.shape[1])[None, :] < self._depth[:, None]

    def _index_conditions(self) -> None:
        """The distinct conditions: many paths of a tree share their first splits."""
        keys = np.stack(
            [
                self._col.ravel().astype(np.float64),
                self._lo.ravel(),
                self._hi.ravel(),
                self._nan.ravel().astype(np.float64),
            ],
            axis=1,
        )
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        self._u_col = unique[:, 0].astype(np.int64)
        self._u_lo, self._u_hi = unique[:, 1], unique[:, 2]
        self._u_nan = unique[:, 3].astype(bool)
        self._u_inverse = inverse.reshape(self._col.shape)
        self._slot_condition = self._u_inverse[..., 0]
        self._pattern_weights = 2.0 ** np.arange(self._col.shape[1])
        self._full_pattern = self._sizes_mask().astype(np.float64) @ self._pattern_weights

    def _holds(self, z: np.ndarray) -> np.ndarray:
        """(n, U): whether each row satisfies each distinct condition."""
        values = z[0].take(self._u_col)[None, :] if z.shape[0] == 1 else z[:, self._u_col]
        holds = (values > self._u_lo) & (values <= self._u_hi)
        if np.isnan(values).any():
            holds |= np.isnan(values) & self._u_nan
        return np.asarray(holds)

    def _bits(self, z: np.ndarray) -> np.ndarray:
        """(n, P, dmax): whether each row satisfies each path's slot."""
        bits = self._holds(z)[:, self._u_inverse]  # (n, P, dmax, cmax)
        return np.asarray(bits.all(axis=3) if self._c_max > 1 else bits[..., 0])

    def _patterns(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(n, P) each path's bit pattern as an integer, and the bits when needed."""
        if self._c_max == 1 and not self._deep.size:
            holds = self._holds(z).astype(np.float64)
            if z.shape[0] == 1:  # one row: 1-D take is several times faster than fancy indexing
                bits = holds[0].take(self._slot_condition)
                return (bits @ self._pattern_weights).astype(np.int64)[None, :], None
            return (holds[:, self._slot_condition] @ self._pattern_weights).astype(np.int64), None
        bits = self._bits(z)
        return (bits.astype(np.float64) @ self._pattern_weights).astype(np.int64), bits

    # -- tables ----------------------------------------------------------------------------

    def _build_tables(self, bg_bits: np.ndarray) -> None:
        n_bg = bg_bits.shape[0]
        shallow = self._depth <= TABLE_DEPTH
        d_max = self._col.shape[1]
        width = min(d_max, TABLE_DEPTH)
        sizes = np.where(shallow, 2**self._depth, 0)
        self._offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._table = np.zeros((int(sizes.sum()) + 1, max(width, 1)))
        self._shallow = np.flatnonzero(shallow)
        powers = (1 << np.arange(width)).astype(np.int64)
        self._powers = powers
        patterns = (bg_bits[:, self._shallow, :width].astype(np.int64) * powers).sum(axis=2)
        for d in np.unique(self._depth[self._shallow]):
            group = self._shallow[self._depth[self._shallow] == d]
            where = np.searchsorted(self._shallow, group)
            counts = np.zeros((len(group), 2**d))
            for j in range(len(group)):
                counts[j] = np.bincount(patterns[:, where[j]], minlength=2**d)
            w = _weights(int(d)).reshape(2**d, -1)  # (C, A * d)
            tables = (counts / n_bg) @ w * self._leaf[group, None]
            rows = self._offset[group][:, None] + np.arange(2**d)[None, :]
            self._table[rows.ravel(), :d] = tables.reshape(-1, d)
        self._shallow_feature = self._feature[self._shallow, :width]
        self._bins_one = self._shallow_feature.ravel()
        self._shallow_offset = self._offset[self._shallow]
        self._deep = np.flatnonzero(~shallow)
        self._deep_bg = bg_bits[:, self._deep, :]  # (B, P_deep, dmax)
        fact = np.array([math.factorial(k) for k in range(2 * d_max + 1)], dtype=np.float64)
        n = np.arange(d_max + 1)
        total = fact[n[:, None] + n[None, :]]
        self._coef_a = fact[np.maximum(n - 1, 0)][:, None] * fact[n][None, :] / total
        self._coef_c = fact[n][:, None] * fact[np.maximum(n - 1, 0)][None, :] / total

    # -- explaining -------------------------------------------------------------------------

    def explain_feed(self, feed: dict[str, np.ndarray]) -> Attributions:
        """Exact interventional TreeSHAP values on the link's scale."""
        z = _direct(feed, self._input) if self._direct else self._z_and_probabilities(feed)[0]
        n_rows, n_features = z.shape[0], len(self.features)
        patterns, bits = self._patterns(z)
        outputs = (patterns == self._full_pattern) @ self._leaf + self._constant
        if self._deep.size:
            index = patterns[:, self._shallow] + self._shallow_offset
        else:
            index = patterns + self._shallow_offset
        gathered = self._table.take(index, axis=0)  # (n, P_shallow, width)
        if n_rows == 1:
            values = np.bincount(
                self._bins_one, weights=gathered.ravel(), minlength=n_features + 1
            )[None, :n_features]
        else:
            bins = self._bins_one[None, :] + (n_features + 1) * np.arange(n_rows)[:, None]
            values = np.bincount(
                bins.ravel(), weights=gathered.ravel(), minlength=n_rows * (n_features + 1)
            ).reshape(n_rows, n_features + 1)[:, :n_features]
        if self._deep.size:
            assert bits is not None
            values = values + self._deep_values(bits[:, self._deep, :], n_features)
        return Attributions(
            features=self.features,
            values=values,
            base_values=np.full(n_rows, self.base_value),
            outputs=outputs,
            scale=self.scale,
            method=self.method,
            exact=True,
        )

    def _deep_values(self, bits: np.ndarray, n_features: int) -> np.ndarray:
        """Contributions of the paths too deep for tables, against every background row."""
        real = self._sizes_mask()[self._deep]  # (P_deep, dmax)
        features = self._feature[self._deep]
        leaf = self._leaf[self._deep]
        out = np.zeros((bits.shape[0], n_features + 1))
        for r in range(bits.shape[0]):
            a = bits[r][None, :, :] | ~real  # padding slots hold for both
            for start in range(0, self._deep_bg.shape[0], _BACKGROUND_CHUNK):
                c = self._deep_bg[start : start + _BACKGROUND_CHUNK] | ~real
                only_a, only_c = a & ~c, ~a & c
                alive = ~(~a & ~c).any(axis=2)  # (b, P_deep)
                n_a, n_c = only_a.sum(axis=2), only_c.sum(axis=2)
                w_a = np.where(alive, self._coef_a[n_a, n_c], 0.0)[..., None]
                w_c = np.where(alive, self._coef_c[n_a, n_c], 0.0)[..., None]
                phi = (only_a * w_a - only_c * w_c).sum(axis=0) * leaf[:, None]
                np.add.at(out[r], features.ravel(), phi.ravel())
        return np.asarray(out[:, :n_features] / self._deep_bg.shape[0])


def _direct(feed: dict[str, np.ndarray], name: str) -> np.ndarray:
    values = np.asarray(feed[name], dtype=np.float64)
    return values.reshape(values.shape[0], -1)
