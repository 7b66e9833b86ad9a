"""A tree ensemble read from its ONNX node, as root-to-leaf paths of intervals.

Both node forms are read: ``TreeEnsemble`` (ai.onnx.ml opset 5, which medops' own converter
writes for scikit-learn and LightGBM models: float64 splits, leaves apart from the nodes) and
``TreeEnsembleClassifier``/``TreeEnsembleRegressor`` (opsets 1-3, onnxmltools' XGBoost and
skl2onnx: trees and nodes by id, leaves as nodes with mode ``LEAF``).

Each root-to-leaf path becomes, per column of the node's input, one interval ``lo < z <= hi``
and whether a missing value (NaN) follows the path: every comparison ``<``, ``<=``, ``>=``,
``>`` is rewritten as ``<=`` or ``>`` on float64 (``z < t`` is ``z <= nextafter(t, -inf)``,
exact for float32 and float64 values alike), and the conditions on one column along a path
intersect. The path is active for a row exactly when every interval holds, which is what
ONNX Runtime's traversal decides. ``EQ``, ``NEQ`` and set membership splits are refused
(no converter medops uses writes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from medops.core.explain.graph import attributes

# Numeric codes of the opset 5 ``nodes_modes``; the older ops name them.
_LEQ, _LT, _GTE, _GT = 0, 1, 2, 3
_MODE_NAMES = {b"BRANCH_LEQ": _LEQ, b"BRANCH_LT": _LT, b"BRANCH_GTE": _GTE, b"BRANCH_GT": _GT}


class UnsupportedTreeError(ValueError):
    """The node uses something the interval form cannot express."""


@dataclass
class Path:
    """One root-to-leaf path: per input column ``(lo, hi, nan_follows)``; leaf weights."""

    intervals: dict[int, tuple[float, float, bool]]
    weights: np.ndarray  # (n_targets,)


@dataclass
class Ensemble:
    """What a tree node computes: ``sum over active paths of weights + base``, scaled by
    ``1 / n_trees`` when the node averages."""

    paths: list[Path]
    n_targets: int
    base: np.ndarray  # (n_targets,)
    n_trees: int
    average: bool
    post_transform: str = "NONE"
    extra: dict[str, object] = field(default_factory=dict)


def _tighten(
    intervals: dict[int, tuple[float, float, bool]],
    column: int,
    mode: int,
    threshold: float,
    *,
    went_true: bool,
    missing_true: bool,
) -> dict[int, tuple[float, float, bool]]:
    lo, hi, nan = intervals.get(column, (-np.inf, np.inf, True))
    below = float(np.nextafter(threshold, -np.inf))
    if mode == _LEQ:  # true: z <= t
        hi, lo = (min(hi, threshold), lo) if went_true else (hi, max(lo, threshold))
    elif mode == _LT:  # true: z < t, i.e. z <= below
        hi, lo = (min(hi, below), lo) if went_true else (hi, max(lo, below))
    elif mode == _GTE:  # true: z >= t, i.e. z > below
        lo, hi = (max(lo, below), hi) if went_true else (lo, min(hi, below))
    elif mode == _GT:  # true: z > t
        lo, hi = (max(lo, threshold), hi) if went_true else (lo, min(hi, threshold))
    else:
        msg = f"split mode {mode} (EQ, NEQ or MEMBER) is not supported"
        raise UnsupportedTreeError(msg)
    updated = dict(intervals)
    updated[column] = (lo, hi, nan and went_true == missing_true)
    return updated


def read_ensemble(node: onnx.NodeProto) -> Ensemble:
    """The node's trees as paths (raises UnsupportedTreeError)."""
    attrs = attributes(node)
    if node.op_type == "TreeEnsemble":
        return _read_v5(attrs)
    return _read_legacy(node.op_type, attrs)


