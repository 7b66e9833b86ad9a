"""What an explainer answers: per-row feature contributions that add up to the model output.

``Attributions`` is frozen data: the features in signature order (a one-hot group counts as
its one input feature), a contribution per row and feature, the base value (the mean model
output over the background), and the model output itself, all on one ``scale``. Building one
checks additivity, ``base + sum(contributions) == output`` within ``tolerance`` on every row,
so no answer that breaks it can leave the explainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from medops.errors import ExplanationError

Scale = Literal["log_odds", "probability", "raw"]
Method = Literal["linear", "tree_shap", "sampling_shapley"]

# |base + sum(values) - output| allowed, relative to max(1, |output|): the sums run in
# float64 over at most a few hundred thousand terms.
ADDITIVITY_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Contribution:
    """One feature's share of one row's output: positive pushes the output up."""

    feature: str
    contribution: float

    @property
    def direction(self) -> Literal["increases", "decreases", "none"]:
        """Whether the feature raises, lowers or leaves the output."""
        if self.contribution > 0:
            return "increases"
        return "decreases" if self.contribution < 0 else "none"


@dataclass(frozen=True, eq=False)
class Attributions:
    """Feature contributions of ``n_rows`` rows; ``values[r].sum() + base_values[r] ==
    outputs[r]`` (checked when built, within ``tolerance``)."""

    features: tuple[str, ...]
    values: np.ndarray  # (n_rows, n_features) float64
    base_values: np.ndarray  # (n_rows,)
    outputs: np.ndarray  # (n_rows,) the model output on ``scale``
    scale: Scale
    method: Method
    exact: bool
    error_estimate: float | None = None  # approximate methods: max standard error
    tolerance: float = ADDITIVITY_TOLERANCE

    def __post_init__(self) -> None:
        n_rows = self.outputs.shape[0]
        if self.values.shape != (n_rows, len(self.features)) or self.base_values.shape != (n_rows,):
            msg = (
                f"attributions of shape {self.values.shape} and base {self.base_values.shape} "
                f"do not fit {n_rows} rows of {len(self.features)} features"
            )
            raise ExplanationError(msg)
        gap = self.additivity_gap()
        if not gap <= self.tolerance:  # also refuses NaN
            msg = f"contributions do not add up to the model output (gap {gap:.3g})"
            raise ExplanationError(msg)

    @property
    def n_rows(self) -> int:
        """Number of explained rows."""
        return int(self.outputs.shape[0])

    def additivity_gap(self) -> float:
        """max over rows of |base + sum(values) - output| / max(1, |output|)."""
        if self.n_rows == 0:
            return 0.0
        total = self.base_values + self.values.sum(axis=1)
        scale = np.maximum(1.0, np.abs(self.outputs))
        return float(np.max(np.abs(total - self.outputs) / scale))

    def top(self, k: int = 5, row: int = 0) -> list[Contribution]:
        """The ``k`` largest contributions of ``row`` by magnitude (ties: signature order)."""
        values = self.values[row]
        order = np.argsort(-np.abs(values), kind="stable")[:k]
        return [Contribution(self.features[i], float(values[i])) for i in order]

    def row(self, row: int) -> dict[str, float]:
        """``row``'s contributions keyed by feature, in signature order."""
        return {f: float(v) for f, v in zip(self.features, self.values[row], strict=True)}
