"""The two-sample Kolmogorov-Smirnov p-value, as ``scipy.stats.ks_2samp(method="auto")``
gives it, without its slow branches for large samples (see ``_kstwo_sf``).

Two private scipy helpers are used so that the p-value follows scipy's own rule for choosing
the exact or the asymptotic method; tests/monitoring pins both against the public ``ks_2samp``
and ``kstwo``, so a scipy upgrade that changes them fails there, loudly.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import special, stats  # type: ignore[import-untyped]
from scipy.stats._ksstats import _kolmogn_PelzGood  # type: ignore[import-untyped]
from scipy.stats._stats_py import _attempt_exact_2kssamp  # type: ignore[import-untyped]

FloatArray = npt.NDArray[np.float64]

_KS_EXACT_MAX_N: Final = 10_000  # scipy's MAX_AUTO_N in ks_2samp(method="auto")
_LOG_2PI: Final = math.log(2.0 * math.pi)
_TAIL_NATS: Final = 50.0  # Smirnov terms below exp(-50) x the largest one are left out


def ks_pvalue(d: float, n1: int, n2: int) -> tuple[float, float, str]:
    """Statistic, p-value and method of two-sided ``ks_2samp(method="auto")``."""
    method = "asymp"
    if max(n1, n2) <= _KS_EXACT_MAX_N:
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
    expansion, which agrees with the matrix method to < 1e-13 there. Other branches: scipy.
    """
    t, nx2 = n * x, n * x * x
    if n > 140 and 0.0 < x < 1.0 and 1.0 < t < n - 1:
        if x >= 0.5 or 2.2 <= nx2 < 370.0:
            return min(1.0, 2.0 * _smirnov_sf(n, x))
        if nx2 < 2.2 and 10_000 <= n <= 100_000 and n * x**1.5 <= 1.4:
            return min(1.0, max(0.0, 1.0 - float(_kolmogn_PelzGood(n, x, cdf=True))))
    return float(stats.kstwo.sf(x, n))


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