def _read_v5(attrs: dict[str, object]) -> Ensemble:
    aggregate = int(attrs.get("aggregate_function", 1))  # type: ignore[call-overload]
    if aggregate not in (0, 1):  # AVERAGE, SUM; MIN and MAX are not sums
        msg = "a tree ensemble aggregated by MIN or MAX is not additive"
        raise UnsupportedTreeError(msg)
    features = np.asarray(attrs["nodes_featureids"], dtype=np.int64)
    splits = np.asarray(attrs["nodes_splits"], dtype=np.float64).ravel()
    modes = np.asarray(attrs.get("nodes_modes", np.zeros(len(features))), dtype=np.int64).ravel()
    true_ids = np.asarray(attrs["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(attrs["nodes_falsenodeids"], dtype=np.int64)
    true_leaf = np.asarray(attrs["nodes_trueleafs"], dtype=bool)
    false_leaf = np.asarray(attrs["nodes_falseleafs"], dtype=bool)
    missing = np.asarray(
        attrs.get("nodes_missing_value_tracks_true", np.zeros(len(features))), dtype=bool
    )
    targets = np.asarray(attrs["leaf_targetids"], dtype=np.int64)
    weights = np.asarray(attrs["leaf_weights"], dtype=np.float64).ravel()
    n_targets = int(attrs["n_targets"])  # type: ignore[call-overload]
    roots = [int(r) for r in attrs["tree_roots"]]  # type: ignore[attr-defined]
    paths: list[Path] = []

    def leaf(index: int, intervals: dict[int, tuple[float, float, bool]]) -> None:
        w = np.zeros(n_targets)
        w[targets[index]] += weights[index]
        paths.append(Path(intervals, w))

    def walk(index: int, intervals: dict[int, tuple[float, float, bool]]) -> None:
        column, mode, t = int(features[index]), int(modes[index]), float(splits[index])
        if true_ids[index] == false_ids[index] and true_leaf[index] == false_leaf[index]:
            # both branches go to one place (a one-leaf tree): no condition
            (leaf if true_leaf[index] else walk)(int(true_ids[index]), intervals)
            return
        for went_true, child, is_leaf in (
            (True, true_ids[index], true_leaf[index]),
            (False, false_ids[index], false_leaf[index]),
        ):
            sub = _tighten(
                intervals, column, mode, t, went_true=went_true, missing_true=bool(missing[index])
            )
            (leaf if is_leaf else walk)(int(child), sub)

    for root in roots:
        walk(root, {})
    return Ensemble(paths, n_targets, np.zeros(n_targets), len(roots), aggregate == 0)


def _read_legacy(op_type: str, attrs: dict[str, object]) -> Ensemble:  # noqa: PLR0915
    prefix = "class" if op_type == "TreeEnsembleClassifier" else "target"
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    features = np.asarray(attrs["nodes_featureids"], dtype=np.int64)
    values = attrs.get("nodes_values_as_tensor", attrs.get("nodes_values"))
    splits = np.asarray(values, dtype=np.float64).ravel()
    modes = [m.encode() if isinstance(m, str) else m for m in attrs["nodes_modes"]]  # type: ignore[attr-defined]
    true_ids = np.asarray(attrs["nodes_truenodeids"], dtype=np.int64)
    false_ids = np.asarray(attrs["nodes_falsenodeids"], dtype=np.int64)
    missing = np.asarray(
        attrs.get("nodes_missing_value_tracks_true", np.zeros(len(features))), dtype=bool
    )
    w_trees = np.asarray(attrs[f"{prefix}_treeids"], dtype=np.int64)
    w_nodes = np.asarray(attrs[f"{prefix}_nodeids"], dtype=np.int64)
    w_targets = np.asarray(attrs[f"{prefix}_ids"], dtype=np.int64)
    w_values = attrs.get(f"{prefix}_weights_as_tensor", attrs.get(f"{prefix}_weights"))
    w_weights = np.asarray(w_values, dtype=np.float64).ravel()
    if prefix == "class":
        n_targets = int(w_targets.max()) + 1 if len(w_targets) else 1
        average = False
    else:
        n_targets = int(attrs.get("n_targets", 1))  # type: ignore[call-overload]
        aggregate = attrs.get("aggregate_function", b"SUM")
        if aggregate not in (b"SUM", b"AVERAGE", "SUM", "AVERAGE"):
            msg = "a tree ensemble aggregated by MIN or MAX is not additive"
            raise UnsupportedTreeError(msg)
        average = aggregate in (b"AVERAGE", "AVERAGE")
    base_values = attrs.get("base_values_as_tensor", attrs.get("base_values"))
    base = np.zeros(n_targets)
    if base_values is not None and len(base_values):  # type: ignore[arg-type]
        base[:] = np.asarray(base_values, dtype=np.float64).ravel()[:n_targets]
    index = {(int(t), int(n)): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    leaf_weights: dict[tuple[int, int], np.ndarray] = {}
    for t, n, target, w in zip(w_trees, w_nodes, w_targets, w_weights, strict=True):
        vector = leaf_weights.setdefault((int(t), int(n)), np.zeros(n_targets))
        vector[target] += w
    paths: list[Path] = []

    def walk(tree: int, i: int, intervals: dict[int, tuple[float, float, bool]]) -> None:
        mode = modes[i]
        if mode == b"LEAF":
            w = leaf_weights.get((tree, int(node_ids[i])), np.zeros(n_targets))
            paths.append(Path(intervals, w))
            return
        if mode not in _MODE_NAMES:
            msg = f"split mode {mode!r} is not supported"
            raise UnsupportedTreeError(msg)
        for went_true, child in ((True, true_ids[i]), (False, false_ids[i])):
            sub = _tighten(
                intervals,
                int(features[i]),
                _MODE_NAMES[mode],
                float(splits[i]),
                went_true=went_true,
                missing_true=bool(missing[i]),
            )
            walk(tree, index[(tree, int(child))], sub)

    trees = sorted(set(tree_ids.tolist()))
    for tree in trees:
        roots = [i for i in np.flatnonzero(tree_ids == tree) if node_ids[i] == 0]
        if not roots:
            msg = f"tree {tree} has no node 0"
            raise UnsupportedTreeError(msg)
        walk(tree, int(roots[0]), {})
    transform = attrs.get("post_transform", b"NONE")
    post = transform.decode() if isinstance(transform, bytes) else str(transform)
    return Ensemble(paths, n_targets, base, len(trees), average, post)
