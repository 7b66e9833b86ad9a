"""The two-sample Kolmogorov-Smirnov p-value, as ``scipy.stats.ks_2samp(method="auto")``
gives it, without its slow branches for large samples (see ``_kstwo_sf``).

A private scipy helper (``_attempt_exact_2kssamp``) is used so that the p-value follows
scipy's own rule for choosing the exact or the asymptotic method, and scipy's Pelz-Good
expansion (``_kolmogn_PelzGood``) is transcribed here; tests/monitoring pins both against the
public ``ks_2samp`` and ``kstwo``, so a scipy upgrade that changes them fails there, loudly.

scipy.stats is imported only by the branches that need it (exact p-values for samples of at
most 10,000 values, and ``kstwo`` for small or extreme ``n``): its import is about 50 MB of a
monitoring process, and the large samples a monitoring window holds take none of them.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]

_KS_EXACT_MAX_N: Final = 10_000  # scipy's MAX_AUTO_N in ks_2samp(method="auto")
_LOG_2PI: Final = math.log(2.0 * math.pi)
_TAIL_NATS: Final = 50.0  # Smirnov terms below exp(-50) x the largest one are left out
_SQRT2PI: Final = np.sqrt(2 * np.pi)  # scipy.stats._ksstats' constants, as numpy floats
_SQRT3: Final = np.sqrt(3)
_PI_SQUARED: Final = np.pi**2
_PI_FOUR: Final = np.pi**4
_PI_SIX: Final = np.pi**6
_MIN_LOG: Final = -708
# scipy.special.smirnov sums the exact series up to this n and approximates beyond it
# (measured: equal to the series to 1e-13 at 1,000,000, 1e-3 off at 1,000,001 for n x^2 = 50).
_SMIRNOV_EXACT_MAX_N: Final = 1_000_000


def ks_pvalue(d: float, n1: int, n2: int) -> tuple[float, float, str]:
    """Statistic, p-value and method of two-sided ``ks_2samp(method="auto")``."""
    method = "asymp"
    if max(n1, n2) <= _KS_EXACT_MAX_N:
        from scipy.stats._stats_py import _attempt_exact_2kssamp  # type: ignore[import-untyped]

        success, rounded, prob = _attempt_exact_2kssamp(n1, n2, math.gcd(n1, n2), d, "two-sided")
        d = float(rounded)
        if success:
            return d, float(np.clip(prob, 0.0, 1.0)), "exact"
        method = "asymp (exact failed)"
    large, small = max(n1, n2), min(n1, n2)
    n = int(np.round(float(large) * small / (float(large) + small)))
    return d, _kstwo_sf(d, n), method


def _kstwo_sf(x: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(x, n)``, with the two slow branches taken faster for large n.

    scipy's ``_kolmogn`` (Simard & L'Ecuyer) sums the exact one-sided Smirnov series in
    double-double arithmetic for ``2.2 <= n x^2 < 370`` (O(n) and slow: 60 ms at n = 40,000)
    and runs a Durbin matrix power when ``n x^1.5 <= 1.4``. Here the first is the same series
    summed in log space with numpy, and for ``n >= 10,000`` the second is scipy's Pelz-Good
    expansion, which agrees with the matrix method to < 1e-13 there. For ``n > 140``, the
    remaining branches scipy takes without either (``n x^2 >= 370``: 0, else Pelz-Good) are
    taken here as scipy takes them; everything else is scipy's ``kstwo.sf``.
    """
    t, nx2 = n * x, n * x * x
    if n > 140 and 0.0 < x < 1.0 and 1.0 < t < n - 1:
        if x >= 0.5 or 2.2 <= nx2 < 370.0:
            if n > _SMIRNOV_EXACT_MAX_N:  # scipy's smirnov is an approximation here, and fast
                return min(1.0, 2.0 * float(special.smirnov(n, x)))
            return min(1.0, 2.0 * _smirnov_sf(n, x))
        if nx2 >= 370.0:
            return 0.0
        if n >= 10_000 or n * x**1.5 > 1.4:
            return min(1.0, max(0.0, 1.0 - _pelz_good_cdf(n, x)))
    from scipy import stats  # only here: see the module doc

    return float(stats.kstwo.sf(x, n))


