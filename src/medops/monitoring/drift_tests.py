"""The drift tests medops runs, one descriptor each, in one explicit table (``DRIFT_TESTS``).

A descriptor holds the facts every other module needs about a test: the feature kinds it
applies to, what its statistic is, how it is judged (by its p-value, by the statistic as a
distance, or by the absolute change of a rate), its default threshold per kind (``None``:
reported, never judged), whether a noise floor guards small samples, whether a threshold can be
learned from the reference (``learned.py``), the range of a valid threshold, and how the
reports label it. ``drift.py`` computes the statistics (``STATISTICS`` in the test
``tests/monitoring/test_drift_tests.py`` names the scipy reference each one is checked
against); ``evaluate.py``, ``schemas.py``, ``learned.py``, ``thresholds.py`` and the renderers
read this table instead of keeping their own sets of names.

Adding a test: one ``DriftTest`` entry here, its statistic in ``drift.py``, and its scipy
reference check (the descriptor test fails until it has one).

This module imports nothing heavy (no numpy or scipy): the CLI and the schemas read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

FeatureKind = Literal["numeric", "categorical"]
TestName = Literal["ks", "wasserstein", "psi", "kl", "jensenshannon", "chi2", "missing_rate"]
JudgedBy = Literal["p-value", "distance", "absolute-change"]
NoiseFloor = Literal["psi", "kl", "js"]  # which chance-alone expectation guards it (drift.py)
AdjustMethod = Literal["holm", "bonferroni", "benjamini-hochberg"]

MIN_SAMPLES: Final = 30
NOISE_FACTOR: Final = 3.0  # a binned statistic must exceed 3 x its noise floor to count


@dataclass(frozen=True)
class DriftTest:
    """What medops knows about one drift test; see the module docstring."""

    name: TestName
    label: str  # how reports and the CLI name it
    kinds: tuple[FeatureKind, ...]
    statistic: str  # what the statistic is, in words
    judged_by: JudgedBy
    defaults: Mapping[FeatureKind, float | None]  # default threshold per kind
    noise_floor: NoiseFloor | None = None
    learnable: bool = False  # a threshold can be learned from reference chunks
    at_most: float | None = None  # the statistic's upper bound, so a threshold's too
    binned: bool = False  # computed over the reference bins or categories

    @property
    def p_value(self) -> bool:
        """Judged by its p-value: a threshold lies in (0, 1) and can be adjusted."""
        return self.judged_by == "p-value"


def _both(value: float | None) -> Mapping[FeatureKind, float | None]:
    return MappingProxyType({"numeric": value, "categorical": value})


DRIFT_TESTS: Final[tuple[DriftTest, ...]] = (
    DriftTest(
        name="ks",
        label="Kolmogorov-Smirnov",
        kinds=("numeric",),
        statistic="two-sample Kolmogorov-Smirnov distance, with its p-value",
        judged_by="p-value",
        defaults=MappingProxyType({"numeric": 0.05}),
    ),
    DriftTest(
        name="wasserstein",
        label="Wasserstein (in reference std)",
        kinds=("numeric",),
        statistic="Wasserstein-1 distance divided by the reference standard deviation",
        judged_by="distance",
        defaults=MappingProxyType({"numeric": 0.1}),
        learnable=True,
    ),
    DriftTest(
        name="chi2",
        label="chi-square",
        kinds=("categorical",),
        statistic="chi-square test of homogeneity, with its p-value",
        judged_by="p-value",
        defaults=MappingProxyType({"categorical": 0.05}),
    ),
    DriftTest(
        name="psi",
        label="PSI",
        kinds=("numeric", "categorical"),
        statistic="population stability index over smoothed reference bins or categories",
        judged_by="distance",
        defaults=_both(0.2),
        noise_floor="psi",
        learnable=True,
        binned=True,
    ),
    DriftTest(
        name="kl",
        label="KL divergence",
        kinds=("numeric",),
        statistic="KL(current || reference) in nats over smoothed reference bins",
        judged_by="distance",
        defaults=MappingProxyType({"numeric": None}),
        noise_floor="kl",
        learnable=True,
        binned=True,
    ),
    DriftTest(
        name="jensenshannon",
        label="Jensen-Shannon distance",
        kinds=("numeric", "categorical"),
        statistic="Jensen-Shannon distance, base 2, over smoothed bins or categories",
        judged_by="distance",
        defaults=_both(0.1),
        noise_floor="js",
        learnable=True,
        at_most=1.0,
        binned=True,
    ),
    DriftTest(
        name="missing_rate",
        label="missing rate",
        kinds=("numeric", "categorical"),
        statistic="current minus reference share of missing values (two-proportion z-test)",
        judged_by="absolute-change",
        defaults=_both(0.05),
        at_most=1.0,
    ),
)

BY_NAME: Final[Mapping[str, DriftTest]] = MappingProxyType({t.name: t for t in DRIFT_TESTS})
NAMES: Final = frozenset(BY_NAME)
P_VALUE_TESTS: Final = frozenset(t.name for t in DRIFT_TESTS if t.p_value)
BINNED_TESTS: Final = frozenset(t.name for t in DRIFT_TESTS if t.noise_floor is not None)


def _defaults(kind: FeatureKind) -> Mapping[str, float | None]:
    return MappingProxyType({t.name: t.defaults[kind] for t in DRIFT_TESTS if kind in t.kinds})


# Default thresholds per feature kind, in the order drift.py returns the results.
DEFAULTS: Final[Mapping[str, Mapping[str, float | None]]] = MappingProxyType(
    {"numeric": _defaults("numeric"), "categorical": _defaults("categorical")}
)
LEARNED_TESTS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        kind: tuple(t.name for t in DRIFT_TESTS if t.learnable and kind in t.kinds)
        for kind in ("numeric", "categorical")
    }
)


def label_of(test: str) -> str:
    """How reports name ``test`` (its own name when it is not a known test)."""
    found = BY_NAME.get(test)
    return found.label if found is not None else test
