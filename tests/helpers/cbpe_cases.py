"""Data of the CBPE agreement cases, shared by tests/monitoring/test_cbpe.py and
benchmarks/cbpe_agreement.py (which runs NannyML on the same data and records its answers in
tests/monitoring/data/cbpe_nannyml.json).

Each case: a reference and an analysis period of a binary classifier, ``ROWS`` rows each,
cut into chunks of ``CHUNK`` rows. Outcomes follow ``P(y = 1 | x) = expit(A + B * x)``.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

ROWS: Final = 5000
CHUNK: Final = 500
THRESHOLD: Final = 0.5
A: Final = -0.4
B: Final = 1.6
CASES: Final = (
    "calibrated-shift",
    "overconfident-shift",
    "tied-scores",
    "prevalence-drop",
    "default-chunks",
)
# Cases cut by NannyML's default chunker (a tenth of the rows, rounded down; the remainder a
# chunk of its own) instead of CHUNK rows, on sizes that do not divide by ten.
DEFAULT_CHUNKING: Final = {"default-chunks": (5009, 5004)}

Arrays = tuple[
    npt.NDArray[np.float64], npt.NDArray[np.bool_], npt.NDArray[np.float64], npt.NDArray[np.bool_]
]


def case(name: str) -> Arrays:
    """Reference scores and labels, then analysis scores and labels, of the named case."""
    rng = np.random.default_rng(CASES.index(name) + 11)
    shift = {"calibrated-shift": 0.8, "overconfident-shift": 0.8, "tied-scores": 0.5}.get(
        name, -0.9
    )
    n_ref, n_ana = DEFAULT_CHUNKING.get(name, (ROWS, ROWS))
    ref_x = rng.normal(0.0, 1.0, n_ref)
    # the analysis period drifts gradually, from no shift at its start to all of it at its end
    ana_x = (
        rng.normal(0.0, 1.0, n_ana)
        + shift * np.floor(np.linspace(0, 10, n_ana, endpoint=False)) / 9
    )
    scored: list[npt.NDArray[np.float64]] = []
    labelled: list[npt.NDArray[np.bool_]] = []
    for x in (ref_x, ana_x):
        truth_p = 1.0 / (1.0 + np.exp(-(A + B * x)))
        labels = rng.random(len(x)) < truth_p
        if name == "overconfident-shift":
            scores = 1.0 / (1.0 + np.exp(-2.5 * (A + B * x)))
        elif name == "tied-scores":
            scores = np.round(truth_p, 1)
        else:
            scores = truth_p
        scored.append(scores.astype(np.float64))
        labelled.append(labels.astype(np.bool_))
    return scored[0], labelled[0], scored[1], labelled[1]
