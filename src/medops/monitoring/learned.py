"""Drift thresholds learned from the reference itself: mean + 3 sigma across reference chunks.

This is NannyML's ``StandardDeviationThreshold`` applied to the per-feature drift tests. The
reference rows, in the order the evaluation data holds them, are cut into ``CHUNKS`` (10)
consecutive chunks (``numpy.array_split``). Each chunk is tested against the whole reference
with drift.py's own ``numeric_drift`` / ``categorical_drift``, and the learned threshold of a
test is ``mean + SIGMAS * std`` (``SIGMAS = 3``, ``numpy.std`` with ``ddof=0``) of its ten
statistics: what the reference's own variation gives, plus three standard deviations.

Learned tests are the distances, which drift.py judges by ``statistic > threshold``: numeric
``wasserstein``, ``psi``, ``kl`` and ``jensenshannon``, categorical ``psi`` and
``jensenshannon``. Not learned:

- ``ks`` and ``chi2``: drift.py judges them by their p-value (``p < threshold``), so a
  threshold on their statistic has nowhere to go; their p-values already account for the
  sample sizes.
- ``missing_rate``: its threshold is a data-quality rule (an absolute change in the share of
  missing values), and a reference without missing values would learn 0.

Skipped, so that the documented default applies instead:

- a feature with a chunk of fewer than ``MIN_CHUNK_ROWS`` (30) values (finite numbers, or
  present categories): the reference needs about 300 rows with values;
- a test whose learned value is not a positive finite number (a constant feature learns 0, and
  a threshold of 0 would call any difference drift).

Known weakness: a chunk is a tenth of the reference, so a learned threshold is what chance
gives for windows of about that size. Windows much larger than a chunk vary less, and the
threshold is loose for them; smaller ones vary more, and it is tight (for PSI, KL and
Jensen-Shannon the noise floor of drift.py still guards small windows). Each chunk is also part
of the reference it is compared with, which shrinks its statistics a little (NannyML does the
same). A reference that itself moves over its rows learns wide thresholds: what varied during
validation is not an alarm.

How a run applies them (the ``learned`` mode of a deployment's monitoring configuration) is in
``thresholds.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from medops.monitoring.drift import (
    CategoricalReference,
    DriftResult,
    NumericReference,
    categorical_drift,
    numeric_drift,
)
from medops.monitoring.drift_tests import LEARNED_TESTS

CHUNKS: Final = 10
SIGMAS: Final = 3.0
MIN_CHUNK_ROWS: Final = 30

Values = Sequence[Any] | npt.NDArray[Any]


def learn(
    reference: NumericReference | CategoricalReference,
    values: Values,
    *,
    chunks: int = CHUNKS,
    sigmas: float = SIGMAS,
    min_rows: int = MIN_CHUNK_ROWS,
) -> dict[str, float]:
    """Learned upper thresholds of one feature, test -> ``mean + sigmas * std`` of the chunk
    statistics; empty when a chunk has fewer than ``min_rows`` values.

    ``values`` are the raw reference values the ``reference`` was fitted on, in row order."""
    bounds = np.array_split(np.arange(len(values)), chunks)
    if isinstance(reference, NumericReference):
        numbers = np.asarray(values, dtype=np.float64).ravel()
        runs = [numeric_drift(reference, numbers[b], min_samples=1) for b in bounds if b.size]
        kind = "numeric"
    else:
        items = list(values)
        runs = [
            categorical_drift(reference, items[b[0] : b[-1] + 1], min_samples=1)
            for b in bounds
            if b.size
        ]
        kind = "categorical"
    if len(runs) < chunks or any(_values_in(run) < min_rows for run in runs):
        return {}
    learned: dict[str, float] = {}
    for test in LEARNED_TESTS[kind]:
        statistics = [_statistic(run, test) for run in runs]
        if any(s is None for s in statistics):
            continue
        spread = np.asarray(statistics, dtype=np.float64)
        upper = float(spread.mean() + sigmas * spread.std())
        if math.isfinite(upper) and upper > 0.0:
            learned[test] = upper
    return learned


def learn_all(
    references: Mapping[str, NumericReference | CategoricalReference],
    columns: Mapping[str, Values],
) -> dict[str, dict[str, float]]:
    """Learned thresholds of every feature that has some (see ``learn``)."""
    learned = {name: learn(ref, columns[name]) for name, ref in references.items()}
    return {name: tests for name, tests in learned.items() if tests}


def _values_in(run: list[DriftResult]) -> int:
    """Values of the chunk the statistics used (finite numbers or present categories)."""
    return int(run[0].parameters["current_n"])


def _statistic(run: list[DriftResult], test: str) -> float | None:
    return next(r.statistic for r in run if r.test == test)
