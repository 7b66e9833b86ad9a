"""What every explainer shares: the model run, the background, and the link to the scale.

An explainer computes a *margin* per row from the estimator node (a linear score, the sum of
the trees' leaf values) and must know how the graph turns it into the probability it
answers. ``Link`` is that knowledge, found by comparing, on the background rows, the margin
with ONNX Runtime's probabilities: ``sigmoid(margin)`` is the probability (log-odds scale),
the margin is the probability itself (a random forest's mean vote: probability scale), or a
softmax over several margins is (raw scale, one margin per class). A graph that matches none
of them is not explained exactly (the fallback takes it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from medops.core.explain.attributions import Attributions, Method, Scale
from medops.core.explain.graph import sigmoid, softmax
from medops.core.onnx_model import OnnxModel
from medops.errors import FieldError, InvalidInputError

LINK_TOLERANCE = 1e-4  # probability units; float32 graphs differ from float64 by ~1e-7
MAX_BACKGROUND = 1000


@dataclass(frozen=True)
class Link:
    """``value = sign * margins[:, column] + offset`` is the output on ``scale``."""

    column: int
    sign: float
    offset: float
    scale: Scale


def find_link(  # noqa: PLR0911 - one return per link
    margins: np.ndarray, probabilities: np.ndarray, class_index: int
) -> Link | None:
    """The link from estimator margins (n, K) to the graph's probabilities (n, C)."""
    n_margins, n_classes = margins.shape[1], probabilities.shape[1]
    wanted = probabilities[:, class_index]

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return bool(np.all(np.abs(a - b) <= LINK_TOLERANCE))

    if n_margins == n_classes:
        m = margins[:, class_index]
        if close(sigmoid(m), wanted):
            return Link(class_index, 1.0, 0.0, "log_odds")
        if close(m, wanted):
            return Link(class_index, 1.0, 0.0, "probability")
        if n_classes > 1 and close(softmax(margins), probabilities):
            return Link(class_index, 1.0, 0.0, "raw")
        return None
    if n_margins == 1 and n_classes == 2:  # one margin for the second class
        m, sign = margins[:, 0], (1.0 if class_index == 1 else -1.0)
        if close(sigmoid(m), probabilities[:, 1]):
            return Link(0, sign, 0.0, "log_odds")
        if close(m, probabilities[:, 1]):
            return Link(0, sign, 0.0 if class_index == 1 else 1.0, "probability")
    return None


def background_columns(
    model: OnnxModel, background: Mapping[str, np.ndarray] | None, *, limit: int = MAX_BACKGROUND
) -> dict[str, np.ndarray]:
    """The ORT feed of at most ``limit`` background rows (an even, seeded sample)."""
    if background is None:
        msg = "an explanation needs background data (reference rows) to compare with"
        raise InvalidInputError(msg, errors=[FieldError("background", msg)])
    feed = model.feed(background)
    n_rows = len(next(iter(feed.values())))
    if n_rows == 0:
        msg = "the background has no rows"
        raise InvalidInputError(msg, errors=[FieldError("background", msg)])
    if n_rows > limit:
        keep = np.sort(np.random.default_rng(0).choice(n_rows, size=limit, replace=False))
        feed = {name: values[keep] for name, values in feed.items()}
    return feed


class Explainer(ABC):
    """Explains rows of one model: ``explain(columns)`` gives their ``Attributions``."""

    method: Method
    exact: bool
    scale: Scale
    features: tuple[str, ...]
    base_value: float  # the mean output over the background, on ``scale``

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self.features = tuple(model.signature.feature_names)

    def explain(self, columns: Mapping[str, np.ndarray]) -> Attributions:
        """Contributions of each row of ``columns`` (feature name -> values)."""
        return self.explain_feed(self.model.feed(columns))

    @abstractmethod
    def explain_feed(self, feed: dict[str, np.ndarray]) -> Attributions:
        """``explain`` for an ONNX Runtime feed made by ``OnnxModel.feed``."""
