"""Tree classifiers (scikit-learn's and LightGBM's) as one float64 ONNX ``TreeEnsemble`` node.

skl2onnx 1.20 writes every tree ensemble as ``TreeEnsembleClassifier`` of ai.onnx.ml opset 1,
whose thresholds and leaf values are float32, and feeds it whatever the preprocessing computed
in float32. scikit-learn does neither: a ``StandardScaler`` computes in float64 and the trees
compare that value, cast to float32, with float64 thresholds (``HistGradientBoosting*``
compares float64 with float64). A scaled value one float32 step away from scikit-learn's, or
a threshold rounded to float32, sends a row down the other branch: a random forest after a
scaler differed from ``predict_proba`` by up to 0.029 and flipped labels. And skl2onnx's
``HistGradientBoostingClassifier`` converter cannot run at all with protobuf 7: it writes
Python ``False`` into the integer attribute ``nodes_missing_value_tracks_true`` for leaves,
which protobuf 7 refuses ("Expected an int, got a boolean").

This module replaces skl2onnx's converters for the tree classifiers (per conversion, through
``convert_sklearn``'s ``custom_conversion_functions``; nothing global changes) with one that
writes the ``TreeEnsemble`` operator of ai.onnx.ml opset 5, whose input, splits, leaf weights
and output are float64 (ONNX Runtime 1.32, the version medops locks, runs it):

- **Splits.** For the trees that compare float32 features (decision trees, random forests,
  extra trees, gradient boosting), each threshold ``t`` becomes the float64 ``w`` with
  ``x <= w`` exactly when ``float32(x) <= t`` (``float32_thresholds``), so the graph decides
  as scikit-learn does without a cast. ``HistGradientBoosting*`` and LightGBM compare float64
  with float64: their thresholds are used as they are. Missing values go where the model
  sends them (scikit-learn's ``missing_go_to_left``, LightGBM's ``default_left`` or 0.0).
- **Leaves.** Class fractions for decision trees and forests (averaged over the trees), the
  learning-rate-scaled values plus the initial raw prediction for gradient boosting, the leaf
  values plus the baseline for ``HistGradientBoosting*``, the leaf values for LightGBM;
  sigmoid (binary) or softmax after.
- **Labels.** The class with the highest probability, as ``predict`` answers.

What it refuses, with a PackagingError that says what to do: multi-output forests, gradient
boosting with an ``init`` estimator other than the class prior, ``HistGradientBoosting`` or
LightGBM with categorical splits (encode the categories before the model instead), LightGBM
with ``zero_as_missing`` where 0.0 would take another branch than one comparison gives, and
LightGBM objectives other than binary and multiclass. medops registers classifiers only, so
only the classifiers are converted here. ``GradientBoostingClassifier``'s initial score and
``HistGradientBoostingClassifier``'s predictors are read from private attributes
(``_raw_predict_init``, ``_predictors``, ``_baseline_prediction`` of scikit-learn 1.9, the
version medops locks); tests/packaging/test_trees.py fails if they change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from onnx import numpy_helper

from medops.errors import FieldError, PackagingError

ML_DOMAIN = "ai.onnx.ml"
ML_OPSET = 5  # TreeEnsemble with float64 splits, leaf weights and output
_FLT_MAX = float(np.finfo(np.float32).max)
_HALF_ULP_AT_FLT_MAX = 2.0**103  # float32(x) is inf from FLT_MAX + this on (ties go to inf)

Transform = Literal["none", "sigmoid", "softmax"]


def float32_thresholds(thresholds: np.ndarray) -> np.ndarray:
    """For each threshold ``t``, the float64 ``w`` with ``x <= w`` exactly when
    ``float32(x) <= t``, for every float64 ``x`` (NaN aside).

    ``f``, the largest float32 not above ``t``, and the next float32 ``up`` bound the
    values that round to ``f``: everything below their midpoint, and the midpoint itself
    when ties go to ``f`` (round half to even: when ``f``'s last mantissa bit is 0). The
    midpoint of two float32 neighbours is exact in float64."""
    t = np.asarray(thresholds, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # the infinities are handled below
        f = t.astype(np.float32)
        f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f)
        up = np.nextafter(f, np.float32(np.inf)).astype(np.float64)
        up = np.where(f == np.float32(_FLT_MAX), _FLT_MAX + 2 * _HALF_ULP_AT_FLT_MAX, up)
        mid = (f.astype(np.float64) + up) / 2
    even = (f.view(np.uint32) & 1) == 0
    w = np.where(even, mid, np.nextafter(mid, -np.inf))
    w = np.where(np.isneginf(f), -(_FLT_MAX + _HALF_ULP_AT_FLT_MAX), w)
    w = np.where(np.isposinf(f), np.inf, w)
    return np.where(np.isnan(t), t, w)


@dataclass
class Forest:
    """The attributes of one ``TreeEnsemble`` node, filled one tree (and target) at a time."""

    n_targets: int
    _roots: list[int] = field(default_factory=list)
    _nodes: list[dict[str, np.ndarray]] = field(default_factory=list)
    _leaves: list[dict[str, np.ndarray]] = field(default_factory=list)
    _n_nodes: int = 0
    _n_leaves: int = 0

    def add(
        self,
        *,
        left: np.ndarray,
        right: np.ndarray,
        is_leaf: np.ndarray,
        feature: np.ndarray,
        threshold: np.ndarray,
        missing_left: np.ndarray,
        value: np.ndarray,
        target: int,
    ) -> None:
        """One binary tree given as arrays over its node ids (root 0): children, leaf flags,
        split feature and threshold (``x <= threshold`` goes left), where NaN goes, and each
        leaf's weight for ``target``."""
        is_leaf = np.asarray(is_leaf, dtype=bool)
        interior, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
        position = np.zeros(len(is_leaf), dtype=np.int64)
        position[interior] = self._n_nodes + np.arange(len(interior))
        position[leaves] = self._n_leaves + np.arange(len(leaves))
        if interior.size == 0:  # a tree that is one leaf: one node whose branches both end there
            nodes = {
                "feature": np.zeros(1, np.int64),
                "split": np.zeros(1),
                "true": position[:1],
                "true_leaf": np.ones(1, np.int64),
                "false": position[:1],
                "false_leaf": np.ones(1, np.int64),
                "missing": np.zeros(1, np.int64),
            }
        else:
            lefts, rights = np.asarray(left)[interior], np.asarray(right)[interior]
            nodes = {
                "feature": np.asarray(feature, dtype=np.int64)[interior],
                "split": np.asarray(threshold, dtype=np.float64)[interior],
                "true": position[lefts],
                "true_leaf": is_leaf[lefts].astype(np.int64),
                "false": position[rights],
                "false_leaf": is_leaf[rights].astype(np.int64),
                "missing": np.asarray(missing_left, dtype=bool)[interior].astype(np.int64),
            }
        if is_leaf[0]:
            self._roots.append(self._n_nodes)
        else:
            self._roots.append(int(position[0]))
        self._nodes.append(nodes)
        self._leaves.append(
            {
                "target": np.full(len(leaves), target, dtype=np.int64),
                "weight": np.asarray(value, dtype=np.float64)[leaves],
            }
        )
        self._n_nodes += len(nodes["feature"])
        self._n_leaves += len(leaves)

    def attributes(self) -> dict[str, Any]:
        """The node's attributes, float64 where ONNX allows tensors."""

        def nodes(key: str) -> np.ndarray:
            return np.concatenate([n[key] for n in self._nodes])

        def leaves(key: str) -> np.ndarray:
            return np.concatenate([leaf[key] for leaf in self._leaves])

        return {
            "n_targets": self.n_targets,
            "aggregate_function": 1,  # SUM
            "post_transform": 0,
            "tree_roots": self._roots,
            "nodes_featureids": nodes("feature").tolist(),
            "nodes_splits": numpy_helper.from_array(nodes("split")),
            "nodes_modes": numpy_helper.from_array(np.zeros(self._n_nodes, np.uint8)),  # <=
            "nodes_truenodeids": nodes("true").tolist(),
            "nodes_trueleafs": nodes("true_leaf").tolist(),
            "nodes_falsenodeids": nodes("false").tolist(),
            "nodes_falseleafs": nodes("false_leaf").tolist(),
            "nodes_missing_value_tracks_true": nodes("missing").tolist(),
            "leaf_targetids": leaves("target").tolist(),
            "leaf_weights": numpy_helper.from_array(leaves("weight")),
        }


@dataclass(frozen=True)
class Ensemble:
    """What the graph computes: ``transform(sum of the trees / divisor + base)``, one column
    per target; a binary model has one target (the positive class), the other is 1 - p."""

    forest: Forest
    base: np.ndarray | None
    transform: Transform
    divisor: int = 1


def _refuse(model: Any, reason: str) -> PackagingError:
    msg = f"{type(model).__name__} cannot be exported: {reason}"
    return PackagingError(msg, errors=[FieldError("model", msg)])


def _add_sklearn_tree(forest: Forest, tree: Any, weights: np.ndarray, targets: list[int]) -> None:
    """A fitted ``sklearn.tree._tree.Tree`` whose features scikit-learn casts to float32."""
    left = np.asarray(tree.children_left)
    missing = getattr(tree, "missing_go_to_left", None)
    for column, target in enumerate(targets):
        forest.add(
            left=left,
            right=np.asarray(tree.children_right),
            is_leaf=left == -1,
            feature=np.asarray(tree.feature),
            threshold=float32_thresholds(np.asarray(tree.threshold)),
            missing_left=np.zeros(len(left)) if missing is None else np.asarray(missing),
            value=weights[:, column],
            target=target,
        )


def _class_fractions(tree: Any, n_classes: int) -> np.ndarray:
    """Each node's class fractions, normalized as ``DecisionTreeClassifier.predict_proba``."""
    value: np.ndarray = np.asarray(tree.value, dtype=np.float64)[:, 0, :n_classes]
    normalizer = value.sum(axis=1, keepdims=True)
    normalizer[normalizer == 0.0] = 1.0
    fractions: np.ndarray = value / normalizer
    return fractions


def _forest(model: Any, trees: list[Any]) -> Ensemble:
    """Decision trees and (extra-)random forests: the mean of the trees' class fractions."""
    if getattr(model, "n_outputs_", 1) != 1:
        raise _refuse(model, "it predicts several outputs; medops registers one classifier")
    n_classes = len(model.classes_)
    columns = [1] if n_classes == 2 else list(range(n_classes))
    forest = Forest(n_targets=len(columns))
    for estimator in trees:
        fractions = _class_fractions(estimator.tree_, n_classes)[:, columns]
        _add_sklearn_tree(forest, estimator.tree_, fractions, list(range(len(columns))))
    # The sum of the trees' fractions divided by their number, as ``predict_proba`` averages
    # (a multi-class tree is one TreeEnsemble tree per class, so AVERAGE would divide wrongly).
    return Ensemble(forest, None, "none", divisor=len(trees))


def _gradient_boosting(model: Any) -> Ensemble:
    """``GradientBoostingClassifier``: the prior's raw score plus the scaled tree values."""
    from sklearn.dummy import DummyClassifier  # type: ignore[import-untyped]

    init = model.init_
    if not (init == "zero" or (isinstance(init, DummyClassifier) and init.strategy == "prior")):
        raise _refuse(model, "its init estimator is not the class prior; use init=None")
    stages = np.asarray(model.estimators_)
    n_targets = stages.shape[1]
    forest = Forest(n_targets=n_targets)
    for stage in stages:
        for target, estimator in enumerate(stage):
            scaled = model.learning_rate * np.asarray(estimator.tree_.value, dtype=np.float64)
            _add_sklearn_tree(forest, estimator.tree_, scaled[:, 0, :1], [target])
    base = np.asarray(
        model._raw_predict_init(np.zeros((1, model.n_features_in_), dtype=np.float32)),
        dtype=np.float64,
    ).reshape(-1)
    return Ensemble(forest, base, "sigmoid" if n_targets == 1 else "softmax")


def _hist_gradient_boosting(model: Any) -> Ensemble:
    """``HistGradientBoostingClassifier``: the baseline plus the leaf values, float64 splits."""
    if getattr(model, "_preprocessor", None) is not None or np.any(
        getattr(model, "is_categorical_", None) or False
    ):
        raise _refuse(
            model,
            "it has categorical features; encode them before the model (OneHotEncoder or "
            "OrdinalEncoder in a Pipeline) and fit it with categorical_features=None",
        )
    n_targets = int(model.n_trees_per_iteration_)
    forest = Forest(n_targets=n_targets)
    for iteration in model._predictors:
        for target, predictor in enumerate(iteration):
            nodes = predictor.nodes
            is_leaf = nodes["is_leaf"].astype(bool)
            if np.any(nodes["is_categorical"][~is_leaf]):
                raise _refuse(model, "it has categorical splits; encode categories first")
            forest.add(
                left=nodes["left"].astype(np.int64),
                right=nodes["right"].astype(np.int64),
                is_leaf=is_leaf,
                feature=nodes["feature_idx"],
                threshold=nodes["num_threshold"],
                missing_left=nodes["missing_go_to_left"],
                value=nodes["value"],
                target=target,
            )
    base = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    return Ensemble(forest, base, "sigmoid" if n_targets == 1 else "softmax")


def _lightgbm(model: Any) -> Ensemble:
    """``LGBMClassifier``: the trees LightGBM predicts with (its best iteration, if any),
    float64 features against float64 thresholds, then sigmoid or softmax."""
    dump = model.booster_.dump_model()
    objective = str(dump.get("objective", "")).split()
    if not objective or objective[0] not in {"binary", "multiclass"}:
        raise _refuse(model, f"objective {' '.join(objective) or '?'} is not binary or multiclass")
    scale = 1.0
    for word in objective[1:]:
        if word.startswith("sigmoid:"):
            scale = float(word.split(":", 1)[1])
    n_targets = int(dump["num_tree_per_iteration"])
    trees = dump["tree_info"]
    forest = Forest(n_targets=n_targets)
    for index, info in enumerate(trees):
        arrays = _lightgbm_tree(model, info["tree_structure"])
        arrays["value"] = arrays["value"] * scale if scale != 1.0 else arrays["value"]
        forest.add(**arrays, target=index % n_targets)
    divisor = len(trees) // n_targets if dump.get("average_output") else 1
    return Ensemble(forest, None, "sigmoid" if n_targets == 1 else "softmax", divisor=divisor)


def _lightgbm_tree(model: Any, root: dict[str, Any]) -> dict[str, np.ndarray]:
    """One tree of ``Booster.dump_model`` as arrays over node ids in preorder.

    LightGBM sends NaN to ``default_left`` when the split's missing type is NaN, and treats
    it as 0.0 when it is None; a "Zero" missing type (``zero_as_missing``) also sends 0.0 to
    ``default_left``, which one comparison can express only when that is where 0.0 goes."""
    left: list[int] = []
    right: list[int] = []
    leaf: list[bool] = []
    feature: list[int] = []
    threshold: list[float] = []
    missing_left: list[bool] = []
    value: list[float] = []
    stack: list[tuple[dict[str, Any], int, bool]] = [(root, -1, True)]
    while stack:
        node, parent, is_left = stack.pop()
        me = len(leaf)
        if parent >= 0:
            (left if is_left else right)[parent] = me
        left.append(-1)
        right.append(-1)
        if "leaf_value" in node:
            leaf.append(True)
            feature.append(0)
            threshold.append(0.0)
            missing_left.append(False)
            value.append(float(node["leaf_value"]))
            continue
        if node.get("decision_type") != "<=":
            raise _refuse(model, "it has categorical splits; encode categories as numbers first")
        split = float(node["threshold"])
        zero_goes_left = split >= 0.0
        kind = node.get("missing_type", "None")
        if kind == "Zero" and bool(node["default_left"]) != zero_goes_left:
            raise _refuse(model, "it treats zero as missing (zero_as_missing=True)")
        leaf.append(False)
        feature.append(int(node["split_feature"]))
        threshold.append(split)
        missing_left.append(bool(node["default_left"]) if kind == "NaN" else zero_goes_left)
        value.append(0.0)
        stack.append((node["right_child"], me, False))
        stack.append((node["left_child"], me, True))
    return {
        "left": np.asarray(left),
        "right": np.asarray(right),
        "is_leaf": np.asarray(leaf),
        "feature": np.asarray(feature),
        "threshold": np.asarray(threshold, dtype=np.float64),
        "missing_left": np.asarray(missing_left),
        "value": np.asarray(value, dtype=np.float64),
    }


def tree_classes() -> tuple[type, ...]:
    """The scikit-learn classifiers this module converts."""
    from sklearn.ensemble import (  # type: ignore[import-untyped]
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.tree import (  # type: ignore[import-untyped]
        DecisionTreeClassifier,
        ExtraTreeClassifier,
    )

    return (
        DecisionTreeClassifier,
        ExtraTreeClassifier,
        RandomForestClassifier,
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
    )


def is_lightgbm(model: object) -> bool:
    """A LightGBM scikit-learn API classifier (without importing LightGBM)."""
    kind = type(model)
    return kind.__module__.startswith("lightgbm.") and kind.__name__ == "LGBMClassifier"


def read(model: Any) -> Ensemble:
    """The ensemble a fitted tree classifier (scikit-learn or LightGBM) computes."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
    )

    if is_lightgbm(model):
        return _lightgbm(model)
    if isinstance(model, HistGradientBoostingClassifier):
        return _hist_gradient_boosting(model)
    if isinstance(model, GradientBoostingClassifier):
        return _gradient_boosting(model)
    trees = list(model.estimators_) if hasattr(model, "estimators_") else [model]
    return _forest(model, trees)