def _pelz_good_cdf(n: int, x: float) -> float:
    """``P(D_n <= x)`` by the Pelz-Good (1976) expansion, for ``0 < x < 1`` with ``z = x
    sqrt(n)`` above 0.04: scipy's ``_kolmogn_PelzGood(n, x, cdf=True)``, operation for
    operation (scipy.stats/_ksstats.py, BSD-3-Clause), so it gives the same floats.
    """
    z = np.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6
    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:  # z ~ 0.0417
        return 0.0
    q = np.exp(qlog)
    # Coefficients of the terms of K1, K2 and K3 in the sums over odd m = 2k - 1.
    k1a, k1b = -zsquared, _PI_SQUARED / 4
    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16
    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8
    terms = np.zeros(4)
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):  # Horner scheme in q^(8k)
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * msquared,
                k2a + k2b * msquared + k2c * mfour,
                k3a + k3b * msquared + k3c * mfour + k3d * msix,
            ]
        )
        terms *= np.power(q, 8 * k)
        terms += coeffs
    terms *= q
    terms *= _SQRT2PI
    terms /= np.array([z, 6 * zfour, 72 * z**7, 6480 * z**10])
    # The sums over all integers k of K2 and K3.
    q = np.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpowers = q**ksquared
    k2extra = np.sum(ksquared * qpowers)
    k2extra *= _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    terms[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpowers)
    k3extra *= _PI_SQUARED * _SQRT2PI / (216 * zsix)
    terms[3] += k3extra
    terms /= np.power(n * 1.0, np.arange(len(terms)) / 2.0)
    return float(sum(terms))


def _smirnov_sf(n: int, x: float) -> float:
    """One-sided Smirnov ``P(D+_n >= x)`` by the Birnbaum-Tingey sum, term by term in logs.

    Term ``j`` is ``x C(n, j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j)`` for ``0 <= j < n(1-x)``;
    its log uses Loader's Stirling-error form of ``C(n, j)`` so no large logs cancel.
    """
    nx = n * x
    last = math.floor(n * (1.0 - x))
    while last >= 1 and n - last - nx <= 0.0:
        last -= 1
    head = n * math.log1p(-x)  # j = 0
    if last < 1:
        return math.exp(head)
    step = max(1, last // 4096)
    coarse = np.arange(1, last + 1, step, dtype=np.float64)
    logs = _smirnov_log_terms(n, x, coarse)
    # The terms vary smoothly with j: find where they matter on a coarse grid, then sum densely.
    peak = int(np.argmax(logs))
    keep = np.flatnonzero(logs > max(head, float(logs[peak])) - _TAIL_NATS)
    first, final = (int(keep[0]), int(keep[-1])) if keep.size else (peak, peak)
    lo = int(coarse[min(peak, first)]) - step
    hi = int(coarse[max(peak, final)]) + step
    logs = _smirnov_log_terms(n, x, np.arange(max(1, lo), min(last, hi) + 1, dtype=np.float64))
    top = max(head, float(logs.max()))
    return math.exp(top) * (math.exp(head - top) + float(np.exp(logs - top).sum()))


def _smirnov_log_terms(n: int, x: float, j: FloatArray) -> FloatArray:
    rest = n - j
    nx = n * x
    log_terms: FloatArray = (
        math.log(x)
        - np.log(x + j / n)
        + _stirling_error(np.array([float(n)]))[0]
        - _stirling_error(j)
        - _stirling_error(rest)
        + 0.5 * np.log(n / (2.0 * math.pi * j * rest))
        + j * np.log1p(nx / j)
        + rest * np.log1p(-nx / rest)
    )
    return log_terms


def _stirling_error(k: FloatArray) -> FloatArray:
    """``log(k!) - ((k + 1/2) log k - k + log(2 pi) / 2)`` for integers ``k >= 1`` (Loader)."""
    out = np.empty_like(k)
    small = k <= 15.0
    ks, kl = k[small], k[~small]
    out[small] = special.gammaln(ks + 1.0) - (ks + 0.5) * np.log(ks) + ks - 0.5 * _LOG_2PI
    r = 1.0 / (kl * kl)
    out[~small] = (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - r / 1188) * r) * r) * r) / kl
    return out
