"""The paired tests of challenger against champion, each against a reference: a direct
O(m*n) implementation of DeLong's formulas, scipy, and McNemar's published worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats  # type: ignore[import-untyped]
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

from medops.retraining.stats import (
    auroc,
    brier,
    delong,
    mcnemar,
    paired_bootstrap,
    sensitivity_at,
    specificity_at,
)


def _delong_reference(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """DeLong et al. (1988) as written: psi kernel, structural components V10 and V01, their
    sample covariances S10 and S01, z of the difference. Returns (auc_a, auc_b, p)."""
    pos, neg = y == 1, y == 0

    def psi(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        kernel: np.ndarray = (x[:, None] > z[None, :]) + 0.5 * (x[:, None] == z[None, :])
        return kernel

    v10, v01, aucs = [], [], []
    for s in (a, b):
        k = psi(s[pos], s[neg])
        aucs.append(k.mean())
        v10.append(k.mean(axis=1))
        v01.append(k.mean(axis=0))
    m, n = int(pos.sum()), int(neg.sum())

    def cov(v: list[np.ndarray], k: int) -> np.ndarray:
        return np.array(
            [
                [np.sum((v[i] - aucs[i]) * (v[j] - aucs[j])) / (k - 1) for j in (0, 1)]
                for i in (0, 1)
            ]
        )

    s10, s01 = cov(v10, m), cov(v01, n)
    s = s10 / m + s01 / n
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    z = (aucs[0] - aucs[1]) / math.sqrt(var)
    return aucs[0], aucs[1], 2 * stats.norm.sf(abs(z))


@pytest.mark.parametrize("seed", range(20))
def test_delong_equals_the_direct_formulas_on_random_data(seed: int) -> None:
    """AUROCs equal scikit-learn's and the p-value DeLong's formulas computed directly, with
    ties (scores rounded to one decimal) on half the seeds."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 300))
    y = rng.integers(0, 2, n)
    a = y * rng.normal(1.0, 1.0, n) + rng.normal(0, 1, n)
    b = 0.6 * a + rng.normal(0, 1, n) + 0.4 * y
    if seed % 2:
        a, b = np.round(a, 1), np.round(b, 1)
    result = delong(y, a, b)
    ref_a, ref_b, ref_p = _delong_reference(y, a, b)
    assert result.value_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.value_b == pytest.approx(roc_auc_score(y, b), abs=1e-12)
    assert (result.value_a, result.value_b) == pytest.approx((ref_a, ref_b), abs=1e-12)
    assert result.p_value == pytest.approx(ref_p, rel=1e-9)
    assert result.ci_low < result.difference < result.ci_high


def test_delong_of_identical_models_finds_no_difference() -> None:
    """The same scores twice: difference 0, p = 1."""
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    result = delong(y, s, s)
    assert result.difference == 0.0
    assert result.p_value == 1.0


def test_delong_refuses_one_class() -> None:
    """An AUROC needs both classes."""
    with pytest.raises(ValueError, match="two positive and two negative"):
        delong(np.ones(5, dtype=int), np.arange(5.0), np.arange(5.0))


def _pairs(b: int, c: int, agree_right: int, agree_wrong: int) -> tuple[np.ndarray, ...]:
    """Labels (all 1) and two prediction vectors with the given 2x2 table."""
    a_pred = [1] * agree_right + [1] * b + [0] * c + [0] * agree_wrong
    b_pred = [1] * agree_right + [0] * b + [1] * c + [0] * agree_wrong
    y = np.ones(len(a_pred), dtype=int)
    return y, np.array(a_pred), np.array(b_pred)


def test_mcnemar_worked_example_exact() -> None:
    """The worked example of McNemar's test (Wikipedia, 'McNemar's test': a=59, b=6, c=16,
    d=80): 22 discordant pairs, so the exact test: p = 2 * P(X <= 6), X ~ Bin(22, 1/2)
    = 0.0525 (to four places)."""
    y, a, b = _pairs(6, 16, 59, 80)
    result = mcnemar(y, a, b)
    exact = 2 * sum(math.comb(22, k) for k in range(7)) / 2**22
    assert result.p_value == pytest.approx(exact, rel=1e-12)
    assert round(result.p_value, 4) == 0.0525
    assert result.difference == pytest.approx((6 - 16) / 161)


def test_mcnemar_large_counts_use_the_corrected_chi_square() -> None:
    """b=40, c=20: chi2 = (|40-20|-1)^2/60 = 6.0167, p from chi-square with one degree of
    freedom (scipy)."""
    y, a, b = _pairs(40, 20, 100, 30)
    result = mcnemar(y, a, b)
    assert result.statistic == pytest.approx(19**2 / 60)
    assert result.p_value == pytest.approx(stats.chi2.sf(19**2 / 60, 1), rel=1e-12)
    assert result.p_value < 0.05


def test_mcnemar_without_discordant_pairs_has_p_one() -> None:
    """Two models right and wrong on the same rows: nothing to test."""
    y, a, b = _pairs(0, 0, 10, 3)
    assert mcnemar(y, a, b).p_value == 1.0


def test_paired_bootstrap_interval_matches_scipy_bootstrap() -> None:
    """The percentile interval of a Brier-score difference agrees with scipy.stats.bootstrap
    (paired, percentile) within Monte Carlo error, and the point difference exactly."""
    rng = np.random.default_rng(7)
    n = 400
    y = rng.integers(0, 2, n)
    a = np.clip(0.5 * y + rng.uniform(0, 0.5, n), 0, 1)
    b = np.clip(0.3 * y + rng.uniform(0, 0.7, n), 0, 1)
    ours = paired_bootstrap(y, a, b, brier, n_resamples=4000, seed=1)
    ref = stats.bootstrap(
        (y, a, b),
        lambda yy, aa, bb: np.mean((aa - yy) ** 2) - np.mean((bb - yy) ** 2),
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        rng=np.random.default_rng(2),
    )
    assert ours.difference == pytest.approx(brier(y == 1, a) - brier(y == 1, b))
    assert ours.ci_low == pytest.approx(ref.confidence_interval.low, abs=0.004)
    assert ours.ci_high == pytest.approx(ref.confidence_interval.high, abs=0.004)
    assert ours.p_value < 0.01


def test_threshold_metrics_and_auroc() -> None:
    """Sensitivity, specificity at a threshold and the rank AUROC on a hand-checked case."""
    y = np.array([1, 1, 1, 0, 0], dtype=bool)
    s = np.array([0.9, 0.5, 0.2, 0.5, 0.1])
    assert sensitivity_at(0.5)(y, s) == pytest.approx(2 / 3)
    assert specificity_at(0.5)(y, s) == pytest.approx(1 / 2)
    # Pairs (pos > neg): 0.9>both, 0.5 tie 0.5 (1/2) and >0.1, 0.2 >0.1 only: (2+1.5+1)/6.
    assert auroc(y, s) == pytest.approx(4.5 / 6)
    assert math.isnan(auroc(np.ones(3, dtype=bool), np.arange(3.0)))
