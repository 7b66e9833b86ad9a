"""The drift tests medops runs, one descriptor each: what every other module knows of a test.

A descriptor says which feature kinds a test applies to, what its statistic is (a p-value, a
distance or a change in a rate), the default threshold per kind (``None``: reported, never
judged), whether the statistic has a small-sample noise floor (the binned tests: see
``drift.py``), whether its threshold can be learned from the reference (``learned.py``), its
bound, and how it reads in a report. ``drift.py`` computes the statistics; ``schemas.py``,
``evaluate.py``, ``learned.py`` and ``thresholds.py`` read the facts from here, so adding a test
is one entry here plus its function in ``drift.py``.

Plain data with no numerical library, so that the request and configuration schemas (and the
CLI, which imports them) can use it without importing numpy or scipy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

TestName = Literal["ks", "wasserstein", "psi", "kl", "jensenshannon", "chi2", "missing_rate"]
Kind = Literal["numeric", "categorical"]
Measure = Literal["p-value", "distance", "change"]
AdjustMethod = Literal["holm", "bonferroni", "benjamini-hochberg"]

MIN_SAMPLES: Final = 30  # fewer finite values on either side: "insufficient-data"


@dataclass(frozen=True)
class DriftTest:
    """One drift test: its facts, not its computation."""

    name: TestName
    label: str  # how a report names it
    measure: Measure  # p-value: drifted when below the threshold; else when above it
    defaults: Mapping[Kind, float | None]  # the kinds it applies to, with default thresholds
    noise_floor: bool = False  # binned: judged against max(threshold, 3 x noise floor)
    learnable: bool = False  # its threshold can be learned from chunks of the reference
    at_most_one: bool = False  # the statistic lies in [0, 1], so a threshold above 1 is void
    drifted_when: str = ""

    @property
    def kinds(self) -> tuple[Kind, ...]:
        return tuple(self.defaults)


# In the order results are listed (and stored) for each kind.
DRIFT_TESTS: Final[tuple[DriftTest, ...]] = (
    DriftTest(
        "ks",
        "Kolmogorov-Smirnov",
        "p-value",
        {"numeric": 0.05},
        drifted_when="p < threshold, only while n_eff <= ks_max_n",
    ),
    DriftTest(
        "wasserstein",
        "Wasserstein (in reference std)",
        "distance",
        {"numeric": 0.1},
        learnable=True,
        drifted_when="W1 / std > threshold, only while n_eff > ks_max_n",
    ),
    DriftTest(
        "chi2",
        "chi-square",
        "p-value",
        {"categorical": 0.05},
        drifted_when="p < threshold",
    ),
    DriftTest(
        "psi",
        "population stability index",
        "distance",
        {"numeric": 0.2, "categorical": 0.2},
        noise_floor=True,
        learnable=True,
        drifted_when="PSI > threshold",
    ),
    DriftTest(
        "kl",
        "Kullback-Leibler divergence",
        "distance",
        {"numeric": None},
        noise_floor=True,
        learnable=True,
        drifted_when="reported only",
    ),
    DriftTest(
        "jensenshannon",
        "Jensen-Shannon distance",
        "distance",
        {"numeric": 0.1, "categorical": 0.1},
        noise_floor=True,
        learnable=True,
        at_most_one=True,
        drifted_when="JS distance > threshold",
    ),
    DriftTest(
        "missing_rate",
        "missing-value rate",
        "change",
        {"numeric": 0.05, "categorical": 0.05},
        at_most_one=True,
        drifted_when="abs(rate change) > threshold",
    ),
)

BY_NAME: Final[Mapping[str, DriftTest]] = MappingProxyType({t.name: t for t in DRIFT_TESTS})


def _per_kind(kind: Kind) -> Mapping[str, float | None]:
    return MappingProxyType({t.name: t.defaults[kind] for t in DRIFT_TESTS if kind in t.defaults})


DEFAULTS: Final[Mapping[str, Mapping[str, float | None]]] = MappingProxyType(
    {"numeric": _per_kind("numeric"), "categorical": _per_kind("categorical")}
)
P_VALUE_TESTS: Final = frozenset(t.name for t in DRIFT_TESTS if t.measure == "p-value")
BINNED_TESTS: Final = frozenset(t.name for t in DRIFT_TESTS if t.noise_floor)
AT_MOST_ONE: Final = frozenset(t.name for t in DRIFT_TESTS if t.at_most_one)
LEARNED_TESTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        kind: tuple(t.name for t in DRIFT_TESTS if t.learnable and kind in t.defaults)
        for kind in ("numeric", "categorical")
    }
)
