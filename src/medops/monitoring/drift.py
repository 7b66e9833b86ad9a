"""Drift statistics between a stored reference profile and a current sample.

The reference side is reduced once to a profile (``NumericReference``,
``CategoricalReference``) that serialises to JSON; each check of a current sample then costs one
sort of the current values plus vectorized passes. Every statistic equals its scipy reference
on the same data (checked on randomized inputs in ``tests/monitoring/test_drift_stats.py``).

Statistics, per numeric feature (NaN is missing; +-inf is counted as non-finite and left out;
the statistics use the finite values only):

- ``ks``: two-sample Kolmogorov-Smirnov statistic and p-value, equal to
  ``scipy.stats.ks_2samp(reference, current)`` (two-sided, ``method="auto"``: exact when both
  samples have at most 10,000 values, else the asymptotic ``kstwo`` distribution with
  ``n = round(n_ref * n_cur / (n_ref + n_cur))``; where scipy's exact computation fails it
  falls back to asymptotic as scipy does, which scipy warns about and ``parameters["method"]``
  records as ``"asymp (exact failed)"``). For large ``n`` the two slow branches of scipy's
  ``kstwo.sf`` are computed faster here (same branch rule, same value to ~1e-13).
- ``wasserstein``: the statistic is the Wasserstein-1 distance (equal to
  ``scipy.stats.wasserstein_distance``) divided by the reference standard deviation with
  ``ddof=0``; a zero-variance reference gives ``inf`` for a positive distance, else 0. The raw
  distance is in ``parameters["distance"]``.
- ``psi``, ``kl``, ``jensenshannon``: over the reference bins (below), on smoothed
  proportions. PSI is ``sum((c - r) * ln(c / r))``; KL is ``KL(current || reference)`` in nats,
  equal to ``scipy.stats.entropy(c, r)``; JS is the Jensen-Shannon *distance* in base 2 (so in
  [0, 1]), equal to ``scipy.spatial.distance.jensenshannon(r, c, base=2)``.

Bins come from the reference only: ``bins - 1`` inner edges at the reference quantiles
``k / bins`` (``numpy.quantile(method="inverted_cdf")``, so every edge is a reference value),
deduplicated, without an edge equal to the reference minimum, and outer edges -inf and +inf.
A bin holds ``lower <= x < upper``; every reference bin therefore holds at least one reference
value and every current value falls in some bin.

Smoothing (``EPSILON = 1e-4``): for ``k`` bins or categories with counts ``n_i`` out of ``n``,
the proportions used are ``(n_i / n + epsilon) / (1 + k * epsilon)`` on both sides: additive,
then renormalised to sum to 1, so an empty bin costs a finite amount.

Per categorical feature (``None`` and float NaN are missing; categories are compared by
``str(value)``): ``chi2`` is the chi-square test of homogeneity on the 2 x k table of reference
and current counts over the union of categories, equal to
``scipy.stats.chi2_contingency(table, correction=False)`` (one category: statistic 0, p 1);
``psi`` and ``jensenshannon`` as above over the same categories; categories absent from the
reference are listed in ``parameters["unseen_categories"]``.

Missing values (``missing_rate``, both kinds): the statistic is ``current rate - reference
rate`` over all rows; the p-value is the pooled two-proportion z-test (two-sided), equal to the
chi-square test without continuity correction on the 2 x 2 table (p = 1 when both rates are 0
or both are 1). The verdict uses the absolute change only.

Noise floor (PSI, KL, Jensen-Shannon): with small samples these binned statistics are large
by chance alone. Each such result records its ``noise_floor``, the value expected between two
samples of one distribution (``s = (k - 1) (1/n_ref + 1/n_cur)`` for ``k`` bins; PSI ~ s,
KL ~ s/2, JS distance ~ sqrt(s / (8 ln 2))), and the verdict uses
``effective_threshold = max(threshold, 3 * noise_floor)``: a small window is judged drifted
only when the statistic is well above what chance gives (KS and chi-square, whose p-values
account for the sample sizes, judge as they are). With 10 bins the JS threshold of 0.1 is
the effective one from about 6,000 effective rows, PSI's 0.2 from about 270.

Insufficient data: a distribution test whose reference or current sample has fewer than
``min_samples`` (default 30) finite values, or a missing-rate test with fewer rows, gets
``status="insufficient-data"`` and ``drifted=False``; its statistic is still reported when it
can be computed (``None`` when a sample is empty).

Default thresholds (``DEFAULTS``, from the descriptors of ``drift_tests.py``;
``threshold=None`` means reported, never judged):

| kind        | test          | threshold | drifted when                                  |
|-------------|---------------|-----------|-----------------------------------------------|
| numeric     | ks            | 0.05      | p < threshold, only while n_eff <= ks_max_n   |
| numeric     | wasserstein   | 0.1       | W1 / std > threshold, only while n_eff > ks_max_n |
| numeric     | psi           | 0.2       | PSI > threshold                               |
| numeric     | kl            | None      | reported only                                 |
| numeric     | jensenshannon | 0.1       | JS distance > threshold                       |
| numeric     | missing_rate  | 0.05      | abs(rate change) > threshold                  |
| categorical | chi2          | 0.05      | p < threshold                                 |
| categorical | psi           | 0.2       | PSI > threshold                               |
| categorical | jensenshannon | 0.1       | JS distance > threshold                       |
| categorical | missing_rate  | 0.05      | abs(rate change) > threshold                  |

``n_eff = n_ref * n_cur / (n_ref + n_cur)`` and ``ks_max_n`` defaults to 1,000: KS and
Wasserstein are always both computed and returned, and exactly one of them carries a threshold.
At ``n_eff = 1000`` the 5% critical KS distance (about 0.043) is what a 0.1-std mean shift
produces, the Wasserstein threshold; with larger samples KS flags ever smaller, clinically
meaningless shifts, so the effect size judges instead.

How this differs from Evidently's defaults: Evidently (legacy ``stattests/registry.py``) picks
*one* test per column from the reference row count alone (KS or chi-square up to 1,000
reference rows, Wasserstein-normalised or Jensen-Shannon above) and reports only the chosen one;
its binned tests take edges from reference and current together
(``np.histogram_bin_edges(concat(reference, current), "sturges")`` in
``stattests/utils.get_binned_data``), so the bins move with every current window. Here the set
of tests is fixed and every result is returned with its threshold (or ``None``) and the
parameters it used, and bins are fitted on the reference only and stored with it.

Multiple testing: ``adjust`` gives Holm, Bonferroni or Benjamini-Hochberg adjusted p-values
(BH equal to ``scipy.stats.false_discovery_control(method="bh")``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from scipy import special  # type: ignore[import-untyped]

from medops.errors import InvalidInputError
from medops.monitoring.drift_tests import (
    BINNED_TESTS,
    BY_NAME,
    DEFAULTS,
    MIN_SAMPLES,
    NOISE_FACTOR,
    AdjustMethod,
    TestName,
)
from medops.monitoring.kolmogorov import ks_pvalue

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Status = Literal["ok", "insufficient-data"]

EPSILON: Final = 1e-4
DEFAULT_BINS: Final = 10
KS_MAX_N: Final = 1_000.0
_CHUNK: Final = 1 << 16  # merged values per step of the ECDF walk
_MAYBE_MISSING: Final = (type(None), float, np.floating)  # the types _is_missing can accept


# --- reference profiles -------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NumericReference:
    """The stored reference side of a numeric feature; arrays are read-only."""

    values: FloatArray  # finite reference values, sorted
    edges: FloatArray  # bin edges, -inf first and +inf last
    bin_counts: IntArray  # reference values per bin
    mean: float
    std: float  # ddof=0; NaN when there are no finite values
    count: int  # rows seen, missing and non-finite included
    missing: int  # NaN rows
    nonfinite: int  # +-inf rows
    bins: int  # bins asked for; duplicate quantiles can leave fewer

    @property
    def missing_rate(self) -> float:
        """Share of reference rows that were NaN (0 for an empty reference)."""
        return self.missing / self.count if self.count else 0.0

    @classmethod
    def fit(cls, values: npt.ArrayLike, bins: int = DEFAULT_BINS) -> NumericReference:
        """Profile ``values``: sort the finite ones, fit quantile bins, count the rest."""
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
            raise InvalidInputError(f"bins must be a positive integer, not {bins!r}")
        data = np.asarray(values, dtype=np.float64).ravel()
        missing = int(np.count_nonzero(np.isnan(data)))
        ordered = _finite_sorted(data)
        inner = _quantile_edges(ordered, bins)
        empty = ordered.size == 0
        with np.errstate(over="ignore"):  # values beyond +-1e154: the std overflows to inf
            mean = math.nan if empty else float(ordered.mean())
            std = math.nan if empty else float(ordered.std())
        return cls(
            values=_frozen(ordered),
            edges=_frozen(np.concatenate(([-np.inf], inner, [np.inf]))),
            bin_counts=_frozen(_bin_counts(ordered, inner)),
            mean=mean,
            std=std,
            count=int(data.size),
            missing=missing,
            nonfinite=int(data.size) - int(ordered.size) - missing,
            bins=bins,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: floats as numbers, non-finite floats as "inf", "-inf", "nan"."""
        return {
            "kind": "numeric",
            "bins": self.bins,
            "count": self.count,
            "missing": self.missing,
            "nonfinite": self.nonfinite,
            "mean": _encode(self.mean),
            "std": _encode(self.std),
            "edges": [_encode(edge) for edge in self.edges.tolist()],
            "bin_counts": self.bin_counts.tolist(),
            "values": self.values.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericReference:
        """Rebuild a profile from ``to_dict`` output, exactly."""
        try:
            if data["kind"] != "numeric":
                raise ValueError(f"kind is {data['kind']!r}")
            return cls(
                values=_frozen(np.asarray(data["values"], dtype=np.float64)),
                edges=_frozen(np.asarray([float(e) for e in data["edges"]], dtype=np.float64)),
                bin_counts=_frozen(np.asarray(data["bin_counts"], dtype=np.int64)),
                mean=float(data["mean"]),
                std=float(data["std"]),
                count=int(data["count"]),
                missing=int(data["missing"]),
                nonfinite=int(data["nonfinite"]),
                bins=int(data["bins"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a numeric reference profile: {exc}") from exc


@dataclass(frozen=True)
class CategoricalReference:
    """The stored reference side of a categorical feature."""

    counts: Mapping[str, int]  # rows per category, keyed by str(value)
    count: int  # rows seen, missing included
    missing: int  # None or NaN rows

    @property
    def missing_rate(self) -> float:
        """Share of reference rows that were missing (0 for an empty reference)."""
        return self.missing / self.count if self.count else 0.0

    @classmethod
    def fit(cls, values: Sequence[object] | npt.NDArray[Any]) -> CategoricalReference:
        """Count the categories of ``values``; None and NaN count as missing."""
        counts, missing, count = _count_categories(values)
        return cls(counts=dict(sorted(counts.items())), count=count, missing=missing)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "kind": "categorical",
            "count": self.count,
            "missing": self.missing,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalReference:
        """Rebuild a profile from ``to_dict`` output, exactly."""
        try:
            if data["kind"] != "categorical":
                raise ValueError(f"kind is {data['kind']!r}")
            counts = {str(key): int(value) for key, value in data["counts"].items()}
            return cls(counts=counts, count=int(data["count"]), missing=int(data["missing"]))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a categorical reference profile: {exc}") from exc


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftResult:
    """One test of one feature: its statistic, p-value, threshold, verdict and inputs."""

    feature: str
    test: TestName
    statistic: float | None  # None when a sample is empty
    p_value: float | None  # None for tests without one
    threshold: float | None  # None: reported, not judged
    drifted: bool
    status: Status
    parameters: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (non-finite floats as strings)."""
        return {
            "feature": self.feature,
            "test": self.test,
            "statistic": _json_safe(self.statistic),
            "p_value": _json_safe(self.p_value),
            "threshold": _json_safe(self.threshold),
            "drifted": self.drifted,
            "status": self.status,
            "parameters": _json_safe(dict(self.parameters)),
        }


def numeric_drift(
    reference: NumericReference,
    current: npt.ArrayLike,
    thresholds: Mapping[str, float | None] | None = None,
    *,
    feature: str = "",
    min_samples: int = MIN_SAMPLES,
    ks_max_n: float = KS_MAX_N,
    epsilon: float = EPSILON,
) -> list[DriftResult]:
    """KS, Wasserstein, PSI, KL, Jensen-Shannon and missing rate of ``current``."""
    limits = _limits("numeric", thresholds)
    data = np.asarray(current, dtype=np.float64).ravel()
    missing = int(np.count_nonzero(np.isnan(data)))
    cur = _finite_sorted(data)
    n_ref, n_cur = int(reference.values.size), int(cur.size)
    counts = {
        "reference_n": n_ref,
        "current_n": n_cur,
        "current_missing": missing,
        "current_nonfinite": int(data.size) - n_cur - missing,
    }
    status = _status(min(n_ref, n_cur), min_samples)
    n_eff = n_ref * n_cur / (n_ref + n_cur) if n_ref and n_cur else 0.0
    judge = "ks" if n_eff <= ks_max_n else "wasserstein"
    rule: dict[str, Any] = {"judged_by": judge, "effective_n": n_eff, "ks_max_n": ks_max_n}
    ks_params: dict[str, Any] = {"method": None} | rule | counts
    w_params: dict[str, Any] = rule | {"distance": None, "reference_std": reference.std}
    w_params |= {"normalization": "reference std, ddof=0"} | counts
    binned: dict[str, Any] = {"edges": reference.edges.tolist(), "epsilon": epsilon} | counts
    ks: float | None = None
    p_value: float | None = None
    wasserstein: float | None = None
    psi: float | None = None
    kl: float | None = None
    js: float | None = None
    if n_ref and n_cur:
        ks_raw, distance = _ecdf_distances(reference.values, cur)
        ks, p_value, ks_params["method"] = ks_pvalue(ks_raw, n_ref, n_cur)
        w_params["distance"] = distance
        wasserstein = _normalised(distance, reference.std)
        cur_counts = _bin_counts(cur, reference.edges[1:-1])
        ref_p, cur_p = _smoothed(reference.bin_counts, epsilon), _smoothed(cur_counts, epsilon)
        psi, kl = _psi(ref_p, cur_p), _kl_divergence(cur_p, ref_p)
        js = _js_distance(ref_p, cur_p)
        binned["reference_counts"] = reference.bin_counts.tolist()
        binned["current_counts"] = cur_counts.tolist()
    ks_limit = limits["ks"] if judge == "ks" else None
    w_limit = limits["wasserstein"] if judge == "wasserstein" else None
    return [
        _result(feature, "ks", ks, p_value, ks_limit, status, ks_params),
        _result(feature, "wasserstein", wasserstein, None, w_limit, status, w_params),
        _result(feature, "psi", psi, None, limits["psi"], status, binned),
        _result(feature, "kl", kl, None, limits["kl"], status, binned),
        _result(feature, "jensenshannon", js, None, limits["jensenshannon"], status, binned),
        _missing_result(
            feature,
            (reference.missing, reference.count),
            (missing, int(data.size)),
            limits["missing_rate"],
            min_samples,
        ),
    ]


def categorical_drift(
    reference: CategoricalReference,
    current: Sequence[object] | npt.NDArray[Any],
    thresholds: Mapping[str, float | None] | None = None,
    *,
    feature: str = "",
    min_samples: int = MIN_SAMPLES,
    epsilon: float = EPSILON,
) -> list[DriftResult]:
    """Chi-square, PSI, Jensen-Shannon and missing rate of ``current`` against ``reference``."""
    limits = _limits("categorical", thresholds)
    cur_counts, missing, rows = _count_categories(current)
    unseen = sorted(set(cur_counts) - set(reference.counts))
    categories = [*reference.counts, *unseen]
    table = np.array(
        [
            [reference.counts.get(c, 0) for c in categories],
            [cur_counts.get(c, 0) for c in categories],
        ],
        dtype=np.int64,
    ).reshape(2, len(categories))
    n_ref, n_cur = int(table[0].sum()), int(table[1].sum())
    status = _status(min(n_ref, n_cur), min_samples)
    parameters = {
        "categories": categories,
        "unseen_categories": unseen,
        "reference_counts": table[0].tolist(),
        "current_counts": table[1].tolist(),
        "reference_n": n_ref,
        "current_n": n_cur,
        "current_missing": missing,
    }
    chi2: float | None = None
    p_value: float | None = None
    psi: float | None = None
    js: float | None = None
    if n_ref and n_cur:
        if len(categories) < 2:
            chi2, p_value = 0.0, 1.0
        else:
            chi2, p_value = _chi2_homogeneity(table)
        ref_p, cur_p = _smoothed(table[0], epsilon), _smoothed(table[1], epsilon)
        psi = _psi(ref_p, cur_p)
        js = _js_distance(ref_p, cur_p)
    smoothed = parameters | {"epsilon": epsilon}
    return [
        _result(feature, "chi2", chi2, p_value, limits["chi2"], status, parameters),
        _result(feature, "psi", psi, None, limits["psi"], status, smoothed),
        _result(feature, "jensenshannon", js, None, limits["jensenshannon"], status, smoothed),
        _missing_result(
            feature,
            (reference.missing, reference.count),
            (missing, rows),
            limits["missing_rate"],
            min_samples,
        ),
    ]


def adjust(p_values: npt.ArrayLike, method: AdjustMethod = "holm") -> FloatArray:
    """Adjusted p-values in the input order (Holm, Bonferroni or Benjamini-Hochberg)."""
    ps = np.asarray(p_values, dtype=np.float64)
    if ps.ndim != 1 or not bool(np.all((ps >= 0.0) & (ps <= 1.0))):
        raise InvalidInputError("p_values must be a flat sequence of numbers in [0, 1]")
    m = ps.size
    if method == "bonferroni":
        return np.minimum(ps * m, 1.0)
    order = np.argsort(ps)
    ranked = ps[order]
    if method == "holm":
        ranked = np.maximum.accumulate(ranked * (m - np.arange(m)))
    elif method == "benjamini-hochberg":
        ranked = ranked * (m / np.arange(1, m + 1, dtype=np.float64))
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    else:
        raise InvalidInputError(f"unknown adjustment method {method!r}")
    adjusted = np.empty_like(ranked)
    adjusted[order] = ranked
    return np.clip(adjusted, 0.0, 1.0)


# --- statistics ---------------------------------------------------------------------------


def _ecdf_distances(ref: FloatArray, cur: FloatArray) -> tuple[float, float]:
    """KS statistic (before scipy's exact-mode rounding) and Wasserstein-1 of sorted samples.

    Both come from the two empirical CDFs on the merged sample: the counts of reference and
    current values up to each merged value, divided by the sample sizes, as scipy computes
    them (``searchsorted(sample, merged, "right") / n``). Counts are taken at the last of
    equal values, the only one that is followed by a step; the merged sample is walked in
    chunks, so the work arrays stay small whatever the sample sizes.
    """
    size = ref.size + cur.size
    merged = np.concatenate((ref, cur))
    merged.sort(kind="stable")  # two sorted runs: one linear merge
    from_ref = np.zeros(size, dtype=bool)  # where the reference values land in the merge
    from_ref[np.arange(ref.size) + np.searchsorted(cur, ref, side="left")] = True
    rank = np.arange(1, min(size, _CHUNK) + 1)
    above, below, distance, ref_seen = 0.0, 0.0, 0.0, 0
    for start in range(0, size, _CHUNK):
        ref_le = np.cumsum(from_ref[start : start + _CHUNK])
        ref_le += ref_seen
        ref_seen = int(ref_le[-1])
        gaps = ref_le / ref.size
        gaps -= (rank[: ref_le.size] + start - ref_le) / cur.size
        steps = np.diff(merged[start : start + _CHUNK + 1])  # the last value has no step
        head = gaps[: steps.size]
        np.copyto(head, 0.0, where=steps == 0.0)  # not the last of equal values
        above, below = max(above, float(gaps.max())), min(below, float(gaps.min()))
        np.abs(head, out=head)
        head *= steps  # not np.vecdot: BLAS threads would fight other processes for the cores
        distance += float(head.sum())
    return max(above, min(-below, 1.0)), distance


def _normalised(distance: float, std: float) -> float:
    if std > 0.0:
        return distance / std
    return math.inf if distance > 0.0 else 0.0


def _smoothed(counts: IntArray, epsilon: float) -> FloatArray:
    """``(count / n + epsilon) / (1 + k * epsilon)`` for each of the ``k`` cells."""
    share: FloatArray = (counts / counts.sum() + epsilon) / (1.0 + counts.size * epsilon)
    return share


def _psi(ref_p: FloatArray, cur_p: FloatArray) -> float:
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


# The three below compute what scipy.stats does, step for step, without importing
# scipy.stats (about 50 MB of a monitoring process, which needs nothing else from it).


def _kl_divergence(p: FloatArray, q: FloatArray) -> float:
    """``KL(p || q)`` in nats, as ``scipy.stats.entropy(p, q)``: both normalised first."""
    return float(np.sum(special.rel_entr(p / np.sum(p), q / np.sum(q))))


def _js_distance(p: FloatArray, q: FloatArray) -> float:
    """Base-2 Jensen-Shannon distance, as ``scipy.spatial.distance.jensenshannon``."""
    p, q = p / np.sum(p), q / np.sum(q)
    m = (p + q) / 2.0
    divergence = np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))
    return float(np.sqrt(divergence / np.log(2.0) / 2.0))


def _chi2_homogeneity(table: IntArray) -> tuple[float, float]:
    """Pearson chi-square and p-value of a 2 x k table (k >= 2), as
    ``scipy.stats.chi2_contingency(table, correction=False)``."""
    observed = table.astype(np.float64)
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True)
    expected /= observed.sum()
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return statistic, float(special.chdtrc(table.shape[1] - 1, statistic))


def _two_proportion_test(ref: tuple[int, int], cur: tuple[int, int]) -> tuple[float, float]:
    """Pooled two-sided z-test of equal missing rates: (z, p)."""
    (x1, n1), (x2, n2) = ref, cur
    pooled = (x1 + x2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    if variance <= 0.0:
        return 0.0, 1.0
    z = (x2 / n2 - x1 / n1) / math.sqrt(variance)
    return z, float(2.0 * special.ndtr(-abs(z)))  # scipy's norm.sf(|z|)


def _missing_result(
    feature: str,
    ref: tuple[int, int],
    cur: tuple[int, int],
    threshold: float | None,
    min_samples: int,
) -> DriftResult:
    """``missing_rate`` from (missing, rows) of each side."""
    status = _status(min(ref[1], cur[1]), min_samples)
    parameters: dict[str, Any] = {"reference_rows": ref[1], "current_rows": cur[1]}
    parameters |= {"reference_missing": ref[0], "current_missing": cur[0]}
    if not (ref[1] and cur[1]):
        return _result(feature, "missing_rate", None, None, threshold, status, parameters)
    ref_rate, cur_rate = ref[0] / ref[1], cur[0] / cur[1]
    z, p_value = _two_proportion_test(ref, cur)
    parameters |= {"reference_rate": ref_rate, "current_rate": cur_rate, "z": z}
    change = cur_rate - ref_rate
    return _result(feature, "missing_rate", change, p_value, threshold, status, parameters)


def _result(
    feature: str,
    test: TestName,
    statistic: float | None,
    p_value: float | None,
    threshold: float | None,
    status: Status,
    parameters: Mapping[str, Any],
) -> DriftResult:
    drifted = False
    limit = threshold
    if test in BINNED_TESTS and threshold is not None and statistic is not None:
        floor = _noise_floor(test, parameters)
        limit = max(threshold, NOISE_FACTOR * floor)  # above what chance alone gives
        parameters = {**parameters, "noise_floor": floor, "effective_threshold": limit}
    if status == "ok" and limit is not None and statistic is not None:
        judged_by = BY_NAME[test].judged_by
        if judged_by == "p-value":
            drifted = p_value is not None and p_value < limit
        elif judged_by == "absolute-change":
            drifted = abs(statistic) > limit
        else:
            drifted = statistic > limit
    return DriftResult(feature, test, statistic, p_value, threshold, drifted, status, parameters)


def _noise_floor(test: str, parameters: Mapping[str, Any]) -> float:
    """The value ``test`` takes by chance alone between two samples of one distribution
    (large-sample expectation): with ``k`` bins and ``s = (k - 1) (1/n_ref + 1/n_cur)``,
    PSI ~ s, KL ~ s / 2 and the base-2 Jensen-Shannon distance ~ sqrt(s / (8 ln 2))."""
    k = len(parameters.get("reference_counts") or ()) or len(parameters.get("edges", ())) - 1
    n_ref, n_cur = int(parameters.get("reference_n", 0)), int(parameters.get("current_n", 0))
    if k < 2 or not n_ref or not n_cur:
        return 0.0
    spread = (k - 1) * (1 / n_ref + 1 / n_cur)
    floor = BY_NAME[test].noise_floor
    if floor == "psi":
        return spread
    if floor == "kl":
        return spread / 2
    return math.sqrt(spread / (8 * math.log(2)))


# --- helpers ------------------------------------------------------------------------------


def _finite_sorted(data: FloatArray) -> FloatArray:
    """The finite values of ``data``, sorted, in one new array."""
    finite = np.isfinite(data)
    values = data.copy() if finite.all() else data[finite]
    values.sort()
    return values


def _quantile_edges(ordered: FloatArray, bins: int) -> FloatArray:
    """Inner edges: distinct reference quantiles ``k / bins`` above the minimum."""
    if ordered.size == 0 or bins == 1:
        return np.empty(0, dtype=np.float64)
    probs = np.arange(1, bins, dtype=np.float64) / bins
    edges: FloatArray = np.unique(np.quantile(ordered, probs, method="inverted_cdf"))
    above_minimum: FloatArray = edges[edges > ordered[0]]
    return above_minimum


def _bin_counts(ordered: FloatArray, inner: FloatArray) -> IntArray:
    """Values of the sorted sample in each bin ``[edge_i, edge_i+1)``."""
    positions = np.searchsorted(ordered, inner, side="left")
    return np.diff(np.concatenate(([0], positions, [ordered.size]))).astype(np.int64)


def _count_categories(
    values: Sequence[object] | npt.NDArray[Any],
) -> tuple[dict[str, int], int, int]:
    """(rows per ``str(value)``, missing rows, all rows)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "U":
        # Text arrays hold neither None nor NaN: numpy counts them, no Python object per row.
        keys, counts = np.unique(values.ravel(), return_counts=True)
        return dict(zip(keys.tolist(), counts.tolist(), strict=True)), 0, int(values.size)
    items = values.ravel().tolist() if isinstance(values, np.ndarray) else list(values)
    if not any(issubclass(kind, _MAYBE_MISSING) for kind in set(map(type, items))):
        return dict(Counter(map(str, items))), 0, len(items)  # no row can be missing
    present = [item for item in items if not _is_missing(item)]
    return dict(Counter(str(item) for item in present)), len(items) - len(present), len(items)


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _limits(kind: str, thresholds: Mapping[str, float | None] | None) -> dict[str, float | None]:
    limits = dict(DEFAULTS[kind])
    for test, value in (thresholds or {}).items():
        if test not in limits:
            raise InvalidInputError(f"{test!r} is not a {kind} drift test: {sorted(limits)}")
        if value is not None and not value >= 0.0:
            raise InvalidInputError(f"threshold of {test!r} must be >= 0, not {value!r}")
        limits[test] = value
    return limits


def _status(n: int, min_samples: int) -> Status:
    return "ok" if n >= min_samples else "insufficient-data"


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.setflags(write=False)
    return array


def _encode(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return _encode(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value
